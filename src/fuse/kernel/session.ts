/**
 * The kernel engine's session: one FUSE connection. Decodes each request (./codec.ts), turns it into calls on
 * the Vfs, and writes the reply; negotiates INIT from the declarative feature list (./features.ts); keeps the
 * node table (./nodes.ts), directory handles, passthrough backing ids and requests in flight; writes
 * notifications when fsx learns that something changed.
 *
 * Invariants:
 * - Every request but FORGET, BATCH_FORGET and INTERRUPT gets exactly one reply, even when its handler throws
 *   (the error's errno; EIO for a bug, reported once through `onUnexpected`).
 * - Node lookup counts change in the same tick as the reply that hands the node over is written (nodes.ts).
 * - Handlers never block the JS thread: every Vfs call is awaited; transport writes of replies do not wait.
 * - Notifications are written through `transport.notify` (another thread), never from inside a handler's
 *   synchronous part, so a notification waiting on an inode lock held by a request in flight cannot deadlock.
 * - An INTERRUPT of a request that only reads (lookup, getattr, read, readdir…) answers it EINTR at once and its
 *   late result is dropped; a request that changes something always runs to completion and reports its result.
 * - Passthrough (local backend): one backing id per node, registered at the first passthrough open with that
 *   open's descriptor and closed when the node's last passthrough open is released.
 */
import { constants as fsConstants } from 'node:fs'
import type { Stat } from '../../backend/types.js'
import { toBytes } from '../../backend/names.js'
import type { Caller, Vfs } from '../../vfs/vfs.js'
import type { EngineHooks, MountOptions } from '../engine.js'
import { toErrno } from '../errno.js'
import {
  BUFFER_HEADER_SIZE, FSYNC_FDATASYNC, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, Fattr, Fopen, GETATTR_FH, Init,
  OP_NAMES, OUT_HEADER_SIZE, Op, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, WRITE_KILL_SUIDGID, OPEN_KILL_SUIDGID
} from './abi.js'
import * as C from './codec.js'
import { NodeTable, ROOT_ID, type Node } from './nodes.js'
import { wantedFeatures, type Features } from './features.js'
import type { Transport } from './transport.js'

/** Requests the kernel may have in the background at once (async reads, readahead, writeback). */
const MAX_BACKGROUND = 64
/** Kernel pages per request: 256 × 4 KiB = 1 MiB READs and WRITEs (the kernel's max_pages_limit default). */
const MAX_PAGES = 256
const PAGE = 4096
/** Opcodes whose INTERRUPT may answer EINTR at once: they change nothing. */
const READ_ONLY = new Set<number>([Op.LOOKUP, Op.GETATTR, Op.READLINK, Op.READ, Op.STATFS, Op.GETXATTR, Op.LISTXATTR, Op.READDIR, Op.READDIRPLUS, Op.ACCESS])
const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_IXGRP = 0o010

/** Options the session needs beyond the kernel mount options. */
export interface SessionOptions extends MountOptions {
  /** Hand regular-file opens to the kernel (FUSE passthrough) where the backend has a host descriptor. */
  passthrough: boolean
  /** FUSE_WRITEBACK_CACHE: the kernel buffers writes (not with passthrough). */
  writebackCache: boolean
}

/** What the engine reports in stats. */
export interface SessionFigures {
  protocol: string
  features: string[]
  passthroughOpens: number
  servedOpens: number
  nodes: number
  notifications: number
  /** Why passthrough is off, when it was wanted and is not in use. */
  passthroughOff?: string
}

interface InFlight { opcode: number, done: boolean }
interface DirHandle { node: number, names?: Buffer[], nameStrs?: string[], stats?: Array<Stat | undefined> }
interface FileHandle { node: Node, passthrough: boolean, killPriv: boolean }

export class Session {
  readonly nodes = new NodeTable()
  private readonly inflight = new Map<bigint, InFlight>()
  private readonly dirs = new Map<number, DirHandle>()
  private readonly files = new Map<number, FileHandle>()
  private nextDirFh = 1
  private features: Features = { flags: 0n, names: [] }
  private minor = 0
  private inited?: () => void
  private initFailed?: (err: Error) => void
  /** Resolves once INIT was answered. */
  readonly ready: Promise<void>
  private readonly figures: SessionFigures = { protocol: '', features: [], passthroughOpens: 0, servedOpens: 0, nodes: 0, notifications: 0 }
  private passthroughUsable: boolean
  /** Per node: the size and mtime the kernel's cached pages belong to (session consistency's KEEP_CACHE test). */
  private readonly versions = new Map<number, string>()
  /** Names answered "no such file" with a timeout, by directory node: the kernel caches them, fsx may have to drop them. */
  private readonly negatives = new Map<number, Set<string>>()
  private negativeCount = 0

