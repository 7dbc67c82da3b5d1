/**
 * Coherence: the mounts of one source tell each other what they change, so that each drops what it cached of it
 * at once instead of when a TTL runs out. The messages travel over a bus (Redis publish/subscribe, see
 * coherence-redis.ts), one channel per source; this file is the part that does not depend on the bus.
 *
 * What a mount publishes: for every change it makes to the backend, once the change has settled there (a path
 * operation when it returns; written data when it reached the server: at close or fsync through a server handle,
 * when the staged copy is uploaded, or when write-back's journal uploads it), the path and what changed:
 * `attr` (chmod, chown, utimens, xattrs), `data` (content, size), `entry` (the name appeared or vanished, or a file
 * was replaced) or `tree` (a directory renamed or removed: everything below it). Changes are batched for one turn of
 * the event loop (a burst of changes is one message) and a path keeps only its strongest kind.
 *
 * What a mount does with a peer's message: `target.changed(path, kind)` for each change (the Vfs drops its
 * attribute, listing, negative, xattr and data-cache entries and tells the kernel), never for its own messages.
 *
 * Invariants:
 * - A change is never silently lost between connected mounts: while the bus is down, changes are kept (up to
 *   MAX_MISSED paths; past that, one "drop everything" message instead) and published once it is back.
 * - A mount that was cut off may have missed messages: each time it is subscribed (again), it drops everything
 *   cached for the source (`target.reset()`) before it trusts its caches again, then goes on from the live channel.
 *   It is subscribed before that drop, so nothing published after the drop can be missed.
 * - While the bus is down the mount works on its TTLs alone, and says so (log, `stats().connected`).
 * - Lag figures compare the publisher's wall clock with ours: on one machine exact, across machines off by their
 *   clock difference.
 */
import { randomBytes } from 'node:crypto'
import * as hdr from 'hdr-histogram-js'

/** What changed at a path, weakest first: each kind implies the ones before it. */
export type ChangeKind = 'attr' | 'data' | 'entry' | 'tree'
const STRENGTH: Record<ChangeKind, number> = { attr: 0, data: 1, entry: 2, tree: 3 }
const CODE: Record<ChangeKind, string> = { attr: 'a', data: 'd', entry: 'e', tree: 't' }
const KIND: Record<string, ChangeKind | undefined> = { a: 'attr', d: 'data', e: 'entry', t: 'tree' }
/** The "drop everything cached for this source" code. */
const RESET = '*'

/** Paths kept while the bus is down; past this, peers are told to drop everything instead. */
const MAX_MISSED = 10_000
/** Changes per message, at most (a message stays well under a megabyte). */
const MAX_BATCH = 1000

/** A publish/subscribe channel shared by the mounts of one source. */
export interface Bus {
  /** Where it goes, without secrets (for logs and stats), e.g. "redis://127.0.0.1:6379/0". */
  readonly server: string
  /**
   * Connects (and keeps reconnecting). `message` for every message on the channel, ours included; `state(true)`
   * each time it is subscribed and can publish (again), `state(false, reason)` when either stops being true.
   */
  start (handlers: { message: (raw: string) => void, state: (connected: boolean, reason?: string) => void }): void
  /** Publishes one message; rejects when it could not be handed to the server. */
  publish (raw: string): Promise<void>
  close (): Promise<void>
}

/** What coherence does to the mount when a peer changed something. */
export interface CoherenceTarget {
  /** A peer changed `path` (what changed: `kind`). */
  changed (path: string, kind: ChangeKind): void
  /** Messages may have been missed: drop everything cached for this source. */
  reset (): void
}

/** `fsx stats` figures. */
export interface CoherenceStats {
  /** The bus's server, without secrets. */
  server: string
  /** Subscribed and able to publish now. */
  connected: boolean
  /** Messages this mount published, and messages of peers it received. */
  sent: number
  received: number
  /** Peer changes applied (paths invalidated). */
  applied: number
  /** Times everything cached was dropped because messages may have been missed (after an outage, or a peer's). */
  resets: number
  /** Times the connection was lost. */
  outages: number
  /** Changes waiting for the connection to come back. */
  waiting: number
  /** From a peer's change to our invalidation, in ms (0 before the first). */
  lagP50Ms: number
  lagP99Ms: number
  /** Why the connection was last lost (no secrets). */
  lastError?: string
}

interface Pending { kind: ChangeKind, at: number }

