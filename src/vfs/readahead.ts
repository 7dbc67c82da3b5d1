/**
 * Per-handle sequential readahead into the data cache, for whole-object backends where every miss is a network
 * round trip. The kernel's own readahead (max_readahead, ≤ 128K per request with libfuse 2) is far too short to
 * hide an object store's latency; this one works in data-cache blocks (1 MiB).
 *
 * Design:
 * - Detection: a read that starts where the previous one ended extends a streak; after `TRIGGER` consecutive
 *   sequential reads prefetching starts (one `triggered`). Any other read is random access: the streak and the
 *   window reset and no new prefetch is issued until a new streak forms. Prefetches already in flight finish
 *   (their blocks stay cached for whoever reads them).
 * - Window: starts at two blocks ahead of the reader and doubles each time the reader consumes a prefetched block,
 *   up to `maxBytes`. So a short sequential read costs little and a long one quickly reaches the full window.
 * - Parallelism: the window is fetched as parallel ranged reads, one per block, at most `MAX_PARALLEL` in flight
 *   per handle; each later read tops the pipeline up. This is the backpressure: a slow backend holds at most
 *   MAX_PARALLEL blocks of memory per reader in flight; a fast one keeps the window full.
 * - Random access, for the data cache's fetch size: a read is random when it is neither the file's first read at
 *   offset 0 nor within `NEAR_BYTES` of where the previous read ended (the kernel may send a sequential reader's
 *   reads slightly out of order). The cache then fetches a piece of the block instead of the whole block.
 * - Accounting: bytes of blocks this handle prefetched are `bytesUsed` when the handle reads them, `bytesWasted` if
 *   it is released without reading them.
 */

/** Consecutive sequential reads before prefetching starts: one or two sequential reads are common by chance. */
export const TRIGGER = 3
/**
 * Prefetches in flight per handle: 8 × 1 MiB covers the bandwidth-delay product of ~100 MB/s at 80 ms round trip,
 * typical of S3 from a nearby region, without flooding a backend with requests.
 */
export const MAX_PARALLEL = 8

/** Reads starting this close to the previous read's end count as sequential (two kernel reads of 128 KiB). */
export const NEAR_BYTES = 256 * 1024

/** Counters shared by every handle of a mount (`VfsStats.readahead`). */
export interface ReadaheadCounters {
  triggered: number
  bytesUsed: number
  bytesWasted: number
}

export class Readahead {
  private nextPos = -1
  private streak = 0
  private active = false
  private windowBytes = 0
  /** First block not yet requested by this handle's readahead. */
  private frontier = 0
  /** Blocks being prefetched by this handle → whether the reader reached them while in flight. */
  private readonly inflight = new Map<number, boolean>()
  /** Blocks prefetched by this handle and not yet read: index → bytes. */
  private readonly unused = new Map<number, number>()
  /** Released: a prefetch landing now is wasted at once. */
  private closed = false
  /** Whether the last read was random access (see the header): the data cache then fetches pieces. */
  random = false

  constructor (
    private readonly maxBytes: number,
    private readonly blockBytes: number,
    private readonly counters: ReadaheadCounters
  ) {}

  /**
   * Records a read of `length` bytes at `position` of a file of `size` bytes and returns the blocks to prefetch now
   * (the caller must report each one's outcome through `started`/`finished`).
   */
  onRead (position: number, length: number, size: number): number[] {
    const B = this.blockBytes
    // Blocks this read touches: prefetched ones are now used, and grow the window.
    const first = Math.floor(position / B)
    const last = Math.floor((Math.max(position, position + length - 1)) / B)
    for (let i = first; i <= last; i++) {
      if (this.inflight.has(i)) this.inflight.set(i, true)
      const bytes = this.unused.get(i)
      if (bytes === undefined) continue
      this.unused.delete(i)
      this.counters.bytesUsed += bytes
      if (this.active) this.windowBytes = Math.min(this.maxBytes, this.windowBytes * 2)
    }
    this.random = this.nextPos < 0 ? position !== 0 : Math.abs(position - this.nextPos) > Math.max(NEAR_BYTES, 2 * length)
    if (position === this.nextPos) {
      this.streak++
    } else {
      this.streak = 1
      this.active = false
      this.windowBytes = 0
    }
    this.nextPos = position + length
    if (this.maxBytes < B || this.streak < TRIGGER) return []
    if (!this.active) {
      this.active = true
      this.counters.triggered++
      this.windowBytes = Math.min(this.maxBytes, 2 * B)
      this.frontier = 0
    }
    const from = Math.max(this.frontier, last + 1)
    const end = Math.min(size, this.nextPos + this.windowBytes)
    const out: number[] = []
    for (let i = from; i * B < end && this.inflight.size + out.length < MAX_PARALLEL; i++) out.push(i)
    if (out.length > 0) this.frontier = out[out.length - 1] + 1
    return out
  }

  /** Block `idx` (and those after it in the last batch) were not issued after all: request them again later. */
  rewind (idx: number): void { this.frontier = Math.min(this.frontier, idx) }

  /** A prefetch of block `idx` was issued. */
  started (idx: number): void { this.inflight.set(idx, false) }

  /** A prefetch finished: `bytes` fetched into the cache by it (0 if it was cached already or failed). */
  finished (idx: number, bytes: number): void {
    const reached = this.inflight.get(idx) ?? false
    this.inflight.delete(idx)
    if (bytes <= 0) return
    if (reached) this.counters.bytesUsed += bytes
    else if (this.closed) this.counters.bytesWasted += bytes
    else this.unused.set(idx, bytes)
  }

  /** Prefetches of this handle still in flight. */
  get pending (): number { return this.inflight.size }

  /** The handle is released: prefetched blocks it never read were wasted (those landing later too). */
  close (): void {
    for (const bytes of this.unused.values()) this.counters.bytesWasted += bytes
    this.unused.clear()
    this.closed = true
  }
}
