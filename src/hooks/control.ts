/**
 * The core's answer to the custom hook event `fsx:control`: one control request to the running fsx mount at
 * `mountpoint`, for plugin commands (e.g. `fsx search` from plugins/vector), which import nothing from the core at
 * run time. Resolves with the mount's response, failures it answered included ({"ok": false, "error": {code,
 * message}}); rejects when the mount cannot be asked (not an fsx mount, its process dead, no answer) with the
 * one-line error the core's own commands would print, carrying the exit code the core's mapping gives it.
 */
import { findMount, request } from '../control/client.js'
import { socketPath, type ControlRequest } from '../control/protocol.js'
import { exitCodeFor, FsxError } from '../errors.js'

export interface ControlHookOptions {
  mountpoint: string
  request: ControlRequest
  /** Deadline of the answer, ms (default 10 s). */
  timeoutMs?: number
}

export default async function control (opts: ControlHookOptions): Promise<Record<string, unknown>> {
  try {
    const rec = await findMount(opts.mountpoint)
    return await request(socketPath(rec.mountpoint), opts.request, opts.timeoutMs, true)
  } catch (err) {
    const e = err as FsxError
    throw new FsxError(e.code ?? 'EIO', e.message, { hint: e.hint, exitCode: exitCodeFor(err) })
  }
}
