/**
 * The system calls a plugin may use through `kit.sys` (the part of the core's src/sys interface that is plugin
 * API; the rest serves the FUSE engine and may change without an API version bump).
 *
 * Invariants (the core's): every call is synchronous and made on the calling thread, so errno is read right
 * after it; failures throw an error whose `code` is the errno name (ENOENT, ELOOP, EXDEV…); paths and names are
 * bytes (`Uint8Array`, no NUL inside). Keep to calls that cannot block for long: never one that could wait on
 * this process's own FUSE mount.
 *
 * Types only: nothing here exists at run time.
 */
export interface PluginSys {
  readonly runtime: 'node' | 'deno'
  /** openat2(2): opens `path` below `dirfd` with `resolve` rules (RESOLVE_BENEATH…); returns the new descriptor. */
  openat2 (dirfd: number, path: Uint8Array, flags: number, mode: number, resolve: number): number
  /** mknodat(2). `dev` is the kernel's encoded dev_t (makedev). */
  mknodat (dirfd: number, name: Uint8Array, mode: number, dev: number): void
  /** open(2) of an absolute path. */
  open (path: Uint8Array, flags: number, mode: number): number
  close (fd: number): void
}
