// Sequential readahead: detection after three sequential reads, a window that grows while access stays sequential,
// parallel prefetches, random access stopping it, used/wasted accounting; then through the VFS on an S3-like backend.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Readahead, TRIGGER, MAX_PARALLEL } from '../../dist/vfs/readahead.js'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

const B = 1024 * 1024
const R = 128 * 1024

function counters () { return { triggered: 0, bytesUsed: 0, bytesWasted: 0 } }

test('prefetching starts at the third sequential read, two blocks ahead', () => {
  const c = counters()
  const ra = new Readahead(8 * B, B, c)
  assert.equal(TRIGGER, 3)
  assert.deepEqual(ra.onRead(0, R, 100 * B), [])
  assert.deepEqual(ra.onRead(R, R, 100 * B), [])
  assert.deepEqual(ra.onRead(2 * R, R, 100 * B), [1, 2])
  assert.equal(c.triggered, 1)
  assert.deepEqual(ra.onRead(3 * R, R, 100 * B), [], 'nothing new while the window is requested')
})

test('a read is random unless it is the first at offset 0 or starts near where the last one ended', () => {
  const ra = new Readahead(0, B, counters())
  assert.deepEqual(ra.onRead(0, R, 100 * B), [], 'no prefetching with no window')
  assert.equal(ra.random, false, 'the first read at 0')
  ra.onRead(R, R, 100 * B)
  assert.equal(ra.random, false)
  ra.onRead(50 * B, 4096, 100 * B)
  assert.equal(ra.random, true, 'a jump')
  ra.onRead(50 * B + 4096 + 128 * 1024, 4096, 100 * B)
  assert.equal(ra.random, false, 'a small skip forward (kernel reads out of order) is not random')
  ra.onRead(50 * B - 100 * 1024, 4096, 100 * B)
  assert.equal(ra.random, false, 'nor a small step back')
  ra.onRead(7 * B, 4096, 100 * B)
  assert.equal(ra.random, true)
  const fresh = new Readahead(8 * B, B, counters())
  fresh.onRead(33 * B, 4096, 100 * B)
  assert.equal(fresh.random, true, 'a first read elsewhere than at 0')
})

test('the window doubles each time a prefetched block is read, up to the cap, with at most MAX_PARALLEL in flight', () => {
  const c = counters()
  const ra = new Readahead(8 * B, B, c)
  const size = 1000 * B
  const requested: number[] = []
  let pos = 0
  const read = (): void => {
    for (const i of ra.onRead(pos, R, size)) { requested.push(i); ra.started(i); ra.finished(i, B) }
    pos += R
  }
  for (let i = 0; i < 8; i++) read() // block 0 read; blocks 1, 2 prefetched
  assert.deepEqual(requested, [1, 2])
  read() // reads into block 1: window 4 blocks → up to block 5
  assert.deepEqual(requested, [1, 2, 3, 4, 5])
  for (let i = 0; i < 8 * 40; i++) read()
  const ahead = Math.max(...requested) - Math.floor(pos / B)
  assert.ok(ahead <= 8 + 1, `never more than the 8 MiB window ahead (${ahead} blocks)`)
  assert.ok(ahead >= 7, `the window reached the cap (${ahead} blocks ahead)`)
  assert.equal(new Set(requested).size, requested.length, 'no block requested twice')
  assert.equal(c.triggered, 1)

  const ra2 = new Readahead(64 * B, B, counters())
  let p2 = 0
  const out: number[] = []
  for (let i = 0; i < 3 + 8 * 6; i++) { for (const b of ra2.onRead(p2, R, size)) { out.push(b); ra2.started(b) } p2 += R }
  assert.ok(ra2.pending <= MAX_PARALLEL, `in flight ${ra2.pending} <= ${MAX_PARALLEL}`)
})

test('random access stops prefetching until a new sequential streak', () => {
  const c = counters()
  const ra = new Readahead(8 * B, B, c)
  for (let i = 0; i < 3; i++) ra.onRead(i * R, R, 100 * B)
  assert.equal(c.triggered, 1)
  assert.deepEqual(ra.onRead(50 * B, R, 100 * B), [], 'a jump is random access')
  assert.deepEqual(ra.onRead(50 * B + R, R, 100 * B), [])
  assert.deepEqual(ra.onRead(7 * B, R, 100 * B), [])
  assert.deepEqual(ra.onRead(7 * B + R, R, 100 * B), [])
  assert.deepEqual(ra.onRead(7 * B + 2 * R, R, 100 * B), [8, 9], 'a new streak starts it again')
  assert.equal(c.triggered, 2)
})

