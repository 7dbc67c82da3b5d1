// The kernel engine's node-id table (src/fuse/kernel/nodes.ts): lookup counts, FORGET, renames, names that go
// away while the kernel still holds the node, and names that start holding another file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NodeTable, ROOT_ID } from '../../dist/fuse/kernel/nodes.js'

const FILE = 0o100644
const DIR = 0o040755

test('a name keeps its node across lookups; FORGET of every lookup removes it, the root never goes', () => {
  const t = new NodeTable()
  const a = t.remember(ROOT_ID, 'a', FILE)
  assert.equal(t.remember(ROOT_ID, 'a', FILE).id, a.id)
  assert.equal(a.nlookup, 2)
  assert.equal(t.forget(a.id, 1), undefined, 'one lookup left')
  assert.equal(t.path(a.id), '/a')
  assert.equal(t.forget(a.id, 1)?.id, a.id, 'gone with its last lookup')
  assert.equal(t.get(a.id), undefined)
  assert.equal(t.child(ROOT_ID, 'a'), undefined)
  assert.equal(t.forget(ROOT_ID, 100), undefined)
  assert.equal(t.path(ROOT_ID), '/')
  assert.notEqual(t.remember(ROOT_ID, 'a', FILE).id, a.id, 'node ids are never reused')
})

test('paths follow renames of a directory to everything below it', () => {
  const t = new NodeTable()
  const d = t.remember(ROOT_ID, 'd', DIR)
  const e = t.remember(d.id, 'e', DIR)
  const f = t.remember(e.id, 'f', FILE)
  assert.equal(t.path(f.id), '/d/e/f')
  const other = t.remember(ROOT_ID, 'x', DIR)
  t.renamed(ROOT_ID, 'd', other.id, 'moved')
  assert.equal(t.path(f.id), '/x/moved/e/f')
  assert.equal(t.child(ROOT_ID, 'd'), undefined)
  assert.equal(t.child(other.id, 'moved')?.id, d.id)
})

test('a rename over an existing name detaches the node it replaces; unlink detaches without forgetting', () => {
  const t = new NodeTable()
  const a = t.remember(ROOT_ID, 'a', FILE)
  const b = t.remember(ROOT_ID, 'b', FILE)
  t.renamed(ROOT_ID, 'a', ROOT_ID, 'b')
  assert.equal(b.detached, true)
  assert.equal(t.path(b.id), undefined, 'a detached node has no path')
  assert.equal(t.get(b.id)?.id, b.id, 'but stays while the kernel holds it')
  assert.equal(t.path(a.id), '/b')
  t.removed(ROOT_ID, 'b')
  assert.equal(t.path(a.id), undefined)
  assert.equal(t.child(ROOT_ID, 'b'), undefined)
  assert.equal(t.forget(a.id, 1)?.id, a.id)
})

test('RENAME_EXCHANGE swaps the two nodes', () => {
  const t = new NodeTable()
  const a = t.remember(ROOT_ID, 'a', FILE)
  const b = t.remember(ROOT_ID, 'b', DIR)
  t.exchanged(ROOT_ID, 'a', ROOT_ID, 'b')
  assert.equal(t.path(a.id), '/b')
  assert.equal(t.path(b.id), '/a')
})

test('a name that now holds another kind of file, or another inode, gets a new node', () => {
  const t = new NodeTable()
  const a = t.remember(ROOT_ID, 'a', FILE, 10)
  const asDir = t.remember(ROOT_ID, 'a', DIR, 10)
  assert.notEqual(asDir.id, a.id)
  assert.equal(a.detached, true)
  const other = t.remember(ROOT_ID, 'a', DIR, 11)
  assert.notEqual(other.id, asDir.id)
  assert.equal(t.remember(ROOT_ID, 'a', DIR, 11).id, other.id)
})

test('a forgotten node with open files stays until its last release', () => {
  const t = new NodeTable()
  const a = t.remember(ROOT_ID, 'a', FILE)
  t.opened(a)
  assert.equal(t.forget(a.id, 1), undefined)
  assert.equal(t.get(a.id)?.id, a.id)
  t.released(a)
  assert.equal(t.get(a.id), undefined)
})