  constructor (
    private readonly transport: Transport,
    private readonly vfs: Vfs,
    private readonly opts: SessionOptions,
    private readonly hooks: EngineHooks = {},
    private readonly log: (line: string) => void = () => {}
  ) {
    this.ready = new Promise((resolve, reject) => { this.inited = resolve; this.initFailed = reject })
    this.passthroughUsable = opts.passthrough
  }

  /** Figures for `fsx stats`. */
  stats (): SessionFigures {
    return { ...this.figures, nodes: this.nodes.size }
  }

  /** Starts reading requests; `onEnd` when the connection ends. */
  start (onEnd: (err?: Error) => void): void {
    const maxWrite = Math.min(this.opts.maxWriteBytes, MAX_PAGES * PAGE)
    this.transport.start(maxWrite + BUFFER_HEADER_SIZE, buf => this.handle(buf), err => {
      this.initFailed?.(err ?? new Error('the kernel closed the FUSE connection before INIT'))
      onEnd(err)
    })
  }

  /**
   * fsx learned that `path` changed outside the kernel's view (background validator, `fsx invalidate`): the
   * kernel drops its cached attributes and pages of it and, for `entry`, its name (and `tree`: everything known
   * below it). Written off the JS thread (invariant 4).
   */
  changed (path: string, how: { entry?: boolean, tree?: boolean } = {}): void {
    const chain = this.walk(path)
    if (chain === undefined) return
    const node = chain[chain.length - 1]
    const notes: Buffer[] = []
    if (node !== undefined) notes.push(C.notifyInvalInode(node.id, 0, 0))
    if (how.entry && path !== '/') {
      const parent = chain.length >= 2 ? chain[chain.length - 2] : this.nodes.get(ROOT_ID)
      if (parent !== undefined) notes.push(C.notifyInvalEntry(parent.id, path.slice(path.lastIndexOf('/') + 1)))
    }
    if (how.tree && node !== undefined) {
      for (const n of this.nodes.nodes()) {
        if (n.id !== node.id && this.isBelow(n, node.id)) notes.push(C.notifyInvalInode(n.id, 0, 0))
      }
    }
    if (how.tree && node !== undefined) {
      // Cached "no such file" answers below it: the kernel has no node for them, only the name.
      for (const [dir, names] of this.negatives) {
        if (dir !== node.id && !this.isBelow(this.nodes.get(dir) ?? { parent: 0 } as Node, node.id)) continue
        for (const name of names) notes.push(C.notifyInvalEntry(dir, name))
        this.negativeCount -= names.size
        this.negatives.delete(dir)
      }
    }
    for (const note of notes) {
      this.figures.notifications++
      void this.transport.notify(note)
    }
  }

  /** Remembers a negative answer the kernel will cache (bounded: past the cap, the oldest directories go). */
  private rememberNegative (parent: number, name: string): void {
    let set = this.negatives.get(parent)
    if (set === undefined) {
      set = new Set()
      this.negatives.set(parent, set)
    }
    if (set.has(name)) return
    set.add(name)
    if (++this.negativeCount > 10_000) {
      const [oldest, names] = this.negatives.entries().next().value as [number, Set<string>]
      this.negatives.delete(oldest)
      this.negativeCount -= names.size
    }
  }

  /** The nodes along `path` from the root (the last one undefined when the kernel does not know that name). */
  private walk (path: string): Array<Node | undefined> | undefined {
    const root = this.nodes.get(ROOT_ID)!
    if (path === '/') return [root]
    const out: Array<Node | undefined> = [root]
    let cur: Node | undefined = root
    for (const part of path.split('/').filter(p => p !== '')) {
      if (cur === undefined) return undefined
      cur = this.nodes.child(cur.id, part)
      out.push(cur)
    }
    return out
  }

  private isBelow (n: Node, ancestor: number): boolean {
    let p = n.parent
    for (let i = 0; p !== 0 && i < 4096; i++) {
      if (p === ancestor) return true
      p = this.nodes.get(p)?.parent ?? 0
    }
    return false
  }

  // ---- dispatch ---------------------------------------------------------------------------------------------------

