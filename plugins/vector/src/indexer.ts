/**
 * The vector index of one mount: keeps the HNSW index (engine.ts, on its own thread) and the catalog (catalog.ts)
 * in step with the `.vec` and `.fvecs` files the mount serves, persists them in the mount's state directory, and
 * answers searches.
 *
 * How changes flow. Every change is a task in one FIFO queue, applied one at a time in order:
 * - a commit event from the VFS (`onCommit`): a file's write → read and (re)index it; unlink → drop it; rename →
 *   move its records (a directory's too);
 * - the validation walk at mount and the rebuild (`fsx vector reindex`): a file whose version (ETag, else size and
 *   mtime) differs from the catalog's, or that the walk did not find, gets a `check` task (re-stat; unchanged →
 *   nothing, gone → drop, changed → re-read);
 * - periodic saves, and the reset that starts a rebuild.
 * Reads run ahead of the applier (READ_AHEAD tasks), but a read always starts after the change it answers was
 * committed, so the last read applied for a path is never older than its last commit: the index converges to what
 * the mount serves. A read that finds the file gone just as a rename moved it is remembered (`missed`), and the
 * rename re-reads the new name.
 *
 * Reads go through the mount (ctx.files), so a staged or journaled version is what gets indexed. Parsing and
 * native index calls happen on the engine's thread, never on the thread that serves FUSE.
 *
 * Searches first wait (up to CATCH_UP_MS) until every task queued before them is applied, so a search sees every
 * write committed (closed or fsynced) before it was asked. The walk queues at most WALK_QUEUE tasks ahead, so a
 * commit never waits behind a whole rebuild.
 *
 * Persistence: `index.json` (the catalog, naming its index file) and `index-<generation>.usearch`, written as a new
 * generation and switched by renaming index.json, so a crash leaves the old pair or the new one. After a kill -9 the
 * saved pair is up to SAVE_EVERY_MS old; the validation walk at the next mount brings it up to date.
 */
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import * as hdr from 'hdr-histogram-js'
import type { Stat } from '../../../src/backend/types.js'
import type { MountFiles, VfsChange } from '../../../src/extension/types.js'
import { Catalog, decodeKey, isUnder, versionOf, type Metric } from './catalog.js'
import { Engine, CONNECTIVITY } from './engine.js'
import { formatOf, MAX_DIM } from './formats.js'

/** Reads in flight ahead of the applier: hides backend round trips (S3, SFTP) without holding many files in memory. */
const READ_AHEAD = 8
/** Tasks the validation walk keeps queued at most, so a commit event waits behind no more than these. */
const WALK_QUEUE = 256
/** Directories the walk lists at once. */
const WALK_PARALLEL = 4
/** A search waits at most this long for the tasks queued before it, then answers from what is applied. */
const CATCH_UP_MS = 5_000
/** After a change, the index is saved within this long (and at a clean unmount). */
export const SAVE_EVERY_MS = 10_000
/** How often the walk logs its progress. */
const PROGRESS_EVERY_MS = 5_000
/** At a clean unmount, queued tasks are applied for at most this long; the rest is found by the next validation. */
const CLOSE_DRAIN_MS = 5_000
/** Paths remembered as "read found it gone" for a rename that may follow (see `missed`). */
const MISSED_MAX = 10_000
/** Invalid files listed by `status` at most. */
const STATUS_INVALID_MAX = 100

export interface IndexerOptions {
  files: MountFiles
  stateDir: string
  /** Dimension from the vectorDim setting; 0: fixed by the first vector indexed. */
  dim: number
  metric: Metric
  /** Files larger than this are left out of the index. */
  maxFileBytes: number
  log: (line: string) => void
  /** Builds errors with an errno code (the kit's factory). */
  error: (code: string, message: string) => Error
}

type Task =
  | { kind: 'read', path: string, check: boolean, prepared?: Promise<Prepared> }
  | { kind: 'remove', path: string }
  | { kind: 'rename', from: string, to: string }
  | { kind: 'save' }
  | { kind: 'reset' }

type Prepared =
  | { kind: 'content', version: string, bytes: Buffer }
  | { kind: 'invalid', version: string, reason: string }
  | { kind: 'gone' }
  | { kind: 'same' }
  | { kind: 'error', message: string }

export interface SearchHit { path: string, index: number, distance: number }

