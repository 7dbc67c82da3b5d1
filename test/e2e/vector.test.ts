/**
 * The vector plugin end to end, on real mounts (local with passthrough, and S3 on s3rver): 1,000 .vec files copied
 * in through the mount are found by `fsx search` at distance 0 (the right file and row); a deleted file drops out,
 * renamed files and directories answer under their new names; a malformed .vec is stored byte for byte and left out
 * (status and stats say so); after kill -9 of the mount process, files changed and removed behind its back, and a
 * remount, the index validates itself and answers as before. Then: Prometheus figures, a mount without the index,
 * bad queries, and the same indexing through the fuse-native engine and a Deno-served mount.
 */
import t from 'tap'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { DENO, fsx, fuseAvailable, mountFsx, sh, tempDir, type Mount } from '../helpers/mount.js'
import { waitUntil } from '../helpers/timing.js'
import { startS3Server } from '../helpers/s3-server.js'
import { createRng } from '../helpers/exerciser.js'

const DIM = 8
const FILES = 1000

/** The exerciser's seeded PRNG (mulberry32): the same numbers for the same seed in every run. */
const rng = (seed: number): () => number => createRng(seed).next

/** Numbers that are exact in float32 and in text, so a vector of the set is at distance exactly 0. */
function vector (r: () => number): number[] {
  return Array.from({ length: DIM }, () => Math.round(r() * 1600 - 800) / 8)
}

interface DataSet { files: Map<string, number[][]>, dir: string }

/** FILES files of 1–3 vectors under d0..d9/, written to a local staging directory. */
async function makeSet (seed: number, dir: string): Promise<DataSet> {
  const r = rng(seed)
  const files = new Map<string, number[][]>()
  for (let i = 0; i < FILES; i++) {
    const rel = `d${i % 10}/f${i}.vec`
    const rows = Array.from({ length: 1 + (i % 3) }, () => vector(r))
    files.set(rel, rows)
    await mkdir(path.join(dir, 'set', `d${i % 10}`), { recursive: true })
    await writeFile(path.join(dir, 'set', rel), rows.map(v => v.join(i % 2 === 0 ? ',' : ' ')).join('\n') + '\n')
  }
  return { files, dir }
}

interface Status { vectors: number, files: number, invalidFiles: number, pending: number, walk?: unknown, invalid: Array<{ path: string, reason: string }> }

async function status (m: Mount): Promise<Status> {
  const r = await fsx(['vector', 'status', m.mountpoint, '--json'])
  if (r.code !== 0) throw new Error(`fsx vector status: ${r.stderr}`)
  return JSON.parse(r.stdout).status
}

/** Until the index has applied every change and no validation runs. */
async function indexed (m: Mount, what: string): Promise<Status> {
  let s: Status | undefined
  await waitUntil(async () => { s = await status(m); return s.walk === undefined && s.pending === 0 }, { timeoutMs: 300_000, what, intervalMs: 250 })
  return s!
}

type Hit = { path: string, index: number, distance: number }

/** One `fsx search` over several query vectors (a --vector-file), nearest `k` each. */
async function searchAll (dir: string, m: Mount, queries: number[][], k = 1): Promise<Hit[][]> {
  const q = path.join(dir, `q-${Math.random().toString(36).slice(2)}.vec`)
  await writeFile(q, queries.map(v => v.join(',')).join('\n') + '\n')
  const r = await fsx(['search', m.mountpoint, '--vector-file', q, '-k', String(k), '--json'], { timeoutMs: 120_000 })
  if (r.code !== 0) throw new Error(`fsx search: ${r.stderr}`)
  const out = JSON.parse(r.stdout)
  return queries.length === 1 ? [out.results] : out.queries.map((x: { results: Hit[] }) => x.results)
}

type Tap = typeof t

/** Where the backend keeps a file, and changes made there behind the mount's back. */
interface Behind {
  get (rel: string): Promise<Buffer | undefined>
  put (rel: string, data: string): Promise<void>
  del (rel: string): Promise<void>
}

/**
 * The index a mount saved under the cache directory `cache`: its catalog (index.json) and the index file it names,
 * whose SHA-256 must be the one the catalog records. Undefined while there is none (or between a save's steps).
 */
