/**
 * Seeded random-operation filesystem exerciser, in the spirit of the classic `fsx` (Apple / fsx-linux).
 *
 * `exercise()` makes a fresh work directory under `opts.root` (a FUSE mount or a plain dir), then applies a seeded,
 * deterministic stream of operations to a handful of files in a few subdirectories: positional writes (including
 * past EOF, leaving holes that must read back as zeros), reads, O_APPEND appends, truncate up/down (by path and by
 * handle), fsync/fdatasync, stat, readdir, rename (within and across directories, over existing files), directory
 * rename, unlink, create (O_EXCL and O_TRUNC), mkdir/rmdir, and opening/closing long-lived handles. Every result is
 * checked against an in-memory model; every `verifyEvery` ops and at the end the whole tree is compared.
 *
 * On the first divergence it throws an `ExerciserError` whose message carries `seed=`, the op number, the op and
 * the last ops, so `exercise({ root, seed, ops: <op number> })` reproduces it.
 *
 * Invariants:
 * - The op stream depends only on `seed` and the model, never on what the filesystem returns, so a seed replays
 *   exactly (as long as the filesystem under test behaves until the failing op).
 * - Model buffers are zero beyond each file's size (`FileObj.data[size..]` is all zero), so extending a file
 *   (write past EOF, truncate up) yields zeros in the model for free.
 * - Every handle opened is closed before `exercise()` settles, success or failure.
 *
 * NB: all I/O goes through async `fs/promises` APIs (or the injected `opts.fs`). Never add a sync call: some tests run
 * the exerciser inside the FUSE server's own process, where a sync call on the mount deadlocks the event loop.
 * NB: a file is never unlinked or renamed over while one of our handles is open on it: libfuse's high-level API
 * then renames it to `.fuse_hidden*` (unless `hard_remove`), which would break the directory listing comparison.
 * Handles do stay open across renames of the file itself and of its parent directory.
 */
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { scaled } from './timing.js'

