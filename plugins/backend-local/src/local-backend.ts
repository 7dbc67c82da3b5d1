/**
 * LocalBackend: a directory on this machine served through the Backend contract. It is the reference backend:
 * every optional capability is implemented with the system call it is named for.
 *
 * Invariants:
 * - Nothing outside the root is reachable, whatever a host process does meanwhile (host-tree.ts): every call
 *   opens its node's parent from the root descriptor without following a symlink at any component, then names
 *   the node as /proc/<pid>/fd/<parent>/<name>. The last component is never followed either:
 *     stat → lstat; read/open/truncate → O_NOFOLLOW (a symlink gives ELOOP); chown → lchown; utimens → lutimes;
 *     chmod → an O_PATH descriptor + /proc/self/fd (how glibc does fchmodat(AT_SYMLINK_NOFOLLOW); a symlink gives
 *     ENOTSUP); xattrs → l*xattr (xattr.ts); remove/rmdir/rename/link/readlink/mkdir/symlink/mknod never follow
 *     the last component by definition. list and statfs open the directory itself the same way.
 * - Names are bytes (capabilities.byteNames on Node): host names are passed as Buffers when they are not UTF-8
 *   and listed with readdir's buffer encoding, so `a\xff` and `a\xfe` stay two files. Under Deno, whose file
 *   APIs take only strings, such names are refused by the VFS (EILSEQ) and left out of listings.
 * - New nodes belong to the caller (`owner`) when this process runs as root: lchown after creating, keeping the
 *   group the host gave the node in a setgid directory (the setgid-directory rule). Otherwise they belong to
 *   the user fsx runs as, the only owner it can give.
 * - The backend root itself cannot be removed, renamed or replaced (EBUSY / EISDIR / EEXIST).
 * - Errors are Node's own fs errors (they carry `code` = errno name) passed through unchanged, or `kit.fsxError`
 *   for what this file decides itself (EINVAL, EACCES, ENOTSUP…). NB: Node's messages name /proc paths.
 * - Every open descriptor carries O_NONBLOCK: no effect on regular files, but opening a FIFO can then never
 *   block a libuv thread-pool thread forever.
 * - Whole-object `write` is atomic: a temp file in the same directory, fsync, rename over the target. Attributes
 *   come from `attrs`, else from the file it replaces (mode, and ownership best effort like `cp -p`).
 * - Modes passed to mkdir/open/symlink/mknod are used as given: the kernel already applied the application's
 *   umask, and the mount front end sets fsx's own umask to 0.
 */
import { constants as fsConstants, type Stats } from 'node:fs'
import {
  chmod, link, lchown, lstat, lutimes, mkdir, open, readdir, readlink, rename, rmdir, stat, statfs, symlink,
  unlink, type FileHandle
} from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import type {
  Backend, BackendFileHandle, BackendKit, Capabilities, DirEntry, OpenFlags, Owner, Stat, StatFs, WriteAttrs, WriteSource
} from '@fsx/sdk'
import { FD_DIR, HostTree, type At } from './host-tree.js'
import { loadXattrs, type XattrMode, type XattrOps } from './xattr.js'

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fsConstants
/** Linux O_PATH (same value on every architecture Node runs on); Node does not export it. */
const O_PATH_LINUX = 0o10000000
const S_ISUID = 0o4000
const S_ISGID = 0o2000
/** lstat calls in flight per `list`: enough to hide disk latency, few enough not to starve the thread pool (4). */
export const LIST_CONCURRENCY = 16
/** Chunk size when copying a staging file into place during whole-object `write`. */
const COPY_CHUNK_BYTES = 1024 * 1024
/** Largest single read/write Node accepts (kIoMaxLength). */
const MAX_IO_BYTES = 2 ** 31 - 1
/** NAME_MAX of the common Linux filesystems; Node cannot ask pathconf. */
const NAME_MAX = 255
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'

export interface LocalBackendOptions {
  /** false: no xattrs; 'native' / 'tools': only that way in (see xattr.ts); default: the best available. */
  xattrs?: boolean | XattrMode
  /** false: resolve paths by the per-component walk instead of openat2 (both keep the same guarantee; tests). */
  openat2?: boolean
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
    blocks: s.blocks,
    rdev: s.rdev
  }
}

/** The counters `counters()` returns. */
interface Counters { requests: number; reads: number; writes: number; bytesRead: number; bytesWritten: number }

export class LocalBackend implements Backend {
  readonly description: string
  readonly capabilities: Capabilities
  /** Root path as the user gave it (absolute), for messages. */
  readonly root: string
  readonly tree: HostTree
  /** How xattrs are served, undefined when they are not. */
  readonly xattrMode: XattrMode | undefined
  private readonly xattrOps: XattrOps | undefined
  private readonly asRoot: boolean
  private readonly stats: Counters = { requests: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 }

