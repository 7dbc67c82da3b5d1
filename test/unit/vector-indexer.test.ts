// The vector index of one mount (plugins/vector/src/indexer.ts) on an in-memory file tree standing in for the
// mount: commit events index, drop and move files; searches are exact for vectors in the set; invalid files are
// left out with their reason; the index persists and is validated against the files when opened again; renames
// that race a read still end with the new name indexed. The real engine (usearch on its worker thread) runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Indexer, toFvecs, toText } from '../../plugins/vector/dist/index.js'
import { tempDirs } from './helpers/tmp.ts'

const tmp = tempDirs()

function fsErr (code: string, p: string): Error {
  return Object.assign(new Error(`${code}: ${p}`), { code })
}

/** A tree of files in memory, shaped like the extension's MountFiles. */
class MemFiles {
  readonly files = new Map<string, { data: Buffer, mtimeMs: number }>()
  reads = 0
  private t = 1_000_000
  /** Called before a read returns: lets a test stage a race. */
  beforeRead?: (p: string) => Promise<void>

  put (p: string, data: string | Buffer): void { this.files.set(p, { data: Buffer.from(data), mtimeMs: ++this.t }) }
  move (from: string, to: string): void {
    for (const [p, f] of [...this.files]) {
      if (p === from || p.startsWith(from + '/')) { this.files.delete(p); this.files.set(to + p.slice(from.length), f) }
    }
  }

  private isDir (p: string): boolean { return p === '/' || [...this.files.keys()].some(f => f.startsWith(p + '/')) }
  private fileStat (f: { data: Buffer, mtimeMs: number }) {
    return { kind: 'file' as const, size: f.data.length, mode: 0o100644, uid: 0, gid: 0, nlink: 1, atimeMs: f.mtimeMs, mtimeMs: f.mtimeMs, ctimeMs: f.mtimeMs }
  }

  async stat (p: string) {
    const f = this.files.get(p)
    if (f !== undefined) return this.fileStat(f)
    if (this.isDir(p)) return { kind: 'dir' as const, size: 0, mode: 0o40755, uid: 0, gid: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 }
    throw fsErr('ENOENT', p)
  }

  async list (dir: string) {
    const base = dir === '/' ? '/' : dir + '/'
    const out = new Map<string, any>()
    for (const [p, f] of this.files) {
      if (!p.startsWith(base)) continue
      const rest = p.slice(base.length)
      const name = rest.split('/')[0]
      out.set(name, rest.includes('/') ? { name } : { name, stat: this.fileStat(f) })
    }
    return [...out.values()]
  }

  async read (p: string, max = Infinity) {
    this.reads++
    const f = this.files.get(p)
    await this.beforeRead?.(p)
    const now = this.files.get(p)
    if (f === undefined || now === undefined) throw fsErr('ENOENT', p)
    if (now.data.length > max) throw fsErr('EFBIG', p)
    return Buffer.from(now.data)
  }
}

async function open (files: MemFiles, o: { stateDir?: string, dim?: number, metric?: 'l2' | 'cosine' | 'ip', maxFileBytes?: number } = {}) {
  const lines: string[] = []
  const stateDir = o.stateDir ?? await tmp('fsx-vector-')
  const ix = await Indexer.open({
    files: files as any,
    stateDir,
    dim: o.dim ?? 0,
    metric: o.metric ?? 'l2',
    maxFileBytes: o.maxFileBytes ?? 1 << 20,
    log: l => lines.push(l),
    error: (code, message) => Object.assign(new Error(message), { code })
  })
  await settle(ix)
  return { ix, lines, stateDir }
}

/** Until the walk at open is done and nothing is queued. */
async function settle (ix: Indexer): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const s = ix.status()
    if (s.walk === undefined && s.pending === 0) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error('the index never settled')
}

const search = async (ix: Indexer, q: number[], k = 3, under?: string) =>
  (await ix.search(new Float32Array(q), k, 64, under)).results.map(r => [r.path, r.index, Number(r.distance.toFixed(4))])

test('written files are found at distance 0; removed ones vanish; renamed ones answer under their new name', async () => {
  const files = new MemFiles()
  const { ix } = await open(files)
  try {
    files.put('/a.vec', '0,0,0\n3,4,0\n')
    files.put('/d/b.vec', '10,10,10\n')
    ix.onCommit({ kind: 'write', path: '/a.vec' })
    ix.onCommit({ kind: 'write', path: '/d/b.vec' })
    // No waiting here: a search sees every write committed before it.
    assert.deepEqual(await search(ix, [3, 4, 0]), [['/a.vec', 1, 0], ['/a.vec', 0, 5], ['/d/b.vec', 0, 13.6015]])
    files.move('/d', '/e')
    ix.onCommit({ kind: 'rename', from: '/d', to: '/e' })
    files.files.delete('/a.vec')
    ix.onCommit({ kind: 'remove', path: '/a.vec' })
    assert.deepEqual(await search(ix, [3, 4, 0]), [['/e/b.vec', 0, 13.6015]])
    files.move('/e/b.vec', '/e/b.txt')
    ix.onCommit({ kind: 'rename', from: '/e/b.vec', to: '/e/b.txt' })
    assert.deepEqual(await search(ix, [3, 4, 0]), [], 'renamed to a name that is not a vector file: out of the index')
    files.put('/c.vec.tmp', '1,1,1\n')
    ix.onCommit({ kind: 'write', path: '/c.vec.tmp' })
    files.move('/c.vec.tmp', '/c.vec')
    ix.onCommit({ kind: 'rename', from: '/c.vec.tmp', to: '/c.vec' })
    assert.deepEqual(await search(ix, [1, 1, 1]), [['/c.vec', 0, 0]], 'a temporary name renamed into place is indexed')
    const f = ix.figures()
    assert.equal(f.vectors, 1)
    assert.equal(f.files, 1)
    assert.equal(f.searches, 4)
    assert.deepEqual(Object.keys(f.searchLatencySeconds as object), ['0.5', '0.95', '0.99'])
  } finally {
    await ix.close()
  }
})

