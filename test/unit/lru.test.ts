// Lru (src/vfs/lru.ts): lru-cache's LRUCache with O(1) removal of its only entry. Time is faked, never slept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Lru } from '../../dist/vfs/lru.js'

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1000
  return { now: () => t, advance: ms => { t += ms } }
}

test('removing the only entry, by delete or by a get that finds it expired, tells dispose why and leaves a working LRU', () => {
  const c = clock()
  const reasons: string[] = []
  const lru = new Lru<number>({ max: 3, ttl: 1000, ttlResolution: 0, perf: { now: c.now }, dispose: (_v, k, r) => { reasons.push(`${k}:${r}`) } })
  lru.set('a', 1)
  assert.equal(lru.delete('a'), true)
  assert.equal(lru.delete('a'), false)
  lru.set('b', 2)
  c.advance(1001)
  assert.equal(lru.get('b'), undefined)
  assert.equal(lru.size, 0)
  assert.deepEqual(reasons, ['a:delete', 'b:expire'])
  for (const k of ['x', 'y', 'z']) lru.set(k, 0)
  lru.get('x')
  lru.set('w', 0)
  assert.deepEqual([...lru.keys()], ['w', 'x', 'z'], 'recency order and eviction still work once emptied')
  assert.deepEqual(reasons.slice(2), ['y:evict'])

  const keep = new Lru<number>({ max: 3, ttl: 1000, ttlResolution: 0, perf: { now: c.now }, noDeleteOnStaleGet: true })
  keep.set('s', 1)
  c.advance(1001)
  assert.equal(keep.get('s'), undefined)
  assert.equal(keep.peek('s', { allowStale: true }), 1, 'with noDeleteOnStaleGet an expired entry stays')
})

test('against a model, get and peek never return a value that was deleted, replaced or expired', () => {
  const c = clock()
  for (const keepStale of [false, true]) {
    for (let seed = 1; seed <= 100; seed++) {
      let x = seed
      const rnd = (n: number): number => { x = (x * 1103515245 + 12345) % 2147483648; return x % n }
      const max = 2 + rnd(6)
      const lru = new Lru<{ n: number }>({ max, ttl: 100, ttlResolution: 0, perf: { now: c.now }, noDeleteOnStaleGet: keepStale, dispose: () => {} })
      const model = new Map<string, { v: { n: number }, at: number }>()
      for (let i = 0; i < 1000; i++) {
        const k = `k${rnd(5)}`
        const op = rnd(10)
        const m = model.get(k)
        const where = `seed ${seed} op ${i} ${k} keepStale=${String(keepStale)}`
        if (op < 4) {
          const v = { n: i }
          lru.set(k, v)
          model.set(k, { v, at: c.now() })
        } else if (op < 7) {
          const got = lru.get(k)
          if (got !== undefined) {
            assert.equal(got, m?.v, where)
            assert.ok(c.now() - m!.at <= 100, `${where}: expired value returned`)
          }
        } else if (op < 9) {
          lru.delete(k)
          model.delete(k)
        } else {
          c.advance(rnd(60))
        }
        assert.ok(lru.size <= max, where)
        const p = lru.peek(k, { allowStale: true })
        if (p !== undefined) assert.equal(p, model.get(k)?.v, where)
      }
    }
  }
})
