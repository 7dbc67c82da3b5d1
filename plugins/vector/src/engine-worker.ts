/**
 * The index engine's thread (a worker_threads worker, Node and Deno alike): owns the usearch HNSW index, parses
 * vector files and adds, removes, searches and saves — all synchronous native calls that must not run on the
 * mount's JavaScript thread, which serves FUSE.
 *
 * Requests are answered one at a time in arrival order, except that a search arriving while a large file is being
 * added runs between its chunks (ADD_CHUNK vectors): a search waits for at most one chunk, never a whole file.
 * Searches only read the index, and the chunked add yields between native calls, so they never overlap a mutation.
 */
import { parentPort } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { setImmediate } from 'node:timers'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Index, MetricKind, ScalarKind } from 'usearch'
import { parseVectors, VectorFormatError, type VectorFormat } from './formats.js'
import { keysOf } from './catalog.js'
import type { EngineReply, EngineRequest } from './engine.js'

/**
 * Vectors per native add call. Each call holds this thread, so a search waits for one chunk at most: 1024 vectors
 * of dimension 128 take some 50–200 ms on a busy two-core machine.
 */
const ADD_CHUNK = 1024
/**
 * Threads of one native add. usearch inserts in parallel; all cores is what a rebuild wants, and the FUSE thread
 * still gets its share from the OS scheduler (indexing runs only while there are vector files to index).
 */
const ADD_THREADS = Math.max(1, availableParallelism())

const METRICS: Record<string, MetricKind> = { l2: MetricKind.L2sq, cosine: MetricKind.Cos, ip: MetricKind.IP }

interface Config { metric: string, connectivity: number, expansionAdd: number }

let config: Config | undefined
let index: Index | undefined

function create (dim: number): Index {
  // expansion_search 1: the search's own `wanted` (max(k, ef)) is then the HNSW candidate list size (ef).
  return new Index({ dimensions: dim, metric: METRICS[config!.metric], quantization: ScalarKind.F32, connectivity: config!.connectivity, expansion_add: config!.expansionAdd, expansion_search: 1, multi: false })
}

function sha256 (file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

async function handle (req: EngineRequest): Promise<unknown> {
  switch (req.op) {
    case 'open': {
      config = { metric: req.metric, connectivity: req.connectivity, expansionAdd: req.expansionAdd }
      index = undefined
      if (req.dim > 0) {
        index = create(req.dim)
        if (req.file !== undefined) {
          // NB: usearch crashes the whole process on a file that is not an index; only load what we saved.
          if (sha256(req.file) !== req.sha256) throw new Error('the index file is not the one its catalog names (checksum)')
          index.load(req.file)
        }
      }
      return { size: index?.size() ?? 0 }
    }
    case 'index': {
      if (req.replace !== undefined && req.replace.count > 0) index?.remove(keysOf(req.replace.id, req.replace.count))
      let v
      try {
        v = parseVectors(req.format as VectorFormat, req.bytes, req.expectDim)
      } catch (err) {
        if (err instanceof VectorFormatError) return { invalid: err.message }
        throw err
      }
      if (v.count === 0) return { dim: v.dim, count: 0 }
      index ??= create(v.dim)
      const keys = keysOf(req.id, v.count)
      for (let at = 0; at < v.count; at += ADD_CHUNK) {
        const n = Math.min(ADD_CHUNK, v.count - at)
        index.add(keys.subarray(at, at + n), v.data.subarray(at * v.dim, (at + n) * v.dim), ADD_THREADS)
        if (at + n < v.count) await tick()
      }
      return { dim: v.dim, count: v.count }
    }
    case 'remove':
      if (index !== undefined && req.count > 0) index.remove(keysOf(req.id, req.count))
      return {}
    case 'search': {
      if (index === undefined || index.size() === 0) return { keys: new BigUint64Array(0), distances: new Float32Array(0) }
      const m = index.search(req.query, Math.min(req.wanted, index.size()), 1)
      return { keys: m.keys, distances: m.distances }
    }
    case 'save':
      if (index === undefined) return { saved: false }
      index.save(req.file)
      return { saved: true, sha256: sha256(req.file) }
    case 'stats':
      return { size: index?.size() ?? 0, capacity: index?.capacity() ?? 0 }
  }
}

// Mutations in arrival order; searches jump the queue (see the header).
let chain: Promise<void> = Promise.resolve()
parentPort!.on('message', (req: EngineRequest) => {
  const run = async (): Promise<void> => {
    let reply: EngineReply
    try {
      reply = { msg: req.msg, ok: true, result: await handle(req) }
    } catch (err) {
      reply = { msg: req.msg, ok: false, error: (err as Error)?.message ?? String(err) }
    }
    parentPort!.postMessage(reply)
  }
  if (req.op === 'search' || req.op === 'stats') void run()
  else chain = chain.then(run)
})
