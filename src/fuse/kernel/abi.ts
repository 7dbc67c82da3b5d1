/**
 * The FUSE kernel ABI, written from the kernel's include/uapi/linux/fuse.h (protocol 7.45, as libfuse ships it):
 * opcodes with their names and the size of their fixed input struct, INIT and OPEN flags, and struct sizes.
 * Everything is little-endian on the machines fsx runs on (x86-64, arm64); the codec (./codec.ts) reads and writes
 * these layouts byte for byte.
 *
 * Invariant: a size here is the size of the C struct with its padding; a struct the kernel may send shorter for
 * older protocol minors has its compat size beside it.
 */

export const FUSE_KERNEL_VERSION = 7
/** The newest minor this engine speaks; the kernel may offer more or less (we use min(kernel, ours)). */
export const FUSE_KERNEL_MINOR_VERSION = 45
export const FUSE_ROOT_ID = 1

/** struct fuse_in_header: len, opcode, unique, nodeid, uid, gid, pid, total_extlen, padding. */
export const IN_HEADER_SIZE = 40
/** struct fuse_out_header: len, error, unique. */
export const OUT_HEADER_SIZE = 16
/** struct fuse_attr. */
export const ATTR_SIZE = 88
/** struct fuse_entry_out: nodeid, generation, entry_valid, attr_valid, *_nsec, attr. */
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE
/** struct fuse_attr_out: attr_valid, attr_valid_nsec, dummy, attr. */
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE
export const OPEN_OUT_SIZE = 16
export const WRITE_OUT_SIZE = 8
export const STATFS_OUT_SIZE = 80
export const GETXATTR_OUT_SIZE = 8
export const INIT_OUT_SIZE = 64
export const LSEEK_OUT_SIZE = 8
/** struct fuse_dirent without its name: ino, off, namelen, type. */
export const DIRENT_HEADER_SIZE = 24
/** The buffer a read of /dev/fuse needs beyond max_write (libfuse's FUSE_BUFFER_HEADER_SIZE). */
export const BUFFER_HEADER_SIZE = 0x1000
/** FUSE_MIN_READ_BUFFER: the kernel refuses reads into a smaller buffer. */
export const MIN_READ_BUFFER = 8192

/** Opcodes fsx handles, with the size of the fixed struct that follows the header (0: none or names only). */
export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53
} as const

/** Opcode number → name (for stats, logs and `fsx tune --explain`). */
export const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]))

/** Fixed input struct size per opcode, where it has one (the codec checks requests are at least this long). */
export const IN_SIZE: Partial<Record<number, number>> = {
  [Op.FORGET]: 8,
  [Op.GETATTR]: 16,
  [Op.SETATTR]: 88,
  [Op.MKNOD]: 16,
  [Op.MKDIR]: 8,
  [Op.RENAME]: 8,
  [Op.LINK]: 8,
  [Op.OPEN]: 8,
  [Op.READ]: 40,
  [Op.WRITE]: 40,
  [Op.RELEASE]: 24,
  [Op.FSYNC]: 16,
  [Op.SETXATTR]: 16,
  [Op.GETXATTR]: 8,
  [Op.LISTXATTR]: 8,
  [Op.FLUSH]: 24,
  [Op.INIT]: 16,
  [Op.OPENDIR]: 8,
  [Op.READDIR]: 40,
  [Op.RELEASEDIR]: 24,
  [Op.FSYNCDIR]: 16,
  [Op.ACCESS]: 8,
  [Op.CREATE]: 16,
  [Op.INTERRUPT]: 8,
  [Op.BATCH_FORGET]: 8,
  [Op.FALLOCATE]: 32,
  [Op.READDIRPLUS]: 40,
  [Op.RENAME2]: 16,
  [Op.LSEEK]: 24
}

