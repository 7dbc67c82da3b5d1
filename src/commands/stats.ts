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
  static summary = 'Live figures from running mounts: engine, operations and latency, caches, readahead, write-back, backend, memory.'
  static description = 'With --json: {"mounts": [{"mountpoint", "source", "preset", "ops", "caches", "readahead", "writeback", ' +
    '"backend", "memory", "engine"}]} (one compact line per refresh with --watch); an error is {"error": {"code", "message", ' +
    '"hint", "exitCode"}}. With no mount running, and no --watch, it fails (exit 4).'

  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> stats',
    '<%= config.bin %> stats ./mnt --json',
    '<%= config.bin %> stats ./mnt --watch 2'
  ]

  static args = {
    mountpoint: Args.string({ description: 'one mount (default: all running mounts)' })
  }

  static flags = {
    watch: Flags.integer({ char: 'w', summary: 'Refresh every SECONDS until interrupted.', helpValue: 'SECONDS', min: 1 })
  }

  async run (): Promise<{ mounts: MountSnapshot[] }> {
    const { args, flags } = await this.parse(Stats)
    if (!flags.watch) {
      const mounts = await collect(args.mountpoint)
      if (mounts.length === 0) {
        throw new FsxError('ENOTMOUNTED', 'no fsx mounts are running', { hint: 'start one with: fsx mount SOURCE MOUNTPOINT' })
      }
      this.log(mounts.map(render).join('\n\n'))
      return { mounts }
    }
    for (;;) {
      const mounts = await collect(args.mountpoint)
      if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ mounts }) + '\n')
      else {
        if (process.stdout.isTTY) process.stdout.write('\u001b[2J\u001b[H')
        this.log(mounts.length === 0 ? chalk.dim('no fsx mounts are running') : mounts.map(render).join('\n\n'))
      }
      await new Promise(resolve => setTimeout(resolve, flags.watch! * 1000))
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
  const c = s.coherence
  if (c) {
    const state = c.connected ? chalk.green('connected') : chalk.yellow(`not connected${c.lastError ? ` (${c.lastError})` : ''}: on TTLs until it is back`)
    out.push(`  coherence: ${c.server} ${state} · ${c.sent} sent, ${c.received} received, ${c.applied} invalidations applied` +
      `, lag p50 ${c.lagP50Ms.toFixed(1)} ms p99 ${c.lagP99Ms.toFixed(1)} ms` +
      (c.outages > 0 ? `, ${c.outages} outages, ${c.resets} resets` : '') + (c.waiting > 0 ? `, ${c.waiting} changes waiting to be sent` : ''))
  }
  const be = Object.entries(s.backend).map(([k, v]) => `${k} ${/bytes/i.test(k) ? formatSize(v) : v}`).join(', ')
  out.push(`  backend: ${be || chalk.dim('no counters')}`)
  for (const [name, figures] of Object.entries(s.extensions ?? {})) {
    const show = (k: string, v: number): string => `${k} ${/bytes/i.test(k) ? formatSize(v) : Number.isInteger(v) ? v : v.toFixed(3)}`
    out.push(`  ${name}: ` + Object.entries(figures).map(([k, v]) => typeof v === 'number'
      ? show(k, v)
      : `${k} ${Object.entries(v).map(([kk, vv]) => show(kk, vv)).join(' / ')}`).join(', '))
  }
  const m = s.memory
  out.push(`  memory: rss ${formatSize(m.rssBytes)}, heap ${formatSize(m.heapUsedBytes)}${m.budgetBytes ? `, caches ${formatSize(m.usedBytes)} of ${formatSize(m.budgetBytes)} budget` : ''}`)
  return out.join('\n')
}
