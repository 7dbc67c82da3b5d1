// Mount extensions (src/extension): the registry refuses malformed definitions; the host starts only the extensions
// a mount's settings want, hands them a locked state directory and the mount's files, forwards commit events,
// serves their commands as <name>.<command>, and a failing start fails the mount with the extension's name after
// stopping the others. Their figures reach the stats snapshot and Prometheus.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { constants } from 'node:fs'
import { Vfs, type VfsChange } from '../../dist/vfs/vfs.js'
import { ExtensionRegistry } from '../../dist/extension/registry.js'
import { ExtensionHost } from '../../dist/extension/host.js'
import { MountMetrics } from '../../dist/control/metrics.js'
import { buildRegistry } from '../../dist/control/prometheus.js'
import type { MountExtensionContext, MountExtensionDefinition } from '../../dist/extension/types.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tmp = tempDirs()

async function vfsOn (b: FakeBackend): Promise<{ vfs: Vfs, cacheDir: string }> {
  const cacheDir = await tmp('fsx-ext-')
  return { vfs: new Vfs(b as any, { writeback: false, consistency: 'session', xattrCacheSize: 0, xattrCacheTtlMs: 0, cacheDir }), cacheDir }
}

function recorder (name: string, opts: { enabledKey?: string, failStart?: boolean } = {}) {
  const heard: VfsChange[] = []
  const events: string[] = []
  let ctx: MountExtensionContext | undefined
  const def: MountExtensionDefinition = {
    name,
    summary: 'test',
    options: [{ key: `${name}On`, kind: 'boolean', default: false, scope: name, help: 'on' }],
    enabled: s => opts.enabledKey === undefined || s[opts.enabledKey] === true,
    async start (c) {
      ctx = c
      if (opts.failStart === true) throw Object.assign(new Error('cannot load its engine'), { code: 'EIO', hint: 'reinstall it' })
      events.push('start')
      return {
        onCommit: ch => heard.push(ch),
        commands: { echo: async r => ({ echoed: r.value }) },
        stats: () => ({ things: heard.length, latencySeconds: { 0.5: 0.25, 0.99: 1.5 } }),
        figures: { things: { help: 'Things heard.' }, latencySeconds: { help: 'Latency.', label: 'quantile' } },
        close: async () => { events.push('close') }
      }
    }
  }
  return { def, heard, events, ctx: () => ctx }
}

test('the registry takes well-formed definitions once, and their option rows', () => {
  const r = new ExtensionRegistry()
  assert.throws(() => r.register({ name: 'Bad Name', summary: '', start: async () => undefined } as any), { code: 'ECONFIG' })
  assert.throws(() => r.register({ name: 'x' } as any), { code: 'ECONFIG' })
  const a = recorder('alpha')
  r.register(a.def)
  r.register(recorder('alpha').def)
  assert.equal(r.definitions().length, 1)
  assert.deepEqual(r.options().map(o => o.key), ['alphaOn'])
})

test('the host starts what the settings want, forwards commits, serves commands, closes and unlocks', async () => {
  const b = new FakeBackend()
  const { vfs, cacheDir } = await vfsOn(b)
  const r = new ExtensionRegistry()
  const on = recorder('alpha', { enabledKey: 'alphaOn' })
  const off = recorder('beta', { enabledKey: 'betaOn' })
  r.register(on.def)
  r.register(off.def)
  const host = await ExtensionHost.start(r, { vfs, settings: { alphaOn: true, betaOn: false }, mountpoint: '/mnt/x', cacheDir, log: () => {} })
  assert.equal(host.size, 1)
  assert.equal(off.ctx(), undefined, 'an extension the settings leave off is not started')
  assert.deepEqual(await readdir(path.join(cacheDir, 'extensions')), ['alpha'], 'and gets no state directory')
  const ctx = on.ctx()!
  assert.equal(ctx.source, 'fake:')
  assert.equal(ctx.mountpoint, '/mnt/x')
  assert.ok((await stat(ctx.stateDir)).isDirectory())
  b.put('/a.vec', '1,2\n')
  await vfs.unlink('/a.vec')
  assert.deepEqual(on.heard, [{ kind: 'remove', path: '/a.vec' }])
  assert.deepEqual(Object.keys(host.commands()), ['alpha.echo'])
  assert.deepEqual(await host.commands()['alpha.echo']({ value: 7 }), { echoed: 7 })
  assert.deepEqual(host.stats(), { alpha: { things: 1, latencySeconds: { 0.5: 0.25, 0.99: 1.5 } } })
  // The state directory is this mount's while it runs.
  const again = recorder('alpha', { enabledKey: 'alphaOn' })
  const r2 = new ExtensionRegistry()
  r2.register(again.def)
  await assert.rejects(ExtensionHost.start(r2, { vfs, settings: { alphaOn: true }, mountpoint: '/mnt/y', cacheDir, log: () => {} }), /alpha: the state directory .* is in use by process/)
  await host.close()
  assert.deepEqual(on.events, ['start', 'close'])
  const third = await ExtensionHost.start(r2, { vfs, settings: { alphaOn: true }, mountpoint: '/mnt/y', cacheDir, log: () => {} })
  assert.equal(third.size, 1, 'unlocked at close')
  await third.close()
  await vfs.close()
})

