import { Args, Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { CliError, VectorCommand } from '../cli.js'
import { formatOf, parseVectors, VectorFormatError, type Vectors } from '../formats.js'
import { MAX_EF, MAX_K } from '../index.js'

interface Hit { path: string, index: number, distance: number }

export default class Search extends VectorCommand {
  static summary = 'Find the vectors nearest to a query among the .vec and .fvecs files of a mount (k-NN, HNSW).'
  static description = 'The mount must index vectors (fsx mount --vector-index). The answer reflects every vector file ' +
    'written (closed or fsynced) through the mount before the search. Distances follow vectorMetric: l2 (Euclidean), ' +
    'cosine (1 - cosine similarity) or ip (1 - inner product); smaller is nearer.'

  static examples = [
    '<%= config.bin %> search ./mnt --vector 1.5,2.5,3.5',
    '<%= config.bin %> search ./mnt --vector-file query.vec -k 5 --json',
    '<%= config.bin %> search ./mnt --vector "0.1 0.2 0.3" --under /images --ef 128'
  ]

  static args = {
    mountpoint: Args.string({ required: true, description: 'a running fsx mount with --vector-index' })
  }

  static flags = {
    vector: Flags.string({ summary: 'The query: numbers separated by commas or spaces.', exactlyOne: ['vector', 'vector-file'] }),
    'vector-file': Flags.string({ summary: 'Read the query from a .vec (text) or .fvecs file; every vector in it is one query.', helpValue: 'FILE' }),
    k: Flags.integer({ char: 'k', summary: 'How many neighbours.', default: 10, min: 1, max: MAX_K }),
    ef: Flags.integer({ summary: 'HNSW candidate list size: larger finds more of the true neighbours, more slowly.', default: 64, min: 1, max: MAX_EF }),
    under: Flags.string({ summary: 'Only files at or below this directory (a path inside the mount, e.g. /docs, or ./mnt/docs).', helpValue: 'PATH' }),
    json: Flags.boolean({ summary: 'Print {"results": [{"path", "index", "distance"}]} (with several queries: {"queries": [{"results"}]}).' })
  }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Search)
    const mountpoint = path.resolve(args.mountpoint)
    const queries = flags.vector !== undefined ? queryFromText(flags.vector) : await queryFromFile(flags['vector-file']!)
    const under = flags.under === undefined ? undefined : insideMount(mountpoint, flags.under)
    const answers: Array<{ results: Hit[], pending: number, metric: string }> = []
    for (let q = 0; q < queries.count; q++) {
      const vector = Array.from(queries.data.subarray(q * queries.dim, (q + 1) * queries.dim))
      // A query the mount refuses (EINVAL: wrong dimension) is a bad command line (exit 2); a failed search is not.
      answers.push(await this.vector(mountpoint, 'search', { vector, k: flags.k, ef: flags.ef, under }, { refusedExit: code => code === 'EINVAL' ? 2 : 1 }) as any)
    }
    const pending = Math.max(...answers.map(a => a.pending ?? 0))
    if (pending > 0) process.stderr.write(`fsx: note: ${pending} changes were still being indexed; the answer may miss them\n`)
    if (flags.json) {
      const out = answers.map(a => ({ results: a.results }))
      this.log(JSON.stringify(out.length === 1
        ? { mountpoint, metric: answers[0].metric, k: flags.k, results: out[0].results }
        : { mountpoint, metric: answers[0]?.metric, k: flags.k, queries: out }, null, 2))
      return
    }
    answers.forEach((a, q) => {
      if (answers.length > 1) this.log(`${q > 0 ? '\n' : ''}query ${q}:`)
      if (a.results.length === 0) { this.log('  no vectors indexed' + (under !== undefined ? ` under ${under}` : '')); return }
      const w = Math.max(8, ...a.results.map(r => formatDistance(r.distance).length))
      this.log(`  ${'distance'.padStart(w)}  vector  path`)
      for (const r of a.results) this.log(`  ${formatDistance(r.distance).padStart(w)}  ${String(r.index).padStart(6)}  ${r.path}`)
    })
  }
}

function formatDistance (d: number): string {
  return d === 0 ? '0' : Math.abs(d) >= 1e-3 && Math.abs(d) < 1e6 ? d.toFixed(4) : d.toExponential(3)
}

/** The query vector from `--vector` text: exactly one vector. */
function queryFromText (text: string): Vectors {
  let v: Vectors
  try {
    v = parseVectors('text', Buffer.from(text.replace(/^\s*\[|\]\s*$/g, '')))
  } catch (err) {
    if (err instanceof VectorFormatError) throw new CliError('EINVAL', `EINVAL: --vector ${JSON.stringify(text)} is not a vector: ${err.message.replace(/^line 1: /, '')}`, 2)
    throw err
  }
  if (v.count !== 1) throw new CliError('EINVAL', `EINVAL: --vector must hold exactly one vector (${v.count} given)`, 2)
  return v
}

/** The query vectors of `--vector-file` (.fvecs by name, else text). */
async function queryFromFile (file: string): Promise<Vectors> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EIO'
    throw new CliError(code, `${code}: cannot read the query file ${file}`, code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES' ? 2 : 1)
  }
  let v: Vectors
  try {
    v = parseVectors(formatOf(file) ?? 'text', bytes)
  } catch (err) {
    if (err instanceof VectorFormatError) throw new CliError('EINVAL', `EINVAL: ${file} is not a vector file: ${err.message}`, 2)
    throw err
  }
  if (v.count === 0) throw new CliError('EINVAL', `EINVAL: ${file} holds no vector`, 2)
  return v
}

/** `--under` as a path inside the mount: a path below the mountpoint is made relative to it, others are taken as mount paths. */
export function insideMount (mountpoint: string, given: string): string {
  const resolved = path.resolve(given)
  if (resolved === mountpoint) return '/'
  if (resolved.startsWith(mountpoint + '/')) return resolved.slice(mountpoint.length)
  return path.posix.normalize('/' + given.replace(/^\.?\/+/, ''))
}
