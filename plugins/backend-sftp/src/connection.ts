/**
 * SSH connections for the SFTP backend: one `Session` per live SSH connection with its SFTP channel, a `Pool` of
 * N of them that re-establishes dead ones with backoff, and `request()`, the only way a request is sent.
 *
 * Design:
 * - Connections come from ssh2-sftp-client (`connect()` gives the ssh2 SFTPWrapper); everything after that talks to
 *   the SFTPWrapper directly, because handle-level pipelining (open/read/write/fstat at offsets, many requests in
 *   flight) is what makes SFTP fast and the wrapper's path-level API cannot express it.
 * - TCP_NODELAY is set as soon as the socket connects: without it each small request waits for Nagle + delayed ACK
 *   (~40 ms per operation, measured).
 * - Every request has a deadline, counted from when the session last answered anything: a request fails (kind
 *   `timeout`) once its session has answered nothing for `timeoutMs` while it waited, and that session is declared
 *   dead (a link that swallows requests is not trusted with the next). NB: not from when the request was sent: the
 *   server answers in order, and a request queued behind megabytes of pipelined writes on a busy machine waits for
 *   them (issue 13 item 8: write-behind writes timed out under load and readers saw the file without them). A hard
 *   cap (QUEUED_MAX_FACTOR × timeoutMs) still bounds every request. Requests in flight on a session that dies fail
 *   at once (kind `lost`), so callers may retry idempotent ones on another session.
 * - SSH keepalives (ssh2's keepaliveInterval/CountMax) notice a silent dead link even when nothing is in flight.
 * - The pool reconnects a dead slot at once, then with exponential backoff (100 ms doubling to 5 s). A slot that
 *   keeps failing while nobody waits stops trying and resumes when the next operation asks for a connection.
 *   Host key and login failures are `fatal`: operations fail at once with them instead of waiting.
 * - A refused connection (nobody listening, no route) is a definite answer: a path operation waiting for a
 *   connection fails with it as soon as an attempt made while it waits is refused, and an attempt is made for it
 *   within MIN_RETRY_GAP_MS, whatever the backoff says: no wait for the reconnect backoff, and a server that came
 *   back is found. Only an attempt that hangs (a frozen server) makes it wait, up to its deadline. An open file's
 *   requests wait through refusals instead (a server restart), up to their deadline.
 *
 * Invariants:
 * - A Session is alive until `kill()`; after that its SFTP channel is never used again (`request` refuses it).
 * - Every promise returned here settles: a timer bounds each request and each wait for a connection.
 */
import type { SFTPWrapper } from 'ssh2'

/** What a transport-level failure was (as opposed to an SFTP status answer from the server). */
export type TransportKind = 'lost' | 'timeout' | 'noconn' | 'closed'

/**
 * A failure of the link, not an answer from the server. The backend decides the errno; `code` says what a failed
 * connection attempt met (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH…), when known.
 */
export class TransportError extends Error {
  readonly code?: string
  constructor (readonly kind: TransportKind, message: string, readonly fatal = false, options?: { cause?: unknown, code?: string }) {
    super(message, options)
    this.name = 'TransportError'
    this.code = options?.code
  }
}

/** Connection failures that are a definite answer (nobody listens there, no route to it): no reason to wait. */
const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH'])

function refused (err: unknown): err is TransportError {
  return err instanceof TransportError && !err.fatal && err.code !== undefined && REFUSED.has(err.code)
}

export function isTransportError (err: unknown): err is TransportError {
  return err instanceof TransportError
}

/** Largest read/write payload when the server announces no limits (SFTP's conventional 32 KiB). */
export const FALLBACK_IO_BYTES = 32 * 1024
/** First reconnect backoff and its ceiling. */
const BACKOFF_FIRST_MS = 100
const BACKOFF_MAX_MS = 5_000
/**
 * A request answered in order behind others may wait this many deadlines in all while its session keeps answering
 * the ones ahead of it (a liveness deadline alone would let a server that skips one request hold it forever).
 */
const QUEUED_MAX_FACTOR = 8
/** Consecutive failures after which an idle slot stops trying until an operation needs it. */
const IDLE_GIVE_UP = 5
/** Smallest gap between two connection attempts of one slot, even when operations are waiting. */
const MIN_RETRY_GAP_MS = 250

/** One live SSH connection with its SFTP channel. */
export class Session {
  alive = true
  /** When the server last answered a request on this session (ms since the epoch; 0: never). */
  lastAnswerMs = 0
  /** Reject functions of the requests in flight; all called when the session dies. */
  readonly inflight = new Set<(err: Error) => void>()
  private readonly deadHooks: Array<() => void> = []

  constructor (
    readonly slot: number,
    readonly sftp: SFTPWrapper,
    private readonly end: () => void,
    /** Where the session goes, for messages: "host:port". */
    readonly where: string
  ) {}

