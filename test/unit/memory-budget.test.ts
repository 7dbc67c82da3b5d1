// One memory budget across the VFS's caches and readahead buffers, under a storm of concurrent readers of small and
// big files on an S3-like backend: the in-memory data cache and readahead stay under it; only blocks that readers
// are waiting for may briefly go over, by at most one block per concurrent read.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

const KiB = 1024
const MiB = 1024 * KiB
const BLOCK = 256 * KiB

async function storm (budget: number): Promise<{ peakUsed: number, peakMemTier: number, readers: number, vfs: Vfs }> {
  const b = new FakeBackend({ randomWrite: false })
  const small = Array.from({ length: 40 }, (_, i) => ({ p: `/s${i}`, data: randomBytes(200 * KiB) }))
  const big = Array.from({ length: 4 }, (_, i) => ({ p: `/b${i}`, data: randomBytes(8 * MiB) }))
  for (const f of [...small, ...big]) b.put(f.p, f.data)
  const read = b.read.bind(b)
  b.read = async (p: string, off: number, len: number) => {
    await new Promise(resolve => setTimeout(resolve, 1))
    return await read(p, off, len)
  }
  const vfs = new Vfs(b as any, {
    writeback: false, consistency: 'session', xattrCacheSize: 100, xattrCacheTtlMs: 5000,
    attrCacheSize: 1000, attrCacheTtlMs: 5000, dirCacheSize: 100, dirCacheTtlMs: 5000,
    dataCacheSize: 256 * MiB, dataCacheMemory: 64 * MiB, dataCacheSmallFile: 512 * KiB, dataCachePolicy: 'lru',
    dataBlockBytes: BLOCK, prefetchMaxBytes: 4 * MiB, memoryBudgetBytes: budget,
    cacheDir: await tempDir('fsx-budget-')
  } as any)
  let peakUsed = 0
  let peakMemTier = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const s = vfs.stats()
      peakUsed = Math.max(peakUsed, s.memory!.usedBytes)
      peakMemTier = Math.max(peakMemTier, s.caches.dataMemory.bytes ?? 0)
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  const cat = async (f: { p: string, data: Buffer }, chunk: number): Promise<void> => {
    const fh = await vfs.open(f.p, constants.O_RDONLY)
    const out = Buffer.alloc(f.data.length)
    for (let pos = 0; pos < f.data.length; pos += chunk) await vfs.read(f.p, fh, out.subarray(pos), Math.min(chunk, f.data.length - pos), pos)
    await vfs.release(f.p, fh)
    assert.ok(out.equals(f.data), `${f.p} read back intact`)
  }
  const readers = small.length + big.length
  for (let round = 0; round < 2; round++) {
    await Promise.all([...small.map(async f => await cat(f, 64 * KiB)), ...big.map(async f => await cat(f, 128 * KiB))])
  }
  await vfs.data!.idle()
  sampling = false
  await sampler
  return { peakUsed, peakMemTier, readers, vfs }
}

test('the memory budget holds under a read storm of small and big files', async () => {
  const budget = 4 * MiB
  const { peakUsed, peakMemTier, readers, vfs } = await storm(budget)
  assert.ok(peakMemTier <= budget, `in-memory data cache peaked at ${peakMemTier} <= ${budget}`)
  // Blocks readers wait for are never refused: one per concurrent reader at most on top of the budget.
  assert.ok(peakUsed <= budget + readers * BLOCK, `memory peaked at ${peakUsed} <= ${budget} + ${readers} blocks`)
  const s = vfs.stats()
  assert.ok(s.memory!.usedBytes <= budget, `at rest ${s.memory!.usedBytes} <= ${budget}`)
  assert.equal(s.memory!.budgetBytes, budget)
  assert.ok(s.readahead!.triggered >= 4, 'readahead ran (and paused near the budget)')
  await vfs.close()
})

test('without a budget the same storm fills the in-memory data cache up to its own cap', async () => {
  const { peakMemTier, vfs } = await storm(0)
  assert.ok(peakMemTier > 4 * MiB, `the memory tier grew to ${peakMemTier}`)
  assert.ok(peakMemTier <= 64 * MiB)
  await vfs.close()
})
