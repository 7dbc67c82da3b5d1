/**
 * The system calls fsx needs and neither Node nor Deno exposes (openat2, mknodat, ioctl, mount, poll…), behind
 * one interface with one implementation per runtime: ./node.ts (koffi) and ./deno.ts (Deno.dlopen). Nothing
 * else in fsx touches FFI.
 *
 * Invariants:
 * - Every call is synchronous and made on the calling thread, so errno is read right after it on the same
 *   thread. Callers keep them to calls that cannot block for long (path walks on local disks, ioctls, a poll in a
 *   worker thread) — never one that could wait on this process's own FUSE mount.
 * - Failures throw a `SysError` whose `code` is the errno name (ENOENT, ELOOP, EXDEV…), like Node's own errors.
 * - Paths and names are bytes (`Uint8Array`, no NUL inside); the implementations add the terminating NUL.
 */

/** An errno from a system call, shaped like Node's system errors. */
export interface SysError extends Error {
  code: string
  errno: number
  syscall: string
}

/** Linux openat2(2) `resolve` flags. */
export const RESOLVE_NO_XDEV = 0x01
export const RESOLVE_NO_MAGICLINKS = 0x02
export const RESOLVE_NO_SYMLINKS = 0x04
export const RESOLVE_BENEATH = 0x08

/** Linux open(2) flags Node does not export (x86-64 and arm64 share these values). */
export const O_PATH = 0o10000000
export const O_DIRECTORY = 0o200000
export const O_NOFOLLOW = 0o400000
export const O_CLOEXEC = 0o2000000
export const O_NONBLOCK = 0o4000
export const O_RDWR = 2

/** poll(2) events. */
export const POLLIN = 0x001
export const POLLERR = 0x008
export const POLLHUP = 0x010
export const POLLNVAL = 0x020

export interface Sys {
  readonly runtime: 'node' | 'deno'
  /** openat2(2): opens `path` below `dirfd` with `resolve` rules; returns the new descriptor. */
  openat2 (dirfd: number, path: Uint8Array, flags: number, mode: number, resolve: number): number
  /** mknodat(2). `dev` is the kernel's encoded dev_t (makedev). */
  mknodat (dirfd: number, name: Uint8Array, mode: number, dev: number): void
  /** open(2) of an absolute path. */
  open (path: Uint8Array, flags: number, mode: number): number
  close (fd: number): void
  /** read(2) into `buf`; returns the byte count. */
  read (fd: number, buf: Uint8Array): number
  /** write(2) of all of `buf` in one call; returns the byte count. */
  write (fd: number, buf: Uint8Array): number
  /** ioctl(2) with a pointer argument; returns the call's result. */
  ioctl (fd: number, request: number, arg: Uint8Array): number
  /** mount(2). */
  mount (source: string, target: string, fstype: string, flags: number, data: string): void
  /** umount2(2). */
  umount2 (target: string, flags: number): void
  /** poll(2) on one descriptor; returns revents (0 on timeout). `timeoutMs` -1 waits forever. */
  poll (fd: number, events: number, timeoutMs: number): number
  /**
   * Receives one descriptor passed with SCM_RIGHTS on a unix socket (fusermount3's way of handing over
   * /dev/fuse); returns it, or -1 when the peer closed without sending one.
   */
  recvFd (sock: number): number
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected descriptors, not inherited by children. */
  socketpair (): [number, number]
}
