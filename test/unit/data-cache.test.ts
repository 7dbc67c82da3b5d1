// The data cache: blocks, tiers, validation against the object version, the disk cap under load, eviction
// policies, persistence across restarts. Fetches are counted in memory; the disk tier uses a temp directory.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, stat, writeFile, mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { DataCache } from '../../dist/vfs/data-cache.js'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

const KB = 1024
const B = 64 * KB // small blocks keep the tests fast; the logic does not depend on the size

interface Obj { data: Buffer, version: { size: number, mtimeMs: number, etag?: string } }

function object (size: number, mtimeMs = 1000, etag?: string): Obj {
  return { data: randomBytes(size), version: { size, mtimeMs, etag } }
}

/** A backend stand-in: counts fetches and bytes. */
function backend () {
  const s = { fetches: 0, bytes: 0 }
  const fetcher = (o: Obj) => async (off: number, len: number): Promise<Buffer> => {
    s.fetches++
    const b = Buffer.from(o.data.subarray(off, off + len))
    s.bytes += b.length
    return b
  }
  return { s, fetcher }
}

async function tmp (): Promise<string> { return await tempDir('fsx-data-cache-') }

function cache (o: Partial<ConstructorParameters<typeof DataCache>[0]> = {}): DataCache {
  return new DataCache({ diskBytes: 0, memoryBytes: 0, smallFileBytes: 2 * B, blockBytes: B, policy: 'lru', ttlMs: 0, ...o })
}

async function readAll (c: DataCache, p: string, o: Obj, fetch: (off: number, len: number) => Promise<Buffer>, chunk = 16 * KB): Promise<Buffer> {
  const out = Buffer.alloc(o.version.size)
  for (let pos = 0; pos < o.version.size; pos += chunk) {
    const n = await c.read(p, o.version, out.subarray(pos), Math.min(chunk, o.version.size - pos), pos, fetch)
    assert.equal(n, Math.min(chunk, o.version.size - pos))
  }
  return out
}

/** Bytes of every file under `dir` (including temp files being written). */
async function du (dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true } as any) as any[]) {
    if (!e.isFile()) continue
    const s = await stat(path.join(e.parentPath ?? e.path, e.name)).catch(() => undefined)
    if (s && /\.(p?\d+)(\.tmp.*)?$/.test(e.name)) total += s.size
  }
  return total
}

test('a second read of a small file is served from the memory tier', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const o = object(B + 100)
  const { s, fetcher } = backend()
  assert.ok((await readAll(c, '/f', o, fetcher(o))).equals(o.data))
  assert.equal(s.fetches, 2, 'one fetch per block')
  await c.idle()
  assert.ok((await readAll(c, '/f', o, fetcher(o))).equals(o.data))
  assert.equal(s.fetches, 2)
  const k = c.counters().dataMemory
  assert.equal(k.entries, 2)
  assert.equal(k.bytes, B + 100)
  assert.ok(k.hits > 0)
})

test('a second read of a big file is served from the disk tier', async () => {
  const dir = await tmp()
  const c = cache({ dir, diskBytes: 100 * B, memoryBytes: 10 * B })
  const o = object(10 * B + 7)
  const { s, fetcher } = backend()
  assert.ok((await readAll(c, '/big', o, fetcher(o))).equals(o.data))
  await c.idle()
  const before = s.fetches
  assert.equal(before, 11)
  assert.ok((await readAll(c, '/big', o, fetcher(o))).equals(o.data))
  assert.equal(s.fetches, before, 'no fetch the second time')
  assert.equal(c.counters().dataDisk.entries, 11)
  assert.equal(c.counters().dataMemory.entries, 0, 'big files do not go to the memory tier')
  assert.equal(await du(dir), 10 * B + 7)
  await c.close()
})

test('a sparse read of a big file fetches only the block it touches', async () => {
  const c = cache({ dir: await tmp(), diskBytes: 1000 * B })
  const o = object(200 * B)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(10)
  assert.equal(await c.read('/huge', o.version, buf, 10, 150 * B + 5, fetcher(o)), 10)
  assert.ok(buf.equals(o.data.subarray(150 * B + 5, 150 * B + 15)))
  assert.equal(s.fetches, 1)
  assert.equal(s.bytes, B)
  await c.close()
})