async function savedIndex (cache: string): Promise<{ vectors: number, paths: string[], bytes: number } | undefined> {
  try {
    const root = path.join(cache, 'extensions', 'vector')
    const dirs = await readdir(root)
    if (dirs.length !== 1) return undefined
    const j = JSON.parse(await readFile(path.join(root, dirs[0], 'index.json'), 'utf8'))
    if (!(j.generation > 0)) return undefined
    const data = await readFile(path.join(root, dirs[0], `index-${String(j.generation)}.usearch`))
    if (createHash('sha256').update(data).digest('hex') !== j.indexSha256) return undefined
    return { vectors: j.vectors, paths: j.files.map((f: [string]) => f[0]), bytes: data.length }
  } catch {
    return undefined
  }
}

async function scenario (t: Tap, work: string, o: { source: string, env?: Record<string, string>, behind: Behind, seed: number }): Promise<void> {
  const set = await makeSet(o.seed, work)
  const rels = [...set.files.keys()]
  const total = [...set.files.values()].reduce((n, rows) => n + rows.length, 0)
  const cache = path.join(work, 'cache')
  const args = ['--vector-index', '--cache-dir', cache]
  const m1 = await mountFsx(t, o.source, args, { env: o.env })
  const mountpoint = m1.mountpoint

  const cp = await sh(`cp -r ${path.join(set.dir, 'set')} ${path.join(mountpoint, 'set')}`)
  t.equal(cp.code, 0, cp.stderr)
  let s = await indexed(m1, 'the copied files to be indexed')
  t.equal(s.vectors, total, `all ${total} vectors of the ${FILES} files are indexed`)
  t.equal(s.files, FILES)

  // Every 37th file's last row (so every directory has some): the exact file and row at distance 0.
  const picks = rels.filter((_, i) => i % 37 === 7).map(rel => ({ rel, row: set.files.get(rel)!.length - 1 }))
  const vec = (p: { rel: string, row: number }): number[] => set.files.get(p.rel)![p.row]
  const hits = await searchAll(work, m1, picks.map(vec))
  t.same(hits.map(h => h[0]), picks.map(p => ({ path: `/set/${p.rel}`, index: p.row, distance: 0 })), 'each vector of the set is its own nearest neighbour, at distance 0')

  // Delete, rename a file, rename a directory.
  const [gone, moved] = [picks[0], picks[1]]
  const inDir = picks.find(p => p.rel.startsWith('d3/'))!
  const ch = await sh(`rm set/${gone.rel} && mv set/${moved.rel} set/renamed.vec && mv set/d3 set/d3-moved`, mountpoint)
  t.equal(ch.code, 0, ch.stderr)
  const after = await searchAll(work, m1, [vec(gone), vec(moved), vec(inDir)])
  t.not(after[0][0]?.path, `/set/${gone.rel}`, 'a deleted file is gone from the results')
  t.ok((after[0][0]?.distance ?? 1) > 0, 'nothing else sits at its distance 0')
  t.same(after[1][0], { path: '/set/renamed.vec', index: moved.row, distance: 0 }, 'a renamed file answers under its new name')
  t.same(after[2][0], { path: `/set/${inDir.rel.replace('d3/', 'd3-moved/')}`, index: inDir.row, distance: 0 }, 'so do the files of a renamed directory')

  // A malformed .vec: stored exactly as written, left out of the index, and said so.
  const bad = '0.5,0.5,0.5,0.5,0.5,0.5,0.5,oops\n1,2\n'
  t.equal((await sh(`printf '%s' '${bad}' > set/bad.vec`, mountpoint)).code, 0, 'the write of a malformed file succeeds')
  s = await indexed(m1, 'the malformed file to be seen')
  t.equal((await o.behind.get('set/bad.vec'))?.toString(), bad, 'the backend holds it byte for byte')
  t.same(s.invalid, [{ path: '/set/bad.vec', reason: 'line 1: "oops" is not a number' }], 'the status says why it is left out')
  const stats = JSON.parse((await fsx(['stats', mountpoint, '--json'])).stdout).mounts[0]
  t.match(stats.extensions.vector, { vectors: total - set.files.get(gone.rel)!.length, invalidFiles: 1, dimensions: DIM, searches: picks.length + 3 })
  t.ok(stats.extensions.vector.indexBytes > 0, 'stats report the index size')
  t.ok(stats.extensions.vector.searchLatencySeconds['0.99'] > 0, 'and search latency quantiles')

  // kill -9, changes behind the mount's back, remount: the index validates itself and answers as before.
  const keep = picks.slice(2).filter(p => !p.rel.startsWith('d3/')).map(p => ({ ...p, path: `/set/${p.rel}` }))
  const changed = keep[0]
  const dropped = keep[1]
  const unchanged = keep.slice(2)
  const before = await searchAll(work, m1, unchanged.map(vec), 3)
  // The periodic save (within SAVE_EVERY_MS of the last change) is what the remount loads.
  const vectorsBefore = total - set.files.get(gone.rel)!.length
  let saved: Awaited<ReturnType<typeof savedIndex>>
  await waitUntil(async () => {
    saved = await savedIndex(cache)
    return saved?.vectors === vectorsBefore && saved.paths.includes('/set/bad.vec')
  }, { timeoutMs: 60_000, what: 'the index to be saved in the cache directory' })
  t.equal(saved!.paths.length, FILES, 'the saved catalog names every file, the malformed one included')
  t.ok(saved!.bytes > vectorsBefore * DIM * 4, 'the saved index file holds the vectors')
  m1.child.kill('SIGKILL')
  await new Promise(resolve => m1.child.once('exit', resolve))
  const newRow = vector(rng(o.seed + 1))
  await o.behind.put(`set/${changed.rel}`, newRow.join(',') + '\n')
  await o.behind.del(`set/${dropped.rel}`)
  const m2 = await mountFsx(t, o.source, args, { env: o.env, mountpoint })
  s = await indexed(m2, 'the validation after the restart')
  t.match(m2.log(), `vector: validating the index (${vectorsBefore} vectors in ${FILES} files) against the mount`, 'the remount loaded the saved index')
  t.match(m2.log(), /vector: validation done/, 'and validated it against the backend')
  const figures = JSON.parse((await fsx(['stats', mountpoint, '--json'])).stdout).mounts[0].extensions.vector
  t.equal(figures.indexed, 1, 'the validation re-read only the file changed behind the mount\'s back')
  t.same(await searchAll(work, m2, unchanged.map(vec), 3), before, 'after kill -9 and a remount the index answers the same')
  const back = await searchAll(work, m2, [newRow, vec(dropped)])
  t.same(back[0][0], { path: changed.path, index: 0, distance: 0 }, 'a file changed while unmounted is re-indexed')
  t.not(back[1][0]?.path, dropped.path, 'a file removed while unmounted is dropped')
  t.equal(s.invalidFiles, 1, 'the malformed file is still left out')
  const vectorsAfter = vectorsBefore - set.files.get(changed.rel)!.length + 1 - set.files.get(dropped.rel)!.length
  t.equal(s.vectors, vectorsAfter)
  t.equal(await m2.stop(), 0, 'clean unmount')
  t.equal((await savedIndex(cache))?.vectors, vectorsAfter, 'a clean unmount saves the index')
  t.notMatch(m2.log(), /saving the index failed/)
}

