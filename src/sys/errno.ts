/** errno numbers to names and the error shape every Sys implementation throws (see ./types.ts). */
import { constants } from 'node:os'
import type { SysError } from './types.js'

const NAMES = new Map<number, string>()
for (const [name, n] of Object.entries(constants.errno as Record<string, number>)) {
  // Aliases share numbers (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK): keep the first, canonical name.
  if (!NAMES.has(n)) NAMES.set(n, name)
}

/** errno name for a positive errno number ("E<n>" when unknown). */
export function errnoName (n: number): string {
  return NAMES.get(n) ?? `E${n}`
}

/** Builds the error a failed system call throws. */
export function sysError (syscall: string, errno: number): SysError {
  const code = errnoName(errno)
  const err = new Error(`${syscall}: ${code}`) as SysError
  err.code = code
  err.errno = errno
  err.syscall = syscall
  return err
}