/** The FileHandle subset the exerciser uses; node's `FileHandle` satisfies it. */
export interface ExerciserFileHandle {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  write(buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>
  truncate(len: number): Promise<void>
  sync(): Promise<void>
  datasync(): Promise<void>
  stat(): Promise<ExerciserStats>
  close(): Promise<void>
}

export interface ExerciserStats {
  size: number
  isFile(): boolean
  isDirectory(): boolean
}

/** The `fs/promises` subset the exerciser uses for all I/O; `node:fs/promises` itself satisfies it. */
export interface ExerciserFs {
  open(path: string, flags: string, mode?: number): Promise<ExerciserFileHandle>
  stat(path: string): Promise<ExerciserStats>
  readdir(path: string): Promise<string[]>
  mkdir(path: string): Promise<unknown>
  mkdtemp(prefix: string): Promise<string>
  rmdir(path: string): Promise<void>
  rename(oldPath: string, newPath: string): Promise<void>
  unlink(path: string): Promise<void>
  truncate(path: string, len: number): Promise<void>
  rm(path: string, options: { recursive: boolean; force: boolean }): Promise<void>
}

export interface ExerciseOptions {
  /** Directory to work in; a fresh `fsx-<seed>-XXXXXX` subdirectory is created inside it. */
  root: string
  /** PRNG seed, a non-negative safe integer; the same seed replays the same op stream. */
  seed: number
  /** Number of random operations to apply. */
  ops: number
  /** Largest file size the exerciser will create, in bytes. Default 256 KiB. */
  maxFileSize?: number
  /** Target number of files kept alive. Default: 4–8, picked by the seed. */
  files?: number
  /** Called with one line per op (`#<n> <op>`) and per verification pass. */
  log?: (line: string) => void
  /** Full-tree comparison every this many ops (0: only at the end). Default 200. */
  verifyEvery?: number
  /**
   * Fail an op that takes longer than this, in unscaled ms (0: never; scaled by FSX_TEST_TIME_FACTOR). Default 0.
   * A hung FUSE op then yields a seed.
   */
  opTimeoutMs?: number
  /** Keep the work directory after success. Default false (it is removed); it is always kept after a failure. */
  keep?: boolean
  /** Filesystem used for all I/O. Default `node:fs/promises`. Injectable for tests of the exerciser itself. */
  fs?: ExerciserFs
}

export const OP_KINDS = [
  'write', 'read', 'append', 'truncate', 'fsync', 'stat', 'readdir', 'rename', 'unlink', 'create',
  'open', 'close', 'mkdir', 'rmdir', 'renamedir',
] as const
export type OpKind = (typeof OP_KINDS)[number]

export interface ExerciseReport {
  seed: number
  /** Ops applied; equals the sum of `counts`. */
  ops: number
  counts: Record<OpKind, number>
  /** Bytes written / read by ops (verification reads are not counted). */
  bytesWritten: number
  bytesRead: number
  /** Full-tree verification passes, including the final one. */
  verifications: number
  /** Reads / writes that returned fewer bytes than asked and were continued (legal, but worth knowing). */
  shortReads: number
  shortWrites: number
  /** Target file count used. */
  files: number
  /** The work directory (removed unless `keep`). */
  dir: string
  durationMs: number
}

/** One planned operation. Paths are relative to the work directory, '/'-separated; `h` is a pooled handle id. */
export type Op =
  | { kind: 'write'; path: string; off: number; len: number; h?: number }
  | { kind: 'read'; path: string; off: number; len: number; h?: number }
  | { kind: 'append'; path: string; len: number; creates: boolean; h?: number }
  | { kind: 'truncate'; path: string; size: number; h?: number }
  | { kind: 'fsync'; path: string; data: boolean; h?: number }
  | { kind: 'stat'; path: string; exists: boolean; h?: number }
  | { kind: 'readdir'; dir: string }
  | { kind: 'rename'; from: string; to: string; replaces: boolean; closes: number[] }
  | { kind: 'unlink'; path: string; exists: boolean; closes: number[] }
  | { kind: 'create'; path: string; exists: boolean; exclusive: boolean; len: number; keep?: number }
  | { kind: 'open'; path: string; append: boolean; h: number }
  | { kind: 'close'; path: string; h: number }
  | { kind: 'mkdir'; dir: string; exists: boolean }
  | { kind: 'rmdir'; dir: string; empty: boolean }
  | { kind: 'renamedir'; from: string; to: string }

/** One-line human description of an op, as used in logs and failure messages. */
export function describeOp(op: Op): string {
  const via = (h: number | undefined): string => (h === undefined ? ' (fresh open)' : ` via h${h}`)
  const closing = (hs: number[]): string => (hs.length ? ` (closing ${hs.map((h) => `h${h}`).join(',')} first)` : '')
  switch (op.kind) {
    case 'write':
      return `write /${op.path} off=${op.off} len=${op.len} end=${op.off + op.len}${via(op.h)}`
    case 'read':
      return `read /${op.path} off=${op.off} len=${op.len}${via(op.h)}`
    case 'append':
      return `append /${op.path} len=${op.len}${op.creates ? ' (creates)' : ''}${via(op.h)}`
    case 'truncate':
      return `truncate /${op.path} size=${op.size}${op.h === undefined ? ' (by path)' : ` via h${op.h}`}`
    case 'fsync':
      return `${op.data ? 'fdatasync' : 'fsync'} /${op.path}${via(op.h)}`
    case 'stat':
      return `stat /${op.path}${op.exists ? '' : ' (expect ENOENT)'}${op.h === undefined ? '' : ` via h${op.h}`}`
    case 'readdir':
      return `readdir /${op.dir}`
    case 'rename':
      return `rename /${op.from} -> /${op.to}${op.replaces ? ' (replaces)' : ''}` + closing(op.closes)
    case 'unlink':
      return `unlink /${op.path}${op.exists ? '' : ' (expect ENOENT)'}` + closing(op.closes)
    case 'create':
      return `create /${op.path} ${op.exclusive ? 'O_EXCL' : 'O_TRUNC'}` +
        (op.exists && op.exclusive ? ' (expect EEXIST)' : op.exists ? ' (truncates existing)' : '') +
        (op.len ? ` len=${op.len}` : '') + (op.keep === undefined ? '' : ` keep as h${op.keep}`)
    case 'open':
      return `open /${op.path} ${op.append ? 'a+' : 'r+'} as h${op.h}`
    case 'close':
      return `close h${op.h} (/${op.path})`
    case 'mkdir':
      return `mkdir /${op.dir}${op.exists ? ' (expect EEXIST)' : ''}`
    case 'rmdir':
      return `rmdir /${op.dir}${op.empty ? '' : ' (expect ENOTEMPTY)'}`
    case 'renamedir':
      return `rename dir /${op.from} -> /${op.to}`
  }
}

/** Thrown on the first divergence from the model; `message` is self-contained and reproducible. */
export class ExerciserError extends Error {
  constructor(
    message: string,
    readonly seed: number,
    /** 1-based op number (0: setup; ops+1: final verification). */
    readonly opNumber: number,
    readonly op: string,
    readonly recentOps: string[],
    readonly dir: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'ExerciserError'
  }
}

/** mulberry32: tiny, fast, good enough 32-bit PRNG. `next()` is in [0, 1). */
export function createRng(seed: number) {
  let a = seed >>> 0
  const u32 = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  const next = (): number => u32() / 4294967296
  /** Integer in [0, n). */
  const int = (n: number): number => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T
  return { next, int, pick }
}
type Rng = ReturnType<typeof createRng>

/** Raised for a behaviour mismatch (as opposed to an unexpected error from the filesystem). */
class Mismatch extends Error {}

interface FileObj {
  id: number
  path: string
  /** Capacity buffer; bytes at and past `size` are always zero. */
  data: Buffer
  size: number
}

interface PooledHandle {
  id: number
  fh: ExerciserFileHandle
  file: FileObj
  append: boolean
}

/** Type-checks that node's fs/promises satisfies ExerciserFs. */
const realFs: ExerciserFs = fsp
const KiB = 1024
const MAX_POOLED_HANDLES = 4
const RECENT_OPS = 20
const DIR_NAMES = ['d0', 'd1', 'd2', 'd3'] as const
/** Offsets near these multiples are favoured: page, FUSE max_write / max_read-ish and readahead-ish sizes. */
const BOUNDARIES = [4 * KiB, 64 * KiB, 128 * KiB] as const

/** Relative weights of op kinds; writes and reads dominate. Inapplicable kinds are skipped per op. */
const WEIGHTS: Record<OpKind, number> = {
  write: 30, read: 30, append: 6, truncate: 5, fsync: 3, stat: 4, readdir: 2, rename: 4, unlink: 2,
  create: 3, open: 2, close: 2, mkdir: 1, rmdir: 1, renamedir: 1,
}

const relPath = (dir: string, name: string): string => (dir ? `${dir}/${name}` : name)
const dirOf = (path: string): string => {
  const i = path.lastIndexOf('/')
  return i < 0 ? '' : path.slice(0, i)
}
const hex = (b: number | undefined): string => (b === undefined ? 'EOF' : `0x${b.toString(16).padStart(2, '0')}`)
const errCode = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined

/** Describe where `got` differs from `want`, or return undefined if they are equal. */
function diff(want: Buffer, got: Buffer, base: number): string | undefined {
  if (want.length === got.length && want.equals(got)) return undefined
  const n = Math.min(want.length, got.length)
  let first = -1
  let last = -1
  let count = 0
  for (let i = 0; i < n; i++) {
    if (want[i] !== got[i]) {
      if (first < 0) first = i
      last = i
      count++
    }
  }
  if (first < 0) return `length mismatch: expected ${want.length} bytes, got ${got.length}`
  const w = want[first] as number
  const g = got[first] as number
  const hint = g === 0 ? ' (got zero: lost or unflushed write?)' : w === 0 ? ' (expected zero: hole or truncated range)' : ''
  return `content mismatch at byte ${base + first} (expected ${hex(w)}, got ${hex(g)})${hint}; ` +
    `${count} byte(s) differ in [${base + first}, ${base + last + 1})` +
    (want.length !== got.length ? `; also length ${got.length} != ${want.length}` : '')
}

class Exerciser {
  readonly fs: ExerciserFs
  readonly rng: Rng
  readonly maxFileSize: number
  readonly target: number
  readonly names: string[]
  readonly counts = Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>
  readonly files = new Map<string, FileObj>()
  readonly dirs = new Set<string>()
  readonly pool: PooledHandle[] = []
  /** Scratch buffers: one for data to write, one for data read back (+1 byte to detect over-long files). */
  readonly wbuf: Buffer
  readonly rbuf: Buffer
  readonly recent: string[] = []
  work = ''
  nextFileId = 0
  nextHandleId = 0
  opNumber = 0
  bytesWritten = 0
  bytesRead = 0
  shortReads = 0
  shortWrites = 0
  verifications = 0
  timedOut = false

