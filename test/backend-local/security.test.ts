/**
 * The local backend never reaches outside its root (plugins/backend-local/src/root-guard.ts, local-backend.ts).
 *
 * Layout per test: <testdir>/root is the backend root, <testdir>/outside holds `secret` (the thing to protect) and
 * `dir/`. Inside the root: `dlink` → ../outside (a directory outside), `flink` → ../outside/secret (a file outside).
 *
 * Which error: a path whose parent directories lead outside through a symlink rejects with EACCES (the guard);
 * a symlink at the last component is not followed: open/read/truncate give ELOOP (O_NOFOLLOW), chmod gives
 * ENOTSUP (Linux has no mode on symlinks), stat/utimens/chown act on the link itself.
 */
import t, { type Test } from 'tap'
import { chmod as hostChmod, lstat as hostLstat, mkdir as hostMkdir, readdir as hostReaddir, readFile, rename as hostRename, stat as hostStat, symlink as hostSymlink, utimes as hostUtimes, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { LocalBackend } from '../../plugins/backend-local/dist/index.js'
import { fsxError } from '../../dist/errors.js'

const kit = { fsxError }
const SECRET = 'TOP SECRET\n'
const OLD = new Date(Date.UTC(2000, 0, 1))
const rw = { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }

interface Fixture { root: string; outside: string; b: LocalBackend }

async function fixture (t: Test, opts: { now?: () => number } = {}): Promise<Fixture> {
  const base = t.testdir({ root: { dir: { file: 'inside' } }, outside: { secret: SECRET, dir: {} } })
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  await hostChmod(join(outside, 'secret'), 0o600)
  await hostUtimes(join(outside, 'secret'), OLD, OLD)
  await hostSymlink('../outside', join(root, 'dlink'))
  await hostSymlink('../outside/secret', join(root, 'flink'))
  const b = await LocalBackend.create(root, kit, opts)
  t.teardown(() => b.close())
  return { root, outside, b }
}

/** The outside target is exactly as the fixture left it. */
async function untouched (t: Test, outside: string): Promise<void> {
  const st = await hostStat(join(outside, 'secret'))
  t.equal(await readFile(join(outside, 'secret'), 'utf8'), SECRET, 'outside content unchanged')
  t.equal(st.mode & 0o7777, 0o600, 'outside mode unchanged')
  t.equal(st.mtimeMs, OLD.getTime(), 'outside mtime unchanged')
  t.same((await hostReaddir(outside)).sort(), ['dir', 'secret'], 'nothing created or removed outside')
}

t.test('stat of a symlink that points outside reports the link itself', async t => {
  const { b } = await fixture(t)
  t.equal((await b.stat('/dlink')).kind, 'symlink')
  t.equal((await b.stat('/flink')).kind, 'symlink')
  t.equal(await b.readlink('/dlink'), '../outside', 'readlink returns the text, nothing is resolved')
})

t.test('every operation through a symlinked directory leading outside rejects with EACCES', async t => {
  const { b, outside } = await fixture(t)
  const code = 'EACCES'
  await t.rejects(b.stat('/dlink/secret'), { code }, 'stat')
  await t.rejects(b.read('/dlink/secret', 0, 100), { code }, 'read')
  await t.rejects(b.open('/dlink/secret', rw, 0), { code }, 'open')
  await t.rejects(b.list('/dlink'), { code }, 'list of the link itself')
  await t.rejects(b.list('/dlink/dir'), { code }, 'list below it')
  await t.rejects(b.statfs('/dlink'), { code }, 'statfs')
  await t.rejects(b.write('/dlink/new', Buffer.from('x')), { code }, 'write')
  await t.rejects(b.write('/dlink/secret', Buffer.from('x')), { code }, 'write over')
  await t.rejects(b.truncate('/dlink/secret', 0), { code }, 'truncate')
  await t.rejects(b.remove('/dlink/secret'), { code }, 'remove')
  await t.rejects(b.mkdir('/dlink/newdir', 0o755), { code }, 'mkdir')
  await t.rejects(b.rmdir('/dlink/dir'), { code }, 'rmdir')
  await t.rejects(b.rename('/dlink/secret', '/stolen'), { code }, 'rename out')
  await t.rejects(b.rename('/dir/file', '/dlink/planted'), { code }, 'rename in')
  await t.rejects(b.link('/dlink/secret', '/hard'), { code }, 'link out')
  await t.rejects(b.link('/dir/file', '/dlink/planted'), { code }, 'link in')
  await t.rejects(b.symlink('x', '/dlink/planted'), { code }, 'symlink')
  await t.rejects(b.readlink('/dlink/secret'), { code }, 'readlink')
  await t.rejects(b.chmod('/dlink/secret', 0o777), { code }, 'chmod')
  await t.rejects(b.chown('/dlink/secret', 0, 0), { code }, 'chown')
  await t.rejects(b.utimens('/dlink/secret', 0, 0), { code }, 'utimens')
  await t.rejects(b.getxattr('/dlink/secret', 'user.a'), { code }, 'getxattr')
  await t.rejects(b.setxattr('/dlink/secret', 'user.a', Buffer.from('x'), 0), { code }, 'setxattr')
  await t.rejects(b.listxattr('/dlink/secret'), { code }, 'listxattr')
  await t.rejects(b.removexattr('/dlink/secret', 'user.a'), { code }, 'removexattr')
  await untouched(t, outside)
})

t.test('a symlink to a file outside is never followed at the last component', async t => {
  const { b, root, outside } = await fixture(t)
  await t.rejects(b.read('/flink', 0, 100), { code: 'ELOOP' }, 'read')
  await t.rejects(b.open('/flink', rw, 0), { code: 'ELOOP' }, 'open')
  await t.rejects(b.open('/flink', { ...rw, create: true }, 0o644), { code: 'ELOOP' }, 'open with create')
  await t.rejects(b.truncate('/flink', 0), { code: 'ELOOP' }, 'truncate')
  await t.rejects(b.chmod('/flink', 0o777), { code: 'ENOTSUP' }, 'chmod')
  await t.rejects(b.list('/flink'), { code: 'EACCES' }, 'list')
  await t.rejects(b.setxattr('/flink', 'user.a', Buffer.from('x'), 0), { code: 'EPERM' }, 'setxattr (the kernel: no user.* on symlinks)')

  const link = await hostLstat(join(root, 'flink'))
  await b.chown('/flink', link.uid, link.gid)
  await b.utimens('/flink', Date.UTC(2010, 0, 1), Date.UTC(2010, 0, 1))
  t.equal((await b.stat('/flink')).mtimeMs, Date.UTC(2010, 0, 1), 'utimens changed the link itself')
  t.equal((await b.stat('/flink')).kind, 'symlink', 'still a symlink')
  await untouched(t, outside)

  await b.write('/flink', Buffer.from('replaced'))
  t.equal((await b.stat('/flink')).kind, 'file', 'write replaced the link with a file instead of writing through it')
  await b.remove('/dlink')
  t.equal((await hostStat(outside)).isDirectory(), true, 'remove of a link to a directory removes the link only')
  await untouched(t, outside)
})

t.test('paths with ".." components reject with EACCES', async t => {
  const { b, outside } = await fixture(t)
  for (const p of ['/..', '/../outside/secret', '/dir/../../outside/secret', '/dir/..']) {
    await t.rejects(b.stat(p), { code: 'EACCES' }, `stat ${p}`)
  }
  await t.rejects(b.read('/../outside/secret', 0, 100), { code: 'EACCES' })
  await t.rejects(b.write('/../outside/secret', Buffer.from('x')), { code: 'EACCES' })
  await t.rejects(b.remove('/../outside/secret'), { code: 'EACCES' })
  await untouched(t, outside)
})

t.test('relative paths and NUL bytes reject with EINVAL', async t => {
  const { b } = await fixture(t)
  await t.rejects(b.stat('dir/file'), { code: 'EINVAL' })
  await t.rejects(b.stat(''), { code: 'EINVAL' })
  await t.rejects(b.stat('/dir/file\0/x'), { code: 'EINVAL' })
  await t.rejects(b.symlink('a\0b', '/l'), { code: 'EINVAL' }, 'a NUL in a symlink target too')
})

t.test('a symlink to a directory inside the root may be traversed', async t => {
  const { b, root } = await fixture(t)
  await hostSymlink('dir', join(root, 'inlink'))
  t.equal((await b.read('/inlink/file', 0, 100)).toString(), 'inside')
})

t.test('the root itself cannot be removed, renamed or replaced', async t => {
  const { b, root } = await fixture(t)
  await t.rejects(b.rmdir('/'), { code: 'EBUSY' })
  await t.rejects(b.rename('/', '/x'), { code: 'EBUSY' })
  await t.rejects(b.rename('/dir', '/'), { code: 'EBUSY' })
  await t.rejects(b.remove('/'), { code: 'EISDIR' })
  await t.rejects(b.write('/', Buffer.from('x')), { code: 'EISDIR' })
  await t.rejects(b.mkdir('/', 0o755), { code: 'EEXIST' })
  t.equal((await hostStat(root)).isDirectory(), true)
})

t.test('a directory replaced by a symlink through the backend is re-checked at once', async t => {
  const clock = 0 // never advances: only forget() can drop the cached verdict
  const { b, outside } = await fixture(t, { now: () => clock })
  await b.mkdir('/d', 0o755)
  await b.write('/d/f', Buffer.from('x'))
  t.equal((await b.stat('/d/f')).kind, 'file', '/d is now verified and cached')
  await b.rename('/d', '/d2')
  await b.symlink('../outside', '/d')
  await t.rejects(b.read('/d/secret', 0, 100), { code: 'EACCES' }, 'no cached verdict survives the change (clock never moved)')
  await t.rejects(b.write('/d/secret', Buffer.from('pwned')), { code: 'EACCES' })
  await untouched(t, outside)
})

t.test('a directory swapped for a symlink on the host is caught once the verification TTL has passed', async t => {
  let clock = 0
  const { b, root, outside } = await fixture(t, { now: () => clock })
  await hostMkdir(join(root, 'd'))
  await writeFile(join(root, 'd', 'secret'), 'decoy')
  t.equal((await b.stat('/d/secret')).kind, 'file', '/d verified at t=0')
  await hostRename(join(root, 'd'), join(root, 'd2'))
  await hostSymlink('../outside', join(root, 'd'))
  clock = 1001
  await t.rejects(b.read('/d/secret', 0, 100), { code: 'EACCES' }, 'past the 1 s TTL the parent is verified again')
  await untouched(t, outside)
})

t.test('xattrs on a symlink never reach its target', { skip: !hasSetfattr() && 'setfattr not installed' }, async t => {
  const { b, outside } = await fixture(t)
  await b.listxattr('/flink')
  await t.rejects(b.getxattr('/flink', 'user.a'), { code: 'ENODATA' })
  t.equal(execFileSync('getfattr', ['-d', '--absolute-names', join(outside, 'secret')]).toString(), '', 'the target has no xattrs')
})

function hasSetfattr (): boolean {
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
