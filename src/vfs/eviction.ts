/**
 * Eviction policies for the data cache's tiers: which cached block goes first when a tier is full. Each policy only
 * orders keys; the tier owns the data and the byte accounting. All operations are O(1) (LFU amortised).
 *
 * - lru: least recently used first. The default everywhere caches are small relative to the working set.
 * - lfu: least frequently used first, ties broken by recency. Keeps a data set read again and again (training
 *   epochs) against one-off scans; an entry's count never decays, so a once-hot block can outstay its use.
 * - ttl: first in, first out, and an entry expires `ttlMs` after it was stored even if nobody needs the room
 *   (`expired()`): for data that changes behind fsx's back at a known pace.
 * - hybrid: segmented LRU (SLRU). New entries enter a probation segment; a second use promotes them to a protected
 *   segment (at most 80% of the entries when the tier is full); victims come from probation first. A scan of a big file that is read once
 *   evicts only other read-once blocks, while blocks read twice survive it: the scan resistance of LFU with the
 *   recency of LRU, and no counts to age.
 */

export type EvictionPolicyName = 'lru' | 'lfu' | 'ttl' | 'hybrid'
export const EVICTION_POLICIES: readonly EvictionPolicyName[] = ['lru', 'lfu', 'ttl', 'hybrid']

/** Orders cached keys for eviction. The tier calls `insert` once per stored key and `remove` when it drops one. */
export interface EvictionPolicy<K> {
  readonly name: EvictionPolicyName
  insert (key: K): void
  /** The key was used (a hit). */
  touch (key: K): void
  remove (key: K): void
  /** The key to evict next, without removing it; undefined when empty. */
  victim (): K | undefined
  /** Keys from first to be evicted to last (for persisting the order across restarts). */
  order (): K[]
  /** Has the entry outlived the policy's TTL? Only the ttl policy expires entries. */
  expired (key: K): boolean
  readonly size: number
}

/** Moves `key` to the most-recent end of an insertion-ordered Map. */
function bump<K> (m: Map<K, number>, key: K, v: number): void {
  m.delete(key)
  m.set(key, v)
}

function first<K> (m: Map<K, unknown> | Set<K>): K | undefined {
  for (const k of m.keys()) return k
  return undefined
}

class Lru<K> implements EvictionPolicy<K> {
  readonly name = 'lru'
  private readonly m = new Map<K, number>()
  insert (key: K): void { bump(this.m, key, 0) }
  touch (key: K): void { if (this.m.has(key)) bump(this.m, key, 0) }
  remove (key: K): void { this.m.delete(key) }
  victim (): K | undefined { return first(this.m) }
  order (): K[] { return [...this.m.keys()] }
  expired (): boolean { return false }
  get size (): number { return this.m.size }
}

class Fifo<K> implements EvictionPolicy<K> {
  readonly name = 'ttl'
  /** key → time stored. */
  private readonly m = new Map<K, number>()
  constructor (private readonly ttlMs: number, private readonly now: () => number) {}
  insert (key: K): void { bump(this.m, key, this.now()) }
  touch (): void {}
  remove (key: K): void { this.m.delete(key) }
  victim (): K | undefined { return first(this.m) }
  order (): K[] { return [...this.m.keys()] }
  expired (key: K): boolean {
    const at = this.m.get(key)
    return at !== undefined && this.ttlMs > 0 && this.now() - at >= this.ttlMs
  }

  get size (): number { return this.m.size }
}

class Lfu<K> implements EvictionPolicy<K> {
  readonly name = 'lfu'
  private readonly freq = new Map<K, number>()
  /** count → keys with that count, least recently used first. */
  private readonly buckets = new Map<number, Set<K>>()
  private min = 1

  /** Restores a count (from a persisted index). */
  insertWithCount (key: K, count: number): void {
    this.remove(key)
    const c = Math.max(1, Math.floor(count))
    this.freq.set(key, c)
    this.bucket(c).add(key)
    if (c < this.min || this.freq.size === 1) this.min = c
  }

  count (key: K): number { return this.freq.get(key) ?? 0 }

  private bucket (c: number): Set<K> {
    let b = this.buckets.get(c)
    if (!b) { b = new Set(); this.buckets.set(c, b) }
    return b
  }

