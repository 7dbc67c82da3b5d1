/**
 * The `fsx:mount-extensions` hook: oclif runs it when the core asks plugins for their mount extensions
 * (`config.runHook('fsx:mount-extensions', { register })`); this plugin registers one definition, `vector`.
 * NB: importing ../index.js starts nothing: the index engine's thread starts in `start`, for mounts that want it.
 */
import type { MountExtensionHookOptions } from '../../../../src/extension/types.js'
import { vectorExtension } from '../index.js'

export default async function registerVectorExtension (this: unknown, opts: MountExtensionHookOptions & { config?: unknown }): Promise<void> {
  opts.register(vectorExtension)
}