test('a random read of a big file fetches one piece (1/16 block), and a second read in that piece none', async () => {
  const c = cache({ dir: await tmp(), diskBytes: 1000 * B })
  const P = B / 16
  assert.equal(c.pieceBytes, P)
  const o = object(200 * B)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(10)
  assert.equal(await c.read('/huge', o.version, buf, 10, 150 * B + 5, fetcher(o), true), 10)
  assert.ok(buf.equals(o.data.subarray(150 * B + 5, 150 * B + 15)))
  assert.deepEqual(s, { fetches: 1, bytes: P })
  await c.idle()
  assert.equal(await c.read('/huge', o.version, buf, 10, 150 * B + P - 10, fetcher(o), true), 10)
  assert.ok(buf.equals(o.data.subarray(150 * B + P - 10, 150 * B + P)))
  assert.deepEqual(s, { fetches: 1, bytes: P }, 'served from the cached piece')
  // The same bytes read by a sequential reader come from the piece too; a miss beside it fetches the whole block.
  assert.equal(await c.read('/huge', o.version, buf, 10, 150 * B + 5, fetcher(o)), 10)
  assert.equal(s.fetches, 2, 'a sequential reader fetches whole blocks')
  assert.equal(s.bytes, P + B)
  await c.close()
})

test('a random read across two pieces (and two blocks) fetches both pieces and returns the right bytes', async () => {
  const c = cache({ memoryBytes: 1000 * B, smallFileBytes: 1000 * B })
  const P = B / 16
  const o = object(20 * B)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(100)
  assert.equal(await c.read('/f', o.version, buf, 100, 5 * B - 50, fetcher(o), true), 100)
  assert.ok(buf.equals(o.data.subarray(5 * B - 50, 5 * B + 50)))
  assert.deepEqual(s, { fetches: 2, bytes: 2 * P })
  assert.equal(await c.read('/f', o.version, buf, 100, 3 * P - 50, fetcher(o), true), 100)
  assert.ok(buf.equals(o.data.subarray(3 * P - 50, 3 * P + 50)))
  assert.deepEqual(s, { fetches: 4, bytes: 4 * P })
  // Past the end of file: only the bytes there are.
  assert.equal(await c.read('/f', o.version, buf, 100, 20 * B - 30, fetcher(o), true), 30)
  assert.ok(buf.subarray(0, 30).equals(o.data.subarray(20 * B - 30)))
})

test('a random reader dense in one block fetches the whole block next, which then replaces its pieces', async () => {
  const dir = await tmp()
  const c = cache({ dir, diskBytes: 1000 * B })
  const P = B / 16
  const o = object(10 * B)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(8)
  for (const q of [0, 3, 7]) assert.equal(await c.read('/big', o.version, buf, 8, 2 * B + q * P, fetcher(o), true), 8)
  await c.idle()
  assert.deepEqual(s, { fetches: 3, bytes: 3 * P })
  assert.equal(c.counters().dataDisk.entries, 3)
  assert.equal(await c.read('/big', o.version, buf, 8, 2 * B + 12 * P, fetcher(o), true), 8)
  assert.ok(buf.equals(o.data.subarray(2 * B + 12 * P, 2 * B + 12 * P + 8)))
  assert.deepEqual(s, { fetches: 4, bytes: 3 * P + B }, 'the fourth piece of the block brings the whole block')
  await c.idle()
  assert.equal(c.counters().dataDisk.entries, 1, 'the pieces went when the block came')
  assert.equal(c.counters().dataDisk.bytes, B)
  assert.equal(await du(dir), B)
  assert.equal(await c.read('/big', o.version, buf, 8, 2 * B + 3 * P, fetcher(o), true), 8)
  assert.ok(buf.equals(o.data.subarray(2 * B + 3 * P, 2 * B + 3 * P + 8)))
  assert.equal(s.fetches, 4)
  // One random read spanning DENSE (4) pieces of a fresh block fetches the block, not four pieces.
  const big = Buffer.alloc(4 * P)
  assert.equal(await c.read('/big', o.version, big, 4 * P, 6 * B, fetcher(o), true), 4 * P)
  assert.deepEqual(s, { fetches: 5, bytes: 3 * P + 2 * B })
  await c.close()
})

