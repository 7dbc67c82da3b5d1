/**
 * The metadata cache: what recent listings and HEADs said, trusted for `ttlMs` (s3ListCacheTtl).
 *
 * Why: every lookup the kernel makes of a name would otherwise cost up to three requests (HEAD key, HEAD key/,
 * LIST key/), and `ls -l`, builds and untar make thousands. Two kinds of entry:
 * - nodes: path → what a HEAD found (a Stat plus the object's metadata, which chmod/xattrs/rewrites need), or
 *   `null` for "nothing there";
 * - directories: path → the names a complete listing returned, with their kind. A lookup of a name that a fresh
 *   listing of its parent does not hold is "no such file" without a request; one it holds skips the probes that
 *   cannot succeed. A directory listed before whose listing expired is listed again (one request) rather than
 *   probed name by name (up to three requests per name): see `listedSize`.
 *
 * Invariants:
 * - Mutations made through this backend update the cache before they resolve (`put`, `added`, `removed`,
 *   `removedTree`), so this mount sees its own changes at once. Other clients' changes show up at most `ttlMs` late.
 * - ttlMs 0 disables it: every get misses, nothing is stored.
 * - Bounded: past `maxEntries` the oldest entries are dropped (a Map iterates in insertion order; `set` re-inserts).
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
}

interface Timed<T> { at: number; value: T }

/** Default bound on cached entries (nodes plus directories): about 100 MB in the worst case, usually far less. */
export const DEFAULT_MAX_ENTRIES = 100_000

export class MetaCache {
  private readonly nodes = new Map<string, Timed<NodeInfo | null>>()
  private readonly dirs = new Map<string, Timed<Map<string, NodeKind>>>()
  /** Directories listed before (fresh or not) and their size then: worth listing again instead of probing names. */
  private readonly listed = new Map<string, number>()
  hits = 0

  constructor (readonly ttlMs: number, private readonly now: () => number = Date.now, private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  private fresh<T> (m: Map<string, Timed<T>>, key: string): T | undefined {
    const e = m.get(key)
    if (e === undefined) return undefined
    if (this.now() - e.at >= this.ttlMs) {
      m.delete(key)
      return undefined
    }
    return e.value
  }

  private store<T> (m: Map<string, Timed<T>>, key: string, value: T): void {
    if (this.ttlMs <= 0) return
    m.delete(key)
    m.set(key, { at: this.now(), value })
    if (this.nodes.size + this.dirs.size > this.maxEntries) {
      const victim = this.nodes.size >= this.dirs.size ? this.nodes : this.dirs
      const oldest = victim.keys().next()
      if (oldest.done !== true) victim.delete(oldest.value)
    }
  }

  /** The node at `p`: NodeInfo, null for known-absent, undefined for unknown or expired. */
  node (p: string): NodeInfo | null | undefined {
    const v = this.fresh(this.nodes, p)
    if (v !== undefined) this.hits++
    return v
  }

  setNode (p: string, info: NodeInfo | null): void {
    this.store(this.nodes, p, info)
  }

  /** Names (and kinds) of a fresh complete listing of directory `p`, or undefined. */
  dir (p: string): Map<string, NodeKind> | undefined {
    return this.fresh(this.dirs, p)
  }

  setDir (p: string, names: Map<string, NodeKind>): void {
    this.store(this.dirs, p, names)
    if (this.ttlMs <= 0) return
    this.listed.delete(p)
    this.listed.set(p, names.size)
    if (this.listed.size > this.maxEntries) this.listed.delete(this.listed.keys().next().value as string)
  }

  /** Size of the last listing of `p`, fresh or expired, if there was one. */
  listedSize (p: string): number | undefined {
    return this.listed.get(p)
  }

  /** A node now exists at `p` (written, made, renamed to): its parent's listing holds it; `info` replaces the node. */
  added (p: string, kind: NodeKind, info?: NodeInfo): void {
    if (p !== '/') this.dir(parentOf(p))?.set(baseName(p), kind)
    if (info !== undefined) this.setNode(p, info)
    else this.nodes.delete(p)
  }

  /** The node at `p` is gone (a file; for a directory see removedTree). */
  removed (p: string): void {
    if (p !== '/') this.dir(parentOf(p))?.delete(baseName(p))
    this.setNode(p, null)
    this.dirs.delete(p)
  }

  /** `p` and everything below it are gone or changed wholesale (rmdir, directory rename). */
  removedTree (p: string): void {
    const below = p === '/' ? '/' : p + '/'
    for (const m of [this.nodes, this.dirs, this.listed] as Array<Map<string, unknown>>) {
      for (const k of [...m.keys()]) if (k === p || k.startsWith(below)) m.delete(k)
    }
    this.removed(p)
  }

  /** Forgets `p` (a change whose outcome is unknown, e.g. a failed upload). */
  forget (p: string): void {
    this.nodes.delete(p)
    if (p !== '/') this.dirs.delete(parentOf(p))
  }

  /** Forgets `p`, everything below it and its parent's listing (changed by another client, outcome unknown). */
  forgetTree (p: string): void {
    if (p === '/') return this.clear()
    const below = p + '/'
    for (const m of [this.nodes, this.dirs, this.listed] as Array<Map<string, unknown>>) {
      for (const k of [...m.keys()]) if (k === p || k.startsWith(below)) m.delete(k)
    }
    this.forget(p)
  }

  clear (): void {
    this.nodes.clear()
    this.dirs.clear()
    this.listed.clear()
  }
}
