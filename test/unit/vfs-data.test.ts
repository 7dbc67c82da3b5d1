// The VFS's data cache on whole-object backends: a second read of a file makes no backend read (counted by the
// memory fixture plugin's own counters), changes through the VFS or behind it are seen per consistency level, and
// the cache survives a restart of the VFS.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Vfs } from '../../dist/vfs/vfs.js'
import { fsxError } from '../../dist/errors.js'
import { memoryBackend } from '../fixtures/fsx-backend-memory/memory.js'
import { tempDirs } from './helpers/tmp.ts'
import { FakeBackend } from './helpers/fake-backend.ts'

const tempDir = tempDirs()

const MiB = 1024 * 1024
let stores = 0

async function memBackend (): Promise<any> {
  const raw = `mem://vfs-data-${process.pid}-${stores++}`
  return await memoryBackend.create({ scheme: 'mem', raw, url: new URL(raw) }, {}, { fsxError })
}

function vfsOn (backend: any, cacheDir: string, o: Record<string, unknown> = {}): Vfs {
  return new Vfs(backend, {
    writeback: false,
    consistency: 'session',
    xattrCacheSize: 0,
    xattrCacheTtlMs: 0,
    attrCacheSize: 1000,
    attrCacheTtlMs: 60_000,
    dataCacheSize: 64 * MiB,
    dataCacheMemory: 8 * MiB,
    dataCacheSmallFile: MiB,
    dataCachePolicy: 'hybrid',
    cacheDir,
    ...o
  } as any)
}

/** What `cat` does: open read-only, read 128K at a time to EOF, close. */
async function cat (vfs: Vfs, p: string): Promise<Buffer> {
  const fh = await vfs.open(p, constants.O_RDONLY)
  const chunks: Buffer[] = []
  try {
    for (let pos = 0; ; pos += 128 * 1024) {
      const buf = Buffer.alloc(128 * 1024)
      const n = await vfs.read(p, fh, buf, buf.length, pos)
      if (n === 0) break
      chunks.push(buf.subarray(0, n))
    }
  } finally {
    await vfs.release(p, fh)
  }
  return Buffer.concat(chunks)
}

async function put (vfs: Vfs, p: string, data: Buffer): Promise<void> {
  const fh = await vfs.create(p, 0o644)
  await vfs.write(p, fh, data, data.length, 0)
  await vfs.flush(p, fh)
  await vfs.release(p, fh)
}

test('a second cat of a large file through a whole-object backend makes no backend read', async () => {
  const backend = await memBackend()
  const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'))
  const blob = randomBytes(12 * MiB + 5)
  await put(vfs, '/big.bin', blob)
  const r0 = backend.counters().reads
  assert.ok((await cat(vfs, '/big.bin')).equals(blob))
  const r1 = backend.counters().reads
  assert.equal(r1 - r0, 13, 'the first cat reads 1 MiB blocks, not 128K requests')
  assert.ok((await cat(vfs, '/big.bin')).equals(blob))
  assert.equal(backend.counters().reads, r1, 'the second cat made no backend read')
  await vfs.data!.idle()
  const s = vfs.stats().caches
  assert.equal(s.dataDisk.entries, 13)
  assert.ok(s.dataDisk.hits >= 96)
  await vfs.close()
})

for (const writeback of [false, true]) {
  test(`what the VFS uploads (${writeback ? 'write-back' : 'write-through'}) is kept in the data cache: reading it back fetches nothing`, async () => {
    const b = new FakeBackend({ randomWrite: false, etag: true, writeAnswers: true })
    const vfs = vfsOn(b, await tempDir('fsx-vfs-data-'), { writeback })
    const big = randomBytes(3 * MiB + 7)
    await put(vfs, '/big.bin', big)
    await put(vfs, '/small', Buffer.from('small file'))
    await vfs.drain()
    await vfs.data!.idle()
    assert.ok((await cat(vfs, '/big.bin')).equals(big))
    assert.equal((await cat(vfs, '/small')).toString(), 'small file')
    assert.equal(b.count('read'), 0, 'no backend read')
    assert.equal(vfs.stats().caches.dataDisk.bytes, big.length, 'the big file in the disk tier')
    assert.equal(vfs.stats().caches.dataMemory.bytes, 10, 'the small one in memory')
    // Changed behind the VFS: the new version is fetched, never the kept one.
    b.put('/small', 'changed behind')
    assert.equal((await cat(vfs, '/small')).toString(), 'changed behind')
    assert.equal(b.count('read'), 1)
    // Rewritten through the VFS, then written again while open: the last upload's content is what is kept.
    const fh = await vfs.open('/big.bin', constants.O_RDWR)
    await vfs.write('/big.bin', fh, Buffer.from('HEAD'), 4, 0)
    await vfs.flush('/big.bin', fh)
    await vfs.write('/big.bin', fh, Buffer.from('TAIL'), 4, big.length - 4)
    await vfs.release('/big.bin', fh)
    await vfs.drain()
    await vfs.data!.idle()
    const want = Buffer.concat([Buffer.from('HEAD'), big.subarray(4, big.length - 4), Buffer.from('TAIL')])
    const reads = b.count('read')
    assert.ok((await cat(vfs, '/big.bin')).equals(want))
    assert.equal(b.count('read'), reads, 'the rewritten file is read back from the cache too')
    await vfs.close()
  })
}

test('a backend whose write answers nothing has nothing kept: reading back fetches', async () => {
  const b = new FakeBackend({ randomWrite: false, etag: true })
  const vfs = vfsOn(b, await tempDir('fsx-vfs-data-'))
  await put(vfs, '/f', Buffer.from('content'))
  assert.equal((await cat(vfs, '/f')).toString(), 'content')
  assert.equal(b.count('read'), 1)
  await vfs.close()
})

