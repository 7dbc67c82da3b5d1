// fsx's data cache and write-back journal over SFTP, through real mounts of a real sshd (issue 11):
// - a re-read after the kernel dropped its pages is served by fsx's data cache: no SFTP read; `fsx warm --pin` pins;
// - with the server gone, a file read before still reads (stale-if-error covers data), one never read fails with EIO
//   at once;
// - write-back: close returns once the file is journaled on local disk; a kill -9 of the mount with uploads in flight,
//   then a remount of the same source, loses nothing that close acknowledged (the journal is replayed).
import t, { type Test } from 'tap'
import path from 'node:path'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createHash, randomBytes } from 'node:crypto'
import { dropKernelCaches, forceUnmount, fsx, fuseAvailable, holdKernelCaches, mountFsx, run, tempDir, type Mount } from '../helpers/mount.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')

/** "At once": well under one sftpTimeout, so an answer that waited for the server cannot pass for one that did not. */
const SFTP_TIMEOUT_MS = scaled(2000)
const AT_ONCE_MS = scaled(1500)

interface Outcome { code: number | null, out: string, err: string, ms: number }

/** Runs a shell command in a child (never from this process: a FUSE mount is touched from children only). */
async function op (cmd: string): Promise<Outcome> {
  const t0 = Date.now()
  const r = await run('bash', ['-c', `set -o pipefail; ${cmd}`], { timeoutMs: scaled(120_000) })
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim(), ms: Date.now() - t0 }
}

/** The mount's figures as `fsx stats --json` gives them. */
async function stats (m: Mount, env: Record<string, string>): Promise<{ backend: Record<string, number>, stale: { backendFailing: boolean } }> {
  const r = await fsx(['stats', m.mountpoint, '--json'], { env })
  return JSON.parse(r.stdout).mounts[0]
}

/** A private runtime and cache dir for one test's mounts (the journal and the data cache live in the cache dir). */
async function isolated (t: Test, sshd: Sshd): Promise<Record<string, string>> {
  const home = await tempDir(t, 'fsx-sftpcache-')
  return { ...sshd.env, FSX_RUNTIME_DIR: path.join(home, 'run'), XDG_CACHE_HOME: path.join(home, 'cache') }
}

