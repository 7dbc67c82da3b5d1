/**
 * The fuse-native engine: the only module that imports fuse-native (libfuse 2, path-based high-level API).
 *
 * What we change without forking the package:
 * - Mount options: fuse-native builds its `-o` list in `_fuseOptions()` from a fixed set and drops falsy values
 *   (so entry_timeout=0 cannot be asked for). We subclass and build the whole list ourselves: big_writes,
 *   max_write, max_read, max_readahead, entry/attr/negative timeouts, kernel_cache/auto_cache, use_ino, …
 * - utimens: the patched binding (native/fuse-native+2.2.6.patch, built at install by scripts/build-fuse-native.mjs) passes atime and mtime as raw low/high uint32
 *   pairs with UTIME_NOW / UTIME_OMIT as sentinels; we decode them here so `touch -m` leaves atime alone.
 * - Unmount: fuse-native runs `fusermount -uz` (lazy), which hides "target is busy". We run `fusermount -u` and
 *   report EBUSY, falling back to umount(8) where fusermount is missing.
 * - The per-operation timeout (fuse-native's default: 15 s, then ETIMEDOUT) is set from `opTimeout` on purpose.
 * - Names: the patched binding passes paths, names and link targets as latin1 strings (one char per byte) and
 *   takes names back the same way; we convert them to and from fsx's byte-exact strings (src/backend/names.ts),
 *   so names that are not UTF-8 are neither mangled nor merged.
 * - The caller: the patched binding's fsx_caller() gives the uid/gid/pid of the request whose handler runs now
 *   (read synchronously at the handler's start); new nodes are given to them.
 *
 * NB: fuse-native answers the kernel from the JS thread. A synchronous fs call on the mountpoint from this process
 * deadlocks; every handler here is async all the way down.
 */
import { createRequire } from 'node:module'
import { access, constants as fsConstants } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FsxError } from '../errors.js'
import type { Stat } from '../backend/types.js'
import type { Vfs, TimeArg, Caller } from '../vfs/vfs.js'
import { fromLatin1, toLatin1 } from '../backend/names.js'
import type { EngineHooks, FuseEngine, MountedFs, MountOptions } from './engine.js'
import { toErrno } from './errno.js'
import { unmountPath } from './unmount.js'

export { mountState, unmountPath } from './unmount.js'

const require = createRequire(import.meta.url)
/** The script that patches and builds fuse-native's addon (fsx's postinstall), named in the hints above. */
const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-fuse-native.mjs', import.meta.url))

/** Sentinels the patched binding sends for UTIME_NOW / UTIME_OMIT (high word all ones). */
const UTIME_HIGH = 0xFFFFFFFF
const UTIME_NOW_LOW = 0xFFFFFFFF
const UTIME_OMIT_LOW = 0xFFFFFFFE

/** Decodes one utimens time from the patched binding's low/high words. */
export function decodeUtime (low: number, high: number): TimeArg {
  if (high === UTIME_HIGH && low === UTIME_NOW_LOW) return 'now'
  if (high === UTIME_HIGH && low === UTIME_OMIT_LOW) return undefined
  // Signed: times before 1970 arrive as two's complement.
  return (high | 0) * 4294967296 + low
}

/** Builds the `-o` option list for libfuse 2 from our mount settings. Exported for tests. */
export function fuseOptionList (o: MountOptions): string[] {
  const secs = (ms: number): string => String(Math.max(0, ms) / 1000)
  const opts = [
    `fsname=${o.fsname.replace(/[,\\\s]/g, '_')}`,
    `subtype=${o.subtype}`,
    'big_writes',
    `max_write=${o.maxWriteBytes}`,
    `max_read=${o.maxReadBytes}`,
    `max_readahead=${o.readaheadBytes}`,
    `entry_timeout=${secs(o.entryTtlMs)}`,
    `attr_timeout=${secs(o.attrTtlMs)}`,
    `negative_timeout=${secs(o.negativeTtlMs)}`
  ]
  if (o.pageCache === 'keep') opts.push('kernel_cache')
  if (o.pageCache === 'auto') opts.push('auto_cache', `ac_attr_timeout=${secs(o.attrTtlMs)}`)
  if (o.useIno) opts.push('use_ino')
  if (o.allowOther) opts.push('allow_other')
  if (o.defaultPermissions) opts.push('default_permissions')
  if (o.autoUnmount) opts.push('auto_unmount')
  if (o.debug) opts.push('debug')
  return opts
}