  private handle (buf: Buffer): void {
    let req: C.Request
    try {
      req = C.decodeRequest(buf)
    } catch (err) {
      this.hooks.onUnexpected?.('decode', err)
      // The unique id is in bytes 8..16 even of a malformed request: answer it so the caller does not hang.
      if (buf.length >= 16) {
        const out = Buffer.alloc(OUT_HEADER_SIZE)
        out.writeUInt32LE(OUT_HEADER_SIZE, 0)
        out.writeInt32LE(-5, 4)
        buf.copy(out, 8, 8, 16)
        this.transport.reply(out)
      }
      return
    }
    const op = req.opcode
    if (op === Op.FORGET) { this.nodes.forget(req.nodeid, C.forgetIn(req).nlookup); return }
    if (op === Op.BATCH_FORGET) { for (const f of C.batchForgetIn(req)) this.nodes.forget(f.nodeid, f.nlookup); return }
    if (op === Op.INTERRUPT) { this.interrupt(req); return }
    if (this.opts.debug) this.log(`fuse: ${OP_NAMES[op] ?? op} unique=${req.unique} node=${req.nodeid} (${this.nodes.path(req.nodeid) ?? '?'}) len=${req.len}${op === Op.GETXATTR ? ' ' + C.cname(req, req.arg + 8).name : ''}${op === Op.LOOKUP || op === Op.CREATE || op === Op.UNLINK ? ' ' + C.cname(req, req.arg + (op === Op.CREATE ? 16 : 0)).name : ''}${op === Op.READ || op === Op.WRITE ? ` fh=${C.u64(req.buf, req.arg)} off=${C.u64(req.buf, req.arg + 8)} size=${req.buf.readUInt32LE(req.arg + 16)}` : ''}`)
    const flight: InFlight = { opcode: op, done: false }
    this.inflight.set(req.unique, flight)
    const t0 = performance.now()
    const name = OP_NAMES[op] ?? `op${op}`
    let run: Promise<Buffer | undefined>
    try {
      run = this.dispatch(req)
    } catch (err) {
      run = Promise.reject(err)
    }
    run.then(out => {
      this.hooks.onOp?.(name, performance.now() - t0, 0)
      this.finish(req, flight, out ?? C.errorReply(req, 0))
    }, err => {
      const errno = toErrno(err, e => this.hooks.onUnexpected?.(name, e))
      this.hooks.onOp?.(name, performance.now() - t0, errno)
      this.finish(req, flight, C.errorReply(req, -errno))
    })
  }

  private finish (req: C.Request, flight: InFlight, out: Buffer): void {
    this.inflight.delete(req.unique)
    if (flight.done) return // answered EINTR already (interrupted)
    flight.done = true
    this.transport.reply(out)
  }

  private interrupt (req: C.Request): void {
    const { unique } = C.interruptIn(req)
    const flight = this.inflight.get(unique)
    if (flight === undefined) {
      // Not read yet (or already answered): EAGAIN makes the kernel send the interrupt again later if needed.
      this.transport.reply(C.errorReply(req, 11))
      return
    }
    if (!READ_ONLY.has(flight.opcode) || flight.done) return
    flight.done = true
    const out = Buffer.alloc(OUT_HEADER_SIZE)
    out.writeUInt32LE(OUT_HEADER_SIZE, 0)
    out.writeInt32LE(-4, 4) // EINTR
    out.writeBigUInt64LE(unique, 8)
    this.transport.reply(out)
  }