  insert (key: K): void { this.insertWithCount(key, 1) }

  touch (key: K): void {
    const c = this.freq.get(key)
    if (c === undefined) return
    const b = this.buckets.get(c)!
    b.delete(key)
    if (b.size === 0) {
      this.buckets.delete(c)
      if (this.min === c) this.min = c + 1
    }
    this.freq.set(key, c + 1)
    this.bucket(c + 1).add(key)
  }

  remove (key: K): void {
    const c = this.freq.get(key)
    if (c === undefined) return
    this.freq.delete(key)
    const b = this.buckets.get(c)!
    b.delete(key)
    if (b.size === 0) this.buckets.delete(c)
  }

  victim (): K | undefined {
    if (this.freq.size === 0) return undefined
    let b = this.buckets.get(this.min)
    if (!b || b.size === 0) {
      // A removal emptied the lowest bucket: find the new lowest count (there are few distinct counts).
      this.min = Math.min(...this.buckets.keys())
      b = this.buckets.get(this.min)!
    }
    return first(b)
  }

  order (): K[] {
    const out: K[] = []
    for (const c of [...this.buckets.keys()].sort((a, b) => a - b)) out.push(...this.buckets.get(c)!)
    return out
  }

  expired (): boolean { return false }
  get size (): number { return this.freq.size }
}

/** Share of entries the protected segment may hold. */
const PROTECTED_SHARE = 0.8

class Slru<K> implements EvictionPolicy<K> {
  readonly name = 'hybrid'
  private readonly probation = new Map<K, number>()
  private readonly protectedSeg = new Map<K, number>()

  insert (key: K): void {
    this.protectedSeg.delete(key)
    bump(this.probation, key, 0)
  }

  touch (key: K): void {
    if (this.protectedSeg.has(key)) { bump(this.protectedSeg, key, 0); return }
    if (!this.probation.delete(key)) return
    this.protectedSeg.set(key, 0)
  }

  /** Puts a key straight into the protected segment (restoring a persisted order). */
  insertProtected (key: K): void {
    this.probation.delete(key)
    bump(this.protectedSeg, key, 0)
  }

  isProtected (key: K): boolean { return this.protectedSeg.has(key) }

  remove (key: K): void {
    this.probation.delete(key)
    this.protectedSeg.delete(key)
  }

  victim (): K | undefined {
    this.balance()
    return first(this.probation) ?? first(this.protectedSeg)
  }

  order (): K[] {
    this.balance()
    return [...this.probation.keys(), ...this.protectedSeg.keys()]
  }

  /**
   * Demotes the protected segment's oldest keys to probation while it holds more than its share. Done when a victim
   * is chosen, i.e. when the tier is full, so the share is of a full tier rather than of one still filling up.
   */
  private balance (): void {
    const cap = Math.floor(this.size * PROTECTED_SHARE)
    while (this.protectedSeg.size > cap) {
      const demoted = first(this.protectedSeg)!
      this.protectedSeg.delete(demoted)
      this.probation.set(demoted, 0)
    }
  }
  expired (): boolean { return false }
  get size (): number { return this.probation.size + this.protectedSeg.size }
}

/** Makes a policy by name. `ttlMs` and `now` are used by the ttl policy only. */
export function makePolicy<K> (name: EvictionPolicyName, ttlMs = 0, now: () => number = () => performance.now()): EvictionPolicy<K> {
  switch (name) {
    case 'lru': return new Lru<K>()
    case 'lfu': return new Lfu<K>()
    case 'ttl': return new Fifo<K>(ttlMs, now)
    case 'hybrid': return new Slru<K>()
  }
}

/** What a persisted index remembers of a key's standing: LFU count, or SLRU segment (as count 2). */
export function standing<K> (p: EvictionPolicy<K>, key: K): number {
  if (p instanceof Lfu) return p.count(key)
  if (p instanceof Slru) return p.isProtected(key) ? 2 : 1
  return 1
}

/** Re-inserts a key with a persisted standing (keys must be restored in `order()` order). */
export function restore<K> (p: EvictionPolicy<K>, key: K, stand: number): void {
  if (p instanceof Lfu) p.insertWithCount(key, stand)
  else if (p instanceof Slru && stand >= 2) p.insertProtected(key)
  else p.insert(key)
}
