/**
 * Exerciser seeds that once failed through a high-performance SFTP mount (issue 13 item 8), replayed under a CPU hog
 * (their failures depended on timing): each must now match the in-memory model.
 *
 * - 2112076333: content mismatch at op 61, right after `rename /f1 -> /f0 (replaces)` (did not reproduce on rerun).
 * - 780326213: at op 172 a read past the model's end returned data: an ftruncate through one handle was undone by
 *   a write through another open of the file still in flight on another connection (1 run in 3 under a CPU hog).
 */
import t from 'tap'
import { fuseAvailable, mountFsx } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { startCpuHog } from '../helpers/cpu-hog.js'
import { exercise } from '../helpers/exerciser.js'
import { scaled } from '../helpers/timing.js'

/** Seed → ops to run: past the op that failed, with a margin. */
const REGRESSIONS: Array<[number, number]> = [[2112076333, 300], [780326213, 300]]

if (fuseAvailable(t) && sshdAvailable(t)) {
  const sshd = await startSshd(t)
  await startCpuHog(t)
  for (const [seed, ops] of REGRESSIONS) {
    t.test(`${ops} operations of seed ${seed} through a high-performance SFTP mount under a CPU hog match the model`, async t => {
      const m = await mountFsx(t, sshd.url, ['--preset', 'high-performance'], { env: sshd.env })
      const report = await exercise({ root: m.mountpoint, seed, ops, opTimeoutMs: scaled(120_000) })
      t.equal(report.ops, ops)
      t.equal(await m.stop(), 0)
    })
  }
}