  /** SFTP extensions the server announced (name → version string). */
  get extensions (): Record<string, string> {
    return (this.sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {}
  }

  has (ext: string): boolean {
    return this.extensions[ext] !== undefined
  }

  /** Largest READ payload the server accepts (limits@openssh.com, else ssh2's default for the server). */
  get maxRead (): number {
    const n = (this.sftp as unknown as { _maxReadLen?: number })._maxReadLen
    return typeof n === 'number' && n > 0 ? n : FALLBACK_IO_BYTES
  }

  /** Largest WRITE payload the server accepts. */
  get maxWrite (): number {
    const n = (this.sftp as unknown as { _maxWriteLen?: number })._maxWriteLen
    return typeof n === 'number' && n > 0 ? n : FALLBACK_IO_BYTES
  }

  onDead (fn: () => void): void {
    if (!this.alive) fn()
    else this.deadHooks.push(fn)
  }

  /** Declares the session dead: fails its requests in flight, closes the connection, runs the dead hooks. */
  kill (reason: string): void {
    if (!this.alive) return
    this.alive = false
    const err = new TransportError('lost', `connection to ${this.where} lost (${reason})`)
    for (const reject of [...this.inflight]) reject(err)
    this.inflight.clear()
    try { this.end() } catch { /* already closed */ }
    for (const fn of this.deadHooks.splice(0)) fn()
  }
}

/**
 * Sends one request on `s` and settles with the first value its callback gets, or rejects: with the server's status
 * error (ssh2's Error with a numeric `code`), or a TransportError (`timeout` once the session has answered nothing
 * for `timeoutMs` while this request waited, or it waited QUEUED_MAX_FACTOR × `timeoutMs` in all; `lost` if the
 * session dies first). A timeout kills the session.
 */
export function request<T> (s: Session, timeoutMs: number, what: string, fn: (sftp: SFTPWrapper, cb: (err?: Error | null, value?: any) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (!s.alive) {
      reject(new TransportError('lost', `connection to ${s.where} lost`))
      return
    }
    let done = false
    const finish = (err: Error | null | undefined, value?: T): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.inflight.delete(onLost)
      if (err) reject(err)
      else resolve(value as T)
    }
    const onLost = (err: Error): void => finish(err)
    const sentMs = Date.now()
    const limit = Math.max(1, timeoutMs)
    const check = (): void => {
      const now = Date.now()
      const quiet = now - Math.max(sentMs, s.lastAnswerMs)
      if (quiet < limit && now - sentMs < limit * QUEUED_MAX_FACTOR) {
        // The server answered requests sent before this one meanwhile: it is working through the queue.
        timer = setTimeout(check, Math.max(1, Math.min(limit - quiet, sentMs + limit * QUEUED_MAX_FACTOR - now)))
        return
      }
      finish(new TransportError('timeout', `${what}: no answer from ${s.where} within ${Math.round(timeoutMs / 100) / 10}s`))
      s.kill('a request timed out')
    }
    let timer = setTimeout(check, limit)
    s.inflight.add(onLost)
    try {
      fn(s.sftp, (err, value) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          // Not a status answer: ssh2 failing the requests of a channel that closed ("No response from server").
          finish(new TransportError('lost', `connection to ${s.where} lost (${err.message})`))
          s.kill(err.message)
          return
        }
        s.lastAnswerMs = Date.now()
        finish(err ?? undefined, value)
      })
    } catch (err) {
      // ssh2 throws synchronously for what it cannot send (e.g. an extension the server lacks).
      finish(err as Error)
    }
  })
}

interface Slot {
  session?: Session
  connecting: boolean
  failures: number
  lastAttempt: number
  wake?: () => void
}

interface Waiter {
  resolve: (s: Session) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  /** Fail at a refused attempt (path operations) rather than wait for the deadline (open files, see `acquire`). */
  failOnRefusal: boolean
}

export interface PoolOptions {
  size: number
  /** Opens session number `slot`; rejects with a TransportError (fatal for host key / login problems). */
  connect: (slot: number) => Promise<Session>
  /** Where the pool connects, for messages. */
  where: string
}

/** N sessions, round-robin, each re-established with backoff when it dies. */
export class Pool {
  private readonly slots: Slot[]
  private readonly waiters = new Set<Waiter>()
  private rr = 0
  private closed = false
  private everConnected = false
  lastError?: Error
  fatal?: TransportError
  readonly stats = { connects: 0, reconnects: 0, connectFailures: 0 }

  constructor (private readonly opts: PoolOptions) {
    this.slots = Array.from({ length: Math.max(1, opts.size) }, () => ({ connecting: false, failures: 0, lastAttempt: 0 }))
  }

