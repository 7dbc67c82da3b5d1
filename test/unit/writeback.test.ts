// Write-back on a whole-object backend: close returns once the content is journaled on disk, the upload follows in
// the background, fsync waits for it, a crash before the upload is repaired by replay at the next start, and
// uploads never land out of order with renames, removals or attribute changes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { constants, existsSync } from 'node:fs'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

/**
 * Gates the backend's whole-object writes: while closed, calls wait until `open()`. (create() writes the empty
 * object through to the backend, so files are created before the gate closes.)
 */
function gateWrites (b: FakeBackend) {
  const write = b.write.bind(b)
  let closed = false
  let waiters: Array<() => void> = []
  let fail = 0
  const g = {
    calls: 0,
    close () { closed = true },
    open () { closed = false; for (const w of waiters.splice(0)) w() },
    /** Lets new calls through, leaving the ones waiting stuck for ever (a process killed mid-upload). */
    abandon () { closed = false; waiters = [] },
    /** Fails the next `n` writes with EIO. */
    failNext (n: number) { fail = n }
  }
  b.write = async (p: string, source: any, attrs?: any) => {
    g.calls++
    if (closed) await new Promise<void>(resolve => waiters.push(resolve))
    if (fail > 0) { fail--; throw Object.assign(new Error('backend down'), { code: 'EIO' }) }
    return await write(p, source, attrs)
  }
  return g
}

function newVfs (b: FakeBackend, cacheDir: string, o: Record<string, unknown> = {}): Vfs {
  return new Vfs(b as any, {
    writeback: true, consistency: 'session', xattrCacheSize: 0, xattrCacheTtlMs: 0,
    attrCacheSize: 100, attrCacheTtlMs: 60_000, dirCacheSize: 10, dirCacheTtlMs: 60_000,
    dataCacheMemory: 1024 * 1024, cacheDir, writebackRetryMs: 20, ...o
  } as any)
}

async function tmp (): Promise<string> { return await tempDir('fsx-writeback-') }

async function writeFileVia (vfs: Vfs, p: string, text: string, create = true): Promise<void> {
  const fh = create ? await vfs.create(p, 0o644) : await vfs.open(p, constants.O_WRONLY | constants.O_TRUNC)
  await vfs.write(p, fh, Buffer.from(text), Buffer.byteLength(text), 0)
  await vfs.flush(p, fh)
  await vfs.release(p, fh)
}

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false
  void p.then(() => { done = true }, () => { done = true })
  await new Promise(resolve => setTimeout(resolve, 30))
  return done
}

test('close returns before the upload; attributes come from the journal until it lands; fsync waits for it', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  const fh = await vfs.create('/f', 0o644)
  const fh2 = await vfs.create('/g', 0o644)
  gate.close()
  await vfs.write('/f', fh, Buffer.from('hello world'), 11, 0)
  await vfs.flush('/f', fh)
  await vfs.release('/f', fh)
  assert.equal(b.content('/f'), undefined, 'not uploaded yet (creating it made no request)')
  assert.equal((await vfs.getattr('/f')).size, 11, 'the journaled size')
  const wb = vfs.stats().writeback!
  assert.equal(wb.dirtyBytes, 11)
  assert.equal(wb.queued + wb.inFlight, 1)

  await vfs.write('/g', fh2, Buffer.from('x'), 1, 0)
  const sync = vfs.fsync('/g', fh2, false)
  assert.equal(await settled(sync), false, 'fsync waits for the backend')
  gate.open()
  await sync
  await vfs.release('/g', fh2)
  await vfs.journal!.flush('/f')
  assert.equal(b.content('/f')?.toString(), 'hello world')
  assert.equal(b.content('/g')?.toString(), 'x')
  assert.equal(vfs.stats().writeback!.dirtyBytes, 0)
  assert.equal(vfs.stats().writeback!.flushed, 2)
  await vfs.close()
})

