/**
 * The Backend contract: what a storage plugin (local, SFTP, S3, third-party) implements. Part of @fsx/sdk: the core
 * (src/backend/types.ts re-exports it) and every plugin read the same declarations, by package name.
 *
 * Invariants:
 * - Paths are POSIX, absolute within the backend ("/", "/a/b"), already normalised by the VFS: no "..", no "//",
 *   no trailing slash except the root. A backend must still refuse to reach outside its root.
 * - Names are bytes carried in strings (`kit.names`; the core's src/backend/names.ts): a byte that is not UTF-8 arrives as the lone
 *   surrogate U+DC00+byte. A backend with `capabilities.byteNames` stores such names as those exact bytes
 *   (`kit.names.toBytes`) and lists its names with `kit.names.fromBytes`; for any other backend the VFS refuses
 *   them (EILSEQ) before they arrive. Two different byte strings are never one name.
 * - Creating calls (open with create, mkdir, symlink, mknod, whole-object write of a new object) take the
 *   `Owner` the new node should get: the caller's uid and gid, as the kernel's own filesystems do. A backend
 *   that can record owners does (local as root: lchown, with the setgid-directory rule; S3: x-amz-meta-uid/gid);
 *   one that cannot documents what it records instead.
 * - Every method rejects with an error whose `code` is an errno name (ENOENT, EEXIST, EACCES, …). Backends translate
 *   their own errors at their edge (with `kit.fsxError`, the core's one error factory, handed to `create()`).
 * - `stat` never follows a symlink at the last component (lstat semantics).
 * - Everything beyond the required methods is optional and announced in `capabilities`; the VFS falls back
 *   (e.g. whole-object `write` through a local staging file when `open`/random writes are missing).
 *
 * This file is types only: plugins import it with `import type`, so nothing here exists at run time.
 */
import type { OptionSpec } from './options.js'
import type { PluginSys } from './sys.js'
import type { API_VERSION } from './version.js'

/** What kind of node a path names. */
export type NodeKind = 'file' | 'dir' | 'symlink' | 'other'

/** Attributes of one node. Times in milliseconds since the epoch. */
export interface Stat {
  kind: NodeKind
  /** Bytes. For a symlink, the length of its target. */
  size: number
  /** Full st_mode including the file-type bits (S_IFREG, S_IFDIR, …). */
  mode: number
  uid: number
  gid: number
  nlink: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  /** Backend-stable inode number where the backend has one (local, SFTP may not). */
  ino?: number
  /** Content version tag where the backend has one (S3 ETag); used to validate cached data. */
  etag?: string
  /** Number of 512-byte blocks, when known. */
  blocks?: number
  /** Device number of a character or block device node (the kernel's dev_t encoding). */
  rdev?: number
}

/** One directory entry; `stat` is filled when the listing call returns attributes for free (SFTP, S3, local). */
export interface DirEntry {
  name: string
  stat?: Stat
}

/** Filesystem totals for statfs(2). */
export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

/** Who a new node belongs to: the uid and gid of the process that created it (from the FUSE request). */
export interface Owner {
  uid: number
  gid: number
}

/** An open file on a backend that can read and write at offsets (local, SFTP). */
export interface BackendFileHandle {
  /**
   * A host file descriptor open on the same file with the same access mode, where there is one (local): a FUSE
   * engine may hand it to the kernel (passthrough) so reads and writes bypass fsx. Valid until close().
   */
  readonly fd?: number
  /** Reads up to `length` bytes at `offset`; fewer only at end of file. */
  read(offset: number, length: number): Promise<Buffer>
  /** Optional zero-copy read into `target[0..length)`; resolves with bytes read (fewer only at end of file). */
  readInto?(target: Buffer, length: number, position: number): Promise<number>
  /** Writes all of `data` at `offset`; resolves with the byte count written. */
  write(offset: number, data: Buffer): Promise<number>
  truncate(size: number): Promise<void>
  /** Makes written data durable on the backend. */
  sync(): Promise<void>
  /** Attributes of the open file itself (fstat), where the backend can: still answers once the name is gone. */
  stat?(): Promise<Stat>
  close(): Promise<void>
}

