/**
 * LocalBackend: a directory on this machine served through the Backend contract. It is the reference backend:
 * every optional capability is implemented with the system call it is named for.
 *
 * Invariants:
 * - Nothing outside the root is reachable (see root-guard.ts for the path rules and the parent-directory check).
 *   The last component is never followed on the host side:
 *     stat → lstat; read/open/truncate → O_NOFOLLOW (a symlink gives ELOOP); chown → lchown; utimens → lutimes;
 *     chmod → an O_PATH descriptor + /proc/self/fd (how glibc does fchmodat(AT_SYMLINK_NOFOLLOW); a symlink gives
 *     ENOTSUP), falling back to lstat + chmod (racy) where O_PATH or /proc is missing; xattrs → l*xattr (xattr.ts);
 *     remove/rmdir/rename/link/readlink/mkdir/symlink never follow the last component by definition.
 *   list and statfs use the path itself as a directory, so the guard checks that path's own realpath.
 * - The backend root itself cannot be removed, renamed or replaced (EBUSY / EISDIR / EEXIST).
 * - Errors are Node's own fs errors (they carry `code` = errno name) passed through unchanged, or `kit.fsxError`
 *   for what this file decides itself (EINVAL, EACCES, ENOTSUP…). NB: Node's messages name the host path.
 * - Every open descriptor carries O_NONBLOCK: no effect on regular files, but opening a FIFO can then never
 *   block a libuv thread-pool thread forever.
 * - Whole-object `write` is atomic: a temp file in the same directory, fsync, rename over the target. Attributes
 *   come from `attrs`, else from the file it replaces (mode, and ownership best effort like `cp -p`).
 * - Modes passed to mkdir/open/symlink creation are subject to the process umask, as in libfuse's passthrough
 *   examples; the mount front end sets the umask it wants.
 */
import { constants as fsConstants, type Stats } from 'node:fs'
import {
  chmod, link, lchown, lstat, lutimes, mkdir, open, readdir, readlink, realpath, rename, rmdir, stat, statfs, symlink,
  unlink, type FileHandle
} from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import type {
  Backend, BackendFileHandle, BackendKit, Capabilities, DirEntry, OpenFlags, Stat, StatFs, WriteAttrs, WriteSource
} from '../../../src/backend/types.js'
import { RootGuard, type RootGuardOptions } from './root-guard.js'
import { loadXattrs, type XattrMode, type XattrOps } from './xattr.js'

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fsConstants
/** Linux O_PATH (same value on every architecture Node runs on); Node does not export it. */
const O_PATH_LINUX = 0o10000000
/** lstat calls in flight per `list`: enough to hide disk latency, few enough not to starve the thread pool (4). */
export const LIST_CONCURRENCY = 16
/** Chunk size when copying a staging file into place during whole-object `write`. */
const COPY_CHUNK_BYTES = 1024 * 1024
/** Largest single read/write Node accepts (kIoMaxLength). */
const MAX_IO_BYTES = 2 ** 31 - 1
/** NAME_MAX of the common Linux filesystems; Node cannot ask pathconf. */
const NAME_MAX = 255

export interface LocalBackendOptions extends RootGuardOptions {
  /** false: no xattrs; 'native' / 'tools': only that way in (see xattr.ts); default: the best available. */
  xattrs?: boolean | XattrMode
}

/** Maps an fs.Stats from lstat to the contract's Stat. */
export function toStat (s: Stats): Stat {
  const kind = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other'
  return {
    kind,
    size: s.size,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    nlink: s.nlink,
    atimeMs: s.atimeMs,
    mtimeMs: s.mtimeMs,
    ctimeMs: s.ctimeMs,
    // NB: inode numbers above 2^53 (rare: some XFS/NFS setups) lose precision as a number.
    ino: s.ino,
    blocks: s.blocks
  }
}

/** The counters `counters()` returns. */
interface Counters { requests: number; reads: number; writes: number; bytesRead: number; bytesWritten: number }

export class LocalBackend implements Backend {
  readonly description: string
  readonly capabilities: Capabilities
  /** Root path as the user gave it (absolute), for messages. */
  readonly root: string
  private readonly guard: RootGuard
  /** How xattrs are served, undefined when they are not. */
  readonly xattrMode: XattrMode | undefined
  private readonly xattrOps: XattrOps | undefined
  private readonly useOPath: boolean
  private readonly stats: Counters = { requests: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 }

