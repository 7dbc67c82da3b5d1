/**
 * The data cache for remote backends (S3, SFTP: every backend whose files are not the host's). File content is
 * cached by fixed-size blocks (1 MiB by default), so a sparse read of a big file fetches only the blocks it touches.
 * The unit fetched adapts to the reader: a random reader (the caller says so: see `read`) fetches a piece of the
 * block, 1/16 of it (64 KiB), so a 4 KiB random read does not cost a megabyte; once `DENSE_PIECES` pieces of a
 * block are cached, the next miss in it fetches the whole block (the reader is dense there after all), and a
 * stored whole block replaces its pieces. Blocks and pieces are both "units", cached and evicted alike.
 * Two tiers, each with its own hard byte cap and eviction policy (./eviction.ts):
 * - memory: blocks of small files (size ≤ `smallFileBytes`), as Buffers;
 * - disk: blocks of bigger files, one file per block under `<dir>/<xx>/<object id>.<block>`, next to a `.meta`
 *   file per object naming its path and version. The tier survives a restart: at start-up the directory is scanned
 *   (the truth: a kill -9 loses nothing but the eviction order) and `index.json`, written at close, restores the
 *   eviction order. A lock file keeps a second mount of the same source out of the same directory.
 *
 * Invariants:
 * - A block is reused only for the object version it was fetched for: every read names the version (size + mtime,
 *   or the ETag when the backend has one) from the stat of its open; a different version drops the object's blocks.
 * - The disk tier never holds more than `diskBytes`, not even while files are open or blocks are being written:
 *   bytes are reserved before a block is written and eviction makes room first; an evicted block still being read
 *   (its file is unlinked but open) keeps counting until the read finishes. Open files pin nothing.
 * - A fetch that was in flight when its object was invalidated (a write through the mount) is never stored: each
 *   object version is a distinct entry with its own file names, and only the current entry accepts blocks.
 * - A short block (the object shrank behind our back) is returned to its reader but never cached.
 * - Readers never wait for a block to reach the disk: the fetched buffer serves them (and concurrent readers of the
 *   same block) while it is written in the background.
 * - Pinned paths (`fsx warm --pin`) are exempt from eviction: their blocks never enter the eviction policy, so no
 *   victim is ever one of them. They still count against the caps, which stay hard: when pinned blocks fill a tier,
 *   new blocks are served but not cached. Pins are by path (any version of the file) and kept in `pins.json`,
 *   written at each change, so they survive a restart or a crash.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { CacheStats } from './vfs.js'
import { lockDir, unlockDir } from './dir-lock.js'
import { Lru } from './lru.js'
import { makePolicy, restore, standing, type EvictionPolicy, type EvictionPolicyName } from './eviction.js'
import { unlinkQuiet } from './unlink-quiet.js'

/** One version of an object; cached blocks are reused only while it matches. */
export interface Version {
  size: number
  mtimeMs: number
  etag?: string
}

export interface DataCacheOptions {
  /** Root of the disk tier for this source; undefined: no disk tier. */
  dir?: string
  /** Hard cap of the disk tier in bytes (0: no disk tier). */
  diskBytes: number
  /** Hard cap of the memory tier in bytes (0: no memory tier). */
  memoryBytes: number
  /** Files up to this size go to the memory tier, bigger ones to the disk tier. */
  smallFileBytes: number
  /** Block size in bytes. */
  blockBytes: number
  policy: EvictionPolicyName
  /** Lifetime of a block under the ttl policy, in ms. */
  ttlMs: number
  now?: () => number
  /**
   * A memory budget shared with the rest of the VFS: the memory tier gives up blocks (and stores none) while
   * `others()` + this cache's memory would exceed `bytes`.
   */
  budget?: { bytes: number, others: () => number }
  /** Called once if the disk tier cannot be used (unwritable directory, locked by another mount). */
  onDiskUnavailable?: (reason: string) => void
}

/** Reads `length` bytes at `offset` of the object from the backend. */
export type FetchRange = (offset: number, length: number) => Promise<Buffer>

type TierKind = 'memory' | 'disk'

interface ObjectEntry {
  path: string
  version: Version
  /** Unique per object version: names its files on disk. */
  id: string
  tier: TierKind
  /** Units (whole blocks and pieces, by name: see `unitRange`) cached now. */
  blocks: Set<string>
  metaWritten?: Promise<void>
  /** Exempt from eviction (its path is pinned): its blocks are not in the tier's policy. */
  pinned: boolean
  /**
   * Its content is being copied in from a local file (`adopt`): a reader of blocks not copied yet waits for the
   * copy's next step (one block) rather than fetch them.
   */
  adopting?: Step
}

/** One step of a background copy: `done` resolves when `wake()` is called. */
interface Step { done: Promise<void>, wake: () => void }