/** A disk-tier cache directory holding one piece (the 6th) of block `idx` of /big, its cache closed. */
async function onePieceOnDisk (idx: number) {
  const dir = await tmp()
  const P = B / 16
  const o = object(10 * B)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(8)
  const c1 = cache({ dir, diskBytes: 1000 * B })
  await c1.read('/big', o.version, buf, 8, idx * B + 5 * P, fetcher(o), true)
  await c1.close()
  return { dir, P, o, s, fetcher, buf }
}

test('cached pieces survive a restart', async () => {
  const { dir, P, o, s, fetcher, buf } = await onePieceOnDisk(4)
  const c2 = cache({ dir, diskBytes: 1000 * B })
  assert.equal(await c2.read('/big', o.version, buf, 8, 4 * B + 5 * P + 1, fetcher(o), true), 8)
  assert.ok(buf.equals(o.data.subarray(4 * B + 5 * P + 1, 4 * B + 5 * P + 9)))
  assert.equal(s.fetches, 1, 'no fetch after the restart')
  assert.equal(c2.counters().dataDisk.bytes, P)
  await c2.close()
})

test('after a crash that left a block and its pieces on disk, the pieces go at the next start', async () => {
  const { dir, o, s, fetcher, buf } = await onePieceOnDisk(2)
  // The block's file, as if stored just before a kill -9 that came before its pieces were removed.
  const files = (await readdir(dir, { recursive: true } as any) as string[]).filter(f => /\.p\d+$/.test(f))
  assert.equal(files.length, 1)
  await writeFile(path.join(dir, files[0].replace(/\.p\d+$/, '.2')), o.data.subarray(2 * B, 3 * B))
  const c2 = cache({ dir, diskBytes: 1000 * B })
  assert.equal(await c2.read('/big', o.version, buf, 8, 2 * B + 100, fetcher(o), true), 8)
  assert.ok(buf.equals(o.data.subarray(2 * B + 100, 2 * B + 108)))
  assert.equal(s.fetches, 1, 'the block is served')
  assert.equal(c2.counters().dataDisk.entries, 1, 'the piece is gone')
  assert.equal(await du(dir), B)
  await c2.close()
})

test('blocks too small to split (under 64 KiB) have no pieces: a random read fetches the block', async () => {
  const c = cache({ memoryBytes: 100 * 16 * KB, blockBytes: 16 * KB, smallFileBytes: 1 })
  assert.equal(c.pieceBytes, 16 * KB)
  const o = object(10 * 16 * KB)
  const { s, fetcher } = backend()
  const buf = Buffer.alloc(8)
  assert.equal(await c.read('/f', o.version, buf, 8, 3 * 16 * KB + 100, fetcher(o), true), 8)
  assert.deepEqual(s, { fetches: 1, bytes: 16 * KB })
})

test('adopt: a file just uploaded is taken from its local copy; a read at once waits for it rather than fetch', async () => {
  const dir = await tmp()
  const c = cache({ dir, diskBytes: 100 * B, memoryBytes: 10 * B })
  const o = object(5 * B + 3)
  const local = path.join(dir, 'uploaded.bin')
  await writeFile(local, o.data)
  const { s, fetcher } = backend()
  await c.adopt('/up', o.version, local)
  await rm(local) // the caller may remove it once adopt resolved
  assert.ok((await readAll(c, '/up', o, fetcher(o))).equals(o.data))
  assert.equal(s.fetches, 0, 'no fetch')
  await c.idle()
  assert.equal(c.counters().dataDisk.bytes, 5 * B + 3)
  // Another version of the path is fetched, never served from the adopted blocks.
  const o2 = object(5 * B + 3, 2000)
  assert.ok((await readAll(c, '/up', o2, fetcher(o2))).equals(o2.data))
  assert.equal(s.fetches, 6)
  // Too big for its tier (over a quarter of it): not taken.
  const huge = object(30 * B)
  await writeFile(local, huge.data)
  await c.adopt('/huge', huge.version, local)
  await c.idle()
  assert.equal(c.cachedBytes(['/huge']), 0)
  await c.close()
})

