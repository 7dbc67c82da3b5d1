/**
 * User-space extended-attribute cache: LRU with a TTL and an entry cap (lru-cache), keyed by path + name.
 * It remembers absences too (ENODATA), because `ls -l` and `cp` ask for attributes most files do not have.
 * Invariant: every mutation through this mount (setxattr, removexattr, rename, unlink, rmdir) invalidates the
 * affected path before the backend call returns, so this mount never reads its own stale attributes.
 * Stale-if-error (`staleMs` > 0): entries stay up to `staleMs` past their TTL for `staleGet` / `staleList`, which the
 * VFS asks only when the backend could not answer; an invalidated entry is gone, never served stale.
 */
import type { LRUCache } from 'lru-cache'
import { Lru } from './lru.js'

/** A cached lookup result: the value, or null for "no such attribute". */
export type XattrEntry = Buffer | null

export interface XattrCacheOptions {
  /** Maximum entries; 0 disables the cache. */
  max: number
  /** Time-to-live in ms. */
  ttlMs: number
  /** Clock for TTLs (tests pass a fake one). */
  now?: () => number
  /** Stale-if-error: how long past its TTL an entry may still answer while the backend fails (default 0). */
  staleMs?: number
}

export interface CacheCounters {
  hits: number
  misses: number
  evictions: number
  entries: number
}

interface PathEntry {
  /** name → value (null = absent) and when it was fetched. */
  names: Map<string, { v: XattrEntry, at: number }>
  list?: { v: string[], at: number }
}

export class XattrCache {
  private readonly cache?: LRUCache<string, PathEntry>
  private readonly now: () => number
  private readonly ttlMs: number
  private readonly staleMs: number
  private hits = 0
  private misses = 0
  private evictions = 0

  constructor (opts: XattrCacheOptions) {
    this.now = opts.now ?? (() => performance.now())
    this.ttlMs = opts.ttlMs
    this.staleMs = Math.max(0, opts.staleMs ?? 0)
    if (opts.max > 0 && opts.ttlMs > 0) {
      // NB: the LRU's own TTL bounds how long an idle path stays; per-name ages are checked against `at`.
      // Lru, not plain LRUCache: invalidating the only cached path must not cost O(max) (see Lru).
      this.cache = new Lru<PathEntry>({
        max: opts.max,
        ttl: opts.ttlMs + this.staleMs,
        perf: { now: this.now },
        dispose: (_v, _k, reason) => { if (reason === 'evict') this.evictions++ }
      })
    }
  }

  get enabled (): boolean { return this.cache !== undefined }

  /** Paths cached now (O(1), for the memory figures). */
  get paths (): number { return this.cache?.size ?? 0 }

  private fresh (at: number): boolean {
    return this.now() - at < this.ttlMs
  }

  /** Returns the cached entry, or undefined on a miss (null means "cached absence"). */
  get (path: string, name: string): XattrEntry | undefined {
    if (!this.cache) return undefined
    const hit = this.cache.get(path)?.names.get(name)
    if (hit === undefined || !this.fresh(hit.at)) { this.misses++; return undefined }
    this.hits++
    return hit.v
  }

  set (path: string, name: string, value: XattrEntry): void {
    if (!this.cache) return
    const entry: PathEntry = this.cache.get(path) ?? { names: new Map() }
    entry.names.set(name, { v: value, at: this.now() })
    this.cache.set(path, entry)
  }

  getList (path: string): string[] | undefined {
    if (!this.cache) return undefined
    const hit = this.cache.get(path)?.list
    if (hit === undefined || !this.fresh(hit.at)) { this.misses++; return undefined }
    this.hits++
    return hit.v
  }

  setList (path: string, names: string[]): void {
    if (!this.cache) return
    const entry: PathEntry = this.cache.get(path) ?? { names: new Map() }
    entry.list = { v: names, at: this.now() }
    this.cache.set(path, entry)
  }

  /** Stale-if-error: a cached value (null: absence) at most `staleMs` past its TTL, or undefined; counts nothing. */
  staleGet (path: string, name: string): XattrEntry | undefined {
    const hit = this.cache?.peek(path)?.names.get(name)
    return hit !== undefined && this.now() - hit.at < this.ttlMs + this.staleMs ? hit.v : undefined
  }

  /** Stale-if-error: a cached name list at most `staleMs` past its TTL, or undefined; counts nothing. */
  staleList (path: string): string[] | undefined {
    const hit = this.cache?.peek(path)?.list
    return hit !== undefined && this.now() - hit.at < this.ttlMs + this.staleMs ? hit.v : undefined
  }

  /** Forgets everything about `path` (and, with `prefix`, everything below it: a scan, used for directories). */
  invalidate (path: string, prefix = false): void {
    if (!this.cache) return
    this.cache.delete(path)
    if (!prefix) return
    const below = path === '/' ? '/' : path + '/'
    for (const p of [...this.cache.keys()]) if (p.startsWith(below)) this.cache.delete(p)
  }

  counters (): CacheCounters {
    let entries = 0
    if (this.cache) for (const e of this.cache.values()) entries += e.names.size + (e.list ? 1 : 0)
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries }
  }
}
