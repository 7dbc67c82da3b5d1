/**
 * User-space metadata caches: attributes, directory listings and "no such file" answers. Each is an LRU with a TTL
 * and an entry cap (lru-cache) on an injectable clock; they sit under the kernel's own attr/entry/negative caches
 * and save backend round trips when the kernel asks again (`ls -l` after `ls`, a lookup after its TTL, a build
 * probing the same missing header twice).
 *
 * Invariants:
 * - Every mutation through the mount calls `invalidate(p)` / `invalidateTree(p)` after the backend call settles and
 *   before the operation resolves, so this mount never reads back its own stale metadata.
 * - A result fetched from the backend is stored only if nothing touching its path was invalidated since the fetch
 *   began: every fetch takes a ticket (a sequence number) and every invalidation records a newer one. A stat racing
 *   with a write therefore cannot re-insert the pre-write size. An invalidation also detaches in-flight fetches of
 *   its paths, so a getattr that starts after a write never joins a stat that started before it.
 * - Subtree invalidation (rename or rmdir of a directory) is O(1): it leaves a tombstone with its sequence number,
 *   and an entry is live only while it is newer than every tombstone on its path. Tombstones are pruned once older
 *   than the longest TTL (every entry they could hide has expired) and than every fetch in flight.
 * - Directory listings prime the attribute cache with the stats they carry, under the listing's ticket.
 * - A listing never answers a lookup: names created outside the mount must appear at the next lookup, as they would
 *   without this cache; only an actual ENOENT from the backend is cached as negative.
 * - Non-directories with more than one hard link are not attribute-cached: a write through one name changes the
 *   attributes of the others, which no path-keyed invalidation could find.
 * - Stale-if-error (`staleMs` > 0): expired attribute and listing entries stay (until the LRU evicts them) so that
 *   `staleAttr` / `staleList` can answer while the backend fails, up to `staleMs` past their TTL. Invalidation
 *   removes entries exactly as before, and tombstones are kept `staleMs` longer, so a stale answer is never one
 *   that a change through this mount invalidated.
 */
import type { LRUCache } from 'lru-cache'
import { Lru } from './lru.js'
import type { DirEntry, Stat } from '../backend/types.js'
import type { CacheStats } from './vfs.js'

export interface MetaCacheOptions {
  /** Attribute cache: entries (0 disables) and time-to-live in ms (0 disables). */
  attrSize: number
  attrTtlMs: number
  /** Directory-listing cache: directories (0 disables) and time-to-live in ms. */
  dirSize: number
  dirTtlMs: number
  /** Negative-lookup cache: paths (0 disables) and time-to-live in ms. */
  negativeSize: number
  negativeTtlMs: number
  /** Stale-if-error: how long past its TTL an entry may still answer while the backend fails (0: not at all). */
  staleMs?: number
  /** Clock in ms for TTLs (tests pass a fake one). */
  now?: () => number
}

/** Rough heap cost of one cached entry, for the memory figures: a Stat object, its key and LRU bookkeeping. */
const ATTR_ENTRY_BYTES = 320
const NEG_ENTRY_BYTES = 120
const DIR_ENTRY_BYTES = 200

interface Entry<T> { v: T, seq: number, idx?: Map<string, number> }
interface Counts { hits: number, misses: number, evictions: number }

function newCounts (): Counts { return { hits: 0, misses: 0, evictions: 0 } }

/** Parent directory of a normalised absolute path ("/" for "/a"). */
export function parentOf (p: string): string {
  const i = p.lastIndexOf('/')
  return i <= 0 ? '/' : p.slice(0, i)
}

function makeLru<T extends {}> (max: number, ttlMs: number, now: () => number, counts: Counts, gone?: (v: T) => void, keepStale = false): LRUCache<string, T> | undefined {
  if (!(max > 0 && ttlMs > 0)) return undefined
  return new Lru<T>({
    max,
    ttl: ttlMs,
    // Stale-if-error: an expired entry stays until evicted, for `staleAttr` / `staleList`.
    noDeleteOnStaleGet: keepStale,
    perf: { now },
    // NB: lru-cache otherwise reuses one clock reading for up to 1 ms of real time, which a fake clock never passes.
    ttlResolution: 0,
    dispose: (v, _k, reason) => {
      if (reason === 'evict') counts.evictions++
      gone?.(v)
    }
  })
}

/** Is this a "no such file" error (the only failure cached as a negative answer)? */
const enoent = (err: unknown): boolean => (err as { code?: string } | undefined)?.code === 'ENOENT'

