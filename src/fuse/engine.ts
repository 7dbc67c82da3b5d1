/**
 * The FUSE engine adapter interface. An engine turns a Vfs into a kernel mount. fuse-native is the one engine today
 * (./fuse-native.ts, the only importer of fuse-native); another (a FUSE 3 binding, a Deno FFI engine) can stand
 * beside it by implementing `FuseEngine` and being added to `loadEngine`.
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
}

/** A live mount. */
export interface MountedFs {
  readonly mountpoint: string
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

/** Loads an engine by name; fuse-native is the default. */
export async function loadEngine (name = 'fuse-native'): Promise<FuseEngine> {
  if (name === 'fuse-native') {
    const mod = await import('./fuse-native.js')
    return await mod.createFuseNativeEngine()
  }
  const { FsxError } = await import('../errors.js')
  throw new FsxError('ECONFIG', `unknown FUSE engine "${name}"`, { hint: 'the available engine is fuse-native' })
}
