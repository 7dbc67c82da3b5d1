/**
 * One error class for all of fsx, shaped like Node's own system errors (`code`, `errno`, `path`, `syscall`).
 *
 * - Backends and the VFS throw errors whose `code` is an errno name; `toErrno()` (src/fuse/errno.ts) turns any of
 *   them into the negative errno the kernel gets. Nothing else crosses the FUSE edge.
 * - The CLI turns any error into one line and a stable exit code (`exitCodeFor`, the one mapping from error kind to
 *   exit code, the same in the foreground and with --daemon). Messages never hold secrets: sources are printed
 *   through `Backend.description` or `redactSource()`.
 *
 * Exit codes (README "Errors"):
 *   1 general failure: anything not classified below (an unexpected error, a failed unmount, a control request)
 *   2 usage: unknown flag, missing argument, unknown setting name on the command line          (EUSAGE)
 *   3 configuration: a bad preset, setting, value out of range, config file, or malformed SOURCE of any scheme (ECONFIG)
 *   4 environment: no /dev/fuse or libfuse2; the mountpoint missing, not a directory, already mounted, holding a
 *     dead mount that cannot be cleared; for unmount, nothing mounted there or a mount that is not fsx's
 *   5 backend: the backend refused or failed while it was created or connected: connection refused, unknown or
 *     changed host key, login refused, missing bucket or source directory, unreachable endpoint    (EBACKEND)
 */
import { constants as osConstants } from 'node:os'

const ERRNOS = osConstants.errno as Record<string, number>

/** Codes that are not errno names: user-facing configuration and usage problems. */
export type UsageCode = 'EUSAGE' | 'ECONFIG' | 'ENOFUSE' | 'ENOLIBFUSE' | 'EMOUNTED' | 'ESTALE_MOUNT' | 'EMOUNTPOINT' |
  'ENOTMOUNTED' | 'ENOTFSX' | 'EBACKEND'

export class FsxError extends Error {
  /** errno name (ENOENT…) or a UsageCode. */
  readonly code: string
  /** Positive errno number when `code` is an errno name, else undefined. */
  readonly errno?: number
  readonly path?: string
  /** The operation that failed, e.g. "rename" (Node calls this `syscall`). */
  readonly op?: string
  /** A hint shown after the message: how to fix it. */
  readonly hint?: string
  /**
   * Only for an error relayed from another fsx process (the `--daemon` child): the exit code that process chose,
   * which `exitCodeFor` then reports unchanged.
   */
  readonly exitCode?: number

  constructor (code: string, message: string, extra: { path?: string; op?: string; cause?: unknown; hint?: string; exitCode?: number } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
    this.name = 'FsxError'
    this.code = code
    this.errno = ERRNOS[code]
    this.path = extra.path
    this.op = extra.op
    this.hint = extra.hint
    this.exitCode = extra.exitCode
  }

  get syscall (): string | undefined { return this.op }
}

/** The one factory: `fsxError('ENOENT', 'no such file', {path, op})`. Also handed to plugins as `kit.fsxError`. */
export function fsxError (code: string, message: string, extra: { path?: string; op?: string; cause?: unknown; hint?: string } = {}): FsxError {
  return new FsxError(code, message, extra)
}

/** True when `code` names a POSIX errno this platform knows. */
export function isErrnoCode (code: unknown): code is string {
  return typeof code === 'string' && ERRNOS[code] !== undefined
}

/** Positive errno for an error-like value; EIO when it carries no known code. */
export function errnoOf (err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code
  if (isErrnoCode(code)) return ERRNOS[code]
  const n = (err as { errno?: unknown } | null)?.errno
  if (typeof n === 'number' && n !== 0) return Math.abs(n)
  return ERRNOS.EIO
}

/** Exit codes of the CLI: stable, documented in README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  environment: 4,
  backend: 5
} as const

/** Codes whose exit code is "environment" (4): the machine or the mountpoint is not in the state the command needs. */
const ENVIRONMENT_CODES = new Set(['ENOFUSE', 'ENOLIBFUSE', 'EMOUNTED', 'ESTALE_MOUNT', 'EMOUNTPOINT', 'ENOTMOUNTED', 'ENOTFSX'])

/** The exit code for an error: the one mapping, by the error's `code` (see the table at the top of this file). */
export function exitCodeFor (err: unknown): number {
  if (err instanceof FsxError && err.exitCode !== undefined) return err.exitCode
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'EUSAGE') return EXIT.usage
  if (code === 'ECONFIG') return EXIT.config
  if (typeof code === 'string' && ENVIRONMENT_CODES.has(code)) return EXIT.environment
  if (code === 'EBACKEND') return EXIT.backend
  return EXIT.failure
}

/**
 * Re-labels an error with a CLI error kind (ECONFIG, EBACKEND) while keeping its message and hint; the original
 * stays as `cause` (its errno code, e.g. ENOENT for a missing bucket, is still there for FSX_DEBUG). An error that
 * already carries a usage or configuration kind keeps it: a plugin may know better than where it was caught.
 */
export function withKind (kind: 'ECONFIG' | 'EBACKEND', err: unknown): FsxError {
  const code = (err as { code?: unknown } | null)?.code
  const keep: string = code === 'EUSAGE' || code === 'ECONFIG' || code === kind ? code as string : kind
  if (err instanceof FsxError && err.code === keep) return err
  const message = err instanceof Error ? err.message : String(err)
  const hint = (err as { hint?: unknown } | null)?.hint
  return new FsxError(keep, message, { cause: err, hint: typeof hint === 'string' ? hint : undefined })
}

/** Removes userinfo passwords and query secrets from a source string before it is printed or stored. */
export function redactSource (source: string): string {
  return source
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*):([^@/]*)@/i, '$1$2:***@')
    .replace(/([?&](?:password|secret|token|key|sig|signature|x-amz-signature|x-amz-credential)=)[^&]*/gi, '$1***')
}