/** INIT flags (fuse_init_in/out.flags; bits 32..63 travel in flags2). */
export const Init = {
  ASYNC_READ: 1n << 0n,
  POSIX_LOCKS: 1n << 1n,
  ATOMIC_O_TRUNC: 1n << 3n,
  EXPORT_SUPPORT: 1n << 4n,
  BIG_WRITES: 1n << 5n,
  DONT_MASK: 1n << 6n,
  SPLICE_WRITE: 1n << 7n,
  SPLICE_MOVE: 1n << 8n,
  SPLICE_READ: 1n << 9n,
  FLOCK_LOCKS: 1n << 10n,
  HAS_IOCTL_DIR: 1n << 11n,
  AUTO_INVAL_DATA: 1n << 12n,
  DO_READDIRPLUS: 1n << 13n,
  READDIRPLUS_AUTO: 1n << 14n,
  ASYNC_DIO: 1n << 15n,
  WRITEBACK_CACHE: 1n << 16n,
  NO_OPEN_SUPPORT: 1n << 17n,
  PARALLEL_DIROPS: 1n << 18n,
  HANDLE_KILLPRIV: 1n << 19n,
  POSIX_ACL: 1n << 20n,
  ABORT_ERROR: 1n << 21n,
  MAX_PAGES: 1n << 22n,
  CACHE_SYMLINKS: 1n << 23n,
  NO_OPENDIR_SUPPORT: 1n << 24n,
  EXPLICIT_INVAL_DATA: 1n << 25n,
  MAP_ALIGNMENT: 1n << 26n,
  SUBMOUNTS: 1n << 27n,
  HANDLE_KILLPRIV_V2: 1n << 28n,
  SETXATTR_EXT: 1n << 29n,
  INIT_EXT: 1n << 30n,
  INIT_RESERVED: 1n << 31n,
  SECURITY_CTX: 1n << 32n,
  HAS_INODE_DAX: 1n << 33n,
  CREATE_SUPP_GROUP: 1n << 34n,
  HAS_EXPIRE_ONLY: 1n << 35n,
  DIRECT_IO_ALLOW_MMAP: 1n << 36n,
  PASSTHROUGH: 1n << 37n,
  NO_EXPORT_SUPPORT: 1n << 38n,
  HAS_RESEND: 1n << 39n,
  ALLOW_IDMAP: 1n << 40n,
  OVER_IO_URING: 1n << 41n,
  REQUEST_TIMEOUT: 1n << 42n
} as const

/** OPEN/CREATE/OPENDIR reply flags. */
export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7
} as const

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11
} as const

/** fuse_getattr_in.getattr_flags: `fh` is valid. */
export const GETATTR_FH = 1
/** fuse_fsync_in.fsync_flags: data only. */
export const FSYNC_FDATASYNC = 1
/** fuse_write_in.write_flags. */
export const WRITE_CACHE = 1
export const WRITE_KILL_SUIDGID = 4
/** fuse_release_in.release_flags: also a flush. */
export const RELEASE_FLUSH = 1
/** fuse_open_in.open_flags: kill suid/sgid (HANDLE_KILLPRIV_V2 with O_TRUNC). */
export const OPEN_KILL_SUIDGID = 1
/** Unique ids with this bit are resends (HAS_RESEND). */
export const UNIQUE_RESEND = 1n << 63n

/** Notification codes (written with unique 0, the code in the error field). */
export const Notify = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7
} as const

/** renameat2 flags. */
export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2
export const RENAME_WHITEOUT = 4

/** /dev/fuse ioctls: _IOR/_IOW(229, n, size) on Linux's generic layout. */
const ioc = (dir: number, nr: number, size: number): number => ((dir << 30) | (size << 16) | (229 << 8) | nr) >>> 0
export const FUSE_DEV_IOC_CLONE = ioc(2, 0, 4)
/** Registers a backing file for passthrough; argument struct fuse_backing_map { int32 fd; uint32 flags; uint64 padding }. */
export const FUSE_DEV_IOC_BACKING_OPEN = ioc(1, 1, 16)
export const FUSE_DEV_IOC_BACKING_CLOSE = ioc(1, 2, 4)

/** DT_* values for dirents, from st_mode's type bits (mode >> 12). */
export function direntType (mode: number): number {
  return (mode >> 12) & 0xF
}
