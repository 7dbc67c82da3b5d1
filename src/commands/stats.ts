import { Args, Flags } from '@oclif/core'
import chalk from 'chalk'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { ask, liveMounts } from '../control/client.js'
import type { MountSnapshot } from '../control/metrics.js'
import { formatSize } from '../config/units.js'
import { FsxError } from '../errors.js'
import { uptime } from './mounts.js'

export default class Stats extends FsxCommand {
  static summary = 'Live figures from running mounts: operations and latency, caches, readahead, write-back, backend, memory.'
  static examples = [
    '<%= config.bin %> stats',
    '<%= config.bin %> stats ./mnt --json',
    '<%= config.bin %> stats ./mnt --watch 2'
  ]

  static args = {
    mountpoint: Args.string({ description: 'one mount (default: all running mounts)' })
  }

  static flags = {
    json: Flags.boolean({ summary: 'Print {"mounts": [{"mountpoint", "source", "preset", "ops", "caches", "readahead", "writeback", "backend", "memory"}]}.' }),
    watch: Flags.integer({ char: 'w', summary: 'Refresh every SECONDS until interrupted.', helpValue: 'SECONDS', min: 1 })
  }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Stats)
    const once = async (): Promise<void> => {
      const snaps = await collect(args.mountpoint)
      if (flags.json) this.log(JSON.stringify({ mounts: snaps }, null, flags.watch ? 0 : 2))
      else {
        if (flags.watch && process.stdout.isTTY) process.stdout.write('\u001b[2J\u001b[H')
        this.log(snaps.length === 0 ? chalk.dim('no fsx mounts are running') : snaps.map(render).join('\n\n'))
      }
    }
    await once()
    if (!flags.watch) return
    for (;;) {
      await new Promise(resolve => setTimeout(resolve, flags.watch! * 1000))
      await once()
    }
  }
}

async function collect (mountpoint?: string): Promise<MountSnapshot[]> {
  if (mountpoint) return [(await ask(path.resolve(mountpoint), { cmd: 'stats' })).mount as MountSnapshot]
  const out: MountSnapshot[] = []
  for (const rec of await liveMounts()) {
    try {
      out.push((await ask(rec.mountpoint, { cmd: 'stats' })).mount as MountSnapshot)
    } catch (err) {
      if (!(err instanceof FsxError)) throw err
      process.stderr.write(`fsx: ${rec.mountpoint}: ${err.message}\n`)
    }
  }
  return out
}

function pct (x: number): string {
  const s = `${(x * 100).toFixed(1)}%`
  return x >= 0.8 ? chalk.green(s) : x >= 0.5 ? chalk.yellow(s) : chalk.red(s)
}

function table (rows: string[][]): string {
  // chalk codes do not count toward column widths.
  const plain = (s: string): number => s.replace(/\u001b\[[0-9;]*m/g, '').length
  const w = rows[0].map((_, i) => Math.max(...rows.map(r => plain(r[i] ?? ''))))
  return rows.map((r, i) => {
    const line = r.map((c, j) => j === 0 ? c + ' '.repeat(w[j] - plain(c)) : ' '.repeat(w[j] - plain(c)) + c).join('  ')
    return i === 0 ? chalk.dim(line) : line
  }).join('\n')
}

export function render (s: MountSnapshot): string {
  const out: string[] = []
  out.push(`${chalk.bold(s.mountpoint)}  ${s.source}  ${chalk.dim(`preset ${s.preset} · pid ${s.pid} · up ${uptime(s.uptimeS)} · ${s.openFiles} open`)}`)
  const e = s.engine as { engine?: string, protocol?: string, passthroughOpens?: number, servedOpens?: number, passthroughOff?: string } | undefined
  if (e?.engine === 'kernel') {
    out.push(`  engine: kernel, protocol ${e.protocol ?? '?'}, ${e.passthroughOpens ?? 0} opens passed through (reads and writes go to the host file without fsx), ${e.servedOpens ?? 0} served` +
      (e.passthroughOff ? chalk.dim(` · passthrough off: ${e.passthroughOff}`) : ''))
  } else if (e?.engine) out.push(`  engine: ${e.engine}`)
  const ops = Object.entries(s.ops)
  out.push(ops.length === 0
    ? chalk.dim('  no operations yet')
    : table([['  op', 'count', 'errors', 'p50 ms', 'p95 ms', 'p99 ms'],
        ...ops.map(([op, o]) => [`  ${op}`, String(o.count), o.errors ? chalk.red(String(o.errors)) : '0', o.p50Ms.toFixed(3), o.p95Ms.toFixed(3), o.p99Ms.toFixed(3)])]))
  const caches = Object.entries(s.caches)
  if (caches.length > 0) {
    out.push(table([['  cache', 'hits', 'misses', 'hit rate', 'entries', 'bytes', 'evictions'],
      ...caches.map(([l, c]) => [`  ${l}`, String(c.hits), String(c.misses), c.hits + c.misses === 0 ? chalk.dim('-') : pct(c.hitRate), String(c.entries), formatSize(c.bytes), String(c.evictions)])]))
    const pinned = (s.caches.dataMemory?.pinnedBytes ?? 0) + (s.caches.dataDisk?.pinnedBytes ?? 0)
    if (pinned > 0) out.push(`  pinned: ${formatSize(pinned)} (fsx warm --pin; exempt from eviction)`)
  }
  const ra = s.readahead
  out.push(`  readahead: ${ra.triggered} triggered, ${formatSize(ra.bytesUsed)} used, ${formatSize(ra.bytesWasted)} wasted`)
  const wb = s.writeback
  out.push(`  write-back: ${formatSize(wb.dirtyBytes)} dirty, ${wb.queued} queued, ${wb.inFlight} in flight, ${wb.flushed} flushed, ${wb.errors ? chalk.red(String(wb.errors)) : 0} errors`)
  if (s.stale && (s.stale.serves > 0 || s.stale.backendFailing)) {
    out.push(`  stale-if-error: ${s.stale.serves} answers served from expired caches` +
      (s.stale.backendFailing ? chalk.yellow(` · backend failing now (${s.stale.lastError ?? 'error'})`) : ` · backend answering again (last failure ${s.stale.lastError ?? '?'})`))
  }
  if (s.validator && s.validator.rounds > 0) {
    out.push(`  validator: ${s.validator.rounds} rounds, ${s.validator.checked} checked, ${s.validator.changed} changed` +
      (s.validator.errors ? `, ${chalk.red(String(s.validator.errors))} failed` : ''))
  }
  const be = Object.entries(s.backend).map(([k, v]) => `${k} ${/bytes/i.test(k) ? formatSize(v) : v}`).join(', ')
  out.push(`  backend: ${be || chalk.dim('no counters')}`)
  const m = s.memory
  out.push(`  memory: rss ${formatSize(m.rssBytes)}, heap ${formatSize(m.heapUsedBytes)}${m.budgetBytes ? `, caches ${formatSize(m.usedBytes)} of ${formatSize(m.budgetBytes)} budget` : ''}`)
  return out.join('\n')
}
