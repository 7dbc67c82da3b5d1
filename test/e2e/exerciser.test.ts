// The seeded random-operation exerciser (in the spirit of the classic fsx tool) and fio --verify, through real
// mounts of the local backend. A failure prints the seed; FSX_SEED=N replays it.
import t from 'tap'
import { fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'

const seed = process.env.FSX_SEED ? Number(process.env.FSX_SEED) : Math.floor(Math.random() * 2 ** 31)
const OPS = Number(process.env.FSX_EXERCISER_OPS ?? 20_000)

if (fuseAvailable(t)) {
  t.test(`${OPS} random operations through a balanced mount match the in-memory model (seed=${seed})`, async t => {
    const m = await mountFsx(t, await tempDir('fsx-data-'), ['--preset', 'balanced'])
    const report = await exercise({ root: m.mountpoint, seed, ops: OPS, opTimeoutMs: 60_000 })
    t.equal(report.ops, OPS)
    t.ok(report.bytesWritten > 0 && report.bytesRead > 0)
    t.equal(await m.stop(), 0)
  })

  t.test(`random operations through a high-performance (write-back) mount stay correct (seed=${seed + 1})`, async t => {
    const m = await mountFsx(t, await tempDir('fsx-data-'), ['--preset', 'high-performance'])
    const report = await exercise({ root: m.mountpoint, seed: seed + 1, ops: Math.ceil(OPS / 4), opTimeoutMs: 60_000 })
    t.equal(report.ops, Math.ceil(OPS / 4))
    t.equal(await m.stop(), 0)
  })

  t.test('fio --verify finds no corruption on the mount', async t => {
    const m = await mountFsx(t, await tempDir('fsx-data-'), ['--preset', 'balanced'])
    const r = await run('fio', ['--name=verify', `--directory=${m.mountpoint}`, '--rw=randwrite', '--bs=4k,64k',
      '--size=24M', '--ioengine=psync', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--do_verify=1', '--numjobs=2',
      '--group_reporting', '--output-format=terse', '--randseed=' + seed], { timeoutMs: 300_000 })
    t.equal(r.code, 0, `fio exit 0: ${r.stderr}`)
    t.notMatch(r.stderr, /verify: bad|crc32c: wanted/)
    t.equal(await m.stop(), 0)
  })
}
