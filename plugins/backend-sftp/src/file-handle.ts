/**
 * An open file on the SFTP server: positional reads and writes, pipelined, that survive reconnects.
 *
 * - Reads larger than the server's read limit are split into requests that are all sent at once (pipelined), then
 *   assembled in order; a short answer that is not EOF is completed with follow-up requests, so a read is short only
 *   at end of file. Writes are split to the server's write limit and sent at once (at most MAX_INFLIGHT per call).
 * - Sequential reads are served from a read-ahead window kept in flight (READAHEAD_*); writes return once sent
 *   (write-behind, WRITE_BEHIND_BYTES), and everything that could observe them waits until they are answered.
 * - The handle is bound to one session. When that session dies, the next request reopens the file by path on a live
 *   session, with the original flags minus CREAT, EXCL and TRUNC (offsets are positional, so nothing else is
 *   needed), and requests that were lost in flight are sent again: positional reads, writes, fsetstat and fsync are
 *   idempotent. Appending writes are not, and are never repeated.
 * - `path` is the backend path; the backend updates it when the file (or a parent) is renamed while open, so a
 *   reopen finds it under its new name. When the name is removed, or another file is renamed over it, through fsx,
 *   the handle is detached: it keeps working on its session, but a reopen fails with ESTALE instead of opening
 *   whatever has that name now (and the backend no longer counts it as a handle of that path).
 *
 * Write-behind invariants (`pending`, `writeError`; write, drain, drainFile):
 * - A write-behind write is in `pending` from the moment write() is called until the server answered it (or it
 *   failed for good); `busy` says so, and the backend's drainPath waits for it.
 * - Ordered across handles: the server orders requests only within one connection, and two handles of a file may
 *   be on two. So a write first waits for the writes other handles of the file have in flight; a truncate,
 *   attribute change or fsync through a handle waits for the writes of every handle of the file; a read through any
 *   handle waits for them too. Writes through one handle go out in order on its one session.
 * - Never silently without a write: a write-behind failure is kept (`writeError`) and reported once, by the
 *   handle's next write, truncate, attribute change, fsync or close; until then reads of the file through any handle
 *   fail with EIO, and fsync through another handle too.
 *
 * Invariant: a read issued after a write (or truncate, attribute change) through fsx returned never sees the bytes
 * from before it: the read-ahead window is dropped before and after each change, and reads wait for write-behind.
 *
 * Read-ahead invariants (`ra`, `raGen`, `raEof`; readAhead, prefetch, invalidate):
 * - Fresh: every chunk in the window was requested after the last change to the file made through fsx began;
 *   `invalidate()` empties the window and bumps `raGen`, and every change calls it before it is sent and after it is
 *   answered (through the backend's `touched`, for every handle of the path).
 * - Checked after waiting: a read remembers `raGen` when it starts and uses a chunk only if `raGen` is unchanged once
 *   the chunk has arrived; otherwise it reads the rest straight from the server.
 * - Taken, not looked up: a read takes the promises of all the chunks it needs synchronously when it starts. Other
 *   reads evict chunks behind them and invalidations clear the window while it waits; neither can take a chunk away
 *   from a read in progress (a lookup after a wait found nothing, issue 15).
 * - Total: a chunk a read cannot serve (not in the window: evicted, or past a known end; its fetch failed; stale) is
 *   read directly, so read-ahead never fails a read on its own account: the only errors a read returns are the
 *   server's, from a direct read.
 * - End of file: a chunk shorter than READAHEAD_CHUNK ends the file as of its fetch; no chunk past it is requested
 *   (`raEof`) until the next invalidation. A prefetch answered after an invalidation never sets `raEof`.
 * - Bounded: at most READAHEAD_MAX_CHUNKS chunks past the read that asked for them; a read drops the chunks wholly
 *   before its end; close drops the window.
 */
import type { SFTPWrapper } from 'ssh2'
import type { BackendFileHandle, OpenFlags } from '@fsx/sdk'
import { FALLBACK_IO_BYTES, isTransportError, type Session } from './connection.js'
import { OPEN, STATUS, statusOf } from './status.js'