  /** Prefer `LocalBackend.create`, which checks the root, resolves its realpath and finds an xattr implementation. */
  constructor (root: string, realRoot: string, private readonly kit: BackendKit, opts: RootGuardOptions = {}, xattrOps?: XattrOps) {
    this.root = root
    this.description = `local:${root}`
    this.guard = new RootGuard(realRoot, kit, opts)
    this.xattrOps = xattrOps
    this.xattrMode = xattrOps?.mode
    this.useOPath = process.platform === 'linux' && existsSync('/proc/self/fd')
    this.capabilities = {
      randomWrite: true,
      symlinks: true,
      hardlinks: true,
      xattrs: xattrOps !== undefined,
      chmod: true,
      chown: true,
      utimens: true,
      statfs: true,
      atomicRename: true,
      realDirectories: true
    }
  }

  /** Opens `root` (absolute host path): it must exist and be a directory (ENOENT / ENOTDIR otherwise). */
  static async create (root: string, kit: BackendKit, opts: LocalBackendOptions = {}): Promise<LocalBackend> {
    let st: Stats
    try {
      st = await stat(root)
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'EIO'
      const what = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : `cannot be opened (${code})`
      throw kit.fsxError(code, `local source ${root} ${what}`, { path: root, op: 'create', cause: err })
    }
    if (!st.isDirectory()) throw kit.fsxError('ENOTDIR', `local source ${root} is not a directory`, { path: root, op: 'create' })
    const realRoot = await realpath(root)
    const xattrOps = opts.xattrs === false ? undefined : await loadXattrs(kit, opts.xattrs === true ? undefined : opts.xattrs)
    return new LocalBackend(root, realRoot, kit, opts, xattrOps)
  }

  counters (): Record<string, number> {
    return { ...this.stats }
  }