  /** Prefer `LocalBackend.create`, which checks the root, opens it and finds an xattr implementation. */
  constructor (root: string, rootFd: number, private readonly kit: BackendKit, opts: LocalBackendOptions = {}, xattrOps?: XattrOps) {
    this.root = root
    this.description = `local:${root}`
    this.tree = new HostTree(rootFd, kit, { openat2: opts.openat2 })
    this.xattrOps = xattrOps
    this.xattrMode = xattrOps?.mode
    this.asRoot = process.geteuid?.() === 0
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
      realDirectories: true,
      byteNames: !isDeno,
      hostFiles: true,
      specialFiles: kit.sys !== undefined,
      owners: this.asRoot
    }
  }

  notices (): string[] {
    const out: string[] = []
    if (!this.asRoot) out.push('local: fsx is not running as root: new files belong to the user it runs as, whoever creates them')
    if (this.tree.mode === 'walk') out.push(`local: paths are resolved one directory at a time (openat2 unavailable: ${this.kit.sysUnavailable ?? 'refused by the kernel'})`)
    if (this.kit.sys === undefined) out.push('local: FIFOs, sockets and device nodes cannot be created here (mknod answers EPERM)')
    return out
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
    const rootFd = await HostTree.openRoot(root, kit)
    const xattrOps = opts.xattrs === false ? undefined : await loadXattrs(kit, opts.xattrs === true ? undefined : opts.xattrs)
    return new LocalBackend(root, rootFd, kit, opts, xattrOps)
  }

  counters (): Record<string, number> {
    return { ...this.stats }
  }

  async stat (p: string): Promise<Stat> {
    this.stats.requests++
    return await this.tree.with(p, 'stat', async at => toStat(await lstat(at.host)))
  }

  async list (p: string): Promise<DirEntry[]> {
    this.stats.requests++
    return await this.tree.with(p, 'list', async at => {
      // Names as bytes: a name that is not UTF-8 keeps its exact bytes (decoded with kit.names).
      const raw = await readdir(at.host, { encoding: 'buffer' }) as unknown as Array<Buffer | string>
      const prefix = `${FD_DIR}${at.dirFd}/`
      const out: Array<DirEntry | undefined> = new Array(raw.length)
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < raw.length) {
          const i = next++
          const r = raw[i]
          const name = typeof r === 'string' ? r : this.kit.names.fromBytes(r)
          const host = typeof r === 'string' || !this.kit.names.hasEscapes(name) ? prefix + name : Buffer.concat([Buffer.from(prefix), r])
          try {
            out[i] = { name, stat: toStat(await lstat(host)) }
          } catch (err) {
            // Gone between readdir and lstat (or, under Deno, a name its string APIs cannot carry): not an entry.
            // Anything else: the name without attributes.
            out[i] = (err as { code?: string }).code === 'ENOENT' ? undefined : { name }
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, raw.length) }, worker))
      return out.filter((e): e is DirEntry => e !== undefined)
    }, true)
  }

  async read (p: string, offset: number, length: number): Promise<Buffer> {
    this.stats.requests++
    this.checkRange('read', p, offset, length)
    return await this.tree.with(p, 'read', async at => {
      const fh = await open(at.host, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
      try {
        return await this.readAt(fh, offset, length)
      } finally {
        await fh.close()
      }
    })
  }

  async write (p: string, source: WriteSource, attrs: WriteAttrs = {}): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'write', async at => {
      this.notRoot(at, 'write', 'EISDIR')
      let old: Stats | undefined
      try {
        old = await lstat(at.host)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err
      }
      if (old?.isDirectory() === true) throw this.kit.fsxError('EISDIR', `write ${at.path}: is a directory`, { path: at.path, op: 'write' })
      const keep = old?.isFile() === true ? old : undefined
      const mode = attrs.mode ?? (keep === undefined ? undefined : keep.mode)
      const tmp = `${FD_DIR}${at.dirFd}/.fsx-${randomBytes(6).toString('hex')}.tmp`
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
          if (mode !== undefined && (mode & (S_ISUID | S_ISGID)) !== 0) await fh.chmod(mode & 0o7777)
        }
        if (attrs.mtimeMs !== undefined) await fh.utimes(new Date(), attrs.mtimeMs / 1000)
        await fh.sync()
        await fh.close()
        await rename(tmp, at.host)
        renamed = true
        this.stats.writes++
        this.stats.bytesWritten += written
      } finally {
        if (!renamed) {
          await fh.close().catch(() => {})
          await unlink(tmp).catch(() => {})
        }
      }
    })
  }

  async remove (p: string): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'remove', async at => {
      this.notRoot(at, 'remove', 'EISDIR')
      await unlink(at.host) // Linux unlink(2) of a directory: EISDIR
    })
  }

  async mkdir (p: string, mode: number, owner?: Owner): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'mkdir', async at => {
      this.notRoot(at, 'mkdir', 'EEXIST')
      await mkdir(at.host, { mode: mode & 0o7777 })
      await this.giveTo(at, owner)
    })
  }

  async rmdir (p: string): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'rmdir', async at => {
      this.notRoot(at, 'rmdir', 'EBUSY')
      await rmdir(at.host)
    })
  }

  async rename (from: string, to: string): Promise<void> {
    this.stats.requests++
    await this.tree.with(from, 'rename', async a => {
      this.notRoot(a, 'rename', 'EBUSY')
      await this.tree.with(to, 'rename', async b => {
        this.notRoot(b, 'rename', 'EBUSY')
        await rename(a.host, b.host)
      })
    })
  }

  async close (): Promise<void> {
    this.tree.close()
  }

  async open (p: string, flags: OpenFlags, mode: number, owner?: Owner): Promise<BackendFileHandle> {
    this.stats.requests++
    return await this.tree.with(p, 'open', async at => {
      let bits = flags.read && flags.write ? O_RDWR : flags.write ? O_WRONLY : O_RDONLY
      if (flags.truncate) bits |= O_TRUNC
      if (flags.append) bits |= O_APPEND
      bits |= O_NOFOLLOW | O_NONBLOCK
      if (!flags.create) return new LocalFileHandle(await open(at.host, bits), flags.append, this, p)
      this.notRoot(at, 'open', 'EISDIR')
      if (flags.exclusive || !this.asRoot || owner === undefined) {
        const fh = await open(at.host, bits | O_CREAT | (flags.exclusive ? O_EXCL : 0), mode & 0o7777)
        if (flags.exclusive) await this.giveTo(at, owner, fh, mode)
        return new LocalFileHandle(fh, flags.append, this, p)
      }
      // Only a file this call creates gets the caller as owner: try to create it exclusively first.
      for (;;) {
        try {
          const fh = await open(at.host, bits | O_CREAT | O_EXCL, mode & 0o7777)
          await this.giveTo(at, owner, fh, mode)
          return new LocalFileHandle(fh, flags.append, this, p)
        } catch (err) {
          if ((err as { code?: string }).code !== 'EEXIST') throw err
        }
        try {
          return new LocalFileHandle(await open(at.host, bits), flags.append, this, p)
        } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') throw err // removed in between: create it after all
        }
      }
    })
  }

  async truncate (p: string, size: number): Promise<void> {
    this.stats.requests++
    this.checkRange('truncate', p, size, 0)
    await this.tree.with(p, 'truncate', async at => {
      const fh = await open(at.host, O_WRONLY | O_NOFOLLOW | O_NONBLOCK)
      try {
        await fh.truncate(size)
      } finally {
        await fh.close()
      }
    })
  }

  async symlink (target: string, p: string, owner?: Owner): Promise<void> {
    this.stats.requests++
    if (typeof target !== 'string' || target === '' || target.includes('\0')) {
      throw this.kit.fsxError('EINVAL', `symlink ${p}: bad target`, { path: p, op: 'symlink' })
    }
    await this.tree.with(p, 'symlink', async at => {
      this.notRoot(at, 'symlink', 'EEXIST')
      await symlink(this.kit.names.toBytes(target), at.host) // the target is stored, never resolved here
      await this.giveTo(at, owner)
    })
  }

  async mknod (p: string, mode: number, rdev: number, owner?: Owner): Promise<void> {
    this.stats.requests++
    const sys = this.kit.sys
    if (sys === undefined) {
      throw this.kit.fsxError('EPERM', `mknod ${p}: special files need system calls fsx could not load (${this.kit.sysUnavailable ?? 'no FFI'})`, { path: p, op: 'mknod' })
    }
    await this.tree.with(p, 'mknod', async at => {
      this.notRoot(at, 'mknod', 'EEXIST')
      try {
        sys.mknodat(at.dirFd, at.name, mode, rdev)
      } catch (err) {
        throw this.kit.fsxError((err as { code: string }).code, `mknod ${at.path}: ${(err as Error).message}`, { path: at.path, op: 'mknod' })
      }
      await this.giveTo(at, owner)
    })
  }

  async readlink (p: string): Promise<string> {
    this.stats.requests++
    return await this.tree.with(p, 'readlink', async at => {
      const t = await readlink(at.host, { encoding: 'buffer' }) as unknown as Buffer | string
      return typeof t === 'string' ? t : this.kit.names.fromBytes(t)
    })
  }

  async link (existing: string, p: string): Promise<void> {
    this.stats.requests++
    await this.tree.with(existing, 'link', async a => {
      await this.tree.with(p, 'link', async b => {
        this.notRoot(b, 'link', 'EEXIST')
        await link(a.host, b.host) // Linux link(2) does not follow a symlink `existing`
      })
    })
  }

  async chmod (p: string, mode: number): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'chmod', async at => {
      // The O_PATH descriptor pins the inode the name points at now, without following or opening it.
      const fh = await open(at.host, O_PATH_LINUX | O_NOFOLLOW)
      try {
        await chmod(`${FD_DIR}${fh.fd}`, mode & 0o7777)
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOTSUP') {
          throw this.kit.fsxError('ENOTSUP', `chmod ${at.path}: a symlink has no mode of its own`, { path: at.path, op: 'chmod' })
        }
        throw err
      } finally {
        await fh.close()
      }
    })
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    this.stats.requests++
    await this.tree.with(p, 'chown', async at => { await lchown(at.host, uid, gid) })
  }

  async utimens (p: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    this.stats.requests++
    if (atimeMs === undefined && mtimeMs === undefined) {
      await this.stat(p) // still ENOENT for a missing file
      return
    }
    await this.tree.with(p, 'utimens', async at => {
      // NB: Node has no UTIME_OMIT: the side left alone is read and written back (exact to well under 1 µs).
      let a = atimeMs
      let m = mtimeMs
      if (a === undefined || m === undefined) {
        const st = await lstat(at.host)
        a ??= st.atimeMs
        m ??= st.mtimeMs
      }
      await lutimes(at.host, a / 1000, m / 1000)
    })
  }

  async statfs (p: string): Promise<StatFs> {
    this.stats.requests++
    return await this.tree.with(p, 'statfs', async at => {
      const s = await statfs(at.host)
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
    }, true)
  }

  async getxattr (p: string, name: string): Promise<Buffer> {
    this.stats.requests++
    return await this.withXattrs(p, 'getxattr', async (host, path) => await this.xattrOps!.get(host, path, name))
  }

  async setxattr (p: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.stats.requests++
    await this.withXattrs(p, 'setxattr', async (host, path) => await this.xattrOps!.set(host, path, name, value, flags))
  }

  async listxattr (p: string): Promise<string[]> {
    this.stats.requests++
    return await this.withXattrs(p, 'listxattr', async (host, path) => await this.xattrOps!.list(host, path))
  }

  async removexattr (p: string, name: string): Promise<void> {
    this.stats.requests++
    await this.withXattrs(p, 'removexattr', async (host, path) => await this.xattrOps!.remove(host, path, name))
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

  /** Rejects `at` when it names the root: the root must not be removed, renamed or replaced. */
  private notRoot (at: At, op: string, code: string): void {
    if (at.isRoot) throw this.kit.fsxError(code, `${op}: not allowed on the backend root`, { path: '/', op })
  }

  /**
   * Gives a node this call just created to `owner` (as root only; otherwise it stays the user fsx runs as). In a
   * setgid directory the group the host gave it (the directory's) is kept. chown(2) clears set-id bits on a
   * regular file: `fh` and `mode` restore what was asked for.
   */
  private async giveTo (at: At, owner: Owner | undefined, fh?: FileHandle, mode?: number): Promise<void> {
    if (owner === undefined || !this.asRoot) return
    const dir = await lstat(`${FD_DIR}${at.dirFd}/.`)
    const gid = (dir.mode & S_ISGID) !== 0 ? -1 : owner.gid
    if (fh !== undefined) {
      await fh.chown(owner.uid, gid)
      if (mode !== undefined && (mode & (S_ISUID | S_ISGID)) !== 0) await fh.chmod(mode & 0o7777)
    } else {
      await lchown(at.host, owner.uid, gid)
    }
  }

  private async withXattrs<T> (p: string, op: string, fn: (host: string, path: string) => Promise<T>): Promise<T> {
    if (this.xattrOps === undefined) {
      throw this.kit.fsxError('ENOTSUP', `${op} ${p}: no xattr support here (needs @napi-rs/xattr or the "attr" package's tools)`, { path: p, op })
    }
    return await this.tree.with(p, op, async at => {
      // NB: both ways in take string paths: a name that is not UTF-8 cannot be named to them.
      if (typeof at.host !== 'string') throw this.kit.fsxError('EILSEQ', `${op} ${at.path}: extended attributes of names that are not UTF-8 are not supported`, { path: at.path, op })
      return await fn(at.host, at.path)
    })
  }
}

/** An open host file; reads and writes at offsets, counted on the backend. */
export class LocalFileHandle implements BackendFileHandle {
  private closed = false

  /** The host descriptor (for passthrough by the FUSE engine). */
  get fd (): number { return this.fh.fd }

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

  async stat (): Promise<Stat> {
    return toStat(await this.fh.stat())
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
