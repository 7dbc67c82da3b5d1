// The VFS's commit events (Vfs.onCommit, what mount extensions hear): a file's `write` is told only once its content
// is committed — on the backend (write-through), in the journal (write-back), or at flush/fsync of a handle that
// changed it on backends with handles (and again at release when the kernel wrote it directly: passthrough) —
// `remove` after an unlink, `rename` after a rename, in the order they happened, and nothing for reads or failures.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { constants } from 'node:fs'
import { Vfs, type VfsChange } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tmp = tempDirs()

const { O_RDONLY, O_RDWR, O_WRONLY, O_TRUNC } = constants

interface Seen { change: VfsChange, backend?: string, journaled?: boolean }

async function setup (o: { randomWrite?: boolean, writeback?: boolean, etag?: boolean } = {}) {
  const b = new FakeBackend({ randomWrite: o.randomWrite ?? true, etag: o.etag })
  const vfs = new Vfs(b as any, {
    writeback: o.writeback ?? false,
    consistency: 'session',
    xattrCacheSize: 0,
    xattrCacheTtlMs: 0,
    cacheDir: await tmp('fsx-vfs-commit-'),
    writebackRetryMs: 10
  })
  const seen: Seen[] = []
  // What the backend (and the journal) hold at the moment each event is told.
  vfs.onCommit = change => {
    const p = change.kind === 'rename' ? change.to : change.path
    seen.push({ change, backend: b.content(p)?.toString(), journaled: vfs.journal?.pending(p) !== undefined })
  }
  return { b, vfs, seen }
}

const write = async (vfs: Vfs, fh: number, text: string, pos = 0): Promise<void> => {
  const buf = Buffer.from(text)
  await vfs.write('', fh, buf, buf.length, pos)
}

for (const randomWrite of [true, false]) {
  const kind = randomWrite ? 'a backend with handles (local, SFTP)' : 'a whole-object backend (S3), write-through'
  test(`${kind}: a write is told once, at close, after the backend holds it`, async () => {
    const { vfs, seen } = await setup({ randomWrite })
    const fh = await vfs.create('/a.vec', 0o644)
    await write(vfs, fh, '1,2,3\n')
    assert.equal(seen.length, 0, 'nothing before the close')
    await vfs.flush('/a.vec', fh)
    assert.deepEqual(seen, [{ change: { kind: 'write', path: '/a.vec' }, backend: '1,2,3\n', journaled: false }])
    await vfs.release('/a.vec', fh)
    assert.equal(seen.length, 1, 'release after a committed close adds nothing')
    await vfs.close()
  })

  test(`${kind}: fsync commits and tells; reads and untouched closes tell nothing`, async () => {
    const { b, vfs, seen } = await setup({ randomWrite })
    b.put('/a.vec', '1,2\n')
    const r = await vfs.open('/a.vec', O_RDONLY)
    await vfs.read('', r, Buffer.alloc(16), 16, 0)
    await vfs.flush('/a.vec', r)
    await vfs.release('/a.vec', r)
    const w = await vfs.open('/a.vec', O_RDWR)
    await vfs.flush('/a.vec', w)
    assert.deepEqual(seen, [], 'a read-only open and an unwritten read-write open are not changes')
    await write(vfs, w, '3,4\n')
    await vfs.fsync('/a.vec', w, false)
    assert.deepEqual(seen.map(s => [s.change, s.backend]), [[{ kind: 'write', path: '/a.vec' }, '3,4\n']])
    await vfs.release('/a.vec', w)
    assert.equal(seen.length, 1)
    await vfs.close()
  })

  test(`${kind}: open with O_TRUNC and truncate(2) are writes`, async () => {
    const { b, vfs, seen } = await setup({ randomWrite })
    b.put('/a.vec', '1,2\n')
    b.put('/b.vec', '5,6\n')
    const fh = await vfs.open('/a.vec', O_WRONLY | O_TRUNC)
    await vfs.flush('/a.vec', fh)
    await vfs.release('/a.vec', fh)
    await vfs.truncate('/b.vec', 0)
    assert.deepEqual(seen.map(s => [s.change, s.backend]), [[{ kind: 'write', path: '/a.vec' }, ''], [{ kind: 'write', path: '/b.vec' }, '']])
    await vfs.close()
  })
}

test('write-back on a whole-object backend: the write is told once it is journaled, before the upload', async () => {
  const { b, vfs, seen } = await setup({ randomWrite: false, writeback: true })
  const fh = await vfs.create('/a.vec', 0o644)
  const upload = b.hold('write') // the background upload waits here
  await write(vfs, fh, '7,8\n')
  await vfs.flush('/a.vec', fh)
  assert.equal(seen.length, 1)
  assert.deepEqual(seen[0].change, { kind: 'write', path: '/a.vec' })
  assert.equal(seen[0].journaled, true, 'in the journal when told')
  assert.notEqual(seen[0].backend, '7,8\n', 'not uploaded yet when told')
  upload.release()
  await vfs.release('/a.vec', fh)
  await vfs.drain()
  assert.equal(b.content('/a.vec')?.toString(), '7,8\n')
  await vfs.close()
})

