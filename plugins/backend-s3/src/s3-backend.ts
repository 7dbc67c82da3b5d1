/**
 * S3Backend: a bucket (or a prefix of one) served through the Backend contract on @aws-sdk/client-s3.
 *
 * Shape of the work (see keys.ts for the key layout, metadata.ts for the attribute formats, cache.ts for what is
 * remembered, errors.ts for the errno mapping):
 * - stat: answered by the cache or a fresh listing of the parent (present or absent); else by listing the parent
 *   (again when small, else from the name onward) and, with s3Metadata=full, a HEAD of the key at the same time;
 *   with the cache off by HEAD key, HEAD key/ (directory marker) and a 1-key LIST of key/ (a directory that exists
 *   only because deeper keys do), all at once (see `lookup`).
 * - list: ListObjectsV2 with delimiter "/", every page (or a fresh complete listing); keys are files, common prefixes
 *   directories; the marker itself is hidden. A name that is both a file and a prefix shows as the file. With
 *   s3Metadata=listing attributes come from the listing (size, LastModified); with full from a HEAD per entry.
 * - read: ranged GETs. Sequential reads are answered from read-ahead chunks fetched `s3Concurrency` at a time
 *   (prefetch.ts); a large read (the VFS filling a staging file) is split into `s3Concurrency` parallel ranges.
 * - write: whole objects only (capabilities.randomWrite = false: the VFS stages partial writes in a local file and
 *   hands the whole file here on flush/fsync/release). Up to s3PartSize: one PutObject; above: a multipart upload
 *   with parallel parts streamed from the staging file (lib-storage Upload, at most partSize × concurrency bytes
 *   in memory), aborted on failure so no half-written object ever becomes visible. The object's other user
 *   metadata, xattrs and content type are carried over from the object it replaces.
 * - chmod/chown/utimens/xattrs: CopyObject of the object onto itself with MetadataDirective REPLACE (content type
 *   and the other standard headers sent again); a directory without a marker gets one.
 * - unlink: DeleteObject, or DeleteObjects for unlinks in flight together (delete-queue.ts). With writeback
 *   (`deleteDelayMs` > 0) an unlink returns once the key is queued and gone for this mount; the key is sent in a
 *   batch of up to 1,000 when the batch is full, deleteDelayMs after its first key, before an rmdir or directory
 *   rename, and at close.
 * - rename: CopyObject + DeleteObject; a directory moves key by key (copies first, then deletes: an interruption
 *   leaves both names, never neither). Not atomic (capabilities.atomicRename = false).
 *
 * Invariants:
 * - Every request has a deadline: each attempt s3Timeout (connect, headers, idle socket: requestHandler), all
 *   attempts of one call together an AbortSignal of MAX_ATTEMPTS × s3Timeout + backoff slack. Throttling, 5xx and
 *   refused or reset connections are retried by the SDK (standard mode, MAX_ATTEMPTS), then the call fails with EIO
 *   (or the connection's errno); an attempt that got no answer within s3Timeout is not retried (index.ts) and fails
 *   the call with ETIMEDOUT.
 * - One backend call waits for S3 at most about s3Timeout when S3 does not answer: the first request that gets no
 *   answer (or no connection) ends it, never followed by the next probe or HEAD of the same call (`isLinkError`).
 * - Every mutation marks what it changes in the cache (`touch`, `touchTree`) and updates the cache before resolving;
 *   a probe or listing that started before a mutation does not store what it saw of the changed names (it may be
 *   older than the mutation): see cache.ts.
 * - A file whose delete is queued or in flight (`deletes`) is absent for this mount: lookups answer ENOENT and
 *   listings leave it out; a write, symlink or rename onto it first takes it out of the queue (or waits for its
 *   batch), so a delete never lands after a later write of the same key.
 * - Errors leave here as errno-coded errors made with kit.fsxError; their messages carry no credentials.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type * as S3 from '@aws-sdk/client-s3'
import type { Upload } from '@aws-sdk/lib-storage'
import type {
  Backend, BackendKit, Capabilities, DirEntry, NodeKind, Owner, Stat, WriteAttrs, WriteSource
} from '@fsx/sdk'
import { compareNames, MetaCache, type Listed, type NodeInfo } from './cache.js'
import { Prefetcher } from './prefetch.js'
import { DeleteQueue } from './delete-queue.js'
import { isLinkError, isNotFound, s3CodeOf, statusOf, translate } from './errors.js'
import { baseName, copySource, KeyMap, parentOf, usableName } from './keys.js'
import {
  decodeXattrs, DEFAULT_CONTENT_TYPE, DIR_CONTENT_TYPE, encodeXattrs, formatMode, formatTime, implicitDirStat,
  listedFileStat, META_ATIME, META_CTIME, META_GID, META_MODE, META_MTIME, META_UID, META_XATTR, parseId, parseMode, POSIX_META,
  S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, statOf, type ObjectHeaders, type ObjectInfo, type StatDefaults
} from './metadata.js'
import { describeTarget, MAX_PART_SIZE, type S3Settings, type S3Target } from './settings.js'

/** Attempts per request, the first included (SDK standard retry mode: exponential backoff with jitter). */
export const MAX_ATTEMPTS = 3
/** Slack on top of MAX_ATTEMPTS × s3Timeout for the backoff between attempts (standard mode waits well under 5s). */
const BACKOFF_SLACK_MS = 5000
/** Reads at least this long are split into parallel ranges (below it one GET's latency is the whole cost). */
export const SPLIT_READ_BYTES = 2 * 1024 * 1024
/** Entries of one listing that get a HEAD for their attributes (see `list`). */
export const LIST_HEAD_MAX = 1000
/**
 * Listing read-ahead (see `listAhead`): subdirectories listed ahead of a traversal. 16 keeps find/du/rsync/rm -rf
 * a window of parallel LISTs ahead of them; a single `ls` of a subdirectory costs at most 16 background LISTs.
 */
export const LIST_AHEAD = 16
/** A directory listed ahead also gets its entries' HEADs (full metadata) when it holds at most this many. */
export const LIST_AHEAD_HEADS = 100
/** A directory of at most this many entries, listed before, is listed again to answer lookups below it (one
 *  request) instead of probing each name (up to three); larger ones are probed. */
export const RELIST_MAX = 1000
/** Smallest range of a split read. */
const MIN_RANGE_BYTES = 1024 * 1024
/** Largest object CopyObject accepts (5 GiB); larger renames answer EXDEV so `mv` falls back to copy + delete. */
export const MAX_COPY_BYTES = MAX_PART_SIZE
/** S3 multipart uploads have at most 10,000 parts: the part size grows for larger objects. */
const MAX_PARTS = 10_000
/** Keys per DeleteObjects request (S3's limit). */
const DELETE_BATCH = 1000
/** A directory rename of more keys than this says how far it got in the log (every PROGRESS_MS). */
const PROGRESS_KEYS = 1000
const PROGRESS_MS = 5000
/** Longest symlink target (PATH_MAX - 1). */
const MAX_LINK_BYTES = 4095
/** Linux XATTR_NAME_MAX and XATTR_SIZE_MAX. */
const XATTR_NAME_MAX = 255
const XATTR_SIZE_MAX = 65536
const XATTR_CREATE = 1
const XATTR_REPLACE = 2
/** uid/gid chown passes for "leave unchanged" ((uid_t)-1). */
const ID_UNCHANGED = 0xffffffff

type RequestKind = 'head' | 'get' | 'put' | 'list' | 'copy' | 'delete' | 'deleteBatch' | 'multipart'

interface Counters {
  requests: number
  head: number
  get: number
  put: number
  list: number
  copy: number
  /** DeleteObject requests (one key each). */
  delete: number
  /** DeleteObjects requests (up to 1,000 keys each), and the keys they deleted. */
  deleteBatch: number
  deletedKeys: number
  /** Multipart uploads started (their parts count in `requests`). */
  multipart: number
  /** Directories listed ahead of a traversal (`listAhead`; their LISTs and HEADs count above too). */
  listAhead: number
  retries: number
  errors: number
  bytesRead: number
  bytesWritten: number
}

