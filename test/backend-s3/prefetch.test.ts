/**
 * The sequential read-ahead (plugins/backend-s3/src/prefetch.ts) on a fake object store and a fake clock: what it
 * fetches, when it starts and stops reading ahead, and that it never answers with bytes of another object version.
 */
import t from 'tap'
import { CHUNK_BYTES, IDLE_MS, Prefetcher } from '../../plugins/backend-s3/dist/prefetch.js'
import { bytes } from '../helpers/conformance.js'

const K = 128 * 1024

function store (size: number) {
  const s = {
    data: bytes(size, 3),
    etag: '"v1"',
    fetches: [] as Array<[number, number]>,
    fail: false,
    fetch: async (_key: string, start: number, len: number) => {
      s.fetches.push([start, len])
      if (s.fail) throw Object.assign(new Error('boom'), { code: 'EIO' })
      return { data: s.data.subarray(start, start + len), etag: s.etag }
    }
  }
  return s
}

t.test('sequential reads are served from read-ahead chunks, far fewer requests', async t => {
  const s = store(10 * CHUNK_BYTES + 100)
  const p = new Prefetcher(s.fetch, 2)
  const out: Buffer[] = []
  for (let off = 0; off < s.data.length; off += K) out.push(await p.read('k', off, K))
  t.same(Buffer.concat(out), s.data, 'byte for byte, short at the end')
  t.equal(s.fetches[0][1], K, 'the first read is fetched as asked')
  t.ok(s.fetches.slice(1).every(([start, len]) => len === CHUNK_BYTES && start % CHUNK_BYTES === 0), 'then whole chunks')
  t.ok(s.fetches.length <= 1 + 11 + 2, 'one request per chunk, at most `ahead` more past the end')
  t.equal(p.hits, Math.ceil(s.data.length / K) - 1)
  const hinted = store(10 * CHUNK_BYTES + 100)
  const q = new Prefetcher(hinted.fetch, 2)
  for (let off = 0; off < hinted.data.length; off += K) await q.read('k', off, K, hinted.data.length)
  t.equal(hinted.fetches.length, 1 + 11, 'with the size known, none past the end')
  const grown = store(3 * CHUNK_BYTES)
  const r = new Prefetcher(grown.fetch, 2)
  await r.read('k', 0, K, CHUNK_BYTES)
  t.same(await r.read('k', K, 2 * CHUNK_BYTES, CHUNK_BYTES), grown.data.subarray(K, K + 2 * CHUNK_BYTES), 'a stale size hint never shortens a read')
})

t.test('random reads are fetched as asked; a seek stops the read-ahead', async t => {
  const s = store(8 * CHUNK_BYTES)
  const p = new Prefetcher(s.fetch, 2)
  await p.read('k', 5 * K, K)
  await p.read('k', 1 * K, K)
  await p.read('k', 7 * CHUNK_BYTES, K)
  t.same(s.fetches.map(f => f[1]), [K, K, K], 'no chunks for random reads')
  await p.read('k', 0, K)
  await p.read('k', K, K) // sequential now
  const n = s.fetches.length
  t.same(await p.read('k', 6 * CHUNK_BYTES + 5, 10), s.data.subarray(6 * CHUNK_BYTES + 5, 6 * CHUNK_BYTES + 15), 'a seek far away')
  t.same(s.fetches.slice(n), [[6 * CHUNK_BYTES + 5, 10]], 'is fetched as asked')
})

t.test('a replaced object is never mixed into a stream: the read is fetched again', async t => {
  const s = store(4 * CHUNK_BYTES)
  const p = new Prefetcher(s.fetch, 1)
  await p.read('k', 0, K)
  await p.read('k', K, K) // chunk 0 (v1), chunk 1 requested
  s.data = bytes(4 * CHUNK_BYTES, 99)
  s.etag = '"v2"'
  const got = await p.read('k', CHUNK_BYTES, K) // chunk 1 was fetched as v1 already: still consistent…
  t.equal(got.length, K)
  const r = await p.read('k', 2 * CHUNK_BYTES, K) // chunk 2 comes back as v2: stream reset, fetched as asked
  t.same(r, s.data.subarray(2 * CHUNK_BYTES, 2 * CHUNK_BYTES + K), 'the new version, fetched exactly')
})

t.test('a failed chunk drops the stream; the error reaches the caller only from its own request', async t => {
  const s = store(4 * CHUNK_BYTES)
  const p = new Prefetcher(s.fetch, 2)
  await p.read('k', 0, K)
  s.fail = true
  await t.rejects(p.read('k', K, K), { code: 'EIO' })
  s.fail = false
  t.same(await p.read('k', 2 * K, K), s.data.subarray(2 * K, 3 * K))
})

t.test('idle streams expire; invalidation forgets a key at once', async t => {
  let now = 0
  const s = store(4 * CHUNK_BYTES)
  const p = new Prefetcher(s.fetch, 1, () => now)
  await p.read('k', 0, K)
  await p.read('k', K, K)
  const n = s.fetches.length
  now += IDLE_MS
  await p.read('k', 2 * K, K)
  t.same(s.fetches.slice(n), [[2 * K, K]], 'after IDLE_MS the stream starts over')
  await p.read('k', 3 * K, K)
  p.invalidate('k')
  const m = s.fetches.length
  await p.read('k', 4 * K, K)
  t.same(s.fetches.slice(m), [[4 * K, K]], 'after invalidate the stream starts over')
})
