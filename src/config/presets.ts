/**
 * Presets: JSON files holding only the settings they change, plus a description (presets/*.json).
 * `--preset` takes a built-in name or a path to such a file. A file is validated against presets/schema.json (its
 * shape) and every value against the options table (its range) on load, so a bad preset fails before anything is
 * mounted, with one line (ECONFIG, exit 3).
 */
import { readFile, readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { FsxError } from '../errors.js'
import type { OptionSpec } from './options.js'
import { originLabel, parseOptionValue } from './options.js'
import { checkPresetDoc } from './schema.js'

/** The presets/ folder shipped with fsx. */
export const PRESETS_DIR = fileURLToPath(new URL('../../presets/', import.meta.url))

/** The preset used when none is named anywhere. */
export const DEFAULT_PRESET = 'balanced'

export interface Preset {
  name: string
  description: string
  /** Where it was read from. */
  file: string
  /** Raw values as written in the file (strings with units or numbers). */
  raw: Record<string, unknown>
  /** Parsed values in base units, keyed by option key. */
  settings: Record<string, number | boolean | string>
}

/** Names of the built-in presets, sorted. */
export async function builtinPresetNames (): Promise<string[]> {
  const files = await readdir(PRESETS_DIR)
  return files.filter(f => f.endsWith('.json') && f !== 'schema.json').map(f => f.slice(0, -5)).sort()
}

function looksLikePath (ref: string): boolean {
  return ref.includes('/') || ref.endsWith('.json')
}

/** Loads a preset by built-in name or file path and validates every value against `specs`. */
export async function loadPreset (ref: string, specs: readonly OptionSpec[]): Promise<Preset> {
  let file: string
  let name: string
  const builtin = !looksLikePath(ref)
  if (!builtin) {
    file = path.resolve(ref)
    name = path.basename(file, '.json')
  } else {
    const names = await builtinPresetNames()
    if (!names.includes(ref)) {
      throw new FsxError('ECONFIG', `unknown preset "${ref}"`, {
        hint: `choose one of ${names.join(', ')}, or give a path to a preset JSON file (fsx presets lists them)`
      })
    }
    file = path.join(PRESETS_DIR, `${ref}.json`)
    name = ref
  }
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new FsxError('ECONFIG', `cannot read preset file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new FsxError('ECONFIG', `preset file ${file} is not valid JSON: ${(err as Error).message}`)
  }
  // NB: the built-in presets ship with the schema and are checked against it by the test suite
  // (test/unit/presets.test.ts); compiling the schema for them would slow every command down for nothing.
  // Their values still go through parseOptionValue below, like any preset's.
  if (builtin) {
    if (typeof doc !== 'object' || doc === null || typeof (doc as { settings?: unknown }).settings !== 'object') {
      throw new FsxError('ECONFIG', `built-in preset file ${file} is damaged`, { hint: 'reinstall fsx' })
    }
  } else {
    await checkPresetDoc(doc, file, specs)
  }
  const obj = doc as { description: string; settings: Record<string, unknown> }
  const byKey = new Map(specs.map(s => [s.key, s]))
  const settings: Record<string, number | boolean | string> = {}
  const shownAs = looksLikePath(ref) ? file : name
  for (const [key, value] of Object.entries(obj.settings)) {
    // NB: the shipped schema knows the bundled plugins' rows; a caller that passes only the core's does not.
    const spec = byKey.get(key)
    if (!spec) throw new FsxError('ECONFIG', `preset file ${file}: unknown setting "${key}"`, { hint: 'fsx tune lists every setting' })
    settings[key] = parseOptionValue(spec, value, originLabel(spec, 'preset', shownAs))
  }
  return { name, description: obj.description, file, raw: obj.settings, settings }
}