  private async dispatch (r: C.Request): Promise<Buffer | undefined> {
    switch (r.opcode) {
      case Op.INIT: return this.init(r)
      case Op.DESTROY: return C.errorReply(r, 0)
      case Op.LOOKUP: return await this.lookup(r)
      case Op.GETATTR: return await this.getattr(r)
      case Op.SETATTR: return await this.setattr(r)
      case Op.READLINK: return C.dataReply(r, toBytes(await this.vfs.readlink(this.path(r.nodeid))))
      case Op.SYMLINK: return await this.symlink(r)
      case Op.MKNOD: return await this.mknod(r)
      case Op.MKDIR: return await this.mkdir(r)
      case Op.UNLINK: return await this.unlink(r)
      case Op.RMDIR: return await this.rmdir(r)
      case Op.RENAME: case Op.RENAME2: return await this.rename(r)
      case Op.LINK: return await this.link(r)
      case Op.OPEN: return await this.open(r)
      case Op.READ: return await this.read(r)
      case Op.WRITE: return await this.write(r)
      case Op.STATFS: return C.statfsReply(r, await this.vfs.statfs(this.path(r.nodeid)))
      case Op.RELEASE: return await this.release(r)
      case Op.FSYNC: {
        const f = C.fsyncIn(r)
        await this.vfs.fsync(this.nodes.path(r.nodeid) ?? '', f.fh, (f.fsyncFlags & FSYNC_FDATASYNC) !== 0)
        return C.errorReply(r, 0)
      }
      case Op.FLUSH: {
        await this.vfs.flush(this.nodes.path(r.nodeid) ?? '', C.releaseIn(r).fh)
        return C.errorReply(r, 0)
      }
      case Op.SETXATTR: return await this.setxattr(r)
      case Op.GETXATTR: return await this.getxattr(r)
      case Op.LISTXATTR: return await this.listxattr(r)
      case Op.REMOVEXATTR: {
        if (!this.vfs.servesXattrs) return C.errorReply(r, 38)
        await this.vfs.removexattr(this.path(r.nodeid), C.cname(r, r.arg).name)
        return C.errorReply(r, 0)
      }
      case Op.OPENDIR: return this.opendir(r)
      case Op.READDIR: return await this.readdir(r, false)
      case Op.READDIRPLUS: return await this.readdir(r, true)
      case Op.RELEASEDIR: this.dirs.delete(C.releaseIn(r).fh); return C.errorReply(r, 0)
      case Op.FSYNCDIR: return C.errorReply(r, 0)
      case Op.CREATE: return await this.create(r)
      // ENOSYS tells the kernel to stop asking: it handles these itself (access checks with default_permissions,
      // locks locally, lseek and fallocate generically, copy_file_range by read and write).
      default: return C.errorReply(r, 38)
    }
  }

  // ---- INIT -------------------------------------------------------------------------------------------------------

  private init (r: C.Request): Buffer {
    const k = C.initIn(r)
    if (k.major !== FUSE_KERNEL_VERSION) {
      this.initFailed?.(new Error(`the kernel speaks FUSE ${k.major}.${k.minor}, fsx speaks ${FUSE_KERNEL_VERSION}.x`))
      return C.errorReply(r, 71) // EPROTO
    }
    this.minor = Math.min(k.minor, FUSE_KERNEL_MINOR_VERSION)
    const want = wantedFeatures(this.opts)
    let flags = want.flags & k.flags
    if ((flags & Init.PASSTHROUGH) !== 0n && (flags & Init.WRITEBACK_CACHE) !== 0n) flags &= ~Init.WRITEBACK_CACHE
    if (this.opts.passthrough && (flags & Init.PASSTHROUGH) === 0n) {
      this.passthroughUsable = false
      this.figures.passthroughOff = 'the kernel does not offer passthrough (CONFIG_FUSE_PASSTHROUGH, Linux 6.9+)'
      this.log(`passthrough off: ${this.figures.passthroughOff}; fsx serves reads and writes itself`)
    }
    this.features = { flags, names: want.names.filter(n => (Init[n as keyof typeof Init] & flags) !== 0n) }
    this.figures.protocol = `${FUSE_KERNEL_VERSION}.${this.minor}`
    this.figures.features = this.features.names
    const maxPages = (flags & Init.MAX_PAGES) !== 0n ? MAX_PAGES : 32
    const maxWrite = Math.min(this.opts.maxWriteBytes, maxPages * PAGE)
    const out = C.initReply(r, {
      minor: this.minor,
      maxReadahead: Math.min(k.maxReadahead, this.opts.readaheadBytes),
      flags,
      maxBackground: MAX_BACKGROUND,
      congestionThreshold: Math.floor(MAX_BACKGROUND * 3 / 4),
      maxWrite,
      timeGran: 1,
      maxPages,
      maxStackDepth: (flags & Init.PASSTHROUGH) !== 0n ? 1 : 0
    })
    queueMicrotask(() => this.inited?.())
    return out
  }

  private has (flag: bigint): boolean {
    return (this.features.flags & flag) !== 0n
  }

  // ---- names ------------------------------------------------------------------------------------------------------

  /** The VFS path of a node; ENOENT when the kernel names one whose name is gone (it was unlinked meanwhile). */
  private path (nodeid: number): string {
    const p = this.nodes.path(nodeid)
    if (p === undefined) throw Object.assign(new Error('the file is gone'), { code: this.nodes.get(nodeid) ? 'ENOENT' : 'ESTALE' })
    return p
  }

  private childPath (parent: number, name: string): string {
    const p = this.nodes.childPath(parent, name)
    if (p === undefined) throw Object.assign(new Error('the directory is gone'), { code: 'ENOENT' })
    if (name === '' || name === '.' || name === '..' || name.includes('/')) throw Object.assign(new Error('bad name'), { code: 'EINVAL' })
    return p
  }