export class MetaCache {
  private readonly now: () => number
  private readonly attr?: LRUCache<string, Entry<Stat>>
  private readonly dir?: LRUCache<string, Entry<DirEntry[]>>
  private readonly neg?: LRUCache<string, Entry<true>>
  private readonly counts = { attr: newCounts(), dir: newCounts(), negative: newCounts() }
  private readonly maxTtlMs: number
  private readonly staleMs: number
  /** Names held by cached listings (kept up to date for the memory figures). */
  private dirNames = 0

  /** Sequence of tickets and invalidations. */
  private seq = 0
  /** Fetches in flight by ticket (insertion order = ticket order, so the first key is the oldest). */
  private readonly inflight = new Map<number, number>()
  /** Exact invalidations that happened while fetches were in flight: path → seq (ordered by seq). */
  private readonly exact = new Map<string, number>()
  /** Subtree invalidations: directory → seq and time (ordered by seq). */
  private readonly tombs = new Map<string, { seq: number, at: number }>()
  /** Shared in-flight fetches, so a burst of lookups of one path makes one backend call. */
  private readonly pendingAttr = new Map<string, Promise<Stat>>()
  private readonly pendingDir = new Map<string, Promise<DirEntry[]>>()

  constructor (opts: MetaCacheOptions) {
    this.now = opts.now ?? (() => performance.now())
    this.staleMs = Math.max(0, opts.staleMs ?? 0)
    const keep = this.staleMs > 0
    this.attr = makeLru(opts.attrSize, opts.attrTtlMs, this.now, this.counts.attr, undefined, keep)
    this.dir = makeLru<Entry<DirEntry[]>>(opts.dirSize, opts.dirTtlMs, this.now, this.counts.dir, e => { this.dirNames -= e.v.length }, keep)
    this.neg = makeLru(opts.negativeSize, opts.negativeTtlMs, this.now, this.counts.negative)
    this.maxTtlMs = Math.max(this.attr ? opts.attrTtlMs : 0, this.dir ? opts.dirTtlMs : 0, this.neg ? opts.negativeTtlMs : 0)
  }

  /** True when at least one of the three caches is on. */
  get enabled (): boolean { return this.maxTtlMs > 0 }

  // ---- lookups ----------------------------------------------------------------------------------------------------

  /**
   * Attributes of `p`: from the cache, else from `fetch` (cached on success; ENOENT cached as a negative answer).
   * Rejects with the fetch's error, or ENOENT (made by `notFound`) on a cached negative answer.
   */
  async stat (p: string, fetch: () => Promise<Stat>, notFound: () => Error): Promise<Stat> {
    if (!this.enabled) return await fetch()
    const hit = this.peekAttr(p)
    if (hit) return hit
    if (this.neg) {
      const n = this.neg.get(p)
      if (n && this.live(p, n.seq)) { this.counts.negative.hits++; throw notFound() }
      this.counts.negative.misses++
    }
    return await this.shared(this.pendingAttr, p, fetch, (st, ticket) => this.putAttr(p, st, ticket), (err, ticket) => {
      if (enoent(err) && this.neg && this.storable(p, ticket)) this.neg.set(p, { v: true, seq: ticket })
    })
  }

  /** The cached attributes of `p`, counting a hit or a miss; undefined on a miss. */
  peekAttr (p: string): Stat | undefined {
    if (!this.attr) return undefined
    const e = this.attr.get(p)
    if (e && this.live(p, e.seq)) { this.counts.attr.hits++; return e.v }
    this.counts.attr.misses++
    return undefined
  }

  /** Stores attributes fetched outside `stat` (e.g. the fresh stat of an open) under a ticket from `begin`. */
  putAttr (p: string, st: Stat, ticket: number): void {
    if (!this.attr || !this.storable(p, ticket)) return
    if (st.kind !== 'dir' && st.nlink > 1) return
    this.attr.set(p, { v: st, seq: ticket })
    this.neg?.delete(p)
  }

  /** Listing of directory `p`: from the cache, else from `fetch` (cached, and its stats prime the attribute cache). */
  async list (p: string, fetch: () => Promise<DirEntry[]>): Promise<DirEntry[]> {
    if (!this.dir) return await fetch()
    const e = this.dir.get(p)
    if (e && this.live(p, e.seq)) { this.counts.dir.hits++; return e.v }
    this.counts.dir.misses++
    return await this.shared(this.pendingDir, p, fetch, (entries, ticket) => {
      const prefix = p === '/' ? '/' : p + '/'
      // A file changed through fsx while the listing was in flight (its attributes, not its name: the directory's
      // own ticket does not see that) is listed with the attributes from before the change: they go, for this
      // caller too (every joiner gets this array), and the kernel looks the name up instead (READDIRPLUS).
      for (let i = 0; i < entries.length; i++) {
        const d = entries[i]
        if (d.stat !== undefined && !this.storable(prefix + d.name, ticket)) entries[i] = { name: d.name }
      }
      if (!this.storable(p, ticket)) return
      this.dir!.set(p, { v: entries, seq: ticket })
      this.dirNames += entries.length
      for (const d of entries) if (d.stat) this.putAttr(prefix + d.name, d.stat, ticket)
    })
  }

