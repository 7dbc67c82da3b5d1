/**
 * @fsx/vector: a mount extension (core hook `fsx:mount-extensions`) that indexes the `.vec` and `.fvecs` files of
 * a mount in an HNSW graph (usearch) and answers k-nearest-neighbour searches through the mount's control socket
 * (`fsx search`, `fsx vector reindex`, `fsx vector status`). Off unless the mount has `vectorIndex`.
 *
 * No run-time import of the core: types come in with `import type`, errors are made with `ctx.kit.fsxError`.
 */
import path from 'node:path'
import type { MountExtensionDefinition } from '../../../src/extension/types.js'
import { Indexer } from './indexer.js'
import { VECTOR_OPTIONS, DEFAULT_MAX_FILE_BYTES } from './options.js'
import { MAX_DIM } from './formats.js'
import type { Metric } from './catalog.js'

export { Indexer } from './indexer.js'
export { Catalog, versionOf, keysOf, decodeKey } from './catalog.js'
export { parseVectors, formatOf, toFvecs, toText, VectorFormatError, MAX_DIM } from './formats.js'
export { VECTOR_OPTIONS } from './options.js'

/** Most neighbours one search returns; and the largest candidate list (ef) it takes. */
export const MAX_K = 10_000
export const MAX_EF = 100_000

type MakeError = (code: string, message: string) => Error

/** A search request's fields, checked: EINVAL with the reason for anything malformed. */
export function searchArgs (req: Record<string, unknown>, fail: MakeError): { query: Float32Array, k: number, ef: number, under: string } {
  const v = req.vector
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_DIM) throw fail('EINVAL', `the query must be 1 to ${MAX_DIM} numbers`)
  const query = new Float32Array(v.length)
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > 3.4028234663852886e38) throw fail('EINVAL', `query component ${i} is not a finite 32-bit number`)
    query[i] = x
  })
  const int = (name: string, dflt: number, max: number): number => {
    const n = req[name] ?? dflt
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) throw fail('EINVAL', `${name} must be a whole number from 1 to ${max}`)
    return n
  }
  const k = int('k', 10, MAX_K)
  const ef = int('ef', 64, MAX_EF)
  const given = req.under ?? '/'
  if (typeof given !== 'string' || !given.startsWith('/') || given.includes('\0')) throw fail('EINVAL', 'under must be an absolute path inside the mount')
  let under = path.posix.normalize(given)
  if (under.length > 1 && under.endsWith('/')) under = under.slice(0, -1)
  return { query, k, ef, under }
}

/** The definition registered with the core. */
export const vectorExtension: MountExtensionDefinition = {
  name: 'vector',
  summary: 'k-NN search over the .vec and .fvecs files of a mount (fsx search), indexed as they are written.',
  options: VECTOR_OPTIONS,
  enabled: settings => settings.vectorIndex === true,
  async start (ctx) {
    const s = ctx.settings
    const fail: MakeError = (code, message) => ctx.kit.fsxError(code, message)
    const ix = await Indexer.open({
      files: ctx.files,
      stateDir: ctx.stateDir,
      dim: typeof s.vectorDim === 'number' ? s.vectorDim : 0,
      metric: (s.vectorMetric as Metric | undefined) ?? 'l2',
      maxFileBytes: typeof s.vectorMaxFileSize === 'number' ? s.vectorMaxFileSize : DEFAULT_MAX_FILE_BYTES,
      log: ctx.log,
      error: fail
    })
    return {
      onCommit: change => ix.onCommit(change),
      commands: {
        search: async req => {
          const { query, k, ef, under } = searchArgs(req, fail)
          return { ...await ix.search(query, k, ef, under), metric: ix.catalog.metric }
        },
        reindex: async () => ix.reindex(),
        status: async () => ({ status: ix.status() })
      },
      stats: () => ix.figures(),
      figures: {
        vectors: { help: 'Vectors in the index.' },
        files: { help: 'Vector files in the index.' },
        invalidFiles: { help: 'Vector files left out of the index (malformed, wrong dimension, too large).' },
        dimensions: { help: 'Dimension of the indexed vectors (0 until the first is indexed).' },
        indexBytes: { help: 'Estimated memory of the index (vectors and graph links).' },
        diskBytes: { help: 'Size of the saved index file.' },
        pending: { help: 'Changes queued for the index.' },
        validating: { help: '1 while the index is being validated against the mount or rebuilt.' },
        indexed: { help: 'Files (re)indexed since the mount started.' },
        readErrors: { help: 'Vector files the index could not read (it kept what it had).' },
        searches: { help: 'Searches answered.' },
        searchErrors: { help: 'Searches that failed (bad query, engine failure).' },
        searchLatencySeconds: { help: 'Search latency quantiles.', label: 'quantile' }
      },
      close: async () => await ix.close()
    }
  }
}

export default vectorExtension