test('adopt: an invalidation while the copy runs stops it; nothing of the old version is served', async () => {
  const dir = await tmp()
  const c = cache({ dir, diskBytes: 100 * B })
  const o = object(20 * B)
  const local = path.join(dir, 'uploaded.bin')
  await writeFile(local, o.data)
  await c.adopt('/up', o.version, local)
  c.invalidate('/up')
  await c.idle()
  assert.equal(c.cachedBytes(['/up']), 0)
  assert.equal(await du(dir), 0)
  await c.close()
})

test('a read across a block boundary and at end of file', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const o = object(2 * B + 10)
  const { fetcher } = backend()
  const buf = Buffer.alloc(100)
  assert.equal(await c.read('/f', o.version, buf, 100, B - 50, fetcher(o)), 100)
  assert.ok(buf.equals(o.data.subarray(B - 50, B + 50)))
  assert.equal(await c.read('/f', o.version, buf, 100, 2 * B, fetcher(o)), 10, 'short only at end of file')
  assert.equal(await c.read('/f', o.version, buf, 100, 2 * B + 10, fetcher(o)), 0)
})

test('a new version (size or mtime) drops the cached blocks; with an ETag the ETag decides', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const { s, fetcher } = backend()
  const v1 = object(100, 1000)
  await readAll(c, '/f', v1, fetcher(v1))
  await c.idle()
  const v2 = { data: randomBytes(100), version: { size: 100, mtimeMs: 2000 } }
  assert.ok((await readAll(c, '/f', v2, fetcher(v2))).equals(v2.data), 'same size, new mtime: new content')
  assert.equal(s.fetches, 2)

  const e1 = object(100, 1000, '"a"')
  await readAll(c, '/g', e1, fetcher(e1))
  await c.idle()
  const sameTag = { data: e1.data, version: { size: 100, mtimeMs: 5000, etag: '"a"' } }
  await readAll(c, '/g', sameTag, fetcher(sameTag))
  assert.equal(s.fetches, 3, 'same ETag, other mtime: reused')
  const newTag = { data: randomBytes(100), version: { size: 100, mtimeMs: 1000, etag: '"b"' } }
  assert.ok((await readAll(c, '/g', newTag, fetcher(newTag))).equals(newTag.data))
  assert.equal(s.fetches, 4, 'new ETag, same mtime: fetched')
})

test('invalidate drops a path, invalidateTree a directory, not a sibling sharing the prefix', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const { s, fetcher } = backend()
  const o = object(100)
  for (const p of ['/d/a', '/d/e/b', '/dz']) await readAll(c, p, o, fetcher(o))
  await c.idle()
  c.invalidate('/d/a')
  await readAll(c, '/d/a', o, fetcher(o))
  assert.equal(s.fetches, 4)
  c.invalidateTree('/d')
  await c.idle()
  for (const p of ['/d/a', '/d/e/b', '/dz']) await readAll(c, p, o, fetcher(o))
  assert.equal(s.fetches, 6, '/dz was kept')
})

test('a block fetched while its object is invalidated (a write through the mount) is not cached', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const o = object(100)
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let fetches = 0
  const slow = async (off: number, len: number): Promise<Buffer> => { fetches++; await gate; return Buffer.from(o.data.subarray(off, off + len)) }
  const buf = Buffer.alloc(100)
  const r = c.read('/f', o.version, buf, 100, 0, slow)
  await new Promise(resolve => setImmediate(resolve))
  c.invalidate('/f')
  release()
  assert.equal(await r, 100)
  await c.idle()
  await c.read('/f', o.version, buf, 100, 0, slow)
  assert.equal(fetches, 2)
})

test('a short block (the object shrank behind our back) is served but not cached', async () => {
  const c = cache({ memoryBytes: 10 * B })
  const o = object(100)
  let fetches = 0
  const shrunk = async (off: number, len: number): Promise<Buffer> => { fetches++; return Buffer.from(o.data.subarray(off, Math.min(off + len, 60))) }
  const buf = Buffer.alloc(100)
  assert.equal(await c.read('/f', o.version, buf, 100, 0, shrunk), 60)
  await c.idle()
  assert.equal(await c.read('/f', o.version, buf, 100, 0, shrunk), 60)
  assert.equal(fetches, 2)
})

