// The vector catalog (plugins/vector/src/catalog.ts): which file each key came from, renames of files and
// directories, counts, and its on-disk form.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Catalog, decodeKey, keysOf, versionOf } from '../../plugins/vector/dist/index.js'

test('a key holds a file version id and a row; keys of one record are consecutive', () => {
  const keys = keysOf(5, 3)
  assert.deepEqual(Array.from(keys, k => decodeKey(k)), [{ id: 5, row: 0 }, { id: 5, row: 1 }, { id: 5, row: 2 }])
  assert.deepEqual(decodeKey(keysOf(2 ** 28, 1)[0]), { id: 2 ** 28, row: 0 })
})

test('versions: the ETag where there is one, else size and mtime', () => {
  const st = { kind: 'file', size: 3, mtimeMs: 1000.5, mode: 0, uid: 0, gid: 0, nlink: 1, atimeMs: 0, ctimeMs: 0 } as const
  assert.equal(versionOf(st), '3:1000.5')
  assert.equal(versionOf({ ...st, etag: '"abc"' }), 'etag:"abc"')
})

test('set, replace and delete keep the vector and invalid counts and the id → path map', () => {
  const c = new Catalog('l2')
  assert.equal(c.set('/a.vec', { id: c.allocate(), count: 3, version: 'v1' }), undefined)
  c.set('/b.vec', { id: c.allocate(), count: 0, version: 'v1', invalid: 'line 1: bad' })
  assert.equal(c.vectors, 3)
  assert.equal(c.invalidFiles, 1)
  const old = c.set('/a.vec', { id: c.allocate(), count: 2, version: 'v2' })
  assert.deepEqual(old, { id: 1, count: 3, version: 'v1' }, 'the replaced record comes back (its keys are removed)')
  assert.equal(c.pathOf(1), undefined)
  assert.equal(c.pathOf(3), '/a.vec')
  assert.equal(c.vectors, 2)
  c.delete('/b.vec')
  assert.equal(c.invalidFiles, 0)
})

test('rename of a file replaces the target; rename of a directory moves everything below it', () => {
  const c = new Catalog('l2')
  c.set('/a.vec', { id: 1, count: 1, version: 'a' })
  c.set('/b.vec', { id: 2, count: 4, version: 'b' })
  c.set('/d/x.vec', { id: 3, count: 2, version: 'x' })
  c.set('/d/e/y.vec', { id: 4, count: 1, version: 'y' })
  c.set('/dd/z.vec', { id: 5, count: 1, version: 'z' })
  const r1 = c.rename('/a.vec', '/b.vec')
  assert.deepEqual(r1.moved, [['/a.vec', '/b.vec']])
  assert.deepEqual(r1.replaced, [{ id: 2, count: 4, version: 'b' }])
  assert.equal(c.pathOf(1), '/b.vec')
  const r2 = c.rename('/d', '/n')
  assert.deepEqual(r2.moved.sort(), [['/d/e/y.vec', '/n/e/y.vec'], ['/d/x.vec', '/n/x.vec']])
  assert.deepEqual([...c.files.keys()].sort(), ['/b.vec', '/dd/z.vec', '/n/e/y.vec', '/n/x.vec'], '/dd is not below /d')
  assert.equal(c.vectors, 5)
  assert.equal(c.vectorsUnder('/n'), 3)
  assert.equal(c.vectorsUnder('/n/e'), 1)
  assert.deepEqual(c.rename('/nothing', '/else'), { moved: [], replaced: [] })
})

test('the on-disk form round-trips; a malformed one is refused', () => {
  const c = new Catalog('cosine')
  c.dim = 4
  c.set('/a.vec', { id: c.allocate(), count: 2, version: 'v' })
  c.set('/bad.vec', { id: c.allocate(), count: 0, version: 'w', invalid: 'why' })
  const j = JSON.parse(JSON.stringify(c.toJSON(7)))
  assert.equal(j.generation, 7)
  const back = Catalog.fromJSON(j)
  assert.equal(back.metric, 'cosine')
  assert.equal(back.dim, 4)
  assert.equal(back.vectors, 2)
  assert.equal(back.invalidFiles, 1)
  assert.equal(back.nextId, 3)
  assert.equal(back.pathOf(1), '/a.vec')
  assert.throws(() => Catalog.fromJSON({ ...j, vectors: 3 }), /counts 2 vectors, its header 3/)
  assert.throws(() => Catalog.fromJSON({ ...j, format: 'other' }), /not an fsx vector catalog/)
  assert.throws(() => Catalog.fromJSON({ ...j, files: [['/x.vec', 9, 1, 'v']] }), /malformed catalog entry/, 'an id at or past nextId')
})
