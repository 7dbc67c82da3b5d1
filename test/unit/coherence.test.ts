// Coherence without Redis (src/vfs/coherence.ts, and the Vfs's use of it): mounts of one source on an in-memory
// bus that can be cut and restored. What a mount publishes, that it skips its own messages, what a peer's message
// drops from the other mount's caches, and what happens across an outage (changes kept and sent when the bus is
// back; everything cached dropped, since messages may have been missed). Also the `coherence` URL's parsing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { constants } from 'node:fs'
import { Coherence, type Bus, type ChangeKind } from '../../dist/vfs/coherence.js'
import { parseRedisUrl } from '../../dist/vfs/coherence-redis.js'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()
const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))
const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await tick() }

interface Handlers { message: (raw: string) => void, state: (connected: boolean, reason?: string) => void }

/** A channel every bus of it is subscribed to; `up(false)` cuts them all off (publishes reject), `up(true)` restores. */
class Hub {
  readonly buses: Array<{ h?: Handlers }> = []
  readonly published: string[] = []
  connected = true
  bus (): Bus {
    const me: { h?: Handlers } = {}
    this.buses.push(me)
    return {
      server: 'mem://hub',
      start: h => { me.h = h; if (this.connected) queueMicrotask(() => h.state(true)) },
      publish: async raw => {
        if (!this.connected) throw new Error('not connected')
        this.published.push(raw)
        for (const b of this.buses) queueMicrotask(() => b.h?.message(raw))
      },
      close: async () => { me.h = undefined }
    }
  }

  up (on: boolean): void {
    this.connected = on
    for (const b of this.buses) b.h?.state(on, on ? undefined : 'cut')
  }
}

class Target {
  readonly changes: Array<[string, ChangeKind]> = []
  resets = 0
  changed (p: string, kind: ChangeKind): void { this.changes.push([p, kind]) }
  reset (): void { this.resets++ }
}

test('a burst of changes is one message, a path keeps its strongest kind, and only peers apply it', async () => {
  const hub = new Hub()
  const ta = new Target()
  const tb = new Target()
  const a = new Coherence(hub.bus(), ta)
  const b = new Coherence(hub.bus(), tb)
  a.start(); b.start()
  await a.connectedOnce; await b.connectedOnce
  assert.equal(ta.resets, 1, 'the first connection drops what was cached while connecting')
  a.publish('/f', 'data')
  a.publish('/f', 'attr')
  a.publish('/d', 'tree')
  await settle()
  assert.equal(hub.published.length, 1, 'one message for the burst')
  assert.deepEqual(tb.changes.sort(), [['/d', 'tree'], ['/f', 'data']], 'the peer applies each path once, at its strongest')
  assert.deepEqual(ta.changes, [], 'a mount does not apply its own messages')
  assert.equal(a.stats().sent, 1)
  assert.equal(b.stats().received, 1)
  assert.equal(b.stats().applied, 2)
  assert.equal(a.stats().received, 0, 'its own message is not counted as received')
  assert.ok(b.stats().lagP99Ms >= b.stats().lagP50Ms)
  hub.buses[1].h?.message('not json')
  hub.buses[1].h?.message(JSON.stringify({ v: 1, m: 'x', t: 0, c: [['d', 'relative'], ['?', '/x'], 'junk'] }))
  assert.equal(b.stats().applied, 2, 'malformed messages and changes are ignored')
  await a.close(); await b.close()
})

test('while the bus is down changes are kept and sent when it is back, and every mount drops its caches then', async () => {
  const hub = new Hub()
  const ta = new Target()
  const tb = new Target()
  const a = new Coherence(hub.bus(), ta)
  const b = new Coherence(hub.bus(), tb)
  a.start(); b.start()
  await a.connectedOnce; await b.connectedOnce
  hub.up(false)
  assert.equal(a.stats().connected, false)
  assert.equal(b.stats().outages, 1)
  assert.equal(b.stats().lastError, 'cut')
  a.publish('/x', 'entry')
  await settle()
  assert.equal(a.stats().waiting, 1, 'the change waits for the bus')
  assert.deepEqual(tb.changes, [])
  hub.up(true)
  await settle()
  assert.deepEqual(tb.changes, [['/x', 'entry']], 'the peer gets the change made during the outage')
  assert.equal(tb.resets, 2, 'and dropped everything cached when it reconnected')
  assert.equal(b.stats().resets, 1, 'counted as one reset after an outage')
  assert.equal(a.stats().waiting, 0)
  await a.close(); await b.close()
})

test('past the cap of kept changes, peers are told to drop everything instead', async () => {
  const hub = new Hub()
  const tb = new Target()
  const a = new Coherence(hub.bus(), new Target())
  const b = new Coherence(hub.bus(), tb)
  a.start(); b.start()
  await a.connectedOnce; await b.connectedOnce
  hub.up(false)
  for (let i = 0; i <= 10_000; i++) a.publish(`/f${i}`, 'data')
  await settle()
  hub.up(true)
  await settle()
  assert.deepEqual(tb.changes, [], 'no path by path list')
  assert.equal(tb.resets, 3, 'first connection, reconnection, and the "drop everything" message')
  await a.close(); await b.close()
})