interface Binding {
  fuse_native_unmount: (mnt: string, thread: unknown) => void
  fsx_utimens_raw?: number
  fsx_bytes_names?: number
  /** [uid, gid, pid] of the request whose JS handler is running (patched binding). */
  fsx_caller?: () => [number, number, number]
}

interface FuseStatic {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseInstance
  ENOENT: number
}
interface FuseInstance {
  mnt: string
  ops: Record<string, any>
  _thread: unknown
  mount (cb: (err: Error | null) => void): void
}

/** Checks /dev/fuse and loads the binding; each failure becomes one line naming the fix. */
export async function createFuseNativeEngine (): Promise<FuseEngine> {
  try {
    await access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new FsxError('ENOFUSE', code === 'ENOENT' ? '/dev/fuse does not exist' : `/dev/fuse is not usable (${code})`, {
      hint: 'load the fuse module (modprobe fuse) or, in a container, run with --device /dev/fuse --cap-add SYS_ADMIN'
    })
  }
  let Fuse: FuseStatic
  let binding: Binding
  try {
    Fuse = require('fuse-native')
    const fuseDir = path.dirname(require.resolve('fuse-native/package.json'))
    binding = require(require.resolve('node-gyp-build', { paths: [fuseDir] }))(fuseDir)
  } catch (err) {
    const msg = (err as Error).message ?? ''
    if (/libfuse\.so/.test(msg)) {
      throw new FsxError('ENOLIBFUSE', 'libfuse 2 is not installed (libfuse.so.2 not found)', { hint: 'apt-get install libfuse2 fuse3' })
    }
    if ((err as { code?: string }).code === 'MODULE_NOT_FOUND' && /'fuse-native/.test(msg)) {
      throw new FsxError('ENOLIBFUSE', 'the fuse-native engine is not installed (fuse-native, an optional dependency, was left out at install)', {
        hint: `use the default engine (--engine kernel), or install python3, make, g++ and libfuse2 and reinstall fsx`
      })
    }
    throw new FsxError('ENOLIBFUSE', `cannot load fuse-native: ${msg.split('\n')[0]}`, { hint: `rebuild it: node ${BUILD_SCRIPT}` })
  }
  if (binding.fsx_utimens_raw !== 1 || binding.fsx_bytes_names !== 1 || typeof binding.fsx_caller !== 'function') {
    // The unpatched prebuild would lose mtime on every utimens; refuse rather than corrupt timestamps.
    throw new FsxError('ENOLIBFUSE', 'the fuse-native engine needs its patched addon, which was not built at install', {
      hint: `apt-get install python3 make g++ libfuse2, then run: node ${BUILD_SCRIPT}`
    })
  }
  return new FuseNativeEngine(Fuse, binding)
}

