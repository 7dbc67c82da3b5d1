// Write-back through a real mount of a whole-object backend, and kill -9 of the mount process before the uploads
// finish: at the next mount of the same source the journal is replayed and every acknowledged byte reaches the
// backend. The backend is a small plugin made here (persistent objects in a directory, whole-object writes only,
// like S3), installed with `fsx plugins install`; OBJDIR_WRITE_DELAY_MS holds its uploads back in the first mount.
import t from 'tap'
import path from 'node:path'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { forceUnmount, fsx, fuseAvailable, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { scaled, testSeeds, waitUntil } from '../helpers/timing.js'

const BACKEND = `// Test plugin: objects kept as files under a directory; whole-object writes only (no randomWrite).
import { copyFile, lstat, mkdir, open, readdir, rename, rm, rmdir, chmod, utimes, writeFile, truncate } from 'node:fs/promises'
import path from 'node:path'
const TMP = '.objdir-tmp-'
class ObjDir {
  constructor (root, kit) {
    this.root = root; this.kit = kit; this.description = 'objdir:' + root
    this.capabilities = { randomWrite: false, symlinks: false, hardlinks: false, xattrs: false, chmod: true, chown: false, utimens: true, statfs: false, atomicRename: true, realDirectories: true }
    this.stats = { reads: 0, writes: 0 }
  }
  host (p) { return path.join(this.root, p) }
  fail (e, p, op) { return this.kit.fsxError(e.code ?? 'EIO', op + ' ' + p + ': ' + e.message, { path: p, op }) }
  async call (p, op, fn) { try { return await fn() } catch (e) { throw this.fail(e, p, op) } }
  toStat (s) {
    return { kind: s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other', size: s.size, mode: s.mode, uid: s.uid, gid: s.gid, nlink: s.nlink, atimeMs: s.atimeMs, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs }
  }
  async stat (p) { return await this.call(p, 'stat', async () => this.toStat(await lstat(this.host(p)))) }
  async list (p) {
    return await this.call(p, 'list', async () => {
      const out = []
      for (const name of await readdir(this.host(p))) {
        if (name.startsWith(TMP)) continue
        out.push({ name, stat: this.toStat(await lstat(path.join(this.host(p), name))) })
      }
      return out
    })
  }
  async read (p, offset, length) {
    this.stats.reads++
    return await this.call(p, 'read', async () => {
      const fh = await open(this.host(p), 'r')
      try {
        const buf = Buffer.alloc(length)
        const { bytesRead } = await fh.read(buf, 0, length, offset)
        return buf.subarray(0, bytesRead)
      } finally { await fh.close() }
    })
  }
  async write (p, source, attrs = {}) {
    const size = Buffer.isBuffer(source) ? source.length : source.size
    const delay = Number(process.env.OBJDIR_WRITE_DELAY_MS ?? 0)
    if (size > 0 && delay > 0) await new Promise(resolve => setTimeout(resolve, delay))
    this.stats.writes++
    return await this.call(p, 'write', async () => {
      const tmp = path.join(path.dirname(this.host(p)), TMP + Math.random().toString(36).slice(2))
      if (Buffer.isBuffer(source)) await writeFile(tmp, source)
      else { await copyFile(source.file, tmp); await truncate(tmp, source.size) }
      if (attrs.mode !== undefined) await chmod(tmp, attrs.mode & 0o7777)
      await rename(tmp, this.host(p))
    })
  }
  async remove (p) { return await this.call(p, 'unlink', async () => { if ((await lstat(this.host(p))).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' }); await rm(this.host(p)) }) }
  async mkdir (p, mode) { return await this.call(p, 'mkdir', async () => { await mkdir(this.host(p), { mode }) }) }
  async rmdir (p) { return await this.call(p, 'rmdir', async () => await rmdir(this.host(p))) }
  async rename (from, to) { return await this.call(from, 'rename', async () => await rename(this.host(from), this.host(to))) }
  async chmod (p, mode) { return await this.call(p, 'chmod', async () => await chmod(this.host(p), mode)) }
  async utimens (p, a, m) {
    return await this.call(p, 'utimens', async () => {
      const s = await lstat(this.host(p))
      await utimes(this.host(p), (a ?? s.atimeMs) / 1000, (m ?? s.mtimeMs) / 1000)
    })
  }
  counters () { return { ...this.stats } }
  async close () {}
}
export const objdirBackend = {
  apiVersion: 1,
  name: 'objdir',
  schemes: ['objdir'],
  summary: 'Objects in a directory, whole-object writes only (test plugin)',
  async create (source, _options, kit) { return new ObjDir(decodeURIComponent(source.url.pathname), kit) }
}
`

async function makePlugin (dir: string): Promise<void> {
  await mkdir(path.join(dir, 'hooks'), { recursive: true })
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({
    name: 'fsx-backend-objdir', version: '1.0.0', type: 'module', license: 'MIT', files: ['hooks', 'objdir.js'],
    oclif: { hooks: { 'fsx:backends': './hooks/backends.js' } }
  }))
  await writeFile(path.join(dir, 'objdir.js'), BACKEND)
  await writeFile(path.join(dir, 'hooks', 'backends.js'), "import { objdirBackend } from '../objdir.js'\nexport default async function (opts) { opts.register(objdirBackend) }\n")
}

