// Vector file formats (plugins/vector/src/formats.ts): .vec text and .fvecs binary, what is accepted, and that every
// refusal says where and why in one line.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatOf, parseVectors, toFvecs, toText, VectorFormatError } from '../../plugins/vector/dist/index.js'

const text = (s: string) => parseVectors('text', Buffer.from(s))
const rows = (v: { dim: number, count: number, data: Float32Array }): number[][] =>
  Array.from({ length: v.count }, (_, r) => Array.from(v.data.subarray(r * v.dim, (r + 1) * v.dim)))

test('file names choose the format; other names are not vector files', () => {
  assert.equal(formatOf('/a/b.vec'), 'text')
  assert.equal(formatOf('/B.VEC'), 'text')
  assert.equal(formatOf('/x.fvecs'), 'fvecs')
  assert.equal(formatOf('/x.vec.tmp'), undefined)
  assert.equal(formatOf('/vec'), undefined)
})

test('text: commas, whitespace or both separate numbers; one vector per line; blank lines, CRLF and a BOM pass', () => {
  assert.deepEqual(rows(text('1.5,2.5,3.5\n')), [[1.5, 2.5, 3.5]])
  assert.deepEqual(rows(text('1.5 2.5\t3.5')), [[1.5, 2.5, 3.5]])
  assert.deepEqual(rows(text('\ufeff 1 , -2,3e2\r\n\n  \n.5 2. -1E-1\r\n')), [[1, -2, 300], [0.5, 2, Math.fround(-0.1)]])
  const v = text('0,0\n1,1\n2,2\n')
  assert.equal(v.dim, 2)
  assert.equal(v.count, 3)
})

test('text: an empty file (or only blank lines) holds no vector and is valid', () => {
  assert.deepEqual(text(''), { dim: 0, count: 0, data: new Float32Array(0) })
  assert.equal(text('\n \n\r\n').count, 0)
})

test('text: what is not a finite decimal number is refused, naming the line', () => {
  const bad: Array<[string, RegExp]> = [
    ['1,2,x\n', /^line 1: "x" is not a number$/],
    ['1,2\n3,NaN\n', /^line 2: "NaN" is not a number$/],
    ['Infinity\n', /"Infinity" is not a number/],
    ['0x10 1\n', /"0x10" is not a number/],
    ['1,,2\n', /line 1: an empty field before a comma/],
    [',1\n', /line 1: an empty field before a comma/],
    ['1,2,\n', /line 1: ends with a comma/],
    ['1.2.3\n', /"1.2.3" is not a number/],
    ['1e\n', /"1e" is not a number/],
    ['1e39\n', /"1e39" does not fit a 32-bit float/],
    ['[1, 2]\n', /"\[1" is not a number/]
  ]
  for (const [input, why] of bad) {
    assert.throws(() => text(input), (err: unknown) => err instanceof VectorFormatError && (err as Error & { code: string }).code === 'EINVAL' && why.test((err as Error).message), input)
  }
})

test('text: every line must have as many numbers as the first', () => {
  assert.throws(() => text('1,2,3\n4,5\n'), /line 2: 2 numbers where line 1 of the file had 3/)
})

test('a dimension the index already has: another one is refused', () => {
  assert.equal(parseVectors('text', Buffer.from('1,2,3\n'), 3).dim, 3)
  assert.throws(() => parseVectors('text', Buffer.from('1,2\n'), 3), /dimension 2 does not match the index's 3/)
  assert.throws(() => parseVectors('fvecs', toFvecs([[1, 2, 3, 4]]), 3), /dimension 4 does not match the index's 3/)
  assert.equal(parseVectors('text', Buffer.from(''), 3).count, 0, 'an empty file matches any dimension')
})

test('fvecs: little-endian int32 dimension + float32 values per record round-trip', () => {
  const vs = [[1, 2, 3], [-0.5, 1e-3, 42]]
  const v = parseVectors('fvecs', toFvecs(vs))
  assert.equal(v.dim, 3)
  assert.deepEqual(rows(v), vs.map(r => r.map(Math.fround)))
  const bytes = Buffer.alloc(8)
  bytes.writeInt32LE(1, 0)
  bytes.writeFloatLE(7.25, 4)
  assert.deepEqual(rows(parseVectors('fvecs', bytes)), [[7.25]])
  assert.equal(parseVectors('fvecs', Buffer.alloc(0)).count, 0)
})

test('fvecs: truncated files, mixed dimensions, impossible dimensions and NaN are refused', () => {
  const good = toFvecs([[1, 2], [3, 4]])
  assert.throws(() => parseVectors('fvecs', good.subarray(0, good.length - 1)), /not a whole number of 2-dimensional records/)
  assert.throws(() => parseVectors('fvecs', Buffer.from([1, 0])), /too short/)
  const mixed = Buffer.concat([toFvecs([[1, 2]]), toFvecs([[1, 2, 3]]).subarray(0, 12)])
  assert.throws(() => parseVectors('fvecs', mixed), /record 1: dimension 3 where record 0 had 2/)
  const zero = Buffer.alloc(4)
  assert.throws(() => parseVectors('fvecs', zero), /dimension 0 is not between 1 and 65536/)
  assert.throws(() => parseVectors('fvecs', toFvecs([[1, NaN]])), /record 0, component 1: NaN is not a finite number/)
})

test('toText writes what the text parser reads back', () => {
  const vs = [[0.25, -1, 3], [4, 5, 6.5]]
  assert.deepEqual(rows(text(toText(vs))), vs)
})
