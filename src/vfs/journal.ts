/**
 * The write-back journal for remote backends (S3, SFTP: every backend whose writes the Vfs stages), used with
 * `writeback=true`: close() returns once the file's new content is journaled on local disk; the upload (of the whole
 * file) happens in the background; fsync() waits for it. After a crash (kill -9) the journal is replayed at the next
 * mount of the same source, so nothing acknowledged is lost.
 *
 * Layout, under `<cacheDir>/journal/<source id>/`: one entry per acknowledged version of an object,
 * `<seq>.data` (a snapshot of the whole content) and `<seq>.json` (path, size, mode, owner, mtime), plus a `lock`.
 * `seq` grows across restarts, so a scan replays entries in commit order.
 *
 * Invariants:
 * - An entry is durable before `commit` resolves: the data and the record are fsync'ed, then the directory. The
 *   record is written last and removed first, so a crash never leaves a record without its data.
 * - Per path at most one upload is in flight and at most one entry waits behind it; a newer commit replaces the
 *   waiting one (each entry is the whole object, so only the latest matters). Uploads of one path happen in commit
 *   order, so an older version never overwrites a newer one. Uploads of different paths run in parallel: up to
 *   `uploaders` (16) at once, of which at most LARGE_UPLOADERS are large (each of those is itself a multipart upload
 *   with parallel parts buffered in memory).
 * - Dirty bytes (entries not yet uploaded) are bounded by `maxDirtyBytes`: `commit` waits (back-pressure) while
 *   over it, but always admits an entry when nothing else is pending, so one large file cannot deadlock.
 * - A failed upload stays journaled and is retried with exponential backoff; whoever waits for that path (`flush`)
 *   gets the error of the failed attempt.
 * - With `delayMs`, a path's waiting entry is uploaded no sooner than `delayMs` after its last commit (each commit
 *   restarts the wait, so a file rewritten again and again is uploaded once); `flush` (fsync, `fsx flush`, unmount)
 *   and back-pressure send waiting entries at once. Entries replayed after a crash go at once.
 * - The snapshot is a copy (a reflink where the filesystem can), never a hard link: the application may keep
 *   writing the staging file after close, and the journal must hold exactly what was acknowledged.
 */
import { constants as fsConstants } from 'node:fs'
import { copyFile, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Backend, Stat } from '../backend/types.js'
import { DIR_LOCK_FILE, lockDir, unlockDir } from './dir-lock.js'
import { unlinkQuiet } from './unlink-quiet.js'

/** What an entry records about the object besides its content. */
export interface JournalAttrs {
  mode: number
  uid: number
  gid: number
  mtimeMs: number
}

export interface JournalRecord extends JournalAttrs {
  seq: number
  path: string
  size: number
}

export interface JournalOptions {
  dir: string
  backend: Backend
  /** Bound on bytes journaled but not yet uploaded (back-pressure above it). */
  maxDirtyBytes: number
  /**
   * Called after an object was uploaded (so the caller can forget what it cached about it), with the attributes
   * the backend's write answered (if any) and the entry's file. The file is removed once a promise returned here
   * settles (so the caller may open it first, to keep the content it names).
   */
  onUploaded?: (p: string, written: Stat | undefined, file: string) => Promise<void> | void
  log?: (line: string) => void
  /** First retry delay after a failed upload, in ms (doubles up to 30 s). */
  retryMs?: number
  /** How long a committed entry waits before its upload starts, in ms (0: at once). */
  delayMs?: number
  /** Uploads of different paths at once (default UPLOADERS). */
  uploaders?: number
}

/** Uploads running at once across paths: a small file's upload is one round trip, so many small files (an untar)
 *  upload as fast as the link allows only with many in flight (geesefs runs 16 flushers); few enough to leave the
 *  backend's connections to readers. */
export const UPLOADERS = 16
/** Of those, uploads of large entries (over LARGE_BYTES: multipart uploads, each with its own parallel parts). */
export const LARGE_UPLOADERS = 4
export const LARGE_BYTES = 8 * 1024 * 1024
const MAX_RETRY_MS = 30_000