  constructor(readonly opts: ExerciseOptions) {
    this.fs = opts.fs ?? realFs
    this.rng = createRng(opts.seed)
    this.maxFileSize = opts.maxFileSize ?? 256 * KiB
    this.target = opts.files ?? 4 + this.rng.int(5)
    this.names = Array.from({ length: Math.max(4, this.target) }, (_, i) => `f${i}`)
    this.wbuf = Buffer.alloc(this.maxFileSize)
    this.rbuf = Buffer.alloc(this.maxFileSize + 1)
  }

  abs(rel: string): string {
    return rel ? join(this.work, rel) : this.work
  }

  // ---- planning: pure function of rng + model --------------------------------------------------------------

  /** Length in [1, max], skewed small: mostly < 512 B, sometimes up to 64 KiB, rarely up to `max`. */
  pickLen(max: number): number {
    const r = this.rng.next()
    const n = r < 0.55 ? 512 : r < 0.8 ? 8 * KiB : r < 0.95 ? 64 * KiB : max
    return Math.max(1, Math.min(max, 1 + this.rng.int(n)))
  }

  /**
   * Offset in [0, maxFileSize), favouring EOF and block boundaries at or just past EOF, and sometimes anywhere
   * (far past EOF: a hole). Tuned so about a third of file bytes are holes (measured), not most of them.
   */
  pickOff(size: number): number {
    const r = this.rng.next()
    let off: number
    if (r < 0.45) off = this.rng.int(size + 1)
    else if (r < 0.7) off = size + this.rng.int(8 * KiB + 1) - 4 * KiB
    else if (r < 0.96) {
      const b = this.rng.pick(BOUNDARIES)
      off = b * this.rng.int(Math.floor(Math.min(this.maxFileSize, size + b) / b) + 1) + this.rng.int(1025) - 512
    } else off = this.rng.int(this.maxFileSize)
    return Math.min(Math.max(0, off), this.maxFileSize - 1)
  }