const content = async (f: string): Promise<Buffer | undefined> => await readFile(f).catch(() => undefined)

if (fuseAvailable(t)) {
  t.test('after kill -9 during write-back, a remount replays the journal: every acknowledged byte reaches the backend', async t => {
    const home = await tempDir(t, 'fsx-writeback-')
    const env = { XDG_DATA_HOME: path.join(home, 'data'), XDG_CACHE_HOME: path.join(home, 'cache'), XDG_CONFIG_HOME: path.join(home, 'config') }
    const pluginDir = path.join(home, 'plugin')
    await makePlugin(pluginDir)
    const inst = await fsx(['plugins', 'install', `file:${pluginDir}`], { env, timeoutMs: 180_000 })
    t.equal(inst.code, 0, inst.stderr)

    const store = path.join(home, 'store')
    await mkdir(store)
    const source = `objdir://${store}`
    const blob = randomBytes(5 * 1024 * 1024 + 77)
    const src = path.join(home, 'blob')
    await writeFile(src, blob)

    // First mount: uploads are held back for ten minutes, so none can finish before the kill.
    const m1 = await mountFsx(t, source, ['--preset', 'high-performance'], { env: { ...env, OBJDIR_WRITE_DELAY_MS: '600000' } })
    const t0 = Date.now()
    const w = await sh(`
      cp ${src} big.bin
      printf 'acknowledged\\n' > small.txt
      mkdir d && printf 'nested' > d/n.txt
      cat small.txt d/n.txt > /dev/null`, m1.mountpoint)
    t.equal(w.code, 0, w.stderr)
    t.ok(Date.now() - t0 < scaled(60_000), 'close() returned without waiting for the held-back uploads')
    t.equal(await stat(path.join(store, 'big.bin')).then(() => 'there', (err: NodeJS.ErrnoException) => err.code), 'ENOENT', 'the backend has nothing so far (creating a file makes no request)')
    const sizeSeen = await run('stat', ['-c', '%s', path.join(m1.mountpoint, 'big.bin')])
    t.equal(sizeSeen.stdout.trim(), String(blob.length), 'the mount reports the journaled size')

    m1.child.kill('SIGKILL')
    await new Promise(resolve => m1.child.once('exit', resolve))
    await forceUnmount(m1.mountpoint)
    t.equal(await stat(path.join(store, 'big.bin')).then(() => 'there', (err: NodeJS.ErrnoException) => err.code), 'ENOENT', 'nothing was uploaded before the kill')

    // Second mount of the same source, uploads at full speed: the journal is replayed.
    const m2 = await mountFsx(t, source, ['--preset', 'high-performance'], { env, mountpoint: m1.mountpoint })
    const replayed = await waitUntil(async () => {
      const [b, s, n] = await Promise.all([content(path.join(store, 'big.bin')), content(path.join(store, 'small.txt')), content(path.join(store, 'd', 'n.txt'))])
      return b?.equals(blob) === true && s?.toString() === 'acknowledged\n' && n?.toString() === 'nested'
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'the replayed uploads to reach the backend' }).then(() => true, (err: Error) => err.message)
    t.equal(replayed, true, 'every acknowledged file is on the backend, byte for byte')
    t.match(m2.log(), /replaying 3 upload/)
    const cmp = await run('cmp', [src, path.join(m2.mountpoint, 'big.bin')])
    t.equal(cmp.code, 0, 'and reads back through the mount')
    t.equal(await m2.stop(), 0)

    // The random-operation exerciser through the write-back journal, the data cache and eventual consistency.
    const m3 = await mountFsx(t, source, ['--preset', 'high-performance'], { env, mountpoint: m1.mountpoint })
    for (const seed of testSeeds([31, 20261202], line => t.comment(line))) {
      const report = await exercise({ root: m3.mountpoint, seed, ops: 700, opTimeoutMs: 60_000 })
      t.equal(report.ops, 700, `the exerciser runs clean through write-back (seed=${seed})`)
    }
    t.equal(await m3.stop(), 0)
    t.same((await readdir(path.join(env.XDG_CACHE_HOME, 'fsx', 'journal'), { recursive: true })).filter(n => /\.(json|data)$/.test(n)), [],
      'a clean unmount leaves nothing in the journal')

    const un = await fsx(['plugins', 'uninstall', 'fsx-backend-objdir'], { env })
    t.equal(un.code, 0, un.stderr)
  })
}