export class Coherence {
  /** This mount's id: its own messages come back on the channel and are skipped. */
  readonly id = randomBytes(8).toString('hex')
  private readonly batch = new Map<string, Pending>()
  private readonly missed = new Map<string, Pending>()
  /** More changes were missed than MAX_MISSED: peers get one "drop everything" instead. */
  private overflow = false
  private flushing = false
  private connected = false
  /** Connected at least once: a later connection follows an outage. */
  private wasConnected = false
  private closed = false
  private readonly figures = { sent: 0, received: 0, applied: 0, resets: 0, outages: 0 }
  private lastError?: string
  private readonly lag = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 })
  private firstConnect!: () => void
  /** Resolves at the first connection. */
  readonly connectedOnce = new Promise<void>(resolve => { this.firstConnect = resolve })

  constructor (private readonly bus: Bus, private readonly target: CoherenceTarget, private readonly log: (line: string) => void = () => {}) {}

  /** Connects the bus; resolves at once (see `connectedOnce`). */
  start (): void {
    this.bus.start({ message: raw => this.received(raw), state: (up, reason) => this.state(up, reason) })
  }

  /** Announces that this mount changed `path`; sent on the next turn of the event loop with the others. */
  publish (path: string, kind: ChangeKind): void {
    if (this.closed) return
    merge(this.batch, path, kind, Date.now())
    if (!this.flushing) {
      this.flushing = true
      setImmediate(() => { this.flushing = false; void this.flush() })
    }
  }

  private async flush (): Promise<void> {
    if (this.batch.size === 0) return
    const changes = [...this.batch]
    this.batch.clear()
    if (!this.connected) {
      this.keep(changes)
      return
    }
    for (let i = 0; i < changes.length; i += MAX_BATCH) {
      const part = changes.slice(i, i + MAX_BATCH)
      try {
        await this.bus.publish(encode(this.id, part))
        this.figures.sent++
      } catch {
        // Not handed to the server (the connection is going): kept for when it is back.
        this.keep(part)
      }
    }
  }

  /** Keeps changes for when the bus is back (or, past MAX_MISSED, one "drop everything"). */
  private keep (changes: Array<[string, Pending]>): void {
    if (this.overflow) return
    for (const [p, c] of changes) merge(this.missed, p, c.kind, c.at)
    if (this.missed.size > MAX_MISSED) {
      this.missed.clear()
      this.overflow = true
    }
  }

  private state (up: boolean, reason?: string): void {
    if (this.closed) return
    if (!up) {
      if (reason !== undefined) this.lastError = reason
      if (!this.connected) return
      this.connected = false
      this.figures.outages++
      this.log(`coherence: lost ${this.bus.server} (${reason ?? 'connection closed'}): changes by other mounts are seen when TTLs expire until it is back`)
      return
    }
    if (this.connected) return
    this.connected = true
    // Subscribed (again): drop what may have gone stale while messages could not arrive, then trust the channel.
    // (At the first connection that is what was cached while connecting, usually nothing.)
    this.target.reset()
    if (this.wasConnected) {
      this.figures.resets++
      this.log(`coherence: ${this.bus.server} is back: dropped what was cached for this source (changes may have been missed)`)
    } else {
      this.log(`coherence: connected to ${this.bus.server}`)
    }
    this.wasConnected = true
    this.firstConnect()
    // What this mount changed meanwhile.
    if (this.overflow) {
      this.overflow = false
      this.figures.sent++
      this.bus.publish(JSON.stringify({ v: 1, m: this.id, t: Date.now(), c: [[RESET, '/']] })).catch(() => { this.overflow = true })
    }
    if (this.missed.size > 0) {
      for (const [p, c] of this.missed) merge(this.batch, p, c.kind, c.at)
      this.missed.clear()
      void this.flush()
    }
  }

  private received (raw: string): void {
    let msg: { v?: unknown, m?: unknown, t?: unknown, c?: unknown }
    try {
      msg = JSON.parse(raw)
    } catch {
      return
    }
    if (msg.v !== 1 || msg.m === this.id || !Array.isArray(msg.c)) return
    this.figures.received++
    for (const c of msg.c as unknown[]) {
      if (!Array.isArray(c) || typeof c[1] !== 'string') continue
      if (c[0] === RESET) {
        this.figures.resets++
        this.target.reset()
        continue
      }
      const kind = KIND[String(c[0])]
      if (kind === undefined || !c[1].startsWith('/')) continue
      this.target.changed(c[1], kind)
      this.figures.applied++
    }
    if (typeof msg.t === 'number') {
      const ms = Math.max(0, Date.now() - msg.t)
      this.lag.recordValue(Math.max(1, Math.min(3_600_000_000, Math.round(ms * 1000))))
    }
  }

  stats (): CoherenceStats {
    const pct = (q: number): number => this.lag.totalCount === 0 ? 0 : this.lag.getValueAtPercentile(q) / 1000
    return {
      server: this.bus.server,
      connected: this.connected,
      ...this.figures,
      waiting: this.missed.size + this.batch.size,
      lagP50Ms: pct(50),
      lagP99Ms: pct(99),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError })
    }
  }

  /** Sends what is batched, then disconnects. */
  async close (): Promise<void> {
    await this.flush()
    this.closed = true
    await this.bus.close()
  }
}

/** Adds a change to a batch: a path keeps its strongest kind and its earliest time. */
function merge (m: Map<string, Pending>, p: string, kind: ChangeKind, at: number): void {
  const had = m.get(p)
  if (had === undefined) m.set(p, { kind, at })
  else m.set(p, { kind: STRENGTH[kind] > STRENGTH[had.kind] ? kind : had.kind, at: Math.min(at, had.at) })
}

/** One message: version, sender, time of the oldest change in it, changes as [code, path]. */
function encode (id: string, changes: Array<[string, Pending]>): string {
  const t = Math.min(...changes.map(([, c]) => c.at))
  return JSON.stringify({ v: 1, m: id, t, c: changes.map(([p, c]) => [CODE[c.kind], p]) })
}
