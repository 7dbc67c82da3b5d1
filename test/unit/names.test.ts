// File names as bytes (src/backend/names.ts): every byte string round-trips exactly, two different byte strings
// never become one name, and strings that did not come from bytes are refused (EILSEQ).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { byteLength, fromBytes, fromLatin1, hasEscapes, toBytes, toLatin1 } from '../../dist/backend/names.js'

/** A small deterministic PRNG (mulberry32), so a failure names its seed. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('keep\\xff and keep\\xfe decode to two different names and encode back to their own bytes', () => {
  const a = fromBytes(Buffer.from('6b656570ff', 'hex'))
  const b = fromBytes(Buffer.from('6b656570fe', 'hex'))
  assert.notEqual(a, b)
  assert.equal(toBytes(a).toString('hex'), '6b656570ff')
  assert.equal(toBytes(b).toString('hex'), '6b656570fe')
  assert.ok(hasEscapes(a) && hasEscapes(b))
  // Neither is the name U+FFFD that a lossy decoder would give both.
  assert.notEqual(a, 'keep\uFFFD')
  assert.equal(toBytes('keep\uFFFD').toString('hex'), '6b656570efbfbd')
})

test('valid UTF-8, ASCII and astral characters decode as text, with no escapes', () => {
  for (const s of ['plain', 'ünï €.txt', 'emoji 😀 here', '\u07FF\u0800\uFFFF', '']) {
    const b = Buffer.from(s, 'utf8')
    assert.equal(fromBytes(b), s)
    assert.equal(hasEscapes(s), false)
    assert.ok(toBytes(s).equals(b))
    assert.equal(byteLength(s), b.length)
  }
})

test('what strict UTF-8 rejects is escaped byte by byte: overlongs, encoded surrogates, past U+10FFFF, truncations', () => {
  const cases = ['c080', 'e08080', 'eda080', 'edbfbf', 'f4908080', 'f5', 'ff', 'e282', 'f09f98', '80', 'c3']
  for (const hex of cases) {
    const b = Buffer.from('61' + hex + '62', 'hex')
    const s = fromBytes(b)
    assert.ok(hasEscapes(s), hex)
    assert.equal(toBytes(s).toString('hex'), b.toString('hex'), hex)
    assert.equal(byteLength(s), b.length)
  }
})

test('random byte strings round-trip exactly and distinct ones never collide (fixed seeds)', () => {
  for (const seed of [1, 2, 3, 20261202]) {
    const r = rng(seed)
    const seen = new Map<string, string>()
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(r() * 12)
      // Bias towards the bytes that matter: ASCII, continuation bytes, lead bytes.
      const b = Buffer.from(Array.from({ length: len }, () => {
        const x = r()
        return x < 0.3 ? 0x61 + Math.floor(r() * 3) : x < 0.6 ? 0x80 + Math.floor(r() * 0x40) : 0xC0 + Math.floor(r() * 0x40)
      }))
      const s = fromBytes(b)
      assert.equal(toBytes(s).toString('hex'), b.toString('hex'), `seed ${seed}`)
      const prev = seen.get(s)
      assert.ok(prev === undefined || prev === b.toString('hex'), `seed ${seed}: ${prev} and ${b.toString('hex')} collided`)
      seen.set(s, b.toString('hex'))
    }
  }
})

test('a string with a lone surrogate that no byte string gives is refused with EILSEQ', () => {
  assert.throws(() => toBytes('a\uD800b'), { code: 'EILSEQ' })
  assert.throws(() => toBytes('a\uDC10'), { code: 'EILSEQ' })
})

test('latin1 strings from the fuse-native binding map to the same names', () => {
  const raw = Buffer.from('6b656570ff2f78', 'hex')
  const name = fromLatin1(raw.toString('latin1'))
  assert.equal(toBytes(name).toString('hex'), raw.toString('hex'))
  assert.equal(toLatin1(name), raw.toString('latin1'))
  assert.equal(fromLatin1('ascii/only'), 'ascii/only')
  assert.equal(toLatin1('ünï'), Buffer.from('ünï').toString('latin1'))
})