  async stat (p: string): Promise<Stat> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'stat')
    return toStat(await lstat(r.host))
  }

  async list (p: string): Promise<DirEntry[]> {
    this.stats.requests++
    const r = await this.guard.dir(p, 'list')
    // Plain names: the lstat below gives the type anyway, so readdir's d_type would be redundant.
    // NB: a host name that is not valid UTF-8 comes back mangled and then fails lstat (ENOENT), so it is left out:
    // the contract's names are strings, such a file could not be addressed anyway.
    const names = await readdir(r.host)
    const base = r.host.endsWith('/') ? r.host : r.host + '/'
    const out: Array<DirEntry | undefined> = new Array(names.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++
        const name = names[i]
        try {
          out[i] = { name, stat: toStat(await lstat(base + name)) }
        } catch (err) {
          // Gone between readdir and lstat: it is no longer an entry. Anything else: the name without attributes.
          out[i] = (err as { code?: string }).code === 'ENOENT' ? undefined : { name }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, names.length) }, worker))
    return out.filter((e): e is DirEntry => e !== undefined)
  }

  async read (p: string, offset: number, length: number): Promise<Buffer> {
    this.stats.requests++
    this.checkRange('read', p, offset, length)
    const r = await this.guard.parentOf(p, 'read')
    const fh = await open(r.host, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
    try {
      return await this.readAt(fh, offset, length)
    } finally {
      await fh.close()
    }
  }

  async write (p: string, source: WriteSource, attrs: WriteAttrs = {}): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'write')
    this.guard.notRoot(r, 'write', 'EISDIR')
    let old: Stats | undefined
    try {
      old = await lstat(r.host)
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err
    }
    if (old?.isDirectory() === true) throw this.kit.fsxError('EISDIR', `write ${r.path}: is a directory`, { path: r.path, op: 'write' })
    const keep = old?.isFile() === true ? old : undefined
    const mode = attrs.mode ?? (keep === undefined ? undefined : keep.mode)
    const dir = r.host.slice(0, r.host.lastIndexOf('/') + 1)
    const tmp = `${dir}.fsx-${randomBytes(6).toString('hex')}.tmp`
    const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode === undefined ? 0o666 : mode & 0o7777)
    let renamed = false
    try {
      let written: number
      if (Buffer.isBuffer(source)) {
        await fh.writeFile(source)
        written = source.length
      } else {
        written = await copyInto(source.file, fh)
      }
      if (mode !== undefined) await fh.chmod(mode & 0o7777)
      const uid = attrs.uid ?? keep?.uid
      const gid = attrs.gid ?? keep?.gid
      if (uid !== undefined || gid !== undefined) {
        // Best effort, like `cp -p`: an unprivileged process cannot give a file away (EPERM).
        await fh.chown(uid ?? -1, gid ?? -1).catch((err: { code?: string }) => { if (err.code !== 'EPERM') throw err })
      }
      if (attrs.mtimeMs !== undefined) await fh.utimes(new Date(), attrs.mtimeMs / 1000)
      await fh.sync()
      await fh.close()
      await rename(tmp, r.host)
      renamed = true
      this.stats.writes++
      this.stats.bytesWritten += written
    } finally {
      if (!renamed) {
        await fh.close().catch(() => {})
        await unlink(tmp).catch(() => {})
      }
    }
  }

  async remove (p: string): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'remove')
    this.guard.notRoot(r, 'remove', 'EISDIR')
    await unlink(r.host) // Linux unlink(2) of a directory: EISDIR
  }

  async mkdir (p: string, mode: number): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'mkdir')
    this.guard.notRoot(r, 'mkdir', 'EEXIST')
    await mkdir(r.host, { mode })
  }

  async rmdir (p: string): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'rmdir')
    this.guard.notRoot(r, 'rmdir', 'EBUSY')
    await rmdir(r.host)
  }

  async rename (from: string, to: string): Promise<void> {
    this.stats.requests++
    const a = await this.guard.parentOf(from, 'rename')
    const b = await this.guard.parentOf(to, 'rename')
    this.guard.notRoot(a, 'rename', 'EBUSY')
    this.guard.notRoot(b, 'rename', 'EBUSY')
    try {
      await rename(a.host, b.host)
    } finally {
      this.guard.forget(a.rel, b.rel)
    }
  }

  async close (): Promise<void> {
    this.guard.forget()
  }

  async open (p: string, flags: OpenFlags, mode: number): Promise<BackendFileHandle> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'open')
    let bits = flags.read && flags.write ? O_RDWR : flags.write ? O_WRONLY : O_RDONLY
    if (flags.create) bits |= O_CREAT
    if (flags.exclusive) bits |= O_EXCL
    if (flags.truncate) bits |= O_TRUNC
    if (flags.append) bits |= O_APPEND
    const fh = await open(r.host, bits | O_NOFOLLOW | O_NONBLOCK, mode & 0o7777)
    return new LocalFileHandle(fh, flags.append, this, p)
  }

  async truncate (p: string, size: number): Promise<void> {
    this.stats.requests++
    this.checkRange('truncate', p, size, 0)
    const r = await this.guard.parentOf(p, 'truncate')
    const fh = await open(r.host, O_WRONLY | O_NOFOLLOW | O_NONBLOCK)
    try {
      await fh.truncate(size)
    } finally {
      await fh.close()
    }
  }

  async symlink (target: string, p: string): Promise<void> {
    this.stats.requests++
    if (typeof target !== 'string' || target === '' || target.includes('\0')) {
      throw this.kit.fsxError('EINVAL', `symlink ${p}: bad target`, { path: p, op: 'symlink' })
    }
    const r = await this.guard.parentOf(p, 'symlink')
    this.guard.notRoot(r, 'symlink', 'EEXIST')
    try {
      await symlink(target, r.host) // the target is stored, never resolved here
    } finally {
      this.guard.forget(r.rel)
    }
  }

  async readlink (p: string): Promise<string> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'readlink')
    return await readlink(r.host)
  }

  async link (existing: string, p: string): Promise<void> {
    this.stats.requests++
    const a = await this.guard.parentOf(existing, 'link')
    const b = await this.guard.parentOf(p, 'link')
    this.guard.notRoot(b, 'link', 'EEXIST')
    try {
      await link(a.host, b.host) // Linux link(2) does not follow a symlink `existing`
    } finally {
      this.guard.forget(b.rel)
    }
  }

  async chmod (p: string, mode: number): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'chmod')
    const symlinkError = (): Error =>
      this.kit.fsxError('ENOTSUP', `chmod ${r.path}: a symlink has no mode of its own`, { path: r.path, op: 'chmod' })
    if (!this.useOPath) {
      if ((await lstat(r.host)).isSymbolicLink()) throw symlinkError()
      await chmod(r.host, mode & 0o7777)
      return
    }
    // The O_PATH descriptor pins the inode the name points at now, without following or opening it.
    const fh = await open(r.host, O_PATH_LINUX | O_NOFOLLOW)
    try {
      await chmod(`/proc/self/fd/${fh.fd}`, mode & 0o7777)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOTSUP') throw symlinkError()
      throw err
    } finally {
      await fh.close()
    }
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'chown')
    await lchown(r.host, uid, gid)
  }

  async utimens (p: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    this.stats.requests++
    const r = await this.guard.parentOf(p, 'utimens')
    if (atimeMs === undefined && mtimeMs === undefined) return
    // NB: Node has no UTIME_OMIT: the side left alone is read and written back (exact to well under 1 µs).
    let a = atimeMs
    let m = mtimeMs
    if (a === undefined || m === undefined) {
      const st = await lstat(r.host)
      a ??= st.atimeMs
      m ??= st.mtimeMs
    }
    await lutimes(r.host, a / 1000, m / 1000)
  }

  async statfs (p: string): Promise<StatFs> {
    this.stats.requests++
    const r = await this.guard.dir(p, 'statfs')
    const s = await statfs(r.host)
    // Node's statfs has no frsize/favail/namemax: f_frsize equals f_bsize on Linux's common filesystems.
    return {
      bsize: s.bsize,
      frsize: s.bsize,
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bavail,
      files: s.files,
      ffree: s.ffree,
      favail: s.ffree,
      namemax: NAME_MAX
    }
  }

  async getxattr (p: string, name: string): Promise<Buffer> {
    this.stats.requests++
    const r = await this.xattrPath(p, 'getxattr')
    return await this.xattrOps!.get(r.host, r.path, name)
  }

  async setxattr (p: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.stats.requests++
    const r = await this.xattrPath(p, 'setxattr')
    await this.xattrOps!.set(r.host, r.path, name, value, flags)
  }

  async listxattr (p: string): Promise<string[]> {
    this.stats.requests++
    const r = await this.xattrPath(p, 'listxattr')
    return await this.xattrOps!.list(r.host, r.path)
  }

  async removexattr (p: string, name: string): Promise<void> {
    this.stats.requests++
    const r = await this.xattrPath(p, 'removexattr')
    await this.xattrOps!.remove(r.host, r.path, name)
  }

  /** Reads up to `length` bytes at `offset` from `fh`, fewer only at EOF; counts them. */
  async readAt (fh: FileHandle, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length)
    let got = 0
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    this.stats.reads++
    this.stats.bytesRead += got
    // A short read at EOF: copy rather than pin a mostly unused large buffer.
    return got === length ? buf : got < length / 2 ? Buffer.from(buf.subarray(0, got)) : buf.subarray(0, got)
  }

  /** Writes all of `data` at `offset` (or at EOF when `append`); counts it. */
  async writeAt (fh: FileHandle, offset: number, data: Buffer, append: boolean): Promise<number> {
    let done = 0
    while (done < data.length) {
      // NB: for an O_APPEND handle write(2) at the current position is EOF; pwrite's offset would be ignored on
      // Linux but honoured elsewhere, so pass no position at all.
      const { bytesWritten } = await fh.write(data, done, data.length - done, append ? null : offset + done)
      done += bytesWritten
    }
    this.stats.writes++
    this.stats.bytesWritten += done
    return done
  }

  /** EINVAL unless offset and length are non-negative safe integers, length ≤ 2 GiB - 1 (Node's own limit per call,
   *  which it would report as a non-errno error). */
  checkRange (op: string, p: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > MAX_IO_BYTES) {
      throw this.kit.fsxError('EINVAL', `${op} ${p}: offset/length must be non-negative integers`, { path: p, op })
    }
  }

  private async xattrPath (p: string, op: string): Promise<{ host: string; path: string }> {
    if (this.xattrOps === undefined) {
      throw this.kit.fsxError('ENOTSUP', `${op} ${p}: no xattr support here (needs @napi-rs/xattr or the "attr" package's tools)`, { path: p, op })
    }
    return await this.guard.parentOf(p, op)
  }
}