test('concurrent readers of one block share one fetch', async () => {
  const c = cache({ dir: await tmp(), diskBytes: 10 * B })
  const o = object(4 * B)
  const { s, fetcher } = backend()
  const f = fetcher(o)
  await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    const buf = Buffer.alloc(1000)
    await c.read('/f', o.version, buf, 1000, i * 1000, f)
    assert.ok(buf.equals(o.data.subarray(i * 1000, i * 1000 + 1000)))
  }))
  assert.equal(s.fetches, 1)
  await c.close()
})

test('the disk tier never exceeds its cap, even with many files open and read at once', async () => {
  const dir = await tmp()
  const cap = 5 * B + 123
  const c = cache({ dir, diskBytes: cap, policy: 'lru' })
  const { fetcher } = backend()
  const files = Array.from({ length: 24 }, () => object(3 * B + 17))
  let maxSeen = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      maxSeen = Math.max(maxSeen, await du(dir))
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  for (let round = 0; round < 2; round++) {
    // Every file "open" at once, each read in 16K requests, interleaved.
    await Promise.all(files.map(async (o, i) => {
      const got = await readAll(c, `/f${i}`, o, fetcher(o))
      assert.ok(got.equals(o.data), `file ${i} reads back intact`)
      const k = c.counters().dataDisk
      assert.ok((k.bytes ?? 0) <= cap, `accounted ${k.bytes} <= ${cap}`)
    }))
  }
  await c.idle()
  sampling = false
  await sampler
  assert.ok(maxSeen <= cap, `on disk at most ${maxSeen} <= ${cap}`)
  assert.ok(await du(dir) <= cap)
  assert.ok(c.counters().dataDisk.evictions > 0)
  await c.close()
})

/** Reads blocks of four one-block files in `pattern` order through a memory tier of three blocks. */
async function evictedBy (policy: 'lru' | 'lfu' | 'ttl' | 'hybrid', pattern: string[], clock?: { now: () => number }): Promise<string[]> {
  const c = cache({ memoryBytes: 3 * B, smallFileBytes: B, policy, ttlMs: 1000, now: clock?.now })
  const objs = Object.fromEntries(['a', 'b', 'c', 'd'].map(n => [n, object(B)]))
  const fetched: string[] = []
  const buf = Buffer.alloc(10)
  for (const n of pattern) {
    const o = objs[n]
    await c.read(`/${n}`, o.version, buf, 10, 0, async (off, len) => { fetched.push(n); return Buffer.from(o.data.subarray(off, off + len)) })
    await c.idle()
  }
  return fetched
}

test('eviction policy lru: the least recently used block goes', async () => {
  // a b c a d → b evicted; then b is fetched again, a is not.
  assert.deepEqual(await evictedBy('lru', ['a', 'b', 'c', 'a', 'd', 'a', 'b']), ['a', 'b', 'c', 'd', 'b'])
})

test('eviction policy lfu: the least frequently used block goes', async () => {
  // b is used three times, a once: a goes even though b is older.
  assert.deepEqual(await evictedBy('lfu', ['b', 'b', 'b', 'a', 'c', 'd', 'b', 'a']), ['b', 'a', 'c', 'd', 'a'])
})

test('eviction policy ttl: the oldest block goes, and a block expires after its lifetime', async () => {
  let t = 0
  const clock = { now: () => t }
  // a b c, a used again, d evicts a anyway (first in), a is fetched again.
  assert.deepEqual(await evictedBy('ttl', ['a', 'b', 'c', 'a', 'd', 'a'], clock), ['a', 'b', 'c', 'd', 'a'])
  const c = cache({ memoryBytes: 3 * B, policy: 'ttl', ttlMs: 1000, now: clock.now })
  const o = object(100)
  let n = 0
  const f = async (off: number, len: number): Promise<Buffer> => { n++; return Buffer.from(o.data.subarray(off, off + len)) }
  const buf = Buffer.alloc(10)
  await c.read('/x', o.version, buf, 10, 0, f); await c.idle()
  t += 999
  await c.read('/x', o.version, buf, 10, 0, f)
  assert.equal(n, 1)
  t += 1
  await c.read('/x', o.version, buf, 10, 0, f)
  assert.equal(n, 2, 'expired after its lifetime')
})

