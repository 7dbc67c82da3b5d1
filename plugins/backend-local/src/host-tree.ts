/**
 * HostTree: how the local backend reaches a node under its root without ever following a symlink on the host.
 *
 * Invariants (the security contract of the local backend):
 * 1. A backend path starts with "/", holds no NUL byte and no ".." component (EINVAL / EACCES); "." and empty
 *    components are dropped, so "/a//./b/" names the same node as "/a/b". Names are bytes (kit.names).
 * 2. The root is held open as a directory descriptor (O_PATH) from create() on: renaming the root's path or
 *    putting a symlink there later does not move the backend.
 * 3. Every operation first opens the *parent* directory of its node relative to that descriptor with
 *    openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): the kernel refuses any symlink at
 *    any component in the same call that resolves the path, so there is no check-then-use window for a host
 *    process to race. (A component that is a symlink gives EACCES: the node is not reachable through fsx.)
 *    Without openat2 (no FFI, kernel < 5.6, seccomp) the same guarantee comes from a walk: one
 *    open(O_PATH | O_NOFOLLOW | O_DIRECTORY) per component, each relative to the descriptor before it.
 *    Paths longer than PATH_MAX are resolved in pieces, each from the descriptor of the piece before.
 * 4. The operation then names its node as `/proc/<pid>/fd/<parent>/<name>`: the kernel jumps through the magic
 *    link to exactly the directory the descriptor pins and resolves only `name` there, with the call's own rules
 *    for the last component (lstat, O_NOFOLLOW, lchown… never follow it). The root and directories used as
 *    such are named `/proc/<pid>/fd/<dir>/.`.
 * 5. Every descriptor opened for an operation is closed when the operation settles, whatever its outcome.
 *
 * NB: a directory that a host process *moves* out of the root while an operation holds its descriptor is still
 * used by that operation; moving requires write access to the destination, which symlinks do not.
 */
import { open as openCb, closeSync, lstat, constants as fsConstants } from 'node:fs'
import { promisify } from 'node:util'
import type { BackendKit } from '@fsx/sdk'

const openFd = promisify(openCb) as (path: string | Buffer, flags: number) => Promise<number>
const lstatP = promisify(lstat)

/** Linux values (x86-64 and arm64 share them); Node does not export O_PATH. */
const O_PATH = 0o10000000
const O_DIRECTORY = fsConstants.O_DIRECTORY ?? 0o200000
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0o400000
const O_CLOEXEC = 0o2000000
const RESOLVE_NO_MAGICLINKS = 0x02
const RESOLVE_NO_SYMLINKS = 0x04
const RESOLVE_BENEATH = 0x08
const DIR_FLAGS = O_PATH | O_DIRECTORY | O_CLOEXEC
/** Longest relative path handed to one openat2 call: under PATH_MAX (4096 with its NUL) with room to spare. */
const MAX_PIECE_BYTES = 3800

/** A node reached for one operation: its parent's descriptor and its name there. Call `close()` when done. */
export interface At {
  /** Normalised backend path ("/" or "/a/b"), for messages. */
  path: string
  /** Backend path components below the root ("" for the root). */
  rel: string
  /** The node as a host path that never re-resolves its parents: /proc/<pid>/fd/<parent>/<name>. */
  host: string | Buffer
  /** Descriptor of the parent directory (the root's own descriptor for the root). */
  dirFd: number
  /** The node's name in that directory, as bytes ("." for the root). */
  name: Buffer
  /** True for the root itself. */
  isRoot: boolean
}

export class HostTree {
  private useOpenat2: boolean

  /** `rootFd` must be an O_PATH (or readable) directory descriptor this tree now owns. */
  constructor (readonly rootFd: number, private readonly kit: BackendKit, opts: { openat2?: boolean } = {}) {
    this.useOpenat2 = (opts.openat2 ?? true) && kit.sys !== undefined
  }

  /** Opens `root` (an absolute host path, symlinks in it followed once, as the user named it) as a root descriptor. */
  static async openRoot (root: string, kit: BackendKit): Promise<number> {
    if (kit.sys) return kit.sys.open(Buffer.from(root), DIR_FLAGS, 0)
    return await openFd(root, DIR_FLAGS)
  }

  /** How paths are resolved: 'openat2' or the per-component 'walk'. */
  get mode (): 'openat2' | 'walk' { return this.useOpenat2 ? 'openat2' : 'walk' }

  /** Validates and splits `p` without touching the disk (invariant 1). */
  parse (p: string, op: string): { path: string, parts: string[] } {
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
    return { path: '/' + parts.join('/'), parts }
  }

