/**
 * The `fsx:backends` hook: oclif runs it when the core asks plugins for their backends
 * (`config.runHook('fsx:backends', { register })`); this plugin registers one definition, `local`.
 */
import type { BackendHookOptions } from '@fsx/sdk'
import { localBackend } from '../index.js'

export default async function registerLocalBackend (this: unknown, opts: BackendHookOptions & { config?: unknown }): Promise<void> {
  opts.register(localBackend)
}
