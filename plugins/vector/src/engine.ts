/**
 * The mount thread's side of the index engine: starts the worker (engine-worker.ts), sends it requests and matches
 * the answers. Every request resolves or rejects; if the worker dies, everything pending and everything after fails
 * with EIO until `restart`.
 */
import { Worker } from 'node:worker_threads'
import type { Metric } from './catalog.js'

/** HNSW graph degree (usearch "connectivity", hnswlib's M): 16 is the usual balance of recall, memory and speed. */
export const CONNECTIVITY = 16
/**
 * Candidate list while inserting (efConstruction). With 128, recall@10 on bench/vector.js's clustered 100,000 × 128
 * set is 0.980 at ef 64 and 0.997 at ef 128 (README); a smaller value inserts faster and finds less.
 */
export const EXPANSION_ADD = 128

/** What the worker is asked; `id` in index/remove is the file version's id (catalog.ts). */
export type EngineOp =
  | { op: 'open', dim: number, metric: Metric, connectivity: number, expansionAdd: number, file?: string, sha256?: string }
  | { op: 'index', id: number, format: string, bytes: Uint8Array, expectDim: number, replace?: { id: number, count: number } }
  | { op: 'remove', id: number, count: number }
  | { op: 'search', query: Float32Array, wanted: number }
  | { op: 'save', file: string }
  | { op: 'stats' }

/** A request as posted: the op and its message number, which the reply carries back. */
export type EngineRequest = EngineOp & { msg: number }

export type EngineReply = { msg: number, ok: true, result: unknown } | { msg: number, ok: false, error: string }

export type IndexResult = { dim: number, count: number } | { invalid: string }

export class EngineError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
  }
}

export class Engine {
  private worker?: Worker
  private nextMsg = 1
  private readonly pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  /** Why the worker stopped, once it has. */
  failed?: string

  constructor () {
    this.start()
  }

  private start (): void {
    this.failed = undefined
    // NB: no inherited execArgv: a test runner's --import loaders would be loaded again in the thread (seconds).
    const w = new Worker(new URL('./engine-worker.js', import.meta.url), { execArgv: [] })
    this.worker = w
    w.unref()
    w.on('message', (m: EngineReply) => {
      const p = this.pending.get(m.msg)
      if (p === undefined) return
      this.pending.delete(m.msg)
      if (this.pending.size === 0) w.unref()
      if (m.ok) p.resolve(m.result)
      else p.reject(new EngineError('EIO', m.error))
    })
    const fail = (why: string): void => {
      if (this.worker !== w) return
      this.failed = why
      this.worker = undefined
      for (const p of this.pending.values()) p.reject(new EngineError('EIO', `the index engine stopped: ${why}`))
      this.pending.clear()
    }
    w.on('error', err => fail(err.message))
    w.on('exit', code => fail(`its thread exited (${code})`))
  }

  /** A new worker (after a failure): its index is empty until `open`. */
  restart (): void {
    const old = this.worker
    this.worker = undefined
    void old?.terminate()
    this.start()
  }

  private async send<T> (req: EngineOp): Promise<T> {
    const w = this.worker
    if (w === undefined) throw new EngineError('EIO', `the index engine stopped: ${this.failed ?? 'closed'}`)
    const msg = this.nextMsg++
    // The worker keeps the process alive only while it owes an answer.
    if (this.pending.size === 0) w.ref()
    return await new Promise<T>((resolve, reject) => {
      this.pending.set(msg, { resolve, reject })
      w.postMessage({ ...req, msg } satisfies EngineRequest)
    })
  }

  /**
   * An empty index of `dim` dimensions (none yet when 0), or the one saved in `file`, which must have the SHA-256
   * `save` reported; resolves with its size.
   */
  async open (dim: number, metric: Metric, saved?: { file: string, sha256: string }): Promise<number> {
    const r = await this.send<{ size: number }>({ op: 'open', dim, metric, connectivity: CONNECTIVITY, expansionAdd: EXPANSION_ADD, file: saved?.file, sha256: saved?.sha256 })
    return r.size
  }

  /** Parses a file's bytes and adds its vectors under version `id`, first removing `replace`'s. */
  async index (id: number, format: string, bytes: Uint8Array, expectDim: number, replace?: { id: number, count: number }): Promise<IndexResult> {
    return await this.send<IndexResult>({ op: 'index', id, format, bytes, expectDim, replace })
  }

  async remove (id: number, count: number): Promise<void> {
    if (count > 0) await this.send({ op: 'remove', id, count })
  }

  /** The `wanted` nearest keys (HNSW candidate list of that size), nearest first, with the metric's raw distances. */
  async search (query: Float32Array, wanted: number): Promise<{ keys: BigUint64Array, distances: Float32Array }> {
    return await this.send({ op: 'search', query, wanted })
  }

  /** Writes the index to `file`; resolves with its SHA-256, or undefined when there is no index yet (no dimension known). */
  async save (file: string): Promise<string | undefined> {
    return (await this.send<{ saved: boolean, sha256?: string }>({ op: 'save', file })).sha256
  }

  async stats (): Promise<{ size: number, capacity: number }> {
    return await this.send({ op: 'stats' })
  }

  async close (): Promise<void> {
    const w = this.worker
    this.worker = undefined
    this.failed = 'closed'
    for (const p of this.pending.values()) p.reject(new EngineError('EIO', 'the index engine was closed'))
    this.pending.clear()
    await w?.terminate()
  }
}
