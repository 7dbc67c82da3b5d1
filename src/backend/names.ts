/**
 * File names as bytes, carried in JavaScript strings.
 *
 * A Linux file name is any byte string without "/" and NUL; JavaScript strings hold UTF-16. fsx carries names as
 * strings that round-trip exactly (PEP 383's "surrogateescape"):
 * - bytes that form valid UTF-8 (the WHATWG decoder's rules: no overlongs, no encoded surrogates, ≤ U+10FFFF)
 *   decode to the characters they encode;
 * - every other byte b (always ≥ 0x80) becomes the lone low surrogate U+DC00 + b (U+DC80..U+DCFF).
 * Valid UTF-8 never decodes to a lone surrogate, so the mapping is one-to-one and `toBytes(fromBytes(b))` is `b`
 * for every byte string: `keep\xff` and `keep\xfe` stay two names. A string holding any other lone surrogate did
 * not come from bytes and has no byte form: `toBytes` refuses it (EILSEQ).
 *
 * Backends that store names as bytes (local) turn them back with `toBytes`; backends whose names must be Unicode
 * (S3 keys, SFTP through ssh2) refuse escaped names with EILSEQ: the VFS checks `hasEscapes` for them
 * (`Capabilities.byteNames`). Nothing here allocates for ASCII names.
 */

const fatal = new TextDecoder('utf-8', { fatal: true })
/** Any UTF-16 surrogate code unit. */
const SURROGATE = /[\uD800-\uDFFF]/
/** A lone low surrogate in the escape range: a byte that was not UTF-8. */
const ESCAPE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/

/** Decodes a name (or path) from its bytes; never fails. */
export function fromBytes (bytes: Uint8Array): string {
  let ascii = true
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) { ascii = false; break }
  }
  if (ascii) return latin1(bytes)
  try {
    return fatal.decode(bytes)
  } catch {
    return decodeEscaping(bytes)
  }
}

/** Encodes a name (or path) back to the bytes it came from; throws EILSEQ for a string with no byte form. */
export function toBytes (s: string): Buffer {
  if (!SURROGATE.test(s)) return Buffer.from(s, 'utf8')
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xD800 && c <= 0xDBFF) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
      if (d < 0xDC00 || d > 0xDFFF) throw eilseq(s)
      const cp = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00)
      out.push(0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
      i++
    } else if (c >= 0xDC80 && c <= 0xDCFF) {
      out.push(c - 0xDC00)
    } else if (c >= 0xDC00 && c <= 0xDFFF) {
      throw eilseq(s)
    } else if (c < 0x80) {
      out.push(c)
    } else if (c < 0x800) {
      out.push(0xC0 | (c >> 6), 0x80 | (c & 0x3F))
    } else {
      out.push(0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F))
    }
  }
  return Buffer.from(out)
}

/** True when `s` holds an escaped byte, i.e. its bytes are not valid UTF-8. */
export function hasEscapes (s: string): boolean {
  return SURROGATE.test(s) && ESCAPE.test(s)
}

/** Byte length of `s` once encoded (the kernel's and the backends' NAME_MAX / PATH_MAX count bytes). */
export function byteLength (s: string): number {
  return SURROGATE.test(s) ? toBytes(s).length : Buffer.byteLength(s, 'utf8')
}

/** From a string whose char codes are bytes (latin1, as the patched fuse-native binding passes paths). */
export function fromLatin1 (s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7F]/.test(s) ? fromBytes(Buffer.from(s, 'latin1')) : s
}

/** To a string whose char codes are bytes (latin1), for the patched fuse-native binding. */
export function toLatin1 (s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7F]/.test(s) ? toBytes(s).toString('latin1') : s
}

function latin1 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

function eilseq (s: string): Error {
  const err = new Error(`name has no byte form: ${JSON.stringify(s)}`) as Error & { code: string }
  err.code = 'EILSEQ'
  return err
}

/**
 * WHATWG UTF-8 decoding where each byte of an invalid sequence is escaped instead of replaced. Follows the
 * decoder's boundaries exactly (E0 → A0..BF, ED → 80..9F, F0 → 90..BF, F4 → 80..8F), so whatever `fatal`
 * accepts decodes identically here.
 */
function decodeEscaping (b: Uint8Array): string {
  let out = ''
  let i = 0
  while (i < b.length) {
    const c = b[i]
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue }
    let need = 0
    let lo = 0x80
    let hi = 0xBF
    let cp = 0
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2; cp = c & 0x0F
      if (c === 0xE0) lo = 0xA0
      if (c === 0xED) hi = 0x9F
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3; cp = c & 0x07
      if (c === 0xF0) lo = 0x90
      if (c === 0xF4) hi = 0x8F
    }
    let ok = need > 0 && i + need < b.length
    if (ok) {
      for (let k = 1; k <= need; k++) {
        const d = b[i + k]
        const min = k === 1 ? lo : 0x80
        const max = k === 1 ? hi : 0xBF
        if (d === undefined || d < min || d > max) { ok = false; break }
        cp = (cp << 6) | (d & 0x3F)
      }
    }
    if (!ok) { out += String.fromCharCode(0xDC00 + c); i++; continue }
    out += String.fromCodePoint(cp)
    i += need + 1
  }
  return out
}
