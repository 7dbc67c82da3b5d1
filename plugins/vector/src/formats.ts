/**
 * Vector file formats: what a `.vec` or `.fvecs` file holds, parsed into one flat Float32Array.
 *
 * - `.vec` (text): one vector per line, numbers separated by commas or whitespace (`1.5, 2.5, 3.5` or
 *   `1.5 2.5 3.5`). Blank lines are skipped; `\r\n` line ends and a UTF-8 byte-order mark are accepted. A number is
 *   a decimal with an optional exponent (`-1`, `.5`, `2.`, `1e-3`); NaN, Infinity, hex and empty fields
 *   (`1,,2`) are refused. Every line must have as many numbers as the first.
 * - `.fvecs` (binary, the TEXMEX/ANN-benchmarks layout): repeated records of a little-endian int32 dimension `d`
 *   followed by `d` little-endian float32 values; every record has the same `d`, and the file ends on a record's end.
 *
 * A file holding no vector (empty, or only blank lines) is valid and indexes nothing. Every refusal is a
 * `VectorFormatError` whose message says where and why, in one line. Pure functions: no I/O.
 */

/** Largest dimension accepted (a typo guard: real embeddings stay far below). */
export const MAX_DIM = 65_536
/** Most vectors one file may hold: the low 24 bits of an index key number the vectors of one file. */
export const MAX_VECTORS_PER_FILE = 2 ** 24

export type VectorFormat = 'text' | 'fvecs'

export class VectorFormatError extends Error {
  readonly code = 'EINVAL'
  constructor (message: string) {
    super(message)
    this.name = 'VectorFormatError'
  }
}

/** Vectors parsed from one file: `count` rows of `dim` numbers in `data` (row-major). `dim` is 0 when count is 0. */
export interface Vectors {
  dim: number
  count: number
  data: Float32Array
}

/** The format a file name says, or undefined for names the index ignores. Case-insensitive extension. */
export function formatOf (name: string): VectorFormat | undefined {
  const lower = name.toLowerCase()
  if (lower.endsWith('.vec')) return 'text'
  if (lower.endsWith('.fvecs')) return 'fvecs'
  return undefined
}

/**
 * Parses a file's bytes. `expectDim` (when the index already has a dimension) makes a file of another dimension
 * a VectorFormatError.
 */
export function parseVectors (format: VectorFormat, bytes: Uint8Array, expectDim?: number): Vectors {
  const v = format === 'text' ? parseText(bytes) : parseFvecs(bytes)
  if (expectDim !== undefined && expectDim > 0 && v.count > 0 && v.dim !== expectDim) {
    throw new VectorFormatError(`dimension ${v.dim} does not match the index's ${expectDim}`)
  }
  return v
}

const DOT = 0x2e
const COMMA = 0x2c
const NL = 0x0a

function isSpace (c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0b || c === 0x0c
}

function isDigit (c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/**
 * The end of the number starting at `i`, or -1 when what starts there is not a decimal number
 * ([+-] digits [. digits] [(e|E) [+-] digits], with at least one digit before the exponent).
 */
function numberEnd (b: Uint8Array, i: number, end: number): number {
  if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++
  let digits = 0
  while (i < end && isDigit(b[i])) { i++; digits++ }
  if (i < end && b[i] === DOT) {
    i++
    while (i < end && isDigit(b[i])) { i++; digits++ }
  }
  if (digits === 0) return -1
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++
    const start = i
    while (i < end && isDigit(b[i])) i++
    if (i === start) return -1
  }
  return i
}

/** A short, printable excerpt of what was found at `i` (for messages). */
function excerpt (b: Uint8Array, i: number, end: number): string {
  let j = i
  while (j < end && j < i + 16 && !isSpace(b[j]) && b[j] !== COMMA && b[j] !== NL) j++
  const s = Buffer.from(b.buffer, b.byteOffset + i, Math.max(j - i, 1)).toString('latin1')
  return JSON.stringify(j === i ? s.slice(0, 1) : s)
}

