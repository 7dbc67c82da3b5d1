// The metadata caches (attributes, listings, negative answers): LRU + TTL on lru-cache, invalidation, races with
// mutations, shared fetches. Time is faked, never slept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MetaCache, parentOf } from '../../dist/vfs/meta-cache.js'

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1000
  return { now: () => t, advance: ms => { t += ms } }
}

function st (size: number, extra: Record<string, unknown> = {}): any {
  return { kind: 'file', size, mode: 0o100644, uid: 0, gid: 0, nlink: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, ...extra }
}

const enoent = (): Error => Object.assign(new Error('no such file'), { code: 'ENOENT' })

function cache (c = clock(), o: Record<string, number> = {}): MetaCache {
  return new MetaCache({ attrSize: 100, attrTtlMs: 5000, dirSize: 10, dirTtlMs: 5000, negativeSize: 100, negativeTtlMs: 2000, now: c.now, ...o })
}

/** A fetch that counts its calls and answers `value()` (or throws it). */
function fetcher<T> (value: () => T): { fn: () => Promise<T>, calls: () => number } {
  let n = 0
  return { fn: async () => { n++; const v = value(); if (v instanceof Error) throw v; return v }, calls: () => n }
}

test('a cached attribute is served until its TTL passes', async () => {
  const c = clock()
  const m = cache(c)
  const f = fetcher(() => st(1))
  assert.equal((await m.stat('/f', f.fn, enoent)).size, 1)
  c.advance(4999)
  await m.stat('/f', f.fn, enoent)
  assert.equal(f.calls(), 1)
  c.advance(2)
  await m.stat('/f', f.fn, enoent)
  assert.equal(f.calls(), 2)
  const k = m.counters().attr
  assert.equal(k.hits, 1)
  assert.equal(k.misses, 2)
  assert.equal(k.entries, 1)
})

test('ENOENT is cached as a negative answer for its own TTL; other errors are not cached', async () => {
  const c = clock()
  const m = cache(c)
  const f = fetcher(() => enoent())
  await assert.rejects(m.stat('/nope', f.fn, enoent), { code: 'ENOENT' })
  await assert.rejects(m.stat('/nope', f.fn, enoent), { code: 'ENOENT' })
  assert.equal(f.calls(), 1)
  assert.equal(m.counters().negative.hits, 1)
  c.advance(2001)
  await assert.rejects(m.stat('/nope', f.fn, enoent), { code: 'ENOENT' })
  assert.equal(f.calls(), 2)

  const e = fetcher(() => Object.assign(new Error('denied'), { code: 'EACCES' }))
  await assert.rejects(m.stat('/secret', e.fn, enoent), { code: 'EACCES' })
  await assert.rejects(m.stat('/secret', e.fn, enoent), { code: 'EACCES' })
  assert.equal(e.calls(), 2)
})

test('a listing is cached and primes the attributes of its entries', async () => {
  const c = clock()
  const m = cache(c)
  const l = fetcher(() => [{ name: 'a', stat: st(3) }, { name: 'b' }])
  assert.deepEqual((await m.list('/d', l.fn)).map(e => e.name), ['a', 'b'])
  await m.list('/d', l.fn)
  assert.equal(l.calls(), 1)
  const f = fetcher(() => st(99))
  assert.equal((await m.stat('/d/a', f.fn, enoent)).size, 3, 'served from the listing')
  assert.equal((await m.stat('/d/b', f.fn, enoent)).size, 99, 'an entry without a stat is fetched')
  assert.equal(f.calls(), 1)
  c.advance(5001)
  await m.list('/d', l.fn)
  assert.equal(l.calls(), 2)
})