  /**
   * With the writeback cache the kernel reads pages of files opened write-only (to fill a page it writes part of)
   * and appends by itself: opens become read-write and lose O_APPEND (as libfuse's passthrough examples do).
   */
  private openFlagsFor (flags: number): number {
    if (!this.has(Init.WRITEBACK_CACHE)) return flags
    let f = flags & ~fsConstants.O_APPEND
    if ((f & 3) === fsConstants.O_WRONLY) f = (f & ~3) | fsConstants.O_RDWR
    return f
  }

  private caller (r: C.Request): Caller {
    return { uid: r.uid, gid: r.gid, pid: r.pid }
  }

  /** st_ino the kernel shows: the backend's inode number, else the node id (stable while the kernel knows it). */
  private ino (st: Stat, nodeid: number): number {
    return st.ino ?? nodeid
  }

  /** Replies with a new (or refreshed) entry for `name` in `parent` holding `st`. */
  private entry (r: C.Request, parent: number, name: string, st: Stat): Buffer {
    const n = this.nodes.remember(parent, name, st.mode, st.ino)
    return C.entryReply(r, n.id, st, this.ino(st, n.id), this.opts.entryTtlMs, this.opts.attrTtlMs)
  }

  // ---- metadata ---------------------------------------------------------------------------------------------------

  private async lookup (r: C.Request): Promise<Buffer> {
    const { name } = C.cname(r, r.arg)
    const p = this.childPath(r.nodeid, name)
    try {
      return this.entry(r, r.nodeid, name, await this.vfs.getattr(p))
    } catch (err) {
      // A negative entry the kernel may cache for negativeTtl: nodeid 0 with a timeout.
      if ((err as { code?: string }).code === 'ENOENT' && this.opts.negativeTtlMs > 0) {
        this.rememberNegative(r.nodeid, name)
        return C.entryReply(r, 0, undefined, 0, this.opts.negativeTtlMs, 0)
      }
      throw err
    }
  }

  private async getattr (r: C.Request): Promise<Buffer> {
    const g = C.getattrIn(r)
    const st = await this.statOf(r.nodeid, (g.flags & GETATTR_FH) !== 0 ? g.fh : undefined)
    return C.attrReply(r, st, this.ino(st, r.nodeid), this.opts.attrTtlMs)
  }

  /** Attributes of a node, through its open file when the kernel names one (it may have no path any more). */
  private async statOf (nodeid: number, fh?: number): Promise<Stat> {
    const p = this.nodes.path(nodeid)
    if (fh !== undefined && this.files.has(fh)) return await this.vfs.fgetattr(p ?? '', fh)
    return await this.vfs.getattr(this.path(nodeid))
  }

  private async setattr (r: C.Request): Promise<Buffer> {
    const a = C.setattrIn(r)
    const fh = (a.valid & Fattr.FH) !== 0 && this.files.has(a.fh) ? a.fh : undefined
    const p = this.nodes.path(r.nodeid)
    const where = p ?? this.path(r.nodeid)
    if ((a.valid & Fattr.MODE) !== 0) await this.vfs.chmod(where, a.mode & 0o7777)
    if ((a.valid & (Fattr.UID | Fattr.GID)) !== 0) {
      await this.vfs.chown(where, (a.valid & Fattr.UID) !== 0 ? a.uid : -1, (a.valid & Fattr.GID) !== 0 ? a.gid : -1)
    }
    if ((a.valid & Fattr.SIZE) !== 0) {
      if (fh !== undefined) await this.vfs.ftruncate(where, fh, a.size)
      else await this.vfs.truncate(where, a.size)
    }
    const atime = (a.valid & Fattr.ATIME_NOW) !== 0 ? 'now' : (a.valid & Fattr.ATIME) !== 0 ? a.atime * 1000 + a.atimensec / 1e6 : undefined
    const mtime = (a.valid & Fattr.MTIME_NOW) !== 0 ? 'now' : (a.valid & Fattr.MTIME) !== 0 ? a.mtime * 1000 + a.mtimensec / 1e6 : undefined
    if (atime !== undefined || mtime !== undefined) await this.vfs.utimens(where, atime, mtime)
    // HANDLE_KILLPRIV_V2: a truncate or chown by an unprivileged caller clears set-id bits, as the kernel would.
    if ((a.valid & Fattr.KILL_SUIDGID) !== 0 && (a.valid & Fattr.MODE) === 0) await this.killPriv(where)
    const st = await this.statOf(r.nodeid, fh)
    return C.attrReply(r, st, this.ino(st, r.nodeid), this.opts.attrTtlMs)
  }