test('drain (fsx flush) returns once the journal is uploaded and the backend has sent what it deferred', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp(), { writebackDelayMs: 60_000 })
  const gate = gateWrites(b)
  const order: string[] = []
  const flush = b.flush.bind(b)
  b.flush = async () => { order.push(`flush after ${b.content('/f') === undefined ? 'no upload' : 'the upload'}`); await flush() }
  await writeFileVia(vfs, '/f', 'data')
  gate.close()
  const drain = vfs.drain()
  assert.equal(await settled(drain), false, 'drain waits for the upload')
  assert.equal(b.count('flush'), 0, 'and asks the backend only after it')
  gate.open()
  assert.equal(await drain, 0)
  assert.deepEqual(order, ['flush after the upload'])
  await vfs.close()
})

test('a file not uploaded yet is read, and changed, from the journal without waiting for the upload', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  const fh = await vfs.create('/f', 0o644)
  gate.close()
  await vfs.write('/f', fh, Buffer.from('journaled'), 9, 0)
  await vfs.release('/f', fh)
  const r = await vfs.open('/f', constants.O_RDONLY)
  const buf = Buffer.alloc(64)
  assert.equal(await vfs.read('/f', r, buf, 64, 0), 9)
  assert.equal(buf.subarray(0, 9).toString(), 'journaled')
  await vfs.release('/f', r)
  const w = await vfs.open('/f', constants.O_WRONLY)
  await vfs.write('/f', w, Buffer.from('J'), 1, 0)
  await vfs.release('/f', w)
  assert.equal(b.content('/f'), undefined, 'all of it before any upload landed (creating it made no request)')
  gate.open()
  await vfs.journal!.flush('/f')
  assert.equal(b.content('/f')?.toString(), 'Journaled')
  await vfs.close()
})

test('a crash before the upload loses nothing: the next start replays the journal', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const dir = await tmp()
  const a = newVfs(b, dir)
  await writeFileVia(a, '/keep', 'old')
  await writeFileVia(a, '/new', '')
  await a.journal!.flushTree('/')
  const gate = gateWrites(b)
  gate.close()
  await writeFileVia(a, '/keep', 'acknowledged 1', false)
  await writeFileVia(a, '/new', 'acknowledged 2', false)
  assert.equal(b.content('/keep')?.toString(), 'old')
  // kill -9: `a` is never closed; its uploads hang forever; its lock names a dead process.
  const journalDir = path.join(dir, 'journal', (await readdir(path.join(dir, 'journal')))[0])
  await writeFile(path.join(journalDir, 'lock'), '999999999')
  gate.abandon()
  const before = gate.calls
  const v = newVfs(b, dir)
  assert.equal((await v.getattr('/keep')).size, 'acknowledged 1'.length, 'while replaying, attributes come from the journal')
  await v.journal!.flushTree('/')
  assert.equal(b.content('/keep')?.toString(), 'acknowledged 1')
  assert.equal(b.content('/new')?.toString(), 'acknowledged 2')
  assert.equal(gate.calls - before, 2, 'the new start uploaded both journaled files')
  assert.deepEqual((await readdir(journalDir)).filter(n => n !== 'lock'), [], 'the journal is empty after replay')
  await v.close()
})

test('a newer version waiting behind an upload replaces an older one', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  await writeFileVia(vfs, '/f', 'v0')
  await vfs.journal!.flush('/f')
  const gate = gateWrites(b)
  gate.close()
  const fh = await vfs.open('/f', constants.O_RDWR)
  for (const v of ['v1', 'v2', 'v3']) {
    await vfs.write('/f', fh, Buffer.from(v), 2, 0)
    await vfs.flush('/f', fh)
  }
  await vfs.release('/f', fh)
  gate.open()
  await vfs.journal!.flush('/f')
  assert.equal(b.content('/f')?.toString(), 'v3')
  assert.equal(gate.calls, 2, 'v1 was in flight, v2 was replaced by v3')
  await vfs.close()
})

test('unlink drops a version not uploaded yet, so it cannot resurrect the file', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  const fh = await vfs.create('/f', 0o644)
  gate.close()
  await vfs.write('/f', fh, Buffer.from('data'), 4, 0)
  await vfs.flush('/f', fh) // v1: in flight, stuck
  await vfs.write('/f', fh, Buffer.from('DATA'), 4, 0)
  await vfs.release('/f', fh) // v2: queued
  const rm = vfs.unlink('/f')
  assert.equal(await settled(rm), false, 'unlink waits for the upload in flight')
  gate.open()
  await rm
  await vfs.journal!.flushTree('/')
  assert.equal(b.content('/f'), undefined)
  await assert.rejects(vfs.getattr('/f'), { code: 'ENOENT' })
  await vfs.close()
})

