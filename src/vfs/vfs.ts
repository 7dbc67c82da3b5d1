/**
 * The filesystem core: path-based operations on top of one Backend, independent of FUSE and oclif.
 * A FUSE engine adapter (src/fuse) calls these methods; they resolve with values or reject with errors carrying an
 * errno `code`. Nothing here blocks the event loop: all I/O is async.
 *
 * Invariants:
 * - Every open file has one entry in `handles` (keyed by the number the kernel gets) until `release`.
 * - For backends without random writes, all handles of one path share one `OpenNode` whose staging file holds the
 *   whole object while any handle writes it; it is uploaded on flush/fsync (write-through) and on release.
 * - An acknowledged fsync/close means the data reached the backend (write-through), or, with `writeback`, that
 *   close returned before the backend made it durable; fsync always waits for durability.
 * - Mutations invalidate the xattr cache for the paths they touch before they resolve.
 * - rename re-keys open handles and open nodes, so a file renamed while open keeps working.
 */
import path from 'node:path'
import { constants as fsConstants } from 'node:fs'
import type { Backend, BackendFileHandle, OpenFlags, Stat, StatFs } from '../backend/types.js'
import { FsxError } from '../errors.js'
import { StagingFile } from './staging.js'
import { XattrCache } from './xattr-cache.js'

/** Settings the VFS reads, in base units. */
export interface VfsOptions {
  writeback: boolean
  consistency: 'strong' | 'session' | 'eventual'
  xattrCacheSize: number
  xattrCacheTtlMs: number
  /** Where staging files live. */
  cacheDir: string
  /** uid/gid reported for nodes when the backend has none (defaults: the mounting process). */
  uid?: number
  gid?: number
  now?: () => number
}

/** Counters of one cache layer, read by `fsx stats`. */
export interface CacheStats {
  hits: number
  misses: number
  evictions: number
  entries: number
  bytes?: number
}

/** Everything the VFS counts; `fsx stats` shows it. Layers that do not exist yet are absent. */
export interface VfsStats {
  caches: Record<string, CacheStats>
  openFiles: number
  readahead?: { triggered: number, bytesUsed: number, bytesWasted: number }
  writeback?: { dirtyBytes: number, queued: number, inFlight: number, flushed: number, errors: number }
  memory?: { usedBytes: number, budgetBytes: number }
}

/** `utimens` time argument: ms since epoch, 'now' (UTIME_NOW) or undefined (UTIME_OMIT). */
export type TimeArg = number | 'now' | undefined

interface OpenNode {
  path: string
  refs: number
  staging?: StagingFile
  mode: number
}

interface Handle {
  path: string
  flags: OpenFlags
  bh?: BackendFileHandle
  node?: OpenNode
  /** Set when this handle wrote data not yet made durable. */
  dirty: boolean
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fsConstants
/** Linux O_ACCMODE (not exported by node:fs). */
const O_ACCMODE = 3

/** Decodes open(2) flags. */
export function decodeFlags (flags: number): OpenFlags {
  const acc = flags & O_ACCMODE
  return {
    read: acc === O_RDONLY || acc === O_RDWR,
    write: acc === O_WRONLY || acc === O_RDWR,
    create: (flags & O_CREAT) !== 0,
    exclusive: (flags & O_EXCL) !== 0,
    truncate: (flags & O_TRUNC) !== 0,
    append: (flags & O_APPEND) !== 0
  }
}

/** Names the kernel asks for on every `ls -l` and `cp` (ACLs, capabilities): answered ENODATA without the backend. */
const SYSTEM_XATTR = /^system\./

export class Vfs {
  readonly xattrs: XattrCache
  private readonly handles = new Map<number, Handle>()
  private readonly nodes = new Map<string, OpenNode>()
  private nextFh = 1
  private readonly uid: number
  private readonly gid: number

  constructor (readonly backend: Backend, readonly opts: VfsOptions) {
    this.xattrs = new XattrCache({
      max: opts.consistency === 'strong' ? 0 : opts.xattrCacheSize,
      ttlMs: opts.xattrCacheTtlMs,
      now: opts.now
    })
    this.uid = opts.uid ?? (process.getuid?.() ?? 0)
    this.gid = opts.gid ?? (process.getgid?.() ?? 0)
  }

  private get caps () { return this.backend.capabilities }

  private stagingDir (): string { return path.join(this.opts.cacheDir, 'staging') }

  /** Number of files open right now. */
  get openCount (): number { return this.handles.size }