interface PathState {
  inflight?: JournalRecord
  queued?: JournalRecord
  /** Waiters for "nothing journaled for this path any more" (or the next failed attempt). */
  waiters: Array<{ resolve: () => void, reject: (err: unknown) => void }>
  retryTimer?: NodeJS.Timeout
  retryMs?: number
  /** The path is being removed: a failed in-flight upload is dropped, not retried. */
  discarding?: boolean
  /** `delayMs`: the queued entry's upload starts no sooner than this (clock ms). */
  due?: number
  /** Uploaded; its entry's files are being removed: `flush` waits for that too. */
  finishing?: boolean
}

async function fsyncPath (p: string): Promise<void> {
  const fh = await open(p, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

export class Journal {
  private readonly paths = new Map<string, PathState>()
  private seq = Date.now() * 1000
  private active = 0
  private activeLarge = 0
  private dirty = 0
  private flushed = 0
  private errors = 0
  private closed = false
  private usable = false
  private readonly spaceWaiters: Array<() => void> = []
  /** `delayMs`: wakes `kick` when the next waiting entry is due. */
  private dueTimer?: NodeJS.Timeout
  private dueAt = Infinity
  readonly ready: Promise<void>

  constructor (private readonly opts: JournalOptions) {
    this.ready = this.init()
  }

  /** False when the journal directory cannot be used (then the caller writes through). */
  get enabled (): boolean { return this.usable }

  private file (seq: number, ext: 'data' | 'json'): string {
    return path.join(this.opts.dir, `${String(seq).padStart(20, '0')}.${ext}`)
  }

  private state (p: string): PathState {
    let s = this.paths.get(p)
    if (!s) { s = { waiters: [] }; this.paths.set(p, s) }
    return s
  }

  // ---- start-up and replay ----------------------------------------------------------------------------------------

  private async init (): Promise<void> {
    const dir = this.opts.dir
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await lockDir(dir, 'the write-back journal')
    } catch (err) {
      this.opts.log?.(`write-back journal off (writing through): ${(err as Error).message}`)
      return
    }
    this.usable = true
    const records: JournalRecord[] = []
    const names = new Set(await readdir(dir))
    for (const name of names) {
      const m = /^(\d+)\.(json|data)$/.exec(name)
      if (!m) { if (name !== DIR_LOCK_FILE) await rm(path.join(dir, name), { force: true }); continue }
      const seq = Number(m[1])
      this.seq = Math.max(this.seq, seq + 1)
      if (m[2] === 'data') {
        if (!names.has(`${m[1]}.json`)) await rm(path.join(dir, name), { force: true }) // a commit cut short
        continue
      }
      try {
        const r = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as JournalRecord
        if (!names.has(`${m[1]}.data`) || typeof r.path !== 'string') throw new Error('incomplete entry')
        records.push({ ...r, seq })
      } catch {
        await rm(path.join(dir, name), { force: true })
      }
    }
    records.sort((a, b) => a.seq - b.seq)
    for (const r of records) this.enqueue(r, false)
    if (records.length > 0) this.opts.log?.(`write-back journal: replaying ${records.length} upload(s) left by an earlier run`)
  }

  // ---- commit -----------------------------------------------------------------------------------------------------

  /**
   * Journals the current content of `source` (the first `size` bytes) as the new version of `p`; resolves once it
   * is durable on local disk. The upload starts in the background.
   */
  async commit (p: string, source: string, size: number, attrs: JournalAttrs): Promise<void> {
    await this.ready
    if (!this.usable) throw new Error('the write-back journal is not usable')
    while (this.dirty > 0 && this.dirty + size > this.opts.maxDirtyBytes && !this.closed) {
      this.expedite() // space is what waiting entries are holding: they go now
      await new Promise<void>(resolve => this.spaceWaiters.push(resolve))
    }
    const seq = this.seq++
    const data = this.file(seq, 'data')
    const json = this.file(seq, 'json')
    const record: JournalRecord = { seq, path: p, size, ...attrs }
    try {
      await copyFile(source, data, fsConstants.COPYFILE_FICLONE)
      const fh = await open(data, 'r+')
      try {
        if ((await fh.stat()).size !== size) await fh.truncate(size)
        await fh.sync()
      } finally {
        await fh.close()
      }
      const tmp = `${json}.tmp`
      await writeFile(tmp, JSON.stringify(record), { mode: 0o600 })
      await fsyncPath(tmp)
      await rename(tmp, json)
      await fsyncPath(this.opts.dir)
    } catch (err) {
      await unlinkQuiet(json)
      await unlinkQuiet(data)
      throw err
    }
    this.enqueue(record)
  }

  private enqueue (r: JournalRecord, delayed = true): void {
    const s = this.state(r.path)
    const delay = delayed ? this.opts.delayMs ?? 0 : 0
    s.due = delay > 0 ? Date.now() + delay : undefined
    const replaced = s.queued
    if (replaced) {
      this.dirty -= replaced.size
      void this.removeEntry(replaced)
    }
    this.dirty += r.size
    s.queued = r
    this.kick()
  }

  private async removeEntry (r: JournalRecord): Promise<void> {
    await unlinkQuiet(this.file(r.seq, 'json'))
    await unlinkQuiet(this.file(r.seq, 'data'))
  }

  // ---- uploads ----------------------------------------------------------------------------------------------------

  private kick (): void {
    if (this.closed && this.active === 0 && !this.draining) return
    const now = Date.now()
    const max = this.opts.uploaders ?? UPLOADERS
    let next = Infinity
    for (const [p, s] of this.paths) {
      if (this.active >= max) return
      if (!s.queued || s.inflight || s.retryTimer) continue
      if (s.due !== undefined && s.due > now) { next = Math.min(next, s.due); continue }
      if (s.queued.size <= LARGE_BYTES || this.activeLarge < LARGE_UPLOADERS) void this.upload(p, s)
    }
    if (next < this.dueAt) {
      if (this.dueTimer) clearTimeout(this.dueTimer)
      this.dueAt = next
      this.dueTimer = setTimeout(() => { this.dueTimer = undefined; this.dueAt = Infinity; this.kick() }, Math.max(0, next - now))
      this.dueTimer.unref()
    }
  }

  /** Every waiting entry goes now, whatever `delayMs` said. */
  private expedite (): void {
    for (const s of this.paths.values()) s.due = undefined
    this.kick()
  }

  private draining = false

  private async upload (p: string, s: PathState): Promise<void> {
    const r = s.queued!
    s.queued = undefined
    s.inflight = r
    this.active++
    const large = r.size > LARGE_BYTES
    if (large) this.activeLarge++
    try {
      const written = await this.opts.backend.write(r.path, { file: this.file(r.seq, 'data'), size: r.size }, { mode: r.mode, uid: r.uid, gid: r.gid, mtimeMs: r.mtimeMs })
      // NB: the backend holds this version now. What the caches still say of the previous one must go before the
      // entry stops answering for it (or its file disappears): an open in between took the cached, older size and
      // staged a copy cut to it, losing the end of an acknowledged write.
      s.inflight = undefined
      s.retryMs = undefined
      this.dirty -= r.size
      this.flushed++
      const hold = this.opts.onUploaded?.(r.path, written ?? undefined, this.file(r.seq, 'data'))
      s.finishing = true
      if (hold) await hold.catch(() => {})
      await this.removeEntry(r).catch(() => {}) // replayed (re-uploaded, harmless) at the next start if left
      s.finishing = false
      this.wakeSpace()
      if (!s.queued) this.settle(p, s)
    } catch (err) {
      this.errors++
      s.inflight = undefined
      // Keep the entry unless a newer one replaced it meanwhile or the path is being removed.
      if (s.queued || s.discarding) { void this.removeEntry(r); this.dirty -= r.size; this.wakeSpace() } else s.queued = r
      this.opts.log?.(`write-back upload of ${r.path} failed (kept in the journal, retrying): ${(err as Error).message}`)
      const waiters = s.waiters.splice(0)
      for (const w of waiters) w.reject(err)
      if (s.queued) {
        s.retryMs = Math.min(MAX_RETRY_MS, (s.retryMs ?? (this.opts.retryMs ?? 1000) / 2) * 2)
        s.retryTimer = setTimeout(() => { s.retryTimer = undefined; this.kick() }, s.retryMs)
        s.retryTimer.unref()
      }
    } finally {
      this.active--
      if (large) this.activeLarge--
      this.kick()
    }
  }

  private settle (p: string, s: PathState): void {
    if (s.queued || s.inflight) return
    for (const w of s.waiters.splice(0)) w.resolve()
    if (!s.retryTimer) this.paths.delete(p)
  }

  private wakeSpace (): void {
    for (const w of this.spaceWaiters.splice(0)) w()
  }

  // ---- what the VFS asks ------------------------------------------------------------------------------------------

  /** Nothing is journaled or uploading now (a path's state goes once its last upload settled). */
  get idle (): boolean {
    return this.paths.size === 0
  }

  /** The newest journaled (not yet uploaded) version of `p`, if any. */
  pending (p: string): JournalRecord | undefined {
    const s = this.paths.get(p)
    return s?.queued ?? s?.inflight
  }

  /** Paths directly in directory `dir` with a version journaled and not uploaded yet. */
  pendingIn (dir: string): string[] {
    const base = dir === '/' ? '/' : dir + '/'
    const out: string[] = []
    for (const [p, s] of this.paths) {
      if ((s.queued ?? s.inflight) !== undefined && p.startsWith(base) && !p.slice(base.length).includes('/')) out.push(p)
    }
    return out
  }

  /** The file holding a journaled version's content (removed once uploaded: open it, then read). */
  dataFile (r: JournalRecord): string { return this.file(r.seq, 'data') }

  /** Is anything journaled for `p` (or, with `tree`, below it)? */
  has (p: string, tree = false): boolean {
    if (this.pending(p)) return true
    if (!tree) return false
    const below = p === '/' ? '/' : p + '/'
    for (const [q, s] of this.paths) if (q.startsWith(below) && (s.queued || s.inflight)) return true
    return false
  }

  /** Retries now every upload waiting out its retry delay (the backend answers again). */
  retryNow (): void {
    for (const s of this.paths.values()) {
      if (s.retryTimer) { clearTimeout(s.retryTimer); s.retryTimer = undefined }
    }
    this.kick()
  }

  /** Resolves once everything journaled for `p` is uploaded; rejects with the error of a failed attempt. */
  async flush (p: string): Promise<void> {
    await this.ready
    const s = this.paths.get(p)
    if (!s || (!s.queued && !s.inflight && s.finishing !== true)) return
    if (s.due !== undefined) { s.due = undefined; this.kick() }
    if (s.retryTimer) { clearTimeout(s.retryTimer); s.retryTimer = undefined; this.kick() }
    await new Promise<void>((resolve, reject) => s.waiters.push({ resolve, reject }))
  }

  /** `flush` for `p` and every path below it. */
  async flushTree (p: string): Promise<void> {
    await this.ready
    const below = p === '/' ? '/' : p + '/'
    const paths = [...this.paths.keys()].filter(q => q === p || q.startsWith(below))
    for (const q of paths) await this.flush(q)
  }

  /** Forgets what is journaled for `p` (it is being removed): drops the waiting entry, waits for one in flight. */
  async discard (p: string): Promise<void> {
    await this.ready
    const s = this.paths.get(p)
    if (!s) return
    if (s.queued) {
      const r = s.queued
      s.queued = undefined
      this.dirty -= r.size
      await this.removeEntry(r)
      this.wakeSpace()
    }
    if (s.retryTimer) { clearTimeout(s.retryTimer); s.retryTimer = undefined }
    if (s.inflight) {
      s.discarding = true
      await new Promise<void>(resolve => s.waiters.push({ resolve, reject: () => resolve() }))
      s.discarding = false
    }
    this.settle(p, s)
  }

  counters (): { dirtyBytes: number, queued: number, inFlight: number, flushed: number, errors: number } {
    let queued = 0
    let inFlight = 0
    for (const s of this.paths.values()) { if (s.queued) queued++; if (s.inflight) inFlight++ }
    return { dirtyBytes: this.dirty, queued, inFlight, flushed: this.flushed, errors: this.errors }
  }

  /**
   * Uploads everything still journaled (a clean unmount), then releases the directory. Entries whose upload fails
   * stay on disk for the next mount. Resolves with the number of objects left behind.
   */
  async close (): Promise<number> {
    await this.ready
    if (!this.usable) return 0
    this.draining = true
    for (const p of [...this.paths.keys()]) await this.flush(p).catch(() => {})
    this.closed = true
    this.draining = false
    if (this.dueTimer) clearTimeout(this.dueTimer)
    let left = 0
    for (const s of this.paths.values()) {
      if (s.retryTimer) clearTimeout(s.retryTimer)
      if (s.queued || s.inflight) left++
    }
    this.wakeSpace()
    await unlockDir(this.opts.dir)
    this.usable = false
    return left
  }
}