test('rename and chmod wait for the upload, so it neither lands under the old name nor undoes the mode', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  await vfs.mkdir('/d', 0o755)
  const fh = await vfs.create('/d/f', 0o644)
  gate.close()
  await vfs.write('/d/f', fh, Buffer.from('content'), 7, 0)
  await vfs.release('/d/f', fh)
  const mv = vfs.rename('/d', '/e')
  assert.equal(await settled(mv), false)
  gate.open()
  await mv
  assert.equal(b.content('/e/f')?.toString(), 'content')
  assert.equal(b.content('/d/f'), undefined)

  gate.close()
  await writeFileVia(vfs, '/e/f', 'again', false)
  const ch = vfs.chmod('/e/f', 0o600)
  gate.open()
  await ch
  await vfs.journal!.flushTree('/')
  assert.equal((await b.stat('/e/f')).mode & 0o777, 0o600)
  assert.equal(b.content('/e/f')?.toString(), 'again')
  await vfs.close()
})

test('a failed upload stays journaled and is retried; fsync reports the failure', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  const fh = await vfs.create('/f', 0o644)
  // The commit's upload fails, and so does the immediate retry fsync asks for: fsync gets the error.
  gate.failNext(2)
  await vfs.write('/f', fh, Buffer.from('precious'), 8, 0)
  await assert.rejects(vfs.fsync('/f', fh, false), { code: 'EIO' })
  await vfs.release('/f', fh)
  await vfs.journal!.flush('/f') // the retry
  assert.equal(b.content('/f')?.toString(), 'precious')
  assert.equal(vfs.stats().writeback!.errors, 2)
  await vfs.close()
})

test('dirty bytes are bounded: close waits while the journal holds more than the limit', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp(), { writebackDirtyMaxBytes: 150 })
  const gate = gateWrites(b)
  const big = 'x'.repeat(100)
  const fh1 = await vfs.create('/a', 0o644)
  const fh2 = await vfs.create('/b', 0o644)
  gate.close()
  await vfs.write('/a', fh1, Buffer.from(big), 100, 0)
  await vfs.release('/a', fh1) // admitted: nothing else was pending
  await vfs.write('/b', fh2, Buffer.from(big), 100, 0)
  const close2 = vfs.release('/b', fh2)
  assert.equal(await settled(close2), false, 'back-pressure: 200 > 150 dirty bytes')
  gate.open()
  await close2
  await vfs.journal!.flushTree('/')
  assert.equal(b.content('/b')?.length, 100)
  await vfs.close()
})

test('without writeback, or on a random-write backend, there is no journal', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const wt = newVfs(b, await tmp(), { writeback: false })
  assert.equal(wt.journal, undefined)
  assert.equal(wt.stats().writeback, undefined)
  await wt.close()
  const local = newVfs(new FakeBackend({ hostFiles: true }), await tmp())
  assert.equal(local.journal, undefined)
  assert.equal(local.stagesWrites, false, 'a local-like backend writes through its file handles')
  await local.close()
})

test('a getattr that races with the last close of a staged file answers from what the close saved', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp(), { attrCacheSize: 0 })
  const fh = await vfs.create('/race', 0o644)
  await vfs.write('/race', fh, Buffer.from('12345'), 5, 0)
  // Hold the backend stat that getattr makes while the file is staged, and close the file meanwhile.
  const stat = b.stat.bind(b)
  let letGo!: () => void
  const held = new Promise<void>(resolve => { letGo = resolve })
  b.stat = async (p: string) => { await held; return await stat(p) }
  const attr = vfs.getattr('/race')
  await vfs.flush('/race', fh)
  await vfs.release('/race', fh)
  letGo()
  assert.equal((await attr).size, 5)
  b.stat = stat
  await vfs.close()
})