/** What the backend needs from the SDK; `connect` (index.ts) loads it, tests may pass their own client. */
export interface S3Deps {
  sdk: typeof import('@aws-sdk/client-s3')
  client: S3.S3Client
  /** Loads lib-storage's Upload on first use (only multipart uploads need it). */
  loadUpload: () => Promise<typeof Upload>
}

export interface S3BackendOptions {
  /** Clock for the cache (tests fake it). */
  now?: () => number
  /** Owner reported for objects that carry none (default: this process). */
  uid?: number
  gid?: number
}

/** Counts a long operation's steps and says how far it got in the log every PROGRESS_MS, and when it is done. */
class Progress {
  private readonly counts: Record<string, number> = {}
  private readonly started: number
  private said: number

  constructor (private readonly log: ((line: string) => void) | undefined, private readonly what: string, private readonly total: number, private readonly now: () => number) {
    this.started = this.said = now()
    log?.(`${what}: ${total} objects to move (copies first, then deletes)`)
  }

  step (kind: string, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n
    if (this.now() - this.said < PROGRESS_MS) return
    this.said = this.now()
    this.log?.(`${this.what}: ${this.summary()}`)
  }

  done (): void {
    this.log?.(`${this.what}: done in ${((this.now() - this.started) / 1000).toFixed(1)} s (${this.summary()})`)
  }

  private summary (): string {
    return Object.entries(this.counts).map(([k, n]) => `${n} of ${this.total} ${k}`).join(', ')
  }
}

/** True when a name can bound a listing "from it onward" (StartAfter): one without surrogate pairs. */
function rangeable (name: string): boolean {
  return !/[\uD800-\uDFFF]/.test(name)
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure after all settle. */
async function eachLimit<T> (items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { err: unknown } | undefined
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]
      try {
        await fn(item)
      } catch (err) {
        failure ??= { err }
      }
    }
  }))
  if (failure !== undefined) throw failure.err
}

export class S3Backend implements Backend {
  readonly description: string
  readonly capabilities: Capabilities = {
    randomWrite: false,
    symlinks: true,
    hardlinks: false,
    xattrs: true,
    chmod: true,
    chown: true,
    utimens: true,
    statfs: false,
    atomicRename: false,
    realDirectories: false,
    // Object keys are UTF-8: names that are not are refused (EILSEQ) by the VFS before they arrive.
    byteNames: false,
    specialFiles: false,
    // uid/gid/mode are recorded per object (x-amz-meta-*): the kernel can check permissions.
    owners: true
  }

  readonly keys: KeyMap
  readonly cache: MetaCache
  private readonly sdk: S3Deps['sdk']
  private readonly client: S3.S3Client
  private readonly bucket: string
  private readonly defaults: StatDefaults
  private readonly now: () => number
  /** When this backend started: the times of directories that exist only as prefixes. */
  private readonly startedMs: number
  /** Deadline of one SDK call, all attempts included. */
  private readonly callDeadlineMs: number
  private readonly stats: Counters = {
    requests: 0, head: 0, get: 0, put: 0, list: 0, copy: 0, delete: 0, deleteBatch: 0, deletedKeys: 0, multipart: 0, listAhead: 0, retries: 0, errors: 0, bytesRead: 0, bytesWritten: 0
  }

  /** Sequential read-ahead (prefetch.ts). */
  private readonly prefetch: Prefetcher
  /** Lookups in flight, so concurrent stats of one path make one set of requests (see `lookup`). */
  private readonly lookups = new Map<string, { start: number; promise: Promise<NodeInfo | null> }>()
  /** Complete listings in flight for lookups (see `listFor`), and pages "from a name onward". */
  private readonly relists = new Map<string, { start: number; promise: Promise<void> }>()
  private readonly ranges = new Map<string, { start: number; promise: Promise<void> }>()
  private closed = false
  /** Where long operations report progress (the mount's log); see `setLog`. */
  private log?: (line: string) => void
  /** Unlinks' deletes, batched (delete-queue.ts); keyed by path. */
  private readonly deletes: DeleteQueue
  /** Directories queued or being listed ahead (`listAhead`): the listing in flight, once started. */
  private readonly listingAhead = new Map<string, Promise<void> | undefined>()
  private readonly aheadQueue: string[] = []
  private aheadRunning = 0
  private readonly aheadDone = new Set<() => void>()
  /** Sorted subdirectory names of recent fresh listings (`subdirsOf`), so a traversal does not sort per child. */
  private readonly sortedSubdirs = new Map<string, { names: Map<string, Listed>, size: number, subdirs: string[] }>()

  constructor (
    readonly target: S3Target,
    readonly settings: S3Settings,
    private readonly deps: S3Deps,
    private readonly kit: BackendKit,
    opts: S3BackendOptions = {}
  ) {
    this.description = describeTarget(target)
    this.bucket = target.bucket
    this.sdk = deps.sdk
    this.client = deps.client
    this.now = opts.now ?? Date.now
    this.startedMs = this.now()
    this.keys = new KeyMap(target.prefix, (code, message, extra) => kit.fsxError(code, message, extra))
    this.cache = new MetaCache(settings.listCacheTtlMs, this.now)
    this.defaults = { uid: opts.uid ?? process.getuid?.() ?? 0, gid: opts.gid ?? process.getgid?.() ?? 0 }
    this.callDeadlineMs = settings.timeoutMs * MAX_ATTEMPTS + BACKOFF_SLACK_MS
    this.prefetch = new Prefetcher(async (key, start, len) => await this.getRange(key, start, len), settings.concurrency, this.now)
    this.deletes = new DeleteQueue({
      batch: DELETE_BATCH,
      delayMs: settings.deleteDelayMs,
      send: async paths => await this.deletePaths(paths),
      onSettled: (p, err) => {
        // A listing in flight may have seen the object before it went: it stores nothing of it.
        this.cache.touch(p)
        if (err === undefined) this.cache.removed(p)
        else this.cache.forget(p)
      },
      onLateError: (p, err) => {
        this.log?.(`unlink ${p}: S3 did not delete the object after the unlink returned (${this.fail(err, 'unlink', p).message}); it is still there`)
      }
    })
  }

  /** Lines for the mount's log (a large directory rename's progress). */
  setLog (log: (line: string) => void): void {
    this.log = log
  }

  /** Requests by kind, retries, errors, bytes; cacheHits: lookups answered by the metadata cache; prefetchHits:
   *  reads answered from read-ahead chunks. */
  counters (): Record<string, number> {
    return { ...this.stats, cacheHits: this.cache.hits, prefetchHits: this.prefetch.hits, deletesPending: this.deletes.pending }
  }

  // ---- requests ---------------------------------------------------------------------------------------------------

  private err (code: string, op: string, p: string, why: string): Error {
    return this.kit.fsxError(code, `${op} ${p}: ${why}`, { path: p, op })
  }

  private fail (err: unknown, op: string, p: string): Error {
    return translate(err, op, p, (code, message, extra) => this.kit.fsxError(code, message, extra))
  }

  /** Sends one command with the call deadline; counts it, its retries and its failure. */
  private async send<O> (kind: RequestKind, command: unknown): Promise<O> {
    if (this.closed) throw this.kit.fsxError('EIO', 'the S3 backend is closed', { op: kind })
    this.stats.requests++
    this.stats[kind]++
    const countRetries = (m: { attempts?: number } | undefined): void => {
      if (m?.attempts !== undefined && m.attempts > 1) this.stats.retries += m.attempts - 1
    }
    try {
      const out = await this.client.send(command as any, { abortSignal: AbortSignal.timeout(this.callDeadlineMs) }) as O & { $metadata?: { attempts?: number } }
      countRetries(out.$metadata)
      return out
    } catch (err) {
      countRetries((err as { $metadata?: { attempts?: number } } | null)?.$metadata)
      if (!isNotFound(err)) this.stats.errors++
      throw err
    }
  }

