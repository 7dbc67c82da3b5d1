/**
 * The FUSE wire format: requests decoded from the bytes read off /dev/fuse, replies and notifications encoded to
 * the bytes written back. Layouts are in ./abi.ts; everything is little-endian.
 *
 * Invariants:
 * - Decoding never trusts a length the kernel did not give: a request shorter than its opcode's fixed struct, or
 *   a name without its NUL, is a `ProtocolError` (the session answers EIO), never an out-of-bounds read.
 * - A reply's first 16 bytes are the out header (len, error, unique); `unique` is copied from the request's
 *   header bytes, so 64-bit ids (and the resend bit) pass through untouched.
 * - Names are decoded to fsx's byte-exact strings (../../backend/names.ts) and encoded back the same way.
 * - Nothing here does I/O or keeps state: the session (./session.ts) owns both.
 */
import { fromBytes, toBytes } from '../../backend/names.js'
import type { Stat, StatFs } from '../../backend/types.js'
import {
  ATTR_OUT_SIZE, ATTR_SIZE, DIRENT_HEADER_SIZE, ENTRY_OUT_SIZE, IN_HEADER_SIZE, IN_SIZE, INIT_OUT_SIZE, OUT_HEADER_SIZE, Op,
  direntType
} from './abi.js'

export class ProtocolError extends Error {}

/** The fixed header of every request. */
export interface Header {
  len: number
  opcode: number
  /** The request id (bit 63: a resend). */
  unique: bigint
  nodeid: number
  uid: number
  gid: number
  pid: number
}

/** A request: its header, the raw bytes and where its arguments start. */
export interface Request extends Header {
  buf: Buffer
  /** Offset of the opcode's arguments (just past the header). */
  arg: number
}

/** Decodes the header and checks the request is as long as it says and as its opcode's struct. */
export function decodeRequest (buf: Buffer): Request {
  if (buf.length < IN_HEADER_SIZE) throw new ProtocolError(`request of ${buf.length} bytes is shorter than its header`)
  const len = buf.readUInt32LE(0)
  if (len > buf.length || len < IN_HEADER_SIZE) throw new ProtocolError(`request says ${len} bytes, ${buf.length} arrived`)
  const opcode = buf.readUInt32LE(4)
  const min = IN_SIZE[opcode]
  if (min !== undefined && len < IN_HEADER_SIZE + min && !(opcode === Op.INIT && len >= IN_HEADER_SIZE + 16)) {
    throw new ProtocolError(`opcode ${opcode}: ${len - IN_HEADER_SIZE} argument bytes, at least ${min} expected`)
  }
  return {
    buf: len === buf.length ? buf : buf.subarray(0, len),
    arg: IN_HEADER_SIZE,
    len,
    opcode,
    unique: buf.readBigUInt64LE(8),
    nodeid: u64(buf, 16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32)
  }
}

/** A u64 as a number (node ids, offsets and sizes stay far below 2^53). */
export function u64 (buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 4294967296
}

/** The NUL-terminated name at `off` and the offset just past its NUL. */
export function cname (req: Request, off: number): { name: string, next: number } {
  const end = req.buf.indexOf(0, off)
  if (end < 0 || end >= req.len) throw new ProtocolError('name without its NUL')
  return { name: fromBytes(req.buf.subarray(off, end)), next: end + 1 }
}

// ---- per-opcode arguments ---------------------------------------------------------------------------------------

export interface InitIn { major: number, minor: number, maxReadahead: number, flags: bigint }
export function initIn (r: Request): InitIn {
  const b = r.buf
  const o = r.arg
  const flags = BigInt(b.readUInt32LE(o + 12))
  // flags2 exists from 7.36 (FUSE_INIT_EXT); older kernels send a 16-byte struct.
  const flags2 = r.len >= IN_HEADER_SIZE + 20 ? BigInt(b.readUInt32LE(o + 16)) : 0n
  return { major: b.readUInt32LE(o), minor: b.readUInt32LE(o + 4), maxReadahead: b.readUInt32LE(o + 8), flags: flags | (flags2 << 32n) }
}

export interface SetattrIn {
  valid: number, fh: number, size: number
  atime: number, mtime: number, atimensec: number, mtimensec: number
  mode: number, uid: number, gid: number
}
export function setattrIn (r: Request): SetattrIn {
  const b = r.buf
  const o = r.arg
  return {
    valid: b.readUInt32LE(o),
    fh: u64(b, o + 8),
    size: u64(b, o + 16),
    atime: Number(b.readBigInt64LE(o + 32)),
    mtime: Number(b.readBigInt64LE(o + 40)),
    atimensec: b.readUInt32LE(o + 56),
    mtimensec: b.readUInt32LE(o + 60),
    mode: b.readUInt32LE(o + 68),
    uid: b.readUInt32LE(o + 76),
    gid: b.readUInt32LE(o + 80)
  }
}