/** Open flags for `Backend.open`, already decoded from the O_* bits. */
export interface OpenFlags {
  read: boolean
  write: boolean
  create: boolean
  exclusive: boolean
  truncate: boolean
  append: boolean
}

/** Where the VFS keeps the whole new content of an object it is about to `write` (staging file or buffer). */
export type WriteSource = Buffer | { file: string; size: number }

/** Attributes the VFS wants a whole-object `write` to record (S3 user metadata, SFTP setstat). */
export interface WriteAttrs {
  mode?: number
  uid?: number
  gid?: number
  mtimeMs?: number
}

/** What a backend can do beyond the required methods. The VFS reads these, never `typeof backend.x`. */
export interface Capabilities {
  /** `open()` returns handles that read and write at offsets. Without it, writes go through whole-object `write`. */
  randomWrite: boolean
  symlinks: boolean
  hardlinks: boolean
  xattrs: boolean
  chmod: boolean
  chown: boolean
  utimens: boolean
  statfs: boolean
  /** rename replaces an existing target atomically (POSIX rename). */
  atomicRename: boolean
  /** Directories exist on their own (false for S3 without markers). */
  realDirectories: boolean
  /** Names are stored as bytes: names that are not valid UTF-8 are served (see names.ts). Default false. */
  byteNames?: boolean
  /** Open handles carry a host file descriptor (`BackendFileHandle.fd`) a FUSE engine can pass through. */
  hostFiles?: boolean
  /** `mknod` creates FIFOs, sockets and device nodes. Default false (the VFS answers EPERM). */
  specialFiles?: boolean
  /**
   * New nodes get the `Owner` they are created with, and uid/gid/mode are what decide access, so the kernel may
   * check permissions itself (default_permissions). False where every node belongs to one account whatever the
   * caller (a non-root SFTP login, a local mount run by a normal user): the backend decides access.
   */
  owners?: boolean
}

/** The backend interface. Required: stat, list, read, write, remove, mkdir, rmdir, rename, close. */
export interface Backend {
  /** Scheme-qualified, secret-free description, e.g. "local:/srv/data" or "sftp://user@host:22/dir". */
  readonly description: string
  readonly capabilities: Capabilities

  stat(path: string): Promise<Stat>
  list(path: string): Promise<DirEntry[]>
  /** Ranged read: up to `length` bytes at `offset`, fewer only at end of file. */
  read(path: string, offset: number, length: number): Promise<Buffer>
  /**
   * Whole-object write: replaces the content of `path` (creating it) with `source`. May resolve with the new
   * object's attributes when the backend knows them without another request (S3: from the upload's answer, ETag
   * included): the VFS then keeps the content it just wrote in its data cache, named by that version.
   */
  write(path: string, source: WriteSource, attrs?: WriteAttrs): Promise<Stat | void>
  /** unlink(2): removes a file or symlink, never a directory (EISDIR / EPERM). */
  remove(path: string): Promise<void>
  mkdir(path: string, mode: number, owner?: Owner): Promise<void>
  rmdir(path: string): Promise<void>
  /** rename(2), replacing an existing target when `capabilities.atomicRename`. */
  rename(from: string, to: string): Promise<void>
  /** Releases connections and other resources. */
  close(): Promise<void>