  randomFile(): FileObj {
    return this.rng.pick([...this.files.values()])
  }

  /** A random slot path (directory × name); it may or may not exist. */
  randomSlot(): string {
    return relPath(this.rng.pick(['', ...this.dirs]), this.rng.pick(this.names))
  }

  /** A slot path that does not currently exist (undefined if a few tries all hit existing files). */
  freeSlot(): string | undefined {
    for (let i = 0; i < 8; i++) {
      const p = this.randomSlot()
      if (!this.files.has(p)) return p
    }
    return undefined
  }

  /** A pooled handle on `file` (usable for positional writes unless `anyMode`), 75% of the time when one exists. */
  pickHandle(file: FileObj, anyMode: boolean): number | undefined {
    const hs = this.pool.filter((h) => h.file === file && (anyMode || !h.append))
    if (hs.length === 0 || this.rng.next() >= 0.75) return undefined
    return this.rng.pick(hs).id
  }

  applicable(kind: OpKind): boolean {
    const n = this.files.size
    switch (kind) {
      case 'write': case 'read': case 'truncate': case 'fsync': case 'rename': case 'stat':
        return n > 0
      case 'unlink':
        return n > this.target / 2
      case 'open':
        return n > 0 && this.pool.length < MAX_POOLED_HANDLES
      case 'close':
        return this.pool.length > 0
      case 'rmdir':
        return this.dirs.size > 0
      case 'renamedir':
        return this.dirs.size > 0 && this.dirs.size < DIR_NAMES.length
      default:
        return true
    }
  }

  planKind(): OpKind {
    const w = OP_KINDS.map((k) => {
      if (!this.applicable(k)) return 0
      if (k === 'create') return this.files.size < this.target ? WEIGHTS.create * 3 : WEIGHTS.create
      return WEIGHTS[k]
    })
    let r = this.rng.next() * w.reduce((a, b) => a + b, 0)
    for (let i = 0; i < w.length; i++) {
      r -= w[i] as number
      if (r < 0) return OP_KINDS[i] as OpKind
    }
    return 'create'
  }