  /** Clears S_ISUID, and S_ISGID when group-executable (Linux's should_remove_suid), if set. */
  private async killPriv (p: string): Promise<void> {
    const st = await this.vfs.getattr(p)
    const kill = (st.mode & S_ISUID) | ((st.mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP) ? S_ISGID : 0)
    if ((st.mode & S_IFMT) === S_IFREG && kill !== 0) await this.vfs.chmod(p, st.mode & 0o7777 & ~kill)
  }

  private async symlink (r: C.Request): Promise<Buffer> {
    const { name, target } = C.symlinkIn(r)
    const p = this.childPath(r.nodeid, name)
    await this.vfs.symlink(target, p, this.caller(r))
    return this.entry(r, r.nodeid, name, await this.vfs.getattr(p))
  }

  private async mknod (r: C.Request): Promise<Buffer> {
    const m = C.mknodIn(r)
    const p = this.childPath(r.nodeid, m.name)
    await this.vfs.mknod(p, m.mode, m.rdev, this.caller(r))
    return this.entry(r, r.nodeid, m.name, await this.vfs.getattr(p))
  }

  private async mkdir (r: C.Request): Promise<Buffer> {
    const m = C.mkdirIn(r)
    const p = this.childPath(r.nodeid, m.name)
    await this.vfs.mkdir(p, m.mode & 0o7777, this.caller(r))
    return this.entry(r, r.nodeid, m.name, await this.vfs.getattr(p))
  }

  private async unlink (r: C.Request): Promise<Buffer> {
    const { name } = C.cname(r, r.arg)
    const p = this.childPath(r.nodeid, name)
    const node = this.nodes.child(r.nodeid, name)
    if (node !== undefined && node.opens > 0 && this.vfs.stagesWrites) {
      // Whole-object backends: a file unlinked while open is moved to a hidden name and removed at its last
      // close, so the open handles' uploads cannot bring it back (as libfuse's high-level API does).
      const hidden = this.childPath(r.nodeid, `.fuse_hidden${node.id.toString(16).padStart(8, '0')}${Date.now().toString(16).slice(-8)}`)
      await this.vfs.rename(p, hidden)
      node.hiddenPath = hidden
      this.nodes.removed(r.nodeid, name)
      return C.errorReply(r, 0)
    }
    await this.vfs.unlink(p)
    this.nodes.removed(r.nodeid, name)
    return C.errorReply(r, 0)
  }

  private async rmdir (r: C.Request): Promise<Buffer> {
    const { name } = C.cname(r, r.arg)
    await this.vfs.rmdir(this.childPath(r.nodeid, name))
    this.nodes.removed(r.nodeid, name)
    return C.errorReply(r, 0)
  }

  private async rename (r: C.Request): Promise<Buffer> {
    const a = C.renameIn(r)
    if ((a.flags & (RENAME_EXCHANGE | RENAME_WHITEOUT)) !== 0) return C.errorReply(r, 22) // EINVAL: not supported
    const from = this.childPath(r.nodeid, a.from)
    const to = this.childPath(a.newdir, a.to)
    if ((a.flags & RENAME_NOREPLACE) !== 0) {
      // NB: not atomic against another client of the same backend; atomic against this mount (the kernel holds
      // both directories locked).
      const exists = await this.vfs.getattr(to).then(() => true, (err: { code?: string }) => { if (err.code === 'ENOENT') return false; throw err })
      if (exists) return C.errorReply(r, 17) // EEXIST
    }
    await this.vfs.rename(from, to)
    this.nodes.renamed(r.nodeid, a.from, a.newdir, a.to)
    return C.errorReply(r, 0)
  }

  private async link (r: C.Request): Promise<Buffer> {
    const l = C.linkIn(r)
    const p = this.childPath(r.nodeid, l.name)
    await this.vfs.link(this.path(l.oldnodeid), p)
    return this.entry(r, r.nodeid, l.name, await this.vfs.getattr(p))
  }

  // ---- files ------------------------------------------------------------------------------------------------------

