/**
 * The LRU used by the user-space metadata caches (meta-cache.ts, xattr-cache.ts): lru-cache's, with one fix.
 */
import { LRUCache } from 'lru-cache'

/**
 * lru-cache's LRUCache, except that removing its only entry is O(1) instead of O(max). Used by every user-space
 * metadata cache.
 *
 * NB: lru-cache (11.5) turns the removal of its only entry, by delete() or by a get() that meets it expired, into
 * clear(), which fills every array it preallocated for `max` entries: about 1 ms at max 100 000 and 3.6 ms at
 * 500 000. A cache that holds one entry between a lookup and the invalidation that follows it (files created one by
 * one in an otherwise quiet mount) paid that at every create. pop() removes the only entry in O(1), so delete() and
 * get() pop it instead, and `dispose` hears the reason lru-cache would have given. clear() stays O(max); it only runs
 * when everything is invalidated.
 */
export class Lru<V extends {}> extends LRUCache<string, V> {
  /** The reason `dispose` hears while pop() stands in for delete() or an expiry (pop() itself says 'evict'). */
  private readonly popping: { reason?: LRUCache.DisposeReason }

  constructor (opts: LRUCache.Options<string, V, unknown>) {
    const popping: { reason?: LRUCache.DisposeReason } = {}
    const dispose = opts.dispose
    super({ ...opts, dispose: dispose && ((v, k, reason) => { dispose(v, k, popping.reason ?? reason) }) })
    this.popping = popping
  }

  override get (k: string, opts?: LRUCache.GetOptions<string, V, unknown>): V | undefined {
    if (this.size !== 1 || this.noDeleteOnStaleGet || opts?.noDeleteOnStaleGet === true) return super.get(k, opts)
    const status: LRUCache.Status<string, V, unknown> = opts?.status ?? {}
    const v = super.get(k, { ...opts, noDeleteOnStaleGet: true, status })
    if (status.get === 'stale') this.popOnly('expire')
    return v
  }

  override delete (k: string): boolean {
    if (this.size !== 1 || this.peek(k, { allowStale: true }) === undefined) return super.delete(k)
    this.popOnly('delete')
    return true
  }

  /** Removes the only entry. */
  private popOnly (reason: LRUCache.DisposeReason): void {
    this.popping.reason = reason
    try {
      this.pop()
    } finally {
      this.popping.reason = undefined
    }
  }
}