if (sshdAvailable(t) && fuseAvailable(t)) {
  t.test('a re-read after the kernel dropped its pages makes no SFTP read; warm --pin pins on SFTP', async t => {
    const sshd = await startSshd(t)
    const env = await isolated(t, sshd)
    const root = path.join(sshd.dataDir, 'reread')
    await mkdir(root)
    const blob = randomBytes(6 * 1024 * 1024 + 4321)
    await writeFile(path.join(root, 'big.bin'), blob)
    const m = await mountFsx(t, `${sshd.url}/reread`, ['--preset', 'balanced'], { env })
    const file = JSON.stringify(path.join(m.mountpoint, 'big.bin'))

    const first = await op(`md5sum < ${file}`)
    t.equal(first.out.split(' ')[0], md5(blob), 'the first read through the mount')
    const before = (await stats(m, env)).backend
    t.ok(before.reads > 0 && before.bytesRead >= blob.length, `the first read came over SFTP (${before.reads} reads, ${before.bytesRead} bytes)`)

    await dropKernelCaches()
    const again = await op(`md5sum < ${file}`)
    t.equal(again.out.split(' ')[0], md5(blob), 'the re-read after drop_caches')
    const after = (await stats(m, env)).backend
    t.equal(after.reads, before.reads, 'no SFTP read for the re-read: fsx\'s data cache served it')
    t.equal(after.bytesRead, before.bytesRead, 'and no byte came over SFTP')

    const pin = await fsx(['warm', m.mountpoint, path.join(m.mountpoint, 'big.bin'), '--pin', '--json'], { env })
    t.equal(pin.code, 0, `fsx warm --pin works on an SFTP mount (${pin.stderr.trim()})`)
    t.equal(JSON.parse(pin.stdout).pinnedBytes, blob.length, 'every byte of the file is pinned in the data cache')

    // A change on the server is seen at the next open (balanced: close-to-open), not the cached blocks.
    const changed = randomBytes(blob.length)
    await writeFile(path.join(root, 'big.bin'), changed)
    await waitUntil(async () => (await op(`md5sum < ${file}`)).out.split(' ')[0] === md5(changed),
      { timeoutMs: scaled(15_000), what: 'the new content to read through the mount (attribute TTLs pass)' })
    t.pass('a file changed on the server reads with its new content')
    t.equal(await m.stop(), 0)
  })

  t.test('with the server gone, a file read before still reads from the data cache; one never read fails with EIO at once', async t => {
    const sshd = await startSshd(t)
    const env = {
      ...await isolated(t, sshd),
      // Short TTLs: everything cached has expired when the server goes away, so stale-if-error is what answers.
      FSX_ATTR_TTL: '1s', FSX_ENTRY_TTL: '1s', FSX_ATTR_CACHE_TTL: '1s', FSX_DIR_CACHE_TTL: '1s',
      FSX_STALE_IF_ERROR: '10m', FSX_SFTP_TIMEOUT: `${SFTP_TIMEOUT_MS}ms`
    }
    const root = path.join(sshd.dataDir, 'stale')
    await mkdir(root)
    const cached = randomBytes(3 * 1024 * 1024 + 5)
    const unread = randomBytes(100_000)
    await writeFile(path.join(root, 'cached.bin'), cached)
    await writeFile(path.join(root, 'unread.bin'), unread)
    const m = await mountFsx(t, `${sshd.url}/stale`, ['--preset', 'balanced'], { env })
    const at = (p: string): string => JSON.stringify(path.join(m.mountpoint, p))
    t.equal((await op(`md5sum < ${at('cached.bin')}`)).out.split(' ')[0], md5(cached), 'read once while the server answers')
    t.equal((await op(`ls ${at('')}`)).out, 'cached.bin\nunread.bin', 'both names listed')

    await sshd.kill({ connections: true })
    // The kernel's pages must not be what answers: drop them, then keep everything else from dropping meanwhile.
    await dropKernelCaches()
    await holdKernelCaches(t)
    const first = await op(`stat ${at('never-looked-up')}`)
    t.match(first.err, /Input\/output error/, `a name never seen fails with EIO (${first.err})`)
    await waitUntil(async () => (await stats(m, env)).stale.backendFailing, { timeoutMs: scaled(10_000), what: 'fsx to find the server failing' })

    const r = await op(`md5sum < ${at('cached.bin')}`)
    t.equal(r.code, 0, `the file read before reads while the server is gone (${r.err})`)
    t.equal(r.out.split(' ')[0], md5(cached), 'byte for byte, from fsx\'s data cache')
    t.ok(r.ms < AT_ONCE_MS, `at once: ${r.ms} ms (bound ${AT_ONCE_MS})`)
    const u = await op(`cat ${at('unread.bin')} > /dev/null`)
    t.not(u.code, 0, 'a file never read cannot be read')
    t.match(u.err, /Input\/output error/, `it fails with EIO (${u.err})`)
    t.ok(u.ms < AT_ONCE_MS, `at once: ${u.ms} ms (bound ${AT_ONCE_MS})`)

    await sshd.start()
    await waitUntil(async () => (await op(`md5sum < ${at('unread.bin')}`)).out.split(' ')[0] === md5(unread),
      { timeoutMs: scaled(30_000), what: 'the file never read to read once the server answers again' })
    t.pass('once the server is back, what was never read reads')
    t.equal(await m.stop(), 0)
  })

  t.test('write-back: kill -9 with uploads in flight, then a remount, loses nothing close acknowledged', async t => {
    const sshd = await startSshd(t)
    const env = await isolated(t, sshd)
    const root = path.join(sshd.dataDir, 'wb')
    await mkdir(root)
    const source = `${sshd.url}/wb`
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}.bin`, data: randomBytes(32 * 1024 + i) }))
    const src = await tempDir(t, 'fsx-wbsrc-')
    await mkdir(path.join(src, 'sub'))
    for (const f of files) await writeFile(path.join(src, 'sub', f.name), f.data)

    // First mount: uploads wait ten minutes after each close (writebackDelay), so none can finish before the kill.
    const m1 = await mountFsx(t, source, ['--preset', 'high-performance'], { env: { ...env, FSX_WRITEBACK_DELAY: '10m' } })
    const w = await op(`cp -r ${JSON.stringify(path.join(src, 'sub'))} ${JSON.stringify(m1.mountpoint)}/ && md5sum ${JSON.stringify(m1.mountpoint)}/sub/f00.bin`)
    t.equal(w.code, 0, `every file written and closed (${w.err})`)
    t.equal(w.out.split(' ')[0], md5(files[0].data), 'and read back through the mount before any upload')
    const onServer = async (): Promise<number> => {
      let n = 0
      for (const f of files) if ((await readFile(path.join(root, 'sub', f.name)).catch(() => undefined))?.equals(f.data) === true) n++
      return n
    }
    t.equal(await onServer(), 0, 'close() returned before any upload')
    m1.child.kill('SIGKILL')
    await new Promise(resolve => m1.child.once('exit', resolve))
    await forceUnmount(m1.mountpoint)

    // The remount of the same source replays the journal.
    const m2 = await mountFsx(t, source, ['--preset', 'high-performance'], { env, mountpoint: m1.mountpoint })
    await waitUntil(async () => await onServer() === files.length, { timeoutMs: scaled(60_000), what: 'the replayed uploads to reach the server' })
    t.pass('every acknowledged file is on the server, byte for byte')
    t.match(m2.log(), new RegExp(`replaying ${files.length} upload`), 'the log says the journal was replayed')
    const sums = await op(`cd ${JSON.stringify(path.join(m2.mountpoint, 'sub'))} && md5sum ${files.map(f => f.name).join(' ')}`)
    t.same(sums.out.split('\n').map(l => l.split(' ')[0]), files.map(f => md5(f.data)), 'and every file reads back through the mount')
    t.equal(await m2.stop(), 0)
  })
}