export interface ReadIn { fh: number, offset: number, size: number, flags: number }
/** fuse_read_in (READ, READDIR, READDIRPLUS). */
export function readIn (r: Request): ReadIn {
  const b = r.buf
  const o = r.arg
  return { fh: u64(b, o), offset: u64(b, o + 8), size: b.readUInt32LE(o + 16), flags: b.readUInt32LE(o + 32) }
}

export interface WriteIn { fh: number, offset: number, size: number, writeFlags: number, data: Buffer }
export function writeIn (r: Request): WriteIn {
  const b = r.buf
  const o = r.arg
  const size = b.readUInt32LE(o + 16)
  const start = o + 40
  if (start + size > r.len) throw new ProtocolError(`write of ${size} bytes carries ${r.len - start}`)
  return { fh: u64(b, o), offset: u64(b, o + 8), size, writeFlags: b.readUInt32LE(o + 20), data: b.subarray(start, start + size) }
}

/** fuse_open_in (OPEN, OPENDIR): flags, open_flags. */
export function openIn (r: Request): { flags: number, openFlags: number } {
  return { flags: r.buf.readUInt32LE(r.arg), openFlags: r.buf.readUInt32LE(r.arg + 4) }
}

export function createIn (r: Request): { flags: number, mode: number, umask: number, name: string } {
  const b = r.buf
  const o = r.arg
  return { flags: b.readUInt32LE(o), mode: b.readUInt32LE(o + 4), umask: b.readUInt32LE(o + 8), name: cname(r, o + 16).name }
}

export function mknodIn (r: Request): { mode: number, rdev: number, umask: number, name: string } {
  const b = r.buf
  const o = r.arg
  return { mode: b.readUInt32LE(o), rdev: b.readUInt32LE(o + 4), umask: b.readUInt32LE(o + 8), name: cname(r, o + 16).name }
}

export function mkdirIn (r: Request): { mode: number, umask: number, name: string } {
  const b = r.buf
  const o = r.arg
  return { mode: b.readUInt32LE(o), umask: b.readUInt32LE(o + 4), name: cname(r, o + 8).name }
}

/** SYMLINK: the link's name, then its target. */
export function symlinkIn (r: Request): { name: string, target: string } {
  const a = cname(r, r.arg)
  return { name: a.name, target: cname(r, a.next).name }
}

export function renameIn (r: Request): { newdir: number, flags: number, from: string, to: string } {
  const two = r.opcode === Op.RENAME2
  const newdir = u64(r.buf, r.arg)
  const flags = two ? r.buf.readUInt32LE(r.arg + 8) : 0
  const a = cname(r, r.arg + (two ? 16 : 8))
  return { newdir, flags, from: a.name, to: cname(r, a.next).name }
}

export function linkIn (r: Request): { oldnodeid: number, name: string } {
  return { oldnodeid: u64(r.buf, r.arg), name: cname(r, r.arg + 8).name }
}

/** RELEASE, RELEASEDIR, FLUSH: fh first; release_flags / lock_owner after. */
export function releaseIn (r: Request): { fh: number, flags: number, releaseFlags: number } {
  return { fh: u64(r.buf, r.arg), flags: r.buf.readUInt32LE(r.arg + 8), releaseFlags: r.buf.readUInt32LE(r.arg + 12) }
}

export function fsyncIn (r: Request): { fh: number, fsyncFlags: number } {
  return { fh: u64(r.buf, r.arg), fsyncFlags: r.buf.readUInt32LE(r.arg + 8) }
}

export function getattrIn (r: Request): { flags: number, fh: number } {
  return { flags: r.buf.readUInt32LE(r.arg), fh: u64(r.buf, r.arg + 8) }
}

/** SETXATTR: size, flags (and, with SETXATTR_EXT, setxattr_flags + padding), then the name, then the value. */
export function setxattrIn (r: Request, ext: boolean): { flags: number, name: string, value: Buffer } {
  const size = r.buf.readUInt32LE(r.arg)
  const flags = r.buf.readUInt32LE(r.arg + 4)
  const a = cname(r, r.arg + (ext ? 16 : 8))
  if (a.next + size > r.len) throw new ProtocolError('setxattr value past the request')
  return { flags, name: a.name, value: r.buf.subarray(a.next, a.next + size) }
}

