/**
 * Parsing and printing of the units settings are written in: sizes ("128K", "1M", "1.5G", plain bytes) and
 * durations ("500ms", "5s", "2m", "1h", plain seconds). Size suffixes are binary (K = 1024), as in rclone and fio.
 * Every parser throws FsxError ECONFIG with a message naming what was wrong, never returns NaN.
 */
import { FsxError } from '../errors.js'

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4
}

const DURATION_UNITS: Record<string, number> = {
  '': 1000, s: 1000, sec: 1000,
  ms: 1,
  m: 60_000, min: 60_000,
  h: 3_600_000
}

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i

/** Parses a size to bytes: "128K" → 131072, "1.5G", "4096". Throws ECONFIG on anything else. */
export function parseSize (input: string | number, what = 'size'): number {
  if (typeof input === 'number') return checkNumber(input, what, String(input))
  const m = NUMBER_WITH_UNIT.exec(input)
  const factor = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined
  if (!m || factor === undefined) {
    throw new FsxError('ECONFIG', `${what}: "${input}" is not a size (use bytes or 128K, 1M, 1.5G)`)
  }
  return Math.round(Number(m[1]) * factor)
}

/** Parses a duration to milliseconds: "500ms" → 500, "5s" → 5000, "2m", "7" (seconds) → 7000. */
export function parseDuration (input: string | number, what = 'duration'): number {
  if (typeof input === 'number') return checkNumber(input * 1000, what, String(input))
  const m = NUMBER_WITH_UNIT.exec(input)
  const factor = m ? DURATION_UNITS[m[2].toLowerCase()] : undefined
  if (!m || factor === undefined) {
    throw new FsxError('ECONFIG', `${what}: "${input}" is not a duration (use seconds or 500ms, 5s, 2m, 1h)`)
  }
  return Math.round(Number(m[1]) * factor)
}

/** Parses a boolean: true/false, yes/no, on/off, 1/0. */
export function parseBoolean (input: string | boolean, what = 'value'): boolean {
  if (typeof input === 'boolean') return input
  const v = input.trim().toLowerCase()
  if (['true', 'yes', 'on', '1'].includes(v)) return true
  if (['false', 'no', 'off', '0'].includes(v)) return false
  throw new FsxError('ECONFIG', `${what}: "${input}" is not a boolean (use true or false)`)
}

/** Parses a non-negative integer count. */
export function parseCount (input: string | number, what = 'count'): number {
  const n = typeof input === 'number' ? input : (/^\s*\d+\s*$/.test(input) ? Number(input) : NaN)
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new FsxError('ECONFIG', `${what}: "${input}" is not a whole number`)
  }
  return n
}

function checkNumber (n: number, what: string, shown: string): number {
  if (!Number.isFinite(n) || n < 0) throw new FsxError('ECONFIG', `${what}: "${shown}" must be a non-negative number`)
  return Math.round(n)
}

/** Prints bytes the way users write them: 131072 → "128K", 1536 → "1.5K", 100 → "100". */
export function formatSize (bytes: number): string {
  for (const [suffix, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= factor) {
      const v = bytes / factor
      return `${Number.isInteger(v) ? v : Number(v.toFixed(2))}${suffix}`
    }
  }
  return String(bytes)
}

/** Prints milliseconds the way users write them: 5000 → "5s", 500 → "500ms", 120000 → "2m". */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0s'
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}