test('eviction policy hybrid: blocks read twice survive a scan of blocks read once', async () => {
  // a and b read twice (protected), then a scan c d c d: under hybrid the scan evicts itself, under lru a and b.
  const pattern = ['a', 'a', 'b', 'b', 'c', 'd', 'c', 'd', 'a', 'b']
  assert.deepEqual(await evictedBy('hybrid', pattern), ['a', 'b', 'c', 'd', 'c', 'd'])
  assert.deepEqual(await evictedBy('lru', pattern), ['a', 'b', 'c', 'd', 'a', 'b'])
})

test('the disk tier survives a restart: blocks and eviction order come back, stale objects are dropped', async () => {
  const dir = await tmp()
  const { s, fetcher } = backend()
  const a = object(3 * B)
  const b = object(3 * B)
  const c1 = cache({ dir, diskBytes: 6 * B })
  await readAll(c1, '/a', a, fetcher(a))
  await readAll(c1, '/b', b, fetcher(b))
  await readAll(c1, '/a', a, fetcher(a)) // a is now the most recently used
  await c1.close()
  assert.equal(s.fetches, 6)

  const c2 = cache({ dir, diskBytes: 6 * B })
  assert.ok((await readAll(c2, '/a', a, fetcher(a))).equals(a.data))
  assert.ok((await readAll(c2, '/b', b, fetcher(b))).equals(b.data))
  assert.equal(s.fetches, 6, 'no fetch after the restart')
  const changed = { data: randomBytes(3 * B), version: { size: 3 * B, mtimeMs: 9999 } }
  assert.ok((await readAll(c2, '/b', changed, fetcher(changed))).equals(changed.data), 'a changed object is fetched anew')
  assert.equal(s.fetches, 9)
  await c2.close()
})

test('after a crash (no index, stray temp and orphan files) the disk tier is rebuilt from the directory', async () => {
  const dir = await tmp()
  const { s, fetcher } = backend()
  const a = object(2 * B)
  const c1 = cache({ dir, diskBytes: 10 * B })
  await readAll(c1, '/a', a, fetcher(a))
  await c1.idle()
  // Simulate kill -9: no close (the lock stays with a dead pid), a half-written block, an orphan block.
  const sub = (await readdir(dir, { withFileTypes: true })).find(e => e.isDirectory())!.name
  await writeFile(path.join(dir, sub, 'ffffffffffffffffffffffff-zz.0'), 'orphan')
  await writeFile(path.join(dir, sub, 'ffffffffffffffffffffffff-zz.1.tmpabc'), 'partial')
  await writeFile(path.join(dir, 'lock'), '999999999')
  const c2 = cache({ dir, diskBytes: 10 * B })
  assert.ok((await readAll(c2, '/a', a, fetcher(a))).equals(a.data))
  assert.equal(s.fetches, 2, 'blocks written before the crash are reused')
  const names = await readdir(path.join(dir, sub))
  assert.ok(!names.some(n => n.startsWith('ffff')), `strays removed: ${names.join(' ')}`)
  await c2.close()
  await c1.close()
})

test('a smaller cap at restart evicts down to it', async () => {
  const dir = await tmp()
  const { fetcher } = backend()
  const a = object(6 * B)
  const c1 = cache({ dir, diskBytes: 10 * B })
  await readAll(c1, '/a', a, fetcher(a))
  await c1.close()
  const c2 = cache({ dir, diskBytes: 2 * B })
  await c2.idle()
  assert.ok((c2.counters().dataDisk.bytes ?? 0) <= 2 * B)
  assert.ok(await du(dir) <= 2 * B)
  await c2.close()
})

