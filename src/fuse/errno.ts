/**
 * The one mapping from any error to the negative errno the kernel gets. Errors with a known errno `code` map to it;
 * anything else (a bug, an unexpected library error) becomes EIO and is reported once through `onUnexpected`.
 */
import { errnoOf, isErrnoCode } from '../errors.js'

/** Negative errno for the FUSE reply. */
export function toErrno (err: unknown, onUnexpected?: (err: unknown) => void): number {
  const code = (err as { code?: unknown } | null)?.code
  if (!isErrnoCode(code) && onUnexpected) onUnexpected(err)
  const n = errnoOf(err)
  return n === 0 ? -5 : -n
}
