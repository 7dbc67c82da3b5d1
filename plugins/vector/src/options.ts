/**
 * The vector plugin's settings: rows for the core's options table (key vectorX ⇔ flag --vector-x ⇔ env
 * FSX_VECTOR_X), resolved by the core (default < preset < config < env < flag) and handed to `start()` in base units.
 */
import type { OptionSpec } from '../../../src/config/options.js'
import { MAX_DIM } from './formats.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** Default largest file indexed: a 256 MiB .fvecs holds 500,000 vectors of dimension 128. */
export const DEFAULT_MAX_FILE_BYTES = 256 * MiB

export const VECTOR_OPTIONS: OptionSpec[] = [
  {
    key: 'vectorIndex', kind: 'boolean', default: false, scope: 'vector',
    help: 'Index the .vec and .fvecs files of this mount for k-nearest-neighbour search (fsx search).',
    details: 'A file is (re)indexed when its write is committed (close or fsync), dropped when it is deleted and ' +
      'moved when it is renamed; files are always stored exactly as written. The index lives under cacheDir, ' +
      'survives restarts and is validated against the mount when it is mounted.'
  },
  {
    key: 'vectorDim', kind: 'count', default: 0, scope: 'vector', min: 1, max: MAX_DIM, zeroMeansOff: true,
    help: 'Dimension of the indexed vectors (0: fixed by the first vector indexed); files of another dimension are left out.'
  },
  {
    key: 'vectorMetric', kind: 'enum', default: 'l2', choices: ['l2', 'cosine', 'ip'], scope: 'vector',
    help: 'Distance of fsx search: l2 (Euclidean), cosine (1 - cosine similarity) or ip (1 - inner product).',
    details: 'Changing it (or vectorDim) rebuilds the index at the next mount.'
  },
  {
    key: 'vectorMaxFileSize', kind: 'size', default: DEFAULT_MAX_FILE_BYTES, scope: 'vector', min: 1024, max: 4 * GiB,
    help: 'Vector files larger than this are stored but left out of the index (the whole file is read to index it).'
  }
]