test('a second cache on a directory in use by a live process leaves its disk tier off', async () => {
  const dir = await tmp()
  const reasons: string[] = []
  const c1 = cache({ dir, diskBytes: 10 * B })
  const o = object(3 * B)
  const { fetcher } = backend()
  await readAll(c1, '/a', o, fetcher(o))
  const c2 = cache({ dir, diskBytes: 10 * B, onDiskUnavailable: r => reasons.push(r) })
  await c2.idle()
  assert.equal(reasons.length, 1)
  assert.match(reasons[0], /in use/)
  assert.ok((await readAll(c2, '/a', o, fetcher(o))).equals(o.data), 'reads still work')
  await c2.close()
  await c1.close()
})

test('an unwritable cache directory leaves the disk tier off, reads still work', async () => {
  const base = await tmp()
  await writeFile(path.join(base, 'file'), 'x')
  const reasons: string[] = []
  const c = cache({ dir: path.join(base, 'file', 'data'), diskBytes: 10 * B, onDiskUnavailable: r => reasons.push(r) })
  const o = object(3 * B)
  const { fetcher } = backend()
  assert.ok((await readAll(c, '/a', o, fetcher(o))).equals(o.data))
  assert.equal(reasons.length, 1)
  await c.close()
  await rm(base, { recursive: true, force: true })
  await mkdir(base)
})

for (const policy of ['lru', 'lfu', 'ttl', 'hybrid'] as const) {
  test(`pinned files are never evicted (${policy}); the cap still holds; unpinned they are evictable again`, async () => {
    const dir = await tmp()
    const c = cache({ dir, diskBytes: 8 * B, policy, ttlMs: 3_600_000 })
    const { s, fetcher } = backend()
    const pinned = object(4 * B)
    await c.pin(['/pinned'], true)
    await readAll(c, '/pinned', pinned, fetcher(pinned))
    await c.idle()
    // Stream 16 blocks of other files through a cache of 8: everything unpinned is evicted, the pin is not.
    for (let i = 0; i < 4; i++) {
      const o = object(4 * B)
      await readAll(c, `/scan${i}`, o, fetcher(o))
      await c.idle()
      assert.ok(c.counters().dataDisk.bytes! <= 8 * B, 'never over the cap')
    }
    assert.equal(c.counters().dataDisk.pinnedBytes, 4 * B)
    const before = s.fetches
    assert.ok((await readAll(c, '/pinned', pinned, fetcher(pinned))).equals(pinned.data))
    assert.equal(s.fetches, before, 'the pinned file is read without a fetch')

    // A cache full of pins serves new reads but caches none of them.
    await c.pin(['/pinned2'], true)
    const second = object(4 * B)
    await readAll(c, '/pinned2', second, fetcher(second))
    await c.idle()
    const third = object(2 * B)
    await c.pin(['/pinned3'], true)
    assert.ok((await readAll(c, '/pinned3', third, fetcher(third))).equals(third.data), 'served although nothing can be evicted')
    await c.idle()
    assert.ok(c.counters().dataDisk.bytes! <= 8 * B)
    assert.equal(c.cachedBytes(['/pinned3']), 0)

    await c.pin(['/pinned', '/pinned2', '/pinned3'], false)
    const o = object(8 * B)
    await readAll(c, '/after', o, fetcher(o))
    await c.idle()
    assert.equal(c.cachedBytes(['/pinned']), 0, 'unpinned blocks are evicted like any other')
    await c.close()
    await rm(dir, { recursive: true, force: true })
  })
}

test('pins survive a restart, a crash included', async () => {
  const dir = await tmp()
  const { s, fetcher } = backend()
  const pinned = object(4 * B)
  const c1 = cache({ dir, diskBytes: 8 * B })
  await c1.pin(['/keep'], true)
  await readAll(c1, '/keep', pinned, fetcher(pinned))
  await c1.idle()
  // Simulate kill -9: no close (no index written; the lock stays with a dead pid).
  await writeFile(path.join(dir, 'lock'), '999999999')
  const c2 = cache({ dir, diskBytes: 8 * B })
  for (let i = 0; i < 3; i++) {
    const o = object(4 * B)
    await readAll(c2, `/scan${i}`, o, fetcher(o))
    await c2.idle()
  }
  const before = s.fetches
  await readAll(c2, '/keep', pinned, fetcher(pinned))
  assert.equal(s.fetches, before, 'still cached: the pin came back with the cache')
  await c2.close()
  await c1.close()
  await rm(dir, { recursive: true, force: true })
})