  // Optional, announced in capabilities.
  /** `owner` applies when the call creates the file. */
  open?(path: string, flags: OpenFlags, mode: number, owner?: Owner): Promise<BackendFileHandle>
  truncate?(path: string, size: number): Promise<void>
  symlink?(target: string, path: string, owner?: Owner): Promise<void>
  /** mknod(2): FIFOs, sockets, character and block devices (`mode` holds the type bits; `rdev` the device). */
  mknod?(path: string, mode: number, rdev: number, owner?: Owner): Promise<void>
  readlink?(path: string): Promise<string>
  link?(existing: string, path: string): Promise<void>
  chmod?(path: string, mode: number): Promise<void>
  chown?(path: string, uid: number, gid: number): Promise<void>
  /** Sets times in ms; `undefined` leaves that time unchanged (UTIME_OMIT). */
  utimens?(path: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void>
  statfs?(path: string): Promise<StatFs>
  getxattr?(path: string, name: string): Promise<Buffer>
  /** flags: 0, XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setxattr?(path: string, name: string, value: Buffer, flags: number): Promise<void>
  listxattr?(path: string): Promise<string[]>
  removexattr?(path: string, name: string): Promise<void>
  /**
   * One cheap request that proves the backend answers (S3: a 1-key listing; SFTP: stat of the root), bounded by the
   * backend's own request deadline. Remote backends implement it: while one is failing, the VFS sends it nothing
   * but this probe, answering from its caches or failing at once (the core's src/vfs/health.ts). Rejects as any call does.
   */
  ping?(): Promise<void>
  /**
   * Another client changed `path` (with `tree`, anything below it): forget what the backend itself remembers of it
   * (listing attributes, HEAD results, read-ahead), so the next call asks the server. Called when another mount of
   * the same source says so (coherence); backends that keep no memory of their own leave it out.
   */
  invalidate?(path: string, tree: boolean): void
  /**
   * Sends whatever the backend accepted and has not sent yet (S3: unlinks queued for a DeleteObjects batch) and
   * resolves once it has been answered. Called by `fsx flush` after the write-back journal is drained, so that flush
   * means "the server has everything". Backends that send every call at once leave it out.
   */
  flush?(): Promise<void>
  /** Where the backend may write lines to the mount's log (progress of long operations). Called once, at mount. */
  setLog?(log: (line: string) => void): void
  /**
   * Counts this backend keeps that only grow (requests, bytes, retries…), read by `fsx stats` and exported to
   * Prometheus as counters (`fsx_backend_<name>_total`). The set of names is fixed once the backend is created.
   */
  counters?(): Record<string, number>
  /** Levels that go up and down (connections open now, files open…): shown beside the counters, exported as gauges. */
  levels?(): Record<string, number>
  /** Lines the mount prints once when it starts: what this backend cannot do as the user may expect. */
  notices?(): string[]
}

/** A parsed source location handed to a backend definition. */
export interface SourceUrl {
  /** The scheme without colon: "local", "sftp", "s3", or a plugin's own. */
  scheme: string
  /** The original text as the user typed it (may hold secrets: never print it, use `Backend.description`). */
  raw: string
  /** WHATWG URL where the source is URL-shaped; for local paths, a file: URL of the absolute path. */
  url: URL
}

/** Helpers the core hands to plugins so they need no run-time import of the core. */
export interface BackendKit {
  /** Builds an error carrying an errno `code`, like Node's own. */
  fsxError(code: string, message: string, extra?: { path?: string; op?: string; cause?: unknown }): Error
  /** File names as bytes (see "Names" at the top of this file). */
  names: {
    toBytes(s: string): Buffer
    fromBytes(b: Uint8Array): string
    hasEscapes(s: string): boolean
  }
  /** System calls through FFI (src/sys), or undefined where they cannot load; `sysUnavailable` then says why. */
  sys?: PluginSys
  sysUnavailable?: string
}

/** What a plugin registers: a plain definition object (ZenFS style). */
export interface BackendDefinition<Options = Record<string, unknown>> {
  /**
   * The plugin API this definition was written for: `API_VERSION` of the @fsx/sdk it was built against, written
   * as a literal (`apiVersion: 1`) so that building against an SDK of another API fails to type-check. The core
   * refuses a definition of another version with one line, before anything of it runs.
   */
  apiVersion: typeof API_VERSION
  /** Short name, e.g. "local". */
  name: string
  /** URL schemes it serves, e.g. ["local", "file"]; "local" also serves bare paths. */
  schemes: string[]
  /** One line shown in help. */
  summary: string
  /** Plugin settings (FSX_<NAME>_* env, flags, tune). Same shape as the core's options table rows. */
  options?: OptionSpec[]
  /** Throws a readable error (code EINVAL) for a source it cannot serve. Must not touch the network. */
  validate?(source: SourceUrl, options: Options): void
  /** Creates the backend; heavy SDKs are imported here, not at module load. */
  create(source: SourceUrl, options: Options, kit: BackendKit): Promise<Backend>
}

/** The payload of the `fsx:backends` hook: plugins call `register` once per definition. */
export interface BackendHookOptions {
  register(def: BackendDefinition<any>): void
}
