/**
 * The catalog: which file each indexed vector came from. The HNSW index (engine.ts) knows only keys; a key is
 * `id · 2^24 + row`, where `id` numbers one indexed version of one file (never reused: a rewritten file gets a new
 * id, so a stale key can never name the new content) and `row` is the vector's position in that file.
 *
 * Invariants:
 * - `files` holds every path the index knows, valid or not; a valid record's `count` keys are in the index, an
 *   invalid one (`invalid` says why) has none.
 * - `byId` maps every valid record's id back to its path; `vectors` is the sum of valid counts.
 * - Paths are absolute in the mount ("/docs/a.vec").
 */
import type { Stat } from '../../../src/backend/types.js'

/** Bits of a key that number the vectors of one file. */
export const ROW_BITS = 24
const ROW_MASK = (1n << BigInt(ROW_BITS)) - 1n

export interface FileRecord {
  /** Number of this indexed version of the file (its keys are id·2^24 + row). */
  id: number
  /** Vectors it holds in the index (0 when invalid or empty). */
  count: number
  /** What the file was when indexed: its ETag, else size and mtime (see `versionOf`). */
  version: string
  /** Why the file is left out of the index. */
  invalid?: string
}

export type Metric = 'l2' | 'cosine' | 'ip'

/** What a file's attributes say about its content: the ETag where the backend has one, else size and mtime. */
export function versionOf (st: Stat): string {
  return st.etag !== undefined ? `etag:${st.etag}` : `${st.size}:${st.mtimeMs}`
}

/** The keys of a record's vectors. */
export function keysOf (id: number, count: number): BigUint64Array {
  const keys = new BigUint64Array(count)
  const base = BigInt(id) << BigInt(ROW_BITS)
  for (let r = 0; r < count; r++) keys[r] = base + BigInt(r)
  return keys
}

/** The file version id and row a key stands for. */
export function decodeKey (key: bigint): { id: number, row: number } {
  return { id: Number(key >> BigInt(ROW_BITS)), row: Number(key & ROW_MASK) }
}

/** `p` is `dir` or below it. */
export function isUnder (p: string, dir: string): boolean {
  return dir === '/' || p === dir || p.startsWith(dir + '/')
}

/** The on-disk form (index.json). */
export interface CatalogJson {
  format: 'fsx-vector-catalog'
  version: 1
  dim: number
  metric: Metric
  nextId: number
  /** Which index file holds the keys: index-<generation>.usearch (0: none saved). */
  generation: number
  /** That file's SHA-256: nothing else is ever loaded (usearch trusts what it loads). */
  indexSha256?: string
  vectors: number
  files: Array<[path: string, id: number, count: number, version: string, invalid?: string]>
}

export class Catalog {
  /** Dimension of every vector in the index; 0 until the first vector fixes it (or the vectorDim setting). */
  dim = 0
  nextId = 1
  vectors = 0
  invalidFiles = 0
  readonly files = new Map<string, FileRecord>()
  private readonly byId = new Map<number, string>()

  constructor (readonly metric: Metric) {}

  /** A fresh id for a new indexed version of a file. */
  allocate (): number {
    return this.nextId++
  }

  get (path: string): FileRecord | undefined {
    return this.files.get(path)
  }

  /** Records `rec` for `path`; resolves with the record it replaces (whose keys the caller removes from the index). */
  set (path: string, rec: FileRecord): FileRecord | undefined {
    const old = this.delete(path)
    this.files.set(path, rec)
    if (rec.invalid !== undefined) this.invalidFiles++
    else {
      this.byId.set(rec.id, path)
      this.vectors += rec.count
    }
    return old
  }

  /** Forgets `path`; resolves with its record. */
  delete (path: string): FileRecord | undefined {
    const old = this.files.get(path)
    if (old === undefined) return undefined
    this.files.delete(path)
    if (old.invalid !== undefined) this.invalidFiles--
    else {
      this.byId.delete(old.id)
      this.vectors -= old.count
    }
    return old
  }

  /** The path of a valid record's id. */
  pathOf (id: number): string | undefined {
    return this.byId.get(id)
  }

  /** Paths at or below `dir`. */
  pathsUnder (dir: string): string[] {
    if (this.files.has(dir)) return [dir]
    const out: string[] = []
    for (const p of this.files.keys()) if (isUnder(p, dir)) out.push(p)
    return out
  }

  /** Vectors in files at or below `dir`. */
  vectorsUnder (dir: string): number {
    if (dir === '/') return this.vectors
    let n = 0
    for (const [p, r] of this.files) if (isUnder(p, dir)) n += r.count
    return n
  }

  /**
   * rename(from, to) of a file or a directory: records at or below `from` move below `to`; records that were at or
   * below `to` and are not moved there are replaced (resolved, so the caller removes their keys). Resolves with the
   * moves made too.
   */
  rename (from: string, to: string): { moved: Array<[from: string, to: string]>, replaced: FileRecord[] } {
    const moving = this.pathsUnder(from).map(p => [p, to + p.slice(from.length)] as [string, string])
    const records = moving.map(([p]) => this.delete(p)!)
    const replaced: FileRecord[] = []
    for (const p of this.pathsUnder(to)) replaced.push(this.delete(p)!)
    moving.forEach(([, np], i) => this.set(np, records[i]))
    return { moved: moving, replaced }
  }

  clear (): void {
    this.files.clear()
    this.byId.clear()
    this.vectors = 0
    this.invalidFiles = 0
  }

  toJSON (generation: number, indexSha256?: string): CatalogJson {
    const files: CatalogJson['files'] = []
    for (const [p, r] of this.files) files.push(r.invalid === undefined ? [p, r.id, r.count, r.version] : [p, r.id, r.count, r.version, r.invalid])
    return { format: 'fsx-vector-catalog', version: 1, dim: this.dim, metric: this.metric, nextId: this.nextId, generation, ...(indexSha256 !== undefined ? { indexSha256 } : {}), vectors: this.vectors, files }
  }

  /** A catalog from its on-disk form; throws on anything malformed (the caller then rebuilds). */
  static fromJSON (j: CatalogJson): Catalog {
    if (j?.format !== 'fsx-vector-catalog' || j.version !== 1 || !Array.isArray(j.files)) throw new Error('not an fsx vector catalog')
    if (!['l2', 'cosine', 'ip'].includes(j.metric) || !Number.isInteger(j.dim) || !Number.isInteger(j.nextId)) throw new Error('malformed catalog header')
    const c = new Catalog(j.metric)
    c.dim = j.dim
    c.nextId = j.nextId
    for (const f of j.files) {
      const [p, id, count, version, invalid] = f
      if (typeof p !== 'string' || !Number.isInteger(id) || !Number.isInteger(count) || typeof version !== 'string' || id >= c.nextId) {
        throw new Error('malformed catalog entry')
      }
      c.set(p, invalid === undefined ? { id, count, version } : { id, count: 0, version, invalid: String(invalid) })
    }
    if (c.vectors !== j.vectors) throw new Error(`catalog counts ${c.vectors} vectors, its header ${j.vectors}`)
    return c
  }
}