  /** Open flags for a file just opened through the VFS, and its passthrough backing id when it gets one. */
  private async openFlags (node: Node, fh: number, flags: number, st: Stat): Promise<{ open: number, backing: number, passthrough: boolean }> {
    const acc = flags & 3
    const readOnly = acc === fsConstants.O_RDONLY
    if (this.passthroughUsable) {
      const fd = this.vfs.backingFd(fh)
      if (fd !== undefined) {
        try {
          if (node.backingId === undefined) node.backingId = this.transport.backingOpen(fd)
          node.backingRefs++
          this.vfs.passedThrough(fh)
          this.figures.passthroughOpens++
          return { open: Fopen.PASSTHROUGH | (readOnly ? Fopen.NOFLUSH : 0), backing: node.backingId, passthrough: true }
        } catch (err) {
          const code = (err as { code?: string }).code ?? String(err)
          this.passthroughUsable = false
          this.figures.passthroughOff = code === 'EPERM'
            ? 'the kernel refused to register backing files (EPERM: it needs CAP_SYS_ADMIN)'
            : `the kernel refused to register a backing file (${code})`
          this.log(`passthrough off: ${this.figures.passthroughOff}; fsx serves reads and writes itself`)
        }
      }
    }
    this.figures.servedOpens++
    let open = readOnly ? Fopen.NOFLUSH : 0
    const version = `${st.size}:${st.mtimeMs}`
    if (this.opts.pageCache === 'keep') open |= Fopen.KEEP_CACHE
    else if (this.opts.pageCache === 'auto' && this.versions.get(node.id) === version) open |= Fopen.KEEP_CACHE
    this.versions.set(node.id, version)
    return { open, backing: 0, passthrough: false }
  }

  private async open (r: C.Request): Promise<Buffer> {
    const o = C.openIn(r)
    const node = this.nodes.get(r.nodeid)
    if (node === undefined) return C.errorReply(r, 116) // ESTALE
    const p = this.path(r.nodeid)
    const fh = await this.vfs.open(p, this.openFlagsFor(o.flags & ~(fsConstants.O_CREAT | fsConstants.O_EXCL)), this.caller(r))
    try {
      if ((o.openFlags & OPEN_KILL_SUIDGID) !== 0) await this.killPriv(p)
      const st = await this.vfs.fgetattr(p, fh)
      const f = await this.openFlags(node, fh, o.flags, st)
      this.nodes.opened(node)
      this.files.set(fh, { node, passthrough: f.passthrough, killPriv: false })
      return C.openReply(r, fh, f.open, f.backing)
    } catch (err) {
      await this.vfs.release(p, fh).catch(() => {})
      throw err
    }
  }

  private async create (r: C.Request): Promise<Buffer> {
    const c = C.createIn(r)
    const p = this.childPath(r.nodeid, c.name)
    const fh = await this.vfs.create(p, c.mode & 0o7777, this.caller(r), this.openFlagsFor(c.flags))
    try {
      const st = await this.vfs.fgetattr(p, fh)
      const node = this.nodes.remember(r.nodeid, c.name, st.mode, st.ino)
      const f = await this.openFlags(node, fh, c.flags, st)
      this.nodes.opened(node)
      this.files.set(fh, { node, passthrough: f.passthrough, killPriv: false })
      return C.createReply(r, node.id, st, this.ino(st, node.id), this.opts.entryTtlMs, this.opts.attrTtlMs, fh, f.open, f.backing)
    } catch (err) {
      await this.vfs.release(p, fh).catch(() => {})
      throw err
    }
  }

  private async read (r: C.Request): Promise<Buffer> {
    const a = C.readIn(r)
    const out = Buffer.allocUnsafe(OUT_HEADER_SIZE + a.size)
    const n = await this.vfs.read(this.nodes.path(r.nodeid) ?? '', a.fh, out.subarray(OUT_HEADER_SIZE), a.size, a.offset)
    C.header(out, r, 0, OUT_HEADER_SIZE + n)
    return out.subarray(0, OUT_HEADER_SIZE + n)
  }

  private async write (r: C.Request): Promise<Buffer> {
    const w = C.writeIn(r)
    const p = this.nodes.path(r.nodeid) ?? ''
    const n = await this.vfs.write(p, w.fh, w.data, w.size, w.offset)
    const f = this.files.get(w.fh)
    if ((w.writeFlags & WRITE_KILL_SUIDGID) !== 0 && f !== undefined && !f.killPriv && p !== '') {
      f.killPriv = true
      await this.killPriv(p)
    }
    return C.writeReply(r, n)
  }

  private async release (r: C.Request): Promise<Buffer> {
    const { fh } = C.releaseIn(r)
    const f = this.files.get(fh)
    this.files.delete(fh)
    let hidden: string | undefined
    if (f !== undefined) {
      // The open ends for the kernel now (close(2) returned before it sent RELEASE): an UNLINK that follows must
      // see the file closed, even while the VFS is still saving it (the VFS orders that save before the unlink).
      const node = f.node
      hidden = node.opens === 1 ? node.hiddenPath : undefined
      if (hidden !== undefined) node.hiddenPath = undefined
      if (f.passthrough && --node.backingRefs === 0 && node.backingId !== undefined) {
        this.transport.backingClose(node.backingId)
        node.backingId = undefined
      }
      this.nodes.released(node)
    }
    try {
      await this.vfs.release(this.nodes.path(r.nodeid) ?? '', fh)
    } finally {
      if (hidden !== undefined) {
        await this.vfs.unlink(hidden).catch(err => this.log(`removing ${hidden} after its last close: ${(err as Error).message}`))
      }
    }
    return C.errorReply(r, 0)
  }

