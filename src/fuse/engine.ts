/**
 * The FUSE engine adapter interface. An engine turns a Vfs into a kernel mount. Two engines stand behind it:
 * `kernel` (./kernel/: fsx's own FUSE protocol server, Node and Deno) and `fuse-native` (./fuse-native.ts, the
 * only importer of fuse-native: libfuse 2, Node only), kept for machines where the kernel engine cannot run.
 */
import type { Vfs } from '../vfs/vfs.js'

/** Kernel-facing mount settings, in base units. */
export interface MountOptions {
  /** Shown as the device in /proc/mounts, e.g. "fsx:local:/srv/data" (secret-free). */
  fsname: string
  /** Shown as fuse.<subtype>. */
  subtype: string
  attrTtlMs: number
  entryTtlMs: number
  negativeTtlMs: number
  readaheadBytes: number
  maxReadBytes: number
  maxWriteBytes: number
  /** Page-cache policy across opens: none (drop on open), auto (keep while mtime/size unchanged), keep. */
  pageCache: 'none' | 'auto' | 'keep'
  allowOther: boolean
  defaultPermissions: boolean
  autoUnmount: boolean
  /** Report the backend's inode numbers (use_ino) instead of libfuse's own. */
  useIno: boolean
  /** Per-operation deadline in ms; past it the caller gets ETIMEDOUT. */
  opTimeoutMs: number
  debug?: boolean
  /** Kernel engine: pass local files through to the kernel (default true). */
  passthrough?: boolean
  /** Kernel engine: FUSE_WRITEBACK_CACHE (default false). */
  writebackCache?: boolean
  /** Where the engine says what it decided (passthrough off and why, …). */
  log?: (line: string) => void
}

/** A live mount. */
export interface MountedFs {
  readonly mountpoint: string
  /** The engine's own figures for `fsx stats` (name, protocol, features, passthrough opens…). */
  stats?: () => Record<string, unknown>
  /** Unmounts; rejects with EBUSY when files are still in use. */
  unmount (): Promise<void>
}

export interface FuseEngine {
  readonly name: string
  mount (mountpoint: string, vfs: Vfs, opts: MountOptions, hooks?: EngineHooks): Promise<MountedFs>
}

/** Observers the engine calls (stats, logging). */
export interface EngineHooks {
  /** Called after every operation with its name, duration and negative errno (0 on success). */
  onOp?: (op: string, ms: number, errno: number) => void
  /** Called for errors without an errno code (bugs): logged by the mount command. */
  onUnexpected?: (op: string, err: unknown) => void
}

/**
 * Loads an engine by name: `kernel`, `fuse-native`, or `auto` (the default): the kernel engine, else fuse-native
 * with one line through `log` saying why. A missing /dev/fuse is never worked around.
 */
export async function loadEngine (name = 'auto', log: (line: string) => void = () => {}): Promise<FuseEngine> {
  const { FsxError } = await import('../errors.js')
  if (name === 'fuse-native') {
    const mod = await import('./fuse-native.js')
    return await mod.createFuseNativeEngine()
  }
  if (name === 'kernel' || name === 'auto') {
    try {
      const mod = await import('./kernel/engine.js')
      return await mod.createKernelEngine()
    } catch (err) {
      if (name === 'kernel' || (err as { code?: string }).code === 'ENOFUSE') throw err
      log(`kernel engine unavailable (${(err as Error).message}); using fuse-native`)
      const mod = await import('./fuse-native.js')
      return await mod.createFuseNativeEngine()
    }
  }
  throw new FsxError('ECONFIG', `unknown FUSE engine "${name}"`, { hint: 'the engines are kernel, fuse-native and auto' })
}