/** What `status` answers (and `fsx vector status` prints). */
export interface IndexStatus {
  vectors: number
  files: number
  invalidFiles: number
  dim: number
  metric: Metric
  pending: number
  /** The walk running now (validation at mount, or a rebuild), with its progress. */
  walk?: WalkProgress
  /** The last walk that finished. */
  lastWalk?: WalkProgress & { seconds: number }
  invalid: Array<{ path: string, reason: string }>
  engineFailed?: string
}

export interface WalkProgress {
  reason: 'validation' | 'rebuild'
  directories: number
  files: number
  checked: number
  startedAt: string
}

const HIST = { lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 as const }

export class Indexer {
  catalog: Catalog
  private readonly engine = new Engine()
  private readonly queue: Task[] = []
  /** Tasks ever queued / applied: a search waits until `applied` reaches `queued` as it was when it arrived. */
  private queuedCount = 0
  private appliedCount = 0
  private running = false
  /** Set by `close` once draining is over: the applier stops after the task in hand. */
  private stopApplying = false
  private readonly waiters: Array<{ target: number, resolve: () => void }> = []
  private readonly missed = new Set<string>()
  private generation = 0
  private dirty = false
  private saveTimer?: NodeJS.Timeout
  private closing = false
  private walkToken = 0
  private walking?: WalkProgress
  private lastWalk?: WalkProgress & { seconds: number }
  private readonly invalidReasons = new Map<string, string>()
  private readonly searchHist = hdr.build(HIST)
  private readonly counters = { indexed: 0, readErrors: 0, searches: 0, searchErrors: 0 }
  private diskBytes = 0

  private constructor (private readonly opts: IndexerOptions) {
    this.catalog = new Catalog(opts.metric)
    this.catalog.dim = opts.dim
  }

  /**
   * Loads the saved index and catalog (or starts empty), then validates them against the mount in the background.
   * A saved index made with another metric or dimension, or that does not match its catalog, is rebuilt.
   */
  static async open (opts: IndexerOptions): Promise<Indexer> {
    const ix = new Indexer(opts)
    await mkdir(opts.stateDir, { recursive: true })
    const reason = await ix.load()
    if (reason !== undefined) {
      opts.log(`rebuilding the index from the mount: ${reason}`)
      ix.catalog = new Catalog(opts.metric)
      ix.catalog.dim = opts.dim
      ix.generation = 0
      await ix.engine.open(opts.dim, opts.metric)
      ix.dirty = true
      void ix.walk('rebuild')
    } else {
      void ix.walk('validation')
    }
    return ix
  }

