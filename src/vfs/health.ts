/**
 * Backend health: one shared verdict on whether the backend answers, and what the VFS does while it does not.
 *
 * Why: a frozen server does not refuse requests, it swallows them. Without a shared verdict every request waits out
 * the backend's own deadline, and a FUSE request that makes several backend calls (a lookup, then an open, then a
 * read) waits for their sum, even when the VFS holds a cached answer. So:
 *
 * - ok → suspect: a backend call fails with a link-level error (LINK_DOWN: a timeout, a refused, reset or unreachable
 *   connection), or a lookup stays unanswered for `lookupWaitMs` (a backstop for a backend whose own deadlines do not
 *   fire). A failure of a call that started before the last change of state does not count (it may be a request
 *   that was lost while the backend was down, timing out after it came back).
 * - suspect → failing or ok: a probe (`Backend.ping`: one cheap request, bounded like a lookup) runs at once, and
 *   calls wait for its verdict: one request lost on a busy link must not fail every other request. A backend
 *   without `ping` goes straight to failing.
 * - failing → ok: any answer from the backend: a result, or an error that is its answer (ENOENT, EACCES, an EIO it
 *   reported). Only link-level errors say "no answer".
 * - While failing, with a backend that can be probed (remote backends):
 *   - no call is sent: each fails at once with EIO, so the VFS answers from its caches (stale-if-error) or fails at
 *     once, instead of every request waiting for the backend's deadline;
 *   - lookups in flight are abandoned: they fail with EIO now (their late answers still count as answers), so the
 *     requests waiting for them get their cached answer at once; changes in flight are left to finish or fail;
 *   - the probe runs again every `probeIntervalMs`, never two at a time; its first answer ends the failing state.
 *     No user request waits for it.
 * - With such a backend, link-level errors leave as EIO (message and `cause` keep what happened): to an application
 *   a backend that cannot be reached is an I/O error. ETIMEDOUT stays for fsx's own request deadline (deadline.ts).
 *
 * Backends without `ping` (local) get the verdict, for `fsx stats`, but no fail-fast, no abandoning and no probe:
 * their errors are answers about one file, not news about a link.
 *
 * Invariants:
 * - Every promise returned here settles: a lookup or probe of a remote backend by its backstop (when set), so a call
 *   waiting for a suspect backend's verdict too; everything else when the backend settles it (the VFS's request
 *   deadline bounds what an application waits for).
 * - The probe timer runs only while failing, and never after `close()`.
 */
import { FsxError } from '../errors.js'
import type { Backend, BackendFileHandle } from '../backend/types.js'

/** Errors that say the link to the backend failed (no answer came), as opposed to an answer from it. */
export const LINK_DOWN: ReadonlySet<string> = new Set([
  'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTCONN', 'ESHUTDOWN', 'EPIPE'
])

/** Default gap between two probes of a failing backend: a restarted server is noticed within about a second. */
export const PROBE_INTERVAL_MS = 1000

/** The clock and timers health and deadlines run on (tests pass fake ones). */
export interface Timers {
  now (): number
  setTimeout (fn: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

/** Real timers; they never keep the process alive on their own. */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    ;(t as { unref?: () => void }).unref?.()
    return t
  },
  clearTimeout: h => clearTimeout(h as ReturnType<typeof setTimeout>)
}

const codeOf = (err: unknown): string | undefined => {
  const c = (err as { code?: unknown } | null | undefined)?.code
  return typeof c === 'string' ? c : undefined
}

/** True when `err` says no answer came from the backend. */
export function isLinkDown (err: unknown): boolean {
  const c = codeOf(err)
  return c !== undefined && LINK_DOWN.has(c)
}

export interface HealthOptions {
  /** One cheap request proving the backend answers; with it, fail-fast and the probe are on. */
  ping?: () => Promise<unknown>
  /**
   * With `ping`: a lookup (or probe) unanswered this long counts as a link failure (0 or undefined: no backstop).
   * Without it (local backends) lookups have no timer of their own: the request deadline bounds them.
   */
  lookupWaitMs?: number
  /** Gap between probes while failing (default PROBE_INTERVAL_MS). */
  probeIntervalMs?: number
  timers?: Timers
  /** Called at every change of verdict, with the link error that caused a failing one (its code and message). */
  onChange?: (failing: boolean, code?: string, message?: string) => void
}

