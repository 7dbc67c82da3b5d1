/**
 * The metadata cache: what recent listings and HEADs said, trusted for `ttlMs` (s3ListCacheTtl).
 *
 * Why: every lookup the kernel makes of a name would otherwise cost requests (HEAD key, HEAD key/, LIST key/), and
 * `ls -l`, builds and untar make thousands. Two kinds of entry:
 * - nodes: path → what a HEAD (or our own write) found: a Stat plus the object's metadata, which chmod/xattrs and
 *   rewrites need; or `null` for "nothing there";
 * - directory indexes: per directory, the names listings returned (kind, size, LastModified, ETag) and the ranges
 *   of names those listings covered, each with the time it was listed. A complete listing covers every name; a
 *   listing "from a name onward" (one page of ListObjectsV2 with StartAfter) covers the names from there to its
 *   last entry. A lookup of a name a fresh range covers is answered from it, present or absent, without a request
 *   (geesefs's "gaps loaded", mountpoint-s3's listing-derived stat).
 *
 * Ordering: S3 lists keys in UTF-8 byte order; `compareNames` is that order (JavaScript's own string order, which is
 * UTF-16's, agrees with it for every string without surrogate pairs).
 *
 * Invariants:
 * - Mutations made through this backend update the cache before they resolve (`added`, `removed`, `removedTree`,
 *   `setNode`), so this mount sees its own changes at once. Other clients' changes show up at most `ttlMs` late.
 * - What a request saw is stored only if nothing it covers was changed through this mount since the request began:
 *   every request takes a sequence number (`begin`), every mutation records a newer one for its path (`touch`) or
 *   for everything (`touchTree`: directory renames and removals). A listing that raced a change of one of its names
 *   is still stored, but that name keeps what the change made of it.
 * - ttlMs 0 disables it: every lookup misses, nothing is stored.
 * - Bounded: past `maxEntries` (nodes plus listed names) the oldest nodes and indexes are dropped (a Map iterates in
 *   insertion order; `store` re-inserts).
 * - Time comes from the injected `now` (tests fake it instead of sleeping).
 */
import type { NodeKind, Stat } from '@fsx/sdk'
import type { ObjectInfo } from './metadata.js'
import { baseName, parentOf } from './keys.js'

/** What is known about one path. */
export interface NodeInfo {
  stat: Stat
  /** The object behind it (the marker for a directory), when a HEAD or our own write told us; undefined for a
   *  directory without a marker and for knowledge that came from a listing. */
  object?: ObjectInfo
  /** A symlink's target, once read. */
  target?: string
  /** The stat came from a listing: size, LastModified and kind only; mode, owner and times are the defaults. */
  listed?: boolean
}

/** One name as a listing gave it. */
export interface Listed {
  kind: NodeKind
  /** Files: the object's size, LastModified and ETag. */
  size?: number
  lastModifiedMs?: number
  etag?: string
}

/** Names in (after, upTo] were all listed at `at` (upTo undefined: to the end of the directory). */
interface Range { after: string; upTo?: string; at: number }

interface DirIndex {
  names: Map<string, Listed>
  ranges: Range[]
  /** Names of the last complete listing, then kept up to date by mutations through this mount. */
  complete?: boolean
  /** Names changed through this mount while a listing of this directory was in flight → the change's sequence. */
  touched: Map<string, number>
  listings: number
}

interface Timed<T> { at: number; value: T }

/** Default bound on cached entries (nodes plus listed names): about 100 MB in the worst case, usually far less. */
export const DEFAULT_MAX_ENTRIES = 200_000

const SURROGATE = /[\uD800-\uDFFF]/

