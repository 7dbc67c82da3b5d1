// The write-back journal uploads different paths in parallel (up to UPLOADERS, at most LARGE_UPLOADERS of them
// large), while one path's versions still reach the backend in commit order, the newest replacing a waiting one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Journal, LARGE_BYTES, LARGE_UPLOADERS, UPLOADERS } from '../../dist/vfs/journal.js'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

/** A backend whose writes wait until released; records what runs at once and the order writes of each path began. */
function heldBackend () {
  let running = 0
  const held: Array<{ p: string, size: number, release: () => void }> = []
  const b = {
    peak: 0,
    peakLarge: 0,
    runningLarge: 0,
    order: [] as Array<{ p: string, size: number }>,
    held,
    async write (p: string, source: { size: number }) {
      running++
      const large = source.size > LARGE_BYTES
      if (large) b.runningLarge++
      b.peak = Math.max(b.peak, running)
      b.peakLarge = Math.max(b.peakLarge, b.runningLarge)
      b.order.push({ p, size: source.size })
      await new Promise<void>(resolve => held.push({ p, size: source.size, release: resolve }))
      running--
      if (large) b.runningLarge--
    },
    /** Lets every held write finish. */
    releaseAll () { for (const h of held.splice(0)) h.release() }
  }
  return b
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

test('uploads of different paths run in parallel, up to UPLOADERS; large ones up to LARGE_UPLOADERS', async () => {
  const dir = await tempDir('fsx-journal-par-')
  const b = heldBackend()
  const j = new Journal({ dir: path.join(dir, 'j'), backend: b as any, maxDirtyBytes: 1024 ** 3 })
  const src = path.join(dir, 'src')
  await writeFile(src, 'small content')
  const attrs = { mode: 0o100644, uid: 0, gid: 0, mtimeMs: Date.now() }
  const n = UPLOADERS * 2
  for (let i = 0; i < n; i++) await j.commit(`/f${i}`, src, 13, attrs)
  await until(() => b.held.length === UPLOADERS, `${UPLOADERS} uploads in flight`)
  assert.equal(b.peak, 16, '16 different files upload at once (many small files), no more')
  assert.equal(j.counters().queued, n - UPLOADERS)
  while (j.counters().queued + j.counters().inFlight > 0) {
    b.releaseAll()
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  assert.equal(b.order.length, n, 'every file uploaded once')

  // Large entries: at most LARGE_UPLOADERS of them at once; small ones keep going beside them.
  const big = path.join(dir, 'big')
  await writeFile(big, '')
  await truncate(big, LARGE_BYTES + 1)
  const before = b.order.length
  for (let i = 0; i < LARGE_UPLOADERS + 1; i++) await j.commit(`/big${i}`, big, LARGE_BYTES + 1, attrs)
  for (let i = 0; i < 3; i++) await j.commit(`/s${i}`, src, 13, attrs)
  await until(() => b.held.length === LARGE_UPLOADERS + 3, 'the large uploads and the small ones in flight')
  assert.equal(b.peakLarge, LARGE_UPLOADERS, `at most ${LARGE_UPLOADERS} large uploads at once`)
  assert.equal(b.order.slice(before).filter(o => o.size > LARGE_BYTES).length, LARGE_UPLOADERS, 'the last large one waits')
  while (j.counters().queued + j.counters().inFlight > 0) {
    b.releaseAll()
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  assert.equal(await j.close(), 0)
})

test('one path\'s versions upload in commit order, one at a time; the newest replaces a waiting one', async () => {
  const dir = await tempDir('fsx-journal-order-')
  const b = heldBackend()
  const j = new Journal({ dir: path.join(dir, 'j'), backend: b as any, maxDirtyBytes: 1024 ** 3 })
  const attrs = { mode: 0o100644, uid: 0, gid: 0, mtimeMs: Date.now() }
  const v = async (n: number): Promise<string> => {
    const f = path.join(dir, `v${n}`)
    await writeFile(f, 'x'.repeat(n))
    return f
  }
  await j.commit('/p', await v(1), 1, attrs)
  await until(() => b.held.length === 1, 'v1 in flight')
  await j.commit('/p', await v(2), 2, attrs)
  await j.commit('/other', await v(9), 9, attrs)
  await j.commit('/p', await v(3), 3, attrs)
  await until(() => b.held.length === 2, '/other in flight beside /p')
  assert.deepEqual(b.held.map(h => h.p).sort(), ['/other', '/p'], 'one upload of /p at a time, another path beside it')
  const flushed = j.flush('/p')
  while (j.counters().queued + j.counters().inFlight > 0) {
    b.releaseAll()
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  await flushed
  assert.deepEqual(b.order.filter(o => o.p === '/p').map(o => o.size), [1, 3], 'v1, then v3 (which replaced v2 while it waited)')
  assert.equal(await j.close(), 0)
})