  // ---- attributes -------------------------------------------------------------------------------------------------

  async getattr (p: string): Promise<Stat> {
    const node = this.nodes.get(p)
    if (node?.staging) {
      // The object on the backend is stale while a staged copy is open: report the staged size.
      const st = await this.backend.stat(p).catch(() => undefined)
      const now = Date.now()
      return {
        kind: 'file', size: node.staging.size, mode: st?.mode ?? node.mode, uid: st?.uid ?? this.uid, gid: st?.gid ?? this.gid,
        nlink: 1, atimeMs: st?.atimeMs ?? now, mtimeMs: node.staging.dirty ? now : (st?.mtimeMs ?? now), ctimeMs: st?.ctimeMs ?? now, ino: st?.ino
      }
    }
    return await this.backend.stat(p)
  }

  async fgetattr (p: string, fh: number): Promise<Stat> {
    const h = this.handles.get(fh)
    return await this.getattr(h?.path ?? p)
  }

  async access (p: string, _mode: number): Promise<void> {
    await this.getattr(p)
  }

  async readdir (p: string): Promise<{ names: string[], stats: Array<Stat | undefined> }> {
    const entries = await this.backend.list(p)
    return { names: entries.map(e => e.name), stats: entries.map(e => e.stat) }
  }

  async statfs (p: string): Promise<StatFs> {
    if (this.caps.statfs && this.backend.statfs) return await this.backend.statfs(p)
    // Object stores have no totals: report a large, mostly free filesystem so `df` and installers are happy.
    const blocks = 2 ** 40 / 4096
    return { bsize: 4096, frsize: 4096, blocks, bfree: blocks, bavail: blocks, files: 2 ** 32, ffree: 2 ** 32, favail: 2 ** 32, namemax: 255 }
  }

  // ---- open files -------------------------------------------------------------------------------------------------

  private register (h: Handle): number {
    const fh = this.nextFh++
    if (this.nextFh > 0x7fffffff) this.nextFh = 1
    this.handles.set(fh, h)
    return fh
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (!h) throw new FsxError('EBADF', `no open file ${fh}`, { op: 'handle' })
    return h
  }

  private acquireNode (p: string, mode: number): OpenNode {
    let node = this.nodes.get(p)
    if (!node) {
      node = { path: p, refs: 0, mode }
      this.nodes.set(p, node)
    }
    node.refs++
    return node
  }

  private async releaseNode (node: OpenNode): Promise<void> {
    node.refs--
    if (node.refs > 0) return
    if (this.nodes.get(node.path) === node) this.nodes.delete(node.path)
    if (node.staging) {
      const staging = node.staging
      node.staging = undefined
      try {
        await staging.upload(this.backend, node.path, { mode: node.mode, uid: this.uid, gid: this.gid })
      } finally {
        await staging.discard()
      }
    }
  }

  async open (p: string, flagsInt: number): Promise<number> {
    const flags = decodeFlags(flagsInt)
    if (this.caps.randomWrite && this.backend.open) {
      const bh = await this.backend.open(p, { ...flags, append: false }, 0o666)
      return this.register({ path: p, flags, bh, dirty: false })
    }
    const st = await this.backend.stat(p)
    if (st.kind === 'dir') throw new FsxError('EISDIR', 'is a directory', { path: p, op: 'open' })
    const node = this.acquireNode(p, st.mode)
    try {
      if (flags.write && !node.staging) {
        node.staging = await StagingFile.create(this.stagingDir(), this.backend, p, flags.truncate || st.size === 0, st.size)
        if (flags.truncate && st.size > 0) node.staging.dirty = true
      } else if (flags.write && flags.truncate && node.staging) {
        await node.staging.truncate(0)
      }
    } catch (err) {
      await this.releaseNode(node)
      throw err
    }
    return this.register({ path: p, flags, node, dirty: false })
  }

  async create (p: string, mode: number): Promise<number> {
    const flags: OpenFlags = { read: true, write: true, create: true, exclusive: false, truncate: false, append: false }
    this.xattrs.invalidate(p)
    if (this.caps.randomWrite && this.backend.open) {
      const bh = await this.backend.open(p, flags, mode & 0o7777)
      return this.register({ path: p, flags, bh, dirty: false })
    }
    // Whole-object backends: make the (empty) object exist now so lookups find it, stage its content locally.
    const fileMode = fsConstants.S_IFREG | (mode & 0o7777)
    await this.backend.write(p, Buffer.alloc(0), { mode: fileMode, uid: this.uid, gid: this.gid, mtimeMs: Date.now() })
    const node = this.acquireNode(p, fileMode)
    try {
      node.staging ??= await StagingFile.create(this.stagingDir(), this.backend, p, true)
    } catch (err) {
      await this.releaseNode(node)
      throw err
    }
    return this.register({ path: p, flags, node, dirty: false })
  }

