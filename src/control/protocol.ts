/**
 * The control protocol between `fsx` commands and a running mount: one JSON request per line over the mount's unix
 * socket, one JSON response per line. Requests: {"cmd": "ping" | "stats" | …}; responses: {"ok": true, …} or
 * {"ok": false, "error": {"code", "message"}}.
 */
import path from 'node:path'
import { mountId, runtimeDir } from '../mount/runtime.js'

export interface ControlRequest { cmd: string, [k: string]: unknown }
export type ControlResponse = { ok: true, [k: string]: unknown } | { ok: false, error: { code: string, message: string } }

/** The socket path of the mount at `mountpoint`. */
export function socketPath (mountpoint: string): string {
  return path.join(runtimeDir(), `${mountId(mountpoint)}.sock`)
}