/** Requests one read/write call keeps in flight: enough to fill a fast link, bounded for memory. */
export const MAX_INFLIGHT = 64
/**
 * Read-ahead for sequential reads. The kernel reads a FUSE file 128 KiB at a time and waits for each answer, so a
 * sequential reader would pay one round trip per 128 KiB. After READAHEAD_AFTER reads in a row, the handle keeps
 * the next chunks in flight (the window doubles up to READAHEAD_MAX_CHUNKS × READAHEAD_CHUNK = 2 MiB per handle),
 * and later reads are served from them. Any write, truncate or attribute change of the file through fsx drops the
 * window (before and after the change), so a read that follows a change never sees older bytes.
 */
export const READAHEAD_CHUNK = 128 * 1024
export const READAHEAD_AFTER = 2
export const READAHEAD_MAX_CHUNKS = 16
/**
 * Write-behind: a write returns once it is sent, not answered (as sshfs does), up to this many bytes in flight per
 * file; past it the writer waits. The kernel sends a sequential writer's data 128 KiB at a time and waits for each
 * answer, so without this every 128 KiB costs a round trip. Reads, truncates, attribute changes, fsync and close
 * of the file (and stat/open/rename… of its path, see the backend) wait until the writes are answered; the first
 * failure is reported by the next write, fsync or close, and until then reads of the file through any handle fail
 * with EIO (never the file without that write). Off with consistency=strong, and for appending writes.
 */
export const WRITE_BEHIND_BYTES = 4 * 1024 * 1024

/** What a handle needs from its backend. */
export interface HandleHost {
  readonly timeoutMs: number
  /** Writes return once sent (see WRITE_BEHIND_BYTES). */
  readonly writeBehind: boolean
  acquire (deadline: number): Promise<Session>
  req<T> (s: Session, what: string, fn: (sftp: SFTPWrapper, cb: (err?: Error | null, value?: any) => void) => void): Promise<T>
  /** Turns a failure into an errno error (may look at the server to tell codes apart). */
  fail (op: string, p: string, err: unknown): Promise<Error>
  error (code: string, op: string, p: string, message: string): Error
  absPath (p: string, op: string): string
  forget (h: SftpFileHandle): void
  /** The file at `p` changed through this handle: cached attributes of it are stale. */
  touched (p: string): void
  /** Waits for the write-behind writes of every open file at `p`. */
  drainPath (p: string): Promise<void>
  /** Waits for the write-behind writes in flight now through the other handles of the file at `p`. */
  drainOthers (p: string, self: SftpFileHandle): Promise<void>
  /** The failure of a write-behind write to the file at `p` (through any handle) not yet reported to its writer. */
  failedWrite (p: string): Error | undefined
  readonly stats: { reads: number, writes: number, bytesRead: number, bytesWritten: number, reopens: number, retries: number }
}

/** SFTP open flags for decoded open(2) flags. */
export function pflagsOf (f: OpenFlags): number {
  let p = 0
  if (f.read || !f.write) p |= OPEN.READ
  if (f.write) p |= OPEN.WRITE
  if (f.append) p |= OPEN.APPEND
  if (f.create) p |= OPEN.CREAT
  if (f.truncate) p |= OPEN.TRUNC
  if (f.exclusive) p |= OPEN.EXCL
  return p
}

/** Runs `fn` over `n` items with at most `limit` in flight; rejects with the first failure once all settled. */
async function eachLimit (n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  let failed: unknown
  await Promise.all(Array.from({ length: Math.min(limit, n) }, async () => {
    while (next < n && failed === undefined) {
      const i = next++
      try {
        await fn(i)
      } catch (err) {
        failed ??= err
      }
    }
  }))
  if (failed !== undefined) throw failed
}

export class SftpFileHandle implements BackendFileHandle {
  private reopening?: Promise<void>
  private closed = false
  /** Read-ahead: chunk index → its bytes (in flight or arrived); see READAHEAD_*. */
  private readonly ra = new Map<number, Promise<Buffer>>()
  /** Chunk index at which the file is known to end (no read-ahead past it). */
  private raEof = Infinity
  /** Bumped by every invalidation, so a read that waited on an old chunk knows to read again. */
  private raGen = 0
  /** End of the last read, and how many reads in a row were sequential. */
  private lastEnd = -1
  private seq = 0
  /** Write-behind writes not yet answered, their bytes, and the first error one of them met. */
  private readonly pending = new Set<Promise<void>>()
  private pendingBytes = 0
  private writeError?: Error
  private closing?: Promise<void>
  /** Set when the name this handle was opened under was removed or replaced through fsx: never reopened by path. */
  private detached = false

