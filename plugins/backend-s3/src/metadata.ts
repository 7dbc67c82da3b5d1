/**
 * POSIX attributes as S3 user metadata, in the formats s3fs and rclone write and read, so the three tools agree on
 * the same bucket. Pure: no SDK, no network.
 *
 * What each tool does (checked against s3fs 1.90 and rclone 1.60 on the test server):
 *
 *   header              s3fs writes                 rclone writes                 fsx writes / reads
 *   x-amz-meta-mtime    "1577934245" or             "1614834367.123456789"        s3fs's form (both tools read both);
 *                       "1577934245.678000000"      (float seconds, 9 digits)     reads either, and RFC 3339
 *   x-amz-meta-atime    same as mtime               RFC 3339 (with -M)            s3fs's form; reads either
 *   x-amz-meta-ctime    seconds                     –                             seconds; reads either
 *   x-amz-meta-mode     decimal st_mode, "33188"    octal, "100644" (with -M)     decimal st_mode (what s3fs needs; it
 *                       (dir markers: "493", no                                   is the tool that applies it); reads
 *                       type bits)                                                both: see parseMode
 *   x-amz-meta-uid/gid  decimal                     decimal (with -M)             decimal
 *   x-amz-meta-xattr    urlencode(JSON {name:       –                             s3fs's form
 *                       base64(value)})
 *
 * Symlinks are stored as s3fs stores them: the object's content is the target, x-amz-meta-mode carries S_IFLNK.
 * Directory markers are "dir/" objects, content type application/x-directory, as s3fs makes them.
 * Objects without metadata (written by other tools) get mode 0644 (files) / 0755 (directories), the mounting
 * process's uid/gid, and LastModified as every time.
 */
import type { NodeKind, Stat } from '@fsx/sdk'

export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000

/** User-metadata names (the SDK adds and strips the "x-amz-meta-" part; S3 returns them lower-cased). */
export const META_MTIME = 'mtime'
export const META_ATIME = 'atime'
export const META_CTIME = 'ctime'
export const META_MODE = 'mode'
export const META_UID = 'uid'
export const META_GID = 'gid'
export const META_XATTR = 'xattr'
/** The names fsx owns; any other user metadata on an object is carried over untouched when fsx rewrites it. */
export const POSIX_META = new Set([META_MTIME, META_ATIME, META_CTIME, META_MODE, META_UID, META_GID])

export const DIR_CONTENT_TYPE = 'application/x-directory'
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream'

/** Standard object headers a metadata rewrite (CopyObject, REPLACE) must send again or lose. */
export interface ObjectHeaders {
  ContentType?: string
  CacheControl?: string
  ContentDisposition?: string
  ContentEncoding?: string
  ContentLanguage?: string
  Expires?: Date
}

/** What a HEAD (or a PUT fsx made itself) says about one object. */
export interface ObjectInfo {
  key: string
  size: number
  lastModifiedMs: number
  etag?: string
  /** User metadata, lower-case names without "x-amz-meta-". */
  metadata: Record<string, string>
  headers: ObjectHeaders
}

/** Seconds since the epoch as s3fs writes them: "1577934245", or "1577934245.678000000" when there is a fraction. */
export function formatTime (ms: number): string {
  const whole = Math.floor(ms)
  const sec = Math.floor(whole / 1000)
  const frac = whole - sec * 1000
  return frac === 0 ? String(sec) : `${sec}.${String(frac * 1_000_000).padStart(9, '0')}`
}

/** ms since the epoch from "sec", "sec.fraction" (s3fs, rclone) or an RFC 3339 date (rclone -M atime); else undefined. */
export function parseTime (s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  const t = s.trim()
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(t)
  if (m) {
    const sec = Number(m[1])
    const nanos = m[2] === undefined ? 0 : Number(m[2].slice(0, 9).padEnd(9, '0'))
    const ms = sec * 1000 + (sec < 0 ? -1 : 1) * nanos / 1e6
    return Number.isFinite(ms) ? ms : undefined
  }
  if (/^\d{4}-\d\d-\d\dT/.test(t)) {
    const ms = Date.parse(t)
    return Number.isNaN(ms) ? undefined : ms
  }
  return undefined
}

/** st_mode in s3fs's form: decimal, with the file-type bits. */
export function formatMode (mode: number): string {
  return String(mode >>> 0)
}

/**
 * st_mode from x-amz-meta-mode. s3fs writes decimal ("33188") and reads with base 0 (a leading 0 means octal);
 * rclone writes octal without the 0 ("100644"). A decimal st_mode has at most 5 digits (the largest, 0o177777, is
 * 65535), so a leading "0", or 6 or more digits all 0–7, is read as octal; anything else as decimal.
 */
