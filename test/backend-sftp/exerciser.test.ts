// The seeded random-operation exerciser through a real SFTP mount (OpenSSH sshd on 127.0.0.1). A failure prints
// the seed; FSX_SEED=N replays it, FSX_SFTP_EXERCISER_OPS=N changes the length (default 5,000: CI time stays modest).
import t from 'tap'
import { fuseAvailable, mountFsx, run } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { exercise } from '../helpers/exerciser.js'

const seed = process.env.FSX_SEED ? Number(process.env.FSX_SEED) : Math.floor(Math.random() * 2 ** 31)
const OPS = Number(process.env.FSX_SFTP_EXERCISER_OPS ?? 5_000)

if (fuseAvailable(t) && sshdAvailable(t)) {
  const sshd = await startSshd(t)

  t.test(`${OPS} random operations through a balanced SFTP mount match the in-memory model (seed=${seed})`, async t => {
    const m = await mountFsx(t, sshd.url, ['--preset', 'balanced'], { env: sshd.env })
    const report = await exercise({ root: m.mountpoint, seed, ops: OPS, opTimeoutMs: 60_000 })
    t.equal(report.ops, OPS)
    t.ok(report.bytesWritten > 0 && report.bytesRead > 0)
    t.equal(await m.stop(), 0)
  })

  t.test(`random operations through a high-performance SFTP mount stay correct (seed=${seed + 1})`, async t => {
    const m = await mountFsx(t, sshd.url, ['--preset', 'high-performance'], { env: sshd.env })
    const report = await exercise({ root: m.mountpoint, seed: seed + 1, ops: Math.ceil(OPS / 5), opTimeoutMs: 60_000 })
    t.equal(report.ops, Math.ceil(OPS / 5))
    t.equal(await m.stop(), 0)
  })

  t.test('fio --verify finds no corruption with concurrent random writes through an SFTP mount', async t => {
    const m = await mountFsx(t, sshd.url, ['--preset', 'balanced'], { env: sshd.env })
    const r = await run('fio', ['--name=verify', `--directory=${m.mountpoint}`, '--rw=randwrite', '--bs=4k,64k',
      '--size=8M', '--ioengine=psync', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--do_verify=1',
      '--numjobs=2', '--group_reporting', '--output-format=terse', '--randseed=' + seed], { timeoutMs: 120_000 })
    t.equal(r.code, 0, `fio exit 0: ${r.stderr}`)
    t.notMatch(r.stderr, /verify: bad|crc32c: wanted/)
    t.equal(await m.stop(), 0)
  })
}