  /** HEAD of a key: what it says, or undefined when there is no such object. */
  private async head (key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.send<S3.HeadObjectCommandOutput>('head', new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      const headers: ObjectHeaders = {}
      if (out.ContentType !== undefined) headers.ContentType = out.ContentType
      if (out.CacheControl !== undefined) headers.CacheControl = out.CacheControl
      if (out.ContentDisposition !== undefined) headers.ContentDisposition = out.ContentDisposition
      if (out.ContentEncoding !== undefined) headers.ContentEncoding = out.ContentEncoding
      if (out.ContentLanguage !== undefined) headers.ContentLanguage = out.ContentLanguage
      if (out.Expires instanceof Date && !Number.isNaN(out.Expires.getTime())) headers.Expires = out.Expires
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModifiedMs: out.LastModified?.getTime() ?? this.now(),
        etag: out.ETag,
        metadata: { ...(out.Metadata ?? {}) },
        headers
      }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /** One page of a ListObjectsV2. */
  private async listPage (prefix: string, opts: { delimiter?: boolean; maxKeys?: number; token?: string; startAfter?: string }): Promise<S3.ListObjectsV2CommandOutput> {
    return await this.send<S3.ListObjectsV2CommandOutput>('list', new this.sdk.ListObjectsV2Command({
      Bucket: this.bucket,
      Prefix: prefix,
      Delimiter: opts.delimiter === true ? '/' : undefined,
      MaxKeys: opts.maxKeys,
      ContinuationToken: opts.token,
      StartAfter: opts.token === undefined ? opts.startAfter : undefined
    }))
  }

  /** Every key below `prefix` (no delimiter), all pages. */
  private async listAll (prefix: string): Promise<Array<{ key: string; size: number }>> {
    const out: Array<{ key: string; size: number }> = []
    let token: string | undefined
    do {
      const page = await this.listPage(prefix, { token })
      for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0 })
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out
  }

  // ---- lookups ----------------------------------------------------------------------------------------------------

  private rootInfo (): NodeInfo {
    return { stat: implicitDirStat(this.startedMs, this.defaults) }
  }

  /**
   * What `p` is, or ENOENT. Cached (see cache.ts); concurrent lookups of one path share their requests (joined only
   * while nothing changed `p` since the shared lookup began: it may have seen the state before the change).
   *
   * The paths a lookup takes, cheapest first:
   * 1. the node cache (a HEAD or a write of this mount, within s3ListCacheTtl);
   * 2. a fresh listing of the parent that covers the name: present (with `s3Metadata=listing` its attributes come from
   *    the listing, no request; with `full` one HEAD for the object's metadata) or absent (ENOENT, no request);
   * 3. a listing made now: the whole parent again when it was listed before and held at most RELIST_MAX names, else
   *    one page of the parent from this name onward (which answers the next lookups of the names after it, as
   *    geesefs does); then as 2;
   * 4. when no listing can answer (the cache is off, or the page ended before the name): HEAD key, a 1-key LIST of
   *    key/ and, with `full`, HEAD key/ at once (mountpoint-s3's concurrent lookup).
   */
  private async lookup (p: string, op: string): Promise<NodeInfo> {
    if (p === '/') return this.rootInfo()
    if (this.deletes.has(p)) throw this.err('ENOENT', op, p, 'no such file or directory')
    const cached = this.cache.node(p)
    if (cached === null) throw this.err('ENOENT', op, p, 'no such file or directory')
    if (cached !== undefined) return cached
    let pending = this.lookups.get(p)
    if (pending === undefined || !this.cache.storable(p, pending.start)) {
      const start = this.cache.begin()
      const entry = {
        start,
        promise: this.resolve(p).then(info => {
          if (this.cache.storable(p, start)) this.cache.setNode(p, info)
          return info
        }).finally(() => {
          this.cache.end()
          if (this.lookups.get(p) === entry) this.lookups.delete(p)
        })
      }
      pending = entry
      this.lookups.set(p, entry)
    }
    let info: NodeInfo | null
    try {
      info = await pending.promise
    } catch (err) {
      throw this.fail(err, op, p)
    }
    if (info === null) throw this.err('ENOENT', op, p, 'no such file or directory')
    return info
  }

  /**
   * Like `lookup`, but with the object's own metadata (mode, owner, times, symlink-ness, xattrs): an answer that came
   * from a listing alone (`s3Metadata=listing`) is completed with a HEAD of the object (or of the directory's
   * marker), which then replaces it in the cache. chmod, chown, utimens and the xattr calls need it.
   */
  private async lookupFull (p: string, op: string): Promise<NodeInfo> {
    const info = await this.lookup(p, op)
    if (info.listed !== true) return info
    const isDir = info.stat.kind === 'dir'
    const start = this.cache.begin()
    let full: NodeInfo | null
    try {
      const obj = await this.head(isDir ? this.keys.dirPrefix(p) : this.keys.fileKey(p))
      full = obj !== undefined
        ? { stat: statOf(obj, isDir, this.defaults), object: obj }
        : isDir ? { stat: info.stat } : await this.probe(p) // a directory without a marker; a file gone since listed
      if (full !== null && this.cache.storable(p, start)) this.cache.setNode(p, full)
    } catch (err) {
      throw this.fail(err, op, p)
    } finally {
      this.cache.end()
    }
    if (full === null) {
      this.cache.removed(p)
      throw this.err('ENOENT', op, p, 'no such file or directory')
    }
    return full
  }

  /** Steps 2 to 4 of `lookup`. */
  private async resolve (p: string): Promise<NodeInfo | null> {
    const parent = parentOf(p)
    const name = baseName(p)
    let listed = this.cache.listed(parent, name)
    // Without a negative cache an absence is asked of S3 again (a listing now, with the HEAD beside it).
    if (listed === null && this.settings.listedAbsence === false) listed = undefined
    let head: Promise<ObjectInfo | undefined> | undefined
    if (listed === undefined && this.cache.ttlMs > 0 && rangeable(name)) {
      if (this.settings.metadata === 'full') {
        // The object's metadata will be wanted if it exists (most names looked up do): ask alongside the listing.
        head = this.head(this.keys.fileKey(p))
        head.catch(() => {})
      }
      listed = await this.listFor(parent, name)
    }
    if (listed === null) {
      this.cache.hits++
      // Alongside a listing that says "absent": an object made since (by another client) still counts.
      const obj = await head
      return obj === undefined ? null : { stat: statOf(obj, false, this.defaults), object: obj }
    }
    if (listed !== undefined) return await this.fromListing(p, listed, head)
    return await this.probe(p, head)
  }

  /** What a listing entry says of `p`: with `s3Metadata=listing` as is; with `full` plus the object's metadata. */
  private async fromListing (p: string, listed: Listed, head?: Promise<ObjectInfo | undefined>): Promise<NodeInfo | null> {
    if (listed.kind === 'dir') {
      if (this.settings.metadata === 'listing') return { stat: implicitDirStat(this.startedMs, this.defaults), listed: true }
      const marker = await this.head(this.keys.dirPrefix(p))
      return marker !== undefined ? { stat: statOf(marker, true, this.defaults), object: marker } : { stat: implicitDirStat(this.startedMs, this.defaults) }
    }
    if (this.settings.metadata === 'listing' && listed.size !== undefined) return this.listedInfo(listed)
    const obj = await (head ?? this.head(this.keys.fileKey(p)))
    if (obj !== undefined) return { stat: statOf(obj, false, this.defaults), object: obj }
    return await this.probe(p) // gone since it was listed: ask properly
  }

  /** A file's NodeInfo from its listing entry alone. */
  private listedInfo (l: Listed): NodeInfo {
    return { stat: listedFileStat(l.size ?? 0, l.lastModifiedMs ?? this.startedMs, l.etag, this.defaults), listed: true }
  }

  /**
   * Lists (part of) `parent` so that it answers a lookup of `name`: the whole directory again when it was listed
   * before and was small, else one page from `name` onward. Concurrent callers share listings. Resolves with what
   * the index then says of `name` (undefined: still not covered, or the listing failed with an answer of S3's,
   * which the probes will report); S3 not answering at all rejects at once.
   */
  private async listFor (parent: string, name: string): Promise<Listed | null | undefined> {
    const size = this.cache.listedSize(parent)
    try {
      if (size !== undefined && size <= RELIST_MAX) {
        await this.shared(this.relists, parent, async () => { await this.listDir(parent) })
      } else {
        // A page from this name onward may already be on its way (parallel lookups in one directory): use it.
        const inflight = this.ranges.get(parent)
        if (inflight !== undefined) {
          await inflight.promise
          const l = this.cache.listed(parent, name)
          if (l !== undefined) return l
        }
        await this.shared(this.ranges, parent, async () => { await this.listDir(parent, name.slice(0, -1), true) })
      }
    } catch (err) {
      if (isLinkError(err)) throw err
      return undefined
    }
    return this.cache.listed(parent, name)
  }

