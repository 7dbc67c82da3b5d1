/**
 * The kernel engine (src/fuse/kernel) through real mounts: passthrough (zero READ requests for a local file, and
 * served I/O when passthrough is off or refused), ls -l on a warm mount without GETXATTR or LOOKUP requests,
 * kernel notifications when fsx learns of a change (fsx invalidate, the background validator) with hour-long
 * kernel TTLs, and a mount by a user who is not root (through fusermount3). Figures come from `fsx stats --json`.
 */
import t from 'tap'
import path from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { appendFile, chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dropKernelCaches, fsx, fuseAvailable, isMounted, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { testSeeds, waitUntil } from '../helpers/timing.js'
import { exercise } from '../helpers/exerciser.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'

interface Figures { ops: Record<string, { count: number }>, engine?: { engine: string, passthroughOpens: number, servedOpens: number, features: string[] } }

async function figures (mnt: string): Promise<Figures> {
  const r = await fsx(['stats', mnt, '--json'])
  if (r.code !== 0) throw new Error(`fsx stats: ${r.stderr}`)
  return JSON.parse(r.stdout).mounts[0]
}

const count = (f: Figures, op: string): number => f.ops[op]?.count ?? 0
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')

if (fuseAvailable(t)) {
  const big = randomBytes(48 * 1024 * 1024 + 123)

  t.test('a large local file is read through passthrough: zero READ requests, every byte right', async t => {
    const data = await tempDir('fsx-data-')
    await writeFile(path.join(data, 'big'), big)
    const m = await mountFsx(t, data, [])
    await dropKernelCaches()
    const r = await sh('md5sum big | cut -d" " -f1', m.mountpoint)
    t.equal(r.stdout.trim(), md5(big), 'the content matches')
    const f = await figures(m.mountpoint)
    t.equal(f.engine?.engine, 'kernel', 'the kernel engine is the default')
    t.ok(f.engine?.features.includes('PASSTHROUGH'), 'passthrough was negotiated')
    t.equal(count(f, 'read'), 0, 'no READ request reached fsx')
    t.ok((f.engine?.passthroughOpens ?? 0) >= 1, 'the open was passed through')
    const w = await sh('printf tail >> big && tail -c 4 big', m.mountpoint)
    t.equal(w.stdout, 'tail', 'writes go through to the backing file as well')
    t.equal((await readFile(path.join(data, 'big'))).subarray(-4).toString(), 'tail')
    t.equal(count(await figures(m.mountpoint), 'write'), 0, 'and reach fsx as no WRITE request')
  })

  t.test('with passthrough off, the same read is served by fsx, byte for byte', async t => {
    const data = await tempDir('fsx-data-')
    await writeFile(path.join(data, 'big'), big)
    const m = await mountFsx(t, data, ['--no-passthrough'])
    await dropKernelCaches()
    const r = await sh('md5sum big | cut -d" " -f1', m.mountpoint)
    t.equal(r.stdout.trim(), md5(big))
    const f = await figures(m.mountpoint)
    t.ok(count(f, 'read') > 0, `fsx served ${count(f, 'read')} READ requests`)
    t.equal(f.engine?.passthroughOpens, 0)
  })

  t.test('ls -l of 2,000 files on a warm mount makes no GETXATTR and no LOOKUP request', async t => {
    const data = await tempDir('fsx-data-')
    await mkdir(path.join(data, 'many'))
    await Promise.all(Array.from({ length: 2000 }, async (_, i) => await writeFile(path.join(data, 'many', `f${i}`), String(i))))
    // "Warm": within the kernel's TTLs (a minute here, so a slow machine between the two listings changes nothing).
    const m = await mountFsx(t, data, ['--attr-ttl', '1m', '--entry-ttl', '1m'])
    const cold = await sh('ls -l many | wc -l', m.mountpoint)
    t.equal(cold.stdout.trim(), '2001')
    const before = await figures(m.mountpoint)
    const warm = await sh('ls -l many | wc -l', m.mountpoint)
    t.equal(warm.stdout.trim(), '2001')
    const after = await figures(m.mountpoint)
    t.equal(count(after, 'getxattr') - count(before, 'getxattr'), 0, 'no GETXATTR')
    t.equal(count(after, 'lookup') - count(before, 'lookup'), 0, 'no LOOKUP')
  })

  t.test('with kernel TTLs of an hour, a change fsx learns of is seen at once', async t => {
    const data = await tempDir('fsx-data-')
    await writeFile(path.join(data, 'f'), 'one')
    const m = await mountFsx(t, data, ['--attr-ttl', '1h', '--entry-ttl', '1h', '--negative-ttl', '1h', '--consistency', 'eventual',
      '--attr-cache-ttl', '2s', '--validate-interval', '1s'])
    t.equal((await sh('cat f; stat -c %s f; ls', m.mountpoint)).stdout, 'one3\nf\n')
    // Changed on the backing side: the kernel would trust its cached size and pages for an hour.
    await appendFile(path.join(data, 'f'), ' two')
    await waitUntil(async () => (await sh('stat -c %s f', m.mountpoint)).stdout.trim() === '7', { timeoutMs: 15_000, what: 'the validator to notice the change and tell the kernel' })
    t.equal((await sh('cat f', m.mountpoint)).stdout, 'one two', 'the new content, not cached pages')
    const f = await figures(m.mountpoint)
    t.ok((f.engine as unknown as { notifications: number }).notifications > 0, 'through kernel notifications')

    t.match((await sh('cat g 2>&1 || true', m.mountpoint)).stdout, /No such file/, 'g does not exist yet')
    await writeFile(path.join(data, 'g'), 'new')
    t.match((await sh('cat g 2>&1 || true', m.mountpoint)).stdout, /No such file/, 'and the kernel keeps that answer for an hour')
    const inv = await fsx(['invalidate', m.mountpoint])
    t.equal(inv.code, 0, inv.stderr)
    t.equal((await sh('cat g; ls | tr "\\n" " "', m.mountpoint)).stdout, 'newf g ', 'after fsx invalidate the kernel sees it at once')
  })

  t.test('a user who is not root mounts through fusermount3; passthrough is refused and fsx serves the I/O', async t => {
    const uid = 1001
    // fusermount3 opens /dev/fuse as the user: distributions make it 0666; a container may not.
    const dev = (await import('node:fs/promises')).stat
    const devMode = (await dev('/dev/fuse')).mode & 0o777
    if ((devMode & 0o006) !== 0o006) {
      await chmod('/dev/fuse', 0o666)
      t.teardown(async () => { await chmod('/dev/fuse', devMode) })
    }
    // fusermount3 wants the user to have a name: make one for the test when uid 1001 has none.
    if ((await run('getent', ['passwd', String(uid)])).code !== 0) {
      const made = await run('useradd', ['--no-create-home', '--uid', String(uid), '--user-group', '--shell', '/usr/sbin/nologin', 'fsx-test-user'])
      t.equal(made.code, 0, `useradd: ${made.stderr}`)
      t.teardown(async () => { await run('userdel', ['fsx-test-user']) })
    }
    const base = await tempDir('fsx-user-')
    await chmod(base, 0o755)
    const data = path.join(base, 'data')
    const mnt = path.join(base, 'fsx-mnt-user')
    const home = path.join(base, 'home')
    for (const d of [data, mnt, home]) { await mkdir(d); await chown(d, uid, uid) }
    await writeFile(path.join(data, 'big'), big)
    await chown(path.join(data, 'big'), uid, uid)
    // NODE_OPTIONS cleared: the test runner's own hooks would write where this user may not.
    const env = { HOME: home, XDG_RUNTIME_DIR: home, XDG_CACHE_HOME: path.join(home, 'cache'), XDG_STATE_HOME: path.join(home, 'state'), NODE_OPTIONS: '' }
    const asUser = ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--']
    const mounted = await run(asUser[0], [...asUser.slice(1), process.execPath, path.resolve('bin/run.js'), 'mount', data, mnt, '--daemon'], { env })
    t.teardown(async () => {
      await run(asUser[0], [...asUser.slice(1), process.execPath, path.resolve('bin/run.js'), 'unmount', mnt], { env })
      await run('fusermount', ['-uz', mnt])
      await rm(base, { recursive: true, force: true })
    })
    t.equal(mounted.code, 0, `fsx mount as uid ${uid}: ${mounted.stderr}`)
    const r = await run(asUser[0], [...asUser.slice(1), 'md5sum', path.join(mnt, 'big')], { env })
    t.equal(r.stdout.split(' ')[0], md5(big), 'the content matches')
    const st = await run(asUser[0], [...asUser.slice(1), process.execPath, path.resolve('bin/run.js'), 'stats', mnt, '--json'], { env })
    const f = JSON.parse(st.stdout).mounts[0] as Figures
    t.equal(f.engine?.engine, 'kernel')
    t.equal(f.engine?.passthroughOpens, 0, 'no passthrough without CAP_SYS_ADMIN')
    t.ok(count(f, 'read') > 0, 'fsx served the reads')
  })

  if (sshdAvailable(t)) {
    t.test('with the kernel writeback cache (SFTP), the exerciser still matches its model', async t => {
      const sshd = await startSshd(t)
      const m = await mountFsx(t, sshd.url, ['--writeback-cache'], { env: sshd.env })
      const f = await figures(m.mountpoint)
      t.ok(f.engine?.features.includes('WRITEBACK_CACHE'), 'the kernel buffers writes')
      for (const seed of testSeeds([31], line => t.comment(line))) {
        const report = await exercise({ root: m.mountpoint, seed, ops: 1500 })
        t.equal(report.ops, 1500, `seed=${seed}`)
      }
    })
  }

  t.test('with --auto-unmount, a kill -9 of the mount process leaves no dead mount behind', async t => {
    const data = await tempDir('fsx-data-')
    await writeFile(path.join(data, 'f'), 'x')
    const m = await mountFsx(t, data, ['--auto-unmount'])
    t.equal((await sh('cat f', m.mountpoint)).stdout, 'x')
    m.child.kill('SIGKILL')
    await waitUntil(async () => !await isMounted(m.mountpoint), { timeoutMs: 10_000, what: 'fusermount3 to unmount after the kill' })
    t.pass('unmounted by fusermount3\'s auto_unmount watcher')
    const clean = await mountFsx(t, data, ['--auto-unmount'], { mountpoint: m.mountpoint })
    t.equal(await clean.stop(), 0, 'and a normal stop still unmounts cleanly')
    t.equal(await isMounted(m.mountpoint), false)
  })
}