/** An open host file; reads and writes at offsets, counted on the backend. */
export class LocalFileHandle implements BackendFileHandle {
  private closed = false

  constructor (
    private readonly fh: FileHandle,
    private readonly append: boolean,
    private readonly backend: LocalBackend,
    private readonly path: string
  ) {}

  async read (offset: number, length: number): Promise<Buffer> {
    this.backend.checkRange('read', this.path, offset, length)
    return await this.backend.readAt(this.fh, offset, length)
  }

  async write (offset: number, data: Buffer): Promise<number> {
    this.backend.checkRange('write', this.path, offset, data.length)
    return await this.backend.writeAt(this.fh, offset, data, this.append)
  }

  async truncate (size: number): Promise<void> {
    this.backend.checkRange('truncate', this.path, size, 0)
    await this.fh.truncate(size)
  }

  async sync (): Promise<void> {
    await this.fh.sync()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.fh.close()
  }
}

/** Copies the staging file `file` into `fh` from offset 0; returns the byte count. */
async function copyInto (file: string, fh: FileHandle): Promise<number> {
  const src = await open(file, O_RDONLY)
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES)
    let pos = 0
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, pos)
      if (bytesRead === 0) return pos
      let done = 0
      while (done < bytesRead) {
        const { bytesWritten } = await fh.write(buf, done, bytesRead - done, pos + done)
        done += bytesWritten
      }
      pos += bytesRead
    }
  } finally {
    await src.close()
  }
}