type State = 'ok' | 'suspect' | 'failing'

export class BackendHealth {
  /** The code of the link error that made (or kept) the backend failing, for `fsx stats`. */
  lastError?: string
  private state: State = 'ok'
  /** Bumped at every change of state; a call remembers the generation it started in. */
  private generation = 0
  private sinceMs = 0
  /** The failure that made the backend suspect: reported if the probe confirms it. */
  private cause?: { code: string, message?: string }
  private readonly timers: Timers
  /** Lookups in flight that are abandoned when the backend is found failing (fail-fast backends only). */
  private readonly waiting = new Set<(err: Error) => void>()
  /** Settles when a suspect backend is found answering or failing. */
  private verdict?: { promise: Promise<void>, resolve: () => void }
  private probing?: Promise<boolean>
  private probeTimer?: unknown
  private closed = false

  constructor (private readonly opts: HealthOptions = {}) {
    this.timers = opts.timers ?? realTimers
  }

  /** True once the backend is known to be failing (a link failure, confirmed by a probe) until it answers again. */
  get failing (): boolean { return this.state === 'failing' }

  /** True when calls are refused at once while failing (the backend can be probed). */
  get failFast (): boolean { return this.opts.ping !== undefined }

  /** Rejects at once, as the call would, when calls are not sent (failing, fail-fast backend). */
  check (op?: string, path?: string): void {
    if (this.state === 'failing' && this.failFast) throw this.notAsked(op, path)
  }

  private notAsked (op?: string, path?: string): Error {
    const secs = Math.round((this.timers.now() - this.sinceMs) / 100) / 10
    return new FsxError('EIO', `the backend is failing (${this.lastError ?? 'no answer'} for ${secs}s): not asked; a background probe checks when it answers again`, { op, path })
  }

  /** Runs `start` now, or once a suspect backend's probe has decided (sent if it answers, refused if not). */
  private gated<T> (start: () => Promise<T>): Promise<T> {
    if (this.state === 'suspect' && this.verdict !== undefined) return this.verdict.promise.then(() => this.gated(start))
    return start()
  }

  /**
   * A lookup: an idempotent call whose answer a cached one may replace (stat, list, read…). Refused at once while
   * failing; abandoned (EIO) when the backend is found failing while it waits; a link failure when unanswered for
   * `lookupWaitMs`.
   */
  lookup<T> (run: () => Promise<T>, op?: string, path?: string): Promise<T> {
    return this.gated(() => {
      try {
        this.check(op, path)
      } catch (err) {
        return Promise.reject(err)
      }
      return this.bounded(run, true, op, path)
    })
  }

  /** A change (write, rename, open…): refused at once while failing; otherwise waits for the backend's own answer. */
  change<T> (run: () => Promise<T>, op?: string, path?: string): Promise<T> {
    return this.gated(() => {
      try {
        this.check(op, path)
      } catch (err) {
        return Promise.reject(err)
      }
      return this.observe(run, op, path)
    })
  }

  /** A call sent whatever the verdict (a close that releases resources); its outcome still counts. */
  observe<T> (run: () => Promise<T>, op?: string, path?: string): Promise<T> {
    // NB: no async/await here: one promise hop per backend call, so the VFS sees the backend's settling order.
    const gen = this.generation
    let p: Promise<T>
    try {
      p = Promise.resolve(run())
    } catch (err) {
      p = Promise.reject(err)
    }
    return p.then(v => {
      this.answered()
      return v
    }, err => { throw this.outcome(err, gen, op, path) })
  }

  /** Records a failed call's outcome and returns the error to throw (EIO for link errors of fail-fast backends). */
  private outcome (err: unknown, gen: number, op?: string, path?: string): unknown {
    if (!isLinkDown(err)) {
      this.answered()
      return err
    }
    this.failed(codeOf(err)!, gen, (err as { message?: string }).message)
    return this.failFast ? this.asEio(err, op, path) : err
  }

