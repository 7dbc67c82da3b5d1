/**
 * Settings resolution with provenance. Order, lowest to highest:
 *   built-in default < preset < config file < environment (FSX_*) < flags
 * The preset itself is chosen by: --preset flag > FSX_PRESET > config file "preset" > "balanced".
 * Config file: --config PATH, else $XDG_CONFIG_HOME/fsx/config.json (~/.config/fsx/config.json); a missing default
 * config file is fine, a missing explicit one is an error. Config and preset files are validated against
 * presets/schema.json (schema.ts); every value, from any source, is parsed and range-checked by `parseOptionValue`;
 * the first bad one throws ECONFIG naming where it came from (e.g. `environment FSX_ATTR_TTL: "abc" is not a
 * duration`, `environment FSX_MAX_WRITE: 10G is out of range: maxWrite takes 4K to 1M`).
 */
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { FsxError } from '../errors.js'
import { CORE_OPTIONS, envName, originLabel, parseOptionValue, type OptionSpec } from './options.js'
import { DEFAULT_PRESET, loadPreset, type Preset } from './presets.js'
import { checkConfigDoc } from './schema.js'

export type Source = 'default' | 'preset' | 'config' | 'env' | 'flag'

export interface ResolvedSetting {
  value: number | boolean | string | undefined
  source: Source
}

export interface ResolvedSettings {
  preset: Preset
  presetSource: Source
  configFile?: string
  specs: readonly OptionSpec[]
  settings: Record<string, ResolvedSetting>
}

export interface ResolveInput {
  /** --preset flag value, if given. */
  preset?: string
  /** --config flag value, if given. */
  config?: string
  /** Flag values by option key (raw strings or booleans), only those given on the command line. */
  flags?: Record<string, unknown>
  /** Environment to read FSX_* from; defaults to process.env. */
  env?: Record<string, string | undefined>
  /** Extra option rows (backend plugins). */
  extraOptions?: readonly OptionSpec[]
}

/** Default config file path: $XDG_CONFIG_HOME/fsx/config.json. */
export function defaultConfigPath (env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config')
  return path.join(base, 'fsx', 'config.json')
}

async function readConfig (file: string, explicit: boolean, specs: readonly OptionSpec[]): Promise<Record<string, unknown> | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (!explicit && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined
    throw new FsxError('ECONFIG', `cannot read config file ${file}: ${code ?? String(err)}`, { cause: err })
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new FsxError('ECONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`)
  }
  await checkConfigDoc(doc, file, specs)
  return doc as Record<string, unknown>
}

/** Resolves every setting and records where each value came from. */
export async function resolveSettings (input: ResolveInput = {}): Promise<ResolvedSettings> {
  const env = input.env ?? process.env
  const specs = [...CORE_OPTIONS, ...(input.extraOptions ?? [])]
  const byKey = new Map(specs.map(s => [s.key, s]))

  const configFile = input.config ?? env.FSX_CONFIG ?? defaultConfigPath(env)
  const config = await readConfig(configFile, input.config !== undefined || env.FSX_CONFIG !== undefined, specs)

  let presetRef = DEFAULT_PRESET
  let presetSource: Source = 'default'
  if (input.preset !== undefined) {
    presetRef = input.preset; presetSource = 'flag'
  } else if (env.FSX_PRESET !== undefined && env.FSX_PRESET !== '') {
    presetRef = env.FSX_PRESET; presetSource = 'env'
  } else if (config && typeof config.preset === 'string') {
    presetRef = config.preset; presetSource = 'config'
  }
  const preset = await loadPreset(presetRef, specs)

  const settings: Record<string, ResolvedSetting> = {}
  for (const spec of specs) settings[spec.key] = { value: spec.default, source: 'default' }
  for (const [key, value] of Object.entries(preset.settings)) settings[key] = { value, source: 'preset' }

  if (config) {
    for (const [key, raw] of Object.entries(config)) {
      if (key === 'preset' || key === '$schema') continue
      const spec = byKey.get(key)
      if (!spec) throw new FsxError('ECONFIG', `config file ${configFile}: unknown setting "${key}"`, { hint: 'fsx tune lists every setting' })
      settings[key] = { value: parseOptionValue(spec, raw, originLabel(spec, 'config', configFile)), source: 'config' }
    }
  }

  for (const spec of specs) {
    const raw = env[envName(spec.key)]
    if (raw === undefined || raw === '') continue
    settings[spec.key] = { value: parseOptionValue(spec, raw, originLabel(spec, 'env')), source: 'env' }
  }

  for (const [key, raw] of Object.entries(input.flags ?? {})) {
    if (raw === undefined) continue
    const spec = byKey.get(key)
    if (!spec) throw new FsxError('EUSAGE', `unknown setting "${key}"`, { hint: 'fsx tune lists every setting' })
    settings[key] = { value: parseOptionValue(spec, raw, originLabel(spec, 'flag')), source: 'flag' }
  }

  return { preset, presetSource, configFile: config ? configFile : undefined, specs, settings }
}

/** Plain key → value map of a resolution, for subsystems that don't care about provenance. */
export function settingValues (r: ResolvedSettings): Record<string, number | boolean | string | undefined> {
  return Object.fromEntries(Object.entries(r.settings).map(([k, v]) => [k, v.value]))
}