function step (): Step {
  let wake!: () => void
  const done = new Promise<void>(resolve => { wake = resolve })
  return { done, wake }
}

interface BlockEntry {
  obj: ObjectEntry
  /** The unit's name: `<block index>` or `p<piece index>`. */
  unit: string
  bytes: number
  /** Memory tier: the data. */
  buf?: Buffer
  /** Disk tier: reads in progress, and whether the block was dropped (its bytes then go when both are done). */
  readers: number
  dead: boolean
  unlinked: boolean
  released: boolean
}

interface Tier {
  kind: TierKind
  cap: number
  used: number
  reserved: number
  policy: EvictionPolicy<string>
  entries: Map<string, BlockEntry>
  hits: number
  misses: number
  evictions: number
}

const INDEX_FILE = 'index.json'
/** Pinned paths, rewritten at every pin change so that a crash keeps them. */
const PINS_FILE = 'pins.json'
/** Block writes to the disk tier at a time: enough to keep a disk busy, few enough that reservations stay small. */
const DISK_WRITERS = 4
/** Blocks waiting for a disk write slot, at most (32 × 1 MiB of memory): beyond, new blocks are not cached. */
const MAX_DISK_QUEUE = 32
/** Pieces per block: a random reader fetches one piece (1/16 of a block, 64 KiB by default) instead of a block. */
const PIECES_PER_BLOCK = 16
/** Pieces of one block cached (or being fetched) before a random reader fetches the rest as one whole block. */
const DENSE_PIECES = 4
/**
 * Disk-tier block files kept open for reads: a read then costs one pread instead of open + pread + close (each a
 * trip through libuv's thread pool, ~3× the latency of a cached 4 KiB read). Block files never change (a new
 * object version has new names), so an open descriptor always reads the right bytes.
 */
const OPEN_BLOCK_FILES = 256
/** Objects without cached blocks are forgotten past this many (they cost ~200 bytes each). */
const MAX_EMPTY_OBJECTS = 10_000