  /**
   * Runs `fn` with `p` reached as in invariants 3 and 4, closing what it opened afterwards. With `asDir`, `p`
   * itself is opened as the directory (for readdir, statfs) and named `<dir>/.`.
   */
  async with<T> (p: string, op: string, fn: (at: At) => Promise<T>, asDir = false): Promise<T> {
    const { path, parts } = this.parse(p, op)
    const rel = parts.join('/')
    const dirParts = asDir ? parts : parts.slice(0, -1)
    const dirFd = dirParts.length === 0 ? this.rootFd : await this.openDir(dirParts, path, op)
    try {
      const isRoot = parts.length === 0
      const last = asDir || isRoot ? '.' : parts[parts.length - 1]
      const name = this.kit.names.toBytes(last)
      // A string when the name is valid UTF-8 (Node encodes it back to the same bytes), else the raw bytes.
      const host = this.kit.names.hasEscapes(last) ? Buffer.concat([Buffer.from(`${FD_DIR}${dirFd}/`), name]) : `${FD_DIR}${dirFd}/${last}`
      return await fn({ path, rel, host, dirFd, name, isRoot })
    } finally {
      if (dirFd !== this.rootFd) closeQuietly(dirFd)
    }
  }

  /** Closes the root descriptor. */
  close (): void {
    closeQuietly(this.rootFd)
  }

  /** Opens the directory `parts` below the root without following any symlink (invariant 3). */
  private async openDir (parts: string[], path: string, op: string): Promise<number> {
    if (this.useOpenat2) {
      try {
        return this.openat2Pieces(parts, path, op)
      } catch (err) {
        const code = (err as { code?: string }).code
        // No openat2 here (old kernel, seccomp, a sandbox): fall back for good, say nothing (same guarantee).
        if (code !== 'ENOSYS' && code !== 'EPERM' && code !== 'E2BIG') throw err
        this.useOpenat2 = false
      }
    }
    return await this.walk(parts, path, op)
  }

  private openat2Pieces (parts: string[], path: string, op: string): number {
    const sys = this.kit.sys!
    let fd = this.rootFd
    let i = 0
    try {
      while (i < parts.length) {
        // One piece: as many components as fit under MAX_PIECE_BYTES (at least one; a name is ≤ 255 bytes).
        const bytes: Buffer[] = []
        let len = 0
        while (i < parts.length) {
          const b = this.kit.names.toBytes(parts[i])
          if (bytes.length > 0 && len + 1 + b.length > MAX_PIECE_BYTES) break
          bytes.push(b)
          len += (bytes.length > 1 ? 1 : 0) + b.length
          i++
        }
        const piece = Buffer.concat(bytes.flatMap((b, k) => k === 0 ? [b] : [SLASH, b]))
        let next: number
        try {
          next = sys.openat2(fd, piece, DIR_FLAGS, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        } catch (err) {
          throw this.translate(err, path, op)
        }
        if (fd !== this.rootFd) closeQuietly(fd)
        fd = next
      }
      return fd
    } catch (err) {
      if (fd !== this.rootFd) closeQuietly(fd)
      throw err
    }
  }

  private async walk (parts: string[], path: string, op: string): Promise<number> {
    let fd = this.rootFd
    try {
      for (const part of parts) {
        const child = this.kit.names.hasEscapes(part) ? Buffer.concat([Buffer.from(`${FD_DIR}${fd}/`), this.kit.names.toBytes(part)]) : `${FD_DIR}${fd}/${part}`
        let next: number
        try {
          next = await openFd(child, DIR_FLAGS | O_NOFOLLOW)
        } catch (err) {
          // O_NOFOLLOW | O_DIRECTORY on a symlink is ENOTDIR, as on a file: tell them apart.
          if ((err as { code?: string }).code === 'ENOTDIR' && await lstatP(child).then(s => s.isSymbolicLink(), () => false)) {
            throw this.symlinkError(path, op)
          }
          throw err
        }
        if (fd !== this.rootFd) closeQuietly(fd)
        fd = next
      }
      return fd
    } catch (err) {
      if (fd !== this.rootFd) closeQuietly(fd)
      throw err
    }
  }

  private translate (err: unknown, path: string, op: string): unknown {
    const code = (err as { code?: string }).code
    if (code === 'ELOOP' || code === 'EXDEV') return this.symlinkError(path, op)
    return err
  }

  private symlinkError (path: string, op: string): Error {
    return this.kit.fsxError('EACCES', `${op}: ${path} passes through a symlink on the host; fsx does not follow it`, { path, op })
  }
}

const SLASH = Buffer.from('/')

/**
 * Where this process's descriptors show as paths. By pid rather than /proc/self: a helper process fsx spawns
 * (getfattr, setfattr) must resolve the same paths.
 */
export const FD_DIR = `/proc/${process.pid}/fd/`

function closeQuietly (fd: number): void {
  // NB: synchronous on purpose: closing an O_PATH directory descriptor does no I/O and cannot block.
  try { closeSync(fd) } catch { /* already closed */ }
}
