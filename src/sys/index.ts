/**
 * Picks the Sys implementation for the running runtime (Deno → Deno.dlopen, Node → koffi). Loaded once, lazily.
 * Resolves undefined where neither can load (not Linux, koffi missing, Deno without --allow-ffi): callers then
 * fall back (see their own notes) or report what is missing.
 */
import type { Sys } from './types.js'

let loaded: Promise<Sys | undefined> | undefined
let reason: string | undefined

/** True when running under Deno. */
export const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'

/** The Sys of this runtime, or undefined (see `sysUnavailableReason`). */
export async function loadSys (): Promise<Sys | undefined> {
  loaded ??= (async () => {
    if (process.platform !== 'linux') {
      reason = `system calls through FFI are only wired for Linux (this is ${process.platform})`
      return undefined
    }
    try {
      if (isDeno) return (await import('./deno.js')).createDenoSys()
      return (await import('./node.js')).createNodeSys()
    } catch (err) {
      reason = (err as Error).message.split('\n')[0]
      return undefined
    }
  })()
  return await loaded
}

/** Why `loadSys` resolved undefined, for one log line. */
export function sysUnavailableReason (): string | undefined {
  return reason
}

export * from './types.js'
