/**
 * The `fsx:backends` hook: oclif runs it when the core asks plugins for their backends
 * (`config.runHook('fsx:backends', { register })`); this plugin registers one definition, `s3`.
 * NB: importing ../index.js loads no SDK: @aws-sdk/* is imported inside `connect` only.
 */
import type { BackendHookOptions } from '@fsx/sdk'
import { s3Backend } from '../index.js'

export default async function registerS3Backend (this: unknown, opts: BackendHookOptions & { config?: unknown }): Promise<void> {
  opts.register(s3Backend)
}
