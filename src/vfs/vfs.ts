/**
 * The filesystem core: path-based operations on top of one Backend, independent of FUSE and oclif.
 * A FUSE engine adapter (src/fuse) calls these methods; they resolve with values or reject with errors carrying an
 * errno `code`. Nothing here blocks the event loop: all I/O is async.
 *
 * Invariants:
 * - Every open file has one entry in `handles` (keyed by the number the kernel gets) until `release`.
 * - For backends without random writes, all handles of one path share one `OpenNode` whose staging file holds the
 *   whole object while any handle writes it; it is uploaded on flush/fsync (write-through) and on release.
 * - An acknowledged fsync/close means the data reached the backend (write-through), or, with `writeback`, that
 *   close returned before the backend made it durable; fsync always waits for durability. With `writeback` on a
 *   whole-object backend, close returns once the new content is in the on-disk journal (journal.ts), which is
 *   uploaded in the background and replayed at the next mount after a crash. Until a path's upload is done, its
 *   attributes come from the journal, and anything that reads or changes it on the backend (open, truncate,
 *   rename, chmod, …) first waits for the upload; unlink drops what was not uploaded yet.
 * - Whole-object backends: creat(2) makes no request. The new file exists only as this mount's open node (`created`)
 *   until its first save (flush, fsync, close: an upload, or a journal entry with `writeback`); until then getattr,
 *   open, readdir and rmdir answer for it from the node; chmod, chown and an mtime-only utimens (tar's, before its
 *   close) change the node, and its first save records them; other utimens and the xattr calls save it first.
 * - Mutations invalidate the metadata caches (attributes, listings, negative answers: meta-cache.ts) and the xattr
 *   cache for exactly the paths they touch, after the backend call settles and before they resolve; a rename or rmdir
 *   of a directory invalidates everything below it, and a change of a directory's entries its listing.
 * - Consistency: `strong` turns the user-space metadata caches off (every lookup and open asks the backend);
 *   `session` (close-to-open) serves lookups from them for their TTL but revalidates a file's attributes at every
 *   open; `eventual` serves lookups and opens from them until their TTL passes or `invalidate` is called.
 * - rename re-keys open handles and open nodes, so a file renamed while open keeps working.
 * - Whole-object backends read through the data cache (data-cache.ts: memory tier for small files, disk tier by
 *   blocks under `<cacheDir>/data`), with per-handle sequential readahead into it (readahead.ts). Each open reads
 *   one object version (size + mtime or ETag, from the open's stat): cached blocks of another version are never
 *   served. Remote backends with random writes (SFTP) read through it too, except a file this mount has open for
 *   writing through a backend handle (read from the backend; its blocks are dropped by each such write and close).
 *   The local backend has no data cache: the kernel page cache does that job.
 * - `stagesWrites`: backends without random writes, and remote ones with `writeback`, stage writes (above) and, with
 *   `writeback`, journal them; the others write through backend file handles.
 * - One memory budget (`memoryBudgetBytes`) covers the metadata, xattr and in-memory data caches and blocks in
 *   flight; near it the memory tier gives up blocks and readahead pauses.
 * - Names are bytes carried in strings (../backend/names.ts). For a backend without `byteNames`, every path
 *   that holds a byte that is not UTF-8 is refused with EILSEQ before the backend sees it, so two names can
 *   never reach the backend as one.
 * - Nodes created through the mount (create, mkdir, symlink, mknod) are given to the `Caller` that made the
 *   request (the FUSE request's uid/gid), as the backend can record it (Backend `Owner`).
 * - Commit events (`onCommit`, for mount extensions): a file's `write` is told after its content is committed —
 *   uploaded (write-through) or journaled (write-back) for whole-object backends, at close/fsync of a handle that
 *   changed it for the others, and again at release of a handle the kernel wrote directly (passthrough, mmap) —
 *   `remove` after an unlink and `rename` after a rename succeeded. Told synchronously, in the order they happened.
 * - Deadlines (deadline.ts, health.ts): every request in VFS_REQUESTS settles by `opTimeoutMs`; every backend call
 *   goes through one shared health verdict, and while the backend is known to be failing nothing waits for it:
 *   cached answers come at once (stale-if-error), the rest fails with EIO at once, and a background probe finds out
 *   when it answers again.
 */
import path from 'node:path'
import os from 'node:os'
import { constants as fsConstants } from 'node:fs'
import { open as openFile, type FileHandle } from 'node:fs/promises'
import type { Backend, BackendFileHandle, DirEntry, OpenFlags, Owner, Stat, StatFs } from '../backend/types.js'
import { FsxError } from '../errors.js'
import { hasEscapes } from '../backend/names.js'
import { StagingFile } from './staging.js'
import { XattrCache } from './xattr-cache.js'
import { MetaCache, parentOf } from './meta-cache.js'
import { DataCache, type Version } from './data-cache.js'
import type { EvictionPolicyName } from './eviction.js'
import { Readahead, type ReadaheadCounters } from './readahead.js'
import { Journal, type JournalRecord } from './journal.js'
import { BackendHealth, guardBackend, type Timers } from './health.js'
import { applyDeadline, deadlineMargin, RequestDeadline } from './deadline.js'
import { createHash } from 'node:crypto'
import { Coherence, type Bus, type ChangeKind, type CoherenceStats } from './coherence.js'

/** Settings the VFS reads, in base units. */
export interface VfsOptions {
  writeback: boolean
  /** Serve extended attributes where the backend has them (default true); off: ENOTSUP, ENOSYS to the kernel. */
  xattrs?: boolean
  consistency: 'strong' | 'session' | 'eventual'
  xattrCacheSize: number
  xattrCacheTtlMs: number
  /** User-space attribute cache: entries (0: off) and TTL in ms. Off with consistency=strong. Default off. */
  attrCacheSize?: number
  attrCacheTtlMs?: number
  /** User-space directory-listing cache: directories (0: off) and TTL in ms. Off with consistency=strong. */
  dirCacheSize?: number
  dirCacheTtlMs?: number
  /** User-space "no such file" cache: paths (0: off) and TTL in ms. Off with consistency=strong. */
  negativeCacheSize?: number
  negativeCacheTtlMs?: number
  /**
   * Data cache for backends without random writes (S3-like): disk tier cap in bytes under `<cacheDir>/data`,
   * memory tier cap in bytes, the size up to which a file goes to the memory tier, eviction policy, and the block
   * lifetime under the ttl policy. Default: off.
   */
  dataCacheSize?: number
  dataCacheMemory?: number
  dataCacheSmallFile?: number
  dataCachePolicy?: EvictionPolicyName
  dataCacheTtlMs?: number
  /**
   * One memory budget in bytes across the metadata, xattr and data caches and readahead buffers (0: only each
   * cache's own cap). The data cache's memory tier shrinks and readahead pauses to stay under it.
   */
  memoryBudgetBytes?: number
  /**
   * With `writeback` on a whole-object backend: most bytes journaled under `<cacheDir>/journal` but not yet
   * uploaded; close() waits above it (back-pressure). Default 1 GiB.
   */
  writebackDirtyMaxBytes?: number
  /** First retry delay after a failed background upload, in ms (default 1 s, doubling to 30 s). */
  writebackRetryMs?: number
  /** With `writeback`: how long a closed file waits in the journal before its upload starts (writebackDelay). */
  writebackDelayMs?: number
  /** Largest window prefetched ahead of a sequential reader into the data cache, in bytes (0: no readahead). */
  prefetchMaxBytes?: number
  /** Data cache block size in bytes (default 1 MiB: one request amortises a round trip, a sparse read stays cheap). */
  dataBlockBytes?: number
  /**
   * Stale-if-error: while the backend fails with a transport-like error (timeouts, connection errors, EIO), cached
   * attributes and listings answer for this many ms past their TTL, so clean cached data keeps serving reads.
   * 0 (default) or consistency=strong: off.
   */
  staleIfErrorMs?: number
  /**
   * Background validator: every this many ms, re-check with the backend up to VALIDATE_BATCH recently used files
   * whose cached attributes expire within the interval (0 or consistency=strong: off). Changed files are dropped
   * from the caches at once; unchanged ones stay cached.
   */
  validateIntervalMs?: number
  /**
   * Deadline of one request in ms (the `opTimeout` setting, default 120 s; 0: none): every method in VFS_REQUESTS
   * settles by then (ETIMEDOUT), and a backend lookup unanswered for nearly that long counts as a backend failure.
   */
  opTimeoutMs?: number
  /** Gap between probes of a failing backend, ms (default 1 s; see health.ts). */
  probeIntervalMs?: number
  /** Timers for deadlines and probes (tests pass fake ones; default: real timers and performance.now). */
  timers?: Timers
  /**
   * Coherence with the other mounts of this source (coherence.ts): makes the bus for this source's channel, named
   * by a stable id of the source (coherence-redis.ts makes a Redis one; tests pass their own). Default: none, so
   * changes made by other mounts are seen when TTLs expire.
   */
  coherence?: (sourceId: string) => Promise<Bus>
  /** Where the VFS reports conditions worth a log line (the data cache's disk tier being unavailable). */
  log?: (line: string) => void
  /** Where staging files live. */
  cacheDir: string
  /** uid/gid reported for nodes when the backend has none (defaults: the mounting process). */
  uid?: number
  gid?: number
  now?: () => number
}

