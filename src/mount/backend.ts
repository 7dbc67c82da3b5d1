/**
 * Backend creation as the CLI needs it: every failure gets its error kind, the same for every scheme, so the exit
 * code follows (src/errors.ts):
 *
 * - `validateSource`: a source no backend serves, or one its backend's `validate` refuses (a malformed URL, a bad
 *   port, a bucket name S3 cannot have, a password in the URL), and plugin settings it refuses → ECONFIG (exit 3).
 *   No network, so the `--daemon` parent runs it before it starts a child.
 * - `createBackend`: validates, then whatever `create()` throws (connection refused, unknown host key, login
 *   refused, missing bucket or directory, unreachable endpoint, timeout) → EBACKEND (exit 5), message unchanged.
 *
 * A plugin that throws ECONFIG or EUSAGE itself keeps that kind (`withKind`).
 */
import { withKind } from '../errors.js'
import type { BackendRegistry } from '../backend/registry.js'
import type { Backend, SourceUrl } from '../backend/types.js'

/** Throws ECONFIG unless a backend serves `source` and accepts it with these settings. */
export function validateSource (registry: BackendRegistry, source: SourceUrl, options: Record<string, unknown>): void {
  const def = registry.forSource(source)
  try {
    def.validate?.(source, options)
  } catch (err) {
    throw withKind('ECONFIG', err)
  }
}

/** Validates (ECONFIG), then creates and connects the backend (its failures: EBACKEND). */
export async function createBackend (registry: BackendRegistry, source: SourceUrl, options: Record<string, unknown>): Promise<Backend> {
  validateSource(registry, source, options)
  try {
    return await registry.create(source, options)
  } catch (err) {
    throw withKind('EBACKEND', err)
  }
}