test('a failing start fails with the extension\'s name and code, after closing the ones started', async () => {
  const { vfs, cacheDir } = await vfsOn(new FakeBackend())
  const r = new ExtensionRegistry()
  const good = recorder('alpha')
  r.register(good.def)
  r.register(recorder('broken', { failStart: true }).def)
  await assert.rejects(ExtensionHost.start(r, { vfs, settings: {}, mountpoint: '/m', cacheDir, log: () => {} }),
    (err: any) => err.code === 'EIO' && err.message === 'broken: cannot load its engine' && err.hint === 'reinstall it')
  assert.deepEqual(good.events, ['start', 'close'])
  await vfs.close()
})

test('ctx.files reads what the mount serves (a staged write included) and refuses files over the limit', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const { vfs, cacheDir } = await vfsOn(b)
  const r = new ExtensionRegistry()
  const rec = recorder('alpha')
  r.register(rec.def)
  const host = await ExtensionHost.start(r, { vfs, settings: {}, mountpoint: '/m', cacheDir, log: () => {} })
  const files = rec.ctx()!.files
  const fh = await vfs.create('/s.vec', 0o644)
  const data = Buffer.from('1,2,3\n'.repeat(30000))
  await vfs.write('', fh, data, data.length, 0)
  assert.equal(b.content('/s.vec'), undefined, 'not uploaded yet (creating it made no request)')
  assert.ok((await files.read('/s.vec')).equals(data), 'the staged content, read in several chunks')
  assert.equal((await files.stat('/s.vec')).size, data.length)
  assert.deepEqual((await files.list('/')).map(e => e.name), ['s.vec'])
  await assert.rejects(files.read('/s.vec', 1000), { code: 'EFBIG' })
  await assert.rejects(files.read('/none.vec'), { code: 'ENOENT' })
  await vfs.release('/s.vec', fh)
  assert.equal(vfs.openCount, 0, 'the reads released their handles')
  await host.close()
  await vfs.close()
})

test('extension figures reach the stats snapshot and Prometheus as fsx_<extension>_<figure>', async () => {
  const { vfs, cacheDir } = await vfsOn(new FakeBackend())
  const r = new ExtensionRegistry()
  r.register(recorder('alpha').def)
  const host = await ExtensionHost.start(r, { vfs, settings: {}, mountpoint: '/m', cacheDir, log: () => {} })
  const metrics = new MountMetrics({ mountpoint: '/m', source: 'fake:', preset: 'balanced' }, vfs, vfs.backend)
  assert.equal(metrics.snapshot().extensions, undefined)
  metrics.extensions = host
  assert.deepEqual(metrics.snapshot().extensions, { alpha: { things: 0, latencySeconds: { 0.5: 0.25, 0.99: 1.5 } } })
  const text = await buildRegistry(metrics).metrics()
  assert.match(text, /# HELP fsx_alpha_things Things heard\.\n# TYPE fsx_alpha_things gauge\nfsx_alpha_things\{mountpoint="\/m"\} 0/)
  // (label order is prom-client's: the metric's own labels, then the registry's default ones)
  assert.match(text, /fsx_alpha_latency_seconds\{(quantile="0.99",mountpoint="\/m"|mountpoint="\/m",quantile="0.99")\} 1.5/)
  await host.close()
  await vfs.close()
})

test('O_RDONLY is what ctx.files opens with (no commit event for its reads)', async () => {
  const b = new FakeBackend()
  const { vfs, cacheDir } = await vfsOn(b)
  const r = new ExtensionRegistry()
  const rec = recorder('alpha')
  r.register(rec.def)
  const host = await ExtensionHost.start(r, { vfs, settings: {}, mountpoint: '/m', cacheDir, log: () => {} })
  b.put('/r.vec', '1\n')
  await rec.ctx()!.files.read('/r.vec')
  const fh = await vfs.open('/r.vec', constants.O_RDONLY)
  await vfs.release('/r.vec', fh)
  assert.deepEqual(rec.heard, [])
  await host.close()
  await vfs.close()
})