  constructor (
    private readonly host: HandleHost,
    /** Backend path; kept current by the backend across renames. */
    public path: string,
    readonly flags: OpenFlags,
    private session: Session | undefined,
    private handle: Buffer | undefined
  ) {}

  /** Flags for reopening after a reconnect: never create, exclude or truncate again. */
  private get reopenFlags (): number {
    return pflagsOf({ ...this.flags, create: false, exclusive: false, truncate: false })
  }

  private async reopen (deadline: number): Promise<void> {
    const s = await this.host.acquire(deadline)
    const full = this.host.absPath(this.path, 'open')
    const h = await this.host.req<Buffer>(s, 'reopen', (sftp, cb) => sftp.open(full, this.reopenFlags, {}, cb))
    if (this.closed) {
      this.host.req(s, 'close', (sftp, cb) => sftp.close(h, cb)).catch(() => {})
      return
    }
    this.session = s
    this.handle = h
    this.host.stats.reopens++
  }

  /** The backend path that names this handle's file now; undefined once detached (its name is gone). */
  get livePath (): string | undefined {
    return this.detached ? undefined : this.path
  }

  /** True when this handle is open on the file that backend path `p` names now. */
  isAt (p: string): boolean {
    return this.livePath === p
  }

  /**
   * The file's name was removed, or another file renamed over it, through fsx: this handle still reaches the file
   * on its session, but a reopen by path would find another file (or none), so it fails with ESTALE instead.
   */
  detach (): void {
    this.detached = true
  }

  /** The live session and server handle, reopening the file when its session died. */
  private async bind (deadline: number): Promise<[Session, Buffer]> {
    for (;;) {
      if (this.closed) throw this.host.error('EBADF', 'io', this.path, 'file is closed')
      if (this.session?.alive === true && this.handle !== undefined) return [this.session, this.handle]
      if (this.detached) throw this.host.error('ESTALE', 'reopen', this.path, 'the connection was re-established, and the file\'s name was removed or replaced since it was opened')
      this.reopening ??= this.reopen(deadline).finally(() => { this.reopening = undefined })
      try {
        await this.reopening
      } catch (err) {
        // The session the reopen went out on was lost too (a restart drops every connection, not all at once):
        // reopening is idempotent, so it is tried again on another until the deadline.
        if (isTransportError(err) && err.kind === 'lost' && !this.closed && Date.now() < deadline) {
          this.host.stats.retries++
          continue
        }
        if (statusOf(err) === STATUS.NO_SUCH_FILE) {
          throw this.host.error('ESTALE', 'reopen', this.path, 'the file is gone from the server since the connection was re-established')
        }
        throw await this.host.fail('open', this.path, err)
      }
    }
  }

  /** One request on this file's handle, sent again on a fresh session when its session is lost in flight. */
  private async io<T> (op: string, idempotent: boolean, fn: (sftp: SFTPWrapper, handle: Buffer, cb: (err?: Error | null, value?: any) => void) => void): Promise<T> {
    const deadline = Date.now() + this.host.timeoutMs
    for (;;) {
      const [s, h] = await this.bind(deadline)
      try {
        return await this.host.req<T>(s, op, (sftp, cb) => {
          // NB: checked again as the request goes out: the server reuses handle strings, so a request sent after
          // our CLOSE could land on another file opened meanwhile.
          if (this.closed) throw this.host.error('EBADF', op, this.path, 'file is closed')
          fn(sftp, h, cb)
        })
      } catch (err) {
        if (isTransportError(err) && err.kind === 'lost' && idempotent && !this.closed && Date.now() < deadline) {
          this.host.stats.retries++
          if (this.session === s) this.session = undefined
          continue
        }
        throw await this.host.fail(op, this.path, err)
      }
    }
  }

