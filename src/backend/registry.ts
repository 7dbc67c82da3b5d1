/**
 * The backend registry: definitions arrive from plugins through the custom oclif hook event `fsx:backends`
 * (each plugin's package.json maps that event to a module that calls `register`). Built-in and user-installed
 * plugins (`fsx plugins install`) are found the same way. The registry itself knows nothing of oclif: the CLI
 * passes in a `runHook` function.
 */
import { FsxError, fsxError, redactSource } from '../errors.js'
import type { Backend, BackendDefinition, BackendKit, SourceUrl } from './types.js'
import type { OptionSpec } from '../config/options.js'
import { fromBytes, hasEscapes, toBytes } from './names.js'
import { loadSys, sysUnavailableReason } from '../sys/index.js'
import { API_VERSION } from '@fsx/sdk'

/** The hook event name plugins implement. */
export const BACKENDS_HOOK = 'fsx:backends'

/** The kit without system calls (enough for every backend but local's confinement fast path). */
export const kit: BackendKit = { fsxError, names: { toBytes, fromBytes, hasEscapes } }

/** The full kit: `kit` plus the runtime's system calls (src/sys), loaded once. */
export async function fullKit (): Promise<BackendKit> {
  const sys = await loadSys()
  return { ...kit, sys, sysUnavailable: sys === undefined ? sysUnavailableReason() : undefined }
}

export class BackendRegistry {
  private readonly defs = new Map<string, BackendDefinition<any>>()
  private readonly byScheme = new Map<string, BackendDefinition<any>>()
  /** One line per definition refused for its plugin API version (printed by the CLI, see `loadBackends`). */
  readonly refused: string[] = []

  /**
   * Adds a definition. One written for another plugin API (`apiVersion`, see @fsx/sdk) is refused before any of
   * its code runs: it is recorded in `refused` with the reason, and its schemes stay unserved.
   */
  register (def: BackendDefinition<any>): void {
    if (!def || typeof def.name !== 'string' || typeof def.create !== 'function' || !Array.isArray(def.schemes)) {
      throw new FsxError('EBACKEND', 'a plugin registered an invalid backend definition (needs name, schemes, create)')
    }
    const version: unknown = (def as { apiVersion?: unknown }).apiVersion
    if (version !== API_VERSION) {
      const built = version === undefined ? 'declares no plugin API version (apiVersion)' : `is built for plugin API ${String(version)}`
      this.refused.push(`backend plugin "${def.name}" (${def.schemes.map(s => `${s}:`).join(' ')}) ${built}; this fsx speaks API ${API_VERSION}, so it is not loaded (install a release of the plugin made for fsx plugin API ${API_VERSION})`)
      return
    }
    if (this.defs.has(def.name)) return
    this.defs.set(def.name, def)
    for (const s of def.schemes) if (!this.byScheme.has(s.toLowerCase())) this.byScheme.set(s.toLowerCase(), def)
  }

  definitions (): BackendDefinition<any>[] {
    return [...this.defs.values()]
  }

  /** Option rows contributed by every registered backend. */
  options (): OptionSpec[] {
    return this.definitions().flatMap(d => d.options ?? [])
  }

  forSource (source: SourceUrl): BackendDefinition<any> {
    const def = this.byScheme.get(source.scheme)
    if (!def) {
      const known = [...this.byScheme.keys()].sort().join(', ') || 'none'
      throw new FsxError('ECONFIG', `no backend serves "${source.scheme}:" sources (${redactSource(source.raw)})`, {
        hint: `installed schemes: ${known}; add one with: fsx plugins install <plugin>`
      })
    }
    return def
  }

  /** Validates the source for its backend, then creates the backend. */
  async create (source: SourceUrl, options: Record<string, unknown>): Promise<Backend> {
    const def = this.forSource(source)
    def.validate?.(source, options)
    return await def.create(source, options, await fullKit())
  }
}

/** Fills a registry by running the `fsx:backends` hook through the given oclif-like runner. */
export async function loadBackends (runHook: (event: string, opts: Record<string, unknown>) => Promise<{ failures: Array<{ plugin: { name: string }, error: Error }> }>): Promise<BackendRegistry> {
  const registry = new BackendRegistry()
  const result = await runHook(BACKENDS_HOOK, { register: (d: BackendDefinition<any>) => registry.register(d) })
  // One line each on stderr; the command goes on with the backends that did load.
  for (const f of result.failures ?? []) {
    process.stderr.write(`fsx: backend plugin ${f.plugin.name} failed to load: ${f.error.message.split('\n')[0]}\n`)
  }
  for (const line of registry.refused) process.stderr.write(`fsx: ${line}\n`)
  return registry
}
