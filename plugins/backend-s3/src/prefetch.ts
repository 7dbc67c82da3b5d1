/**
 * Sequential read-ahead for S3 objects.
 *
 * Why: the kernel hands a FUSE filesystem reads of at most 128 KiB. One GET per 128 KiB pays a full request round
 * trip per read (on AWS, tens of milliseconds for a few dozen microseconds of transfer), so a plain `cat` would
 * crawl. When reads of an object are sequential, this fetches whole chunks (CHUNK_BYTES) ahead of the reader,
 * `ahead` of them in flight at once, and answers the kernel's small reads from them.
 *
 * How:
 * - Per object key, a stream. The first read of a key is fetched as asked and only remembered; a read that starts
 *   where the previous one ended makes the stream sequential. From then on reads are served from chunk i =
 *   offset / CHUNK_BYTES, and chunks up to `ahead` past the one being read are requested (bounded by the end of the
 *   object once a short chunk revealed it). Chunks behind the reader are dropped, except one (the kernel's
 *   readahead can deliver two neighbouring reads out of order).
 * - A read far outside the window (a seek) turns the stream back into "random": chunks dropped, reads fetched as
 *   asked, until reads are sequential again.
 * - Backpressure: at most `ahead` chunks per stream, at most MAX_STREAMS streams (the least recently used stream is
 *   dropped), so memory is bounded by MAX_STREAMS × (ahead + 2) × CHUNK_BYTES.
 * - Consistency: a stream pins the ETag of its first chunk; a chunk that comes back with another ETag (the object
 *   was replaced) resets the stream and the read is fetched again as asked. Streams idle for IDLE_MS are dropped,
 *   and writes, removals and renames through this backend invalidate their keys at once.
 * - A chunk that fails is dropped with its stream; the read that needed it is fetched again as asked, so an error
 *   reaches the caller only from its own request. Except when S3 did not answer the chunk at all (`isLinkError`):
 *   then the read fails with that error at once, rather than waiting out a second deadline for the same silence.
 */
import { isLinkError } from './errors.js'


/** Size of one read-ahead request: large enough that transfer, not latency, dominates. */
export const CHUNK_BYTES = 2 * 1024 * 1024
/** Streams kept at once (files being read sequentially in parallel). */
export const MAX_STREAMS = 16
/** A stream not read for this long is dropped (its chunks may be stale by then). */
export const IDLE_MS = 2000

export type RangeFetch = (key: string, start: number, length: number) => Promise<{ data: Buffer; etag?: string }>

interface Chunk { promise: Promise<{ data: Buffer; etag?: string }> }

interface Stream {
  /** Where the previous read ended. */
  lastEnd: number
  sequential: boolean
  chunks: Map<number, Chunk>
  etag?: string
  /** Object size, once a short chunk showed it. */
  size?: number
  usedAt: number
}

export class Prefetcher {
  private readonly streams = new Map<string, Stream>()
  /** Reads answered from read-ahead chunks (counters). */
  hits = 0

  constructor (
    private readonly fetch: RangeFetch,
    private readonly ahead: number,
    private readonly now: () => number = Date.now
  ) {}

  /**
   * Up to `length` bytes at `offset` of `key`; fewer only at the end of the object. `sizeHint` (the size a recent
   * stat saw) only bounds the read-ahead: it never shortens a read.
   */
  async read (key: string, offset: number, length: number, sizeHint?: number): Promise<Buffer> {
    this.expire()
    let s = this.streams.get(key)
    if (s === undefined) {
      s = { lastEnd: offset + length, sequential: false, chunks: new Map(), usedAt: this.now() }
      this.remember(key, s)
      return (await this.fetch(key, offset, length)).data
    }
    s.usedAt = this.now()
    this.remember(key, s)
    const windowEnd = (Math.floor(s.lastEnd / CHUNK_BYTES) + this.ahead + 2) * CHUNK_BYTES
    const near = offset >= s.lastEnd - 2 * CHUNK_BYTES && offset <= windowEnd
    if (!s.sequential) {
      if (offset !== s.lastEnd) {
        s.lastEnd = offset + length
        return (await this.fetch(key, offset, length)).data
      }
      s.sequential = true
    } else if (!near) {
      // A seek: back to reads as asked until they line up again.
      s.sequential = false
      s.chunks.clear()
      s.lastEnd = offset + length
      return (await this.fetch(key, offset, length)).data
    }
    s.lastEnd = Math.max(s.lastEnd, offset + length)
    try {
      const data = await this.fromChunks(key, s, offset, length, sizeHint)
      this.hits++
      return data
    } catch (err) {
      // A failed or inconsistent chunk: forget the stream, ask for exactly this range (unless S3 is silent).
      this.streams.delete(key)
      if (isLinkError(err)) throw err
      return (await this.fetch(key, offset, length)).data
    }
  }

  private async fromChunks (key: string, s: Stream, offset: number, length: number, sizeHint?: number): Promise<Buffer> {
    const first = Math.floor(offset / CHUNK_BYTES)
    const last = Math.floor((offset + length - 1) / CHUNK_BYTES)
    for (const i of s.chunks.keys()) if (i < first - 1) s.chunks.delete(i)
    const chunksIn = (size: number | undefined): number => size === undefined ? Infinity : Math.ceil(size / CHUNK_BYTES)
    const needed = Math.min(last + 1, chunksIn(s.size))
    const wanted = Math.max(needed, Math.min(last + 1 + this.ahead, chunksIn(s.size ?? sizeHint)))
    for (let i = first; i < wanted; i++) {
      if (!s.chunks.has(i)) {
        const promise = this.fetch(key, i * CHUNK_BYTES, CHUNK_BYTES)
        promise.catch(() => {}) // observed below, or dropped with the stream
        s.chunks.set(i, { promise })
      }
    }
    const parts: Buffer[] = []
    for (let i = first; i <= last; i++) {
      const chunk = s.chunks.get(i)
      if (chunk === undefined) break // past the end of the object
      const { data, etag } = await chunk.promise
      if (s.etag === undefined) s.etag = etag
      else if (etag !== undefined && etag !== s.etag) throw new Error('the object changed while being read')
      if (data.length < CHUNK_BYTES) s.size = i * CHUNK_BYTES + data.length
      const from = i === first ? offset - i * CHUNK_BYTES : 0
      const to = Math.min(data.length, offset + length - i * CHUNK_BYTES)
      if (from >= to) break
      parts.push(data.subarray(from, to))
      if (data.length < CHUNK_BYTES) break
    }
    // NB: a single part is a view of its chunk; the VFS copies it into the kernel's buffer and drops it.
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  private remember (key: string, s: Stream): void {
    this.streams.delete(key)
    this.streams.set(key, s)
    if (this.streams.size > MAX_STREAMS) this.streams.delete(this.streams.keys().next().value as string)
  }

  private expire (): void {
    const now = this.now()
    for (const [key, s] of this.streams) if (now - s.usedAt >= IDLE_MS) this.streams.delete(key)
  }

  /** Forgets what is known of `key` (written, removed, renamed through this backend). */
  invalidate (key: string): void {
    this.streams.delete(key)
  }

  /** Forgets every key starting with `prefix` (a directory renamed or removed). */
  invalidatePrefix (prefix: string): void {
    for (const key of [...this.streams.keys()]) if (key.startsWith(prefix)) this.streams.delete(key)
  }

  clear (): void {
    this.streams.clear()
  }
}