/** Reads `len` bytes at `position` into `target[off..)`, fewer only at end of file. */
async function readFully (fh: FileHandle, target: Buffer, off: number, len: number, position: number): Promise<number> {
  let done = 0
  while (done < len) {
    const { bytesRead } = await fh.read(target, off + done, len - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

async function closeFile (fh: Promise<FileHandle>): Promise<void> {
  await fh.then(async f => await f.close(), () => {}).catch(() => {})
}

function sameVersion (a: Version, b: Version): boolean {
  if (a.size !== b.size) return false
  if (a.etag !== undefined || b.etag !== undefined) return a.etag === b.etag
  return a.mtimeMs === b.mtimeMs
}

/** Unique, sortable-ish id part for a new object version. */
let idCounter = 0
function newGeneration (): string {
  return `${Date.now().toString(36)}${(idCounter++).toString(36)}${randomBytes(2).toString('hex')}`
}

export class DataCache {
  private readonly mem: Tier
  private readonly disk: Tier
  private readonly objects = new Map<string, ObjectEntry>()
  /** Pinned paths: their blocks are never evicted. */
  private readonly pins = new Set<string>()
  private pinsWritten: Promise<void> = Promise.resolve()
  /** Blocks being fetched from the backend, by key; their buffer serves readers until the block is stored. */
  private readonly pending = new Map<string, Promise<Buffer>>()
  private pendingBytes = 0
  /** Background block writes, awaited by `idle()` and `close()`. */
  private readonly writes = new Set<Promise<void>>()
  private readonly ready: Promise<void>
  private diskUsable = false
  private closed = false
  readonly blockBytes: number
  /** Size of a piece, the unit a random reader fetches. */
  readonly pieceBytes: number

  constructor (private readonly opts: DataCacheOptions) {
    const now = opts.now ?? (() => performance.now())
    this.blockBytes = opts.blockBytes
    // NB: pieces must tile blocks exactly; a block too small to split (< 64 KiB) has none (pieceBytes = blockBytes).
    const piece = opts.blockBytes / PIECES_PER_BLOCK
    this.pieceBytes = Number.isInteger(piece) && piece >= 4096 ? piece : opts.blockBytes
    const tier = (kind: TierKind, cap: number): Tier => ({
      kind, cap, used: 0, reserved: 0, policy: makePolicy<string>(opts.policy, opts.ttlMs, now), entries: new Map(), hits: 0, misses: 0, evictions: 0
    })
    this.mem = tier('memory', opts.memoryBytes)
    this.disk = tier('disk', opts.dir ? opts.diskBytes : 0)
    this.ready = this.disk.cap > 0 ? this.initDisk().catch(err => this.diskFailed(String((err as Error).message ?? err))) : Promise.resolve()
  }

  /** True when some tier can hold data. */
  get enabled (): boolean { return this.mem.cap > 0 || this.disk.cap > 0 }

  /** Memory held: the memory tier plus buffers of fetches in flight. */
  get memoryBytes (): number { return this.mem.used + this.pendingBytes }

  private diskFailed (reason: string): void {
    this.diskUsable = false
    this.disk.cap = 0
    this.opts.onDiskUnavailable?.(reason)
  }

  /** Would `extra` more bytes of memory exceed the shared budget? */
  overBudget (extra: number): boolean {
    const b = this.opts.budget
    return b !== undefined && b.bytes > 0 && b.others() + this.memoryBytes + extra > b.bytes
  }

  private tierFor (size: number): Tier | undefined {
    const diskOn = this.disk.cap > 0
    if (this.mem.cap > 0 && (size <= this.opts.smallFileBytes || !diskOn)) return this.mem
    if (diskOn) return this.disk
    return undefined
  }

  private tier (kind: TierKind): Tier { return kind === 'memory' ? this.mem : this.disk }

  private key (obj: ObjectEntry, unit: string): string { return `${obj.id}.${unit}` }

  /** Byte range of a unit: block `<idx>` or piece `p<idx>`; undefined for a name that is neither. */
  private unitRange (unit: string): { offset: number, bytes: number } | undefined {
    const m = /^(p?)(\d+)$/.exec(unit)
    if (!m) return undefined
    const size = m[1] === 'p' ? this.pieceBytes : this.blockBytes
    return { offset: Number(m[2]) * size, bytes: size }
  }

  /** Bytes of `unit` in an object of `size` bytes (≤ 0: past its end). */
  private unitBytes (unit: string, size: number): number {
    const r = this.unitRange(unit)!
    return Math.min(r.bytes, size - r.offset)
  }

  /** Is `unit` of `obj` cached or being fetched? */
  private present (obj: ObjectEntry, unit: string): boolean {
    const key = this.key(obj, unit)
    return this.pending.has(key) || this.tier(obj.tier).entries.has(key)
  }

  /**
   * The pieces (indexes) a random read of [from, to) in block `idx` should go through, or undefined when it should
   * go through the whole block: the block is cached or coming, or this read and the pieces already here make it
   * dense (`DENSE_PIECES`).
   */
  private piecesFor (obj: ObjectEntry, idx: number, from: number, to: number): number[] | undefined {
    if (this.present(obj, String(idx))) return undefined
    const P = this.pieceBytes
    const wanted: number[] = []
    for (let q = Math.floor(from / P); q * P < to; q++) wanted.push(q)
    let dense = wanted.filter(q => !this.present(obj, `p${q}`)).length
    if (dense === 0) return wanted
    for (const u of this.piecesOf(idx)) if (this.present(obj, u)) dense++
    return dense >= DENSE_PIECES ? undefined : wanted
  }

  /** Are the whole blocks holding bytes [from, to) of `obj` cached? */
  private cached (obj: ObjectEntry, from: number, to: number): boolean {
    const tier = this.tier(obj.tier)
    for (let idx = Math.floor(from / this.blockBytes); idx * this.blockBytes < to; idx++) {
      if (!tier.entries.has(this.key(obj, String(idx)))) return false
    }
    return true
  }

  /** The block a piece lies in. */
  private blockOfPiece (unit: string): number {
    return Math.floor(this.unitRange(unit)!.offset / this.blockBytes)
  }

  /** Piece names of block `idx`. */
  private piecesOf (idx: number): string[] {
    const per = Math.round(this.blockBytes / this.pieceBytes)
    return Array.from({ length: per }, (_, i) => `p${idx * per + i}`)
  }

  private file (id: string, suffix: string): string {
    return path.join(this.opts.dir!, id.slice(0, 2), `${id}.${suffix}`)
  }

  /** The cache entry for `p` at `version`, dropping a stale one; undefined when no tier takes files of this size. */
  private object (p: string, version: Version): ObjectEntry | undefined {
    let obj = this.objects.get(p)
    if (obj && !sameVersion(obj.version, version)) {
      this.dropObject(obj)
      obj = undefined
    }
    if (obj) return obj
    const tier = this.tierFor(version.size)
    if (!tier) return undefined
    const hash = createHash('sha256').update(p).digest('hex').slice(0, 24)
    obj = { path: p, version: { ...version }, id: `${hash}-${newGeneration()}`, tier: tier.kind, blocks: new Set(), pinned: this.pins.has(p) }
    if (this.objects.size >= MAX_EMPTY_OBJECTS) this.pruneEmpty()
    this.objects.set(p, obj)
    return obj
  }

  private pruneEmpty (): void {
    for (const [p, o] of this.objects) if (o.blocks.size === 0) this.objects.delete(p)
  }

  // ---- pins -------------------------------------------------------------------------------------------------------

  /**
   * Pins (`on`) or unpins `paths`: a pinned file's blocks, cached now or later, are never evicted. Unpinned blocks
   * rejoin the eviction order as the most recently used.
   */
  async pin (paths: string[], on: boolean): Promise<void> {
    await this.ready
    for (const p of paths) {
      if (on) this.pins.add(p)
      else this.pins.delete(p)
      const obj = this.objects.get(p)
      if (!obj || obj.pinned === on) continue
      obj.pinned = on
      const tier = this.tier(obj.tier)
      for (const unit of obj.blocks) {
        const key = this.key(obj, unit)
        if (on) tier.policy.remove(key)
        else tier.policy.insert(key)
      }
    }
    if (!this.diskUsable) return
    // One write at a time, each of the set as it is then, so the file ends with the last state.
    const write = this.pinsWritten.catch(() => {}).then(async () => {
      const file = path.join(this.opts.dir!, PINS_FILE)
      await writeFile(`${file}.tmp`, JSON.stringify([...this.pins]), { mode: 0o600 })
      await rename(`${file}.tmp`, file)
    })
    this.pinsWritten = write
    await write
  }

  /** Bytes of `paths` cached now (both tiers; any of them, pinned or not). */
  cachedBytes (paths: string[]): number {
    let bytes = 0
    for (const p of paths) {
      const obj = this.objects.get(p)
      if (!obj) continue
      const tier = this.tier(obj.tier)
      for (const unit of obj.blocks) bytes += tier.entries.get(this.key(obj, unit))?.bytes ?? 0
    }
    return bytes
  }

  // ---- reads ------------------------------------------------------------------------------------------------------

  /**
   * Reads `length` bytes at `position` of `p` (at `version`) into `target[0..)`, from the cache where it can and
   * through `fetch` where it cannot: whole blocks, or pieces when the caller's reader is `random` (see the header).
   * Resolves with the bytes read (fewer only at end of file).
   */
  async read (p: string, version: Version, target: Buffer, length: number, position: number, fetch: FetchRange, random = false): Promise<number> {
    await this.ready
    const end = Math.min(version.size, position + length)
    if (position >= end) return 0
    const obj = this.object(p, version)
    if (!obj) {
      const data = await fetch(position, end - position)
      return data.copy(target, 0, 0, Math.min(end - position, data.length))
    }
    while (obj.adopting !== undefined && !this.cached(obj, position, end)) await obj.adopting.done
    const B = this.blockBytes
    const P = this.pieceBytes
    let done = 0
    for (let idx = Math.floor(position / B); idx * B < end; idx++) {
      const from = Math.max(position, idx * B)
      const to = Math.min(end, (idx + 1) * B)
      const pieces = random && P < B ? this.piecesFor(obj, idx, from, to) : undefined
      if (pieces) {
        // In parallel: a read across pieces should cost one round trip, as it would for a block.
        const got = await Promise.all(pieces.map(async q => {
          const a = Math.max(from, q * P)
          const b = Math.min(to, (q + 1) * P)
          return { want: b - a, n: await this.readBlock(obj, `p${q}`, target, a - position, a - q * P, b - a, fetch) }
        }))
        for (const { want, n } of got) {
          done += n
          if (n < want) return done
        }
        continue
      }
      const n = await this.readBlock(obj, String(idx), target, from - position, from - idx * B, to - from, fetch)
      done += n
      if (n < to - from) break
    }
    return done
  }

  /**
   * Takes the content of `p` at `version` from a local file this mount just uploaded it from (a journaled or staged
   * copy), so that reading back what was written costs no fetch (as rclone's full cache mode keeps what it wrote).
   * Resolves once `file` is open: the caller may remove it then, and must not change it. Blocks are copied in the
   * background, in order, each only while the object is still at this version; a reader of a block not copied yet
   * waits for it. A file bigger than a quarter of its tier is not taken: one upload must not flush the whole cache.
   */
  async adopt (p: string, version: Version, file: string): Promise<void> {
    await this.ready
    const tier = this.tierFor(version.size)
    if (tier === undefined || version.size === 0 || version.size > tier.cap / 4 || this.closed) return
    const obj = this.object(p, version)
    if (!obj) return
    const fh = await open(file, 'r').catch(() => undefined)
    if (!fh) return
    const copy: Promise<void> = (async () => {
      try {
        const B = this.blockBytes
        for (let idx = 0; idx * B < version.size; idx++) {
          const unit = String(idx)
          if (this.objects.get(p) !== obj || this.closed) return
          if (this.present(obj, unit)) continue
          const want = this.unitBytes(unit, version.size)
          if (this.overBudget(want)) return
          const buf = Buffer.allocUnsafe(want)
          if (await readFully(fh, buf, 0, want, idx * B) !== want) return
          // Counted as a fetch in flight would be, while it waits for its turn to be stored.
          this.pendingBytes += want
          try {
            await this.store(obj, unit, this.key(obj, unit), buf)
          } finally {
            this.pendingBytes -= want
          }
          const s = obj.adopting
          obj.adopting = step()
          s?.wake()
        }
      } finally {
        await fh.close().catch(() => {})
      }
    })().catch(() => {}).finally(() => {
      const s = obj.adopting
      obj.adopting = undefined
      s?.wake()
      this.writes.delete(copy)
    })
    obj.adopting = step()
    this.writes.add(copy)
  }

  /** True when block `idx` of `p` at `version` is cached or being fetched (readahead need not fetch it). */
  has (p: string, version: Version, idx: number): boolean {
    const obj = this.objects.get(p)
    if (!obj || !sameVersion(obj.version, version)) return false
    return this.present(obj, String(idx))
  }

  /** Fetches block `idx` of `p` into the cache without a reader (readahead). Resolves with its byte count. */
  async prefetch (p: string, version: Version, idx: number, fetch: FetchRange): Promise<number> {
    await this.ready
    if (idx * this.blockBytes >= version.size) return 0
    const obj = this.object(p, version)
    if (!obj) return 0
    if (this.present(obj, String(idx))) return 0
    return (await this.fetchBlock(obj, String(idx), fetch)).length
  }

  /** Reads `len` bytes at `blockOff` of unit `unit` into `target[targetOff..)`: cached, shared or fetched. */
  private async readBlock (obj: ObjectEntry, unit: string, target: Buffer, targetOff: number, blockOff: number, len: number, fetch: FetchRange): Promise<number> {
    const tier = this.tier(obj.tier)
    const key = this.key(obj, unit)
    const e = tier.entries.get(key)
    if (e && tier.policy.expired(key)) {
      void this.dropBlock(tier, key, e, false)
    } else if (e) {
      if (e.buf) {
        tier.hits++
        tier.policy.touch(key)
        return e.buf.copy(target, targetOff, blockOff, Math.min(blockOff + len, e.buf.length))
      }
      e.readers++
      try {
        const n = await this.readDiskBlock(key, obj.id, unit, target, targetOff, len, blockOff)
        if (n === len || blockOff + n === e.bytes) {
          tier.hits++
          tier.policy.touch(key)
          return n
        }
      } catch { /* evicted or damaged under us: fetch it again */ } finally {
        e.readers--
        this.releaseBytes(tier, e)
      }
      if (tier.entries.get(key) === e) void this.dropBlock(tier, key, e, false)
    }
    const pending = this.pending.get(key)
    let buf: Buffer
    if (pending) {
      tier.hits++
      buf = await pending
    } else {
      tier.misses++
      buf = await this.fetchBlock(obj, unit, fetch)
    }
    if (blockOff >= buf.length) return 0
    return buf.copy(target, targetOff, blockOff, Math.min(blockOff + len, buf.length))
  }

  /**
   * Open disk-tier block files by key. NB: closed when evicted from here and when their block is dropped (dropBlock),
   * so an unlinked block's disk space is not held by a descriptor; FileHandle.close() waits for reads in flight.
   */
  private readonly blockFiles = new Lru<Promise<FileHandle>>({
    max: OPEN_BLOCK_FILES,
    // An explicit delete closes (and waits for) the file itself.
    dispose: (fh, _key, reason) => { if (reason !== 'delete') void closeFile(fh) }
  })

  /** Closes the open file of block `key`, if any; resolves once it is closed. */
  private async closeBlockFile (key: string): Promise<void> {
    const fh = this.blockFiles.peek(key)
    if (fh === undefined) return
    this.blockFiles.delete(key)
    await closeFile(fh)
  }

  private async readDiskBlock (key: string, id: string, unit: string, target: Buffer, targetOff: number, len: number, blockOff: number): Promise<number> {
    let opening = this.blockFiles.get(key)
    if (opening === undefined) {
      opening = open(this.file(id, unit), 'r')
      this.blockFiles.set(key, opening)
      opening.catch(() => { if (this.blockFiles.peek(key) === opening) this.blockFiles.delete(key) })
    }
    return await readFully(await opening, target, targetOff, len, blockOff)
  }

  /** Fetches one whole unit (shared by concurrent readers) and stores it in the background. */
  private fetchBlock (obj: ObjectEntry, unit: string, fetch: FetchRange): Promise<Buffer> {
    const key = this.key(obj, unit)
    const existing = this.pending.get(key)
    if (existing) return existing
    const want = this.unitBytes(unit, obj.version.size)
    const offset = this.unitRange(unit)!.offset
    // Counted from the moment it is asked for, so that the budget sees requests in flight.
    let accounted = want
    this.pendingBytes += want
    const p = (async () => {
      const buf = await fetch(offset, want)
      this.pendingBytes += buf.length - accounted
      accounted = buf.length
      return buf
    })()
    this.pending.set(key, p)
    const settle = (): void => {
      this.pendingBytes -= accounted
      if (this.pending.get(key) === p) this.pending.delete(key)
    }
    p.then(buf => {
      // NB: a short block means the object changed behind us: serve it, never cache it.
      if (buf.length !== want || this.closed || this.objects.get(obj.path) !== obj) return settle()
      // Backpressure: a block waiting for a disk write slot is held in memory; past the budget (or a long queue:
      // the disk is slower than the backend) it is served but not cached.
      if (obj.tier === 'disk' && (this.diskQueue.length >= MAX_DISK_QUEUE || (this.diskQueue.length > 0 && this.overBudget(0)))) return settle()
      const w = this.store(obj, unit, key, buf).catch(() => {}).finally(settle)
      this.writes.add(w)
      void w.finally(() => this.writes.delete(w))
    }, settle)
    return p
  }

  // ---- storing and evicting ---------------------------------------------------------------------------------------

  private async store (obj: ObjectEntry, unit: string, key: string, buf: Buffer): Promise<void> {
    const tier = this.tier(obj.tier)
    const n = buf.length
    if (n > tier.cap || tier.entries.has(key) || this.covered(obj, unit)) return
    if (tier.kind === 'memory') {
      // NB: `buf` still counts in pendingBytes here, so the budget test needs no `+ n`.
      const over = (): boolean => tier.used + n > tier.cap || this.overBudget(0)
      while (over() && this.evictOne(tier)) { /* evict until it fits */ }
      if (over()) return
      // Own the bytes: a slice of a larger buffer would pin (and hide) its whole allocation.
      const own = buf.byteLength === buf.buffer.byteLength ? buf : Buffer.from(buf)
      tier.entries.set(key, { obj, unit, bytes: n, buf: own, readers: 0, dead: false, unlinked: false, released: false })
      tier.used += n
      if (!obj.pinned) tier.policy.insert(key)
      obj.blocks.add(unit)
      this.dropPieces(obj, unit)
      return
    }
    // NB: few writes at a time, so that reservations of blocks waiting for the disk do not crowd out each other.
    await this.diskSlot()
    tier.reserved += n
    try {
      while (tier.used + tier.reserved > tier.cap) {
        if (!this.evictOne(tier)) break
        await this.settleEvictions()
      }
      if (tier.used + tier.reserved > tier.cap || this.objects.get(obj.path) !== obj) return
      await this.writeMeta(obj)
      const file = this.file(obj.id, unit)
      const tmp = `${file}.tmp${randomBytes(3).toString('hex')}`
      await writeFile(tmp, buf, { mode: 0o600 })
      await rename(tmp, file)
      if (this.objects.get(obj.path) !== obj || this.closed || this.covered(obj, unit)) {
        await unlinkQuiet(file)
        return
      }
      tier.entries.set(key, { obj, unit, bytes: n, readers: 0, dead: false, unlinked: false, released: false })
      tier.used += n
      if (!obj.pinned) tier.policy.insert(key)
      obj.blocks.add(unit)
      this.dropPieces(obj, unit)
    } finally {
      tier.reserved -= n
      this.diskSlotDone()
    }
  }

  /** Is piece `unit` within a whole block of `obj` that is cached (the piece would be a second copy)? */
  private covered (obj: ObjectEntry, unit: string): boolean {
    return unit.startsWith('p') && obj.blocks.has(String(this.blockOfPiece(unit)))
  }

  /** A whole block was stored: its pieces are second copies now, and go. */
  private dropPieces (obj: ObjectEntry, unit: string): void {
    if (unit.startsWith('p') || obj.blocks.size === 1) return
    const tier = this.tier(obj.tier)
    for (const piece of this.piecesOf(Number(unit))) {
      if (!obj.blocks.has(piece)) continue
      const key = this.key(obj, piece)
      const e = tier.entries.get(key)
      if (e) void this.dropBlock(tier, key, e, false)
    }
  }

  private diskWriters = 0
  private readonly diskQueue: Array<() => void> = []

  private async diskSlot (): Promise<void> {
    if (this.diskWriters < DISK_WRITERS) { this.diskWriters++; return }
    await new Promise<void>(resolve => this.diskQueue.push(resolve))
  }

  private diskSlotDone (): void {
    const next = this.diskQueue.shift()
    if (next) next()
    else this.diskWriters--
  }

  private readonly unlinking = new Set<Promise<void>>()

  private async settleEvictions (): Promise<void> {
    while (this.unlinking.size > 0) await Promise.all([...this.unlinking])
  }

  /** Evicts the policy's victim; false when the tier is empty. Disk bytes are released once the file is gone. */
  private evictOne (tier: Tier): boolean {
    const key = tier.policy.victim()
    if (key === undefined) return false
    const e = tier.entries.get(key)
    if (!e) { tier.policy.remove(key); return true }
    void this.dropBlock(tier, key, e, true)
    return true
  }

  private dropBlock (tier: Tier, key: string, e: BlockEntry, evicted: boolean): Promise<void> {
    if (tier.entries.get(key) !== e) return Promise.resolve()
    tier.entries.delete(key)
    tier.policy.remove(key)
    e.obj.blocks.delete(e.unit)
    e.dead = true
    if (evicted) tier.evictions++
    if (tier.kind === 'memory') {
      e.unlinked = true
      this.releaseBytes(tier, e)
      return Promise.resolve()
    }
    const obj = e.obj
    const u = (async () => {
      await this.closeBlockFile(key)
      await unlink(this.file(obj.id, e.unit)).catch(() => {})
      e.unlinked = true
      this.releaseBytes(tier, e)
      if (obj.blocks.size === 0 && this.objects.get(obj.path) !== obj) await unlinkQuiet(this.file(obj.id, 'meta'))
    })()
    this.unlinking.add(u)
    void u.finally(() => this.unlinking.delete(u))
    return u
  }

  private releaseBytes (tier: Tier, e: BlockEntry): void {
    if (e.dead && e.unlinked && e.readers === 0 && !e.released) {
      e.released = true
      tier.used -= e.bytes
    }
  }

  private dropObject (obj: ObjectEntry): void {
    if (this.objects.get(obj.path) === obj) this.objects.delete(obj.path)
    const tier = this.tier(obj.tier)
    for (const unit of [...obj.blocks]) {
      const key = this.key(obj, unit)
      const e = tier.entries.get(key)
      if (e) void this.dropBlock(tier, key, e, false)
    }
    if (obj.tier === 'disk' && obj.metaWritten) {
      const u = obj.metaWritten.then(async () => { if (obj.blocks.size === 0) await unlinkQuiet(this.file(obj.id, 'meta')) }, () => {})
      this.unlinking.add(u)
      void u.finally(() => this.unlinking.delete(u))
    }
  }

  private async writeMeta (obj: ObjectEntry): Promise<void> {
    obj.metaWritten ??= (async () => {
      await mkdir(path.dirname(this.file(obj.id, 'meta')), { recursive: true, mode: 0o700 })
      const meta = { path: obj.path, size: obj.version.size, mtimeMs: obj.version.mtimeMs, etag: obj.version.etag, blockBytes: this.blockBytes }
      const file = this.file(obj.id, 'meta')
      const tmp = `${file}.tmp${randomBytes(3).toString('hex')}`
      await writeFile(tmp, JSON.stringify(meta), { mode: 0o600 })
      await rename(tmp, file)
    })()
    await obj.metaWritten
  }

  // ---- invalidation -----------------------------------------------------------------------------------------------

  /** Forgets the cached content of `p` (written, truncated, removed or renamed through the mount). */
  invalidate (p: string): void {
    const obj = this.objects.get(p)
    if (obj) this.dropObject(obj)
  }

  /** Forgets `p` and everything below it. */
  invalidateTree (p: string): void {
    const below = p === '/' ? '/' : p + '/'
    for (const [q, obj] of [...this.objects]) if (q === p || q.startsWith(below)) this.dropObject(obj)
  }

  // ---- persistence ------------------------------------------------------------------------------------------------

  private async initDisk (): Promise<void> {
    const dir = this.opts.dir!
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await lockDir(dir, 'the cache directory', { exclusiveInProcess: true })
    this.diskUsable = true
    const metas = new Map<string, { path: string, size: number, mtimeMs: number, etag?: string, blockBytes: number }>()
    const blocks: Array<{ id: string, unit: string, file: string, size: number, mtimeMs: number }> = []
    for (const sub of await readdir(dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue
      const subdir = path.join(dir, sub.name)
      for (const name of await readdir(subdir)) {
        const file = path.join(subdir, name)
        const m = /^([0-9a-f]+-[0-9a-z]+)\.(meta|p?\d+)$/.exec(name)
        if (!m) { await rm(file, { force: true, recursive: true }); continue }
        if (m[2] === 'meta') {
          try { metas.set(m[1], JSON.parse(await readFile(file, 'utf8'))) } catch { await rm(file, { force: true }) }
        } else {
          const s = await stat(file).catch(() => undefined)
          if (s) blocks.push({ id: m[1], unit: m[2], file, size: s.size, mtimeMs: s.mtimeMs })
        }
      }
    }
    // One object per path: the newest generation wins (an older one may survive a crash mid-invalidation).
    const byPath = new Map<string, string>()
    for (const [id, meta] of metas) {
      const other = byPath.get(meta.path)
      if (meta.blockBytes !== this.blockBytes || typeof meta.path !== 'string') continue
      if (!other || other < id) byPath.set(meta.path, id)
    }
    const live = new Set(byPath.values())
    for (const [id, meta] of metas) {
      if (!live.has(id)) { await rm(this.file(id, 'meta'), { force: true }); continue }
      this.objects.set(meta.path, {
        path: meta.path, version: { size: meta.size, mtimeMs: meta.mtimeMs, etag: meta.etag }, id, tier: 'disk', blocks: new Set(), metaWritten: Promise.resolve(), pinned: false
      })
    }
    const objById = new Map([...this.objects.values()].map(o => [o.id, o]))
    const found = new Map<string, BlockEntry>()
    const mtimes = new Map<string, number>()
    // A crash between storing a block and dropping its pieces leaves both: the pieces go.
    const names = new Set(blocks.map(b => `${b.id}.${b.unit}`))
    for (const b of blocks) {
      const obj = objById.get(b.id)
      const want = obj ? this.unitBytes(b.unit, obj.version.size) : -1
      const covered = b.unit.startsWith('p') && names.has(`${b.id}.${this.blockOfPiece(b.unit)}`)
      if (!obj || b.size !== want || covered) { await rm(b.file, { force: true }); continue }
      const key = this.key(obj, b.unit)
      found.set(key, { obj, unit: b.unit, bytes: b.size, readers: 0, dead: false, unlinked: false, released: false })
      mtimes.set(key, b.mtimeMs)
    }
    // Eviction order: the persisted index first (as it was at the last clean close), then blocks it does not know
    // (written after it) by age.
    let order: Array<[string, number]> = []
    try {
      const idx = JSON.parse(await readFile(path.join(dir, INDEX_FILE), 'utf8'))
      if (idx.blockBytes === this.blockBytes && Array.isArray(idx.order)) order = idx.order
    } catch { /* no index: a first start or a crash */ }
    try {
      const pins = JSON.parse(await readFile(path.join(dir, PINS_FILE), 'utf8'))
      if (Array.isArray(pins)) for (const p of pins) if (typeof p === 'string') this.pins.add(p)
    } catch { /* nothing pinned */ }
    for (const obj of this.objects.values()) obj.pinned = this.pins.has(obj.path)
    const tier = this.disk
    const add = (key: string, stand: number): void => {
      const e = found.get(key)
      if (!e || tier.entries.has(key)) return
      tier.entries.set(key, e)
      if (!e.obj.pinned) restore(tier.policy, key, stand)
      tier.used += e.bytes
      e.obj.blocks.add(e.unit)
    }
    for (const [key, stand] of order) add(key, stand)
    for (const key of [...found.keys()].sort((a, b) => (mtimes.get(a) ?? 0) - (mtimes.get(b) ?? 0))) add(key, 1)
    for (const obj of [...this.objects.values()]) {
      if (obj.blocks.size === 0) { this.objects.delete(obj.path); await rm(this.file(obj.id, 'meta'), { force: true }) }
    }
    // The cap may have shrunk since the last run.
    while (tier.used > tier.cap && this.evictOne(tier)) await this.settleEvictions()
  }

  /** Resolves once no block is being written or removed. */
  async idle (): Promise<void> {
    await this.ready
    while (this.writes.size > 0 || this.unlinking.size > 0 || this.pending.size > 0) {
      await Promise.all([...this.writes, ...this.unlinking, ...[...this.pending.values()].map(async p => await p.catch(() => {}))])
      await new Promise(resolve => setImmediate(resolve))
    }
  }

  /** Finishes background writes, persists the eviction order and releases the directory. */
  async close (): Promise<void> {
    await this.idle()
    this.closed = true
    await Promise.all([...this.blockFiles.keys()].map(async k => await this.closeBlockFile(k)))
    if (!this.diskUsable) return
    const dir = this.opts.dir!
    const order = this.disk.policy.order().map(k => [k, standing(this.disk.policy, k)])
    const tmp = path.join(dir, `${INDEX_FILE}.tmp`)
    await writeFile(tmp, JSON.stringify({ blockBytes: this.blockBytes, order }), { mode: 0o600 }).then(async () => await rename(tmp, path.join(dir, INDEX_FILE))).catch(() => {})
    await unlockDir(dir)
    this.diskUsable = false
  }

  // ---- figures ----------------------------------------------------------------------------------------------------

  counters (): { dataMemory: CacheStats, dataDisk: CacheStats } {
    const pinned = { memory: 0, disk: 0 }
    for (const p of this.pins) {
      const obj = this.objects.get(p)
      if (obj) pinned[obj.tier] += this.cachedBytes([p])
    }
    const c = (t: Tier): CacheStats => ({ hits: t.hits, misses: t.misses, evictions: t.evictions, entries: t.entries.size, bytes: t.used, capBytes: t.cap, pinnedBytes: pinned[t.kind] })
    return { dataMemory: c(this.mem), dataDisk: c(this.disk) }
  }
}