  async read (_p: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    if (h.bh) {
      if (h.bh.readInto) return await h.bh.readInto(buf, len, pos)
      const data = await h.bh.read(pos, len)
      return data.copy(buf, 0, 0, Math.min(len, data.length))
    }
    const staging = h.node?.staging
    if (staging) return await staging.read(buf, len, pos)
    const data = await this.backend.read(h.path, pos, len)
    return data.copy(buf, 0, 0, Math.min(len, data.length))
  }

  async write (_p: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    if (!h.flags.write) throw new FsxError('EBADF', 'file not open for writing', { path: h.path, op: 'write' })
    const data = len === buf.length ? buf : buf.subarray(0, len)
    h.dirty = true
    if (h.bh) return await h.bh.write(pos, data)
    const staging = h.node?.staging
    if (!staging) throw new FsxError('EBADF', 'file not open for writing', { path: h.path, op: 'write' })
    return await staging.write(data, len, pos)
  }

  /** Called on every close(2) of a descriptor: where write errors reach the application. */
  async flush (_p: string, fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (!h) return
    await this.persist(h, !this.opts.writeback)
  }

  async fsync (_p: string, fh: number, _datasync: boolean): Promise<void> {
    await this.persist(this.handle(fh), true)
  }

  private async persist (h: Handle, durable: boolean): Promise<void> {
    if (h.bh) {
      if (h.dirty && durable) {
        await h.bh.sync()
        h.dirty = false
      }
      return
    }
    if (h.node?.staging?.dirty) await h.node.staging.upload(this.backend, h.node.path, { mode: h.node.mode, uid: this.uid, gid: this.gid })
  }

  async release (_p: string, fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (!h) return
    this.handles.delete(fh)
    if (h.bh) {
      await h.bh.close()
      return
    }
    if (h.node) await this.releaseNode(h.node)
  }

  /** Flushes every open file; used before unmount. Resolves with the number of errors. */
  async flushAll (): Promise<number> {
    let errors = 0
    for (const h of this.handles.values()) {
      try { await this.persist(h, true) } catch { errors++ }
    }
    return errors
  }

  async truncate (p: string, size: number): Promise<void> {
    const node = this.nodes.get(p)
    if (node?.staging) return await node.staging.truncate(size)
    if (this.backend.truncate) return await this.backend.truncate(p, size)
    // Whole-object backend, file not open: rewrite it through a staging copy.
    const st = await this.backend.stat(p)
    if (st.kind === 'dir') throw new FsxError('EISDIR', 'is a directory', { path: p, op: 'truncate' })
    const staging = await StagingFile.create(this.stagingDir(), this.backend, p, size === 0, st.size)
    try {
      await staging.truncate(size)
      await staging.upload(this.backend, p, { mode: st.mode, uid: st.uid, gid: st.gid })
    } finally {
      await staging.discard()
    }
  }

  async ftruncate (p: string, fh: number, size: number): Promise<void> {
    const h = this.handle(fh)
    h.dirty = true
    if (h.bh) return await h.bh.truncate(size)
    if (h.node?.staging) return await h.node.staging.truncate(size)
    await this.truncate(h.path ?? p, size)
  }

  // ---- namespace --------------------------------------------------------------------------------------------------

  async mkdir (p: string, mode: number): Promise<void> {
    await this.backend.mkdir(p, mode & 0o7777)
  }

  async rmdir (p: string): Promise<void> {
    await this.backend.rmdir(p)
    this.xattrs.invalidate(p, true)
  }

  async unlink (p: string): Promise<void> {
    await this.backend.remove(p)
    this.xattrs.invalidate(p)
  }

  async rename (from: string, to: string): Promise<void> {
    // Upload staged content first so the object that moves is the one the application wrote.
    for (const node of this.nodes.values()) {
      if ((node.path === from || node.path.startsWith(from + '/')) && node.staging?.dirty) {
        await node.staging.upload(this.backend, node.path, { mode: node.mode, uid: this.uid, gid: this.gid })
      }
    }
    await this.backend.rename(from, to)
    this.xattrs.invalidate(from, true)
    this.xattrs.invalidate(to, true)
    this.rekey(from, to)
  }

