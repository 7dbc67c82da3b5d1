// Units: sizes and durations as users write them; every bad value is an ECONFIG error, never NaN.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSize, parseDuration, parseBoolean, parseCount, formatSize, formatDuration } from '../../dist/config/units.js'

test('sizes take binary suffixes and plain bytes', () => {
  assert.equal(parseSize('128K'), 131072)
  assert.equal(parseSize('1M'), 1048576)
  assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3)
  assert.equal(parseSize('4096'), 4096)
  assert.equal(parseSize('64KiB'), 65536)
  assert.equal(parseSize(' 2 mb '), 2 * 1024 ** 2)
  assert.equal(parseSize(512), 512)
})

test('durations take ms, s, m, h and plain seconds', () => {
  assert.equal(parseDuration('500ms'), 500)
  assert.equal(parseDuration('5s'), 5000)
  assert.equal(parseDuration('2m'), 120000)
  assert.equal(parseDuration('1h'), 3600000)
  assert.equal(parseDuration('7'), 7000)
  assert.equal(parseDuration('0.5'), 500)
  assert.equal(parseDuration(3), 3000)
})

test('bad sizes and durations are ECONFIG errors naming the value', () => {
  assert.throws(() => parseSize('abc', 'FSX_READAHEAD'), { code: 'ECONFIG', message: /FSX_READAHEAD: "abc" is not a size/ })
  assert.throws(() => parseSize('12Q'), { code: 'ECONFIG' })
  assert.throws(() => parseSize('-1'), { code: 'ECONFIG' })
  assert.throws(() => parseDuration('abc'), { code: 'ECONFIG', message: /not a duration/ })
  assert.throws(() => parseDuration('5 fortnights'), { code: 'ECONFIG' })
  assert.throws(() => parseDuration(''), { code: 'ECONFIG' })
})

test('booleans and counts parse the usual spellings', () => {
  for (const v of ['true', 'yes', 'on', '1', 'TRUE']) assert.equal(parseBoolean(v), true)
  for (const v of ['false', 'no', 'off', '0']) assert.equal(parseBoolean(v), false)
  assert.throws(() => parseBoolean('maybe'), { code: 'ECONFIG' })
  assert.equal(parseCount('42'), 42)
  assert.throws(() => parseCount('4.2'), { code: 'ECONFIG' })
  assert.throws(() => parseCount('-3'), { code: 'ECONFIG' })
})

test('formatting round-trips the common values', () => {
  assert.equal(formatSize(131072), '128K')
  assert.equal(formatSize(1536), '1.5K')
  assert.equal(formatSize(100), '100')
  assert.equal(formatDuration(5000), '5s')
  assert.equal(formatDuration(500), '500ms')
  assert.equal(formatDuration(120000), '2m')
  assert.equal(formatDuration(0), '0s')
  for (const s of ['128K', '1M', '256K', '1.5G']) assert.equal(parseSize(formatSize(parseSize(s))), parseSize(s))
})