test('an invalid file is left out with its reason, in the log and the status; fixing it indexes it', async () => {
  const files = new MemFiles()
  const { ix, lines } = await open(files)
  try {
    files.put('/good.vec', '1,2\n')
    files.put('/bad.vec', '1,2\n3,x\n')
    files.put('/wide.vec', '1,2,3\n')
    files.put('/big.fvecs', toFvecs([[1, 2]]))
    for (const p of ['/good.vec', '/bad.vec', '/wide.vec', '/big.fvecs']) ix.onCommit({ kind: 'write', path: p })
    assert.deepEqual((await search(ix, [1, 2], 5)).sort(), [['/big.fvecs', 0, 0], ['/good.vec', 0, 0]])
    const s = ix.status()
    assert.equal(s.dim, 2, 'fixed by the first vector indexed')
    assert.equal(s.invalidFiles, 2)
    assert.deepEqual(s.invalid.sort((a, b) => a.path.localeCompare(b.path)), [
      { path: '/bad.vec', reason: 'line 2: "x" is not a number' },
      { path: '/wide.vec', reason: "dimension 3 does not match the index's 2" }
    ])
    assert.match(lines.join('\n'), /\/bad\.vec is left out of the index: line 2: "x" is not a number/)
    await assert.rejects(ix.search(new Float32Array([1, 2, 3]), 3, 64), { code: 'EINVAL', message: /the query has 3 numbers; the index holds 2-dimensional vectors/ })
    files.put('/bad.vec', '3,4\n')
    ix.onCommit({ kind: 'write', path: '/bad.vec' })
    assert.deepEqual(await search(ix, [3, 4], 1), [['/bad.vec', 0, 0]])
    assert.equal(ix.status().invalidFiles, 1)
    assert.equal(ix.figures().searchErrors, 1)
  } finally {
    await ix.close()
  }
})

test('vectorDim fixes the dimension up front; a file over vectorMaxFileSize is left out', async () => {
  const files = new MemFiles()
  const { ix } = await open(files, { dim: 3, maxFileBytes: 64 })
  try {
    files.put('/two.vec', '1,2\n')
    files.put('/three.vec', '1,2,3\n')
    files.put('/huge.vec', '1,2,3\n'.repeat(20))
    for (const p of ['/two.vec', '/three.vec', '/huge.vec']) ix.onCommit({ kind: 'write', path: p })
    assert.deepEqual(await search(ix, [1, 2, 3], 5), [['/three.vec', 0, 0]])
    assert.match(ix.status().invalid.map(i => `${i.path} ${i.reason}`).join('\n'), /\/huge\.vec larger than vectorMaxFileSize \(64 bytes\)/)
  } finally {
    await ix.close()
  }
})

test('metrics: cosine and inner-product distances', async () => {
  const files = new MemFiles()
  files.put('/v.vec', '1,0\n0,1\n2,0\n')
  for (const [metric, want] of [['cosine', [0, 0, 1]], ['ip', [0, -1, 1]]] as const) {
    const { ix } = await open(files, { metric })
    try {
      const r = await ix.search(new Float32Array([1, 0]), 3, 64)
      const byRow = new Map(r.results.map(h => [h.index, Number(h.distance.toFixed(4))]))
      assert.deepEqual([byRow.get(0), byRow.get(2), byRow.get(1)], want, metric)
    } finally {
      await ix.close()
    }
  }
})

test('--under keeps to a directory even when nearer vectors lie elsewhere', async () => {
  const files = new MemFiles()
  const { ix } = await open(files)
  try {
    for (let i = 0; i < 200; i++) {
      const p = i < 195 ? `/near/f${i}.vec` : `/far/f${i}.vec`
      files.put(p, `${i},${i}\n`)
      ix.onCommit({ kind: 'write', path: p })
    }
    const r = await search(ix, [0, 0], 3, '/far')
    assert.deepEqual(r.map(x => x[0]), ['/far/f195.vec', '/far/f196.vec', '/far/f197.vec'])
    assert.deepEqual(await search(ix, [0, 0], 3, '/nowhere'), [])
  } finally {
    await ix.close()
  }
})