  private get readChunk (): number {
    return Math.max(4096, this.session?.maxRead ?? FALLBACK_IO_BYTES)
  }

  private get writeChunk (): number {
    return Math.max(4096, this.session?.maxWrite ?? FALLBACK_IO_BYTES)
  }

  /** One READ into target[off, off+len) at `pos`; resolves with the bytes the server sent (0 at EOF). */
  private async readOnce (target: Buffer, off: number, len: number, pos: number): Promise<number> {
    return await this.io<number>('read', true, (sftp, h, cb) => sftp.read(h, target, off, len, pos, (err, n) => cb(err, n ?? 0)))
  }

  async readInto (target: Buffer, length: number, position: number): Promise<number> {
    if (!this.flags.read && this.flags.write) throw this.host.error('EBADF', 'read', this.path, 'file not open for reading')
    const len = Math.min(length, target.length)
    if (len <= 0) return 0
    // Written data (through this handle or another of the file) is answered before it is read back, and a read
    // never returns the file without a write that was acknowledged and then failed: EIO until the writer is told.
    let failed: Error | undefined
    if (this.detached) {
      await this.drain()
      failed = this.writeError
    } else {
      await this.host.drainPath(this.path)
      failed = this.host.failedWrite(this.path)
    }
    if (failed !== undefined) {
      throw this.host.error('EIO', 'read', this.path, `an earlier write to this file failed after it returned (${failed.message}); it is reported by the writer's next write, fsync or close`)
    }
    const C = READAHEAD_CHUNK
    const hit = this.ra.has(Math.floor(position / C))
    // NB: the kernel's reads of a sequential stream arrive slightly out of order (several are in flight), so
    // "sequential" means near the furthest end read so far, not exactly at the last one's end.
    const near = this.lastEnd >= 0 && position >= this.lastEnd - 8 * C && position <= this.lastEnd + 2 * C
    this.lastEnd = near ? Math.max(this.lastEnd, position + len) : position + len
    if (hit || near) this.seq++
    else this.seq = 0
    if (!hit && this.seq < READAHEAD_AFTER) return await this.readDirect(target, len, position)
    return await this.readAhead(target, len, position)
  }

  /**
   * Serves a read from the read-ahead window, extending the window past it. Never fails on its own account: a chunk
   * it cannot serve (not in the window, its fetch failed, or the file changed through fsx meanwhile) is read directly,
   * so the only errors a read sees are those of the server.
   */
  private async readAhead (target: Buffer, len: number, position: number): Promise<number> {
    const C = READAHEAD_CHUNK
    const first = Math.floor(position / C)
    const last = Math.floor((position + len - 1) / C)
    this.prefetch(first, last + 1 + Math.min(READAHEAD_MAX_CHUNKS, 2 ** Math.min(this.seq, 4)))
    const gen = this.raGen
    // NB: take every chunk this read needs now, before the first wait: other reads evict chunks behind them and
    // writes clear the window while this one waits, and a chunk looked up after a wait may be gone (issue 15).
    const chunks: Array<Promise<Buffer> | undefined> = []
    for (let c = first; c <= last; c++) chunks.push(this.ra.get(c))
    let copied = 0
    for (let i = 0; i < chunks.length; i++) {
      const p = chunks[i]
      if (p === undefined) break // past a known end of file, or evicted: read directly
      let data: Buffer
      try {
        data = await p
      } catch {
        // The fetch failed: forget that chunk (a later read fetches it again) and read directly.
        const c = first + i
        if (this.ra.get(c) === p) this.ra.delete(c)
        break
      }
      if (gen !== this.raGen) break // changed through fsx while we waited: these bytes may be older than the change
      const cStart = (first + i) * C
      const from = Math.max(position, cStart) - cStart
      const to = Math.min(position + len, cStart + data.length) - cStart
      if (to > from) {
        data.copy(target, cStart + from - position, from, to)
        copied += to - from
      }
      if (data.length < C) {
        this.evictBefore(position + copied)
        return copied // end of file
      }
    }
    if (copied < len) copied += await this.readDirect(target.subarray(copied), len - copied, position + copied)
    this.evictBefore(position + copied)
    return copied
  }