test('the least recently used entry is evicted at the cap and counted', async () => {
  const m = cache(clock(), { attrSize: 2 })
  const f = fetcher(() => st(1))
  await m.stat('/a', f.fn, enoent)
  await m.stat('/b', f.fn, enoent)
  await m.stat('/a', f.fn, enoent)
  await m.stat('/c', f.fn, enoent)
  assert.equal(f.calls(), 3)
  await m.stat('/a', f.fn, enoent)
  assert.equal(f.calls(), 3, '/a was used recently and stayed')
  await m.stat('/b', f.fn, enoent)
  assert.equal(f.calls(), 4, '/b was evicted')
  assert.ok(m.counters().attr.evictions >= 1)
})

test('invalidate forgets one path; invalidateTree everything below, but not a sibling sharing the prefix', async () => {
  const m = cache()
  let size = 1
  const f = fetcher(() => st(size))
  for (const p of ['/d', '/d/x', '/d/y/z', '/dz']) await m.stat(p, f.fn, enoent)
  await m.list('/d/y', async () => [])
  size = 2
  m.invalidate('/d/x')
  assert.equal((await m.stat('/d/x', f.fn, enoent)).size, 2)
  assert.equal((await m.stat('/d/y/z', f.fn, enoent)).size, 1)
  size = 3
  m.invalidateTree('/d')
  assert.equal((await m.stat('/d', f.fn, enoent)).size, 3)
  assert.equal((await m.stat('/d/y/z', f.fn, enoent)).size, 3)
  assert.equal((await m.stat('/dz', f.fn, enoent)).size, 1, 'a sibling with the same prefix string survives')
  let listed = 0
  await m.list('/d/y', async () => { listed++; return [] })
  assert.equal(listed, 1, 'listings below the tree are forgotten too')
})

test('a fetch that began before an invalidation is not stored', async () => {
  const m = cache()
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const slow = m.stat('/f', async () => { await gate; return st(1) }, enoent)
  m.invalidate('/f') // a write to /f resolved while the stat was in flight
  release()
  assert.equal((await slow).size, 1, 'the caller still gets its answer')
  const f = fetcher(() => st(2))
  assert.equal((await m.stat('/f', f.fn, enoent)).size, 2, 'but the stale size was not cached')
})

test('a fetch below a directory renamed during it is not stored, and neither is its listing', async () => {
  const m = cache()
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const slow = m.list('/d', async () => { await gate; return [{ name: 'x', stat: st(1) }] })
  m.invalidateTree('/d')
  release()
  await slow
  const f = fetcher(() => st(7))
  assert.equal((await m.stat('/d/x', f.fn, enoent)).size, 7)
  let listed = 0
  await m.list('/d', async () => { listed++; return [] })
  assert.equal(listed, 1)
})

test('a lookup after an invalidation does not join a fetch that began before it', async () => {
  const m = cache()
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const early = m.stat('/f', async () => { await gate; return st(1) }, enoent)
  m.invalidate('/f')
  const late = m.stat('/f', async () => st(2), enoent)
  release()
  assert.equal((await early).size, 1)
  assert.equal((await late).size, 2)
})

test('concurrent lookups of one path share one fetch', async () => {
  const m = cache()
  const f = fetcher(() => st(1))
  await Promise.all([m.stat('/f', f.fn, enoent), m.stat('/f', f.fn, enoent), m.stat('/f', f.fn, enoent)])
  assert.equal(f.calls(), 1)
})

test('a file with several hard links is not attribute-cached', async () => {
  const m = cache()
  const f = fetcher(() => st(1, { nlink: 2 }))
  await m.stat('/f', f.fn, enoent)
  await m.stat('/f', f.fn, enoent)
  assert.equal(f.calls(), 2)
  const d = fetcher(() => st(4096, { kind: 'dir', nlink: 5 }))
  await m.stat('/d', d.fn, enoent)
  await m.stat('/d', d.fn, enoent)
  assert.equal(d.calls(), 1, 'directories are (their nlink counts subdirectories)')
})

test('a stored attribute clears the negative answer for its path', async () => {
  const m = cache()
  await assert.rejects(m.stat('/f', async () => { throw enoent() }, enoent))
  const ticket = m.begin()
  m.putAttr('/f', st(5), ticket)
  m.end(ticket)
  assert.equal((await m.stat('/f', async () => st(0), enoent)).size, 5)
})

