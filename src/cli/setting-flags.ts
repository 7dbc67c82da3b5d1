/**
 * oclif flags generated from the options table, so every setting has one spelling: --attr-ttl for attrTtl.
 * Values stay raw strings here; resolve.ts parses them (so a bad value gets the same one-line error as a bad env).
 * Backend plugins' settings (e.g. --sftp-key) are not known when the manifest is built: `extractPluginFlags` takes
 * them out of argv before oclif parses the rest.
 */
import { Flags } from '@oclif/core'
import { CORE_OPTIONS, envName, flagName, rangeText, type OptionSpec } from '../config/options.js'
import { FsxError } from '../errors.js'

export function settingFlags (): Record<string, any> {
  const flags: Record<string, any> = {}
  for (const spec of CORE_OPTIONS) {
    const range = rangeText(spec)
    const summary = `${spec.help} [env: ${envName(spec.key)}]${range === undefined ? '' : ` [range: ${range}]`}`
    flags[flagName(spec.key)] = spec.kind === 'boolean'
      ? Flags.boolean({ summary, allowNo: true, helpGroup: 'SETTINGS' })
      : Flags.string({ summary, helpGroup: 'SETTINGS', helpValue: spec.choices ? spec.choices.join('|') : ({ duration: 'DURATION', size: 'SIZE', count: 'N' } as Record<string, string>)[spec.kind] ?? 'VALUE' })
  }
  return flags
}

/** Option-key → raw value for the setting flags that were given. */
export function settingsFromFlags (parsed: Record<string, unknown>, specs: readonly OptionSpec[] = CORE_OPTIONS): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const spec of specs) {
    const v = parsed[flagName(spec.key)]
    if (v !== undefined) out[spec.key] = v
  }
  return out
}

/** Removes `--<plugin-flag> VALUE` / `--<plugin-flag>=VALUE` / `--[no-]<bool>` from argv; returns them by key. */
export function extractPluginFlags (argv: string[], specs: readonly OptionSpec[]): { argv: string[], values: Record<string, unknown> } {
  const byFlag = new Map(specs.map(s => [flagName(s.key), s]))
  const rest: string[] = []
  const values: Record<string, unknown> = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') { rest.push(...argv.slice(i)); break }
    const m = /^--(no-)?([a-z0-9-]+)(?:=(.*))?$/.exec(a)
    const spec = m ? byFlag.get(m[2]) : undefined
    if (!m || !spec) { rest.push(a); continue }
    if (spec.kind === 'boolean') {
      values[spec.key] = m[3] !== undefined ? m[3] : !m[1]
    } else {
      if (m[1]) throw new FsxError('EUSAGE', `--no-${m[2]} is not a flag`)
      const v = m[3] ?? argv[++i]
      if (v === undefined) throw new FsxError('EUSAGE', `--${m[2]} expects a value`)
      values[spec.key] = v
    }
  }
  return { argv: rest, values }
}
