/**
 * The mount-extension registry: definitions arrive from plugins through the custom oclif hook event
 * `fsx:mount-extensions` (each plugin's package.json maps that event to a module that calls `register`), the way
 * backends arrive through `fsx:backends`. The registry knows nothing of oclif: the CLI passes in a `runHook`.
 */
import { FsxError } from '../errors.js'
import type { OptionSpec } from '../config/options.js'
import type { MountExtensionDefinition } from './types.js'

/** The hook event name plugins implement. */
export const MOUNT_EXTENSIONS_HOOK = 'fsx:mount-extensions'

export class ExtensionRegistry {
  private readonly defs = new Map<string, MountExtensionDefinition>()

  register (def: MountExtensionDefinition): void {
    if (!def || typeof def.name !== 'string' || !/^[a-z][a-z0-9]*$/.test(def.name) || typeof def.start !== 'function') {
      throw new FsxError('ECONFIG', 'a plugin registered an invalid mount extension (needs a lowercase name and start)')
    }
    if (!this.defs.has(def.name)) this.defs.set(def.name, def)
  }

  definitions (): MountExtensionDefinition[] {
    return [...this.defs.values()]
  }

  /** Option rows contributed by every registered extension. */
  options (): OptionSpec[] {
    return this.definitions().flatMap(d => d.options ?? [])
  }
}

/** Fills a registry by running the `fsx:mount-extensions` hook through the given oclif-like runner. */
export async function loadExtensions (runHook: (event: string, opts: Record<string, unknown>) => Promise<{ failures: Array<{ plugin: { name: string }, error: Error }> }>): Promise<ExtensionRegistry> {
  const registry = new ExtensionRegistry()
  const result = await runHook(MOUNT_EXTENSIONS_HOOK, { register: (d: MountExtensionDefinition) => registry.register(d) })
  for (const f of result.failures ?? []) {
    process.emitWarning(`mount extension plugin ${f.plugin.name} failed to load: ${f.error.message}`)
  }
  return registry
}