  /** Drops the chunks that lie wholly before `end` (a read got that far; reads in progress hold their own). */
  private evictBefore (end: number): void {
    const keepFrom = Math.floor(end / READAHEAD_CHUNK)
    for (const k of this.ra.keys()) if (k < keepFrom) this.ra.delete(k)
  }

  /** Requests the chunks [from, to) not yet requested (never past a known end of file). */
  private prefetch (from: number, to: number): void {
    const C = READAHEAD_CHUNK
    for (let c = from; c < to && c < this.raEof; c++) {
      if (this.ra.has(c)) continue
      const gen = this.raGen
      const p = (async () => {
        const buf = Buffer.allocUnsafe(C)
        const n = await this.readDirect(buf, C, c * C)
        if (n < C && gen === this.raGen) this.raEof = Math.min(this.raEof, c + 1)
        return n === C ? buf : buf.subarray(0, n)
      })()
      p.catch(() => {}) // a failed prefetch is noticed by the read that wants it, which reads that chunk directly
      this.ra.set(c, p)
    }
  }

  /**
   * This handle changes the file: what is remembered about it is dropped, here and (through the backend) for every
   * handle and cached attribute of its path. A detached handle's file has no path any more: only its own window.
   */
  private changed (): void {
    this.invalidate()
    if (!this.detached) this.host.touched(this.path)
  }

  /** Drops the read-ahead window: the file changed (through this handle or another of the same path). */
  invalidate (): void {
    this.ra.clear()
    this.raEof = Infinity
    this.raGen++
  }

  /** Reads target[0, len) at `position` straight from the server: all requests in flight at once. */
  private async readDirect (target: Buffer, len: number, position: number): Promise<number> {
    if (len <= 0) return 0
    const chunk = this.readChunk
    const n = Math.ceil(len / chunk)
    const got = new Array<number>(n).fill(0)
    await eachLimit(n, MAX_INFLIGHT, async i => {
      const o = i * chunk
      got[i] = await this.readOnce(target, o, Math.min(chunk, len - o), position + o)
    })
    let total = 0
    for (let i = 0; i < n; i++) {
      const o = i * chunk
      const want = Math.min(chunk, len - o)
      total += got[i]
      if (got[i] === want) continue
      if (got[i] === 0) break
      // A short answer that is not EOF (a server with a smaller limit): complete this chunk in order.
      let at = o + got[i]
      while (at < o + want) {
        const k = await this.readOnce(target, at, o + want - at, position + at)
        if (k === 0) {
          this.count(total, 0)
          return total
        }
        at += k
        total += k
      }
    }
    this.count(total, 0)
    return total
  }

