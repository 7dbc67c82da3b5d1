import chalk from 'chalk'
import { FsxCommand } from '../cli/base.js'
import { liveMounts } from '../control/client.js'

export default class Mounts extends FsxCommand {
  static summary = 'List running fsx mounts: mountpoint, source (secrets redacted), preset, pid, uptime.'
  static description = 'With --json: {"mounts": [{"mountpoint", "source", "preset", "pid", "uptimeS", "startedAt"}]}.'
  static examples = ['<%= config.bin %> mounts', '<%= config.bin %> mounts --json']
  static enableJsonFlag = true

  async run (): Promise<{ mounts: MountRow[] }> {
    await this.parse(Mounts)
    const now = Date.now()
    const mounts = (await liveMounts()).map(r => ({
      mountpoint: r.mountpoint,
      source: r.source,
      preset: r.preset,
      pid: r.pid,
      uptimeS: Math.round((now - Date.parse(r.startedAt)) / 1000),
      startedAt: r.startedAt
    }))
    if (mounts.length === 0) {
      this.log(chalk.dim('no fsx mounts are running'))
      return { mounts }
    }
    const rows = [['MOUNTPOINT', 'SOURCE', 'PRESET', 'PID', 'UPTIME'], ...mounts.map(m => [m.mountpoint, m.source, m.preset, String(m.pid), uptime(m.uptimeS)])]
    const w = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
    rows.forEach((r, i) => {
      const line = r.map((c, j) => c.padEnd(w[j])).join('  ').trimEnd()
      this.log(i === 0 ? chalk.dim(line) : line)
    })
    return { mounts }
  }
}

/** One running mount, as `fsx mounts --json` prints it. */
export interface MountRow { mountpoint: string, source: string, preset: string, pid: number, uptimeS: number, startedAt: string }

export function uptime (s: number): string {
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}
