/**
 * DeleteQueue: coalesces single-key deletes (unlink) into batches, so `rm -rf` of a large directory costs a few
 * DeleteObjects requests instead of one DeleteObject per file.
 *
 * The kernel sends one UNLINK per file and holds the directory's lock while it does, so the unlinks of one
 * directory reach fsx strictly one after another: waiting for each key's own outcome would make every batch one key
 * long. Two modes, chosen by the caller per key:
 * - `add(key)` resolves with the key's own outcome once its batch has been answered; the batch goes out at the next
 *   turn of the event loop (unlinks in flight at the same time share a request);
 * - `defer(key)` queues it and returns: the batch goes out when it is full, `delayMs` after its first key was
 *   queued, or at `flush()`; a key's failure then goes to `onLateError`.
 *
 * Invariants:
 * - A key is in at most one batch that has not been answered; `has(key)` is true from `add`/`defer` until its batch
 *   is answered (the caller treats such keys as gone).
 * - `cancel(key)` before a write of that key: a key still queued is taken out (the write replaces the object
 *   anyway), a key whose batch was sent is waited for, so a delete never lands after a later write of its key.
 * - `flush()` sends everything queued and resolves when every batch sent so far has been answered.
 */

export interface DeleteQueueOptions {
  /** Keys per request (S3's limit: 1,000). */
  batch: number
  /** Longest wait of a deferred key before its batch is sent. */
  delayMs: number
  /** Deletes `keys` (one request, or several); resolves with one outcome per key: undefined (gone) or its error. */
  send: (keys: string[]) => Promise<unknown[]>
  /** Called with a deferred key's error (nobody waits for it). */
  onLateError: (key: string, err: unknown) => void
  /** Called once a key's batch was answered, before its waiters resume (whatever the outcome). */
  onSettled?: (key: string, err: unknown) => void
}

interface Waiter {
  resolve: () => void
  reject: (err: unknown) => void
}

interface Queued {
  /** Waiters of `add`; empty for a deferred key. */
  waiters: Waiter[]
}

export class DeleteQueue {
  private queued = new Map<string, Queued>()
  /** Keys whose batch was sent and not answered yet: the batch's promise. */
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly batches = new Set<Promise<void>>()
  private timer?: NodeJS.Timeout
  /** A send at the next turn of the event loop is scheduled (for `add`). */
  private soon = false

  constructor (private readonly opts: DeleteQueueOptions) {}

  /** Keys queued or sent and not answered. */
  get pending (): number {
    return this.queued.size + this.inflight.size
  }

  has (key: string): boolean {
    return this.queued.has(key) || this.inflight.has(key)
  }

  /** Deletes `key` with others queued now; resolves or rejects with its own outcome. */
  async add (key: string): Promise<void> {
    const sent = this.inflight.get(key)
    if (sent !== undefined) await sent.catch(() => {})
    const q = this.enqueue(key)
    const done = new Promise<void>((resolve, reject) => q.waiters.push({ resolve, reject }))
    if (this.queued.size >= this.opts.batch) this.sendNow()
    else if (!this.soon) {
      this.soon = true
      setImmediate(() => {
        this.soon = false
        if (this.queued.size > 0) this.sendNow()
      })
    }
    return await done
  }

  /** Queues `key` for a later batch and returns at once. */
  defer (key: string): void {
    this.enqueue(key)
    if (this.queued.size >= this.opts.batch) this.sendNow()
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; this.sendNow() }, this.opts.delayMs)
      this.timer.unref?.()
    }
  }

  /** Before a write of `key`: takes it out of the queue, or waits for its batch (its outcome does not matter). */
  async cancel (key: string): Promise<void> {
    const q = this.queued.get(key)
    if (q !== undefined) {
      this.queued.delete(key)
      this.opts.onSettled?.(key, undefined)
      for (const w of q.waiters) w.resolve()
    }
    await this.inflight.get(key)?.catch(() => {})
  }

  /** Sends everything queued; resolves when every batch sent so far has been answered. */
  async flush (): Promise<void> {
    if (this.queued.size > 0) this.sendNow()
    while (this.batches.size > 0) await Promise.all([...this.batches])
  }

  private enqueue (key: string): Queued {
    let q = this.queued.get(key)
    if (q === undefined) {
      q = { waiters: [] }
      this.queued.set(key, q)
    }
    return q
  }

  /** Sends what is queued, `batch` keys per call of `send`. */
  private sendNow (): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    const all = [...this.queued]
    this.queued = new Map()
    for (let i = 0; i < all.length; i += this.opts.batch) this.sendBatch(all.slice(i, i + this.opts.batch))
  }

  private sendBatch (batch: Array<[string, Queued]>): void {
    const keys = batch.map(([k]) => k)
    const run = (async () => {
      let outcome: unknown[]
      try {
        outcome = await this.opts.send(keys)
      } catch (err) {
        outcome = keys.map(() => err)
      }
      batch.forEach(([key, q], i) => {
        const err = outcome[i]
        this.inflight.delete(key)
        this.opts.onSettled?.(key, err)
        if (q.waiters.length === 0) {
          if (err !== undefined) this.opts.onLateError(key, err)
        } else {
          for (const w of q.waiters) err === undefined ? w.resolve() : w.reject(err)
        }
      })
    })()
    for (const k of keys) this.inflight.set(k, run)
    this.batches.add(run)
    void run.finally(() => this.batches.delete(run))
  }
}