test('persistence: a reopened index answers the same without reading unchanged files again', async () => {
  const files = new MemFiles()
  const first = await open(files)
  for (let i = 0; i < 50; i++) {
    files.put(`/s/${i}.vec`, `${i},${i * 2},${i % 7}\n${-i},1,1\n`)
    first.ix.onCommit({ kind: 'write', path: `/s/${i}.vec` })
  }
  const before = await search(first.ix, [7, 14, 0], 5)
  await first.ix.close()
  assert.ok((await readdir(first.stateDir)).some(f => /^index-\d+\.usearch$/.test(f)), 'an index file is saved at close')
  files.reads = 0
  const second = await open(files, { stateDir: first.stateDir })
  try {
    assert.deepEqual(await search(second.ix, [7, 14, 0], 5), before)
    assert.equal(files.reads, 0, 'validation found nothing changed')
    assert.equal(second.ix.status().vectors, 100)
    assert.match(second.lines.join('\n'), /validation done/)
  } finally {
    await second.ix.close()
  }
})

test('validation at open: files changed, added and removed while closed are re-indexed, indexed and dropped', async () => {
  const files = new MemFiles()
  const first = await open(files)
  for (const p of ['/keep.vec', '/change.vec', '/gone.vec']) {
    files.put(p, p === '/keep.vec' ? '1,1\n' : p === '/change.vec' ? '2,2\n' : '3,3\n')
    first.ix.onCommit({ kind: 'write', path: p })
  }
  await search(first.ix, [0, 0])
  await first.ix.close()
  files.put('/change.vec', '5,5\n')
  files.files.delete('/gone.vec')
  files.put('/new/added.vec', '3,3\n')
  files.reads = 0
  const second = await open(files, { stateDir: first.stateDir })
  try {
    assert.deepEqual(await search(second.ix, [3, 3], 5), [['/new/added.vec', 0, 0], ['/change.vec', 0, 2.8284], ['/keep.vec', 0, 2.8284]].sort((a, b) => (a[2] as number) - (b[2] as number) || String(a[0]).localeCompare(String(b[0]))))
    assert.equal(files.reads, 2, 'only the changed and the added file were read')
  } finally {
    await second.ix.close()
  }
})

test('a saved index that cannot be used is rebuilt from the files: another metric, a damaged index file', async () => {
  const files = new MemFiles()
  files.put('/a.vec', '1,0\n')
  const first = await open(files)
  await first.ix.close()
  const other = await open(files, { stateDir: first.stateDir, metric: 'cosine' })
  await other.ix.close()
  assert.match(other.lines.join('\n'), /rebuilding the index from the mount: vectorMetric changed from l2 to cosine/)
  assert.deepEqual(await (async () => { const x = await open(files, { stateDir: first.stateDir, metric: 'cosine' }); try { return await search(x.ix, [1, 0]) } finally { await x.ix.close() } })(), [['/a.vec', 0, 0]])
  const idx = (await readdir(first.stateDir)).find(f => f.endsWith('.usearch'))!
  await writeFile(path.join(first.stateDir, idx), 'not an index')
  const third = await open(files, { stateDir: first.stateDir, metric: 'cosine' })
  try {
    assert.match(third.lines.join('\n'), /rebuilding the index from the mount: the saved index (cannot be loaded|holds)/)
    assert.deepEqual(await search(third.ix, [1, 0]), [['/a.vec', 0, 0]])
  } finally {
    await third.ix.close()
  }
})

test('a rename that lands while the file is being read: the new name is indexed', async () => {
  const files = new MemFiles()
  const { ix } = await open(files)
  try {
    files.put('/t.vec', '4,4\n')
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    files.beforeRead = async p => { if (p === '/t.vec') await gate }
    ix.onCommit({ kind: 'write', path: '/t.vec' })
    await new Promise(resolve => setTimeout(resolve, 20)) // the read is in flight
    files.move('/t.vec', '/u.vec') // renamed on the backend: the read finds nothing
    files.beforeRead = undefined
    release()
    ix.onCommit({ kind: 'rename', from: '/t.vec', to: '/u.vec' })
    assert.deepEqual(await search(ix, [4, 4]), [['/u.vec', 0, 0]])
  } finally {
    await ix.close()
  }
})

test('reindex forgets everything and reads every vector file again, changes made behind its back included', async () => {
  const files = new MemFiles()
  const { ix } = await open(files)
  try {
    files.put('/a.vec', '1,1\n')
    ix.onCommit({ kind: 'write', path: '/a.vec' })
    await search(ix, [1, 1])
    files.put('/behind.fvecs', toFvecs([[2, 2]]))
    files.put('/a.vec', toText([[9, 9]]))
    ix.reindex()
    assert.ok(ix.status().walk !== undefined, 'the rebuild shows at once')
    await settle(ix)
    assert.deepEqual(await search(ix, [2, 2], 5), [['/behind.fvecs', 0, 0], ['/a.vec', 0, 9.8995]])
    assert.equal(ix.status().lastWalk?.reason, 'rebuild')
  } finally {
    await ix.close()
  }
})