test('two opens that stage the same file at once share one staged copy, and none is left behind', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const dir = await tmp()
  const vfs = newVfs(b, dir, { writeback: false })
  await writeFileVia(vfs, '/shared', 'abcdef')
  // Each open downloads the object into a staged copy: hold both downloads until both opens are under way.
  const read = b.read.bind(b)
  let waiting: Array<() => void> = []
  b.read = async (p: string, o: number, n: number) => {
    await new Promise<void>(resolve => { waiting.push(resolve); if (waiting.length === 2) for (const w of waiting.splice(0)) w() })
    return await read(p, o, n)
  }
  const [h1, h2] = await Promise.all([vfs.open('/shared', constants.O_RDWR), vfs.open('/shared', constants.O_RDWR)])
  b.read = read
  await vfs.write('/shared', h1, Buffer.from('X'), 1, 0)
  await vfs.write('/shared', h2, Buffer.from('Y'), 1, 5)
  await vfs.release('/shared', h1)
  await vfs.release('/shared', h2)
  assert.equal((await b.read('/shared', 0, 100)).toString(), 'XbcdeY')
  assert.deepEqual(await readdir(path.join(dir, 'staging')), [], 'no staged copy outlives the last close')
  await vfs.close()
})

test('an upload clears what was cached of the previous version before its journal entry stops answering', async () => {
  // The race this pins: an open between "the entry's file is gone" and "the caches forgot the old size" staged a
  // copy cut to the old size, losing the end of an acknowledged write (the exerciser through high-performance).
  const { Journal } = await import('../../dist/vfs/journal.js')
  const b = new FakeBackend({ randomWrite: false })
  const dir = await tmp()
  const src = path.join(dir, 'src')
  await writeFile(src, 'version two, longer')
  const seen: boolean[] = []
  let record: any
  const journal: any = new Journal({
    dir: path.join(dir, 'journal'),
    backend: b as any,
    maxDirtyBytes: 1 << 20,
    // NB: a sync check on a plain file (no FUSE here): the callback runs synchronously inside the upload.
    onUploaded: () => { seen.push(existsSync(journal.dataFile(record))) }
  })
  const write = b.write.bind(b)
  b.write = async (p: string, source: any, attrs?: any) => {
    record = journal.pending('/f')
    await write(p, source, attrs)
  }
  await journal.commit('/f', src, 19, { mode: 0o100644, uid: 0, gid: 0, mtimeMs: 1 })
  await journal.flush('/f')
  assert.deepEqual(seen, [true], 'told while the entry\'s file still exists')
  assert.equal(existsSync(journal.dataFile(record)), false, 'and the file is gone after')
  assert.equal(b.content('/f')?.toString(), 'version two, longer')
  await journal.close()
})

test('a remote backend with random writes (SFTP-like) stages writes and journals them; O_EXCL stays the server\'s', async () => {
  const b = new FakeBackend()
  const vfs = newVfs(b, await tmp())
  assert.equal(vfs.stagesWrites, true)
  assert.ok(vfs.journal !== undefined)
  const gate = gateWrites(b)
  gate.close()
  await writeFileVia(vfs, '/f', 'journaled first')
  assert.equal(b.content('/f')?.length, 0, 'the file exists on the backend (made by create), its content not uploaded yet')
  assert.equal((await vfs.getattr('/f')).size, 15, 'the journaled size')
  const fh = await vfs.open('/f', constants.O_RDONLY)
  const buf = Buffer.alloc(64)
  const n = await vfs.read('/f', fh, buf, 64, 0)
  assert.equal(buf.subarray(0, n).toString(), 'journaled first', 'a read-only open reads the journaled version')
  await vfs.release('/f', fh)
  await assert.rejects(vfs.create('/f', 0o644, undefined, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR), { code: 'EEXIST' })
  gate.open()
  await vfs.flushAll()
  await vfs.journal!.flushTree('/')
  assert.equal(b.content('/f')?.toString(), 'journaled first', 'uploaded whole')
  await vfs.close()
})