/** GETXATTR (size, padding, name) and LISTXATTR (size, padding). */
export function getxattrIn (r: Request, withName: boolean): { size: number, name: string } {
  return { size: r.buf.readUInt32LE(r.arg), name: withName ? cname(r, r.arg + 8).name : '' }
}

export function accessIn (r: Request): { mask: number } {
  return { mask: r.buf.readUInt32LE(r.arg) }
}

export function interruptIn (r: Request): { unique: bigint } {
  return { unique: r.buf.readBigUInt64LE(r.arg) }
}

export function forgetIn (r: Request): { nlookup: number } {
  return { nlookup: u64(r.buf, r.arg) }
}

/** BATCH_FORGET: count, dummy, then count × (nodeid, nlookup). */
export function batchForgetIn (r: Request): Array<{ nodeid: number, nlookup: number }> {
  const count = r.buf.readUInt32LE(r.arg)
  const out: Array<{ nodeid: number, nlookup: number }> = []
  for (let i = 0, o = r.arg + 8; i < count && o + 16 <= r.len; i++, o += 16) out.push({ nodeid: u64(r.buf, o), nlookup: u64(r.buf, o + 8) })
  return out
}

export function fallocateIn (r: Request): { fh: number, offset: number, length: number, mode: number } {
  const b = r.buf
  const o = r.arg
  return { fh: u64(b, o), offset: u64(b, o + 8), length: u64(b, o + 16), mode: b.readUInt32LE(o + 24) }
}

export function lseekIn (r: Request): { fh: number, offset: number, whence: number } {
  return { fh: u64(r.buf, r.arg), offset: u64(r.buf, r.arg + 8), whence: r.buf.readUInt32LE(r.arg + 16) }
}

// ---- replies ----------------------------------------------------------------------------------------------------

/** A reply of `payload` bytes after the header, its header filled in (error 0). */
export function reply (req: Request, payload: number): Buffer {
  const out = Buffer.allocUnsafe(OUT_HEADER_SIZE + payload)
  header(out, req, 0)
  return out
}

/** Writes the out header for `req` into `out[0..16)`: length `out.length`, error `errno` (negative or 0). */
export function header (out: Buffer, req: Request, errno: number, len = out.length): void {
  out.writeUInt32LE(len, 0)
  out.writeInt32LE(errno, 4)
  req.buf.copy(out, 8, 8, 16)
}

/** An error reply: the header alone, error = -errno. */
export function errorReply (req: Request, errno: number): Buffer {
  const out = Buffer.allocUnsafe(OUT_HEADER_SIZE)
  header(out, req, -Math.abs(errno))
  return out
}

/** Seconds and nanoseconds of a time in ms (floor, so times before 1970 stay ordered). */
function splitMs (ms: number): [number, number] {
  const sec = Math.floor(ms / 1000)
  const nsec = Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6)))
  return [sec, nsec]
}

function writeI64 (out: Buffer, v: number, off: number): void {
  out.writeBigInt64LE(BigInt(Math.trunc(v)), off)
}

function writeU64 (out: Buffer, v: number, off: number): void {
  out.writeUInt32LE(v % 4294967296 >>> 0, off)
  out.writeUInt32LE(Math.floor(v / 4294967296) >>> 0, off + 4)
}

/** struct fuse_attr at `off`; `ino` is what stat(2) shows (the backend's when it has one). */
export function writeAttr (out: Buffer, off: number, st: Stat, ino: number): void {
  const [as, an] = splitMs(st.atimeMs)
  const [ms, mn] = splitMs(st.mtimeMs)
  const [cs, cn] = splitMs(st.ctimeMs)
  writeU64(out, ino, off)
  writeU64(out, st.size, off + 8)
  writeU64(out, st.blocks ?? Math.ceil(st.size / 512), off + 16)
  writeI64(out, as, off + 24)
  writeI64(out, ms, off + 32)
  writeI64(out, cs, off + 40)
  out.writeUInt32LE(an, off + 48)
  out.writeUInt32LE(mn, off + 52)
  out.writeUInt32LE(cn, off + 56)
  out.writeUInt32LE(st.mode >>> 0, off + 60)
  out.writeUInt32LE(st.nlink >>> 0, off + 64)
  out.writeUInt32LE(st.uid >>> 0, off + 68)
  out.writeUInt32LE(st.gid >>> 0, off + 72)
  out.writeUInt32LE((st.rdev ?? 0) >>> 0, off + 76)
  out.writeUInt32LE(4096, off + 80)
  out.writeUInt32LE(0, off + 84)
}