function parseText (bytes: Uint8Array): Vectors {
  const b = bytes
  const end = b.length
  let i = b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0
  let dim = 0
  let count = 0
  // Grown by doubling; trimmed at the end.
  let out = new Float32Array(1024)
  let n = 0
  let line = 0
  const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  while (i < end) {
    line++
    let lineEnd = b.indexOf(NL, i)
    if (lineEnd < 0) lineEnd = end
    let j = i
    let fields = 0
    let needNumber = true
    let sawComma = false
    while (j < lineEnd) {
      const c = b[j]
      if (isSpace(c)) { j++; continue }
      if (c === COMMA) {
        if (needNumber) throw new VectorFormatError(`line ${line}: an empty field before a comma`)
        needNumber = true
        sawComma = true
        j++
        continue
      }
      if (!needNumber && !sawComma && fields > 0 && !isSpace(b[j - 1])) {
        throw new VectorFormatError(`line ${line}: ${excerpt(b, j, lineEnd)} is not a number`)
      }
      const e = numberEnd(b, j, lineEnd)
      if (e < 0 || (e < lineEnd && !isSpace(b[e]) && b[e] !== COMMA)) {
        throw new VectorFormatError(`line ${line}: ${excerpt(b, j, lineEnd)} is not a number`)
      }
      const x = Number(text.toString('latin1', j, e))
      if (!Number.isFinite(x) || Math.abs(x) > 3.4028234663852886e38) {
        throw new VectorFormatError(`line ${line}: ${excerpt(b, j, lineEnd)} does not fit a 32-bit float`)
      }
      if (n === out.length) {
        const grown = new Float32Array(out.length * 2)
        grown.set(out)
        out = grown
      }
      out[n++] = x
      fields++
      needNumber = false
      sawComma = false
      j = e
    }
    if (fields > 0 && needNumber) throw new VectorFormatError(`line ${line}: ends with a comma`)
    if (fields === 0 && sawComma) throw new VectorFormatError(`line ${line}: an empty field before a comma`)
    if (fields > 0) {
      if (dim === 0) {
        if (fields > MAX_DIM) throw new VectorFormatError(`line ${line}: ${fields} numbers, more than the ${MAX_DIM} dimensions accepted`)
        dim = fields
      } else if (fields !== dim) {
        throw new VectorFormatError(`line ${line}: ${fields} numbers where line 1 of the file had ${dim}`)
      }
      count++
      if (count > MAX_VECTORS_PER_FILE) throw new VectorFormatError(`more than ${MAX_VECTORS_PER_FILE} vectors in one file`)
    }
    i = lineEnd + 1
  }
  return { dim, count, data: n === out.length ? out : out.slice(0, n) }
}

function parseFvecs (bytes: Uint8Array): Vectors {
  const end = bytes.length
  if (end === 0) return { dim: 0, count: 0, data: new Float32Array(0) }
  if (end < 4) throw new VectorFormatError(`${end} bytes: too short for a record's dimension`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const dim = view.getInt32(0, true)
  if (dim <= 0 || dim > MAX_DIM) throw new VectorFormatError(`record 0: dimension ${dim} is not between 1 and ${MAX_DIM}`)
  const record = 4 + 4 * dim
  if (end % record !== 0) {
    throw new VectorFormatError(`${end} bytes is not a whole number of ${dim}-dimensional records (${record} bytes each)`)
  }
  const count = end / record
  if (count > MAX_VECTORS_PER_FILE) throw new VectorFormatError(`more than ${MAX_VECTORS_PER_FILE} vectors in one file`)
  const data = new Float32Array(count * dim)
  for (let r = 0; r < count; r++) {
    const at = r * record
    const d = view.getInt32(at, true)
    if (d !== dim) throw new VectorFormatError(`record ${r}: dimension ${d} where record 0 had ${dim}`)
    for (let k = 0; k < dim; k++) {
      const x = view.getFloat32(at + 4 + 4 * k, true)
      if (!Number.isFinite(x)) throw new VectorFormatError(`record ${r}, component ${k}: ${x} is not a finite number`)
      data[r * dim + k] = x
    }
  }
  return { dim, count, data }
}

/** Encodes vectors as .fvecs bytes (tests and the benchmark write files with it). */
export function toFvecs (vectors: ArrayLike<number>[]): Buffer {
  const dim = vectors[0]?.length ?? 0
  const out = Buffer.alloc(vectors.length * (4 + 4 * dim))
  vectors.forEach((v, r) => {
    const at = r * (4 + 4 * dim)
    out.writeInt32LE(v.length, at)
    for (let k = 0; k < v.length; k++) out.writeFloatLE(v[k], at + 4 + 4 * k)
  })
  return out
}

/** Encodes vectors as .vec text, one per line, numbers separated by ", ". */
export function toText (vectors: ArrayLike<number>[]): string {
  return vectors.map(v => Array.from(v).join(', ')).join('\n') + (vectors.length > 0 ? '\n' : '')
}