/** Counters of one cache layer, read by `fsx stats`. */
export interface CacheStats {
  hits: number
  misses: number
  evictions: number
  entries: number
  bytes?: number
  /** The layer's byte cap, where it has one. */
  capBytes?: number
  /** Data tiers: bytes of pinned files (`fsx warm --pin`), exempt from eviction. */
  pinnedBytes?: number
}

/**
 * Everything the VFS counts; `fsx stats` shows it. `caches` always holds attr, dir, negative, dataMemory, dataDisk
 * and xattr (zeros where a layer is off); `readahead` and `memory` are always present; `writeback` is absent until
 * there is a write-back queue.
 */
export interface VfsStats {
  caches: Record<string, CacheStats>
  openFiles: number
  readahead?: { triggered: number, bytesUsed: number, bytesWasted: number }
  writeback?: { dirtyBytes: number, queued: number, inFlight: number, flushed: number, errors: number }
  memory?: { usedBytes: number, budgetBytes: number }
  /** Stale-if-error: answers served from expired cache entries while the backend failed, and its state now. */
  stale?: StaleStats
  /** Background validator: rounds run, files checked, files found changed or gone, checks that failed. */
  validator?: ValidatorStats
  /** Coherence with other mounts of the source, when on. */
  coherence?: CoherenceStats
}

export interface ValidatorStats { rounds: number, checked: number, changed: number, errors: number }

/** Files the background validator checks per round, at most; and how many at a time. */
const VALIDATE_BATCH = 256
const VALIDATE_PARALLEL = 4

export interface StaleStats {
  /** Answers (attributes, listings, opens) served past their TTL because the backend failed. */
  serves: number
  /** True from a link failure of the backend (no answer: timeout, refused…) until it answers again. */
  backendFailing: boolean
  /** The errno of the last such failure (no message: messages may name hosts or keys). */
  lastError?: string
}

/** Default request deadline, as the `opTimeout` setting's. */
const DEFAULT_OP_TIMEOUT_MS = 120_000

/**
 * The requests an engine makes: each settles by the request deadline (applyDeadline). A method added for the
 * kernel (e.g. mknod) belongs here too.
 */
export const VFS_REQUESTS = [
  'getattr', 'fgetattr', 'access', 'readdir', 'statfs', 'open', 'create', 'read', 'write', 'flush', 'fsync', 'release',
  'truncate', 'ftruncate', 'mkdir', 'mknod', 'rmdir', 'unlink', 'rename', 'symlink', 'readlink', 'link', 'chmod', 'chown',
  'utimens', 'getxattr', 'setxattr', 'listxattr', 'removexattr'
] as const