  async read (offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Math.max(0, length))
    const n = await this.readInto(buf, length, offset)
    return n === buf.length ? buf : buf.subarray(0, n)
  }

  async write (offset: number, data: Buffer): Promise<number> {
    if (!this.flags.write) throw this.host.error('EBADF', 'write', this.path, 'file not open for writing')
    this.throwWriteError()
    if (data.length === 0) return 0
    // NB: writes through another handle of the file that returned before this one are answered first: in flight
    // on another connection, they could land after this one and undo it (the server orders only one connection).
    if (!this.detached) await this.host.drainOthers(this.path, this)
    // Appending writes land where the server says, so they are never in flight together (nor repeated).
    if (!this.host.writeBehind || this.flags.append) {
      await this.writeNow(offset, data)
      return data.length
    }
    // Write-behind: the caller's buffer is reused once we return, so the bytes are copied first.
    const copy = Buffer.from(data)
    const w = this.writeNow(offset, copy).then(() => {}, (err: Error) => { this.writeError ??= err })
    this.pending.add(w)
    this.pendingBytes += copy.length
    void w.finally(() => {
      this.pending.delete(w)
      this.pendingBytes -= copy.length
    })
    while (this.pendingBytes > WRITE_BEHIND_BYTES && this.pending.size > 0) await Promise.race(this.pending)
    this.throwWriteError()
    return data.length
  }

  /** Sends `data` at `offset`, split to the server's write limit, all pieces in flight at once. */
  private async writeNow (offset: number, data: Buffer): Promise<void> {
    this.changed()
    const chunk = this.writeChunk
    const n = Math.ceil(data.length / chunk)
    await eachLimit(n, MAX_INFLIGHT, async i => {
      const o = i * chunk
      const len = Math.min(chunk, data.length - o)
      await this.io<void>('write', !this.flags.append, (sftp, h, cb) => sftp.write(h, data, o, len, offset + o, err => cb(err)))
    }).finally(() => this.changed())
    this.count(0, data.length)
  }

  /** True while written data is still on its way to the server. */
  get busy (): boolean {
    return this.pending.size > 0
  }

  /** The failure of a write-behind write of this handle, not yet reported to the writer. */
  get writeFailure (): Error | undefined {
    return this.writeError
  }

  /** Waits until every write-behind write has been answered (errors stay recorded for the next call). */
  async drain (): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }

  /** Waits until the write-behind writes in flight now have been answered (not those sent meanwhile). */
  async settled (): Promise<void> {
    if (this.pending.size > 0) await Promise.all([...this.pending])
  }

  /**
   * Waits for the writes of this file through every handle (a truncate, attribute change or fsync through one
   * handle comes after what was written through the others, as on a local file), then throws this handle's own
   * write failure, or EIO for another handle's that its writer has not been told yet.
   */
  private async drainFile (op: string): Promise<void> {
    await this.drain()
    if (this.detached) {
      this.throwWriteError()
      return
    }
    await this.host.drainPath(this.path)
    this.throwWriteError()
    const failed = this.host.failedWrite(this.path)
    if (failed !== undefined) {
      throw this.host.error('EIO', op, this.path, `a write to this file through another handle failed after it returned (${failed.message})`)
    }
  }

  /** Throws (once) the first error of a write-behind write. */
  private throwWriteError (): void {
    const err = this.writeError
    if (err === undefined) return
    this.writeError = undefined
    throw err
  }

  async truncate (size: number): Promise<void> {
    if (!this.flags.write) throw this.host.error('EBADF', 'truncate', this.path, 'file not open for writing')
    await this.drainFile('ftruncate')
    this.changed()
    await this.io<void>('ftruncate', true, (sftp, h, cb) => sftp.fsetstat(h, { size }, err => cb(err)))
      .finally(() => this.changed())
  }

  /** Sets attributes through the handle (mode bits, owner, times in seconds), as fsetstat. */
  async setAttrs (attrs: { mode?: number, uid?: number, gid?: number, atime?: number, mtime?: number }): Promise<void> {
    await this.drainFile('fsetstat')
    this.changed()
    await this.io<void>('fsetstat', true, (sftp, h, cb) => sftp.fsetstat(h, attrs, err => cb(err)))
      .finally(() => this.changed())
  }

  /**
   * Waits for every write of the file, through any handle, to be answered (reporting the first failure of a
   * write-behind write), then asks the server to fsync (fsync@openssh.com where offered; elsewhere an answered
   * write is as durable as it gets).
   */
  async sync (): Promise<void> {
    await this.drainFile('fsync')
    const deadline = Date.now() + this.host.timeoutMs
    const [s] = await this.bind(deadline)
    if (!s.has('fsync@openssh.com')) return
    await this.io<void>('fsync', true, (sftp, h, cb) => sftp.ext_openssh_fsync(h, err => cb(err)))
  }

  async close (): Promise<void> {
    this.closing ??= this.doClose()
    await this.closing
  }

  private async doClose (): Promise<void> {
    await this.drain()
    this.closed = true
    this.invalidate()
    this.host.forget(this)
    const s = this.session
    const h = this.handle
    this.session = undefined
    this.handle = undefined
    // A handle whose connection died was closed by the server with it.
    if (s?.alive === true && h !== undefined) {
      try {
        await this.host.req<void>(s, 'close', (sftp, cb) => sftp.close(h, err => cb(err)))
      } catch (err) {
        if (!(isTransportError(err) && err.kind === 'lost')) throw await this.host.fail('close', this.path, err)
      }
    }
    this.throwWriteError()
  }

  private count (read: number, written: number): void {
    if (read > 0) { this.host.stats.reads++; this.host.stats.bytesRead += read }
    if (written > 0) { this.host.stats.writes++; this.host.stats.bytesWritten += written }
  }
}