if (fuseAvailable(t)) {
  t.test('local mount (passthrough): index on write, search, delete, rename, malformed, kill -9 and remount', async t => {
    const data = await tempDir(t, 'fsx-data-')
    const work = await tempDir(t, 'fsx-vector-')
    await scenario(t, work, {
      source: data,
      seed: 1201,
      behind: {
        get: async rel => await readFile(path.join(data, rel)).catch(() => undefined),
        put: async (rel, text) => await writeFile(path.join(data, rel), text),
        del: async rel => await rm(path.join(data, rel))
      }
    })
  })

  const s3 = await startS3Server(t)
  if (s3 !== undefined) {
    t.test('S3 mount: index on write, search, delete, rename, malformed, kill -9 and remount', async t => {
      const sdk = s3.client()
      const key = (rel: string): string => `vec/${rel}`
      const work = await tempDir(t, 'fsx-vector-')
      await scenario(t, work, {
        source: `s3://${s3.bucket}/vec`,
          env: s3.env,
        seed: 1202,
        behind: {
          get: async rel => {
            try {
              return Buffer.from(await (await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key(rel) }))).Body!.transformToByteArray())
            } catch {
              return undefined
            }
          },
          put: async (rel, text) => { await sdk.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key(rel), Body: text })) },
          del: async rel => { await sdk.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(rel) })) }
        }
      })
    })
  }

  t.test('figures in Prometheus; bad queries; a mount without the index says so', async t => {
    const data = await tempDir(t, 'fsx-data-')
    const work = await tempDir(t, 'fsx-vector-')
    const m = await mountFsx(t, data, ['--vector-index', '--cache-dir', path.join(work, 'cache'), '--metrics-addr', '127.0.0.1:0'])
    const url = /metrics at (http:\/\/\S+)/.exec(m.log())?.[1]
    t.ok(url, 'the metrics endpoint is announced')
    t.equal((await sh('printf "1,2,3\\n4,5,6\\n" > a.vec && printf "7 8 10\\n" > b.fvecs.vec', m.mountpoint)).code, 0)
    const ok = await fsx(['search', m.mountpoint, '--vector', '4,5,6', '-k', '2'])
    t.equal(ok.code, 0, ok.stderr)
    // (4,5,6) is row 1 of a.vec; row 0 (1,2,3) is at √27, b.fvecs.vec (a text file: the name ends in .vec) at √34.
    t.match(ok.stdout, /distance\s+vector\s+path\n\s+0\s+1\s+\/a\.vec\n\s+5\.1962\s+0\s+\/a\.vec\n/, 'a readable table, nearest first')
    const text = await (await fetch(url!)).text()
    t.match(text, new RegExp(`fsx_vector_vectors\\{mountpoint="${m.mountpoint}"\\} 3`), 'vectors indexed')
    t.match(text, /fsx_vector_searches\{[^}]*\} 1/, 'searches answered')
    t.match(text, /fsx_vector_search_latency_seconds\{[^}]*quantile="0.99"[^}]*\} \d/, 'search latency quantiles')
    t.match(text, /fsx_vector_index_bytes\{[^}]*\} [1-9]/, 'index memory')

    const wrongDim = await fsx(['search', m.mountpoint, '--vector', '1,2'])
    t.equal(wrongDim.code, 2, 'a query of the wrong dimension is a bad command line')
    t.match(wrongDim.stderr, /^fsx: EINVAL: the query has 2 numbers; the index holds 3-dimensional vectors\n$/)
    const notNumber = await fsx(['search', m.mountpoint, '--vector', '1,x,3'])
    t.equal(notNumber.code, 2)
    t.match(notNumber.stderr, /^fsx: EINVAL: --vector "1,x,3" is not a vector: "x" is not a number\n$/)
    const missing = await fsx(['search', m.mountpoint, '--vector-file', path.join(work, 'nope.vec')])
    t.equal(missing.code, 2)
    t.match(missing.stderr, /^fsx: ENOENT: cannot read the query file .*nope\.vec\n$/)
    const both = await fsx(['search', m.mountpoint])
    t.equal(both.code, 2, 'one of --vector and --vector-file is required')

    const plain = await mountFsx(t, await tempDir(t, 'fsx-data-'), [])
    const off = await fsx(['search', plain.mountpoint, '--vector', '1,2,3'])
    t.equal(off.code, 1)
    t.match(off.stderr, /does not index vectors \(mount it with --vector-index/)
    const notMount = await fsx(['search', work, '--vector', '1'])
    t.not(notMount.code, 0)
    t.match(notMount.stderr, /is not an fsx mount/)
  })

  const small = async (t: Tap, m: Mount, data: string, work: string): Promise<void> => {
    const r = await sh(`mkdir -p a && for i in $(seq 1 40); do printf "$i,1,2\\n" > a/v$i.vec; done && mv a b`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    const s = await indexed(m, 'the files to be indexed')
    t.equal(s.vectors, 40)
    const hits = await searchAll(work, m, [[17, 1, 2]], 2)
    t.same(hits[0], [{ path: '/b/v17.vec', index: 0, distance: 0 }, hits[0][1]], 'found under its renamed directory')
    t.equal(hits[0][1].distance, 1)
    t.equal(await readFile(path.join(data, 'b/v17.vec'), 'utf8'), '17,1,2\n')
  }

  t.test('the fuse-native engine tells the index the same commits', async t => {
    const data = await tempDir(t, 'fsx-data-')
    const work = await tempDir(t, 'fsx-vector-')
    const m = await mountFsx(t, data, ['--vector-index', '--engine', 'fuse-native', '--cache-dir', path.join(work, 'cache')])
    await small(t, m, data, work)
  })

  t.test('a mount served by Deno indexes and searches (usearch on a Deno worker)', { skip: existsSync(DENO) ? false : `Deno is not installed at ${DENO}` }, async t => {
    const data = await tempDir(t, 'fsx-data-')
    const work = await tempDir(t, 'fsx-vector-')
    const m = await mountFsx(t, data, ['--vector-index', '--cache-dir', path.join(work, 'cache')], { deno: true })
    await small(t, m, data, work)
  })
}
