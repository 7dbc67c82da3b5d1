/**
 * RootGuard: turns backend paths ("/a/b") into host paths under the root, and refuses anything that would reach
 * outside the root. Every host path the local backend touches comes from here.
 *
 * Invariants (the security contract of the local backend):
 * 1. A backend path must start with "/", hold no NUL byte and no ".." component; otherwise EINVAL / EACCES.
 *    "." and empty components are dropped, so "/a//./b/" names the same node as "/a/b".
 * 2. Host paths are built from the root's realpath, resolved once at create(): swapping the root itself for a
 *    symlink later does not move the backend.
 * 3. The last component is never followed on the host side: callers use lstat, O_NOFOLLOW, lchown, lutimes,
 *    `getfattr -h`, or an O_PATH descriptor (see LocalBackend). This guard only vouches for the components
 *    before it: `parentOf(p)` resolves the realpath of p's parent directory and requires it to be the root or
 *    below it (EACCES otherwise). Operations that use p itself as a directory (list, statfs) call `dir(p)`, which
 *    checks p's own realpath the same way.
 * 4. Verified directories are cached for `verifyTtlMs` (default 1 s) so the check costs one realpath per directory
 *    per second, not one per call. Every change made through the backend that can put a symlink where a directory
 *    was (rename, symlink, link) calls `forget(names…)`: it drops the verified directories at or below those names
 *    (only their realpaths can have changed) and bumps a generation counter so a verification that was in flight
 *    across the change is not cached. Hence a directory replaced by a symlink *through the mount* is re-checked on
 *    the next call, while the rest of the cache survives a rename.
 *
 * NB: what this does not cover: a process on the host that races the backend (swaps a checked directory for a
 * symlink between the check and the system call, or within the TTL). Closing that needs openat2(RESOLVE_BENEATH),
 * which Node does not expose; run fsx in a mount namespace or container if untrusted host processes can write
 * inside the root.
 */
import { realpath } from 'node:fs/promises'
import type { BackendKit } from '../../../src/backend/types.js'

/** How long a verified directory stays trusted, in ms. Short: the cache only has to absorb bursts (ls -l, rm -r). */
export const DEFAULT_VERIFY_TTL_MS = 1000
/** Upper bound on cached directories; the cache is simply emptied when it grows past this. */
const MAX_VERIFIED = 4096

export interface RootGuardOptions {
  /** Cache lifetime of a verified directory in ms; 0 disables the cache. Default 1000. */
  verifyTtlMs?: number
  /** Clock in ms, injectable for tests. Default Date.now. */
  now?: () => number
}

/** A backend path split into what the local backend needs. */
export interface Resolved {
  /** Normalised backend path ("/" or "/a/b"). */
  path: string
  /** Components below the root joined by "/" ("" for the root). */
  rel: string
  /** Absolute host path. */
  host: string
}

export class RootGuard {
  /** The root's realpath, no trailing slash except when it is "/" itself. */
  readonly realRoot: string
  private readonly prefix: string
  private readonly verified = new Map<string, number>()
  private generation = 0
  private readonly ttlMs: number
  private readonly now: () => number

  constructor (realRoot: string, private readonly kit: BackendKit, opts: RootGuardOptions = {}) {
    this.realRoot = realRoot
    this.prefix = realRoot.endsWith('/') ? realRoot : realRoot + '/'
    this.ttlMs = opts.verifyTtlMs ?? DEFAULT_VERIFY_TTL_MS
    this.now = opts.now ?? Date.now
  }

  /** Validates and maps `p` without touching the disk (invariant 1). */
  resolve (p: string, op: string): Resolved {
    if (typeof p !== 'string' || !p.startsWith('/')) {
      throw this.kit.fsxError('EINVAL', `${op}: path must be absolute within the backend: ${JSON.stringify(p)}`, { path: String(p), op })
    }
    if (p.includes('\0')) throw this.kit.fsxError('EINVAL', `${op}: path holds a NUL byte`, { path: p, op })
    const parts: string[] = []
    for (const part of p.split('/')) {
      if (part === '' || part === '.') continue
      if (part === '..') throw this.kit.fsxError('EACCES', `${op}: ".." is not allowed in ${p}`, { path: p, op })
      parts.push(part)
    }
    const rel = parts.join('/')
    return { path: '/' + rel, rel, host: rel === '' ? this.realRoot : this.prefix + rel }
  }

  /** resolve() plus invariant 3 for the parent: the parent directory's realpath lies inside the root. */
  async parentOf (p: string, op: string): Promise<Resolved> {
    const r = this.resolve(p, op)
    const slash = r.rel.lastIndexOf('/')
    if (slash > 0) await this.verify(r.rel.slice(0, slash), r.path, op)
    return r
  }

  /** resolve() plus invariant 3 for `p` itself, for calls that use p as a directory (readdir, statfs). */
  async dir (p: string, op: string): Promise<Resolved> {
    const r = this.resolve(p, op)
    if (r.rel !== '') await this.verify(r.rel, r.path, op)
    return r
  }

  /** Rejects `p` when it names the root: the root must not be removed, renamed or replaced. */
  notRoot (r: Resolved, op: string, code: string): void {
    if (r.rel === '') throw this.kit.fsxError(code, `${op}: not allowed on the backend root`, { path: '/', op })
  }

  /**
   * Invariant 4: call after a change made through the backend at the given names (Resolved.rel); with no names,
   * everything is forgotten.
   */
  forget (...rels: string[]): void {
    this.generation++
    if (rels.length === 0 || rels.includes('')) {
      this.verified.clear()
      return
    }
    for (const dir of this.verified.keys()) {
      if (rels.some(rel => dir === rel || dir.startsWith(rel + '/'))) this.verified.delete(dir)
    }
  }

  private async verify (relDir: string, path: string, op: string): Promise<void> {
    const now = this.now()
    const until = this.verified.get(relDir)
    if (until !== undefined && until > now) return
    const gen = this.generation
    // realpath errors (ENOENT, ENOTDIR, ELOOP, EACCES) are what the operation itself would have hit: pass them on.
    const real = await realpath(this.prefix + relDir)
    if (real !== this.realRoot && !real.startsWith(this.prefix)) {
      throw this.kit.fsxError('EACCES', `${op}: ${path} leads outside the backend root through a symlink`, { path, op })
    }
    if (this.ttlMs > 0 && gen === this.generation) {
      if (this.verified.size >= MAX_VERIFIED) this.verified.clear()
      this.verified.set(relDir, now + this.ttlMs)
    }
  }
}