  plan(): Op {
    const kind = this.files.size === 0 && this.rng.next() < 0.8 ? 'create' : this.planKind()
    const rng = this.rng
    switch (kind) {
      case 'write': {
        const f = this.randomFile()
        const off = this.pickOff(f.size)
        return { kind, path: f.path, off, len: this.pickLen(this.maxFileSize - off), h: this.pickHandle(f, false) }
      }
      case 'read': {
        const f = this.randomFile()
        const off = rng.next() < 0.05 ? f.size + rng.int(4 * KiB) : this.pickOff(f.size)
        return { kind, path: f.path, off, len: this.pickLen(this.maxFileSize), h: this.pickHandle(f, true) }
      }
      case 'append': {
        const creates = rng.next() < 0.1 || this.files.size === 0
        const path = creates ? this.freeSlot() : undefined
        if (path !== undefined) return { kind, path, len: this.pickLen(this.maxFileSize), creates: true }
        const f = this.randomFile()
        if (f.size >= this.maxFileSize) return { kind: 'truncate', path: f.path, size: rng.int(f.size + 1) }
        const hs = this.pool.filter((h) => h.file === f && h.append)
        const h = hs.length && rng.next() < 0.75 ? rng.pick(hs).id : undefined
        return { kind, path: f.path, len: this.pickLen(this.maxFileSize - f.size), creates: false, h }
      }
      case 'truncate': {
        const f = this.randomFile()
        const r = rng.next()
        const size = r < 0.1 ? 0
          : r < 0.55 ? rng.int(f.size + 1)
          : Math.min(this.maxFileSize, f.size + this.pickLen(this.maxFileSize))
        return { kind, path: f.path, size, h: this.pickHandle(f, true) }
      }
      case 'fsync': {
        const f = this.randomFile()
        return { kind, path: f.path, data: rng.next() < 0.3, h: this.pickHandle(f, true) }
      }
      case 'stat': {
        if (rng.next() < 0.1) {
          const path = this.freeSlot()
          if (path !== undefined) return { kind, path, exists: false }
        }
        const f = this.randomFile()
        return { kind, path: f.path, exists: true, h: this.pickHandle(f, true) }
      }
      case 'readdir':
        return { kind, dir: rng.pick(['', ...this.dirs]) }
      case 'rename': {
        const f = this.randomFile()
        let to: string | undefined
        if (this.files.size > 1 && rng.next() < 0.25) {
          to = rng.pick([...this.files.keys()].filter((p) => p !== f.path))
        } else {
          for (let i = 0; i < 8 && (to === undefined || to === f.path); i++) to = this.randomSlot()
          if (to === f.path) return { kind: 'readdir', dir: dirOf(f.path) }
        }
        const victim = this.files.get(to as string)
        const closes = victim ? this.pool.filter((h) => h.file === victim).map((h) => h.id) : []
        return { kind, from: f.path, to: to as string, replaces: victim !== undefined, closes }
      }
      case 'unlink': {
        if (rng.next() < 0.05) {
          const path = this.freeSlot()
          if (path !== undefined) return { kind, path, exists: false, closes: [] }
        }
        const f = this.randomFile()
        return { kind, path: f.path, exists: true, closes: this.pool.filter((h) => h.file === f).map((h) => h.id) }
      }
      case 'create': {
        const free = rng.next() < 0.85 ? this.freeSlot() : undefined
        const path = free ?? this.randomSlot()
        const exists = this.files.has(path)
        const exclusive = exists ? rng.next() < 0.3 : rng.next() < 0.5
        const len = exists && exclusive ? 0 : rng.next() < 0.7 ? this.pickLen(this.maxFileSize) : 0
        const keep = !(exists && exclusive) && this.pool.length < MAX_POOLED_HANDLES && rng.next() < 0.2
        return { kind, path, exists, exclusive, len, keep: keep ? this.nextHandleId++ : undefined }
      }
      case 'open':
        return { kind, path: this.randomFile().path, append: rng.next() < 0.3, h: this.nextHandleId++ }
      case 'close': {
        const h = rng.pick(this.pool)
        return { kind, path: h.file.path, h: h.id }
      }
      case 'mkdir': {
        const free = DIR_NAMES.filter((d) => !this.dirs.has(d))
        if (free.length && (rng.next() < 0.9 || this.dirs.size === 0)) return { kind, dir: rng.pick(free), exists: false }
        return { kind, dir: rng.pick([...this.dirs]), exists: true }
      }
      case 'rmdir': {
        const all = [...this.dirs]
        const empty = all.filter((d) => this.isEmptyDir(d))
        const dir = empty.length && rng.next() < 0.7 ? rng.pick(empty) : rng.pick(all)
        return { kind, dir, empty: this.isEmptyDir(dir) }
      }
      case 'renamedir': {
        const from = rng.pick([...this.dirs])
        const to = rng.pick(DIR_NAMES.filter((d) => !this.dirs.has(d)))
        return { kind, from, to }
      }
    }
  }

  isEmptyDir(dir: string): boolean {
    for (const p of this.files.keys()) if (dirOf(p) === dir) return false
    return true
  }

  // ---- execution --------------------------------------------------------------------------------------------

  handle(id: number): PooledHandle {
    const h = this.pool.find((p) => p.id === id)
    if (!h) throw new Error(`internal: no pooled handle h${id}`)
    return h
  }

  file(path: string): FileObj {
    const f = this.files.get(path)
    if (!f) throw new Error(`internal: no model file /${path}`)
    return f
  }

  /** Run `fn` on pooled handle `h`, or on a fresh open of `path` that is closed afterwards (close errors count). */
  async via<T>(h: number | undefined, path: string, flags: string, fn: (fh: ExerciserFileHandle) => Promise<T>): Promise<T> {
    if (h !== undefined) return fn(this.handle(h).fh)
    const fh = await this.fs.open(this.abs(path), flags, 0o644)
    let ok = false
    try {
      const r = await fn(fh)
      ok = true
      return r
    } finally {
      if (ok) await fh.close()
      else await fh.close().catch(() => {})
    }
  }

  /** Fill `wbuf[0..len)` with the pattern for file offset `off`: never zero, varies by position and op. */
  fill(off: number, len: number): Buffer {
    let v = (off + this.opNumber * 31) % 255
    const b = this.wbuf
    for (let i = 0; i < len; i++) {
      b[i] = v + 1
      if (++v === 255) v = 0
    }
    return b
  }

  /** Write all of `wbuf[0..len)` at `pos` (null: current position / O_APPEND), continuing short writes. */
  async writeAll(fh: ExerciserFileHandle, len: number, pos: number | null): Promise<void> {
    let done = 0
    while (done < len) {
      const { bytesWritten } = await fh.write(this.wbuf, done, len - done, pos === null ? null : pos + done)
      if (bytesWritten <= 0) throw new Mismatch(`write returned ${bytesWritten} after ${done} of ${len} bytes`)
      if (bytesWritten < len - done) this.shortWrites++
      done += bytesWritten
    }
    this.bytesWritten += len
  }