  /**
   * Runs `fetch` for `p` under a ticket, shared by every caller that asks while it is in flight (`pending` holds
   * it until it settles, unless an invalidation detached it); `stored` / `failed` see the outcome with the ticket.
   */
  private async shared<T> (pending: Map<string, Promise<T>>, p: string, fetch: () => Promise<T>, stored: (v: T, ticket: number) => void, failed?: (err: unknown, ticket: number) => void): Promise<T> {
    const joined = pending.get(p)
    if (joined) return await joined
    const ticket = this.begin()
    // NB: the finally block runs after the first await, when `run` is assigned.
    let run!: Promise<T>
    run = (async () => {
      try {
        const v = await fetch()
        stored(v, ticket)
        return v
      } catch (err) {
        failed?.(err, ticket)
        throw err
      } finally {
        this.end(ticket)
        if (pending.get(p) === run) pending.delete(p)
      }
    })()
    pending.set(p, run)
    return await run
  }

  // ---- stale-if-error ---------------------------------------------------------------------------------------------

  /**
   * An expired (or live) entry of `cache` for `p` at most `maxMs` past its TTL and not invalidated since; undefined
   * otherwise. Counts nothing: the caller decides whether it serves it.
   */
  private staleEntry<T> (cache: LRUCache<string, Entry<T>> | undefined, p: string, maxMs: number): { e: Entry<T>, remaining: number } | undefined {
    if (!cache || maxMs <= 0) return undefined
    const e = cache.peek(p, { allowStale: true })
    if (!e || !this.live(p, e.seq)) return undefined
    const remaining = cache.getRemainingTTL(p)
    if (remaining < -maxMs) return undefined
    return { e, remaining }
  }

  /** Attributes of `p` as last known, even expired (up to `maxMs` past the TTL), for stale-if-error. */
  staleAttr (p: string, maxMs: number): Stat | undefined {
    return this.staleEntry(this.attr, p, Math.min(maxMs, this.staleMs))?.e.v
  }

  /** Listing of `p` as last known, even expired (up to `maxMs` past the TTL), for stale-if-error. */
  staleList (p: string, maxMs: number): DirEntry[] | undefined {
    return this.staleEntry(this.dir, p, Math.min(maxMs, this.staleMs))?.e.v
  }

  /**
   * Puts back, as already expired, attributes that answered stale after a revalidation had dropped them (an open
   * under session consistency), so later lookups still find them while the backend fails. Unlike `putAttr` it
   * makes nothing fresh. `ticket` is the revalidation's (from `begin`): anything invalidated since wins.
   */
  restoreStale (p: string, st: Stat, ticket: number): void {
    if (!this.attr || this.staleMs <= 0 || !this.storable(p, ticket) || this.attr.peek(p, { allowStale: true })) return
    this.attr.set(p, { v: st, seq: ticket }, { start: this.now() - this.attr.ttl - 1 })
  }

  // ---- background validation --------------------------------------------------------------------------------------

  /**
   * Up to `limit` cached file attributes that expire within `withinMs`, most recently used first, for the background
   * validator to refresh before a lookup has to wait for them. Looks at most `4 × limit` entries and counts nothing.
   */
  expiring (limit: number, withinMs: number): Array<{ path: string, stat: Stat }> {
    const out: Array<{ path: string, stat: Stat }> = []
    if (!this.attr || limit <= 0) return out
    let looked = 0
    for (const p of this.attr.keys()) {
      if (out.length >= limit || ++looked > 4 * limit) break
      const e = this.attr.peek(p)
      if (!e || e.v.kind !== 'file' || !this.live(p, e.seq)) continue
      if (this.attr.getRemainingTTL(p) <= withinMs) out.push({ path: p, stat: e.v })
    }
    return out
  }

  // ---- tickets ----------------------------------------------------------------------------------------------------

  /** Starts a fetch: returns its ticket. Every `begin` must be paired with `end`. */
  begin (): number {
    const t = ++this.seq
    this.inflight.set(t, (this.inflight.get(t) ?? 0) + 1)
    return t
  }

  end (ticket: number): void {
    const n = (this.inflight.get(ticket) ?? 1) - 1
    if (n > 0) this.inflight.set(ticket, n)
    else this.inflight.delete(ticket)
    if (this.inflight.size === 0) this.exact.clear()
    if (this.tombs.size > 0) this.pruneTombs()
  }