test('writebackDelay: a file rewritten again and again is uploaded once, with its last content; fsync sends it at once', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const vfs = newVfs(b, await tmp(), { writebackDelayMs: 3_600_000 })
  const fh0 = await vfs.create('/f', 0o644)
  await vfs.release('/f', fh0)
  const before = gateWrites(b)
  for (const text of ['one', 'two', 'three']) await writeFileVia(vfs, '/f', text, false)
  assert.equal(await settled(vfs.journal!.flush('/other')), true)
  assert.equal(before.calls, 0, 'nothing uploaded while the delay runs')
  assert.equal((await vfs.getattr('/f')).size, 5, 'the journaled size')
  const fh = await vfs.open('/f', constants.O_RDWR)
  await vfs.fsync('/f', fh, false)
  assert.equal(before.calls, 1, 'fsync sent the waiting entry at once, once')
  assert.equal(b.content('/f')?.toString(), 'three', 'the last content')
  await vfs.release('/f', fh)
  await writeFileVia(vfs, '/g', 'at unmount')
  await vfs.close()
  assert.equal(b.content('/g')?.toString(), 'at unmount', 'an unmount sends what waits')
})

test('a modification time set through an open staged file (cp -p) is what its save records, unless written after', async () => {
  for (const writeback of [false, true]) {
    for (const randomWrite of [false, true]) {
      const b = new FakeBackend({ randomWrite })
      const vfs = newVfs(b, await tmp(), { writeback })
      if (!vfs.stagesWrites) { await vfs.close(); continue }
      const kept = Date.UTC(2020, 0, 2, 3, 4, 5)
      const fh = await vfs.create('/p', 0o644)
      await vfs.write('/p', fh, Buffer.from('copied'), 6, 0)
      await vfs.utimens('/p', kept, kept)
      assert.equal((await vfs.getattr('/p')).mtimeMs, kept, 'getattr of the open file says the time set')
      await vfs.flush('/p', fh)
      await vfs.release('/p', fh)
      await vfs.journal?.flushTree('/')
      assert.equal((await b.stat('/p')).mtimeMs, kept, `the saved file keeps it (writeback=${writeback}, randomWrite=${randomWrite})`)

      const fh2 = await vfs.create('/q', 0o644)
      await vfs.write('/q', fh2, Buffer.from('a'), 1, 0)
      await vfs.utimens('/q', kept, kept)
      await vfs.write('/q', fh2, Buffer.from('b'), 1, 1)
      await vfs.release('/q', fh2)
      await vfs.journal?.flushTree('/')
      assert.ok((await b.stat('/q')).mtimeMs > kept, 'a write after it makes the file modified now')
      await vfs.close()
    }
  }
})

test('a new file stays listed across its upload: the directory listing cached before it is dropped when it lands', async () => {
  const b = new FakeBackend({ randomWrite: false })
  await b.mkdir('/d', 0o755)
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  gate.close()
  await writeFileVia(vfs, '/d/new', 'not uploaded yet')
  assert.deepEqual((await vfs.readdir('/d')).names, ['new'], 'listed while only the journal has it (this caches /d\'s listing without it)')
  gate.open()
  await vfs.journal!.flushTree('/')
  assert.equal(b.content('/d/new')?.toString(), 'not uploaded yet')
  assert.deepEqual((await vfs.readdir('/d')).names, ['new'], 'still listed once uploaded (rm -rf must see it)')
  await vfs.close()
})

test('a new file whose upload lands while its directory is being listed is still listed', async () => {
  const b = new FakeBackend({ randomWrite: false })
  await b.mkdir('/d', 0o755)
  const vfs = newVfs(b, await tmp())
  const gate = gateWrites(b)
  gate.close()
  await writeFileVia(vfs, '/d/new', 'in flight')
  // The backend makes its listing of /d now, before the upload lands (without the file), and answers after it.
  const list = b.list.bind(b)
  let entered!: () => void
  let release!: () => void
  const listed = new Promise<void>(resolve => { entered = resolve })
  const answer = new Promise<void>(resolve => { release = resolve })
  b.list = async (p: string) => { const out = await list(p); entered(); await answer; return out }
  const listing = vfs.readdir('/d')
  await listed
  gate.open()
  await vfs.journal!.flushTree('/')
  release()
  assert.deepEqual((await listing).names, ['new'], 'listed: the journal named it when the listing began')
  await vfs.close()
})