test('prefetched bytes are used when read, wasted when the handle closes without reading them', () => {
  const c = counters()
  const ra = new Readahead(8 * B, B, c)
  let blocks: number[] = []
  for (let i = 0; i < 3; i++) blocks = ra.onRead(i * R, R, 100 * B)
  assert.deepEqual(blocks, [1, 2])
  for (const b of blocks) ra.started(b)
  ra.finished(1, B)
  ra.onRead(B, R, 100 * B) // block 1 read after it landed
  assert.equal(c.bytesUsed, B)
  ra.onRead(2 * B, R, 100 * B) // random jump into block 2 while it is in flight: used when it lands
  ra.finished(2, B)
  assert.equal(c.bytesUsed, 2 * B)
  const more = ra.onRead(2 * B + R, R, 100 * B)
  assert.deepEqual(more, [])
  const c2 = counters()
  const ra2 = new Readahead(8 * B, B, c2)
  for (let i = 0; i < 3; i++) for (const b of ra2.onRead(i * R, R, 100 * B)) { ra2.started(b); ra2.finished(b, B) }
  ra2.close()
  assert.equal(c2.bytesWasted, 2 * B)
})

test('a window smaller than a block means no readahead', () => {
  const c = counters()
  const ra = new Readahead(B - 1, B, c)
  for (let i = 0; i < 10; i++) assert.deepEqual(ra.onRead(i * R, R, 100 * B), [])
  assert.equal(c.triggered, 0)
})

async function vfsOn (backend: FakeBackend, prefetchMaxBytes: number): Promise<Vfs> {
  return new Vfs(backend as any, {
    writeback: false, consistency: 'session', xattrCacheSize: 0, xattrCacheTtlMs: 0,
    dataCacheSize: 256 * B, dataCacheMemory: 16 * B, dataCacheSmallFile: B, dataCachePolicy: 'lru',
    prefetchMaxBytes, cacheDir: await tempDir('fsx-readahead-')
  } as any)
}

test('through the VFS: a sequential reader finds its blocks prefetched, as parallel ranged reads', async () => {
  const b = new FakeBackend({ randomWrite: false })
  const blob = randomBytes(24 * B + 5)
  b.put('/big', blob)
  const vfs = await vfsOn(b, 8 * B)
  // Slow the backend a little so prefetches overlap, and record the peak of concurrent reads.
  let inflight = 0
  let peak = 0
  const read = b.read.bind(b)
  b.read = async (p: string, off: number, len: number) => {
    inflight++; peak = Math.max(peak, inflight)
    await new Promise(resolve => setTimeout(resolve, 5))
    try { return await read(p, off, len) } finally { inflight-- }
  }
  const fh = await vfs.open('/big', constants.O_RDONLY)
  const out = Buffer.alloc(blob.length)
  for (let pos = 0; pos < blob.length; pos += R) await vfs.read('/big', fh, out.subarray(pos), Math.min(R, blob.length - pos), pos)
  await vfs.release('/big', fh)
  await vfs.data!.idle()
  assert.ok(out.equals(blob))
  const s = vfs.stats()
  assert.equal(s.readahead!.triggered, 1)
  assert.ok(s.readahead!.bytesUsed >= 20 * B, `prefetched bytes used: ${s.readahead!.bytesUsed}`)
  assert.ok(peak > 1 && peak <= 8 + 1, `parallel ranged reads: peak ${peak}`)
  assert.equal(b.count('read'), 25, 'each block fetched once')
  const disk = s.caches.dataDisk
  assert.ok(disk.hits > disk.misses * 4, `mostly hits: ${disk.hits} hits, ${disk.misses} misses`)
  await vfs.close()
})

test('through the VFS: a random reader triggers no readahead', async () => {
  const b = new FakeBackend({ randomWrite: false })
  b.put('/big', randomBytes(32 * B))
  const vfs = await vfsOn(b, 8 * B)
  const fh = await vfs.open('/big', constants.O_RDONLY)
  const buf = Buffer.alloc(4096)
  for (const blk of [7, 3, 30, 12, 0, 25, 18, 9]) await vfs.read('/big', fh, buf, 4096, blk * B + 100)
  await vfs.release('/big', fh)
  assert.equal(vfs.stats().readahead!.triggered, 0)
  assert.equal(b.count('read'), 8)
  assert.equal(b.readBytes, 8 * 64 * 1024, 'each random 4 KiB read fetched a 64 KiB piece, not a 1 MiB block')
  await vfs.close()
})

for (const prefetch of [8 * B, 0]) {
  test(`through the VFS (prefetchMax ${prefetch}): a file read from its start fetches whole blocks, a random reader pieces`, async () => {
    const b = new FakeBackend({ randomWrite: false })
    const blob = randomBytes(32 * B)
    b.put('/big', blob)
    const vfs = await vfsOn(b, prefetch)
    const fh = await vfs.open('/big', constants.O_RDONLY)
    const buf = Buffer.alloc(4096)
    await vfs.read('/big', fh, buf, 4096, 0)
    assert.ok(buf.equals(blob.subarray(0, 4096)))
    assert.equal(b.readBytes, B, 'the first read at offset 0 fetches the whole block')
    await vfs.read('/big', fh, buf, 4096, 20 * B + 7)
    assert.ok(buf.equals(blob.subarray(20 * B + 7, 20 * B + 7 + 4096)))
    assert.equal(b.readBytes, B + 64 * 1024)
    await vfs.release('/big', fh)
    await vfs.close()
  })
}
