/**
 * What the local backend does beyond the conformance suite (plugins/backend-local/src/local-backend.ts, xattr.ts):
 * counters, the temp-file-and-rename write, attribute preservation, xattr namespaces and a missing attr tool.
 */
import t, { type Test } from 'tap'
import { mkdtemp, readdir, rm, stat as hostStat } from 'node:fs/promises'
import { join } from 'node:path'
import { LocalBackend, type LocalBackendOptions } from '../../plugins/backend-local/dist/index.js'
import { fullKit } from '../../dist/backend/registry.js'

const kit = await fullKit()

async function backend (t: Test, opts: LocalBackendOptions = {}): Promise<{ b: LocalBackend; root: string }> {
  const root = t.testdir()
  const b = await LocalBackend.create(root, kit, opts)
  t.teardown(() => b.close())
  return { b, root }
}

t.test('counters count requests, reads, writes and bytes', async t => {
  const { b } = await backend(t)
  await b.write('/f', Buffer.alloc(10))
  await b.read('/f', 2, 100)
  const h = await b.open('/f', { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }, 0)
  await h.write(0, Buffer.alloc(5))
  await h.read(0, 3)
  await h.close()
  t.same(b.counters(), { requests: 3, reads: 2, writes: 2, bytesRead: 11, bytesWritten: 15 })
})

t.test('whole-object write keeps the mode of the file it replaces', async t => {
  const { b, root } = await backend(t)
  await b.write('/f', Buffer.from('one'), { mode: 0o600 })
  await b.write('/f', Buffer.from('two'))
  t.equal((await hostStat(join(root, 'f'))).mode & 0o7777, 0o600)
})

t.test('whole-object write replaces the file (new inode) and leaves no temp file', async t => {
  const { b, root } = await backend(t)
  await b.write('/f', Buffer.from('one'))
  const before = (await b.stat('/f')).ino
  await b.write('/f', Buffer.from('two'))
  t.not((await b.stat('/f')).ino, before, 'a reader holding the old file keeps the old content')
  t.same(await readdir(root), ['f'])
})

t.test('a failed whole-object write leaves neither target nor temp file', async t => {
  const { b, root } = await backend(t)
  await t.rejects(b.write('/f', { file: join(root, 'no-such-staging-file'), size: 1 }), { code: 'ENOENT' })
  t.same(await readdir(root), [])
})

t.test('negative or fractional offsets reject with EINVAL', async t => {
  const { b } = await backend(t)
  await b.write('/f', Buffer.from('x'))
  await t.rejects(b.read('/f', -1, 1), { code: 'EINVAL' })
  await t.rejects(b.read('/f', 0.5, 1), { code: 'EINVAL' })
  await t.rejects(b.truncate('/f', -1), { code: 'EINVAL' })
})

t.test('names longer than NAME_MAX reject with ENAMETOOLONG', async t => {
  const { b } = await backend(t)
  await t.rejects(b.write(`/${'x'.repeat(256)}`, Buffer.from('x')), { code: 'ENAMETOOLONG' })
  await t.rejects(b.stat(`/${'x'.repeat(256)}`), { code: 'ENAMETOOLONG' })
})

t.test('xattrs outside user., trusted. and security. reject with ENOTSUP', async t => {
  const { b } = await backend(t)
  await b.write('/f', Buffer.from('x'))
  await t.rejects(b.setxattr('/f', 'system.posix_acl_access', Buffer.from('x'), 0), { code: 'ENOTSUP' })
  await t.rejects(b.getxattr('/f', 'other.name'), { code: 'ENOTSUP' })
  await t.rejects(b.getxattr('/f', 'noprefix'), { code: 'ENOTSUP' })
})

t.test('xattrs are served natively when @napi-rs/xattr loads', async t => {
  const { b } = await backend(t)
  t.equal(b.xattrMode, 'native')
  t.equal(b.capabilities.xattrs, true)
})

for (const mode of ['native', 'tools'] as const) {
  t.test(`a 64 KiB xattr value round-trips (${mode})`, async t => {
    // ext4 without ea_inode caps a value at one block (ENOSPC); tmpfs (Linux >= 6.6) takes 64 KiB: use it if we can.
    let root = t.testdir()
    try {
      root = await mkdtemp('/dev/shm/fsx-xattr-')
      t.teardown(() => rm(root, { recursive: true, force: true }))
    } catch {}
    const b = await LocalBackend.create(root, kit, { xattrs: mode })
    t.teardown(() => b.close())
    t.equal(b.xattrMode, mode)
    await b.write('/f', Buffer.from('x'))
    const value = Buffer.alloc(65536, 0xab)
    try {
      await b.setxattr('/f', 'user.big', value, 0)
    } catch (err) {
      // With the tools, hex (0x…) would be 131 074 bytes and spawn would fail with E2BIG: base64 fits.
      // Only the filesystem's own limit is acceptable.
      t.match(err, { code: 'ENOSPC' }, `the filesystem under ${root} refuses 64 KiB values`)
      return
    }
    t.same(await b.getxattr('/f', 'user.big'), value)
    await t.rejects(b.setxattr('/f', 'user.bigger', Buffer.alloc(65537), 0), { code: 'E2BIG' }, 'one byte more is E2BIG')
  })
}

t.test('with the tools, a missing getfattr makes xattr calls reject with ENOTSUP', async t => {
  const { b } = await backend(t, { xattrs: 'tools' })
  await b.write('/f', Buffer.from('x'))
  const path = process.env.PATH
  process.env.PATH = '/nonexistent/bin'
  t.teardown(() => { process.env.PATH = path })
  await t.rejects(b.getxattr('/f', 'user.a'), { code: 'ENOTSUP', message: /attr/ })
  await t.rejects(b.listxattr('/f'), { code: 'ENOTSUP' })
})

t.test('with xattrs off, capabilities.xattrs is false and xattr calls reject with ENOTSUP', async t => {
  const { b } = await backend(t, { xattrs: false })
  t.equal(b.capabilities.xattrs, false)
  await t.rejects(b.getxattr('/f', 'user.a'), { code: 'ENOTSUP' })
})