  // ---- xattrs -----------------------------------------------------------------------------------------------------

  private async setxattr (r: C.Request): Promise<Buffer> {
    // ENOSYS once: the kernel stops sending xattr requests of that kind for the whole connection.
    if (!this.vfs.servesXattrs) return C.errorReply(r, 38)
    const x = C.setxattrIn(r, this.has(Init.SETXATTR_EXT))
    await this.vfs.setxattr(this.path(r.nodeid), x.name, Buffer.from(x.value), x.flags)
    return C.errorReply(r, 0)
  }

  private async getxattr (r: C.Request): Promise<Buffer> {
    if (!this.vfs.servesXattrs) return C.errorReply(r, 38)
    const g = C.getxattrIn(r, true)
    const v = await this.vfs.getxattr(this.path(r.nodeid), g.name)
    if (g.size === 0) return C.xattrSizeReply(r, v.length)
    if (v.length > g.size) return C.errorReply(r, 34) // ERANGE
    return C.dataReply(r, v)
  }

  private async listxattr (r: C.Request): Promise<Buffer> {
    if (!this.vfs.servesXattrs) return C.errorReply(r, 38)
    const g = C.getxattrIn(r, false)
    const names = await this.vfs.listxattr(this.path(r.nodeid))
    const list = Buffer.concat(names.map(n => Buffer.concat([toBytes(n), Buffer.from([0])])))
    if (g.size === 0) return C.xattrSizeReply(r, list.length)
    if (list.length > g.size) return C.errorReply(r, 34)
    return C.dataReply(r, list)
  }

  // ---- directories ------------------------------------------------------------------------------------------------

  private opendir (r: C.Request): Buffer {
    if (this.nodes.path(r.nodeid) === undefined) return C.errorReply(r, 2)
    const fh = this.nextDirFh++
    this.dirs.set(fh, { node: r.nodeid })
    let flags = 0
    if (this.opts.pageCache === 'keep') flags = Fopen.CACHE_DIR | Fopen.KEEP_CACHE
    else if (this.opts.pageCache === 'auto') flags = Fopen.CACHE_DIR
    return C.openReply(r, fh, flags)
  }

  private async readdir (r: C.Request, plus: boolean): Promise<Buffer> {
    const a = C.readIn(r)
    const d = this.dirs.get(a.fh) ?? { node: r.nodeid }
    if (d.names === undefined || a.offset === 0) {
      const list = await this.vfs.readdir(this.path(d.node))
      d.nameStrs = ['.', '..', ...list.names]
      d.names = d.nameStrs.map(n => toBytes(n))
      d.stats = [undefined, undefined, ...list.stats]
      this.dirs.set(a.fh, d)
    }
    const out = Buffer.allocUnsafe(OUT_HEADER_SIZE + a.size)
    let off = OUT_HEADER_SIZE
    for (let i = a.offset; i < d.names.length; i++) {
      const name = d.names[i]
      const st = d.stats![i]
      const dot = i < 2
      const mode = dot ? S_IFDIR : (st?.mode ?? 0)
      const known = dot ? undefined : this.nodes.child(d.node, d.nameStrs![i])
      const ino = st?.ino ?? known?.id ?? (dot ? d.node : 0xFFFFFFFF)
      let next: number
      if (plus) {
        // An entry with attributes hands the kernel a node (one lookup); one without lets it LOOKUP later.
        const size = C.direntSize(name.length, true)
        if (off + size > out.length) break
        let nodeid = 0
        if (!dot && st !== undefined) nodeid = this.nodes.remember(d.node, d.nameStrs![i], st.mode, st.ino).id
        next = C.writeDirent(out, off, name, st?.ino ?? (nodeid || ino), mode, i + 1, { nodeid, st, entryMs: this.opts.entryTtlMs, attrMs: this.opts.attrTtlMs })
      } else {
        next = C.writeDirent(out, off, name, ino, mode, i + 1)
      }
      if (next < 0) break
      off = next
    }
    C.header(out, r, 0, off)
    return out.subarray(0, off)
  }
}
