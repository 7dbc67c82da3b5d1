// The seeded random-operation exerciser through a real SFTP mount (OpenSSH sshd on 127.0.0.1). Each mount runs a
// fixed set of seeds plus one random seed, printed as a comment (test/helpers/timing.ts); a failure names its seed,
// and FSX_TEST_SEED=N runs N as the extra seed. FSX_SFTP_EXERCISER_OPS=N sets the length of each balanced run
// (default 1,700: CI time stays modest; the high-performance runs are a fifth).
import t from 'tap'
import { fuseAvailable, mountFsx, run } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'

const SEEDS = testSeeds([1, 2112076333], line => t.comment(line))
const OPS = Number(process.env.FSX_SFTP_EXERCISER_OPS ?? 1_700)

if (fuseAvailable(t) && sshdAvailable(t)) {
  const sshd = await startSshd(t)

  for (const seed of SEEDS) {
    t.test(`${OPS} random operations through a balanced SFTP mount match the in-memory model (seed=${seed})`, async t => {
      const m = await mountFsx(t, sshd.url, ['--preset', 'balanced'], { env: sshd.env })
      const report = await exercise({ root: m.mountpoint, seed, ops: OPS, opTimeoutMs: 60_000 })
      t.equal(report.ops, OPS)
      t.ok(report.bytesWritten > 0 && report.bytesRead > 0)
      t.equal(await m.stop(), 0)
    })

    t.test(`random operations through a high-performance SFTP mount stay correct (seed=${seed})`, async t => {
      const m = await mountFsx(t, sshd.url, ['--preset', 'high-performance'], { env: sshd.env })
      const report = await exercise({ root: m.mountpoint, seed, ops: Math.ceil(OPS / 5), opTimeoutMs: 60_000 })
      t.equal(report.ops, Math.ceil(OPS / 5))
      t.equal(await m.stop(), 0)
    })
  }

  const fioSeed = SEEDS[SEEDS.length - 1]
  t.test(`fio --verify finds no corruption with concurrent random writes through an SFTP mount (randseed=${fioSeed})`, async t => {
    const m = await mountFsx(t, sshd.url, ['--preset', 'balanced'], { env: sshd.env })
    const r = await run('fio', ['--name=verify', `--directory=${m.mountpoint}`, '--rw=randwrite', '--bs=4k,64k',
      '--size=8M', '--ioengine=psync', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--do_verify=1',
      '--numjobs=2', '--group_reporting', '--output-format=terse', '--randseed=' + fioSeed], { timeoutMs: 120_000 })
    t.equal(r.code, 0, `fio exit 0: ${r.stderr}`)
    t.notMatch(r.stderr, /verify: bad|crc32c: wanted/)
    t.equal(await m.stop(), 0)
  })
}