/** Timeout in ms as (seconds u64, nanoseconds u32). */
function writeValid (out: Buffer, secOff: number, nsecOff: number, ms: number): void {
  const t = Math.max(0, ms)
  writeU64(out, Math.floor(t / 1000), secOff)
  out.writeUInt32LE(Math.round((t % 1000) * 1e6), nsecOff)
}

/** struct fuse_entry_out at `off`. nodeid 0 with a timeout is a cached negative entry. */
export function writeEntry (out: Buffer, off: number, nodeid: number, st: Stat | undefined, ino: number, entryMs: number, attrMs: number): void {
  writeU64(out, nodeid, off)
  writeU64(out, 0, off + 8) // generation: node ids are never reused
  writeValid(out, off + 16, off + 32, entryMs)
  writeValid(out, off + 24, off + 36, attrMs)
  if (st === undefined) out.fill(0, off + 40, off + ENTRY_OUT_SIZE)
  else writeAttr(out, off + 40, st, ino)
}

export function entryReply (req: Request, nodeid: number, st: Stat | undefined, ino: number, entryMs: number, attrMs: number): Buffer {
  const out = reply(req, ENTRY_OUT_SIZE)
  writeEntry(out, OUT_HEADER_SIZE, nodeid, st, ino, entryMs, attrMs)
  return out
}

export function attrReply (req: Request, st: Stat, ino: number, attrMs: number): Buffer {
  const out = reply(req, ATTR_OUT_SIZE)
  writeValid(out, OUT_HEADER_SIZE, OUT_HEADER_SIZE + 8, attrMs)
  out.writeUInt32LE(0, OUT_HEADER_SIZE + 12)
  writeAttr(out, OUT_HEADER_SIZE + 16, st, ino)
  return out
}

export function openReply (req: Request, fh: number, openFlags: number, backingId = 0): Buffer {
  const out = reply(req, 16)
  writeU64(out, fh, 16)
  out.writeUInt32LE(openFlags >>> 0, 24)
  out.writeInt32LE(backingId, 28)
  return out
}

/** CREATE: entry_out then open_out. */
export function createReply (req: Request, nodeid: number, st: Stat, ino: number, entryMs: number, attrMs: number, fh: number, openFlags: number, backingId = 0): Buffer {
  const out = reply(req, ENTRY_OUT_SIZE + 16)
  writeEntry(out, OUT_HEADER_SIZE, nodeid, st, ino, entryMs, attrMs)
  const o = OUT_HEADER_SIZE + ENTRY_OUT_SIZE
  writeU64(out, fh, o)
  out.writeUInt32LE(openFlags >>> 0, o + 8)
  out.writeInt32LE(backingId, o + 12)
  return out
}

export function writeReply (req: Request, size: number): Buffer {
  const out = reply(req, 8)
  out.writeUInt32LE(size >>> 0, 16)
  out.writeUInt32LE(0, 20)
  return out
}

export function statfsReply (req: Request, s: StatFs): Buffer {
  const out = reply(req, 80)
  writeU64(out, s.blocks, 16)
  writeU64(out, s.bfree, 24)
  writeU64(out, s.bavail, 32)
  writeU64(out, s.files, 40)
  writeU64(out, s.ffree, 48)
  out.writeUInt32LE(s.bsize >>> 0, 56)
  out.writeUInt32LE(s.namemax >>> 0, 60)
  out.writeUInt32LE(s.frsize >>> 0, 64)
  out.fill(0, 68, 96)
  return out
}

/** GETXATTR/LISTXATTR with size 0: how many bytes the value would take. */
export function xattrSizeReply (req: Request, size: number): Buffer {
  const out = reply(req, 8)
  out.writeUInt32LE(size >>> 0, 16)
  out.writeUInt32LE(0, 20)
  return out
}

/** A reply whose payload is `data` as is (READ, READLINK, GETXATTR values, LISTXATTR lists). */
export function dataReply (req: Request, data: Uint8Array): Buffer {
  const out = reply(req, data.length)
  out.set(data, OUT_HEADER_SIZE)
  return out
}

export function lseekReply (req: Request, offset: number): Buffer {
  const out = reply(req, 8)
  writeU64(out, offset, 16)
  return out
}

