/**
 * Writing systemd unit files: unit names from paths (as `systemd-escape --path` makes them) and values and Exec=
 * command lines quoted so that systemd hands fsx exactly the words given (specifiers `%` and variables `$` escaped).
 */
import path from 'node:path'
import { FsxError } from '../errors.js'

/** `systemd-escape --path`: "/mnt/my data" → "mnt-my\x20data"; "/" → "-". */
export function escapePath (p: string): string {
  const trimmed = path.normalize(p).replace(/^\/+|\/+$/g, '')
  if (trimmed === '') return '-'
  return trimmed.split('/').map((part, i) => [...Buffer.from(part, 'utf8')].map((b, j) => {
    const c = String.fromCharCode(b)
    const plain = /[A-Za-z0-9:_.]/.test(c) && !(c === '.' && i === 0 && j === 0)
    return plain ? c : `\\x${b.toString(16).padStart(2, '0')}`
  }).join('')).join('-')
}

/** A value for a unit file setting: specifiers (%) doubled, and no line breaks. */
export function unitValue (v: string): string {
  if (/[\n\r]/.test(v)) throw new FsxError('EUSAGE', 'a line break cannot go into a unit file')
  return v.replace(/%/g, '%%')
}

/** An Exec= command line: each word quoted where it must be, `%` and `$` escaped so systemd passes them as typed. */
export function commandLine (words: string[]): string {
  return words.map(w => {
    const v = unitValue(w).replace(/\$/g, '$$$$')
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  }).join(' ')
}