async function vfsPair () {
  const hub = new Hub()
  const backend = new FakeBackend({ randomWrite: true })
  const make = async (): Promise<Vfs> => new Vfs(backend as any, {
    writeback: false,
    consistency: 'eventual',
    attrCacheSize: 1000,
    attrCacheTtlMs: 3_600_000,
    dirCacheSize: 100,
    dirCacheTtlMs: 3_600_000,
    negativeCacheSize: 100,
    negativeCacheTtlMs: 3_600_000,
    xattrCacheSize: 100,
    xattrCacheTtlMs: 3_600_000,
    cacheDir: await tempDir('fsx-coherence-'),
    coherence: async () => hub.bus()
  })
  const a = await make()
  const b = await make()
  assert.equal(await a.connectPeers(1000), true)
  assert.equal(await b.connectPeers(1000), true)
  return { hub, backend, a, b }
}

test('Vfs: what mount A changes is dropped from mount B\'s caches and the kernel is told', async () => {
  const { a, b } = await vfsPair()
  const told: Array<[string, { entry?: boolean, tree?: boolean }]> = []
  b.onChange = (p, how) => told.push([p, how])
  const fh = await a.create('/f', 0o644)
  await a.write('/f', fh, Buffer.from('one'), 3, 0)
  await a.release('/f', fh)
  await settle()
  assert.equal((await b.getattr('/f')).size, 3, 'B caches the file')
  assert.deepEqual((await b.readdir('/')).names.sort(), ['f'])
  await assert.rejects(b.getattr('/g'), { code: 'ENOENT' })

  const w = await a.open('/f', constants.O_WRONLY | constants.O_TRUNC)
  await a.write('/f', w, Buffer.from('longer'), 6, 0)
  await a.release('/f', w)
  await a.chmod('/f', 0o600)
  await a.mkdir('/g', 0o755)
  await settle()
  assert.equal((await b.getattr('/f')).size, 6, 'a write through A is seen by B at once')
  assert.equal((await b.getattr('/f')).mode & 0o7777, 0o600, 'so is a chmod')
  assert.equal((await b.getattr('/g')).kind, 'dir', 'and a new name B had cached as missing')
  assert.deepEqual((await b.readdir('/')).names.sort(), ['f', 'g'], 'and the listing')
  assert.ok(told.some(([p]) => p === '/f') && told.some(([p, how]) => p === '/g' && how.entry === true), 'the kernel is told (inode and entry)')

  await a.rename('/f', '/h')
  await a.rmdir('/g')
  await settle()
  await assert.rejects(b.getattr('/f'), { code: 'ENOENT' }, 'a rename through A is seen by B')
  await assert.rejects(b.getattr('/g'), { code: 'ENOENT' }, 'so is an rmdir')
  assert.deepEqual((await b.readdir('/')).names.sort(), ['h'])
  assert.ok(b.stats().coherence!.applied >= 5)
  await a.close(); await b.close()
})

test('Vfs: without coherence, mount B keeps its cached answers (what the test above checks is coherence)', async () => {
  const backend = new FakeBackend({ randomWrite: true })
  const opts = async (): Promise<any> => ({
    writeback: false, consistency: 'eventual', attrCacheSize: 1000, attrCacheTtlMs: 3_600_000, dirCacheSize: 100,
    dirCacheTtlMs: 3_600_000, negativeCacheSize: 100, negativeCacheTtlMs: 3_600_000, xattrCacheSize: 100,
    xattrCacheTtlMs: 3_600_000, cacheDir: await tempDir('fsx-coherence-')
  })
  const a = new Vfs(backend as any, await opts())
  const b = new Vfs(backend as any, await opts())
  assert.equal(await b.connectPeers(10), false, 'no coherence setting: nothing to connect')
  const fh = await a.create('/f', 0o644)
  await a.release('/f', fh)
  assert.equal((await b.getattr('/f')).mode & 0o7777, 0o644)
  await a.chmod('/f', 0o600)
  await settle()
  assert.equal((await b.getattr('/f')).mode & 0o7777, 0o644, 'B still answers from its cache')
  assert.equal(b.stats().coherence, undefined)
  await a.close(); await b.close()
})

test('coherence URL: redis:// and rediss:// with host, port and database; a password in it is refused', () => {
  assert.deepEqual({ ...parseRedisUrl('redis://127.0.0.1:6380/2'), url: undefined }, { url: undefined, db: 2, server: 'redis://127.0.0.1:6380/2' })
  assert.equal(parseRedisUrl('rediss://cache.example').server, 'rediss://cache.example:6379/0')
  assert.equal(parseRedisUrl('redis://fsx@h/1').server, 'redis://fsx@h:6379/1')
  assert.throws(() => parseRedisUrl('redis://u:secret@h'), (err: Error) => /password in the URL is refused/.test(err.message) && !err.message.includes('secret'))
  assert.throws(() => parseRedisUrl('http://h'), /not supported/)
  assert.throws(() => parseRedisUrl('redis://h/x'), /not a database number/)
  assert.throws(() => parseRedisUrl('redis//u:secret@h'), (err: Error) => /is not a URL/.test(err.message) && !err.message.includes('secret'))
})