class FuseNativeEngine implements FuseEngine {
  readonly name = 'fuse-native'
  private readonly FsxFuse: new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>, extra: string[]) => FuseInstance

  constructor (Fuse: FuseStatic, private readonly binding: Binding) {
    // A subclass, not a fork: only the option list, the utimens decoding and listxattr's name encoding change.
    this.FsxFuse = class FsxFuse extends (Fuse as any) {
      private readonly fsxOptions: string[]
      constructor (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>, extra: string[]) {
        super(mnt, ops, opts)
        this.fsxOptions = extra
      }

      _fuseOptions (): string {
        return '-o' + this.fsxOptions.join(',')
      }

      _op_utimens (signal: (err: number) => void, p: string, aLow: number, aHigh: number, mLow: number, mHigh: number): void {
        (this as any).ops.utimens(p, decodeUtime(aLow, aHigh), decodeUtime(mLow, mHigh), (err: number) => signal(err))
      }

      // fuse-native writes the names as UTF-8; the patched binding's names are latin1 (one char per byte).
      _op_listxattr (signal: (n: number, buf?: ArrayBuffer) => void, p: string, listBuf: Buffer): void {
        (this as any).ops.listxattr(p, (err: number, list?: string[]) => {
          if (err || !list) return signal(err, listBuf.buffer as ArrayBuffer)
          const bytes = Buffer.from(list.map(n => n + '\0').join(''), 'latin1')
          if (listBuf.length === 0) return signal(bytes.length, listBuf.buffer as ArrayBuffer)
          if (bytes.length > listBuf.length) return signal(-34, listBuf.buffer as ArrayBuffer) // ERANGE
          bytes.copy(listBuf)
          return signal(bytes.length, listBuf.buffer as ArrayBuffer)
        })
      }
    } as any
  }

  async mount (mountpoint: string, vfs: Vfs, opts: MountOptions, hooks: EngineHooks = {}): Promise<MountedFs> {
    const binding = this.binding
    const ops = makeOps(vfs, hooks, () => {
      const c = binding.fsx_caller!()
      return { uid: c[0], gid: c[1], pid: c[2] }
    })
    const fuse = new this.FsxFuse(mountpoint, ops, { timeout: opts.opTimeoutMs, force: false, mkdir: false }, fuseOptionList(opts))
    await new Promise<void>((resolve, reject) => {
      fuse.mount(err => {
        if (!err) return resolve()
        const msg = err.message
        // NB: fuse-native leaves the kernel mount behind when fuse_new fails after fuse_mount: detach it.
        unmountPath(mountpoint, true).catch(() => {})
        if (/in use/i.test(msg)) reject(new FsxError('EMOUNTED', `${mountpoint} is already a mountpoint`, { hint: `unmount it first: fsx unmount ${mountpoint}` }))
        else reject(new FsxError('EIO', `mount failed: ${msg}`, { cause: err }))
      })
    })
    let mounted = true
    return {
      mountpoint,
      async unmount () {
        if (!mounted) return
        await unmountPath(mountpoint, false)
        mounted = false
        try { binding.fuse_native_unmount(mountpoint, fuse._thread) } catch { /* thread already gone */ }
      }
    }
  }
}

/** Converts a backend Stat to what fuse-native's getStatArray reads. */
function toFuseStat (st: Stat): Record<string, unknown> {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    nlink: st.nlink,
    ino: st.ino !== undefined ? st.ino % 4294967296 : 0,
    blksize: 4096,
    blocks: st.blocks ?? Math.ceil(st.size / 512),
    rdev: st.rdev ?? 0,
    atime: st.atimeMs,
    mtime: st.mtimeMs,
    ctime: st.ctimeMs
  }
}

/**
 * The fuse-native ops table: each handler calls the async Vfs method and answers through fuse-native's callback
 * convention (cb(negative errno) on failure; read/write answer the byte count in the first argument).
 */