export function parseMode (s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  const t = s.trim()
  if (/^0[0-7]*$/.test(t) || /^[0-7]{6,}$/.test(t)) return parseInt(t, 8) & 0o177777
  if (/^\d{1,5}$/.test(t)) {
    const n = Number(t)
    return n <= 0o177777 ? n : undefined
  }
  return undefined
}

/** A uid/gid from metadata: a non-negative 32-bit decimal, else undefined. */
export function parseId (s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*\d{1,10}\s*$/.test(s)) return undefined
  const n = Number(s)
  return n <= 0xffffffff ? n : undefined
}

/** x-amz-meta-xattr as s3fs writes it: urlencode(JSON object of name → base64 value). Undefined when empty. */
export function encodeXattrs (xattrs: Map<string, Buffer>): string | undefined {
  if (xattrs.size === 0) return undefined
  const obj: Record<string, string> = {}
  for (const [name, value] of [...xattrs.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) obj[name] = value.toString('base64')
  return encodeURIComponent(JSON.stringify(obj))
}

/** Parses x-amz-meta-xattr; a malformed value counts as no xattrs (it is left alone until one is set). */
export function decodeXattrs (s: string | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  if (s === undefined || s === '') return out
  try {
    const obj = JSON.parse(decodeURIComponent(s)) as unknown
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return out
    for (const [name, v] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof v === 'string') out.set(name, Buffer.from(v, 'base64'))
    }
  } catch {
    // not ours to repair
  }
  return out
}

/** Owner and times to use when an object carries none. */
export interface StatDefaults {
  uid: number
  gid: number
}

/**
 * The Stat of an object from its HEAD (or what fsx itself just wrote). `asDir` says the key is a directory
 * marker ("dir/"); an object without a trailing slash is a directory too when its mode says S_IFDIR or its content
 * type is application/x-directory (s3fs's legacy "dir" objects).
 */
export function statOf (info: ObjectInfo, asDir: boolean, d: StatDefaults): Stat {
  const md = info.metadata
  const rawMode = parseMode(md[META_MODE])
  let kind: NodeKind
  if (asDir) kind = 'dir'
  else if (rawMode !== undefined && (rawMode & S_IFMT) === S_IFLNK) kind = 'symlink'
  else if ((rawMode !== undefined && (rawMode & S_IFMT) === S_IFDIR) || (info.headers.ContentType === DIR_CONTENT_TYPE && info.size === 0)) kind = 'dir'
  else kind = 'file'
  const typeBits = kind === 'dir' ? S_IFDIR : kind === 'symlink' ? S_IFLNK : S_IFREG
  const perm = rawMode !== undefined ? rawMode & 0o7777 : kind === 'dir' ? 0o755 : kind === 'symlink' ? 0o777 : 0o644
  const mtimeMs = parseTime(md[META_MTIME]) ?? info.lastModifiedMs
  return {
    kind,
    size: kind === 'dir' ? 0 : info.size,
    mode: typeBits | perm,
    uid: parseId(md[META_UID]) ?? d.uid,
    gid: parseId(md[META_GID]) ?? d.gid,
    nlink: kind === 'dir' ? 2 : 1,
    atimeMs: parseTime(md[META_ATIME]) ?? mtimeMs,
    mtimeMs,
    ctimeMs: parseTime(md[META_CTIME]) ?? info.lastModifiedMs,
    etag: info.etag,
    blocks: kind === 'dir' ? 0 : Math.ceil(info.size / 512)
  }
}

/** The Stat of a directory that exists only as a common prefix (no marker): defaults, times `timeMs`. */
export function implicitDirStat (timeMs: number, d: StatDefaults): Stat {
  return { kind: 'dir', size: 0, mode: S_IFDIR | 0o755, uid: d.uid, gid: d.gid, nlink: 2, atimeMs: timeMs, mtimeMs: timeMs, ctimeMs: timeMs, blocks: 0 }
}

/** A file's Stat from a listing entry (no user metadata there: mode and owner are defaults until a HEAD). */
export function listedFileStat (size: number, lastModifiedMs: number, etag: string | undefined, d: StatDefaults): Stat {
  return {
    kind: 'file', size, mode: S_IFREG | 0o644, uid: d.uid, gid: d.gid, nlink: 1,
    atimeMs: lastModifiedMs, mtimeMs: lastModifiedMs, ctimeMs: lastModifiedMs, etag, blocks: Math.ceil(size / 512)
  }
}
