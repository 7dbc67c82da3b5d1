// The xattr cache: LRU + TTL on lru-cache, absences cached, counters kept; time is faked, never slept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { XattrCache } from '../../dist/vfs/xattr-cache.js'

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1000
  return { now: () => t, advance: ms => { t += ms } }
}

test('a cached value is served until its TTL passes', () => {
  const c = clock()
  const cache = new XattrCache({ max: 10, ttlMs: 5000, now: c.now })
  assert.equal(cache.get('/f', 'user.a'), undefined)
  cache.set('/f', 'user.a', Buffer.from('v'))
  assert.deepEqual(cache.get('/f', 'user.a'), Buffer.from('v'))
  c.advance(4999)
  assert.deepEqual(cache.get('/f', 'user.a'), Buffer.from('v'))
  c.advance(2)
  assert.equal(cache.get('/f', 'user.a'), undefined)
  assert.deepEqual(cache.counters().hits, 2)
  assert.deepEqual(cache.counters().misses, 2)
})

test('an absence is cached as null', () => {
  const c = clock()
  const cache = new XattrCache({ max: 10, ttlMs: 1000, now: c.now })
  cache.set('/f', 'security.selinux', null)
  assert.equal(cache.get('/f', 'security.selinux'), null)
})

test('the least recently used path is evicted at the cap and counted', () => {
  const c = clock()
  const cache = new XattrCache({ max: 2, ttlMs: 60000, now: c.now })
  cache.set('/a', 'user.x', Buffer.from('1'))
  cache.set('/b', 'user.x', Buffer.from('2'))
  cache.get('/a', 'user.x')
  cache.set('/c', 'user.x', Buffer.from('3'))
  assert.equal(cache.get('/b', 'user.x'), undefined)
  assert.ok(cache.get('/a', 'user.x'))
  assert.equal(cache.counters().evictions, 1)
})

test('invalidate forgets a path, and with prefix everything below it', () => {
  const c = clock()
  const cache = new XattrCache({ max: 100, ttlMs: 60000, now: c.now })
  for (const p of ['/d', '/d/x', '/d/y/z', '/dz']) cache.set(p, 'user.k', Buffer.from(p))
  cache.setList('/d/x', ['user.k'])
  cache.invalidate('/d/x')
  assert.equal(cache.get('/d/x', 'user.k'), undefined)
  assert.equal(cache.getList('/d/x'), undefined)
  cache.invalidate('/d', true)
  assert.equal(cache.get('/d/y/z', 'user.k'), undefined)
  assert.ok(cache.get('/dz', 'user.k'), 'a sibling with the same prefix string survives')
})

test('size 0 disables the cache', () => {
  const cache = new XattrCache({ max: 0, ttlMs: 5000 })
  cache.set('/f', 'user.a', Buffer.from('v'))
  assert.equal(cache.enabled, false)
  assert.equal(cache.get('/f', 'user.a'), undefined)
})

test('invalidating the only cached path forgets it without counting an eviction', () => {
  const c = clock()
  const cache = new XattrCache({ max: 10, ttlMs: 60000, now: c.now })
  cache.set('/f', 'user.a', Buffer.from('v'))
  cache.invalidate('/f')
  assert.equal(cache.get('/f', 'user.a'), undefined)
  assert.equal(cache.paths, 0)
  assert.equal(cache.counters().evictions, 0)
})