  /** Read up to `len` bytes at `pos` into `rbuf`, continuing short reads until EOF; returns the bytes read. */
  async readAll(fh: ExerciserFileHandle, len: number, pos: number): Promise<Buffer> {
    let done = 0
    let short = false
    while (done < len) {
      const { bytesRead } = await fh.read(this.rbuf, done, len - done, pos + done)
      if (bytesRead === 0) break
      // A read that came up short is only a "short read" (rather than EOF) if the next one returns data.
      if (short) this.shortReads++
      short = bytesRead < len - done
      done += bytesRead
    }
    return this.rbuf.subarray(0, done)
  }

  /** Apply a write of `wbuf[0..len)` at `off` to the model. */
  modelWrite(f: FileObj, off: number, len: number): void {
    const end = off + len
    if (end > f.data.length) {
      const grown = Buffer.alloc(Math.min(Math.max(end, f.data.length * 2), this.maxFileSize))
      f.data.copy(grown, 0, 0, f.size)
      f.data = grown
    }
    this.wbuf.copy(f.data, off, 0, len)
    if (end > f.size) f.size = end
  }

  modelTruncate(f: FileObj, size: number): void {
    if (size < f.size) f.data.fill(0, size, f.size)
    else if (size > f.data.length) {
      const grown = Buffer.alloc(size)
      f.data.copy(grown, 0, 0, f.size)
      f.data = grown
    }
    f.size = size
  }

  newFile(path: string): FileObj {
    const f: FileObj = { id: this.nextFileId++, path, data: Buffer.alloc(0), size: 0 }
    this.files.set(path, f)
    return f
  }

  async closeHandle(id: number): Promise<void> {
    const i = this.pool.findIndex((p) => p.id === id)
    const [h] = this.pool.splice(i, 1)
    await h?.fh.close()
  }

  /** Run `fn`, which must fail with one of `codes`. */
  async expectError(codes: string[], what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn()
    } catch (e) {
      if (codes.includes(errCode(e) ?? '')) return
      throw e
    }
    throw new Mismatch(`${what} succeeded, expected ${codes.join(' or ')}`)
  }