  /** Loads the saved pair; resolves with why it cannot be used (nothing saved is not a reason to say anything). */
  private async load (): Promise<string | undefined> {
    let text: string
    try {
      text = await readFile(path.join(this.opts.stateDir, 'index.json'), 'utf8')
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        await this.engine.open(this.opts.dim, this.opts.metric)
        this.dirty = true
        return undefined
      }
      return `cannot read the saved catalog: ${(err as Error).message}`
    }
    let c: Catalog
    let gen: number
    let sha: string | undefined
    try {
      const j = JSON.parse(text)
      c = Catalog.fromJSON(j)
      gen = Number(j.generation)
      sha = typeof j.indexSha256 === 'string' ? j.indexSha256 : undefined
      if (!Number.isInteger(gen) || gen < 0 || (gen > 0 && sha === undefined)) throw new Error('bad generation')
    } catch (err) {
      return `the saved catalog is unusable (${(err as Error).message})`
    }
    if (c.metric !== this.opts.metric) return `vectorMetric changed from ${c.metric} to ${this.opts.metric}`
    if (this.opts.dim > 0 && c.dim > 0 && c.dim !== this.opts.dim) return `vectorDim changed from ${c.dim} to ${this.opts.dim}`
    if (c.dim === 0) c.dim = this.opts.dim
    try {
      const file = gen > 0 ? this.indexFile(gen) : undefined
      const size = await this.engine.open(c.dim, c.metric, file !== undefined ? { file, sha256: sha! } : undefined)
      if (size !== c.vectors) return `the saved index holds ${size} vectors, its catalog ${c.vectors}`
      if (file !== undefined) this.diskBytes = (await stat(file)).size
    } catch (err) {
      return `the saved index cannot be loaded (${(err as Error).message})`
    }
    this.catalog = c
    this.generation = gen
    for (const [p, r] of c.files) if (r.invalid !== undefined) this.invalidReasons.set(p, r.invalid)
    return undefined
  }

  private indexFile (gen: number): string {
    return path.join(this.opts.stateDir, `index-${gen}.usearch`)
  }

  // ---- changes ----------------------------------------------------------------------------------------------------

  /** A commit event from the VFS. Synchronous: queues a task. */
  onCommit (change: VfsChange): void {
    if (this.closing) return
    switch (change.kind) {
      case 'write':
        if (formatOf(change.path) !== undefined) this.enqueue({ kind: 'read', path: change.path, check: false })
        break
      case 'remove':
        if (formatOf(change.path) !== undefined) this.enqueue({ kind: 'remove', path: change.path })
        break
      case 'rename':
        this.enqueue({ kind: 'rename', from: change.from, to: change.to })
        break
    }
  }

  private enqueue (t: Task): void {
    this.queue.push(t)
    this.queuedCount++
    this.pump()
  }

  /** Runs the applier until the queue is empty (one applier at a time). */
  private pump (): void {
    if (this.running) return
    this.running = true
    void (async () => {
      try {
        while (this.queue.length > 0 && !(this.closing && this.stopApplying)) {
          // Read ahead, but not past a reset: a check compares with the catalog, which the reset replaces.
          for (let i = 0; i < Math.min(READ_AHEAD, this.queue.length); i++) {
            const t = this.queue[i]
            if (t.kind === 'reset' && i > 0) break
            if (t.kind === 'read' && t.prepared === undefined) t.prepared = this.prepare(t.path, t.check)
          }
          const t = this.queue[0]
          try {
            await this.apply(t)
          } catch (err) {
            this.opts.log(`applying a change failed: ${(err as Error).message}`)
          }
          this.queue.shift()
          this.appliedCount++
          this.wake()
        }
      } finally {
        this.running = false
      }
    })()
  }

  private wake (): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.appliedCount >= this.waiters[i].target) {
        this.waiters[i].resolve()
        this.waiters.splice(i, 1)
      }
    }
  }

  /** Resolves once every task queued so far is applied, or after `ms`; resolves with the tasks still ahead. */
  private async caughtUp (ms: number): Promise<number> {
    const target = this.queuedCount
    if (this.appliedCount < target) {
      await new Promise<void>(resolve => {
        const w = { target, resolve }
        this.waiters.push(w)
        setTimeout(() => {
          const i = this.waiters.indexOf(w)
          if (i >= 0) this.waiters.splice(i, 1)
          resolve()
        }, ms).unref?.()
      })
    }
    return Math.max(0, target - this.appliedCount)
  }

  /** Stat and read of one file, as the mount serves it now. */
  private async prepare (p: string, check: boolean): Promise<Prepared> {
    try {
      const st: Stat = await this.opts.files.stat(p)
      if (st.kind !== 'file') return { kind: 'gone' }
      // Stat before read: a version older than the content only costs a re-read at the next validation.
      const version = versionOf(st)
      if (check && this.catalog.get(p)?.version === version) return { kind: 'same' }
      if (st.size > this.opts.maxFileBytes) return { kind: 'invalid', version, reason: `larger than vectorMaxFileSize (${this.opts.maxFileBytes} bytes)` }
      return { kind: 'content', version, bytes: await this.opts.files.read(p, this.opts.maxFileBytes) }
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return { kind: 'gone' }
      if (code === 'EFBIG') return { kind: 'invalid', version: '', reason: `larger than vectorMaxFileSize (${this.opts.maxFileBytes} bytes)` }
      return { kind: 'error', message: `${code ?? 'EIO'}: ${(err as Error).message}` }
    }
  }

  private async apply (t: Task): Promise<void> {
    switch (t.kind) {
      case 'read': {
        const r = await (t.prepared ?? this.prepare(t.path, t.check))
        if (r.kind === 'same') return
        if (r.kind === 'gone') {
          this.remember(t.path)
          await this.drop(t.path)
          return
        }
        if (r.kind === 'error') {
          this.counters.readErrors++
          this.opts.log(`cannot read ${t.path}, the index keeps what it had of it: ${r.message}`)
          return
        }
        const old = this.catalog.get(t.path)
        const replace = old !== undefined && old.invalid === undefined ? { id: old.id, count: old.count } : undefined
        const id = this.catalog.allocate()
        const res = r.kind === 'invalid'
          ? { invalid: r.reason }
          : await this.engine.index(id, formatOf(t.path)!, r.bytes, this.catalog.dim, replace)
        if (r.kind === 'invalid' && replace !== undefined) await this.engine.remove(replace.id, replace.count)
        this.changed()
        if ('invalid' in res) {
          this.catalog.set(t.path, { id, count: 0, version: r.version, invalid: res.invalid })
          if (this.invalidReasons.get(t.path) !== res.invalid) this.opts.log(`${t.path} is left out of the index: ${res.invalid}`)
          this.invalidReasons.set(t.path, res.invalid)
          return
        }
        if (this.catalog.dim === 0 && res.count > 0) {
          this.catalog.dim = res.dim
          this.opts.log(`the index holds ${res.dim}-dimensional vectors (fixed by ${t.path})`)
        }
        this.invalidReasons.delete(t.path)
        this.catalog.set(t.path, { id, count: res.count, version: r.version })
        this.counters.indexed++
        return
      }
      case 'remove':
        await this.drop(t.path)
        return
      case 'rename': {
        const { moved, replaced } = this.catalog.rename(t.from, t.to)
        for (const rec of replaced) await this.engine.remove(rec.id, rec.invalid === undefined ? rec.count : 0)
        for (const [, to] of moved) {
          // Renamed to a name the index does not take (a.vec → a.txt): out of the index.
          if (formatOf(to) === undefined) await this.drop(to)
        }
        for (const [from, to] of moved) {
          const why = this.invalidReasons.get(from)
          if (why !== undefined) { this.invalidReasons.delete(from); if (formatOf(to) !== undefined) this.invalidReasons.set(to, why) }
        }
        if (moved.length > 0 || replaced.length > 0) this.changed()
        // The source was never indexed (a temporary name renamed into place), or a read found it gone because this
        // rename had already happened: read the new name now, as part of this task (a search waiting for it waits
        // for that read too).
        const reread = new Set<string>()
        if (moved.length === 0 && formatOf(t.to) !== undefined) reread.add(t.to)
        for (const p of [...this.missed]) {
          if (!isUnder(p, t.from)) continue
          this.missed.delete(p)
          const np = t.to + p.slice(t.from.length)
          if (formatOf(np) !== undefined) reread.add(np)
        }
        for (const p of reread) await this.apply({ kind: 'read', path: p, check: false })
        return
      }
      case 'save':
        await this.save()
        return
      case 'reset':
        this.catalog = new Catalog(this.opts.metric)
        this.catalog.dim = this.opts.dim
        this.invalidReasons.clear()
        if (this.engine.failed !== undefined) this.engine.restart()
        await this.engine.open(this.opts.dim, this.opts.metric)
        this.changed()
    }
  }

  /** Drops a file's records and keys. */
  private async drop (p: string): Promise<void> {
    this.invalidReasons.delete(p)
    const old = this.catalog.delete(p)
    if (old === undefined) return
    this.changed()
    if (old.invalid === undefined) await this.engine.remove(old.id, old.count)
  }

  private remember (p: string): void {
    if (this.missed.size >= MISSED_MAX) this.missed.delete(this.missed.values().next().value as string)
    this.missed.add(p)
  }

  /** The index changed: a save follows within SAVE_EVERY_MS. */
  private changed (): void {
    this.dirty = true
    if (this.saveTimer !== undefined || this.closing) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      if (!this.closing) this.enqueue({ kind: 'save' })
    }, SAVE_EVERY_MS)
    this.saveTimer.unref?.()
  }

  /** Writes a new generation: the index file, then index.json naming it (the switch), then drops the old file. */
  private async save (): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    const gen = this.generation + 1
    const file = this.indexFile(gen)
    try {
      const sha = await this.engine.save(file)
      const saved = sha !== undefined
      if (saved) await fsyncFile(file)
      const json = JSON.stringify(this.catalog.toJSON(saved ? gen : 0, sha))
      const target = path.join(this.opts.stateDir, 'index.json')
      await writeDurably(target, json)
      const old = this.generation
      this.generation = saved ? gen : 0
      this.diskBytes = saved ? (await stat(file)).size : 0
      if (old > 0 && old !== this.generation) await rm(this.indexFile(old), { force: true })
    } catch (err) {
      this.dirty = true
      await rm(file, { force: true }).catch(() => {})
      this.opts.log(`saving the index failed (kept in memory, retried): ${(err as Error).message}`)
    }
  }

  // ---- the walk (validation at mount, rebuild) -----------------------------------------------------------------------

  /**
   * Lists the whole mount and queues a check for every vector file whose version differs from the catalog's, and
   * for every catalog entry the walk did not find. A newer walk (a reindex) stops an older one.
   */
  private async walk (reason: 'validation' | 'rebuild'): Promise<void> {
    const token = ++this.walkToken
    const progress: WalkProgress = { reason, directories: 0, files: 0, checked: 0, startedAt: new Date().toISOString() }
    this.walking = progress
    // A rebuild compares with the empty catalog the queued reset leaves: wait for it.
    if (reason === 'rebuild') await this.caughtUp(2 ** 31 - 1)
    if (token !== this.walkToken || this.closing) return
    const t0 = Date.now()
    let lastLog = t0
    const live = (): boolean => token === this.walkToken && !this.closing
    this.opts.log(reason === 'validation'
      ? `validating the index (${this.catalog.vectors} vectors in ${this.catalog.files.size} files) against the mount`
      : 'indexing every .vec and .fvecs file of the mount')
    const seen = new Set<string>()
    const check = async (p: string): Promise<void> => {
      while (this.queue.length >= WALK_QUEUE && live()) await this.caughtUp(1000)
      if (!live()) return
      progress.checked++
      this.enqueue({ kind: 'read', path: p, check: true })
    }
    const dirs: string[] = ['/']
    let active = 0
    let failures = 0
    await new Promise<void>(resolve => {
      const next = (): void => {
        while (live() && active < WALK_PARALLEL && dirs.length > 0) {
          const dir = dirs.shift()!
          active++
          void this.listOne(dir, dirs, seen, progress, check).catch(err => {
            failures++
            this.opts.log(`cannot list ${dir} (its files keep what the index has): ${(err as Error).message}`)
          }).finally(() => {
            active--
            if (Date.now() - lastLog >= PROGRESS_EVERY_MS && live()) {
              lastLog = Date.now()
              this.opts.log(`${reason}: ${progress.directories} directories, ${progress.files} vector files seen, ${progress.checked} to (re)index`)
            }
            next()
          })
        }
        if (active === 0 && (dirs.length === 0 || !live())) resolve()
      }
      next()
    })
    if (!live()) return
    for (const p of [...this.catalog.files.keys()]) if (!seen.has(p)) await check(p)
    await this.caughtUp(2 ** 31 - 1)
    if (!live()) return
    const seconds = (Date.now() - t0) / 1000
    this.walking = undefined
    this.lastWalk = { ...progress, seconds }
    this.opts.log(`${reason} done in ${seconds.toFixed(1)} s: ${progress.files} vector files seen, ${progress.checked} checked, ` +
      `${this.catalog.vectors} vectors in the index${failures > 0 ? `, ${failures} directories could not be listed` : ''}`)
  }

  private async listOne (dir: string, dirs: string[], seen: Set<string>, progress: WalkProgress, check: (p: string) => Promise<void>): Promise<void> {
    const entries = await this.opts.files.list(dir)
    progress.directories++
    for (const e of entries) {
      const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`
      let st = e.stat
      if (st === undefined) {
        try {
          st = await this.opts.files.stat(p)
        } catch {
          continue
        }
      }
      if (st.kind === 'dir') dirs.push(p)
      else if (st.kind === 'file' && formatOf(p) !== undefined) {
        seen.add(p)
        progress.files++
        if (this.catalog.get(p)?.version !== versionOf(st)) await check(p)
      }
    }
  }

  /** `fsx vector reindex`: forgets everything and indexes every vector file of the mount again, in the background. */
  reindex (): { started: boolean } {
    this.walkToken++
    this.enqueue({ kind: 'reset' })
    void this.walk('rebuild')
    return { started: true }
  }

  // ---- search -----------------------------------------------------------------------------------------------------

  /**
   * The `k` nearest vectors to `query` (at or below `under`), with an HNSW candidate list of max(k, ef). Rejects
   * EINVAL for a query of the wrong dimension, EIO when the engine fails.
   */
  async search (query: Float32Array, k: number, ef: number, under = '/'): Promise<{ results: SearchHit[], pending: number, vectors: number, dim: number }> {
    const t0 = performance.now()
    try {
      const pending = await this.caughtUp(CATCH_UP_MS)
      const c = this.catalog
      const base = { pending, vectors: c.vectors, dim: c.dim }
      if (this.engine.failed !== undefined) throw this.opts.error('EIO', `the index engine stopped (${this.engine.failed}); fsx vector reindex rebuilds it`)
      if (c.dim > 0 && query.length !== c.dim) {
        throw this.opts.error('EINVAL', `the query has ${query.length} numbers; the index holds ${c.dim}-dimensional vectors`)
      }
      const within = under === '/' ? c.vectors : c.vectorsUnder(under)
      if (c.vectors === 0 || within === 0) {
        this.counters.searches++
        return { results: [], ...base }
      }
      // A subtree holding a fraction of the index: widen the candidate list until k of its vectors turn up.
      let wanted = Math.min(c.vectors, Math.max(k, ef, under === '/' ? 0 : Math.ceil(2 * k * c.vectors / within)))
      for (;;) {
        const { keys, distances } = await this.engine.search(query, wanted)
        const results: SearchHit[] = []
        for (let i = 0; i < keys.length && results.length < k; i++) {
          const { id, row } = decodeKey(keys[i])
          const p = c.pathOf(id)
          if (p === undefined || !isUnder(p, under)) continue
          const d = distances[i]
          results.push({ path: p, index: row, distance: c.metric === 'l2' ? Math.sqrt(Math.max(0, d)) : d })
        }
        if (results.length >= k || wanted >= c.vectors) {
          this.counters.searches++
          return { results, ...base }
        }
        wanted = Math.min(c.vectors, wanted * 4)
      }
    } catch (err) {
      this.counters.searchErrors++
      const code = (err as { code?: string }).code
      if (code === 'EINVAL') throw err
      throw this.opts.error('EIO', `search failed: ${(err as Error).message}`)
    } finally {
      this.searchHist.recordValue(Math.max(1, Math.min(HIST.highestTrackableValue, Math.round((performance.now() - t0) * 1000))))
    }
  }

  // ---- figures ----------------------------------------------------------------------------------------------------

  /** Estimated bytes of the index in memory: each vector's floats, its level-0 links and its key. */
  get indexBytes (): number {
    return this.catalog.vectors * (this.catalog.dim * 4 + CONNECTIVITY * 2 * 4 + 24)
  }

  status (): IndexStatus {
    const c = this.catalog
    const invalid = [...this.invalidReasons].slice(0, STATUS_INVALID_MAX).map(([p, reason]) => ({ path: p, reason }))
    return {
      vectors: c.vectors,
      files: c.files.size - c.invalidFiles,
      invalidFiles: c.invalidFiles,
      dim: c.dim,
      metric: c.metric,
      pending: this.queue.length,
      ...(this.walking !== undefined ? { walk: { ...this.walking } } : {}),
      ...(this.lastWalk !== undefined ? { lastWalk: { ...this.lastWalk } } : {}),
      invalid,
      ...(this.engine.failed !== undefined && !this.closing ? { engineFailed: this.engine.failed } : {})
    }
  }

  figures (): Record<string, number | Record<string, number>> {
    const c = this.catalog
    const q = (p: number): number => this.searchHist.totalCount === 0 ? 0 : this.searchHist.getValueAtPercentile(p) / 1e6
    return {
      vectors: c.vectors,
      files: c.files.size - c.invalidFiles,
      invalidFiles: c.invalidFiles,
      dimensions: c.dim,
      indexBytes: this.indexBytes,
      diskBytes: this.diskBytes,
      pending: this.queue.length,
      validating: this.walking !== undefined ? 1 : 0,
      indexed: this.counters.indexed,
      readErrors: this.counters.readErrors,
      searches: this.counters.searches,
      searchErrors: this.counters.searchErrors,
      searchLatencySeconds: { 0.5: q(50), 0.95: q(95), 0.99: q(99) }
    }
  }

  // ---- end --------------------------------------------------------------------------------------------------------

  /**
   * Clean unmount: stops the walk, applies what is queued for up to CLOSE_DRAIN_MS (the rest is found by the next
   * validation), saves, and stops the engine.
   */
  async close (): Promise<void> {
    this.closing = true
    this.walkToken++
    clearTimeout(this.saveTimer)
    await this.caughtUp(CLOSE_DRAIN_MS)
    this.stopApplying = true
    while (this.running) await new Promise(resolve => setTimeout(resolve, 10))
    this.queue.length = 0
    if (this.engine.failed === undefined) await this.save()
    await this.engine.close()
  }
}

/** Dimension sanity for a vectorDim setting or a query. */
export function checkDim (dim: number): boolean {
  return Number.isInteger(dim) && dim >= 1 && dim <= MAX_DIM
}

async function fsyncFile (file: string): Promise<void> {
  const fh = await open(file, 'r+')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Writes `text` to `file` through a temporary file, fsync and rename, then syncs the directory. */
async function writeDurably (file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  const dir = await open(path.dirname(file), 'r').catch(() => undefined)
  await dir?.sync().catch(() => {})
  await dir?.close()
}