  private asEio (err: unknown, op?: string, path?: string): Error {
    const e = err as { message?: string, path?: string, op?: string, syscall?: string }
    return new FsxError('EIO', e?.message ?? String(err), { path: e?.path ?? path, op: e?.op ?? e?.syscall ?? op, cause: err })
  }

  /** Runs `run`, settling by `lookupWaitMs`; `abandonable` calls also settle (EIO) when the backend is found failing. */
  private bounded<T> (run: () => Promise<T>, abandonable: boolean, op?: string, path?: string): Promise<T> {
    // NB: no timer per call for local backends: their reads are the hot path, and the request deadline bounds them.
    const wait = this.failFast ? this.opts.lookupWaitMs ?? 0 : 0
    const abandon = abandonable && this.failFast
    if (wait <= 0 && !abandon) return this.observe(run, op, path)
    const gen = this.generation
    return new Promise<T>((resolve, reject) => {
      let done = false
      let timer: unknown
      const finish = (settle: () => void): void => {
        if (done) return
        done = true
        if (timer !== undefined) this.timers.clearTimeout(timer)
        this.waiting.delete(onAbandon)
        settle()
      }
      const onAbandon = (err: Error): void => finish(() => reject(err))
      if (wait > 0) {
        timer = this.timers.setTimeout(() => finish(() => {
          const err = new FsxError('ETIMEDOUT', `${op ?? 'backend call'}${path === undefined ? '' : ' ' + path}: no answer from the backend within ${Math.round(wait / 100) / 10}s`, { op, path })
          reject(this.outcome(err, gen, op, path))
        }), wait)
      }
      if (abandon) this.waiting.add(onAbandon)
      let p: Promise<T>
      try {
        p = Promise.resolve(run())
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then(v => {
        this.answered()
        finish(() => resolve(v))
      }, err => {
        if (done) {
          this.outcome(err, gen, op, path) // settled already (abandoned, or past its wait): the news still counts
          return
        }
        // NB: out of `waiting` before the verdict changes, so this call reports its own error, not the verdict.
        this.waiting.delete(onAbandon)
        const out = this.outcome(err, gen, op, path)
        finish(() => reject(out))
      })
    })
  }

  /**
   * A link failure of a call that started in generation `gen`. A backend that can be probed becomes suspect and is
   * probed at once: calls wait for that verdict, so one request lost on a busy link is not taken for an outage.
   */
  failed (code: string, gen = this.generation, message?: string): void {
    if (this.closed || gen !== this.generation) return
    this.lastError = code
    if (this.state !== 'ok') return
    this.generation++
    this.sinceMs = this.timers.now()
    this.cause = { code, message }
    if (!this.failFast) {
      this.state = 'failing'
      this.opts.onChange?.(true, code, message)
      return
    }
    this.state = 'suspect'
    let resolve!: () => void
    const promise = new Promise<void>(res => { resolve = res })
    this.verdict = { promise, resolve }
    void this.probe()
  }

  /** The probe of a suspect backend got no answer either: it is failing. */
  private confirm (): void {
    if (this.state !== 'suspect') return
    this.state = 'failing'
    this.generation++
    this.opts.onChange?.(true, this.cause?.code, this.cause?.message)
    const err = this.notAsked()
    for (const abandon of [...this.waiting]) abandon(err)
    this.endVerdict()
  }

  private endVerdict (): void {
    this.verdict?.resolve()
    this.verdict = undefined
  }

  /** The backend answered something: the suspect or failing state (if any) ends. */
  answered (): void {
    if (this.state === 'ok' || this.closed) return
    const wasFailing = this.state === 'failing'
    this.state = 'ok'
    this.generation++
    if (this.probeTimer !== undefined) this.timers.clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    this.endVerdict()
    if (wasFailing) this.opts.onChange?.(false)
  }

  /**
   * Asks the backend once (`ping`), joining a probe in flight; resolves true when it answered. A suspect backend
   * whose probe gets no answer is failing; while it is, the next probe runs `probeIntervalMs` after this one settled.
   */
  async probe (): Promise<boolean> {
    const ping = this.opts.ping
    if (ping === undefined || this.closed) return this.state === 'ok'
    if (this.probeTimer !== undefined) this.timers.clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    this.probing ??= (async () => {
      try {
        await this.bounded(ping, false, 'probe')
        return true
      } catch (err) {
        if (!isLinkDown((err as { cause?: unknown }).cause ?? err)) return true // an answer, if not a good one
        this.confirm()
        return false
      } finally {
        this.probing = undefined
        if (this.state === 'failing' && !this.closed) {
          this.probeTimer = this.timers.setTimeout(() => {
            this.probeTimer = undefined
            void this.probe()
          }, this.opts.probeIntervalMs ?? PROBE_INTERVAL_MS)
        }
      }
    })()
    return await this.probing
  }

  /** Stops probing; calls still settle (a suspect verdict is given up: calls waiting for it go ahead). */
  close (): void {
    this.closed = true
    if (this.probeTimer !== undefined) this.timers.clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    this.endVerdict()
  }
}

/** Methods of a Backend that only read: lookups (see BackendHealth.lookup). */
const LOOKUPS = new Set(['stat', 'list', 'read', 'readlink', 'statfs', 'getxattr', 'listxattr'])
/** Methods passed through untouched: releasing the backend, its counters, the probe itself, forgetting its memory. */
const UNGUARDED = new Set(['close', 'counters', 'ping', 'invalidate'])
/** File handle methods that only read, and those that release (sent whatever the verdict). */
const HANDLE_LOOKUPS = new Set(['read', 'readInto'])
const HANDLE_RELEASES = new Set(['close'])

/**
 * The backend as the VFS sees it: every call goes through `health` (lookups, changes, releases as above), and so do
 * the calls on the file handles `open` returns. Any other method a backend grows (e.g. mknod) is a change.
 * Properties that are not functions (description, capabilities) read through.
 */
export function guardBackend (backend: Backend, health: BackendHealth): Backend {
  const pathOf = (args: unknown[]): string | undefined => typeof args[0] === 'string' ? args[0] : undefined
  return guarded(backend, (prop, fn, target) => {
    if (UNGUARDED.has(prop)) return fn.bind(target)
    const run = (args: unknown[]) => () => fn.apply(target, args)
    if (LOOKUPS.has(prop)) return (...args: unknown[]) => health.lookup(run(args), prop, pathOf(args))
    if (prop === 'open') {
      return (...args: unknown[]) => health.change(run(args), prop, pathOf(args))
        .then(h => guardHandle(h as BackendFileHandle, health, pathOf(args)))
    }
    return (...args: unknown[]) => health.change(run(args), prop, pathOf(args))
  })
}

function guardHandle (h: BackendFileHandle, health: BackendHealth, path?: string): BackendFileHandle {
  return guarded(h, (prop, fn, target) => {
    const run = (args: unknown[]) => () => fn.apply(target, args)
    if (HANDLE_LOOKUPS.has(prop)) return (...args: unknown[]) => health.lookup(run(args), prop, path)
    if (HANDLE_RELEASES.has(prop)) return (...args: unknown[]) => health.observe(run(args), prop, path)
    return (...args: unknown[]) => health.change(run(args), prop, path)
  })
}

type Method = (...a: unknown[]) => Promise<unknown>

/**
 * A proxy of `target` whose methods are `wrap`ped (once per method; again if the method is replaced, as tests do);
 * every other property reads through.
 */
function guarded<T extends object> (target: T, wrap: (prop: string, fn: Method, target: T) => unknown): T {
  const wrapped = new Map<string, { fn: unknown, w: unknown }>()
  return new Proxy(target, {
    get (t, prop) {
      const v = Reflect.get(t, prop, t) as unknown
      if (typeof v !== 'function' || typeof prop !== 'string') return v
      const hit = wrapped.get(prop)
      if (hit?.fn === v) return hit.w
      const w = wrap(prop, v as Method, t)
      wrapped.set(prop, { fn: v, w })
      return w
    }
  })
}