  private rekey (from: string, to: string): void {
    const moved = (p: string): string | undefined =>
      p === from ? to : (p.startsWith(from + '/') ? to + p.slice(from.length) : undefined)
    for (const h of this.handles.values()) {
      const np = moved(h.path)
      if (np !== undefined) h.path = np
    }
    for (const node of [...this.nodes.values()]) {
      const np = moved(node.path)
      if (np === undefined) continue
      this.nodes.delete(node.path)
      node.path = np
      this.nodes.set(np, node)
    }
  }

  async symlink (target: string, p: string): Promise<void> {
    if (!this.caps.symlinks || !this.backend.symlink) throw new FsxError('EPERM', 'symlinks are not supported by this backend', { path: p, op: 'symlink' })
    await this.backend.symlink(target, p)
  }

  async readlink (p: string): Promise<string> {
    if (!this.backend.readlink) throw new FsxError('EINVAL', 'not a symlink', { path: p, op: 'readlink' })
    return await this.backend.readlink(p)
  }

  async link (existing: string, p: string): Promise<void> {
    if (!this.caps.hardlinks || !this.backend.link) throw new FsxError('EPERM', 'hard links are not supported by this backend', { path: p, op: 'link' })
    await this.backend.link(existing, p)
  }

  async chmod (p: string, mode: number): Promise<void> {
    if (!this.caps.chmod || !this.backend.chmod) throw new FsxError('ENOTSUP', 'chmod is not supported by this backend', { path: p, op: 'chmod' })
    await this.backend.chmod(p, mode & 0o7777)
    const node = this.nodes.get(p)
    if (node) node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    if (!this.caps.chown || !this.backend.chown) throw new FsxError('ENOTSUP', 'chown is not supported by this backend', { path: p, op: 'chown' })
    await this.backend.chown(p, uid, gid)
  }

  async utimens (p: string, atime: TimeArg, mtime: TimeArg): Promise<void> {
    // Backends without times keep whatever they record; touch(1) must still succeed.
    if (!this.caps.utimens || !this.backend.utimens) return
    const now = Date.now()
    await this.backend.utimens(p, atime === 'now' ? now : atime, mtime === 'now' ? now : mtime)
  }

  // ---- extended attributes ----------------------------------------------------------------------------------------

  private xattrSupport (p: string, op: string): void {
    if (!this.caps.xattrs || !this.backend.getxattr) throw new FsxError('ENOTSUP', 'extended attributes are not supported by this backend', { path: p, op })
  }

  /** Resolves with the value, or rejects ENODATA. */
  async getxattr (p: string, name: string): Promise<Buffer> {
    if (SYSTEM_XATTR.test(name)) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    this.xattrSupport(p, 'getxattr')
    const cached = this.xattrs.get(p, name)
    if (cached === null) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    if (cached !== undefined) return cached
    try {
      const v = await this.backend.getxattr!(p, name)
      this.xattrs.set(p, name, v)
      return v
    } catch (err) {
      if ((err as { code?: string }).code === 'ENODATA') this.xattrs.set(p, name, null)
      throw err
    }
  }

  async setxattr (p: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.xattrSupport(p, 'setxattr')
    if (!this.backend.setxattr) throw new FsxError('ENOTSUP', 'cannot set extended attributes here', { path: p, op: 'setxattr' })
    this.xattrs.invalidate(p)
    await this.backend.setxattr(p, name, value, flags)
  }

  async listxattr (p: string): Promise<string[]> {
    if (!this.caps.xattrs || !this.backend.listxattr) return []
    const cached = this.xattrs.getList(p)
    if (cached) return cached
    const names = await this.backend.listxattr(p)
    this.xattrs.setList(p, names)
    return names
  }

  async removexattr (p: string, name: string): Promise<void> {
    this.xattrSupport(p, 'removexattr')
    if (!this.backend.removexattr) throw new FsxError('ENOTSUP', 'cannot remove extended attributes here', { path: p, op: 'removexattr' })
    this.xattrs.invalidate(p)
    await this.backend.removexattr(p, name)
  }

  /** Live counters for `fsx stats`. */
  stats (): VfsStats {
    return { caches: { xattr: this.xattrs.counters() }, openFiles: this.handles.size }
  }

  /** Releases all handles and the backend. */
  async close (): Promise<void> {
    for (const fh of [...this.handles.keys()]) await this.release('', fh).catch(() => {})
    await this.backend.close()
  }
}
