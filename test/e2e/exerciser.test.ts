// The seeded random-operation exerciser (in the spirit of the classic fsx tool) and fio --verify, through real
// mounts of the local backend. Each mount runs a fixed set of seeds plus one random seed, printed as a comment
// (test/helpers/timing.ts); a failure names its seed, and FSX_TEST_SEED=N runs N as the extra seed.
// FSX_EXERCISER_OPS=N sets the length of each balanced run (default 7,000; the write-back runs are a quarter).
import t from 'tap'
import { fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'

const SEEDS = testSeeds([1, 20261202], line => t.comment(line))
const OPS = Number(process.env.FSX_EXERCISER_OPS ?? 7_000)

if (fuseAvailable(t)) {
  for (const seed of SEEDS) {
    t.test(`${OPS} random operations through a balanced mount match the in-memory model (seed=${seed})`, async t => {
      const m = await mountFsx(t, await tempDir(t, 'fsx-data-'), ['--preset', 'balanced'])
      const report = await exercise({ root: m.mountpoint, seed, ops: OPS, opTimeoutMs: 60_000 })
      t.equal(report.ops, OPS)
      t.ok(report.bytesWritten > 0 && report.bytesRead > 0)
      t.equal(await m.stop(), 0)
    })

    t.test(`random operations through a high-performance (write-back) mount stay correct (seed=${seed})`, async t => {
      const m = await mountFsx(t, await tempDir(t, 'fsx-data-'), ['--preset', 'high-performance'])
      const report = await exercise({ root: m.mountpoint, seed, ops: Math.ceil(OPS / 4), opTimeoutMs: 60_000 })
      t.equal(report.ops, Math.ceil(OPS / 4))
      t.equal(await m.stop(), 0)
    })
  }

  const fioSeed = SEEDS[SEEDS.length - 1]
  t.test(`fio --verify finds no corruption on the mount (randseed=${fioSeed})`, async t => {
    const m = await mountFsx(t, await tempDir(t, 'fsx-data-'), ['--preset', 'balanced'])
    const r = await run('fio', ['--name=verify', `--directory=${m.mountpoint}`, '--rw=randwrite', '--bs=4k,64k',
      '--size=24M', '--ioengine=psync', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--do_verify=1', '--numjobs=2',
      '--group_reporting', '--output-format=terse', '--randseed=' + fioSeed], { timeoutMs: 300_000 })
    t.equal(r.code, 0, `fio exit 0: ${r.stderr}`)
    t.notMatch(r.stderr, /verify: bad|crc32c: wanted/)
    t.equal(await m.stop(), 0)
  })
}
