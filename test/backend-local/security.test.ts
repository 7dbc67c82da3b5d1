/**
 * The local backend never reaches outside its root (plugins/backend-local/src/host-tree.ts, local-backend.ts),
 * whatever a host process does meanwhile, with either way of resolving paths: openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) through FFI, and the per-component O_NOFOLLOW walk used where openat2 is missing.
 *
 * Layout per test: <testdir>/root is the backend root, <testdir>/outside holds `secret` (the thing to protect) and
 * `dir/`. Inside the root: `dlink` → ../outside (a directory outside), `flink` → ../outside/secret (a file outside).
 *
 * Which error: a path whose parent directories pass through a symlink rejects with EACCES (host-tree.ts);
 * a symlink at the last component is not followed: open/read/truncate give ELOOP (O_NOFOLLOW), chmod gives
 * ENOTSUP (Linux has no mode on symlinks), stat/utimens/chown act on the link itself.
 */
import t, { type Test } from 'tap'
import { chmod as hostChmod, lstat as hostLstat, mkdir as hostMkdir, readdir as hostReaddir, readFile, rename as hostRename, stat as hostStat, symlink as hostSymlink, utimes as hostUtimes, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { LocalBackend } from '../../plugins/backend-local/dist/index.js'
import { fullKit } from '../../dist/backend/registry.js'

const kit = await fullKit()
/** The resolver under test, set per top-level group below. */
let openat2 = true
const SECRET = 'TOP SECRET\n'
const OLD = new Date(Date.UTC(2000, 0, 1))
const rw = { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }

/** Puts a directory and a symlink to ../outside at "d" in turn, every 0.2 ms, until killed (argv[1]: the root). */
const SWAPPER = `
const { renameSync } = require('node:fs')
process.chdir(process.argv[1])
const nap = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0.2)
renameSync('real', 'd')
process.stdout.write('swapping\\n')
for (;;) {
  nap(); renameSync('d', 'real'); renameSync('evil', 'd')
  nap(); renameSync('d', 'evil'); renameSync('real', 'd')
}
`

interface Fixture { root: string; outside: string; b: LocalBackend }

async function fixture (t: Test): Promise<Fixture> {
  const base = t.testdir({ root: { dir: { file: 'inside' } }, outside: { secret: SECRET, dir: {} } })
  const root = join(base, 'root')
  const outside = join(base, 'outside')
  await hostChmod(join(outside, 'secret'), 0o600)
  await hostUtimes(join(outside, 'secret'), OLD, OLD)
  await hostSymlink('../outside', join(root, 'dlink'))
  await hostSymlink('../outside/secret', join(root, 'flink'))
  const b = await LocalBackend.create(root, kit, { openat2 })
  t.teardown(() => b.close())
  t.equal(b.tree.mode, openat2 ? 'openat2' : 'walk', `paths resolve by ${openat2 ? 'openat2' : 'the walk'}`)
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

for (const mode of [true, false]) {
  openat2 = mode
  t.test(mode ? 'resolving with openat2' : 'resolving by the O_NOFOLLOW walk', async t => {
    openat2 = mode
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

    t.test('a symlink to a directory inside the root is not traversed on the host either (the kernel resolves links)', async t => {
      const { b, root } = await fixture(t)
      await hostSymlink('dir', join(root, 'inlink'))
      t.equal((await b.stat('/inlink')).kind, 'symlink', 'the mount shows the link')
      await t.rejects(b.read('/inlink/file', 0, 100), { code: 'EACCES' })
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

    t.test('a directory replaced by a symlink through the backend is refused at once', async t => {
      const { b, outside } = await fixture(t)
      await b.mkdir('/d', 0o755)
      await b.write('/d/f', Buffer.from('x'))
      t.equal((await b.stat('/d/f')).kind, 'file')
      await b.rename('/d', '/d2')
      await b.symlink('../outside', '/d')
      await t.rejects(b.read('/d/secret', 0, 100), { code: 'EACCES' })
      await t.rejects(b.write('/d/secret', Buffer.from('pwned')), { code: 'EACCES' })
      await untouched(t, outside)
    })

    t.test('a directory swapped for a symlink on the host is refused at once, with no window', async t => {
      const { b, root, outside } = await fixture(t)
      await hostMkdir(join(root, 'd'))
      await writeFile(join(root, 'd', 'secret'), 'decoy')
      t.equal((await b.stat('/d/secret')).kind, 'file', '/d used as a directory')
      await hostRename(join(root, 'd'), join(root, 'd2'))
      await hostSymlink('../outside', join(root, 'd'))
      await t.rejects(b.read('/d/secret', 0, 100), { code: 'EACCES' }, 'the very next call refuses it')
      await t.rejects(b.write('/d/new', Buffer.from('pwned')), { code: 'EACCES' })
      await untouched(t, outside)
    })

    t.test('a host process swapping a directory and a symlink as fast as it can never gets a byte in or out', async t => {
      const { b, root, outside } = await fixture(t)
      await hostMkdir(join(root, 'real'))
      await hostSymlink('../outside', join(root, 'evil'))
      // The swapper: rename(2) puts the directory and the symlink at "d" in turn, every 0.2 ms, in another process.
      const swapper = (await import('node:child_process')).spawn(process.execPath, ['-e', SWAPPER, root], { stdio: ['ignore', 'pipe', 'inherit'] })
      t.teardown(() => { swapper.kill('SIGKILL') })
      await new Promise(resolve => swapper.stdout!.once('data', resolve))
      let wrote = 0
      let refused = 0
      const codes = new Set<string>()
      const until = Date.now() + 1500
      while (Date.now() < until) {
        for (const op of [
          async () => await b.write('/d/secret', Buffer.from('pwned')),
          async () => { const h = await b.open('/d/secret', { ...rw, create: true }, 0o644); await h.write(0, Buffer.from('pwned')); await h.close() },
          async () => { if ((await b.read('/d/secret', 0, 100)).toString() === SECRET) throw new Error('read the secret') },
          async () => await b.mkdir('/d/dir2', 0o755),
          async () => await b.chmod('/d/secret', 0o666),
          async () => await b.utimens('/d/secret', 0, 0)
        ]) {
          try {
            await op()
            wrote++
          } catch (err) {
            if ((err as Error).message === 'read the secret') throw err
            codes.add((err as { code?: string }).code ?? String(err))
            refused++
          }
        }
      }
      swapper.kill('SIGKILL')
      t.ok(wrote > 0 && refused > 0, `both sides of the race were hit (${wrote} landed inside, ${refused} refused: ${[...codes].join(', ')})`)
      await untouched(t, outside)
    })

    t.test('xattrs on a symlink never reach its target', { skip: !hasSetfattr() && 'setfattr not installed' }, async t => {
      const { b, outside } = await fixture(t)
      await b.listxattr('/flink')
      await t.rejects(b.getxattr('/flink', 'user.a'), { code: 'ENODATA' })
      t.equal(execFileSync('getfattr', ['-d', '--absolute-names', join(outside, 'secret')]).toString(), '', 'the target has no xattrs')
    })


  })
}

function hasSetfattr (): boolean {
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
