/**
 * One error class for all of fsx, shaped like Node's own system errors (`code`, `errno`, `path`, `syscall`).
 *
 * - Backends and the VFS throw errors whose `code` is an errno name; `toErrno()` (src/fuse/errno.ts) turns any of
 *   them into the negative errno the kernel gets. Nothing else crosses the FUSE edge.
 * - The CLI turns any error into one line and a stable exit code (`exitCodeFor`). Messages never hold secrets:
 *   sources are printed through `Backend.description` or `redactSource()`.
 */
import { constants as osConstants } from 'node:os'

const ERRNOS = osConstants.errno as Record<string, number>

/** Codes that are not errno names: user-facing configuration and usage problems. */
export type UsageCode = 'EUSAGE' | 'ECONFIG' | 'ENOFUSE' | 'ENOLIBFUSE' | 'EMOUNTED' | 'ESTALE_MOUNT' | 'EBACKEND'

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

  constructor (code: string, message: string, extra: { path?: string; op?: string; cause?: unknown; hint?: string } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
    this.name = 'FsxError'
    this.code = code
    this.errno = ERRNOS[code]
    this.path = extra.path
    this.op = extra.op
    this.hint = extra.hint
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

export function exitCodeFor (err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code
  switch (code) {
    case 'EUSAGE': return EXIT.usage
    case 'ECONFIG': return EXIT.config
    case 'ENOFUSE': case 'ENOLIBFUSE': case 'EMOUNTED': case 'ESTALE_MOUNT': return EXIT.environment
    case 'EBACKEND': return EXIT.backend
    default: return EXIT.failure
  }
}

/** Removes userinfo passwords and query secrets from a source string before it is printed or stored. */
export function redactSource (source: string): string {
  return source
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*):([^@/]*)@/i, '$1$2:***@')
    .replace(/([?&](?:password|secret|token|key|sig|signature|x-amz-signature|x-amz-credential)=)[^&]*/gi, '$1***')
}