/** Errors that say the backend could not answer, rather than what it answered (ENOENT, EACCES…). */
const BACKEND_DOWN = new Set(['EIO', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAGAIN', 'ESHUTDOWN', 'EPIPE'])

/**
 * A change made through the mount, told once committed (`Vfs.onCommit`): `write` — a file's new content is
 * committed (close or fsync of a handle that changed it, a truncate, a new hard link's name); `remove` — a name was
 * unlinked; `rename` — `from` (a file, or a directory with everything below it) now lives at `to`, replacing what
 * was there.
 */
export type VfsChange =
  | { kind: 'write', path: string }
  | { kind: 'remove', path: string }
  | { kind: 'rename', from: string, to: string }

/** `utimens` time argument: ms since epoch, 'now' (UTIME_NOW) or undefined (UTIME_OMIT). */
export type TimeArg = number | 'now' | undefined

/** Who made a request: the uid, gid and pid the kernel reports with it. */
export interface Caller {
  uid: number
  gid: number
  pid?: number
}

const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFIFO = 0o010000
const S_IFSOCK = 0o140000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000

interface OpenNode {
  path: string
  refs: number
  staging?: StagingFile
  mode: number
  /** Owner recorded with every upload: the object's own, so a chown is not undone by the next write. */
  uid: number
  gid: number
  /** Made by create and not saved yet: the backend has no object for it (see the invariants). */
  created?: boolean
  /** utimens of a staged node (`cp -p` and tar set times before close): the mtime its next save records, unless
   *  written since (staging version `at`). */
  setMtime?: { ms: number, at: number }
}

interface Handle {
  path: string
  flags: OpenFlags
  bh?: BackendFileHandle
  /** A read-only open made while the backend was failing: the backend handle, opened at the first read. */
  lazy?: Promise<BackendFileHandle>
  node?: OpenNode
  /** Set when this handle wrote data not yet made durable. */
  dirty: boolean
  /** Whole-object backends: the object version this open reads through the data cache. */
  version?: Version
  readahead?: Readahead
  /** Write-back: a read-only open of a version not uploaded yet reads the journal's copy. */
  journalFile?: FileHandle
  /** Written (or truncated) through `bh`: its release tells the other mounts (coherence). */
  wrote?: boolean
  /** The FUSE engine passed this open through to the kernel: its reads and writes bypass the VFS. */
  passthrough?: boolean
  /** Backend handles: the content changed through this handle since its last `write` commit event. */
  changed?: boolean
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fsConstants
/** Linux O_ACCMODE (not exported by node:fs). */
const O_ACCMODE = 3

/** Decodes open(2) flags. */
export function decodeFlags (flags: number): OpenFlags {
  const acc = flags & O_ACCMODE
  return {
    read: acc === O_RDONLY || acc === O_RDWR,
    write: acc === O_WRONLY || acc === O_RDWR,
    create: (flags & O_CREAT) !== 0,
    exclusive: (flags & O_EXCL) !== 0,
    truncate: (flags & O_TRUNC) !== 0,
    append: (flags & O_APPEND) !== 0
  }
}

/** Rough heap cost of one path in the xattr cache (a few names and small values). */
const XATTR_PATH_BYTES = 256

/** Default data cache block: 1 MiB amortises a request round trip yet keeps a sparse read of a big file cheap. */
const DEFAULT_BLOCK_BYTES = 1024 * 1024

export class Vfs {
  /** The backend, every call through `health` (health.ts). */
  readonly backend: Backend
  /** Whether the backend answers; while it does not, nothing waits for it. */
  readonly health: BackendHealth
  readonly xattrs: XattrCache
  readonly meta: MetaCache
  /** Data cache; for remote backends (for local files the kernel page cache is enough). */
  readonly data?: DataCache
  /**
   * Writes go to a staged whole copy of the file, saved whole (uploaded, or journaled with `writeback`), instead of
   * backend file handles: backends without random writes (S3), and remote ones with `writeback` (SFTP), so that close
   * returns once the data is journaled on local disk.
   */
  readonly stagesWrites: boolean
  /** Write-back journal; for backends that stage writes, with `writeback`. */
  readonly journal?: Journal
  /** Write-back: files created here whose first version is journaled, not uploaded (their upload makes a new name). */
  private readonly journaledNew = new Set<string>()
  /** Peer mounts of the same source, over Redis (coherence.ts); undefined when the `coherence` setting is off. */
  private coherence?: Coherence
  /** Stable id of the source (its description; and the host, for local directories): names its coherence channel. */
  readonly sourceId: string
  private opens = 0
  private readonly raCounters: ReadaheadCounters = { triggered: 0, bytesUsed: 0, bytesWasted: 0 }
  private readonly handles = new Map<number, Handle>()
  private readonly nodes = new Map<string, OpenNode>()
  private nextFh = 1
  private readonly staleMs: number
  private staleServes = 0
  private readonly validatorStats: ValidatorStats = { rounds: 0, checked: 0, changed: 0, errors: 0 }
  private validatorTimer?: NodeJS.Timeout
  /** Paths whose last staged save (at release) is still running → that save (see `settled`). */
  private readonly saving = new Map<string, Promise<void>>()
  /** Paths with a passed-through open for writing → how many: their attributes are never served from the caches. */
  private readonly bypassed = new Map<string, number>()
  /**
   * Told when fsx learns that something changed other than through this mount (the background validator, `fsx
   * invalidate`): a FUSE engine drops the kernel's caches of it. `entry`: the name itself appeared or went;
   * `tree`: everything below it too.
   */
  onChange?: (path: string, how: { entry?: boolean, tree?: boolean }) => void
  /**
   * Told after a change made through this mount is committed (see `VfsChange` and the invariants above), for mount
   * extensions. Called synchronously: a listener must not throw or wait (it queues its own work).
   */
  onCommit?: (change: VfsChange) => void
  private validating?: Promise<ValidatorStats>
  private readonly uid: number
  private readonly gid: number

  constructor (backend: Backend, readonly opts: VfsOptions) {
    const opTimeoutMs = Math.max(0, opts.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS)
    this.health = new BackendHealth({
      ping: backend.ping === undefined ? undefined : async () => await backend.ping!(),
      // A lookup gives up a margin before the request does, so a cached answer still makes it in time.
      lookupWaitMs: opTimeoutMs > 0 ? Math.max(1, opTimeoutMs - 2 * deadlineMargin(opTimeoutMs)) : 0,
      probeIntervalMs: opts.probeIntervalMs,
      timers: opts.timers,
      onChange: (failing, code, message) => this.healthChanged(failing, code, message)
    })
    this.backend = guardBackend(backend, this.health)
    applyDeadline(this, VFS_REQUESTS, new RequestDeadline(opTimeoutMs, opts.timers), {
      // The kernel never got this handle: release it.
      open: (fh: number) => { void this.release('', fh).catch(() => {}) },
      create: (fh: number) => { void this.release('', fh).catch(() => {}) }
    })
    const strong = opts.consistency === 'strong'
    this.staleMs = strong ? 0 : Math.max(0, opts.staleIfErrorMs ?? 0)
    this.xattrs = new XattrCache({
      max: opts.consistency === 'strong' ? 0 : opts.xattrCacheSize,
      ttlMs: opts.xattrCacheTtlMs,
      now: opts.now,
      staleMs: this.staleMs
    })
    this.meta = new MetaCache({
      staleMs: this.staleMs,
      attrSize: strong ? 0 : opts.attrCacheSize ?? 0,
      attrTtlMs: opts.attrCacheTtlMs ?? 0,
      dirSize: strong ? 0 : opts.dirCacheSize ?? 0,
      dirTtlMs: opts.dirCacheTtlMs ?? 0,
      negativeSize: strong ? 0 : opts.negativeCacheSize ?? 0,
      negativeTtlMs: opts.negativeCacheTtlMs ?? 0,
      now: opts.now
    })
    // Caches and journal on disk are per source: a stable name from the backend's (secret-free) description.
    const ns = createHash('sha256').update(this.backend.description).digest('hex').slice(0, 16)
    // Peer mounts share a source when they share its description; a local directory only on the same host.
    this.sourceId = createHash('sha256')
      .update(this.backend.capabilities.hostFiles === true ? `${this.backend.description}\0${os.hostname()}` : this.backend.description)
      .digest('hex').slice(0, 32)
    const caps = this.backend.capabilities
    // Files of the host (local) are the kernel page cache's job; every remote backend gets fsx's data cache.
    const remote = caps.hostFiles !== true
    this.stagesWrites = !caps.randomWrite || this.backend.open === undefined || (remote && opts.writeback === true)
    const dataDisk = opts.dataCacheSize ?? 0
    const dataMem = opts.dataCacheMemory ?? 0
    if (remote && (dataDisk > 0 || dataMem > 0)) {
      this.data = new DataCache({
        dir: path.join(opts.cacheDir, 'data', ns),
        diskBytes: dataDisk,
        memoryBytes: dataMem,
        smallFileBytes: opts.dataCacheSmallFile ?? DEFAULT_BLOCK_BYTES,
        blockBytes: opts.dataBlockBytes ?? DEFAULT_BLOCK_BYTES,
        policy: opts.dataCachePolicy ?? 'lru',
        ttlMs: opts.dataCacheTtlMs ?? 0,
        now: opts.now,
        budget: { bytes: opts.memoryBudgetBytes ?? 0, others: () => this.metadataBytes() },
        onDiskUnavailable: reason => opts.log?.(`data cache: disk tier off: ${reason}`)
      })
    }
    if (this.stagesWrites && opts.writeback) {
      this.journal = new Journal({
        dir: path.join(opts.cacheDir, 'journal', ns),
        backend: this.backend,
        maxDirtyBytes: opts.writebackDirtyMaxBytes ?? 1024 ** 3,
        onUploaded: async (p, written, file) => {
          // A file created here first exists on the backend now: a listing of its directory cached before lacks it
          // (and the journal stops naming it now), and peers learn of a new name.
          const isNew = this.journaledNew.delete(p)
          if (isNew) this.entryChanged(p)
          else this.changed(p)
          this.tell(p, isNew ? 'entry' : 'data')
          await this.keepWritten(p, written, file)
        },
        retryMs: opts.writebackRetryMs,
        delayMs: opts.writebackDelayMs,
        log: opts.log
      })
    }
    this.uid = opts.uid ?? (process.getuid?.() ?? 0)
    this.gid = opts.gid ?? (process.getgid?.() ?? 0)
    const every = strong ? 0 : opts.validateIntervalMs ?? 0
    if (every > 0 && this.meta.enabled) {
      this.validatorTimer = setInterval(() => { void this.validate() }, every)
      this.validatorTimer.unref?.()
    }
  }

  /**
   * One round of the background validator (also run by its timer): asks the backend for the attributes of recently
   * used files whose cached attributes expire within the interval. Unchanged: cached again for a full TTL. Changed
   * or gone: dropped from the attribute and data caches now rather than at their TTL. Files open for writing or
   * waiting in the write-back journal are skipped (this mount's version is the newer one). Resolves with the
   * round's figures; a round already running is joined, not doubled.
   */
  async validate (): Promise<ValidatorStats> {
    this.validating ??= (async () => {
      const round: ValidatorStats = { rounds: 1, checked: 0, changed: 0, errors: 0 }
      try {
        const within = Math.max(this.opts.validateIntervalMs ?? 0, 1)
        const todo = this.meta.expiring(VALIDATE_BATCH, within).filter(e => !this.nodes.has(e.path) && !this.journal?.pending(e.path))
        let next = 0
        const worker = async (): Promise<void> => {
          while (next < todo.length) {
            const { path: p, stat: was } = todo[next++]
            const ticket = this.meta.begin()
            try {
              const st = await this.backend.stat(p)
              round.checked++
              if (st.kind !== was.kind || st.size !== was.size || st.mtimeMs !== was.mtimeMs || st.etag !== was.etag) {
                round.changed++
                this.changed(p)
                this.onChange?.(p, { entry: st.kind !== was.kind })
              } else {
                this.meta.putAttr(p, st, ticket)
              }
            } catch (err) {
              if ((err as { code?: string }).code === 'ENOENT') {
                round.checked++
                round.changed++
                this.entryChanged(p)
                this.onChange?.(p, { entry: true })
              } else {
                round.errors++
              }
            } finally {
              this.meta.end(ticket)
            }
          }
        }
        await Promise.all(Array.from({ length: VALIDATE_PARALLEL }, worker))
      } finally {
        this.validating = undefined
      }
      for (const k of ['rounds', 'checked', 'changed', 'errors'] as const) this.validatorStats[k] += round[k]
      return round
    })()
    return await this.validating
  }

  private get caps () { return this.backend.capabilities }

  /** Tells `onCommit`; a listener's failure is logged, never the operation's. */
  private committed (change: VfsChange): void {
    try {
      this.onCommit?.(change)
    } catch (err) {
      this.opts.log?.(`a commit listener failed: ${(err as Error).message}`)
    }
  }

  /** Extended attributes are served (the backend has them and the `xattrs` setting is on). */
  get servesXattrs (): boolean { return this.caps.xattrs && this.opts.xattrs !== false }

  /** Refuses (EILSEQ) a path whose bytes are not UTF-8 when the backend cannot store such names. */
  private named (p: string, op: string): string {
    if (this.caps.byteNames !== true && hasEscapes(p)) {
      throw new FsxError('EILSEQ', 'this backend stores only UTF-8 names', { path: p, op })
    }
    return p
  }

  /** The owner a new node gets: the caller, else the mounting user. */
  private ownerOf (caller?: Caller): Owner {
    return caller === undefined ? { uid: this.uid, gid: this.gid } : { uid: caller.uid, gid: caller.gid }
  }

  /**
   * The owner of a node about to be created at `p`, with the setgid-directory rule for backends that record
   * owners: in a directory with S_ISGID the group is the directory's (and a new directory inherits S_ISGID).
   */
  private async ownerFor (p: string, caller?: Caller): Promise<{ owner: Owner, setgid: boolean }> {
    const owner = this.ownerOf(caller)
    if (this.caps.owners !== true) return { owner, setgid: false }
    const parent = await this.statCached(parentOf(p)).catch(() => undefined)
    if (parent !== undefined && (parent.mode & 0o2000) !== 0) return { owner: { uid: owner.uid, gid: parent.gid }, setgid: true }
    return { owner, setgid: false }
  }

  private stagingDir (): string { return path.join(this.opts.cacheDir, 'staging') }

  /** Number of files open right now. */
  get openCount (): number { return this.handles.size }

  // ---- attributes -------------------------------------------------------------------------------------------------

  async getattr (p: string): Promise<Stat> {
    this.named(p, 'getattr')
    // A release saving the last staged copy has dropped it but not yet journaled or uploaded it: the backend's
    // attributes are the old ones until it is done (the kernel would take that old size as the file's).
    if (this.saving.size > 0) await this.settled(p)
    // Written behind the VFS's back (passthrough): only the backend knows the size and mtime now.
    if (this.bypassed.has(p)) this.meta.invalidate(p)
    const node = this.nodes.get(p)
    if (node?.staging) {
      // The object on the backend is stale while a staged copy is open: report the staged size. The last close may
      // end the staging while the backend is asked: then what that close saved (journal or backend) answers.
      const st = node.created === true ? undefined : await this.statCached(p).catch(() => undefined)
      const staging = node.staging
      if (staging) {
        const now = Date.now()
        // A clean staged copy (uploaded, or never changed) is the backend's object: its ETag names this content (a
        // mount extension told of the upload records it as the file's version).
        const etag = !staging.dirty && st?.etag !== undefined && st.size === staging.size ? { etag: st.etag } : {}
        const mtimeMs = this.stagedMtime(node, staging) ?? (staging.dirty ? now : (st?.mtimeMs ?? now))
        return {
          kind: 'file', size: staging.size, mode: st?.mode ?? node.mode, uid: st?.uid ?? (node.created === true ? node.uid : this.uid),
          gid: st?.gid ?? (node.created === true ? node.gid : this.gid), nlink: 1, atimeMs: st?.atimeMs ?? now, mtimeMs, ctimeMs: st?.ctimeMs ?? now, ino: st?.ino, ...etag
        }
      }
    }
    if (this.journal) {
      await this.journal.ready
      const j = this.journal.pending(p)
      // Journaled but not uploaded yet: the backend still has the previous version.
      if (j) return this.journaledStat(j, await this.statCached(p).catch(() => undefined))
    }
    return await this.statCached(p)
  }

  /** Attributes of a journaled version, with what the backend knows of the object for the rest. */
  private journaledStat (j: JournalRecord, st?: Stat): Stat {
    return { kind: 'file', size: j.size, mode: j.mode, uid: j.uid, gid: j.gid, nlink: 1, atimeMs: st?.atimeMs ?? j.mtimeMs, mtimeMs: j.mtimeMs, ctimeMs: j.mtimeMs, ino: st?.ino }
  }

  /** Backend attributes of `p` through the metadata caches. */
  private async statCached (p: string): Promise<Stat> {
    try {
      return await this.meta.stat(p, async () => await this.backend.stat(p), () => new FsxError('ENOENT', 'no such file or directory', { path: p, op: 'stat' }))
    } catch (err) {
      return this.stale(err, () => this.meta.staleAttr(p, this.staleMs))
    }
  }

  /**
   * Stale-if-error: when `err` says the backend could not answer and `fallback` finds an expired entry young enough,
   * answers with it (counted); otherwise rethrows `err`.
   */
  private stale<T> (err: unknown, fallback: () => T | undefined): T {
    const code = (err as { code?: unknown } | undefined)?.code
    if (this.staleMs <= 0 || typeof code !== 'string' || !BACKEND_DOWN.has(code)) throw err
    const v = fallback()
    if (v === undefined) throw err
    this.staleServes++
    return v
  }

  /** The backend's verdict changed (health.ts): say so once, and retry held-back uploads when it answers again. */
  private healthChanged (failing: boolean, code?: string, message?: string): void {
    if (failing) {
      const cached = this.staleMs > 0 ? `cached metadata and data answer for up to ${Math.round(this.staleMs / 1000)}s past their TTLs, ` : ''
      const rest = this.health.failFast ? 'the rest fails with EIO at once until a background probe finds it answering' : 'the rest fails'
      this.opts.log?.(`backend failing (${code ?? 'no answer'}): ${cached}${rest}${message === undefined ? '' : ` [${message}]`}`)
    } else {
      this.opts.log?.('backend answers again: stale serving ended')
      this.journal?.retryNow()
    }
  }

  /**
   * Attributes for an open: fresh from the backend (and cached) under strong and session consistency, so an open
   * sees every change closed before it (close-to-open); from the cache while fresh under eventual.
   */
  private async statForOpen (p: string): Promise<Stat> {
    if (this.opts.consistency === 'eventual') return await this.statCached(p)
    // Stale-if-error: what the cache knew before this open's revalidation, in case the backend cannot answer it.
    const known = this.staleMs > 0 ? this.meta.staleAttr(p, this.staleMs) : undefined
    this.meta.invalidate(p)
    const ticket = this.meta.begin()
    try {
      const st = await this.backend.stat(p)
      this.meta.putAttr(p, st, ticket)
      return st
    } catch (err) {
      const st = this.stale(err, () => known)
      // Kept for the next lookup while the backend stays down (the revalidation above dropped it).
      this.meta.restoreStale(p, st, ticket)
      return st
    } finally {
      this.meta.end(ticket)
    }
  }

  /** Estimated heap bytes of the metadata and xattr caches. */
  private metadataBytes (): number {
    return this.meta.bytes() + this.xattrs.paths * XATTR_PATH_BYTES
  }

  /** Estimated bytes held by every cache and buffer the memory budget covers. */
  memoryUsed (): number {
    return this.metadataBytes() + (this.data?.memoryBytes ?? 0)
  }

  /** Metadata (and content) of `p` changed: forget them. */
  private changed (p: string): void {
    this.meta.invalidate(p)
    this.data?.invalidate(p)
  }

  /**
   * A name appeared in or vanished from its directory: forget what was cached under `p` (with `tree`, below it too:
   * attributes, data, xattrs) and its parent's listing and attributes.
   */
  private entryChanged (p: string, tree = false): void {
    if (tree) {
      this.meta.invalidateTree(p)
      this.data?.invalidateTree(p)
    } else {
      this.meta.invalidate(p)
      this.data?.invalidate(p)
    }
    this.xattrs.invalidate(p, tree)
    this.meta.invalidate(parentOf(p))
  }

  /** The version an open reads through the data cache. */
  private versionOf (st: Stat): Version {
    // NB: without an ETag, strong consistency cannot trust size + mtime (object stores keep mtimes to the second):
    // a per-open tag keeps cached blocks for this open only.
    const etag = st.etag ?? (this.opts.consistency === 'strong' ? `open-${++this.opens}` : undefined)
    return { size: st.size, mtimeMs: st.mtimeMs, etag }
  }

  /**
   * Runs a mutation and invalidates what it touched once it settled, failed or not (a failure may be partial); then
   * tells peer mounts (coherence) about `told` paths: [path, what changed].
   */
  private async mutate<T> (run: () => Promise<T>, after: () => void, ...told: Array<[string, ChangeKind]>): Promise<T> {
    try {
      return await run()
    } finally {
      after()
      for (const [p, kind] of told) this.tell(p, kind)
    }
  }

  async fgetattr (p: string, fh: number): Promise<Stat> {
    const h = this.handles.get(fh)
    try {
      return await this.getattr(h?.path ?? p)
    } catch (err) {
      // Unlinked while open (fstat of a deleted file): the open file still knows.
      if ((err as { code?: string }).code === 'ENOENT' && h?.bh?.stat) return await h.bh.stat()
      throw err
    }
  }

  /** A host descriptor of an open file that a FUSE engine may pass through to the kernel (local backend). */
  backingFd (fh: number): number | undefined {
    return this.handles.get(fh)?.bh?.fd
  }

  /**
   * The engine passed this open file through to the kernel: its reads and writes no longer reach the VFS. While
   * it is open for writing its path's attributes are asked of the backend every time, and its release forgets
   * what was cached of it.
   */
  passedThrough (fh: number): void {
    const h = this.handles.get(fh)
    if (h === undefined || h.passthrough) return
    h.passthrough = true
    if (h.flags.write) {
      this.bypassed.set(h.path, (this.bypassed.get(h.path) ?? 0) + 1)
      h.changed = true
    }
  }

  async access (p: string, _mode: number): Promise<void> {
    await this.getattr(p)
  }

  async readdir (p: string): Promise<{ names: string[], stats: Array<Stat | undefined> }> {
    this.named(p, 'readdir')
    // NB: taken before the listing too: an upload that lands while the backend lists stops the journal naming the
    // file, and the listing may have been made before it landed.
    const pendingBefore = this.unlistedIn(p, [])
    let entries: DirEntry[]
    try {
      entries = await this.meta.list(p, async () => await this.backend.list(p))
    } catch (err) {
      entries = this.stale(err, () => this.meta.staleList(p, this.staleMs))
    }
    const stats = entries.map(e => e.stat)
    // Files created here and not on the backend yet (open, or journaled by write-back): listed too.
    const unlisted = this.unlistedIn(p, entries, pendingBefore)
    if (unlisted.length > 0) {
      entries = [...entries]
      for (const name of unlisted) {
        entries.push({ name })
        stats.push(undefined)
      }
    }
    // What this mount holds and the backend does not know yet (a staged or journaled write, a passed-through
    // write) wins over the listing: a kernel that takes attributes from READDIRPLUS must not see an older size.
    // NB: an upload in flight counts too: the backend may have answered the listing with the version before it.
    if (this.nodes.size > 0 || this.bypassed.size > 0 || this.journal?.idle === false) {
      const base = p === '/' ? '' : p
      await Promise.all(entries.map(async (e, i) => {
        const child = `${base}/${e.name}`
        if (this.nodes.get(child)?.staging !== undefined || this.bypassed.has(child) || this.journal?.pending(child) !== undefined) {
          stats[i] = await this.getattr(child).catch(() => e.stat)
        }
      }))
    }
    return { names: entries.map(e => e.name), stats }
  }

  /** Names below directory `p` this mount created that `entries` (the backend's listing) does not hold. */
  private unlistedIn (p: string, entries: DirEntry[], also: string[] = []): string[] {
    if (also.length === 0 && this.nodes.size === 0 && this.journal?.idle !== false) return []
    const base = p === '/' ? '' : p
    const out = new Set<string>(also)
    for (const node of this.nodes.values()) {
      if (node.created === true && parentOf(node.path) === p) out.add(node.path.slice(base.length + 1))
    }
    for (const q of this.journal?.pendingIn(p) ?? []) out.add(q.slice(base.length + 1))
    if (out.size === 0) return []
    for (const e of entries) out.delete(e.name)
    return [...out]
  }

  async statfs (p: string): Promise<StatFs> {
    if (this.caps.statfs && this.backend.statfs) return await this.backend.statfs(p)
    // Object stores have no totals: report a large, mostly free filesystem so `df` and installers are happy.
    const blocks = 2 ** 40 / 4096
    return { bsize: 4096, frsize: 4096, blocks, bfree: blocks, bavail: blocks, files: 2 ** 32, ffree: 2 ** 32, favail: 2 ** 32, namemax: 255 }
  }

  // ---- open files -------------------------------------------------------------------------------------------------

  private register (h: Handle): number {
    const fh = this.nextFh++
    if (this.nextFh > 0x7fffffff) this.nextFh = 1
    this.handles.set(fh, h)
    return fh
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (!h) throw new FsxError('EBADF', `no open file ${fh}`, { op: 'handle' })
    return h
  }

  private acquireNode (p: string, mode: number, uid: number, gid: number): OpenNode {
    let node = this.nodes.get(p)
    if (!node) {
      node = { path: p, refs: 0, mode, uid, gid }
      this.nodes.set(p, node)
    }
    node.refs++
    return node
  }

  /**
   * Gives `node` the staged copy `make` builds, unless another open of the same file staged one while this one was
   * being built: then both opens share the first (the second copy is dropped), so no write lands in a lost copy.
   */
  private async stage (node: OpenNode, make: () => Promise<StagingFile | undefined>): Promise<StagingFile | undefined> {
    const made = await make()
    if (made && node.staging && node.staging !== made) {
      await made.discard()
      return node.staging
    }
    if (made) node.staging = made
    return node.staging
  }

  private async releaseNode (node: OpenNode): Promise<void> {
    node.refs--
    if (node.refs > 0) return
    if (this.nodes.get(node.path) === node) this.nodes.delete(node.path)
    if (node.staging) {
      const staging = node.staging
      node.staging = undefined
      const where = node.path
      const saving = (async () => {
        try {
          await this.saveStaged(node, staging, false)
          // Write-through: the staged copy is what the last upload wrote, unless written to since.
          const up = staging.uploaded
          if (up !== undefined && up.version === staging.version && up.path === node.path && this.nodes.get(where) === undefined) {
            await this.keepWritten(where, up.stat, staging.file)
          }
        } finally {
          await staging.discard()
        }
      })()
      // An unlink or rename of this path arriving now waits for this last save (see `settled`).
      this.saving.set(where, saving)
      try {
        await saving
      } finally {
        if (this.saving.get(where) === saving) this.saving.delete(where)
      }
    }
  }

  /**
   * Keeps the content this mount just uploaded to `p` (from `file`, which nobody changes until this resolves) in the
   * data cache, named by the version the backend's write answered (`written`; nothing when it answered none).
   */
  private async keepWritten (p: string, written: Stat | undefined, file: string): Promise<void> {
    if (this.data?.enabled !== true || written === undefined || written.kind !== 'file') return
    // NB: with strong consistency and no ETag every open gets its own version (versionOf): nothing would match.
    if (written.etag === undefined && this.opts.consistency === 'strong') return
    await this.data.adopt(p, this.versionOf(written), file).catch(() => {})
  }

  /**
   * Waits for the last save of `p` started by a release (the kernel sends RELEASE after close(2) returns, so an
   * unlink or rename can arrive while that upload runs): a removed or renamed name is never brought back by it.
   */
  private async settled (p: string): Promise<void> {
    const s = this.saving.get(p)
    if (s !== undefined) await s.catch(() => {})
  }

  async open (p: string, flagsInt: number, caller?: Caller): Promise<number> {
    this.named(p, 'open')
    // Not a copy of the version before what a release is saving now.
    if (this.saving.size > 0) await this.settled(p)
    const flags = decodeFlags(flagsInt)
    // A remote backend with file handles reads through the data cache, like a whole-object one: a read-only open,
    // unless this mount is writing the file through a backend handle right now (its blocks are changing).
    if (!this.stagesWrites && this.backend.open &&
      !(this.data !== undefined && !flags.write && !flags.create && !flags.truncate && !this.writing(p))) {
      if (!flags.write && !flags.create && !flags.truncate && this.health.failing && this.health.failFast) {
        // The backend is known to be failing: a read-only open of a file known before succeeds without it, so the
        // pages the kernel kept still read; a read that reaches fsx opens the file on the backend then.
        const st = this.meta.staleAttr(p, this.staleMs)
        if (st !== undefined && st.kind !== 'dir') {
          this.staleServes++
          return this.register({ path: p, flags, dirty: false })
        }
      }
      // Close-to-open: the getattr libfuse sends right after open (auto_cache) must reach the backend.
      if (this.opts.consistency !== 'eventual') this.meta.invalidate(p)
      const owner = flags.create ? (await this.ownerFor(p, caller)).owner : undefined
      // With append, the backend handle appends by itself (O_APPEND on the host, SSH_FXF_APPEND): the offsets the
      // kernel sends are its idea of the size, which another handle or client may have moved.
      const bh = await this.mutate(async () => await this.backend.open!(p, flags, 0o666, owner),
        () => { if (flags.truncate || flags.create) this.entryChanged(p) },
        ...(flags.truncate || flags.create ? [[p, 'entry'] as [string, ChangeKind]] : []))
      return this.register({ path: p, flags, bh, dirty: false, changed: flags.write && (flags.truncate || flags.create) })
    }
    // Write-back: a version not uploaded yet is read (or staged for writing) from the journal's copy.
    if (this.journal) await this.journal.ready
    const journaled = this.journal?.pending(p)
    const made = this.nodes.get(p)
    let st = made?.created === true ? await this.getattr(p) : journaled ? this.journaledStat(journaled) : await this.statForOpen(p)
    if (st.kind === 'dir') throw new FsxError('EISDIR', 'is a directory', { path: p, op: 'open' })
    const node = this.acquireNode(p, st.mode, st.uid, st.gid)
    let journalFile: FileHandle | undefined
    try {
      if (journaled && !flags.write) {
        // NB: the entry's file is removed once uploaded; an open descriptor keeps this version readable.
        journalFile = await openFile(this.journal!.dataFile(journaled), 'r').catch(() => undefined)
        if (!journalFile) st = await this.statForOpen(p) // uploaded meanwhile: the backend has it now
      }
      if (flags.write && !node.staging && journaled && !(flags.truncate || st.size === 0)) {
        await this.stage(node, async () => await StagingFile.fromFile(this.stagingDir(), this.journal!.dataFile(journaled), st.size).catch(() => undefined))
        if (!node.staging) st = await this.statForOpen(p)
      }
      if (flags.write && !node.staging) {
        const made = await StagingFile.create(this.stagingDir(), this.backend, p, flags.truncate || st.size === 0, st.size)
        if (flags.truncate && st.size > 0) made.dirty = true
        const staging = await this.stage(node, async () => made)
        if (staging !== made && flags.truncate) await staging!.truncate(0)
      } else if (flags.write && flags.truncate && node.staging) {
        await node.staging.truncate(0)
      }
      if (flags.write && flags.truncate) this.changed(p)
    } catch (err) {
      await journalFile?.close().catch(() => {})
      await this.releaseNode(node)
      throw err
    }
    if (journalFile) return this.register({ path: p, flags, node, dirty: false, journalFile })
    const version = this.data && !flags.write ? this.versionOf(st) : undefined
    // Also with no prefetching (prefetchMax 0): it tells the data cache whether the reader is random.
    const readahead = version && st.size > this.data!.blockBytes
      ? new Readahead(this.opts.prefetchMaxBytes ?? 0, this.data!.blockBytes, this.raCounters)
      : undefined
    return this.register({ path: p, flags, node, dirty: false, version, readahead })
  }

  /** This mount has `p` open for writing through a backend handle. */
  private writing (p: string): boolean {
    for (const h of this.handles.values()) if (h.bh !== undefined && h.flags.write && h.path === p) return true
    return false
  }

  /**
   * creat(2) / open(O_CREAT): `flagsInt` are the open flags when the engine has them (O_EXCL is honoured; the
   * handle's access mode follows them), default read-write.
   */
  async create (p: string, mode: number, caller?: Caller, flagsInt?: number): Promise<number> {
    this.named(p, 'create')
    if (this.saving.size > 0) await this.settled(p)
    const given = flagsInt === undefined ? undefined : decodeFlags(flagsInt)
    const flags: OpenFlags = { read: true, write: true, create: true, exclusive: given?.exclusive ?? false, truncate: given?.truncate ?? false, append: given?.append ?? false }
    const { owner } = await this.ownerFor(p, caller)
    if (!this.stagesWrites && this.backend.open) {
      const bh = await this.mutate(async () => await this.backend.open!(p, flags, mode & 0o7777, owner), () => this.entryChanged(p), [p, 'entry'])
      return this.register({ path: p, flags, bh, dirty: false, changed: true })
    }
    if (this.backend.open) {
      // Staged writes on a backend with file handles (SFTP with write-back): the empty file is made through one, so
      // O_EXCL stays atomic on the server, and its content is staged like a whole object's.
      const fileMode = fsConstants.S_IFREG | (mode & 0o7777)
      await this.mutate(async () => await (await this.backend.open!(p, flags, mode & 0o7777, owner)).close(),
        () => this.entryChanged(p), [p, 'entry'])
      // Made new (O_EXCL) or emptied (O_TRUNC): what the journal held of an earlier file of this name is gone too.
      const empty = flags.exclusive || flags.truncate
      if (empty) await this.journal?.discard(p)
      const node = this.acquireNode(p, fileMode, owner.uid, owner.gid)
      try {
        if (!node.staging) await this.stage(node, async () => await StagingFile.create(this.stagingDir(), this.backend, p, empty))
        else if (empty) await node.staging.truncate(0)
      } catch (err) {
        await this.releaseNode(node)
        throw err
      }
      return this.register({ path: p, flags, node, dirty: false })
    }
    if (flags.exclusive) {
      // Whole-object backends have no exclusive create: the closest is a fresh look before making the object.
      this.meta.invalidate(p)
      const exists = await this.backend.stat(p).then(() => true, (err: { code?: string }) => { if (err.code === 'ENOENT') return false; throw err })
      if (exists || this.journal?.pending(p)) throw new FsxError('EEXIST', 'file exists', { path: p, op: 'create' })
    }
    // Whole-object backends: no request. The new file is an open node with an empty, dirty staging file, visible
    // through this mount at once and uploaded (or journaled) at its first flush, fsync or close. A backend known to
    // be failing still fails it at once, as it would a change it was asked for.
    this.health.check('create', p)
    const fileMode = fsConstants.S_IFREG | (mode & 0o7777)
    if (this.nodes.get(p)?.staging !== undefined) {
      // Open already through another handle: it exists (or is being created); truncate it as before.
      await this.mutate(async () => await this.backend.write(p, Buffer.alloc(0), { mode: fileMode, uid: owner.uid, gid: owner.gid, mtimeMs: Date.now() }),
        () => this.entryChanged(p), [p, 'entry'])
    }
    const node = this.acquireNode(p, fileMode, owner.uid, owner.gid)
    try {
      if (!node.staging) {
        const made = await StagingFile.create(this.stagingDir(), this.backend, p, true)
        if (await this.stage(node, async () => made) === made) {
          made.dirty = true
          node.created = true
          this.entryChanged(p)
        }
      }
    } catch (err) {
      await this.releaseNode(node)
      throw err
    }
    return this.register({ path: p, flags, node, dirty: false })
  }

  async read (_p: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    if (!h.bh && !h.node && !h.journalFile && !this.stagesWrites) h.bh = await this.openLazy(h)
    if (h.bh) {
      if (h.bh.readInto) return await h.bh.readInto(buf, len, pos)
      const data = await h.bh.read(pos, len)
      return data.copy(buf, 0, 0, Math.min(len, data.length))
    }
    const staging = h.node?.staging
    if (staging) return await staging.read(buf, len, pos)
    if (h.journalFile) return (await h.journalFile.read(buf, 0, len, pos)).bytesRead
    if (this.data && h.version) {
      const objectPath = h.path
      const version = h.version
      const fetch = async (off: number, n: number): Promise<Buffer> => await this.backend.read(objectPath, off, n)
      const ra = h.readahead
      if (ra) {
        for (const idx of ra.onRead(pos, len, version.size)) {
          if (this.data.has(objectPath, version, idx)) continue
          // Backpressure: no prefetch beyond the memory budget (the block is fetched on demand later).
          if (this.data.overBudget(this.data.blockBytes)) { ra.rewind(idx); break }
          ra.started(idx)
          this.data.prefetch(objectPath, version, idx, fetch).then(n => ra.finished(idx, n), () => ra.finished(idx, 0))
        }
      }
      return await this.data.read(objectPath, version, buf, len, pos, fetch, ra?.random)
    }
    const data = await this.backend.read(h.path, pos, len)
    return data.copy(buf, 0, 0, Math.min(len, data.length))
  }

  /** The backend handle of a read-only open made while the backend was failing (see `open`), opened once. */
  private async openLazy (h: Handle): Promise<BackendFileHandle> {
    h.lazy ??= this.backend.open!(h.path, { ...h.flags, append: false }, 0o666)
    try {
      return await h.lazy
    } catch (err) {
      h.lazy = undefined
      throw err
    }
  }

  async write (_p: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    if (!h.flags.write) throw new FsxError('EBADF', 'file not open for writing', { path: h.path, op: 'write' })
    const data = len === buf.length ? buf : buf.subarray(0, len)
    h.dirty = true
    h.changed = true
    if (h.bh) {
      h.wrote = true
      return await this.mutate(async () => await h.bh!.write(pos, data), () => this.changed(h.path))
    }
    const staging = h.node?.staging
    if (!staging) throw new FsxError('EBADF', 'file not open for writing', { path: h.path, op: 'write' })
    // O_APPEND is ours to honour (the engines pass it on only when the kernel does not append by itself): the
    // kernel's idea of the size may be older than the staged file's.
    return await staging.write(data, len, h.flags.append ? 'end' : pos)
  }

  /** Called on every close(2) of a descriptor: where write errors reach the application. */
  async flush (_p: string, fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (!h) return
    await this.persist(h, !this.opts.writeback)
    this.handleCommitted(h)
  }

  async fsync (_p: string, fh: number, _datasync: boolean): Promise<void> {
    const h = this.handle(fh)
    await this.persist(h, true)
    this.handleCommitted(h)
  }

  /** A backend handle's changes are committed (flush/fsync done): tells `onCommit` once per batch of changes. */
  private handleCommitted (h: Handle): void {
    if (h.bh === undefined || h.changed !== true) return
    h.changed = false
    this.committed({ kind: 'write', path: h.path })
  }

  private async persist (h: Handle, durable: boolean): Promise<void> {
    if (h.bh) {
      if (h.dirty && durable) {
        try {
          await h.bh.sync()
          h.dirty = false
        } finally {
          // On the server now (or partly, if it failed): other mounts are told (again at release, see there).
          this.tell(h.path, 'data')
        }
      }
      return
    }
    if (h.node?.staging) await this.saveStaged(h.node, h.node.staging, durable)
  }

  /**
   * Saves a staged object if it changed: uploads it (write-through), or with the write-back journal commits it to
   * the journal and, when `durable`, waits for the upload. Then forgets what the backend said about it before.
   */
  private async saveStaged (node: OpenNode, staging: StagingFile, durable: boolean): Promise<void> {
    const journal = this.journal
    if (journal) await journal.ready
    if (!journal?.enabled) {
      if (!staging.dirty) return
      const mtimeMs = this.stagedMtime(node, staging)
      const isNew = node.created === true
      await this.mutate(async () => await staging.upload(this.backend, node.path, { mode: node.mode, uid: node.uid, gid: node.gid, mtimeMs }),
        () => { if (isNew) this.entryChanged(node.path); else this.changed(node.path) }, [node.path, isNew ? 'entry' : 'data'])
      node.created = false
      node.setMtime = undefined
      this.committed({ kind: 'write', path: node.path })
      return
    }
    if (staging.dirty) {
      const version = staging.version
      const mtimeMs = this.stagedMtime(node, staging) ?? Date.now()
      await this.mutate(async () => await journal.commit(node.path, staging.file, staging.size, { mode: node.mode, uid: node.uid, gid: node.gid, mtimeMs }),
        () => this.changed(node.path))
      if (node.created === true) this.journaledNew.add(node.path)
      node.created = false
      node.setMtime = undefined
      if (staging.version === version) staging.dirty = false
      this.committed({ kind: 'write', path: node.path })
    }
    if (durable) await journal.flush(node.path)
  }

  async release (_p: string, fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (!h) return
    this.handles.delete(fh)
    if (h.passthrough && h.flags.write) {
      const n = (this.bypassed.get(h.path) ?? 1) - 1
      if (n > 0) this.bypassed.set(h.path, n)
      else this.bypassed.delete(h.path)
      this.changed(h.path)
      this.tell(h.path, 'data')
    }
    h.readahead?.close()
    await h.journalFile?.close().catch(() => {})
    const bh = h.bh ?? await h.lazy?.catch(() => undefined)
    if (bh) {
      try {
        await bh.close()
      } finally {
        // Its writes are all answered once closed (write-behind included): close-to-open across mounts.
        if (h.wrote === true) {
          // Blocks a read-only open cached while this one wrote may hold a mix of old and new bytes.
          this.data?.invalidate(h.path)
          this.tell(h.path, 'data')
        }
      }
      // What the kernel wrote directly (passthrough, mmap) may have landed after the last flush.
      if (h.changed === true || (h.passthrough === true && h.flags.write)) this.committed({ kind: 'write', path: h.path })
      return
    }
    if (h.node) await this.releaseNode(h.node)
  }

  /** Flushes every open file; used before unmount. Resolves with the number of errors. */
  async flushAll (): Promise<number> {
    let errors = 0
    for (const h of this.handles.values()) {
      try { await this.persist(h, true) } catch { errors++ }
    }
    return errors
  }

  async truncate (p: string, size: number): Promise<void> {
    this.named(p, 'truncate')
    await this.settled(p)
    const node = this.nodes.get(p)
    if (node?.staging) return await node.staging.truncate(size)
    await this.journal?.flush(p)
    await this.mutate(async () => await this.truncateBackend(p, size), () => this.changed(p), [p, 'data'])
    this.committed({ kind: 'write', path: p })
  }

  private async truncateBackend (p: string, size: number): Promise<void> {
    if (this.backend.truncate) return await this.backend.truncate(p, size)
    // Whole-object backend, file not open: rewrite it through a staging copy.
    const st = await this.backend.stat(p)
    if (st.kind === 'dir') throw new FsxError('EISDIR', 'is a directory', { path: p, op: 'truncate' })
    const staging = await StagingFile.create(this.stagingDir(), this.backend, p, size === 0, st.size)
    try {
      await staging.truncate(size)
      await staging.upload(this.backend, p, { mode: st.mode, uid: st.uid, gid: st.gid })
    } finally {
      await staging.discard()
    }
  }

  async ftruncate (p: string, fh: number, size: number): Promise<void> {
    const h = this.handle(fh)
    h.dirty = true
    h.changed = true
    if (h.bh) return await this.mutate(async () => await h.bh!.truncate(size), () => this.changed(h.path), [h.path, 'data'])
    if (h.node?.staging) return await h.node.staging.truncate(size)
    await this.truncate(h.path ?? p, size)
  }

  // ---- namespace --------------------------------------------------------------------------------------------------

  async mkdir (p: string, mode: number, caller?: Caller): Promise<void> {
    this.named(p, 'mkdir')
    const { owner, setgid } = await this.ownerFor(p, caller)
    await this.mutate(async () => await this.backend.mkdir(p, (mode & 0o7777) | (setgid ? 0o2000 : 0), owner), () => this.entryChanged(p), [p, 'entry'])
  }

  /**
   * mknod(2): a regular file is created (and closed) like creat(2); FIFOs, sockets and device nodes need a
   * backend with `specialFiles`, else EPERM (what Linux answers for a node type a filesystem cannot hold).
   */
  async mknod (p: string, mode: number, rdev: number, caller?: Caller): Promise<void> {
    this.named(p, 'mknod')
    const type = mode & S_IFMT
    if (type === S_IFREG || type === 0) {
      const fh = await this.create(p, mode & 0o7777, caller, fsConstants.O_EXCL | fsConstants.O_CREAT | fsConstants.O_RDWR)
      await this.release(p, fh)
      return
    }
    if (type !== S_IFIFO && type !== S_IFSOCK && type !== S_IFCHR && type !== S_IFBLK) {
      throw new FsxError('EINVAL', 'unknown file type', { path: p, op: 'mknod' })
    }
    if (this.caps.specialFiles !== true || !this.backend.mknod) {
      throw new FsxError('EPERM', 'this backend cannot hold FIFOs, sockets or device nodes', { path: p, op: 'mknod' })
    }
    const { owner } = await this.ownerFor(p, caller)
    await this.mutate(async () => await this.backend.mknod!(p, mode, rdev, owner), () => this.entryChanged(p), [p, 'entry'])
  }

  async rmdir (p: string): Promise<void> {
    this.named(p, 'rmdir')
    // Files created here that the backend does not hold yet count as entries.
    for (const node of this.nodes.values()) {
      if (node.created === true && node.path.startsWith(p === '/' ? '/' : p + '/')) throw new FsxError('ENOTEMPTY', 'directory not empty', { path: p, op: 'rmdir' })
    }
    if (this.journal?.has(p, true) === true) await this.journal.flushTree(p)
    await this.mutate(async () => await this.backend.rmdir(p), () => this.entryChanged(p, true), [p, 'tree'])
  }

  async unlink (p: string): Promise<void> {
    this.named(p, 'unlink')
    await this.settled(p)
    // A file created here whose object the backend may not have yet (open and not saved, or journaled only).
    const local = this.nodes.get(p)?.created === true || this.journal?.pending(p) !== undefined
    // Write-back: a version of the file not uploaded yet must not resurrect it afterwards.
    await this.journal?.discard(p)
    this.journaledNew.delete(p)
    await this.mutate(async () => {
      try {
        await this.backend.remove(p)
      } catch (err) {
        if (!local || (err as { code?: string }).code !== 'ENOENT') throw err
      }
    }, () => this.entryChanged(p), [p, 'entry'])
    this.committed({ kind: 'remove', path: p })
  }

  async rename (from: string, to: string): Promise<void> {
    this.named(from, 'rename')
    this.named(to, 'rename')
    for (const [q, saving] of this.saving) {
      if (q === from || q === to || q.startsWith(from + '/')) await saving.catch(() => {})
    }
    // Staged copies not made yet (staging.ts) are made now, while both names still mean what they meant at open.
    for (const node of this.nodes.values()) {
      if (node.path === from || node.path.startsWith(from + '/') || node.path === to) await node.staging?.filled()
    }
    // Upload staged content first so the object that moves is the one the application wrote.
    for (const node of this.nodes.values()) {
      if ((node.path === from || node.path.startsWith(from + '/')) && node.staging?.dirty) {
        await this.saveStaged(node, node.staging, true)
      }
    }
    // Write-back: no upload may land under either name after the rename.
    if (this.journal) {
      await this.journal.flushTree(from)
      await this.journal.flush(to)
    }
    await this.mutate(async () => await this.backend.rename(from, to), () => {
      this.entryChanged(from, true)
      this.entryChanged(to, true)
    }, [from, 'tree'], [to, 'tree'])
    this.rekey(from, to)
    this.committed({ kind: 'rename', from, to })
  }

  private rekey (from: string, to: string): void {
    const moved = (p: string): string | undefined =>
      p === from ? to : (p.startsWith(from + '/') ? to + p.slice(from.length) : undefined)
    for (const h of this.handles.values()) {
      const np = moved(h.path)
      if (np === undefined) continue
      if (h.passthrough && h.flags.write) {
        const n = (this.bypassed.get(h.path) ?? 1) - 1
        if (n > 0) this.bypassed.set(h.path, n)
        else this.bypassed.delete(h.path)
        this.bypassed.set(np, (this.bypassed.get(np) ?? 0) + 1)
      }
      h.path = np
    }
    for (const node of [...this.nodes.values()]) {
      const np = moved(node.path)
      if (np === undefined) continue
      this.nodes.delete(node.path)
      node.path = np
      this.nodes.set(np, node)
    }
  }

  async symlink (target: string, p: string, caller?: Caller): Promise<void> {
    this.named(p, 'symlink')
    this.named(target, 'symlink')
    if (!this.caps.symlinks || !this.backend.symlink) throw new FsxError('EPERM', 'symlinks are not supported by this backend', { path: p, op: 'symlink' })
    const { owner } = await this.ownerFor(p, caller)
    await this.mutate(async () => await this.backend.symlink!(target, p, owner), () => this.entryChanged(p), [p, 'entry'])
  }

  async readlink (p: string): Promise<string> {
    this.named(p, 'readlink')
    if (!this.backend.readlink) throw new FsxError('EINVAL', 'not a symlink', { path: p, op: 'readlink' })
    return await this.backend.readlink(p)
  }

  async link (existing: string, p: string): Promise<void> {
    this.named(existing, 'link')
    this.named(p, 'link')
    if (!this.caps.hardlinks || !this.backend.link) throw new FsxError('EPERM', 'hard links are not supported by this backend', { path: p, op: 'link' })
    // Write-back: the new name must share the content close() acknowledged, not the version before its upload.
    await this.settleJournal(existing)
    await this.mutate(async () => await this.backend.link!(existing, p), () => {
      this.changed(existing)
      this.entryChanged(p)
    }, [existing, 'attr'], [p, 'entry'])
    this.committed({ kind: 'write', path: p })
  }

  async chmod (p: string, mode: number): Promise<void> {
    this.named(p, 'chmod')
    if (!this.caps.chmod || !this.backend.chmod) throw new FsxError('ENOTSUP', 'chmod is not supported by this backend', { path: p, op: 'chmod' })
    const made = this.unsaved(p)
    if (made) {
      made.mode = (made.mode & ~0o7777) | (mode & 0o7777)
      return this.changed(p)
    }
    await this.settleJournal(p)
    await this.mutate(async () => await this.backend.chmod!(p, mode & 0o7777), () => this.changed(p), [p, 'attr'])
    const node = this.nodes.get(p)
    if (node) node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    this.named(p, 'chown')
    if (!this.caps.chown || !this.backend.chown) throw new FsxError('ENOTSUP', 'chown is not supported by this backend', { path: p, op: 'chown' })
    const made = this.unsaved(p)
    if (!made) {
      await this.settleJournal(p)
      await this.mutate(async () => await this.backend.chown!(p, uid, gid), () => this.changed(p), [p, 'attr'])
    } else this.changed(p)
    const node = this.nodes.get(p)
    // chown(2) passes -1 (as an unsigned 0xffffffff) for "leave unchanged".
    if (node && uid !== -1 && uid !== 0xffffffff) node.uid = uid
    if (node && gid !== -1 && gid !== 0xffffffff) node.gid = gid
  }

  async utimens (p: string, atime: TimeArg, mtime: TimeArg): Promise<void> {
    this.named(p, 'utimens')
    // Backends without times keep whatever they record; touch(1) must still succeed.
    if (!this.caps.utimens || !this.backend.utimens) return
    const made = this.unsaved(p)
    if (made && atime === undefined && mtime !== undefined) {
      made.setMtime = { ms: mtime === 'now' ? Date.now() : mtime, at: made.staging!.version }
      return this.changed(p)
    }
    await this.settleJournal(p)
    const now = Date.now()
    const m = mtime === 'now' ? now : mtime
    await this.mutate(async () => await this.backend.utimens!(p, atime === 'now' ? now : atime, m), () => this.changed(p), [p, 'attr'])
    // Staged: the save at close must record this time, not its own.
    const node = this.nodes.get(p)
    if (node?.staging && m !== undefined) node.setMtime = { ms: m, at: node.staging.version }
  }

  /** The node of `p` when it was created here and not saved yet (no object on the backend). */
  private unsaved (p: string): OpenNode | undefined {
    const node = this.nodes.get(p)
    return node?.created === true && node.staging !== undefined ? node : undefined
  }

  /** The mtime a staged node was given by utimens, unless written since. */
  private stagedMtime (node: OpenNode, staging: StagingFile): number | undefined {
    return node.setMtime !== undefined && node.setMtime.at === staging.version ? node.setMtime.ms : undefined
  }

  /** Write-back: an attribute change must land after the upload of the version it applies to, not be overwritten by it. */
  private async settleJournal (p: string): Promise<void> {
    // A file created here and not saved yet: the backend has no object to change before this.
    const node = this.nodes.get(p)
    if (node?.created === true && node.staging !== undefined) await this.saveStaged(node, node.staging, true)
    await this.journal?.flush(p)
  }

  // ---- extended attributes ----------------------------------------------------------------------------------------

  private xattrSupport (p: string, op: string): void {
    if (!this.servesXattrs || !this.backend.getxattr) throw new FsxError('ENOTSUP', 'extended attributes are not supported by this backend', { path: p, op })
  }

  /** Resolves with the value, or rejects ENODATA. */
  async getxattr (p: string, name: string): Promise<Buffer> {
    this.named(p, 'getxattr')
    if (!this.servesXattrs) this.xattrSupport(p, 'getxattr')
    // system.* (ACLs) is asked on every `ls -l` and `cp`: answered ENODATA without the backend.
    if (name.startsWith('system.')) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    this.xattrSupport(p, 'getxattr')
    if (this.nodes.get(p)?.created === true) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    const cached = this.xattrs.get(p, name)
    if (cached === null) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    if (cached !== undefined) return cached
    let v: Buffer | null
    try {
      v = await this.backend.getxattr!(p, name)
      this.xattrs.set(p, name, v)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENODATA') this.xattrs.set(p, name, null)
      v = this.stale(err, () => this.xattrs.staleGet(p, name))
    }
    if (v === null) throw new FsxError('ENODATA', 'no such attribute', { path: p, op: 'getxattr' })
    return v
  }

  async setxattr (p: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.named(p, 'setxattr')
    this.xattrSupport(p, 'setxattr')
    if (!this.backend.setxattr) throw new FsxError('ENOTSUP', 'cannot set extended attributes here', { path: p, op: 'setxattr' })
    this.xattrs.invalidate(p)
    await this.settleJournal(p)
    await this.mutate(async () => await this.backend.setxattr!(p, name, value, flags), () => {
      this.xattrs.invalidate(p)
      this.changed(p)
    }, [p, 'attr'])
  }

  async listxattr (p: string): Promise<string[]> {
    this.named(p, 'listxattr')
    if (!this.servesXattrs || !this.backend.listxattr || this.nodes.get(p)?.created === true) return []
    const cached = this.xattrs.getList(p)
    if (cached) return cached
    try {
      const names = await this.backend.listxattr(p)
      this.xattrs.setList(p, names)
      return names
    } catch (err) {
      return this.stale(err, () => this.xattrs.staleList(p))
    }
  }

  async removexattr (p: string, name: string): Promise<void> {
    this.named(p, 'removexattr')
    this.xattrSupport(p, 'removexattr')
    if (!this.backend.removexattr) throw new FsxError('ENOTSUP', 'cannot remove extended attributes here', { path: p, op: 'removexattr' })
    this.xattrs.invalidate(p)
    await this.settleJournal(p)
    await this.mutate(async () => await this.backend.removexattr!(p, name), () => {
      this.xattrs.invalidate(p)
      this.changed(p)
    }, [p, 'attr'])
  }

  /**
   * Forgets cached metadata (and xattrs) of `p` and everything below it; of everything without a path. For
   * `fsx invalidate` and for telling an eventual-consistency mount that the backend changed.
   */
  invalidate (p = '/'): void {
    this.onChange?.(p, { entry: p !== '/', tree: true })
    if (p === '/') {
      this.meta.clear()
    } else {
      this.meta.invalidateTree(p)
      this.meta.invalidate(parentOf(p))
    }
    this.xattrs.invalidate(p, true)
    this.data?.invalidateTree(p)
  }

  // ---- coherence (coherence.ts) -------------------------------------------------------------------------------------

  /**
   * Connects to the other mounts of this source when the `coherence` option is set. Resolves true once connected,
   * false if not within `waitMs` (it goes on trying in the background; until then TTLs alone apply).
   */
  async connectPeers (waitMs: number): Promise<boolean> {
    if (this.opts.coherence === undefined) return false
    if (this.coherence === undefined) {
      const bus = await this.opts.coherence(this.sourceId)
      this.coherence = new Coherence(bus, { changed: (p, kind) => this.peerChanged(p, kind), reset: () => this.peerReset() }, this.opts.log)
      this.coherence.start()
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), waitMs) })
    try {
      return await Promise.race([this.coherence.connectedOnce.then(() => true), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Leaves the coherence channel (a mount that failed to start; `close` does it otherwise). */
  async disconnectPeers (): Promise<void> {
    const c = this.coherence
    this.coherence = undefined
    await c?.close()
  }

  /** This mount changed `p` on the backend: tells the other mounts of the source (when coherence is on). */
  private tell (p: string, kind: ChangeKind): void {
    this.coherence?.publish(p, kind)
  }

  /**
   * Another mount changed `p`: forget what this mount cached of it (the backend's own memory of it, attributes,
   * listings, negative answers, xattrs, data blocks) and tell the kernel, as `fsx invalidate` does. Open files
   * keep the version they opened where it is cached (close-to-open). What this mount itself
   * holds and the backend does not have yet (staged or journaled writes) is not touched: it is newer.
   */
  private peerChanged (p: string, kind: ChangeKind): void {
    const tree = kind === 'tree'
    const entry = tree || kind === 'entry'
    this.backend.invalidate?.(p, tree)
    if (entry) {
      this.entryChanged(p, tree)
    } else {
      this.meta.invalidate(p)
      this.xattrs.invalidate(p)
      if (kind === 'data') this.data?.invalidate(p)
    }
    this.onChange?.(p, { entry, tree })
    // The kernel's copy of the directory's listing (and its mtime) changes with its entries.
    if (entry && p !== '/') this.onChange?.(parentOf(p), {})
  }

  /**
   * Messages from other mounts may have been missed (Redis was out of reach): forget every cached attribute,
   * listing and xattr of the source, here and in the kernel. Cached data blocks stay: every open checks them
   * against the file's attributes, which are now asked afresh.
   */
  private peerReset (): void {
    this.backend.invalidate?.('/', true)
    this.meta.clear()
    this.xattrs.invalidate('/', true)
    this.onChange?.('/', { tree: true })
  }

  /**
   * Makes everything acknowledged so far durable on the backend: open files are flushed, then the write-back
   * journal is drained, then the backend sends what it deferred (S3's queued deletes). Resolves with the number of
   * files that could not be flushed; rejects with the first upload error of the journal.
   */
  async drain (): Promise<number> {
    const errors = await this.flushAll()
    await this.journal?.flushTree('/')
    await this.backend.flush?.()
    return errors
  }

  /**
   * Pins (or unpins) files in the data cache: their blocks, cached now or later, are never evicted. Resolves false
   * when this mount has no data cache (a local backend, or both tiers off).
   */
  async pin (paths: string[], on: boolean): Promise<boolean> {
    if (!this.data?.enabled) return false
    await this.data.pin(paths, on)
    return true
  }

  /** Bytes of these files in the data cache now (after background block writes settle). */
  async cachedBytes (paths: string[]): Promise<number> {
    await this.data?.idle()
    return this.data?.cachedBytes(paths) ?? 0
  }

  /** Live counters for `fsx stats`. */
  stats (): VfsStats {
    const meta = this.meta.counters()
    const none: CacheStats = { hits: 0, misses: 0, evictions: 0, entries: 0, bytes: 0, capBytes: 0 }
    const data = this.data?.counters() ?? { dataMemory: none, dataDisk: { ...none } }
    return {
      caches: { attr: meta.attr, dir: meta.dir, negative: meta.negative, dataMemory: data.dataMemory, dataDisk: data.dataDisk, xattr: this.xattrs.counters() },
      openFiles: this.handles.size,
      readahead: { ...this.raCounters },
      ...(this.journal ? { writeback: this.journal.counters() } : {}),
      stale: { serves: this.staleServes, backendFailing: this.health.failing, ...(this.health.lastError === undefined ? {} : { lastError: this.health.lastError }) },
      validator: { ...this.validatorStats },
      ...(this.coherence ? { coherence: this.coherence.stats() } : {}),
      memory: { usedBytes: this.memoryUsed(), budgetBytes: this.opts.memoryBudgetBytes ?? 0 }
    }
  }

  /** Releases all handles and the backend. */
  async close (): Promise<void> {
    this.health.close()
    clearInterval(this.validatorTimer)
    await this.validating?.catch(() => {})
    for (const fh of [...this.handles.keys()]) await this.release('', fh).catch(() => {})
    await this.data?.close().catch(err => this.opts.log?.(`data cache: ${(err as Error).message}`))
    if (this.journal) {
      const left = await this.journal.close()
      if (left > 0) this.opts.log?.(`write-back: ${left} upload(s) failed; kept in the journal for the next mount`)
    }
    // After the journal: its last uploads are announced too.
    await this.disconnectPeers().catch(() => {})
    await this.backend.close()
  }
}