  /** Runs `fn` for `key` unless a run is in flight and nothing changed since it began; joins that one. */
  private async shared (m: Map<string, { start: number; promise: Promise<void> }>, key: string, fn: () => Promise<void>): Promise<void> {
    const cur = m.get(key)
    if (cur !== undefined && this.cache.storable(key, cur.start)) return await cur.promise
    const start = this.cache.begin()
    const entry = { start, promise: fn().finally(() => { this.cache.end(); if (m.get(key) === entry) m.delete(key) }) }
    m.set(key, entry)
    return await entry.promise
  }

  /**
   * HEAD key, a 1-key LIST of key/ and (`full`) HEAD key/ at once; a file wins over a directory of the same name.
   * The first request S3 does not answer fails it (no waiting for the others).
   */
  private async probe (p: string, head?: Promise<ObjectInfo | undefined>): Promise<NodeInfo | null> {
    const prefix = this.keys.dirPrefix(p)
    const [obj, marker, page] = await Promise.all([
      head ?? this.head(this.keys.fileKey(p)),
      this.settings.metadata === 'full' ? this.head(prefix) : undefined,
      this.listPage(prefix, { maxKeys: 1 })
    ])
    if (obj !== undefined) return { stat: statOf(obj, false, this.defaults), object: obj }
    if (marker !== undefined) return { stat: statOf(marker, true, this.defaults), object: marker }
    const first = page.Contents?.[0]
    if (first !== undefined || (page.CommonPrefixes?.length ?? 0) > 0) {
      return { stat: implicitDirStat(first?.LastModified?.getTime() ?? this.startedMs, this.defaults), listed: this.settings.metadata === 'listing' }
    }
    return null
  }

  /** Like lookup, but resolves undefined for ENOENT. */
  private async find (p: string, op: string): Promise<NodeInfo | undefined> {
    try {
      return await this.lookup(p, op)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** The parent of `p` must be a directory (mkdir/symlink/rename targets): ENOENT / ENOTDIR otherwise. */
  private async checkParent (p: string, op: string): Promise<void> {
    const parent = parentOf(p)
    if (parent === '/') return
    const info = await this.find(parent, op)
    if (info === undefined) throw this.err('ENOENT', op, p, 'no such directory')
    if (info.stat.kind !== 'dir') throw this.err('ENOTDIR', op, p, `${parent} is not a directory`)
  }

  /**
   * Another client changed `p` (with `tree`, what is below it too), as another mount of the source says over
   * coherence (src/vfs/coherence.ts): forget what the cache and read-ahead hold of it, so the next call asks S3.
   */
  invalidate (p: string, tree: boolean): void {
    // Requests in flight now may have seen the state before the change: they store nothing of it.
    if (tree) this.cache.touchTree()
    else this.cache.touch(p)
    if (tree) {
      this.cache.forgetTree(p)
      this.prefetch.invalidatePrefix(this.keys.dirPrefix(p))
    } else {
      this.cache.forget(p)
    }
    if (p !== '/') this.prefetch.invalidate(this.keys.fileKey(p))
  }

  // ---- the contract -----------------------------------------------------------------------------------------------

  /** The health probe (src/vfs/health.ts): a 1-key listing of the prefix, which is what mounting checked too. */
  async ping (): Promise<void> {
    try {
      await this.listPage(this.keys.dirPrefix('/'), { maxKeys: 1 })
    } catch (err) {
      throw this.fail(err, 'ping', '/')
    }
  }

  async stat (p: string): Promise<Stat> {
    this.keys.check(p, 'stat')
    return (await this.lookup(p, 'stat')).stat
  }

  /**
   * Lists `p` (ListObjectsV2, every page) and gives each entry its attributes. With `s3Metadata=listing` they come
   * from the listing itself (size, LastModified, ETag; defaults for the rest) unless the cache knows the object's
   * own (this mount wrote it, or a HEAD was made anyway). With `full`, entries the cache cannot answer get a HEAD
   * (in parallel, at most LIST_HEAD_MAX per listing: what `ls -l`, `find` and every coloured `ls` would ask next
   * anyway, and it makes their lookups cache hits); entries beyond that carry no stat (the kernel then asks).
   */
  async list (p: string): Promise<DirEntry[]> {
    const entries = await this.listEntries(p)
    this.listAhead(p)
    return entries
  }

  /** `list` without the read-ahead (`ahead`: this is the read-ahead's own call). */
  private async listEntries (p: string, ahead = false): Promise<DirEntry[]> {
    this.keys.check(p, 'list')
    // Being listed ahead: that listing answers (one still queued is left to run later and finds this one's).
    const running = ahead ? undefined : this.listingAhead.get(p)
    if (running !== undefined) await running
    // A fresh complete listing (kept up to date with this mount's changes) answers without a request.
    const known = this.cache.dir(p)
    const listing = known !== undefined ? { entries: new Map(known), sawMarker: true } : await this.listDir(p)
    if (listing.entries.size === 0 && !listing.sawMarker && p !== '/') {
      // Nothing under the prefix and no marker: a file (ENOTDIR), or nothing at all (ENOENT).
      const info = await this.find(p, 'list')
      if (info === undefined) throw this.err('ENOENT', 'list', p, 'no such directory')
      if (info.stat.kind !== 'dir') throw this.err('ENOTDIR', 'list', p, 'not a directory')
    }
    const names = [...listing.entries.keys()].sort(compareNames)
    const entries: DirEntry[] = []
    const unknown: Array<{ entry: DirEntry; path: string; kind: NodeKind }> = []
    for (const name of names) {
      const l = listing.entries.get(name)!
      const path = p === '/' ? '/' + name : `${p}/${name}`
      const entry: DirEntry = { name }
      entries.push(entry)
      const cached = this.cache.node(path)
      if (cached != null && (cached.stat.kind === 'dir') === (l.kind === 'dir')) entry.stat = cached.stat
      else if (this.settings.metadata === 'listing') entry.stat = l.kind === 'dir' ? implicitDirStat(this.startedMs, this.defaults) : this.listedInfo(l).stat
      else unknown.push({ entry, path, kind: l.kind })
    }
    const start = this.cache.begin()
    try {
      await eachLimit(unknown.slice(0, LIST_HEAD_MAX), Math.max(16, this.settings.concurrency * 4), async u => {
        let info: NodeInfo | undefined
        try {
          if (u.kind === 'dir') {
            const marker = await this.head(this.keys.dirPrefix(u.path))
            info = marker !== undefined
              ? { stat: statOf(marker, true, this.defaults), object: marker }
              : { stat: implicitDirStat(this.startedMs, this.defaults) }
          } else {
            const obj = await this.head(this.keys.fileKey(u.path))
            if (obj !== undefined) info = { stat: statOf(obj, false, this.defaults), object: obj }
          }
        } catch (err) {
          // S3 stopped answering: the listing fails now rather than after every other HEAD timed out too.
          if (isLinkError(err)) throw this.fail(err, 'list', p)
          return // the entry stays without attributes; a lookup will ask again (and report the error)
        }
        if (info === undefined) return
        u.entry.stat = info.stat
        if (this.cache.storable(u.path, start)) this.cache.setNode(u.path, info)
      })
    } finally {
      this.cache.end()
    }
    return entries
  }

  /**
   * Listing read-ahead. A traversal (find, du, rsync, tar, rm -rf) lists a directory and then each subdirectory in
   * turn, one round trip at a time (plus HEADs with full metadata) that S3 would answer in parallel. So when `p`
   * is listed, its first `LIST_AHEAD` subdirectories (a traversal descends next) and, when its parent's fresh
   * listing holds it, the next `LIST_AHEAD` subdirectories of the parent after it (in listing order), those with
   * no fresh listing, are listed in the background, `s3Concurrency` at a time, into the listing cache, where the
   * traversal finds them. Each listing moves the window on. Failures are dropped: the traversal's own listing asks
   * again and reports the error.
   */
  private listAhead (p: string): void {
    if (this.cache.ttlMs <= 0 || this.closed) return
    const subdirs = (dir: string, after?: string): string[] => {
      const all = this.subdirsOf(dir)
      if (all === undefined) return []
      // The first name after `after` (binary search: the list is sorted).
      let lo = 0
      let hi = after === undefined ? 0 : all.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (compareNames(all[mid], after!) <= 0) lo = mid + 1
        else hi = mid
      }
      return all.slice(lo, lo + LIST_AHEAD).map(name => dir === '/' ? '/' + name : `${dir}/${name}`)
    }
    const wanted = subdirs(p)
    if (p !== '/' && this.cache.dir(parentOf(p))?.get(baseName(p))?.kind === 'dir') wanted.push(...subdirs(parentOf(p), baseName(p)))
    for (const sub of wanted) {
      if (this.listingAhead.has(sub) || this.cache.dir(sub) !== undefined) continue
      this.listingAhead.set(sub, undefined)
      this.aheadQueue.push(sub)
    }
    this.runAhead()
  }

  /**
   * The subdirectory names of `dir`'s fresh listing, sorted; remembered while that listing keeps its size (a
   * traversal asks once per child: sorting a large parent each time would cost O(n² log n)). NB: a rename within
   * the directory keeps the size, so the list may be stale; it only picks what to list ahead.
   */
  private subdirsOf (dir: string): string[] | undefined {
    const names = this.cache.dir(dir)
    if (names === undefined) return undefined
    const memo = this.sortedSubdirs.get(dir)
    if (memo !== undefined && memo.names === names && memo.size === names.size) return memo.subdirs
    const subdirs = [...names].filter(([, l]) => l.kind === 'dir').map(([name]) => name).sort(compareNames)
    this.sortedSubdirs.delete(dir)
    this.sortedSubdirs.set(dir, { names, size: names.size, subdirs })
    // A traversal needs the directory it is in and its parent: a few are plenty.
    if (this.sortedSubdirs.size > 8) this.sortedSubdirs.delete(this.sortedSubdirs.keys().next().value as string)
    return subdirs
  }

  private runAhead (): void {
    while (this.aheadRunning < this.settings.concurrency && this.aheadQueue.length > 0) {
      const sub = this.aheadQueue.shift()!
      this.aheadRunning++
      const run = (async () => {
        if (this.closed || this.cache.dir(sub) !== undefined) return
        this.stats.listAhead++
        const listing = await this.listDir(sub)
        if (this.settings.metadata === 'full' && listing.entries.size <= LIST_AHEAD_HEADS) await this.listEntries(sub, true)
      })().catch(() => {})
      this.listingAhead.set(sub, run)
      void run.finally(() => {
        this.aheadRunning--
        this.listingAhead.delete(sub)
        this.runAhead()
        if (this.aheadRunning === 0 && this.aheadQueue.length === 0) for (const done of this.aheadDone) done()
      })
    }
  }

  /** Resolves once no listing read-ahead is running (tests). */
  async listedAhead (): Promise<void> {
    if (this.aheadRunning === 0 && this.aheadQueue.length === 0) return
    await new Promise<void>(resolve => {
      const done = (): void => { this.aheadDone.delete(done); resolve() }
      this.aheadDone.add(done)
    })
  }

  /**
   * Lists directory `p` with delimiter "/" and stores what it saw in the index: every page, or with `onePage` one
   * page of the names after `after` (StartAfter). Files win over prefixes of the same name; the marker itself is
   * not an entry.
   */
  private async listDir (p: string, after = '', onePage = false): Promise<{ entries: Map<string, Listed>; sawMarker: boolean }> {
    const prefix = this.keys.dirPrefix(p)
    const entries = new Map<string, Listed>()
    const dirs = new Set<string>()
    let sawMarker = false
    let upTo: string | undefined
    const start = this.cache.listingBegins(p)
    try {
      let token: string | undefined
      do {
        const page = await this.listPage(prefix, { delimiter: true, token, startAfter: after === '' ? undefined : prefix + after })
        let last: string | undefined
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue
          if (o.Key === prefix) { sawMarker = true; continue }
          const name = o.Key.slice(prefix.length)
          last = name
          if (usableName(name) && !this.deletes.has(p === '/' ? '/' + name : `${p}/${name}`)) entries.set(name, { kind: 'file', size: o.Size ?? 0, lastModifiedMs: o.LastModified?.getTime(), etag: o.ETag })
        }
        const cps = page.CommonPrefixes ?? []
        for (const cp of cps) {
          const name = cp.Prefix?.slice(prefix.length, -1)
          if (name !== undefined && usableName(name)) dirs.add(name)
        }
        const lastPrefix = cps.length > 0 ? cps[cps.length - 1].Prefix?.slice(prefix.length) : undefined
        if (lastPrefix !== undefined && (last === undefined || compareNames(lastPrefix, last) > 0)) last = lastPrefix
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        if (onePage && token !== undefined) {
          // Covered: the names after `after` up to the last one this page holds.
          upTo = last ?? after
          token = undefined
        }
      } while (token !== undefined)
      for (const name of dirs) if (!entries.has(name)) entries.set(name, { kind: 'dir' })
      this.cache.storeListing(p, start, after, upTo, entries)
    } catch (err) {
      throw this.fail(err, 'list', p)
    } finally {
      this.cache.listingEnds(p)
    }
    return { entries, sawMarker }
  }

