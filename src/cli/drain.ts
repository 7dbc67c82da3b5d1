/**
 * Drains a mount's write-back (the control "flush" request) while a second connection polls its figures to show
 * progress: a bar on a TTY, nothing otherwise.
 */
import cliProgress from 'cli-progress'
import { ask } from '../control/client.js'
import type { MountSnapshot } from '../control/metrics.js'
import { formatSize } from '../config/units.js'

export async function drainWithProgress (mountpoint: string, show: boolean): Promise<MountSnapshot['writeback']> {
  const first = ((await ask(mountpoint, { cmd: 'stats' })).mount as MountSnapshot).writeback
  const total = Math.max(first.dirtyBytes, 1)
  const bar = show && process.stderr.isTTY && first.dirtyBytes > 0
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'flushing [{bar}] {done} of {total_h} · {queued} queued · {errors} errors', hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined
  bar?.start(total, 0, { done: '0', total_h: formatSize(total), queued: first.queued, errors: first.errors })
  const poll = setInterval(() => {
    ask(mountpoint, { cmd: 'stats' }, 2000).then(r => {
      const wb = (r.mount as MountSnapshot).writeback
      bar?.update(Math.max(0, total - wb.dirtyBytes), { done: formatSize(Math.max(0, total - wb.dirtyBytes)), queued: wb.queued, errors: wb.errors })
    }, () => {})
  }, 250)
  try {
    const res = await ask(mountpoint, { cmd: 'flush' }, 24 * 3600 * 1000)
    bar?.update(total, { done: formatSize(total), queued: 0 })
    return res.writeback as MountSnapshot['writeback']
  } finally {
    clearInterval(poll)
    bar?.stop()
  }
}
