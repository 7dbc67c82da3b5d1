/**
 * Paths ⇔ object keys. Pure: no SDK, no network.
 *
 * Layout (the one s3fs, rclone and the S3 console share):
 *   file or symlink "/a/b"   → object  <prefix>a/b
 *   directory "/a"           → marker  <prefix>a/   (empty object; optional: "a/x" alone makes "/a" a directory)
 *   the root "/"             → <prefix> itself (no marker needed; the bucket root has none)
 *
 * Invariants:
 * - A path is absolute, "/"-separated, with no empty, "." or ".." component (the VFS normalises; this refuses what
 *   would escape or alias, EINVAL). Components are at most NAME_MAX (255) UTF-8 bytes, keys at most 1024 (S3's
 *   limit): ENAMETOOLONG.
 * - Listing names that cannot be a path component ("", ".", "..", from keys like "a//b" or "a/./b") are skipped.
 */

/** NAME_MAX as the kernel sees it through FUSE. */
export const NAME_MAX = 255
/** S3's longest key, in UTF-8 bytes. */
export const KEY_MAX = 1024

export type MakeError = (code: string, message: string, extra?: { path?: string; op?: string; cause?: unknown }) => Error

export class KeyMap {
  /** @param prefix '' or a key prefix ending in '/' (see settings.ts parseS3Source). */
  constructor (readonly prefix: string, private readonly makeError: MakeError) {}

  /** Refuses a path that is not a clean absolute path (EINVAL) or is too long (ENAMETOOLONG). */
  check (p: string, op: string): void {
    if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) {
      throw this.makeError('EINVAL', `${op} ${String(p)}: not an absolute path`, { path: p, op })
    }
    if (p === '/') return
    for (const seg of p.slice(1).split('/')) {
      if (seg === '' || seg === '.' || seg === '..') {
        throw this.makeError('EINVAL', `${op} ${p}: empty, "." or ".." path components are not allowed`, { path: p, op })
      }
      if (Buffer.byteLength(seg) > NAME_MAX) throw this.makeError('ENAMETOOLONG', `${op} ${p}: name too long`, { path: p, op })
    }
    if (Buffer.byteLength(this.prefix) + Buffer.byteLength(p) > KEY_MAX) {
      throw this.makeError('ENAMETOOLONG', `${op} ${p}: longer than S3's 1024-byte key limit`, { path: p, op })
    }
  }

  /** Object key of a file or symlink path ("/a/b" → "<prefix>a/b"). Not for "/". */
  fileKey (p: string): string {
    return this.prefix + p.slice(1)
  }

  /** Key prefix of a directory, with its trailing slash ("/" → "<prefix>", "/a" → "<prefix>a/"); also its marker key. */
  dirPrefix (p: string): string {
    return p === '/' ? this.prefix : this.prefix + p.slice(1) + '/'
  }

  /** The path of a key below the root, or undefined when the key is outside it or not representable. */
  pathOf (key: string): string | undefined {
    if (!key.startsWith(this.prefix)) return undefined
    const rel = key.slice(this.prefix.length).replace(/\/$/, '')
    if (rel === '') return '/'
    if (rel.split('/').some(s => s === '' || s === '.' || s === '..')) return undefined
    return '/' + rel
  }
}

/** Parent directory of a path ("/a/b" → "/a", "/a" → "/"). */
export function parentOf (p: string): string {
  const i = p.lastIndexOf('/')
  return i <= 0 ? '/' : p.slice(0, i)
}

/** Last component of a path. */
export function baseName (p: string): string {
  return p.slice(p.lastIndexOf('/') + 1)
}

/** True when a listing name can be a path component. */
export function usableName (name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && Buffer.byteLength(name) <= NAME_MAX
}

/**
 * The x-amz-copy-source value for a key: "bucket/key" with every character outside RFC 3986's unreserved set
 * percent-encoded per segment (slashes kept). S3 decodes it fully; a server that only decodeURI's it loses keys
 * holding "@", "#", "+", "?" or "&" (the s3rver bug patched in patches/s3rver+3.7.1.patch).
 */
export function copySource (bucket: string, key: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return `${bucket}/${key.split('/').map(enc).join('/')}`
}