  /** True when directory `p` holds anything besides its own marker (a fresh listing, else one small listing). */
  private async hasChildren (p: string): Promise<boolean> {
    const known = this.cache.dir(p)
    if (known !== undefined) return known.size > 0
    const prefix = this.keys.dirPrefix(p)
    const page = await this.listPage(prefix, { delimiter: true, maxKeys: 2 })
    return (page.Contents ?? []).some(o => o.Key !== prefix) || (page.CommonPrefixes?.length ?? 0) > 0
  }

  async read (p: string, offset: number, length: number): Promise<Buffer> {
    this.keys.check(p, 'read')
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > 2 ** 31 - 1) {
      throw this.err('EINVAL', 'read', p, 'offset/length must be non-negative integers')
    }
    if (p === '/') throw this.err('EISDIR', 'read', p, 'is a directory')
    if (length === 0) return Buffer.alloc(0)
    const key = this.keys.fileKey(p)
    try {
      if (length < SPLIT_READ_BYTES || this.settings.concurrency === 1) {
        const known = this.cache.node(p)
        return await this.prefetch.read(key, offset, length, known?.stat.kind === 'file' ? known.stat.size : undefined)
      }
      // Split into about `concurrency` ranges; ranges past EOF come back empty (416) and are dropped.
      const size = Math.max(MIN_RANGE_BYTES, Math.ceil(length / this.settings.concurrency))
      const ranges: Array<{ start: number; len: number; data?: Buffer }> = []
      for (let at = 0; at < length; at += size) ranges.push({ start: offset + at, len: Math.min(size, length - at) })
      await eachLimit(ranges, this.settings.concurrency, async r => { r.data = (await this.getRange(key, r.start, r.len)).data })
      const parts: Buffer[] = []
      for (const r of ranges) {
        parts.push(r.data!)
        if (r.data!.length < r.len) break // end of file
      }
      return parts.length === 1 ? parts[0] : Buffer.concat(parts)
    } catch (err) {
      if (isNotFound(err)) {
        const info = await this.find(p, 'read').catch(() => undefined)
        if (info?.stat.kind === 'dir') throw this.err('EISDIR', 'read', p, 'is a directory')
        this.cache.forget(p)
      }
      throw this.fail(err, 'read', p)
    }
  }

  /** GET of bytes [start, start+len): fewer only at EOF, empty past it; with the object's ETag. */
  private async getRange (key: string, start: number, len: number): Promise<{ data: Buffer; etag?: string }> {
    let out: S3.GetObjectCommandOutput
    try {
      out = await this.send<S3.GetObjectCommandOutput>('get', new this.sdk.GetObjectCommand({
        Bucket: this.bucket, Key: key, Range: `bytes=${start}-${start + len - 1}`
      }))
    } catch (err) {
      if (statusOf(err) === 416 || s3CodeOf(err) === 'InvalidRange') return { data: Buffer.alloc(0) }
      throw err
    }
    const bytes = out.Body === undefined ? new Uint8Array(0) : await out.Body.transformToByteArray()
    let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    // NB: a server that ignores Range answers 200 with the whole object.
    if (out.ContentRange === undefined && start > 0) buf = buf.subarray(start)
    if (buf.length > len) buf = buf.subarray(0, len)
    this.stats.bytesRead += buf.length
    return { data: buf, etag: out.ETag }
  }

  async write (p: string, source: WriteSource, attrs: WriteAttrs = {}): Promise<Stat> {
    this.keys.check(p, 'write')
    if (p === '/') throw this.err('EISDIR', 'write', p, 'is a directory')
    const key = this.keys.fileKey(p)
    const size = Buffer.isBuffer(source) ? source.length : source.size
    await this.deletes.cancel(p)
    let prev: ObjectInfo | undefined
    try {
      prev = await this.replacing(p)
    } catch (err) {
      throw this.fail(err, 'write', p)
    }
    const now = this.now()
    // NB: the mode and owner an object records win over `attrs`: rewriting a file's content changes neither (as
    // write(2) does not), and `attrs` may hold defaults from a listing (s3Metadata=listing) rather than what the
    // object says. `attrs` give new objects theirs, and objects that record none.
    const prevMode = parseMode(prev?.metadata[META_MODE])
    let mode = prevMode !== undefined && (prevMode & S_IFMT) === S_IFREG ? prevMode : attrs.mode ?? prevMode ?? (S_IFREG | 0o644)
    if ((mode & S_IFMT) === 0) mode |= S_IFREG
    const metadata = this.carriedMetadata(prev)
    metadata[META_MODE] = formatMode(mode)
    metadata[META_UID] = String(parseId(prev?.metadata[META_UID]) ?? attrs.uid ?? this.defaults.uid)
    metadata[META_GID] = String(parseId(prev?.metadata[META_GID]) ?? attrs.gid ?? this.defaults.gid)
    metadata[META_MTIME] = formatTime(attrs.mtimeMs ?? now)
    metadata[META_CTIME] = formatTime(now)
    const headers: ObjectHeaders = { ...(prev?.headers ?? {}) }
    headers.ContentType ??= DEFAULT_CONTENT_TYPE
    this.cache.touch(p)
    this.prefetch.invalidate(key)
    let etag: string | undefined
    try {
      if (size <= this.settings.partSizeBytes) {
        const body = Buffer.isBuffer(source) ? source : await readStaging(source.file, size)
        const out = await this.send<S3.PutObjectCommandOutput>('put', new this.sdk.PutObjectCommand({
          Bucket: this.bucket, Key: key, Body: body, ContentLength: size, Metadata: metadata, ...headers
        }))
        etag = out.ETag
      } else {
        etag = await this.multipartUpload(key, source, size, metadata, headers)
      }
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, 'write', p)
    }
    this.stats.bytesWritten += size
    const info: ObjectInfo = { key, size, lastModifiedMs: now, etag, metadata, headers }
    const stat = statOf(info, false, this.defaults)
    this.cache.added(p, stat.kind, { stat, object: info })
    return stat
  }

  /** The object a write to `p` replaces (its metadata and headers are carried over), or undefined. */
  private async replacing (p: string): Promise<ObjectInfo | undefined> {
    const cached = this.cache.node(p)
    if (cached === null) return undefined
    if (cached !== undefined) {
      if (cached.stat.kind === 'dir') throw this.err('EISDIR', 'write', p, 'is a directory')
      if (cached.object !== undefined) return cached.object
    }
    // A fresh listing of the parent without this name: a new object, nothing to carry over.
    if (cached === undefined && this.cache.listed(parentOf(p), baseName(p)) === null) return undefined
    return await this.head(this.keys.fileKey(p))
  }

  /** User metadata of `prev` that fsx does not own (xattrs, other tools' keys), plus its atime. */
  private carriedMetadata (prev: ObjectInfo | undefined): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(prev?.metadata ?? {})) if (!POSIX_META.has(k)) out[k] = v
    const atime = prev?.metadata[META_ATIME]
    if (atime !== undefined) out[META_ATIME] = atime
    return out
  }

  /** Multipart upload of `size` bytes streamed from the staging file; aborted (parts dropped) on failure. */
  private async multipartUpload (key: string, source: WriteSource, size: number, metadata: Record<string, string>, headers: ObjectHeaders): Promise<string | undefined> {
    const UploadClass = await this.deps.loadUpload()
    const body = Buffer.isBuffer(source)
      ? source
      : createReadStream(source.file, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 })
    const upload = new UploadClass({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentLength: size, Metadata: metadata, ...headers },
      partSize: Math.max(this.settings.partSizeBytes, Math.ceil(size / MAX_PARTS)),
      queueSize: this.settings.concurrency,
      leavePartsOnError: false
    })
    this.stats.multipart++
    this.stats.requests += 2 // create + complete; each part counts as it completes
    upload.on('httpUploadProgress', progress => { if (progress.part !== undefined) this.stats.requests++ })
    try {
      const out = await upload.done()
      return (out as { ETag?: string }).ETag
    } finally {
      if (!Buffer.isBuffer(body)) body.destroy()
    }
  }

  async remove (p: string): Promise<void> {
    this.keys.check(p, 'unlink')
    if (p === '/') throw this.err('EISDIR', 'unlink', p, 'is a directory')
    const info = await this.lookup(p, 'unlink')
    if (info.stat.kind === 'dir') throw this.err('EISDIR', 'unlink', p, 'is a directory')
    this.cache.touch(p)
    this.prefetch.invalidate(this.keys.fileKey(p))
    if (this.settings.deleteDelayMs > 0) {
      // Write-back: gone for this mount now, deleted on S3 with the next unlinks' keys.
      this.deletes.defer(p)
      this.cache.removed(p)
      return
    }
    try {
      await this.deletes.add(p)
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, 'unlink', p)
    }
    this.cache.removed(p)
  }

  /** Deletes the objects of files `paths` (the queue's batches): one outcome per path, as `deleteBatches`. */
  private async deletePaths (paths: string[]): Promise<unknown[]> {
    const keys = paths.map(p => this.keys.fileKey(p))
    if (keys.length > 1) return await this.deleteBatches(keys)
    try {
      await this.send('delete', new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: keys[0] }))
      return [undefined]
    } catch (err) {
      return [err]
    }
  }

  async mkdir (p: string, mode: number, owner?: Owner): Promise<void> {
    this.keys.check(p, 'mkdir')
    // A file of this name unlinked and not deleted yet: its key goes first (it would hide the directory).
    if (this.deletes.has(p)) await this.deletes.flush()
    if (p === '/' || await this.find(p, 'mkdir') !== undefined) throw this.err('EEXIST', 'mkdir', p, 'file exists')
    await this.checkParent(p, 'mkdir')
    const now = this.now()
    const info: ObjectInfo = {
      key: this.keys.dirPrefix(p),
      size: 0,
      lastModifiedMs: now,
      metadata: {
        [META_MODE]: formatMode(S_IFDIR | (mode & 0o7777)),
        [META_UID]: String(owner?.uid ?? this.defaults.uid),
        [META_GID]: String(owner?.gid ?? this.defaults.gid),
        [META_MTIME]: formatTime(now),
        [META_CTIME]: formatTime(now)
      },
      headers: { ContentType: DIR_CONTENT_TYPE }
    }
    this.cache.touch(p)
    try {
      await this.putEmpty(info)
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, 'mkdir', p)
    }
    this.cache.added(p, 'dir', { stat: statOf(info, true, this.defaults), object: info })
    // Nothing below a directory just made: lookups of names in it are answered without a request.
    this.cache.setEmptyDir(p)
  }

  private async putEmpty (info: ObjectInfo, body: Buffer = Buffer.alloc(0)): Promise<S3.PutObjectCommandOutput> {
    const out = await this.send<S3.PutObjectCommandOutput>('put', new this.sdk.PutObjectCommand({
      Bucket: this.bucket, Key: info.key, Body: body, ContentLength: body.length, Metadata: info.metadata, ...info.headers
    }))
    info.etag = out.ETag
    this.stats.bytesWritten += body.length
    return out
  }

  async rmdir (p: string): Promise<void> {
    this.keys.check(p, 'rmdir')
    if (p === '/') throw this.err('EBUSY', 'rmdir', p, 'cannot remove the mount root')
    const info = await this.lookup(p, 'rmdir')
    if (info.stat.kind !== 'dir') throw this.err('ENOTDIR', 'rmdir', p, 'not a directory')
    // The deletes of files unlinked in it go first: a key S3 kept makes it not empty.
    await this.deletes.flush()
    const prefix = this.keys.dirPrefix(p)
    this.cache.touch(p)
    try {
      if (await this.hasChildren(p)) throw this.err('ENOTEMPTY', 'rmdir', p, 'directory not empty')
      await this.send('delete', new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: prefix }))
      // s3fs's legacy form: a "dir" object (no slash) with content type application/x-directory.
      if (info.object !== undefined && info.object.key !== prefix) {
        await this.send('delete', new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: info.object.key }))
      }
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, 'rmdir', p)
    }
    this.cache.removedTree(p)
  }

  async rename (from: string, to: string): Promise<void> {
    this.keys.check(from, 'rename')
    this.keys.check(to, 'rename')
    if (from === '/' || to === '/') throw this.err('EBUSY', 'rename', from === '/' ? from : to, 'cannot rename the mount root')
    if (to.startsWith(from + '/')) throw this.err('EINVAL', 'rename', to, 'cannot move a directory into itself')
    const src = await this.lookup(from, 'rename')
    if (from === to) return
    // A queued delete of the target lands before the copy onto it; a directory's keys are listed after its
    // files' deletes landed.
    if (src.stat.kind === 'dir') await this.deletes.flush()
    else await this.deletes.cancel(to)
    const dst = await this.find(to, 'rename')
    await this.checkParent(to, 'rename')
    if (src.stat.kind !== 'dir') {
      if (dst?.stat.kind === 'dir') throw this.err('EISDIR', 'rename', to, 'is a directory')
      if (src.stat.size > MAX_COPY_BYTES) throw this.err('EXDEV', 'rename', from, 'objects over 5 GiB cannot be copied in one request')
      this.cache.touch(from)
      this.cache.touch(to)
      this.prefetch.invalidate(this.keys.fileKey(from))
      this.prefetch.invalidate(this.keys.fileKey(to))
      try {
        await this.copy(this.keys.fileKey(from), this.keys.fileKey(to))
        // Write-back: the old key is gone for this mount now and deleted with the next unlinks' keys (as unlink's).
        if (this.settings.deleteDelayMs > 0) this.deletes.defer(from)
        else await this.deleteKeys([this.keys.fileKey(from)])
      } catch (err) {
        this.cache.forget(from)
        this.cache.forget(to)
        throw this.fail(err, 'rename', from)
      }
      this.cache.removed(from)
      const moved = src.object === undefined ? { ...src } : { ...src, object: { ...src.object, key: this.keys.fileKey(to) } }
      this.cache.added(to, src.stat.kind, moved)
      return
    }
    if (dst !== undefined && dst.stat.kind !== 'dir') throw this.err('ENOTDIR', 'rename', to, 'not a directory')
    try {
      if (dst !== undefined && await this.hasChildren(to)) throw this.err('ENOTEMPTY', 'rename', to, 'directory not empty')
    } catch (err) {
      throw this.fail(err, 'rename', to)
    }
    const srcPrefix = this.keys.dirPrefix(from)
    const dstPrefix = this.keys.dirPrefix(to)
    this.cache.touchTree()
    this.prefetch.invalidatePrefix(srcPrefix)
    this.prefetch.invalidatePrefix(dstPrefix)
    try {
      const keys = await this.listAll(srcPrefix)
      // s3fs's legacy form of a directory: a "dir" object (no slash); it moves as the marker would.
      const legacy = src.object !== undefined && src.object.key === this.keys.fileKey(from) ? src.object.key : undefined
      if (legacy !== undefined) await this.copy(legacy, this.keys.fileKey(to))
      if (legacy !== undefined) keys.push({ key: legacy, size: 0 })
      if (keys.some(k => k.size > MAX_COPY_BYTES)) throw this.err('EXDEV', 'rename', from, 'holds objects over 5 GiB, which cannot be copied in one request')
      const progress = keys.length > PROGRESS_KEYS ? new Progress(this.log, `rename ${from} → ${to}`, keys.length, this.now) : undefined
      await eachLimit(keys.filter(k => k.key !== legacy), this.settings.concurrency * 4, async k => {
        await this.copy(k.key, dstPrefix + k.key.slice(srcPrefix.length))
        progress?.step('copied')
      })
      await this.deleteKeys(keys.map(k => k.key), progress)
      progress?.done()
    } catch (err) {
      this.cache.removedTree(from)
      this.cache.removedTree(to)
      this.cache.forget(from)
      this.cache.forget(to)
      throw this.fail(err, 'rename', from)
    }
    this.cache.removedTree(from)
    this.cache.removedTree(to)
    this.cache.added(to, 'dir')
  }

  private async copy (fromKey: string, toKey: string): Promise<void> {
    await this.send('copy', new this.sdk.CopyObjectCommand({
      Bucket: this.bucket, Key: toKey, CopySource: copySource(this.bucket, fromKey), MetadataDirective: 'COPY'
    }))
  }

  /** Deletes keys in batches of 1,000 (DeleteObjects); any per-key error fails the whole call. */
  private async deleteKeys (keys: string[], progress?: Progress): Promise<void> {
    if (keys.length === 1) {
      await this.send('delete', new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: keys[0] }))
      return
    }
    const failed = (await this.deleteBatches(keys, progress)).find(e => e !== undefined)
    if (failed !== undefined) throw failed
  }

  /**
   * Deletes keys with DeleteObjects, DELETE_BATCH per request, `s3Concurrency` requests at a time. Resolves with one
   * outcome per key: undefined (deleted, or there was nothing) or the error S3 gave for it (a request that failed
   * as a whole gives its error to each of its keys).
   */
  private async deleteBatches (keys: string[], progress?: Progress): Promise<Array<unknown>> {
    const outcome: unknown[] = keys.map(() => undefined)
    const batches: number[] = []
    for (let i = 0; i < keys.length; i += DELETE_BATCH) batches.push(i)
    await eachLimit(batches, this.settings.concurrency, async from => {
      const batch = keys.slice(from, from + DELETE_BATCH)
      try {
        const out = await this.send<S3.DeleteObjectsCommandOutput>('deleteBatch', new this.sdk.DeleteObjectsCommand({
          Bucket: this.bucket, Delete: { Objects: batch.map(Key => ({ Key })), Quiet: true }
        }))
        this.stats.deletedKeys += batch.length - (out.Errors?.length ?? 0)
        for (const e of out.Errors ?? []) {
          const i = batch.indexOf(e.Key ?? '')
          const err = Object.assign(new Error(`${e.Code ?? 'Error'} deleting ${e.Key ?? '?'}`), { name: e.Code ?? 'Error', Code: e.Code })
          if (i >= 0) outcome[from + i] = err
        }
      } catch (err) {
        // S3 did not answer: the other batches would not be answered either.
        if (isLinkError(err)) throw err
        for (let i = 0; i < batch.length; i++) outcome[from + i] = err
      }
      progress?.step('deleted', batch.length)
    })
    return outcome
  }

  async symlink (target: string, p: string, owner?: Owner): Promise<void> {
    this.keys.check(p, 'symlink')
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw this.err('EINVAL', 'symlink', p, 'bad target')
    if (Buffer.byteLength(target) > MAX_LINK_BYTES) throw this.err('ENAMETOOLONG', 'symlink', p, 'target too long')
    if (p === '/' || await this.find(p, 'symlink') !== undefined) throw this.err('EEXIST', 'symlink', p, 'file exists')
    const now = this.now()
    const body = Buffer.from(target)
    const info: ObjectInfo = {
      key: this.keys.fileKey(p),
      size: body.length,
      lastModifiedMs: now,
      metadata: {
        [META_MODE]: formatMode(S_IFLNK | 0o777),
        [META_UID]: String(owner?.uid ?? this.defaults.uid),
        [META_GID]: String(owner?.gid ?? this.defaults.gid),
        [META_MTIME]: formatTime(now),
        [META_CTIME]: formatTime(now)
      },
      headers: { ContentType: DEFAULT_CONTENT_TYPE }
    }
    await this.deletes.cancel(p)
    this.cache.touch(p)
    try {
      await this.putEmpty(info, body)
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, 'symlink', p)
    }
    this.cache.added(p, 'symlink', { stat: statOf(info, false, this.defaults), object: info, target })
  }

  async readlink (p: string): Promise<string> {
    this.keys.check(p, 'readlink')
    const info = await this.lookup(p, 'readlink')
    if (info.stat.kind !== 'symlink') throw this.err('EINVAL', 'readlink', p, 'not a symlink')
    if (info.target !== undefined) return info.target
    try {
      const target = (await this.getRange(this.keys.fileKey(p), 0, MAX_LINK_BYTES + 1)).data.toString('utf8')
      info.target = target
      return target
    } catch (err) {
      throw this.fail(err, 'readlink', p)
    }
  }

  async chmod (p: string, mode: number): Promise<void> {
    await this.updateMeta(p, 'chmod', (md, st) => {
      if (st.kind === 'symlink') throw this.err('ENOTSUP', 'chmod', p, 'a symlink has no mode of its own')
      md[META_MODE] = formatMode((st.mode & S_IFMT) | (mode & 0o7777))
    })
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    await this.updateMeta(p, 'chown', md => {
      if (uid >= 0 && uid < ID_UNCHANGED) md[META_UID] = String(uid)
      if (gid >= 0 && gid < ID_UNCHANGED) md[META_GID] = String(gid)
    })
  }

  async utimens (p: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    if (atimeMs === undefined && mtimeMs === undefined) {
      this.keys.check(p, 'utimens')
      await this.lookup(p, 'utimens')
      return
    }
    await this.updateMeta(p, 'utimens', md => {
      if (atimeMs !== undefined) md[META_ATIME] = formatTime(atimeMs)
      if (mtimeMs !== undefined) md[META_MTIME] = formatTime(mtimeMs)
    })
  }

  /**
   * Rewrites the user metadata of the object behind `p` (CopyObject onto itself, REPLACE, headers kept); a
   * directory without a marker gets a marker carrying it. `patch` edits the metadata in place (and may throw).
   */
  private async updateMeta (p: string, op: string, patch: (md: Record<string, string>, st: Stat) => void): Promise<void> {
    this.keys.check(p, op)
    if (p === '/' && this.keys.prefix === '') throw this.err('EPERM', op, p, 'the bucket root has no object to hold attributes')
    const info = await this.lookupFull(p, op)
    const isDir = info.stat.kind === 'dir'
    let obj = info.object
    try {
      if (obj === undefined && p === '/') obj = await this.head(this.keys.dirPrefix(p))
    } catch (err) {
      throw this.fail(err, op, p)
    }
    const st = info.stat
    const md: Record<string, string> = { ...(obj?.metadata ?? {}) }
    md[META_MODE] ??= formatMode(st.mode)
    md[META_UID] ??= String(st.uid)
    md[META_GID] ??= String(st.gid)
    md[META_MTIME] ??= formatTime(st.mtimeMs)
    patch(md, st)
    md[META_CTIME] = formatTime(this.now())
    this.cache.touch(p)
    if (obj !== undefined) this.prefetch.invalidate(obj.key)
    let next: ObjectInfo
    try {
      if (obj === undefined) {
        next = { key: this.keys.dirPrefix(p), size: 0, lastModifiedMs: this.now(), metadata: md, headers: { ContentType: DIR_CONTENT_TYPE } }
        await this.putEmpty(next)
      } else {
        if (obj.size > MAX_COPY_BYTES) throw this.err('EFBIG', op, p, 'attributes of objects over 5 GiB cannot be changed in one request')
        await this.send('copy', new this.sdk.CopyObjectCommand({
          Bucket: this.bucket,
          Key: obj.key,
          CopySource: copySource(this.bucket, obj.key),
          MetadataDirective: 'REPLACE',
          Metadata: md,
          ...obj.headers
        }))
        next = { ...obj, metadata: md }
      }
    } catch (err) {
      this.cache.forget(p)
      throw this.fail(err, op, p)
    }
    const stat = statOf(next, isDir && next.key.endsWith('/'), this.defaults)
    this.cache.setNode(p, { stat: p === '/' ? { ...stat, kind: 'dir', mode: S_IFDIR | (stat.mode & 0o7777) } : stat, object: next, target: info.target })
  }

  // ---- xattrs: user metadata "xattr", s3fs's format ----------------------------------------------------------------

  private checkXattrName (p: string, op: string, name: string): void {
    if (!/^(user|trusted|security)\./.test(name)) throw this.err('ENOTSUP', op, p, `xattr namespace of "${name}" not supported (user., trusted., security.)`)
    if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw this.err('ERANGE', op, p, 'xattr name too long')
  }

  private async xattrsOf (p: string, op: string): Promise<Map<string, Buffer>> {
    this.keys.check(p, op)
    const info = await this.lookupFull(p, op)
    let obj = info.object
    if (obj === undefined && p === '/' && this.keys.prefix !== '') {
      try {
        obj = await this.head(this.keys.dirPrefix(p))
      } catch (err) {
        throw this.fail(err, op, p)
      }
    }
    return decodeXattrs(obj?.metadata[META_XATTR])
  }

  async getxattr (p: string, name: string): Promise<Buffer> {
    this.checkXattrName(p, 'getxattr', name)
    const v = (await this.xattrsOf(p, 'getxattr')).get(name)
    if (v === undefined) throw this.err('ENODATA', 'getxattr', p, 'no such attribute')
    return v
  }

  async listxattr (p: string): Promise<string[]> {
    return [...(await this.xattrsOf(p, 'listxattr')).keys()]
  }

  async setxattr (p: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.checkXattrName(p, 'setxattr', name)
    if (value.length > XATTR_SIZE_MAX) throw this.err('E2BIG', 'setxattr', p, 'xattr value too large')
    await this.updateMeta(p, 'setxattr', md => {
      const xattrs = decodeXattrs(md[META_XATTR])
      if ((flags & XATTR_CREATE) !== 0 && xattrs.has(name)) throw this.err('EEXIST', 'setxattr', p, 'attribute exists')
      if ((flags & XATTR_REPLACE) !== 0 && !xattrs.has(name)) throw this.err('ENODATA', 'setxattr', p, 'no such attribute')
      xattrs.set(name, Buffer.from(value))
      md[META_XATTR] = encodeXattrs(xattrs)!
    })
  }

  async removexattr (p: string, name: string): Promise<void> {
    this.checkXattrName(p, 'removexattr', name)
    await this.updateMeta(p, 'removexattr', md => {
      const xattrs = decodeXattrs(md[META_XATTR])
      if (!xattrs.delete(name)) throw this.err('ENODATA', 'removexattr', p, 'no such attribute')
      const enc = encodeXattrs(xattrs)
      if (enc === undefined) delete md[META_XATTR]
      else md[META_XATTR] = enc
    })
  }

  /** `fsx flush`: unlinks that returned before their delete was sent are sent now, and answered on return. */
  async flush (): Promise<void> {
    await this.deletes.flush()
  }

  async close (): Promise<void> {
    if (this.closed) return
    // Unlinks that returned before their delete was sent: sent now.
    await this.deletes.flush()
    if (this.closed) return
    this.closed = true
    this.cache.clear()
    this.prefetch.clear()
    this.client.destroy()
  }
}

/** Reads the first `size` bytes of a staging file (small objects: at most s3PartSize). */
async function readStaging (file: string, size: number): Promise<Buffer> {
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.allocUnsafe(size)
    let got = 0
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    if (got < size) throw Object.assign(new Error(`staging file ${file} holds ${got} of ${size} bytes`), { code: 'EIO' })
    return buf
  } finally {
    await fh.close()
  }
}

