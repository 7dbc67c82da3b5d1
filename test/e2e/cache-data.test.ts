// The data cache through a real FUSE mount of a whole-object backend (the mem: fixture plugin, S3-like). The mount
// is served by this test process (startMount, as `fsx mount` does), so the backend's own read counter can be
// read directly; every file operation on the mount runs in a child process (cat, cp, cmp), never in this one.
// Between the two reads the kernel page cache is dropped, so the second read really reaches fsx.
import t from 'tap'
import path from 'node:path'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { fuseAvailable, forceUnmount, run, tempDir } from '../helpers/mount.js'
import { startMount, type RunningMount } from '../../dist/mount/service.js'
import { BackendRegistry } from '../../dist/backend/registry.js'
import { resolveSettings } from '../../dist/config/resolve.js'
import { parseSource } from '../../dist/backend/source.js'
import { memoryBackend } from '../fixtures/fsx-backend-memory/memory.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'

const MiB = 1024 * 1024

async function mountMem (t: Tap.Test, source: string, mountpoint: string, flags: Record<string, string>, preset = 'balanced'): Promise<RunningMount> {
  const registry = new BackendRegistry()
  registry.register(memoryBackend)
  const resolved = await resolveSettings({ preset, flags, env: {} })
  const m = await startMount({ source: parseSource(source), mountpoint, resolved, registry, log: line => t.comment(line) })
  t.teardown(async () => { await m.stop({ force: true }).catch(() => {}); await forceUnmount(mountpoint) })
  return m
}

/** Drops the kernel's page cache (of every file system), from a child process. */
async function dropPageCache (file: string): Promise<void> {
  const r = await run('sh', ['-c', 'sync; echo 1 > /proc/sys/vm/drop_caches'])
  // Without /proc/sys write access, ask for this file's clean pages to go (posix_fadvise DONTNEED).
  if (r.code !== 0) await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
}

const reads = (m: RunningMount): number => m.backend.counters!().reads

if (fuseAvailable(t)) {
  t.test('a second cat of a large file makes no backend read, also after a remount', async t => {
    const home = await tempDir(t, 'fsx-cache-data-')
    const cacheDir = path.join(home, 'cache')
    const source = `mem://cache-data-${process.pid}`
    const mnt = await tempDir(t, 'fsx-mnt-')
    const blob = randomBytes(24 * MiB + 321)
    const src = path.join(home, 'blob')
    await writeFile(src, blob)

    let m = await mountMem(t, source, mnt, { cacheDir })
    const big = path.join(mnt, 'big.bin')
    t.equal((await run('cp', [src, big])).code, 0)
    await dropPageCache(big)
    const r0 = reads(m)
    t.equal((await run('cmp', [src, big])).code, 0, 'first read: the right bytes')
    const r1 = reads(m)
    t.ok(r1 - r0 >= 25 && r1 - r0 <= 30, `first read fetched 1 MiB blocks (${r1 - r0} backend reads)`)

    await dropPageCache(big)
    const hits = m.vfs.stats().caches.dataDisk.hits
    t.equal((await run('cmp', [src, big])).code, 0, 'second read: the right bytes')
    t.equal(reads(m), r1, 'the second read made no backend read')
    t.ok(m.vfs.stats().caches.dataDisk.hits > hits, 'it reached fsx and was served by the disk tier')

    await m.stop()
    m = await mountMem(t, source, mnt, { cacheDir })
    const r2 = reads(m)
    t.equal((await run('cmp', [src, big])).code, 0, 'after a remount: the right bytes')
    t.equal(reads(m), r2, 'after a remount the disk tier still serves it: no backend read')

    t.equal((await run('sh', ['-c', `printf X | dd of=${big} bs=1 seek=5 conv=notrunc status=none`])).code, 0)
    blob[5] = 'X'.charCodeAt(0)
    await writeFile(src, blob)
    await dropPageCache(big)
    t.equal((await run('cmp', [src, big])).code, 0, 'a write through the mount is seen: the cache was invalidated')
    await m.stop()
  })

  for (const preset of ['high-performance', 'safe']) {
    t.test(`random operations through the caches of a whole-object backend stay correct (${preset})`, async t => {
      const home = await tempDir(t, 'fsx-cache-data-')
      const mnt = await tempDir(t, 'fsx-mnt-')
      const m = await mountMem(t, `mem://cache-ex-${preset}-${process.pid}`, mnt, { cacheDir: path.join(home, 'cache') }, preset)
      for (const seed of testSeeds([7], line => t.comment(line))) {
        // NB: this process serves the mount; the exerciser only uses async fs calls, so it may run here.
        const report = await exercise({ root: mnt, seed, ops: 1000, maxFileSize: 3 * MiB, opTimeoutMs: 60_000 })
        t.equal(report.ops, 1000, `seed=${seed}`)
      }
      await m.stop()
    })
  }

  t.test('a sparse read of a big file fetches only the block it touches', async t => {
    const home = await tempDir(t, 'fsx-cache-data-')
    const source = `mem://cache-sparse-${process.pid}`
    const mnt = await tempDir(t, 'fsx-mnt-')
    const m = await mountMem(t, source, mnt, { cacheDir: path.join(home, 'cache') })
    const big = path.join(mnt, 'sparse.bin')
    const blob = randomBytes(40 * MiB)
    const src = path.join(home, 'blob')
    await writeFile(src, blob)
    t.equal((await run('cp', [src, big])).code, 0)
    await dropPageCache(big)
    const r0 = reads(m)
    const r = await run('dd', [`if=${big}`, 'bs=4096', 'skip=5000', 'count=1', 'status=none'], { timeoutMs: 30_000 })
    t.equal(r.code, 0)
    t.equal(Buffer.from(r.stdout, 'latin1').length > 0, true)
    t.ok(reads(m) - r0 <= 2, `one 4K read cost ${reads(m) - r0} backend read(s), not the whole 40 MiB`)
    await m.stop()
  })
}
