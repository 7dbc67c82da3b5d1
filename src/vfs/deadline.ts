/**
 * The per-request deadline: every request a FUSE engine hands the VFS settles by its deadline, whatever the backend
 * does. One deadline per request (`opTimeout`), counted from the moment the engine calls the VFS, not one per
 * backend attempt added up.
 *
 * - The VFS answers a little before `opTimeoutMs` (DEADLINE_MARGIN), so its answer, not the engine's own timer,
 *   reaches the kernel: ETIMEDOUT, unless something better came first. Lookups that wait on the backend give up
 *   earlier still (health.ts, `lookupWaitMs`), so a request with a cached answer gets that answer, not ETIMEDOUT.
 * - The work behind a request that timed out is not cancelled (a backend call cannot be taken back); what it
 *   returns late is dropped, except what must not leak: a file handle opened for a request that timed out is
 *   released (`late`).
 * - Engine-neutral: fuse-native and the kernel-protocol engine both call the same wrapped Vfs methods and need pass
 *   nothing; `opTimeoutMs` comes from the mount's settings.
 */
import { FsxError } from '../errors.js'
import { realTimers, type Timers } from './health.js'

/** How long before `opTimeoutMs` the VFS answers (1 s, or 1/20 of short deadlines), so it answers first. */
export function deadlineMargin (opTimeoutMs: number): number {
  return Math.min(1000, Math.floor(opTimeoutMs / 20))
}

/** Runs requests against one deadline each. */
export class RequestDeadline {
  /** Time a request may take before it is answered ETIMEDOUT, ms (0: no deadline). */
  readonly ms: number

  constructor (opTimeoutMs: number, private readonly timers: Timers = realTimers) {
    this.ms = opTimeoutMs > 0 ? Math.max(1, opTimeoutMs - deadlineMargin(opTimeoutMs)) : 0
  }

  /**
   * Settles with `run()`'s outcome, or rejects ETIMEDOUT once the deadline passes first; a value `run()` resolves
   * with after that goes to `late`.
   */
  async run<T> (op: string, path: string | undefined, run: () => Promise<T>, late?: (v: T) => void): Promise<T> {
    if (this.ms <= 0) return await run()
    return await new Promise<T>((resolve, reject) => {
      let done = false
      const timer = this.timers.setTimeout(() => {
        done = true
        reject(new FsxError('ETIMEDOUT', `${op}${path === undefined ? '' : ' ' + path}: no answer within the ${Math.round(this.ms / 100) / 10}s deadline (opTimeout)`, { op, path }))
      }, this.ms)
      let p: Promise<T>
      try {
        p = Promise.resolve(run())
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then(v => {
        if (done) { late?.(v); return }
        done = true
        this.timers.clearTimeout(timer)
        resolve(v)
      }, err => {
        if (done) return
        done = true
        this.timers.clearTimeout(timer)
        reject(err)
      })
    })
  }
}

/**
 * Replaces each method of `target` named in `ops` by one that runs it under `deadline` (an own property, so the
 * engine, and the VFS calling itself, go through it). `late` names what to do with a late result, per method.
 */
export function applyDeadline (target: object, ops: readonly string[], deadline: RequestDeadline, late: Record<string, (v: any) => void> = {}): void {
  if (deadline.ms <= 0) return
  const t = target as Record<string, unknown>
  for (const op of ops) {
    const fn = t[op]
    if (typeof fn !== 'function') throw new Error(`applyDeadline: ${op} is not a method`)
    const call = fn as (...a: unknown[]) => Promise<unknown>
    const onLate = late[op]
    Object.defineProperty(target, op, {
      configurable: true,
      writable: true,
      value: async (...args: unknown[]) => await deadline.run(op, typeof args[0] === 'string' ? args[0] : undefined, async () => await call.apply(target, args), onLate)
    })
  }
}
