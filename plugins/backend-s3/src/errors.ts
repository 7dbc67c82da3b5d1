/**
 * S3 and network failures → errno codes, in one exhaustive place (the plugin's edge). Pure.
 *
 *   404, NoSuchKey, NotFound, NoSuchBucket          → ENOENT
 *   403, AccessDenied, bad keys/signature, no creds → EACCES
 *   MetadataTooLarge (user metadata over 2 KB)      → E2BIG   (setxattr of too much)
 *   EntityTooLarge                                  → EFBIG
 *   KeyTooLongError                                 → ENAMETOOLONG
 *   InvalidObjectState (archived: Glacier)          → EIO, with the reason
 *   501 NotImplemented                              → ENOTSUP
 *   no answer in time (ours, the SDK's)             → ETIMEDOUT
 *   refused, reset, unreachable connections         → ECONNREFUSED, ECONNRESET, EHOSTUNREACH… (after retries)
 *   everything else, after the SDK's retries        → EIO   (5xx, throttling…: answers, if bad ones)
 *
 * The link-level codes (ETIMEDOUT, ECONN*, EHOSTUNREACH…) tell the core that S3 did not answer at all, which makes
 * it stop waiting for S3 until a probe sees it back (src/vfs/health.ts); the application gets EIO for them.
 *
 * Messages name the operation and the path, never credentials or the request's signature.
 */

export type MakeError = (code: string, message: string, extra?: { path?: string; op?: string; cause?: unknown }) => Error

interface SdkErrorLike {
  name?: string
  code?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number; attempts?: number }
}

/** HTTP status of an SDK error, when it came from a response. */
export function statusOf (err: unknown): number | undefined {
  return (err as SdkErrorLike | null)?.$metadata?.httpStatusCode
}

/** S3 error code (NoSuchKey…), or the error's name. */
export function s3CodeOf (err: unknown): string {
  const e = err as SdkErrorLike | null
  return e?.Code ?? e?.name ?? e?.code ?? 'Error'
}

/** True for "no such object" answers (404 from HEAD/GET). */
export function isNotFound (err: unknown): boolean {
  const code = s3CodeOf(err)
  return statusOf(err) === 404 || code === 'NoSuchKey' || code === 'NotFound'
}

/** Node's network error codes → the errno each stands for (a name that cannot be resolved: unreachable). */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'ECONNREFUSED',
  ECONNRESET: 'ECONNRESET',
  EPIPE: 'EPIPE',
  ENOTFOUND: 'EHOSTUNREACH',
  EAI_AGAIN: 'EHOSTUNREACH',
  EHOSTUNREACH: 'EHOSTUNREACH',
  ENETUNREACH: 'ENETUNREACH',
  ECONNABORTED: 'ECONNABORTED',
  ERR_STREAM_PREMATURE_CLOSE: 'ECONNRESET'
}

/**
 * Name of the error a request attempt that got no answer within s3Timeout becomes (see `noRetryOnTimeout` in
 * index.ts): not one the SDK's retry strategy retries.
 */
export const NO_ANSWER = 'S3NoAnswer'

/** The errno code for an S3/SDK/network error. */
export function errnoCodeOf (err: unknown): string {
  const e = err as SdkErrorLike | null
  const status = statusOf(err)
  const code = s3CodeOf(err)
  switch (code) {
    case 'NoSuchKey': case 'NotFound': case 'NoSuchBucket': case 'NoSuchUpload': return 'ENOENT'
    case 'AccessDenied': case 'Forbidden': case 'InvalidAccessKeyId': case 'SignatureDoesNotMatch':
    case 'ExpiredToken': case 'InvalidToken': case 'CredentialsProviderError': case 'AllAccessDisabled': return 'EACCES'
    case 'MetadataTooLarge': return 'E2BIG'
    case 'EntityTooLarge': return 'EFBIG'
    case 'KeyTooLongError': return 'ENAMETOOLONG'
    case 'NotImplemented': return 'ENOTSUP'
    case NO_ANSWER: case 'TimeoutError': case 'AbortError': case 'RequestTimeout': case 'RequestTimeoutException': return 'ETIMEDOUT'
  }
  if (e?.code === 'ETIMEDOUT' || e?.code === 'ESOCKETTIMEDOUT') return 'ETIMEDOUT'
  if (status === 404) return 'ENOENT'
  if (status === 403 || status === 401) return 'EACCES'
  if (status === 501) return 'ENOTSUP'
  if (status === undefined && e?.code !== undefined && NETWORK[e.code] !== undefined) return NETWORK[e.code]
  return 'EIO'
}

/** True when `err` says S3 did not answer at all (no answer in time, or no connection), as opposed to an answer. */
export function isLinkError (err: unknown): boolean {
  const code = errnoCodeOf(err)
  return code === 'ETIMEDOUT' || Object.values(NETWORK).includes(code)
}

/** One line saying what went wrong, for the message (status and S3 code, or the network error). */
export function reasonOf (err: unknown): string {
  const e = err as SdkErrorLike | null
  const status = statusOf(err)
  const code = s3CodeOf(err)
  if (code === 'CredentialsProviderError') {
    return 'no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an instance role)'
  }
  const attempts = e?.$metadata?.attempts
  const tries = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : ''
  if (status !== undefined) return `S3 answered ${status} ${code}${tries}`
  const msg = typeof e?.message === 'string' ? e.message.split('\n')[0].slice(0, 200) : ''
  return `${code}${msg !== '' && msg !== code ? ': ' + msg : ''}${tries}`
}

/** Wraps an S3/SDK/network error as an fsx error for `op` on `path`. Errors that already carry an errno pass through. */
export function translate (err: unknown, op: string, path: string, makeError: MakeError): Error {
  const own = (err as { code?: unknown } | null)?.code
  // NB: a network code that stands for another errno (ENOTFOUND: EHOSTUNREACH) is translated, not passed through.
  if (typeof own === 'string' && /^E[A-Z0-9]+$/.test(own) && (NETWORK[own] ?? own) === own && (err as { $metadata?: unknown }).$metadata === undefined) {
    return err as Error
  }
  return makeError(errnoCodeOf(err), `${op} ${path}: ${reasonOf(err)}`, { path, op, cause: err })
}