export interface InitOut {
  minor: number
  maxReadahead: number
  flags: bigint
  maxBackground: number
  congestionThreshold: number
  maxWrite: number
  timeGran: number
  maxPages: number
  /** Passthrough: how deep the backing filesystem may stack below this one (≥ 1 turns passthrough on). */
  maxStackDepth: number
}
export function initReply (req: Request, o: InitOut): Buffer {
  const out = reply(req, INIT_OUT_SIZE)
  out.fill(0, OUT_HEADER_SIZE)
  const b = OUT_HEADER_SIZE
  out.writeUInt32LE(7, b)
  out.writeUInt32LE(o.minor, b + 4)
  out.writeUInt32LE(o.maxReadahead, b + 8)
  out.writeUInt32LE(Number(o.flags & 0xFFFFFFFFn), b + 12)
  out.writeUInt16LE(o.maxBackground, b + 16)
  out.writeUInt16LE(o.congestionThreshold, b + 18)
  out.writeUInt32LE(o.maxWrite, b + 20)
  out.writeUInt32LE(o.timeGran, b + 24)
  out.writeUInt16LE(o.maxPages, b + 28)
  out.writeUInt16LE(0, b + 30)
  out.writeUInt32LE(Number((o.flags >> 32n) & 0xFFFFFFFFn), b + 32)
  out.writeUInt32LE(o.maxStackDepth, b + 36)
  return out
}

/** Bytes one dirent of `nameLen` takes (8-aligned). */
export function direntSize (nameLen: number, plus: boolean): number {
  const raw = (plus ? ENTRY_OUT_SIZE : 0) + DIRENT_HEADER_SIZE + nameLen
  return (raw + 7) & ~7
}

/**
 * Appends one struct fuse_dirent (or fuse_direntplus with its entry_out) at `off`; returns the new offset, or -1
 * when it does not fit in `out` (the kernel's buffer size).
 */
export function writeDirent (out: Buffer, off: number, name: Buffer, ino: number, mode: number, nextOff: number, plus?: { nodeid: number, st?: Stat, entryMs: number, attrMs: number }): number {
  const size = direntSize(name.length, plus !== undefined)
  if (off + size > out.length) return -1
  let o = off
  if (plus !== undefined) {
    writeEntry(out, o, plus.nodeid, plus.st, ino, plus.entryMs, plus.attrMs)
    o += ENTRY_OUT_SIZE
  }
  writeU64(out, ino, o)
  writeU64(out, nextOff, o + 8)
  out.writeUInt32LE(name.length, o + 16)
  out.writeUInt32LE(direntType(mode), o + 20)
  name.copy(out, o + DIRENT_HEADER_SIZE)
  out.fill(0, o + DIRENT_HEADER_SIZE + name.length, off + size)
  return off + size
}

// ---- notifications ----------------------------------------------------------------------------------------------

function notifyHeader (out: Buffer, code: number): void {
  out.writeUInt32LE(out.length, 0)
  out.writeInt32LE(code, 4)
  out.writeBigUInt64LE(0n, 8)
}

/** NOTIFY_INVAL_INODE: drop cached attributes of `nodeid` and its pages from `off` (len 0: to the end; off -1: no data). */
export function notifyInvalInode (nodeid: number, off = 0, len = 0): Buffer {
  const out = Buffer.alloc(OUT_HEADER_SIZE + 24)
  notifyHeader(out, 2)
  writeU64(out, nodeid, 16)
  writeI64(out, off, 24)
  writeI64(out, len, 32)
  return out
}

/** NOTIFY_INVAL_ENTRY: drop the dentry `name` in `parent`. */
export function notifyInvalEntry (parent: number, name: string): Buffer {
  const bytes = toBytes(name)
  const out = Buffer.alloc(OUT_HEADER_SIZE + 16 + bytes.length + 1)
  notifyHeader(out, 3)
  writeU64(out, parent, 16)
  out.writeUInt32LE(bytes.length, 24)
  out.writeUInt32LE(0, 28)
  bytes.copy(out, 32)
  return out
}

/** NOTIFY_DELETE: `name` in `parent` (which was `child`) is gone. */
export function notifyDelete (parent: number, child: number, name: string): Buffer {
  const bytes = toBytes(name)
  const out = Buffer.alloc(OUT_HEADER_SIZE + 24 + bytes.length + 1)
  notifyHeader(out, 6)
  writeU64(out, parent, 16)
  writeU64(out, child, 24)
  out.writeUInt32LE(bytes.length, 32)
  bytes.copy(out, 40)
  return out
}

export { ATTR_SIZE }
