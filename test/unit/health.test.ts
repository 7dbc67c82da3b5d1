// Deadlines and backend health on a fake clock: one verdict on whether the backend answers (health.ts), one
// deadline per request (deadline.ts), and the VFS on top of them: while the backend is known to be failing nothing
// waits for it, cached answers come at once, the rest fails with EIO at once, and a background probe finds it back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { constants } from 'node:fs'
import { BackendHealth, guardBackend } from '../../dist/vfs/health.js'
import { RequestDeadline } from '../../dist/vfs/deadline.js'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'

/** A clock whose timers fire only when the test advances it. */
function fakeTimers () {
  let now = 1000
  let seq = 0
  const timers = new Map<number, { at: number, fn: () => void }>()
  /** Lets promise callbacks (and what they start) run. */
  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setTimeout(resolve, 0)) }
  return {
    now: () => now,
    setTimeout: (fn: () => void, ms: number): unknown => { timers.set(++seq, { at: now + ms, fn }); return seq },
    clearTimeout: (h: unknown): void => { timers.delete(h as number) },
    /** Moves the clock `ms` forward, firing due timers in order. */
    async advance (ms: number): Promise<void> {
      const until = now + ms
      for (;;) {
        let next: [number, { at: number, fn: () => void }] | undefined
        for (const e of timers) if (e[1].at <= until && (next === undefined || e[1].at < next[1].at)) next = e
        if (next === undefined) break
        timers.delete(next[0])
        now = next[1].at
        next[1].fn()
        await settle()
      }
      now = until
      await settle()
    },
    pending: (): number => timers.size,
    settle
  }
}