  async apply(op: Op): Promise<void> {
    const fs = this.fs
    switch (op.kind) {
      case 'write': {
        const f = this.file(op.path)
        this.fill(op.off, op.len)
        await this.via(op.h, op.path, 'r+', (fh) => this.writeAll(fh, op.len, op.off))
        this.modelWrite(f, op.off, op.len)
        return
      }
      case 'read': {
        const f = this.file(op.path)
        const got = await this.via(op.h, op.path, 'r', (fh) => this.readAll(fh, op.len, op.off))
        this.bytesRead += got.length
        const want = f.data.subarray(Math.min(op.off, f.size), Math.min(op.off + op.len, f.size))
        const d = diff(want, got, op.off)
        if (d) throw new Mismatch(`${d} (model size ${f.size})`)
        return
      }
      case 'append': {
        const f = op.creates ? undefined : this.file(op.path)
        const off = f?.size ?? 0
        this.fill(off, op.len)
        await this.via(op.h, op.path, 'a', (fh) => this.writeAll(fh, op.len, null))
        this.modelWrite(f ?? this.newFile(op.path), off, op.len)
        return
      }
      case 'truncate': {
        const f = this.file(op.path)
        if (op.h === undefined) await fs.truncate(this.abs(op.path), op.size)
        else await this.handle(op.h).fh.truncate(op.size)
        this.modelTruncate(f, op.size)
        return
      }
      case 'fsync':
        await this.via(op.h, op.path, 'r+', (fh) => (op.data ? fh.datasync() : fh.sync()))
        return
      case 'stat': {
        if (!op.exists) return this.expectError(['ENOENT'], 'stat', () => fs.stat(this.abs(op.path)))
        const f = this.file(op.path)
        const st = op.h === undefined ? await fs.stat(this.abs(op.path)) : await this.handle(op.h).fh.stat()
        if (!st.isFile()) throw new Mismatch('not a regular file')
        if (st.size !== f.size) throw new Mismatch(`size ${st.size}, expected ${f.size}`)
        return
      }
      case 'readdir':
        return this.checkDir(op.dir)
      case 'rename': {
        const f = this.file(op.from)
        for (const h of op.closes) await this.closeHandle(h)
        await fs.rename(this.abs(op.from), this.abs(op.to))
        this.files.delete(op.from)
        this.files.set(op.to, f)
        f.path = op.to
        return
      }
      case 'unlink':
        if (!op.exists) return this.expectError(['ENOENT'], 'unlink', () => fs.unlink(this.abs(op.path)))
        for (const h of op.closes) await this.closeHandle(h)
        await fs.unlink(this.abs(op.path))
        this.files.delete(op.path)
        return
      case 'create': {
        const path = this.abs(op.path)
        if (op.exists && op.exclusive) return this.expectError(['EEXIST'], 'open O_EXCL', () => this.via(undefined, op.path, 'wx', async () => {}))
        const flags = (op.exclusive ? 'wx' : 'w') + (op.keep === undefined ? '' : '+')
        const fh = await fs.open(path, flags, 0o644)
        const f = op.exists ? this.file(op.path) : this.newFile(op.path)
        this.modelTruncate(f, 0)
        if (op.keep !== undefined) this.pool.push({ id: op.keep, fh, file: f, append: false })
        // Once pooled, the handle is closed by closeHandle() or run()'s cleanup; otherwise close it here.
        const write = async (): Promise<void> => {
          if (!op.len) return
          this.fill(0, op.len)
          await this.writeAll(fh, op.len, 0)
          this.modelWrite(f, 0, op.len)
        }
        if (op.keep !== undefined) return write()
        let ok = false
        try {
          await write()
          ok = true
        } finally {
          if (ok) await fh.close()
          else await fh.close().catch(() => {})
        }
        return
      }
      case 'open': {
        const f = this.file(op.path)
        const fh = await fs.open(this.abs(op.path), op.append ? 'a+' : 'r+')
        this.pool.push({ id: op.h, fh, file: f, append: op.append })
        return
      }
      case 'close':
        return this.closeHandle(op.h)
      case 'mkdir':
        if (op.exists) return this.expectError(['EEXIST'], 'mkdir', () => fs.mkdir(this.abs(op.dir)))
        await fs.mkdir(this.abs(op.dir))
        this.dirs.add(op.dir)
        return
      case 'rmdir':
        if (!op.empty) return this.expectError(['ENOTEMPTY', 'EEXIST'], 'rmdir', () => fs.rmdir(this.abs(op.dir)))
        await fs.rmdir(this.abs(op.dir))
        this.dirs.delete(op.dir)
        return
      case 'renamedir': {
        await fs.rename(this.abs(op.from), this.abs(op.to))
        this.dirs.delete(op.from)
        this.dirs.add(op.to)
        const moved = [...this.files].filter(([p]) => dirOf(p) === op.from)
        for (const [p] of moved) this.files.delete(p)
        for (const [p, f] of moved) {
          f.path = relPath(op.to, p.slice(op.from.length + 1))
          this.files.set(f.path, f)
        }
        return
      }
    }
  }

  // ---- verification -----------------------------------------------------------------------------------------

  expectedListing(dir: string): string[] {
    const names = [...this.files.keys()].filter((p) => dirOf(p) === dir).map((p) => p.slice(dir ? dir.length + 1 : 0))
    if (dir === '') names.push(...this.dirs)
    return names.sort()
  }

  async checkDir(dir: string): Promise<void> {
    const got = (await this.fs.readdir(this.abs(dir))).sort()
    const want = this.expectedListing(dir)
    if (got.join('/') !== want.join('/')) {
      const extra = got.filter((n) => !want.includes(n))
      const missing = want.filter((n) => !got.includes(n))
      throw new Mismatch(`listing of /${dir} differs: extra [${extra.join(', ')}], missing [${missing.join(', ')}]`)
    }
  }

  /** Compare the whole tree with the model: listings, types, sizes and full contents (via fresh opens). */
  async verifyAll(): Promise<void> {
    for (const dir of ['', ...this.dirs]) {
      await this.checkDir(dir)
      if (dir && !(await this.fs.stat(this.abs(dir))).isDirectory()) throw new Mismatch(`/${dir} is not a directory`)
    }
    for (const f of this.files.values()) {
      const st = await this.fs.stat(this.abs(f.path))
      if (!st.isFile()) throw new Mismatch(`/${f.path} is not a regular file`)
      if (st.size !== f.size) throw new Mismatch(`/${f.path}: size ${st.size}, expected ${f.size}`)
      // Ask for one byte more than the model has, to catch data past the expected EOF.
      const got = await this.via(undefined, f.path, 'r', (fh) => this.readAll(fh, f.size + 1, 0))
      const d = diff(f.data.subarray(0, f.size), got, 0)
      if (d) throw new Mismatch(`/${f.path}: ${d}`)
    }
    this.verifications++
  }

  // ---- driver -----------------------------------------------------------------------------------------------

