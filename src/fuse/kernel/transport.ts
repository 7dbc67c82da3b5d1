/**
 * The transport: the only code of the kernel engine that touches /dev/fuse, FFI or threads. One implementation
 * per runtime (./transport-node.ts, ./transport-deno.ts); everything above it (codec, node table, session) is
 * shared.
 *
 * Invariants every implementation keeps:
 * - Requests are read by a worker thread blocked in read(2), never by the JS thread, so a slow backend never
 *   stops the kernel's queue from being drained, and each request reaches `onRequest` as its own Buffer.
 * - `reply` writes synchronously from the JS thread: a reply to /dev/fuse completes a request and never waits.
 * - `notify` writes from another thread: a notification may wait for inode locks that a request in flight holds,
 *   and that request needs the JS thread to finish.
 * - `onEnd` is called once, when the connection ends (unmount, abort) or reading fails for good.
 */
import { FsxError } from '../../errors.js'

/** Kernel mount options, as the transport passes them to mount(2) or fusermount3. */
export interface KernelMountOptions {
  /** Device column of /proc/mounts (no secrets). */
  fsname: string
  /** Type shows as fuse.<subtype>. */
  subtype: string
  allowOther: boolean
  defaultPermissions: boolean
  /** Largest READ the kernel sends (bytes). */
  maxRead: number
  /** Unmount when this process dies: fusermount3's auto_unmount (which then mounts, even for root). */
  autoUnmount?: boolean
}

export interface Transport {
  /** What this transport is, for the log ("node", "deno"). */
  readonly name: string
  /** Opens /dev/fuse and mounts it at `mountpoint` (mount(2) as root, fusermount3 otherwise). */
  mount (mountpoint: string, opts: KernelMountOptions): Promise<void>
  /** Starts the reader: every request read goes to `onRequest`; `onEnd` once the connection is gone. */
  start (bufferBytes: number, onRequest: (req: Buffer) => void, onEnd: (err?: Error) => void): void
  /** Writes one reply; an error means the request is gone (interrupted or the connection ended), not a bug. */
  reply (data: Buffer): void
  /** Writes a notification off the JS thread; resolves with the errno name it failed with, if any. */
  notify (data: Buffer): Promise<string | undefined>
  /** FUSE_DEV_IOC_BACKING_OPEN: registers `fd` for passthrough; returns the backing id. Throws its errno. */
  backingOpen (fd: number): number
  /** FUSE_DEV_IOC_BACKING_CLOSE. */
  backingClose (id: number): void
  /** Closes /dev/fuse (after the unmount) and stops the reader. */
  close (): void
}

/** The option string for mount(2) (`withFd`: fd, rootmode, user_id, group_id, which fusermount3 adds itself). */
export function mountData (opts: KernelMountOptions, fd?: number, uid = 0, gid = 0): string {
  const parts: string[] = []
  if (fd !== undefined) parts.push(`fd=${fd}`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`)
  if (opts.allowOther) parts.push('allow_other')
  if (opts.defaultPermissions) parts.push('default_permissions')
  parts.push(`max_read=${opts.maxRead}`)
  return parts.join(',')
}

/** MS_NOSUID | MS_NODEV, as fusermount mounts. */
export const MOUNT_FLAGS = 0x2 | 0x4

/** One readable line for a failed mount(2). */
export function mountError (err: unknown, mountpoint: string): FsxError {
  const code = (err as { code?: string }).code ?? 'EIO'
  if (code === 'EBUSY') return new FsxError('EMOUNTED', `${mountpoint} is already a mountpoint`, { hint: `unmount it first: fsx unmount ${mountpoint}` })
  if (code === 'EPERM') return new FsxError('ENOFUSE', `mount(2) of ${mountpoint} was refused (EPERM)`, { hint: 'run as root, or in a container with --cap-add SYS_ADMIN' })
  if (code === 'ENODEV') return new FsxError('ENOFUSE', 'the kernel has no FUSE filesystem type', { hint: 'load the fuse module: modprobe fuse' })
  return new FsxError('EIO', `mount of ${mountpoint} failed: ${code}`, { cause: err })
}

/** Loads the transport for the running runtime. */
export async function loadTransport (): Promise<Transport> {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') return (await import('./transport-deno.js')).createDenoTransport()
  return (await import('./transport-node.js')).createNodeTransport()
}