  /** Oldest ticket still in flight, or +∞. */
  private oldestInflight (): number {
    for (const t of this.inflight.keys()) return t
    return Infinity
  }

  /** May a result for `p` fetched under `ticket` be stored? */
  private storable (p: string, ticket: number): boolean {
    const x = this.exact.get(p)
    if (x !== undefined && x > ticket) return false
    return this.live(p, ticket)
  }

  /** Is an entry for `p` stored under `seq` newer than every tombstone on its path? */
  private live (p: string, seq: number): boolean {
    if (this.tombs.size === 0) return true
    let q = p
    for (;;) {
      const t = this.tombs.get(q)
      if (t !== undefined && t.seq > seq) return false
      if (q === '/') return true
      q = parentOf(q)
    }
  }

  // ---- invalidation -----------------------------------------------------------------------------------------------

  /** Forgets the attributes, listing and negative answer of exactly `p`. */
  invalidate (p: string): void {
    if (!this.enabled) return
    this.attr?.delete(p)
    this.dir?.delete(p)
    this.forgetListedStat(p)
    this.neg?.delete(p)
    this.pendingAttr.delete(p)
    this.pendingDir.delete(p)
    // A listing of the parent in flight now may carry `p`'s attributes from before: nobody joins it any more.
    if (p !== '/') this.pendingDir.delete(p.slice(0, Math.max(1, p.lastIndexOf('/'))))
    if (this.inflight.size > 0) {
      const s = ++this.seq
      this.exact.delete(p)
      this.exact.set(p, s)
      if (this.exact.size > 4096) {
        const oldest = this.oldestInflight()
        for (const [k, v] of this.exact) { if (v >= oldest) break; this.exact.delete(k) }
      }
    }
  }

  /**
   * The parent's cached listing keeps the name of `p` but no longer its attributes: a kernel that takes
   * attributes from READDIRPLUS would otherwise be handed the size and mtime from before the change. (The entry
   * then goes out without attributes and the kernel looks it up.)
   */
  private forgetListedStat (p: string): void {
    if (p === '/' || !this.dir) return
    const slash = p.lastIndexOf('/')
    const e = this.dir.peek(slash === 0 ? '/' : p.slice(0, slash))
    if (e === undefined) return
    if (e.idx === undefined) {
      e.idx = new Map()
      e.v.forEach((d, i) => e.idx!.set(d.name, i))
    }
    const i = e.idx.get(p.slice(slash + 1))
    if (i !== undefined && e.v[i].stat !== undefined) e.v[i] = { name: e.v[i].name }
  }

  /** Forgets `p` and everything below it (a renamed or removed directory). */
  invalidateTree (p: string): void {
    if (!this.enabled) return
    this.invalidate(p)
    const s = ++this.seq
    this.tombs.delete(p)
    this.tombs.set(p, { seq: s, at: this.now() })
    const below = p === '/' ? '/' : p + '/'
    for (const k of [...this.pendingAttr.keys()]) if (k.startsWith(below)) this.pendingAttr.delete(k)
    for (const k of [...this.pendingDir.keys()]) if (k.startsWith(below)) this.pendingDir.delete(k)
    this.pruneTombs()
  }

  /** Forgets everything (e.g. `fsx invalidate` without a path). */
  clear (): void {
    this.invalidateTree('/')
    this.attr?.clear()
    this.dir?.clear()
    this.neg?.clear()
  }

  private pruneTombs (): void {
    const horizon = this.now() - this.maxTtlMs - this.staleMs
    const oldest = this.oldestInflight()
    for (const [k, t] of this.tombs) {
      if (t.at >= horizon || t.seq >= oldest) break
      this.tombs.delete(k)
    }
  }

  // ---- figures ----------------------------------------------------------------------------------------------------

  /** Counters per cache, in the shape of `VfsStats.caches`. */
  counters (): { attr: CacheStats, dir: CacheStats, negative: CacheStats } {
    const a = this.attr?.size ?? 0
    const n = this.neg?.size ?? 0
    return {
      attr: { ...this.counts.attr, entries: a, bytes: a * ATTR_ENTRY_BYTES },
      dir: { ...this.counts.dir, entries: this.dir?.size ?? 0, bytes: this.dirNames * DIR_ENTRY_BYTES },
      negative: { ...this.counts.negative, entries: n, bytes: n * NEG_ENTRY_BYTES }
    }
  }

  /** Estimated heap bytes held by the three caches (O(1): read on every memory-budget decision). */
  bytes (): number {
    return (this.attr?.size ?? 0) * ATTR_ENTRY_BYTES + this.dirNames * DIR_ENTRY_BYTES + (this.neg?.size ?? 0) * NEG_ENTRY_BYTES
  }
}