test('small files are served from the memory tier the second time', async () => {
  const backend = await memBackend()
  const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'))
  for (let i = 0; i < 20; i++) await put(vfs, `/s${i}`, Buffer.from(`small file ${i}`))
  for (let i = 0; i < 20; i++) await cat(vfs, `/s${i}`)
  const r = backend.counters().reads
  for (let i = 0; i < 20; i++) assert.equal((await cat(vfs, `/s${i}`)).toString(), `small file ${i}`)
  assert.equal(backend.counters().reads, r)
  assert.equal(vfs.stats().caches.dataMemory.entries, 20)
  await vfs.close()
})

test('a write through the VFS replaces the cached content', async () => {
  const backend = await memBackend()
  const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'))
  await put(vfs, '/f', Buffer.from('first version'))
  assert.equal((await cat(vfs, '/f')).toString(), 'first version')
  const fh = await vfs.open('/f', constants.O_RDWR)
  await vfs.write('/f', fh, Buffer.from('FIRST'), 5, 0)
  await vfs.release('/f', fh)
  assert.equal((await cat(vfs, '/f')).toString(), 'FIRST version')
  await vfs.truncate('/f', 5)
  assert.equal((await cat(vfs, '/f')).toString(), 'FIRST')
  await vfs.rename('/f', '/g')
  assert.equal((await cat(vfs, '/g')).toString(), 'FIRST')
  await put(vfs, '/f', Buffer.from('new f'))
  assert.equal((await cat(vfs, '/f')).toString(), 'new f')
  await vfs.close()
})

test('session: an object changed behind the VFS is fetched again at the next open; eventual: after the TTL', async () => {
  let t = 0
  const now = (): number => t
  for (const consistency of ['session', 'eventual'] as const) {
    const backend = await memBackend()
    const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'), { consistency, now, attrCacheTtlMs: 5000 })
    await backend.write('/f', Buffer.from('old content'))
    assert.equal((await cat(vfs, '/f')).toString(), 'old content')
    t += 10
    await backend.write('/f', Buffer.from('NEW CONTENT!'))
    if (consistency === 'session') {
      assert.equal((await cat(vfs, '/f')).toString(), 'NEW CONTENT!')
    } else {
      assert.equal((await cat(vfs, '/f')).toString(), 'old content', 'eventual: served from the cache within the TTL')
      t += 5000
      assert.equal((await cat(vfs, '/f')).toString(), 'NEW CONTENT!')
    }
    await vfs.close()
  }
})

test('strong: without an ETag, cached blocks serve one open only', async () => {
  const backend = await memBackend()
  const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'), { consistency: 'strong' })
  await put(vfs, '/f', randomBytes(3 * MiB))
  await cat(vfs, '/f')
  const r = backend.counters().reads
  await cat(vfs, '/f')
  assert.equal(backend.counters().reads - r, 3, 'fetched again: size + mtime cannot prove the content unchanged')
  await vfs.close()
})

test('the disk tier survives a restart of the VFS', async () => {
  const backend = await memBackend()
  const dir = await tempDir('fsx-vfs-data-')
  const blob = randomBytes(4 * MiB)
  const v1 = vfsOn(backend, dir)
  await put(v1, '/big', blob)
  await cat(v1, '/big')
  await v1.close()
  const r = backend.counters().reads
  const v2 = vfsOn(backend, dir)
  assert.ok((await cat(v2, '/big')).equals(blob))
  assert.equal(backend.counters().reads, r, 'no backend read after the restart')
  await v2.close()
})

test('a local-like backend (random writes) gets no data cache', async () => {
  const { FakeBackend } = await import('./helpers/fake-backend.ts')
  const vfs = vfsOn(new FakeBackend({ hostFiles: true }), await tempDir('fsx-vfs-data-'))
  assert.equal(vfs.data, undefined)
  assert.equal(vfs.stats().caches.dataDisk.entries, 0)
  await vfs.close()
})

test('a remote backend with random writes (SFTP-like) reads through the data cache; its own writes are never hidden by it', async () => {
  const { FakeBackend } = await import('./helpers/fake-backend.ts')
  const backend = new FakeBackend()
  const vfs = vfsOn(backend, await tempDir('fsx-vfs-data-'))
  assert.ok(vfs.data !== undefined, 'a remote backend gets the data cache')
  assert.equal(vfs.stagesWrites, false, 'without writeback it writes through backend file handles')
  const blob = randomBytes(3 * MiB + 17)
  backend.put('/big', blob)
  assert.ok((await cat(vfs, '/big')).equals(blob))
  const r = backend.counters().reads
  assert.ok(r > 0)
  assert.ok((await cat(vfs, '/big')).equals(blob))
  assert.equal(backend.counters().reads, r, 'a re-read makes no backend read')

  // A writer through a backend handle: a read-only open made meanwhile reads the backend, not the cached blocks.
  const w = await vfs.open('/big', constants.O_WRONLY)
  await vfs.write('/big', w, Buffer.from('CHANGED'), 7, 0)
  const during = await cat(vfs, '/big')
  assert.equal(during.subarray(0, 7).toString(), 'CHANGED', 'what the open writer wrote is read, not the cached block')
  await vfs.flush('/big', w)
  await vfs.release('/big', w)
  const after = await cat(vfs, '/big')
  assert.equal(after.subarray(0, 7).toString(), 'CHANGED', 'and after its close')
  assert.ok(after.subarray(7).equals(blob.subarray(7)))
  await vfs.close()
})