  /** Live sessions right now. */
  get live (): number {
    return this.slots.filter(s => s.session?.alive === true).length
  }

  /** Connects the first session (its error is the caller's: wrong key, unknown host…), then the others in the background. */
  async start (): Promise<Session> {
    const slot = this.slots[0]
    slot.lastAttempt = Date.now()
    const s = await this.opts.connect(0)
    this.adopt(0, s)
    for (let i = 1; i < this.slots.length; i++) this.kick(i)
    return s
  }

  private adopt (i: number, s: Session): void {
    const slot = this.slots[i]
    if (this.closed) {
      s.kill('backend closed')
      return
    }
    slot.session = s
    slot.failures = 0
    this.fatal = undefined
    this.stats.connects++
    if (this.everConnected) this.stats.reconnects++
    this.everConnected = true
    s.onDead(() => {
      if (slot.session === s) slot.session = undefined
      this.kick(i)
    })
    for (const w of [...this.waiters]) {
      this.waiters.delete(w)
      clearTimeout(w.timer)
      w.resolve(s)
    }
  }

  /** Starts the connect loop of slot `i` unless it is live or already connecting. */
  private kick (i: number): void {
    const slot = this.slots[i]
    if (this.closed || slot.connecting || slot.session?.alive === true) return
    slot.connecting = true
    void (async () => {
      try {
        while (!this.closed) {
          slot.lastAttempt = Date.now()
          try {
            const s = await this.opts.connect(i)
            this.adopt(i, s)
            return
          } catch (err) {
            this.lastError = err as Error
            this.stats.connectFailures++
            slot.failures++
            if (err instanceof TransportError && err.fatal) this.fatal = err
            const fatal = err instanceof TransportError && err.fatal
            if (fatal || refused(err)) {
              for (const w of [...this.waiters]) {
                if (!fatal && !w.failOnRefusal) continue
                this.waiters.delete(w)
                clearTimeout(w.timer)
                w.reject(err)
              }
            }
            if (this.waiters.size === 0 && slot.failures >= IDLE_GIVE_UP) return
            await this.sleep(slot, Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (slot.failures - 1)))
          }
        }
      } finally {
        slot.connecting = false
      }
    })()
  }

  private async sleep (slot: Slot, ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(done, ms)
      timer.unref()
      function done (): void {
        clearTimeout(timer)
        slot.wake = undefined
        resolve()
      }
      slot.wake = done
    })
  }

  /**
   * A live session (round-robin), waiting for a reconnect until `deadline` (ms since the epoch). A refused connection
   * ends the wait at once, unless `opts.failOnRefusal` is false: an open file's requests in flight ride through a
   * server restart (they are repeated once it is back) rather than fail at the first refusal.
   */
  async acquire (deadline: number, opts: { failOnRefusal?: boolean } = {}): Promise<Session> {
    const failOnRefusal = opts.failOnRefusal ?? true
    if (this.closed) throw new TransportError('closed', 'the SFTP backend is closed')
    const live: Session[] = []
    for (const s of this.slots) if (s.session?.alive === true) live.push(s.session)
    if (live.length > 0) return live[this.rr++ % live.length]
    if (this.fatal) throw this.fatal
    const now = Date.now()
    let attempting = false
    let next: Slot | undefined
    this.slots.forEach((slot, i) => {
      if (!slot.connecting) this.kick(i)
      else if (slot.wake && now - slot.lastAttempt >= MIN_RETRY_GAP_MS) slot.wake()
      // A slot not asleep in its backoff is trying to connect now.
      if (slot.connecting && slot.wake === undefined) attempting = true
      else if (slot.wake && (next === undefined || slot.lastAttempt < next.lastAttempt)) next = slot
    })
    if (!attempting && next !== undefined) {
      // Every slot tried moments ago: the next attempt comes at the end of the gap, not of the backoff.
      const slot = next
      const timer = setTimeout(() => slot.wake?.(), Math.max(0, slot.lastAttempt + MIN_RETRY_GAP_MS - now))
      timer.unref()
    }
    return await new Promise<Session>((resolve, reject) => {
      const w: Waiter = {
        failOnRefusal,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w)
          const last = this.lastError ? ` (last error: ${this.lastError.message})` : ''
          reject(new TransportError('noconn', `no connection to ${this.opts.where}${last}`, false, { code: 'ETIMEDOUT' }))
        }, Math.max(1, deadline - now))
      }
      this.waiters.add(w)
    })
  }

  async close (): Promise<void> {
    this.closed = true
    for (const w of [...this.waiters]) {
      this.waiters.delete(w)
      clearTimeout(w.timer)
      w.reject(new TransportError('closed', 'the SFTP backend is closed'))
    }
    for (const slot of this.slots) {
      slot.wake?.()
      slot.session?.kill('backend closed')
    }
  }
}