test('size 0 or TTL 0 turns a cache off', async () => {
  for (const o of [{ attrSize: 0, dirSize: 0, negativeSize: 0 }, { attrTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 }]) {
    const m = cache(clock(), o)
    const f = fetcher(() => st(1))
    await m.stat('/f', f.fn, enoent)
    await m.stat('/f', f.fn, enoent)
    assert.equal(f.calls(), 2)
    assert.equal(m.enabled, false)
  }
})

test('tombstones of renamed directories expire with the longest TTL', async () => {
  const c = clock()
  const m = cache(c)
  m.invalidateTree('/old')
  c.advance(5001)
  m.invalidateTree('/other') // prunes the first tombstone
  const f = fetcher(() => st(1))
  await m.stat('/old/f', f.fn, enoent)
  await m.stat('/old/f', f.fn, enoent)
  assert.equal(f.calls(), 1, 'entries below a pruned tombstone are cached normally')
})

test('the memory estimate follows entries in and out', async () => {
  const m = cache()
  assert.equal(m.bytes(), 0)
  await m.list('/d', async () => [{ name: 'a', stat: st(1) }, { name: 'b', stat: st(2) }])
  const full = m.bytes()
  assert.ok(full > 0)
  assert.equal(m.counters().dir.bytes! + m.counters().attr.bytes!, full)
  m.invalidateTree('/d')
  m.invalidate('/d/a'); m.invalidate('/d/b')
  assert.equal(m.bytes(), 0)
})

test('parentOf', () => {
  assert.equal(parentOf('/a'), '/')
  assert.equal(parentOf('/a/b'), '/a')
  assert.equal(parentOf('/'), '/')
})

test('stale-if-error: an expired entry answers up to staleMs past its TTL, never once invalidated', async () => {
  const c = clock()
  const m = cache(c, { staleMs: 10_000 })
  await m.stat('/f', fetcher(() => st(7)).fn, enoent)
  await m.list('/d', async () => [{ name: 'x', stat: st(1) }])
  c.advance(5001)
  assert.equal(m.peekAttr('/f'), undefined, 'expired: not a hit')
  assert.equal(m.staleAttr('/f', 10_000)?.size, 7, 'but still there for stale-if-error')
  assert.deepEqual(m.staleList('/d', 10_000)?.map(e => e.name), ['x'])
  c.advance(10_000)
  assert.equal(m.staleAttr('/f', 10_000), undefined, 'past staleMs it is gone too')
  assert.equal(m.staleList('/d', 10_000), undefined)

  await m.stat('/g', fetcher(() => st(3)).fn, enoent)
  await m.stat('/t/h', fetcher(() => st(4)).fn, enoent)
  c.advance(6000)
  m.invalidate('/g')
  m.invalidateTree('/t')
  // The tombstone outlives the TTL while a stale entry it hides could still answer.
  c.advance(6000)
  assert.equal(m.staleAttr('/g', 10_000), undefined, 'invalidated through the mount: never served stale')
  assert.equal(m.staleAttr('/t/h', 10_000), undefined, 'below a renamed directory: never served stale')
})

test('without staleMs expired entries are not kept for stale answers', async () => {
  const c = clock()
  const m = cache(c)
  await m.stat('/f', fetcher(() => st(7)).fn, enoent)
  c.advance(5001)
  assert.equal(m.staleAttr('/f', 10_000), undefined)
})

test('invalidating the only cached entry forgets it without counting an eviction', async () => {
  const m = cache()
  await m.stat('/f', fetcher(() => st(1)).fn, enoent)
  await assert.rejects(m.stat('/g', fetcher(() => enoent()).fn, enoent), { code: 'ENOENT' })
  m.invalidate('/f')
  m.invalidate('/g')
  const k = m.counters()
  assert.equal(k.attr.entries + k.negative.entries, 0)
  assert.equal(k.attr.evictions + k.negative.evictions, 0)
})