/** S3's order of keys (UTF-8 bytes). */
export function compareNames (a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

export class MetaCache {
  private readonly nodes = new Map<string, Timed<NodeInfo | null>>()
  private readonly dirs = new Map<string, DirIndex>()
  /** Directories listed completely before (fresh or not) and their size then: worth listing again whole. */
  private readonly listedSizes = new Map<string, number>()
  /** Names held by the indexes, for the bound. */
  private names = 0
  /** Sequence of requests and mutations. */
  private seq = 0
  /** Path → sequence of its last mutation, kept while requests are in flight. */
  private readonly touched = new Map<string, number>()
  /** Sequence of the last mutation of a whole tree (rmdir, directory rename). */
  private treeSeq = 0
  private inflight = 0
  hits = 0

  constructor (readonly ttlMs: number, private readonly now: () => number = Date.now, private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  // ---- requests and mutations ------------------------------------------------------------------------------------

  /** A request starts: its sequence number, for `storable` / `storeListing`. Pair every begin with `end`. */
  begin (): number {
    this.inflight++
    return ++this.seq
  }

  end (): void {
    if (--this.inflight <= 0) {
      this.inflight = 0
      this.touched.clear()
    }
  }

  /** `p` is being changed through this mount. */
  touch (p: string): void {
    const s = ++this.seq
    if (this.inflight > 0) this.touched.set(p, s)
    const d = p === '/' ? undefined : this.dirs.get(parentOf(p))
    if (d !== undefined && d.listings > 0) d.touched.set(baseName(p), s)
  }

  /** Everything may be changing (a directory renamed or removed): requests in flight store nothing. */
  touchTree (): void {
    this.treeSeq = ++this.seq
  }

  /** May what a request begun at `start` saw of `p` be stored? */
  storable (p: string, start: number): boolean {
    return this.treeSeq < start && (this.touched.get(p) ?? 0) < start
  }

  // ---- nodes ------------------------------------------------------------------------------------------------------

  private fresh (at: number): boolean {
    return this.now() - at < this.ttlMs
  }

  /** The node at `p`: NodeInfo, null for known-absent, undefined for unknown or expired. */
  node (p: string): NodeInfo | null | undefined {
    const e = this.nodes.get(p)
    if (e === undefined) return undefined
    if (!this.fresh(e.at)) {
      this.nodes.delete(p)
      return undefined
    }
    this.hits++
    return e.value
  }

  setNode (p: string, info: NodeInfo | null): void {
    if (this.ttlMs <= 0) return
    this.nodes.delete(p)
    this.nodes.set(p, { at: this.now(), value: info })
    this.bound()
  }

  private bound (): void {
    while (this.nodes.size + this.names > this.maxEntries) {
      if (this.nodes.size > 0 && this.nodes.size >= this.names) {
        this.nodes.delete(this.nodes.keys().next().value as string)
      } else {
        const oldest = this.dirs.keys().next()
        if (oldest.done === true) break
        this.dropIndex(oldest.value)
      }
    }
  }

  // ---- directory indexes ------------------------------------------------------------------------------------------

  private index (p: string, create: true): DirIndex
  private index (p: string, create?: false): DirIndex | undefined
  private index (p: string, create = false): DirIndex | undefined {
    let d = this.dirs.get(p)
    if (d === undefined && create) {
      d = { names: new Map(), ranges: [], touched: new Map(), listings: 0 }
      this.dirs.set(p, d)
    }
    return d
  }

  private dropIndex (p: string): void {
    const d = this.dirs.get(p)
    if (d === undefined) return
    this.names -= d.names.size
    this.dirs.delete(p)
  }

  /** A listing of `dir` starts (names changed meanwhile keep what the change made of them). */
  listingBegins (dir: string): number {
    if (this.ttlMs > 0) this.index(dir, true).listings++
    return this.begin()
  }

  listingEnds (dir: string): void {
    const d = this.dirs.get(dir)
    if (d !== undefined && --d.listings <= 0) {
      d.listings = 0
      d.touched.clear()
    }
    this.end()
  }

  /**
   * Stores what a listing of `dir` begun at `start` returned: `entries` are every name in (after, upTo], upTo
   * undefined for "to the end" (after '' and upTo undefined: a complete listing).
   */
  storeListing (dir: string, start: number, after: string, upTo: string | undefined, entries: Iterable<[string, Listed]>): void {
    if (this.ttlMs <= 0 || this.treeSeq >= start) return
    const d = this.index(dir, true)
    const inRange = (n: string): boolean => compareNames(after, n) < 0 && (upTo === undefined || compareNames(n, upTo) <= 0)
    const kept = new Map<string, Listed | undefined>()
    for (const [n, s] of d.touched) if (s > start) kept.set(n, d.names.get(n))
    for (const n of [...d.names.keys()]) {
      if (inRange(n)) { d.names.delete(n); this.names-- }
    }
    for (const [n, l] of entries) {
      if (!d.names.has(n)) this.names++
      d.names.set(n, l)
    }
    for (const [n, l] of kept) {
      if (d.names.has(n)) this.names--
      d.names.delete(n)
      if (l !== undefined) { d.names.set(n, l); this.names++ }
    }
    const at = this.now()
    const covers = (r: Range): boolean => compareNames(after, r.after) <= 0 &&
      (upTo === undefined || (r.upTo !== undefined && compareNames(r.upTo, upTo) <= 0))
    d.ranges = d.ranges.filter(r => this.fresh(r.at) && !covers(r))
    d.ranges.push({ after, upTo, at })
    if (after === '' && upTo === undefined) {
      d.complete = true
      this.listedSizes.delete(dir)
      this.listedSizes.set(dir, d.names.size)
      if (this.listedSizes.size > this.maxEntries) this.listedSizes.delete(this.listedSizes.keys().next().value as string)
    }
    // Most recently listed last (the bound drops the oldest first).
    this.dirs.delete(dir)
    this.dirs.set(dir, d)
    this.bound()
  }

  /**
   * What a fresh listing of `dir` says of `name`: its entry, null when a fresh listing covers the name and did not
   * hold it, undefined when no fresh listing covers it.
   */
  listed (dir: string, name: string): Listed | null | undefined {
    const d = this.dirs.get(dir)
    if (d === undefined) return undefined
    const slashed = name + '/'
    const covered = d.ranges.some(r => this.fresh(r.at) && compareNames(r.after, name) < 0 &&
      (r.upTo === undefined || compareNames(slashed, r.upTo) <= 0))
    if (!covered) return undefined
    return d.names.get(name) ?? null
  }

  /** The names of a fresh complete listing of `dir`, kept up to date with this mount's changes; else undefined. */
  dir (p: string): Map<string, Listed> | undefined {
    const d = this.dirs.get(p)
    if (d === undefined || d.complete !== true) return undefined
    return d.ranges.some(r => r.after === '' && r.upTo === undefined && this.fresh(r.at)) ? d.names : undefined
  }

  /** Size of the last complete listing of `p`, fresh or expired, if there was one. */
  listedSize (p: string): number | undefined {
    return this.listedSizes.get(p)
  }

  /** `p` was made empty through this mount (mkdir): a complete listing with nothing in it. */
  setEmptyDir (p: string): void {
    this.storeListing(p, Number.MAX_SAFE_INTEGER, '', undefined, [])
  }

  /** A node now exists at `p` (written, made, renamed to): its parent's index holds it; `info` replaces the node. */
  added (p: string, kind: NodeKind, info?: NodeInfo): void {
    // Touched again now it is done: a listing that began after the change began (its `touch`) may still have been
    // answered without it, and must not wipe it from the index when stored.
    this.touch(p)
    if (p !== '/') {
      const d = this.dirs.get(parentOf(p))
      if (d !== undefined) {
        const n = baseName(p)
        if (!d.names.has(n)) this.names++
        const st = info?.stat
        d.names.set(n, st === undefined || kind === 'dir' ? { kind } : { kind, size: st.size, lastModifiedMs: info?.object?.lastModifiedMs, etag: st.etag })
      }
    }
    if (info !== undefined) this.setNode(p, info)
    else this.nodes.delete(p)
  }

  /** The node at `p` is gone (a file; for a directory see removedTree). */
  removed (p: string): void {
    this.touch(p) // as in `added`: a listing answered before the delete landed must not bring the name back
    if (p !== '/') {
      const d = this.dirs.get(parentOf(p))
      if (d?.names.delete(baseName(p)) === true) this.names--
    }
    this.setNode(p, null)
    this.dropIndex(p)
  }

  /** `p` and everything below it are gone or changed wholesale (rmdir, directory rename). */
  removedTree (p: string): void {
    const below = p === '/' ? '/' : p + '/'
    for (const k of [...this.nodes.keys()]) if (k === p || k.startsWith(below)) this.nodes.delete(k)
    for (const k of [...this.dirs.keys()]) if (k === p || k.startsWith(below)) this.dropIndex(k)
    for (const k of [...this.listedSizes.keys()]) if (k === p || k.startsWith(below)) this.listedSizes.delete(k)
    this.removed(p)
  }

  /** Forgets `p` (a change whose outcome is unknown, e.g. a failed upload): its node and its parent's index. */
  forget (p: string): void {
    this.nodes.delete(p)
    if (p !== '/') this.dropIndex(parentOf(p))
  }

  /** Forgets `p`, everything below it and its parent's listing (changed by another client, outcome unknown). */
  forgetTree (p: string): void {
    if (p === '/') return this.clear()
    const below = p + '/'
    for (const k of [...this.nodes.keys()]) if (k === p || k.startsWith(below)) this.nodes.delete(k)
    for (const k of [...this.dirs.keys()]) if (k === p || k.startsWith(below)) this.dropIndex(k)
    for (const k of [...this.listedSizes.keys()]) if (k === p || k.startsWith(below)) this.listedSizes.delete(k)
    this.forget(p)
  }

  clear (): void {
    this.nodes.clear()
    this.dirs.clear()
    this.listedSizes.clear()
    this.names = 0
  }
}