  fail(opNumber: number, what: string, e: unknown): ExerciserError {
    if (e instanceof ExerciserError) return e
    const problem = e instanceof Mismatch ? e.message
      : `unexpected error${errCode(e) ? ` ${errCode(e)}` : ''}: ${e instanceof Error ? e.message : String(e)}`
    const msg = `exerciser failed: seed=${this.opts.seed} op=${opNumber} ${what}: ${problem}\n` +
      `  reproduce: exercise({ root, seed: ${this.opts.seed}, ops: ${Math.max(opNumber, 1)}` +
      `${this.opts.maxFileSize === undefined ? '' : `, maxFileSize: ${this.maxFileSize}`}` +
      `${this.opts.files === undefined ? '' : `, files: ${this.target}`} }); work dir kept: ${this.work}\n` +
      `  last ops:\n${this.recent.map((l) => `    ${l}`).join('\n')}`
    return new ExerciserError(msg, this.opts.seed, opNumber, what, [...this.recent], this.work, { cause: e })
  }

  async step<T>(opNumber: number, what: string, fn: () => Promise<T>): Promise<T> {
    const ms = scaled(this.opts.opTimeoutMs ?? 0)
    try {
      if (ms <= 0) return await fn()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.timedOut = true
          reject(new Mismatch(`timed out after ${ms} ms`))
        }, ms)
      })
      try {
        return await Promise.race([fn(), timeout])
      } finally {
        clearTimeout(timer)
      }
    } catch (e) {
      throw this.fail(opNumber, what, e)
    }
  }

  async run(): Promise<ExerciseReport> {
    const { seed, ops } = this.opts
    const log = this.opts.log
    const verifyEvery = this.opts.verifyEvery ?? 200
    const start = performance.now()
    this.work = await this.step(0, 'setup', () => this.fs.mkdtemp(join(this.opts.root, `fsx-${seed}-`)))
    let ok = false
    try {
      const subdirs = 1 + this.rng.int(2)
      for (let i = 0; i < subdirs; i++) {
        const d = DIR_NAMES[i] as string
        await this.step(0, `setup mkdir /${d}`, () => this.fs.mkdir(this.abs(d)))
        this.dirs.add(d)
      }
      for (let n = 1; n <= ops; n++) {
        this.opNumber = n
        const op = this.plan()
        const what = describeOp(op)
        this.recent.push(`#${n} ${what}`)
        if (this.recent.length > RECENT_OPS) this.recent.shift()
        log?.(`#${n} ${what}`)
        await this.step(n, what, () => this.apply(op))
        this.counts[op.kind]++
        if (verifyEvery > 0 && n % verifyEvery === 0 && n < ops) {
          log?.(`verify after op ${n}`)
          await this.step(n, `verify after op ${n}`, () => this.verifyAll())
        }
      }
      const last = ops + 1
      log?.('close all handles and verify at end')
      await this.step(last, 'close all handles at end', async () => {
        while (this.pool.length) await this.closeHandle((this.pool[0] as PooledHandle).id)
      })
      await this.step(last, 'final verify', () => this.verifyAll())
      ok = true
    } finally {
      // NB: after a timeout the hung op may still hold the fs; don't let a hung close() hang the caller too.
      const pending = this.pool.splice(0).map((h) => h.fh.close().catch(() => {}))
      if (this.timedOut) {
        const t = new Promise<void>((r) => setTimeout(r, scaled(1000)).unref())
        await Promise.race([Promise.all(pending), t])
      } else await Promise.all(pending)
    }
    if (ok && !this.opts.keep) {
      await this.step(ops + 1, 'remove work dir', () => this.fs.rm(this.work, { recursive: true, force: true }))
    }
    return {
      seed, ops, counts: this.counts, bytesWritten: this.bytesWritten, bytesRead: this.bytesRead,
      verifications: this.verifications, shortReads: this.shortReads, shortWrites: this.shortWrites,
      files: this.target, dir: this.work, durationMs: performance.now() - start,
    }
  }
}

/**
 * Apply `opts.ops` seeded random operations under `opts.root` and check every result against an in-memory model.
 * Resolves with a report; rejects with an `ExerciserError` (message contains `seed=`, op number, op, last ops).
 */
export async function exercise(opts: ExerciseOptions): Promise<ExerciseReport> {
  const { seed, ops } = opts
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`)
  if (!Number.isSafeInteger(ops) || ops < 0) throw new RangeError(`ops must be a non-negative integer, got ${ops}`)
  if (opts.maxFileSize !== undefined && !(Number.isSafeInteger(opts.maxFileSize) && opts.maxFileSize >= 1)) {
    throw new RangeError(`maxFileSize must be a positive integer, got ${opts.maxFileSize}`)
  }
  if (opts.files !== undefined && !(Number.isSafeInteger(opts.files) && opts.files >= 1)) {
    throw new RangeError(`files must be a positive integer, got ${opts.files}`)
  }
  return new Exerciser(opts).run()
}
