// Eviction policies of the data cache: which key goes first under lru, lfu, ttl and hybrid (segmented LRU).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { makePolicy, restore, standing } from '../../dist/vfs/eviction.js'

/** Evicts everything, returning the order. */
function drain (p: ReturnType<typeof makePolicy<string>>): string[] {
  const out: string[] = []
  for (let k = p.victim(); k !== undefined; k = p.victim()) { out.push(k); p.remove(k) }
  return out
}

test('lru evicts the least recently used key first', () => {
  const p = makePolicy<string>('lru')
  for (const k of ['a', 'b', 'c']) p.insert(k)
  p.touch('a')
  assert.equal(p.victim(), 'b')
  assert.deepEqual(drain(p), ['b', 'c', 'a'])
})

test('lfu evicts the least frequently used key first, ties by recency', () => {
  const p = makePolicy<string>('lfu')
  for (const k of ['a', 'b', 'c', 'd']) p.insert(k)
  p.touch('a'); p.touch('a'); p.touch('c'); p.touch('b')
  // counts: a=3, b=2, c=2 (c touched before b), d=1
  assert.deepEqual(drain(p), ['d', 'c', 'b', 'a'])
})

test('lfu finds the new lowest count after a removal empties the lowest bucket', () => {
  const p = makePolicy<string>('lfu')
  p.insert('a'); p.insert('b')
  p.touch('a'); p.touch('a'); p.touch('b')
  p.insert('c')
  p.remove('c')
  assert.equal(p.victim(), 'b')
})

test('ttl evicts in insertion order whatever the use, and expires entries after their lifetime', () => {
  let t = 0
  const p = makePolicy<string>('ttl', 1000, () => t)
  p.insert('a'); t = 500; p.insert('b')
  p.touch('a')
  assert.equal(p.victim(), 'a', 'use does not save an entry')
  t = 999
  assert.equal(p.expired('a'), false)
  t = 1000
  assert.equal(p.expired('a'), true)
  assert.equal(p.expired('b'), false)
  t = 1500
  assert.equal(p.expired('b'), true)
})

test('hybrid (segmented LRU): a scan of read-once keys does not evict keys read twice', () => {
  const p = makePolicy<string>('hybrid')
  for (const k of ['hot1', 'hot2']) { p.insert(k); p.touch(k) }
  for (let i = 0; i < 10; i++) {
    p.insert(`scan${i}`)
    if (p.size > 6) p.remove(p.victim()!)
  }
  const left = drain(p)
  assert.ok(left.includes('hot1') && left.includes('hot2'), `hot keys survived the scan: ${left.join(',')}`)
  assert.deepEqual(left.slice(-2), ['hot1', 'hot2'], 'and are evicted last')
})

test('hybrid keeps the protected segment at most 80% of the entries', () => {
  const p = makePolicy<string>('hybrid')
  for (let i = 0; i < 10; i++) { p.insert(`k${i}`); p.touch(`k${i}`) }
  // All ten were read twice, but only eight fit in the protected segment: the two oldest were demoted.
  assert.equal(p.victim(), 'k0')
  assert.equal(standing(p, 'k0'), 1)
  assert.equal(standing(p, 'k9'), 2)
})

test('an order saved with standing() is restored by restore()', () => {
  for (const name of ['lru', 'lfu', 'ttl', 'hybrid'] as const) {
    const a = makePolicy<string>(name, 60_000)
    for (const k of ['a', 'b', 'c', 'd']) a.insert(k)
    a.touch('b'); a.touch('b'); a.touch('a')
    const saved = a.order().map(k => [k, standing(a, k)] as const)
    const b = makePolicy<string>(name, 60_000)
    for (const [k, s] of saved) restore(b, k, s)
    assert.deepEqual(drain(b), drain(a), name)
  }
})