/** A call that settles only when the test says so. */
function gate<T> () {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const linkDown = (code = 'ETIMEDOUT'): Error => Object.assign(new Error(`no answer (${code})`), { code })

/** `p`, with its rejection marked handled: a test asserts on it later, after advancing the clock. */
function later<T> (p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/** Settled state of a promise right now (after pending callbacks ran). */
async function state (p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending'
  p.then(() => { s = 'resolved' }, () => { s = 'rejected' })
  for (let i = 0; i < 5; i++) await new Promise(resolve => setTimeout(resolve, 0))
  return s
}

test('a link failure and a probe that gets no answer either: the backend is failing, calls fail at once, a probe runs every interval', async () => {
  const ft = fakeTimers()
  let pings = 0
  let pingAnswer: 'down' | 'ok' = 'down'
  const changes: boolean[] = []
  const h = new BackendHealth({
    ping: async () => { pings++; if (pingAnswer === 'down') throw linkDown('ECONNREFUSED') },
    probeIntervalMs: 1000,
    timers: ft,
    onChange: failing => changes.push(failing)
  })
  assert.equal(await h.lookup(async () => 'fine'), 'fine')
  await assert.rejects(h.lookup(async () => { throw linkDown() }), { code: 'EIO', message: /no answer \(ETIMEDOUT\)/ }, 'a link error leaves as EIO')
  await ft.settle()
  assert.equal(pings, 1, 'a probe ran at once')
  assert.equal(h.failing, true, 'and got no answer: the backend is failing')
  assert.equal(h.lastError, 'ECONNREFUSED', 'what the probe met')
  let sent = 0
  await assert.rejects(h.lookup(async () => { sent++ }), { code: 'EIO', message: /not asked/ })
  await assert.rejects(h.change(async () => { sent++ }), { code: 'EIO' })
  assert.equal(sent, 0, 'nothing reaches the backend while it is failing')
  await ft.advance(999)
  assert.equal(pings, 1)
  await ft.advance(1)
  assert.equal(pings, 2, 'the next probe, one interval after the last settled')
  pingAnswer = 'ok'
  await ft.advance(1000)
  assert.equal(pings, 3)
  assert.equal(h.failing, false, 'the probe\'s answer ends it')
  assert.deepEqual(changes, [true, false])
  assert.equal(await h.lookup(async () => 'again'), 'again')
  await ft.advance(10_000)
  assert.equal(pings, 3, 'no probing while the backend answers')
  assert.equal(ft.pending(), 0)
  h.close()
})

test('one request lost on a busy link makes the backend suspect: calls wait for the probe, which finds it answering', async () => {
  const ft = fakeTimers()
  const ping = gate<void>()
  const changes: boolean[] = []
  const h = new BackendHealth({ ping: async () => await ping.promise, timers: ft, onChange: failing => changes.push(failing) })
  await assert.rejects(h.change(async () => { throw linkDown() }), { code: 'EIO' }, 'the lost request reports its error')
  let sent = 0
  const lookup = later(h.lookup(async () => { sent++; return 'looked up' }))
  const change = later(h.change(async () => { sent++; return 'written' }))
  assert.equal(await state(lookup), 'pending', 'calls wait for the verdict…')
  assert.equal(sent, 0)
  ping.resolve()
  assert.equal(await lookup, 'looked up', '…and go ahead when the probe is answered')
  assert.equal(await change, 'written')
  assert.equal(h.failing, false)
  assert.deepEqual(changes, [], 'a hiccup is no outage')
  h.close()
})

test('lookups waiting when the backend is found failing are abandoned at once; changes are left to finish', async () => {
  const ft = fakeTimers()
  const h = new BackendHealth({ ping: async () => { throw linkDown('ECONNRESET') }, timers: ft })
  const slowLookup = gate<string>()
  const slowChange = gate<string>()
  const lookup = later(h.lookup(async () => await slowLookup.promise))
  const change = later(h.change(async () => await slowChange.promise))
  await assert.rejects(h.lookup(async () => { throw linkDown('ECONNRESET') }), { code: 'EIO' })
  await assert.rejects(lookup, { code: 'EIO', message: /failing \(ECONNRESET/ }, 'the waiting lookup gave up')
  assert.equal(await state(change), 'pending', 'the change still waits for its own answer')
  slowChange.resolve('written')
  assert.equal(await change, 'written')
  assert.equal(h.failing, false, 'and that answer ends the failing state')
  slowLookup.resolve('late')
  h.close()
})

test('a lookup unanswered for lookupWaitMs is a link failure; a late failure of a call from before the recovery does not count', async () => {
  const ft = fakeTimers()
  let pingOk = false
  const h = new BackendHealth({ ping: async () => { if (!pingOk) throw linkDown() }, lookupWaitMs: 5000, probeIntervalMs: 1000, timers: ft })
  const stuck = gate<string>()
  const old = gate<string>()
  const p = later(h.lookup(async () => await stuck.promise))
  await ft.advance(1)
  const oldCall = later(h.lookup(async () => await old.promise))
  await ft.advance(4998)
  assert.equal(await state(p), 'pending')
  await ft.advance(1)
  await assert.rejects(p, { code: 'EIO', message: /no answer from the backend within 5s/ })
  await assert.rejects(oldCall, { code: 'EIO' }, 'abandoned when the probe found the backend failing')
  assert.equal(h.failing, true)
  pingOk = true
  await ft.advance(1000)
  assert.equal(h.failing, false)
  old.reject(linkDown()) // the request lost during the outage times out only now
  stuck.resolve('late')
  await ft.settle()
  assert.equal(h.failing, false, 'a failure from before the recovery is no news')
  await assert.rejects(h.lookup(async () => { throw Object.assign(new Error('gone'), { code: 'ENOENT' }) }), { code: 'ENOENT' })
  assert.equal(h.failing, false, 'an answer (ENOENT) is no failure')
  h.close()
  assert.equal(ft.pending(), 0)
})

test('without a probe (local backends) the verdict is only reported: calls are still sent and errors keep their code', async () => {
  const ft = fakeTimers()
  const h = new BackendHealth({ timers: ft })
  await assert.rejects(h.lookup(async () => { throw linkDown() }), { code: 'ETIMEDOUT' })
  assert.equal(h.failing, true)
  assert.equal(await h.lookup(async () => 'sent'), 'sent')
  assert.equal(h.failing, false)
  h.close()
})

test('guardBackend sends lookups, changes and handle calls through the verdict', async () => {
  const ft = fakeTimers()
  const b = new FakeBackend({ randomWrite: true })
  b.put('/f', 'data')
  const h = new BackendHealth({ ping: async () => { throw linkDown() }, timers: ft })
  const g = guardBackend(b as any, h)
  assert.equal(g.description, 'fake:')
  const fh = await g.open!('/f', { read: true, write: false, create: false, exclusive: false, truncate: false, append: false }, 0)
  assert.equal((await fh.read(0, 4)).toString(), 'data')
  b.down = 'ECONNREFUSED'
  await assert.rejects(g.stat('/f'), { code: 'EIO' })
  b.down = undefined
  const before = b.count('stat') + b.count('handleRead')
  await assert.rejects(g.stat('/f'), { code: 'EIO' })
  await assert.rejects(fh.read(0, 4), { code: 'EIO' })
  await assert.rejects(g.mkdir('/d', 0o755), { code: 'EIO' })
  assert.equal(b.count('stat') + b.count('handleRead'), before, 'not sent')
  await fh.close()
  assert.equal(b.count('close'), 1, 'a release is sent whatever the verdict')
  h.close()
})

test('a request that never settles is answered ETIMEDOUT a margin before opTimeout; a late result goes to `late`', async () => {
  const ft = fakeTimers()
  const d = new RequestDeadline(10_000, ft)
  assert.equal(d.ms, 9500, 'answers 500 ms (1/20 of a short deadline) early, before the engine\'s own timer')
  assert.equal(new RequestDeadline(120_000, ft).ms, 119_000, 'at most 1 s early')
  const slow = gate<number>()
  const late: number[] = []
  const p = later(d.run('open', '/f', async () => await slow.promise, v => late.push(v)))
  await ft.advance(9499)
  assert.equal(await state(p), 'pending')
  await ft.advance(1)
  await assert.rejects(p, { code: 'ETIMEDOUT', message: /open \/f: no answer within the 9.5s deadline/ })
  slow.resolve(7)
  await ft.settle()
  assert.deepEqual(late, [7])
  assert.equal(await d.run('getattr', '/', async () => 'fast'), 'fast')
  assert.equal(ft.pending(), 0, 'no timer left behind')
})

/** A FakeBackend that can be probed, whose probe answers, fails or hangs as the test says. */
class ProbedBackend extends FakeBackend {
  pings = 0
  pingMode: 'ok' | 'down' | 'hang' = 'ok'
  async ping (): Promise<void> {
    this.pings++
    if (this.pingMode === 'down') throw linkDown(this.down ?? 'ETIMEDOUT')
    if (this.pingMode === 'hang') await new Promise(() => {})
  }
}

async function probedVfs (o: { randomWrite?: boolean, hostFiles?: boolean } = {}) {
  const ft = fakeTimers()
  const b = new ProbedBackend({ randomWrite: o.randomWrite ?? false, hostFiles: o.hostFiles, now: ft.now })
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'fsx-health-'))
  const vfs = new Vfs(b as any, {
    writeback: false, consistency: 'session', xattrCacheSize: 100, xattrCacheTtlMs: 5000,
    attrCacheSize: 1000, attrCacheTtlMs: 5000, dirCacheSize: 100, dirCacheTtlMs: 5000, negativeCacheSize: 100, negativeCacheTtlMs: 5000,
    dataCacheMemory: 1024 * 1024, staleIfErrorMs: 600_000, opTimeoutMs: 10_000, probeIntervalMs: 1000,
    cacheDir, now: ft.now, timers: ft
  })
  const done = async (): Promise<void> => {
    await vfs.close()
    await rm(cacheDir, { recursive: true, force: true })
  }
  return { ft, b, vfs, done }
}

async function readAll (vfs: Vfs, p: string): Promise<string> {
  const fh = await vfs.open(p, constants.O_RDONLY)
  const buf = Buffer.alloc(100)
  const n = await vfs.read(p, fh, buf, 100, 0)
  await vfs.release(p, fh)
  return buf.subarray(0, n).toString()
}

test('the VFS on a backend that freezes: one request waits out the lookup deadline, then cached answers come at once', async () => {
  const { ft, b, vfs, done } = await probedVfs()
  b.putDir('/d')
  b.put('/d/a', 'hello')
  b.put('/unread', 'never read')
  assert.equal(await readAll(vfs, '/d/a'), 'hello')
  assert.deepEqual((await vfs.readdir('/d')).names, ['a'])
  await ft.advance(6000) // every TTL has passed

  // The backend freezes: the next stat never comes back, and probes get no answer (their own deadline passes).
  b.pingMode = 'down'
  const held = b.hold('stat')
  const first = later(vfs.getattr('/d/a'))
  await held.entered
  await ft.advance(8999)
  assert.equal(await state(first), 'pending', 'the first request waits for the backend…')
  await ft.advance(1)
  assert.equal((await first).size, 5, '…up to the lookup deadline (opTimeout minus margins), then answers from the cache')
  assert.equal(vfs.stats().stale!.backendFailing, true)

  const calls = (): number => Object.values(b.calls).reduce((x, y) => x + y, 0)
  const before = calls()
  assert.equal((await vfs.getattr('/d/a')).size, 5, 'attributes at once')
  assert.deepEqual((await vfs.readdir('/d')).names, ['a'], 'the listing at once')
  assert.equal(await readAll(vfs, '/d/a'), 'hello', 'cached data at once')
  await assert.rejects(vfs.getattr('/d/never'), { code: 'EIO' }, 'a name never seen: EIO at once')
  await assert.rejects(vfs.open('/unread', constants.O_RDONLY), { code: 'EIO' })
  await assert.rejects(vfs.create('/d/new', 0o644), { code: 'EIO' }, 'changes too')
  assert.equal(calls(), before, 'none of that reached the backend')
  assert.equal(b.pings, 1, 'only the probe did')

  // The next probe, an interval later, gets an answer.
  b.pingMode = 'ok'
  await ft.advance(1000)
  assert.equal(b.pings, 2)
  assert.equal(vfs.stats().stale!.backendFailing, false, 'the probe found it back')
  held.release()
  assert.equal(await readAll(vfs, '/unread'), 'never read', 'and the backend is asked again')
  await done()
})

test('the VFS on a local-like backend that refuses: a read-only open of a file seen before succeeds, its reads need the backend', async () => {
  const { ft, b, vfs, done } = await probedVfs({ randomWrite: true, hostFiles: true })
  b.put('/f', 'content')
  assert.equal(await readAll(vfs, '/f'), 'content')
  await vfs.getattr('/f') // as libfuse does after an open (auto_cache), and the kernel at the next lookup
  await ft.advance(6000)
  b.down = 'ECONNREFUSED'
  b.pingMode = 'down'
  await assert.rejects(vfs.getattr('/g'), { code: 'EIO' }, 'a refused connection reaches the application as EIO')
  assert.equal(vfs.stats().stale!.lastError, 'ECONNREFUSED')
  const fh = await vfs.open('/f', constants.O_RDONLY)
  assert.equal((await vfs.getattr('/f')).size, 7, 'the pages the kernel kept stay valid (same size and mtime)')
  await assert.rejects(vfs.read('/f', fh, Buffer.alloc(10), 10, 0), { code: 'EIO' }, 'a read that reaches fsx needs the server')
  b.down = undefined
  b.pingMode = 'ok'
  await ft.advance(1000)
  assert.equal(vfs.stats().stale!.backendFailing, false)
  const buf = Buffer.alloc(10)
  const n = await vfs.read('/f', fh, buf, 10, 0)
  assert.equal(buf.subarray(0, n).toString(), 'content', 'the same open reads once the backend answers')
  await vfs.release('/f', fh)
  assert.equal(b.count('close'), 2, 'both backend handles closed')
  await done()
})

test('the VFS on a remote backend with random writes (SFTP-like) that refuses: data read before reads from the data cache', async () => {
  const { ft, b, vfs, done } = await probedVfs({ randomWrite: true })
  b.put('/f', 'content')
  b.put('/g', 'never read')
  assert.equal(await readAll(vfs, '/f'), 'content')
  await vfs.getattr('/g')
  await ft.advance(6000)
  b.down = 'ECONNREFUSED'
  b.pingMode = 'down'
  await assert.rejects(vfs.getattr('/h'), { code: 'EIO' }, 'a refused connection reaches the application as EIO')
  const reads = b.count('read') + b.count('handleRead')
  assert.equal(await readAll(vfs, '/f'), 'content', 'a file read before reads while the backend refuses (stale-if-error)')
  const fh = await vfs.open('/g', constants.O_RDONLY)
  await assert.rejects(vfs.read('/g', fh, Buffer.alloc(20), 20, 0), { code: 'EIO' }, 'a file never read needs the server')
  await vfs.release('/g', fh)
  b.down = undefined
  b.pingMode = 'ok'
  await ft.advance(1000)
  assert.equal(vfs.stats().stale!.backendFailing, false)
  assert.equal(b.count('read') + b.count('handleRead'), reads, 'nothing of that reached the backend')
  assert.equal(await readAll(vfs, '/g'), 'never read', 'it reads once the backend answers')
  await done()
})

test('every VFS request settles by its deadline; an open that completes too late is released', async () => {
  // Local-like: a read-only open opens a backend handle (a remote backend's reads through the data cache need none).
  const { ft, b, vfs, done } = await probedVfs({ randomWrite: true, hostFiles: true })
  b.put('/f', 'x')
  const mk = b.hold('mkdir')
  const p = later(vfs.mkdir('/d', 0o755))
  await mk.entered
  await ft.advance(9500)
  await assert.rejects(p, { code: 'ETIMEDOUT' }, 'a change the backend never answers: ETIMEDOUT at the deadline')
  mk.release()
  const op = b.hold('open')
  const o = later(vfs.open('/f', constants.O_RDONLY))
  await op.entered
  await ft.advance(9500)
  await assert.rejects(o, { code: 'ETIMEDOUT' })
  op.release()
  await ft.settle()
  assert.equal(vfs.openCount, 0, 'the handle the kernel never got is released')
  assert.equal(b.count('close'), 1, 'and its backend handle closed')
  await done()
})