test('passthrough: the kernel writes behind the VFS, so flush and release both tell the write', async () => {
  const { b, vfs, seen } = await setup()
  const fh = await vfs.create('/p.vec', 0o644)
  vfs.passedThrough(fh)
  b.put('/p.vec', '9,9\n') // what the kernel wrote to the backing file
  await vfs.flush('/p.vec', fh)
  assert.deepEqual(seen.map(s => [s.change, s.backend]), [[{ kind: 'write', path: '/p.vec' }, '9,9\n']])
  b.put('/p.vec', '9,8\n') // an mmap store landing after close(2)
  await vfs.release('/p.vec', fh)
  assert.deepEqual(seen.map(s => [s.change, s.backend]), [[{ kind: 'write', path: '/p.vec' }, '9,9\n'], [{ kind: 'write', path: '/p.vec' }, '9,8\n']])
  await vfs.close()
})

test('unlink, rename and link are told after the backend did them; failures tell nothing', async () => {
  const { b, vfs, seen } = await setup()
  b.put('/a.vec', '1\n')
  b.putDir('/d')
  b.put('/d/x.vec', '2\n')
  await vfs.unlink('/a.vec')
  await assert.rejects(vfs.unlink('/a.vec'), { code: 'ENOENT' })
  await vfs.rename('/d', '/e')
  await assert.rejects(vfs.rename('/nope', '/e2'), { code: 'ENOENT' })
  await vfs.link('/e/x.vec', '/y.vec')
  assert.deepEqual(seen.map(s => s.change), [
    { kind: 'remove', path: '/a.vec' },
    { kind: 'rename', from: '/d', to: '/e' },
    { kind: 'write', path: '/y.vec' }
  ])
  assert.equal(seen[0].backend, undefined, 'gone from the backend when told')
  assert.equal(b.content('/e/x.vec')?.toString(), '2\n')
  await vfs.close()
})

test('a whole-object file renamed while open and written: its write is told before the rename', async () => {
  const { vfs, seen } = await setup({ randomWrite: false })
  const fh = await vfs.create('/t.tmp', 0o644)
  await write(vfs, fh, '4,5\n')
  await vfs.rename('/t.tmp', '/t.vec')
  assert.deepEqual(seen.map(s => s.change), [{ kind: 'write', path: '/t.tmp' }, { kind: 'rename', from: '/t.tmp', to: '/t.vec' }])
  assert.equal(seen[1].backend, '4,5\n', 'the renamed object holds what was written')
  await vfs.release('/t.vec', fh)
  await vfs.close()
})

test('a whole-object backend with ETags: told at close, the still-open file\'s attributes carry the uploaded object\'s ETag', async () => {
  // What a listener reads at the event is what it records as the file's version (the vector index compares it with
  // the backend's listing at the next mount): the ETag must be the uploaded object's, not missing.
  const { b, vfs } = await setup({ randomWrite: false, etag: true })
  let told: Promise<{ etag?: string, size: number }> | undefined
  vfs.onCommit = change => { if (change.kind === 'write') told = vfs.getattr(change.path) }
  const fh = await vfs.create('/a.vec', 0o644)
  await write(vfs, fh, '1,2,3\n')
  await vfs.flush('/a.vec', fh)
  assert.ok(told, 'the write was told')
  const st = await told
  const backend = await b.stat('/a.vec')
  assert.ok(backend.etag)
  assert.equal(st.etag, backend.etag, 'the ETag of the object on the backend')
  assert.equal(st.size, 6)
  await write(vfs, fh, '4,5,6\n', 6)
  const dirty = await vfs.getattr('/a.vec')
  assert.equal(dirty.etag, undefined, 'written again and not uploaded: no ETag (the backend\'s names older content)')
  assert.equal(dirty.size, 12)
  await vfs.release('/a.vec', fh)
  await vfs.close()
})

test('a listener that throws fails nothing: the operation succeeds and the failure is logged', async () => {
  const lines: string[] = []
  const b = new FakeBackend()
  const vfs = new Vfs(b as any, { writeback: false, consistency: 'session', xattrCacheSize: 0, xattrCacheTtlMs: 0, cacheDir: await tmp('fsx-vfs-commit-'), log: l => lines.push(l) })
  vfs.onCommit = () => { throw new Error('boom') }
  b.put('/a.vec', '1\n')
  await vfs.unlink('/a.vec')
  assert.equal(b.content('/a.vec'), undefined)
  assert.match(lines.join('\n'), /commit listener failed: boom/)
  await vfs.close()
})
