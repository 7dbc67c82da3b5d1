/**
 * @fsx/sdk: what a backend plugin for fsx needs, importable by package name from outside the fsx repository.
 *
 *   import { API_VERSION, defineBackend, type Backend } from '@fsx/sdk'
 *   import { runConformance } from '@fsx/sdk/conformance'   // the backend conformance suite
 *
 * The contract itself (./backend.ts) is types only. At run time this package holds the API version, an identity
 * helper that type-checks a definition, and the conformance suite; it depends on nothing, so a plugin may list
 * it under `dependencies` without weight. The guide is docs/PLUGINS.md in the fsx repository.
 */
import type { BackendDefinition } from './backend.js'

export { API_VERSION } from './version.js'
export type * from './backend.js'
export type { OptionKind, OptionSpec } from './options.js'
export type { PluginSys } from './sys.js'

/**
 * Returns `def` unchanged: a plugin writes `export default defineBackend({ apiVersion: 1, … })` and gets its
 * definition checked against the contract, the option type inferred for `validate` and `create`.
 */
export function defineBackend<Options = Record<string, unknown>> (def: BackendDefinition<Options>): BackendDefinition<Options> {
  return def
}