function makeOps (vfs: Vfs, hooks: EngineHooks, caller: () => Caller): Record<string, unknown> {
  const onOp = hooks.onOp
  function wrap<T> (op: string, run: () => Promise<T>, reply: (v: T) => void, fail: (errno: number) => void): void {
    const t0 = onOp ? performance.now() : 0
    let started: Promise<T>
    try {
      started = run()
    } catch (err) {
      started = Promise.reject(err)
    }
    started.then(v => {
      onOp?.(op, performance.now() - t0, 0)
      reply(v)
    }, err => {
      const errno = toErrno(err, e => hooks.onUnexpected?.(op, e))
      onOp?.(op, performance.now() - t0, errno)
      fail(errno)
    })
  }
  type Cb = (err: number, ...rest: unknown[]) => void
  const voidOp = (op: string, run: () => Promise<void>, cb: Cb): void => wrap(op, run, () => cb(0), e => cb(e))
  // Paths, names and link targets arrive and leave as latin1 strings (see the header).
  const n = fromLatin1

  return {
    init: (cb: Cb) => cb(0),
    getattr: (p: string, cb: Cb) => wrap('getattr', () => vfs.getattr(n(p)), st => cb(0, toFuseStat(st)), e => cb(e)),
    fgetattr: (p: string, fd: number, cb: Cb) => wrap('getattr', () => vfs.fgetattr(n(p), fd), st => cb(0, toFuseStat(st)), e => cb(e)),
    access: (p: string, mode: number, cb: Cb) => voidOp('access', () => vfs.access(n(p), mode), cb),
    statfs: (p: string, cb: Cb) => wrap('statfs', () => vfs.statfs(n(p)), s => cb(0, { ...s, fsid: 0, flag: 0 }), e => cb(e)),
    // NB: an entry without attributes must not go out as st_ino 0 (glibc's readdir hides those): when any is
    // missing, names alone go, and libfuse reports its unknown-inode marker for each.
    readdir: (p: string, cb: Cb) => wrap('readdir', () => vfs.readdir(n(p)), r => r.stats.every(s => s !== undefined)
      ? cb(0, r.names.map(toLatin1), r.stats.map(s => toFuseStat(s!)))
      : cb(0, r.names.map(toLatin1)), e => cb(e)),
    open: (p: string, flags: number, cb: Cb) => wrap('open', () => vfs.open(n(p), flags), fh => cb(0, fh), e => cb(e)),
    opendir: (_p: string, _flags: number, cb: Cb) => cb(0, 0),
    releasedir: (_p: string, _fh: number, cb: Cb) => cb(0),
    create: (p: string, mode: number, cb: Cb) => { const c = caller(); wrap('create', () => vfs.create(n(p), mode, c), fh => cb(0, fh), e => cb(e)) },
    read: (p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      wrap('read', () => vfs.read(p, fh, buf, len, pos), count => cb(count), e => cb(e)),
    write: (p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      wrap('write', () => vfs.write(p, fh, buf, len, pos), count => cb(count), e => cb(e)),
    flush: (p: string, fh: number, cb: Cb) => voidOp('flush', () => vfs.flush(p, fh), cb),
    fsync: (p: string, datasync: number, fh: number, cb: Cb) => voidOp('fsync', () => vfs.fsync(p, fh, !!datasync), cb),
    fsyncdir: (_p: string, _datasync: number, _fh: number, cb: Cb) => cb(0),
    release: (p: string, fh: number, cb: Cb) => voidOp('release', () => vfs.release(p, fh), cb),
    truncate: (p: string, size: number, cb: Cb) => voidOp('truncate', () => vfs.truncate(n(p), size), cb),
    ftruncate: (p: string, fh: number, size: number, cb: Cb) => voidOp('truncate', () => vfs.ftruncate(n(p), fh, size), cb),
    utimens: (p: string, atime: TimeArg, mtime: TimeArg, cb: Cb) => voidOp('utimens', () => vfs.utimens(n(p), atime, mtime), cb),
    readlink: (p: string, cb: Cb) => wrap('readlink', () => vfs.readlink(n(p)), t => cb(0, toLatin1(t)), e => cb(e)),
    chown: (p: string, uid: number, gid: number, cb: Cb) => voidOp('chown', () => vfs.chown(n(p), uid, gid), cb),
    chmod: (p: string, mode: number, cb: Cb) => voidOp('chmod', () => vfs.chmod(n(p), mode), cb),
    mknod: (p: string, mode: number, dev: number, cb: Cb) => { const c = caller(); voidOp('mknod', () => vfs.mknod(n(p), mode, dev, c), cb) },
    unlink: (p: string, cb: Cb) => voidOp('unlink', () => vfs.unlink(n(p)), cb),
    rename: (from: string, to: string, cb: Cb) => voidOp('rename', () => vfs.rename(n(from), n(to)), cb),
    link: (from: string, to: string, cb: Cb) => voidOp('link', () => vfs.link(n(from), n(to)), cb),
    symlink: (target: string, p: string, cb: Cb) => { const c = caller(); voidOp('symlink', () => vfs.symlink(n(target), n(p), c), cb) },
    mkdir: (p: string, mode: number, cb: Cb) => { const c = caller(); voidOp('mkdir', () => vfs.mkdir(n(p), mode, c), cb) },
    rmdir: (p: string, cb: Cb) => voidOp('rmdir', () => vfs.rmdir(n(p)), cb),
    setxattr: (p: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      voidOp('setxattr', () => vfs.setxattr(n(p), n(name), Buffer.from(value), flags), cb),
    getxattr: (p: string, name: string, _position: number, cb: Cb) =>
      wrap('getxattr', () => vfs.getxattr(n(p), n(name)), v => cb(0, v), e => cb(e)),
    listxattr: (p: string, cb: Cb) => wrap('listxattr', () => vfs.listxattr(n(p)), l => cb(0, l.map(toLatin1)), e => cb(e)),
    removexattr: (p: string, name: string, cb: Cb) => voidOp('removexattr', () => vfs.removexattr(n(p), n(name)), cb)
  }
}
