// Operating a running mount: fsx warm fills the caches so later reads make no backend reads, fsx invalidate drops
// them, fsx flush drains write-back, fsx unmount drains before unmounting. Uses the whole-object `mem:` fixture
// backend (installed as a third-party plugin), whose counters count every backend read.
import t from 'tap'
import path from 'node:path'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dropKernelCaches, fsx, fuseAvailable, isMounted, mountFsx, run, tempDir, ROOT } from '../helpers/mount.js'

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'fsx-backend-memory')

async function stats (mnt: string, env: Record<string, string>): Promise<any> {
  const r = await fsx(['stats', mnt, '--json'], { env })
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout).mounts[0]
}

if (fuseAvailable(t)) {
  t.test('warm, then read: zero backend reads; invalidate drops the caches; flush drains write-back', async t => {
    const home = await tempDir(t, 'fsx-ops-')
    const env = {
      XDG_DATA_HOME: path.join(home, 'data'), XDG_CACHE_HOME: path.join(home, 'cache'), XDG_CONFIG_HOME: path.join(home, 'config'),
      FSX_RUNTIME_DIR: path.join(home, 'run')
    }
    const inst = await fsx(['plugins', 'install', `file:${FIXTURE}`], { env, timeoutMs: 180_000 })
    t.equal(inst.code, 0, inst.stderr)
    const m = await mountFsx(t, 'mem://ops', ['--preset', 'high-performance'], { env })
    const names = ['a.bin', 'b.bin', 'c.bin', 'big.bin']
    for (const n of names) await writeFile(path.join(m.mountpoint, n), randomBytes(n === 'big.bin' ? 3 * 1024 * 1024 : 300 * 1024))

    const fl = await fsx(['flush', m.mountpoint, '--json'], { env, timeoutMs: 120_000 })
    t.equal(fl.code, 0, fl.stderr)
    const wb = JSON.parse(fl.stdout).writeback
    t.equal(wb.dirtyBytes, 0, 'nothing left dirty after fsx flush')
    t.equal(wb.queued, 0)

    const inv = await fsx(['invalidate', m.mountpoint], { env })
    t.equal(inv.code, 0, inv.stderr)
    await dropKernelCaches()
    const r0 = (await stats(m.mountpoint, env)).backend.reads
    const warm = await fsx(['warm', m.mountpoint, m.mountpoint, '--json', '--jobs', '2'], { env, timeoutMs: 120_000 })
    t.equal(warm.code, 0, warm.stderr)
    const w = JSON.parse(warm.stdout)
    t.equal(w.files, names.length, warm.stdout)
    t.equal(w.errors, 0)
    t.equal(w.bytes, 3 * 300 * 1024 + 3 * 1024 * 1024, warm.stdout)
    const r1 = (await stats(m.mountpoint, env)).backend.reads
    t.ok(r1 > r0, `warming read from the backend (${r0} → ${r1})`)

    await dropKernelCaches()
    const cat = await run('bash', ['-c', `cat ${names.join(' ')} | md5sum`], { cwd: m.mountpoint })
    t.equal(cat.code, 0, cat.stderr)
    const after = await stats(m.mountpoint, env)
    t.equal(after.backend.reads, r1, 'reading warmed files makes zero backend reads')
    t.ok(after.ops.read.count > 0, 'the reads did reach fsx (kernel caches were dropped)')

    const inv2 = await fsx(['invalidate', m.mountpoint, path.join(m.mountpoint, 'a.bin')], { env })
    t.equal(inv2.code, 0, inv2.stderr)
    await dropKernelCaches()
    await run('cat', [path.join(m.mountpoint, 'a.bin')])
    t.ok((await stats(m.mountpoint, env)).backend.reads > r1, 'after invalidate the file is read from the backend again')

    const bad = await fsx(['invalidate', m.mountpoint, '/etc/passwd'], { env })
    t.equal(bad.code, 1)
    t.match(bad.stderr, /is not inside the mount/)

    await writeFile(path.join(m.mountpoint, 'late.bin'), randomBytes(64 * 1024))
    const un = await fsx(['unmount', m.mountpoint], { env, timeoutMs: 120_000 })
    t.equal(un.code, 0, un.stderr)
    t.notOk(await isMounted(m.mountpoint))
  })

  t.test('warm --pin keeps a file cached while other reads overflow the cache; --unpin releases it', async t => {
    const home = await tempDir(t, 'fsx-pin-')
    const env = {
      XDG_DATA_HOME: path.join(home, 'data'), XDG_CACHE_HOME: path.join(home, 'cache'), XDG_CONFIG_HOME: path.join(home, 'config'),
      FSX_RUNTIME_DIR: path.join(home, 'run'),
      // A 4 MiB disk tier and no memory tier: two 3 MiB files cannot both stay.
      FSX_DATA_CACHE_SIZE: '4M', FSX_DATA_CACHE_MEMORY: '0'
    }
    const inst = await fsx(['plugins', 'install', `file:${FIXTURE}`], { env, timeoutMs: 180_000 })
    t.equal(inst.code, 0, inst.stderr)
    const m = await mountFsx(t, 'mem://pin', ['--preset', 'balanced'], { env })
    for (const n of ['model.bin', 'scan1.bin', 'scan2.bin']) await writeFile(path.join(m.mountpoint, n), randomBytes(3 * 1024 * 1024))
    const model = path.join(m.mountpoint, 'model.bin')

    const warm = await fsx(['warm', m.mountpoint, model, '--pin', '--json'], { env, timeoutMs: 120_000 })
    t.equal(warm.code, 0, warm.stderr)
    t.equal(JSON.parse(warm.stdout).pinnedBytes, 3 * 1024 * 1024, warm.stdout)
    await dropKernelCaches()
    const scans = await run('cat', [path.join(m.mountpoint, 'scan1.bin'), path.join(m.mountpoint, 'scan2.bin')])
    t.equal(scans.code, 0, scans.stderr)
    const s1 = await stats(m.mountpoint, env)
    t.ok(s1.caches.dataDisk.bytes <= 4 * 1024 * 1024, `the cap holds (${s1.caches.dataDisk.bytes} bytes)`)
    t.equal(s1.caches.dataDisk.pinnedBytes, 3 * 1024 * 1024)
    await dropKernelCaches()
    t.equal((await run('cat', [model])).code, 0)
    t.equal((await stats(m.mountpoint, env)).backend.reads, s1.backend.reads, 'the pinned file is read with zero backend reads')

    const un = await fsx(['warm', m.mountpoint, model, '--unpin'], { env })
    t.equal(un.code, 0, un.stderr)
    t.match(un.stdout, /unpinned 1 files/)
    await dropKernelCaches()
    await run('cat', [path.join(m.mountpoint, 'scan1.bin'), path.join(m.mountpoint, 'scan2.bin')])
    const s2 = await stats(m.mountpoint, env)
    t.equal(s2.caches.dataDisk.pinnedBytes, 0)
    await dropKernelCaches()
    t.equal((await run('cat', [model])).code, 0)
    t.ok((await stats(m.mountpoint, env)).backend.reads > s2.backend.reads, 'unpinned, the file was evicted by the scans and is read from the backend again')
    t.equal(await m.stop(), 0)
  })

  t.test('warm --pin on a local mount says there is no data cache to pin in', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') }
    const data = await tempDir(t, 'fsx-pin-local-')
    await writeFile(path.join(data, 'f'), 'x')
    const m = await mountFsx(t, data, [], { env })
    const r = await fsx(['warm', m.mountpoint, path.join(m.mountpoint, 'f'), '--pin'], { env })
    t.equal(r.code, 1)
    t.match(r.stderr, /has no data cache to pin files in/)
    t.equal(r.stderr.trim().split('\n').filter(l => !/^\s*(hint|→)/i.test(l)).length >= 1, true)
  })

  t.test('warm of a path that is not an fsx mount is one line', async t => {
    const r = await fsx(['warm', await tempDir(t), 'x'], { env: { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') } })
    t.equal(r.code, 1)
    t.match(r.stderr, /is not an fsx mount/)
  })
}
