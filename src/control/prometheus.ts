/**
 * Prometheus endpoint of one mount (`fsx mount --metrics-addr HOST:PORT`, loopback by default): prom-client metrics
 * filled from the mount's snapshot at every scrape, served at GET /metrics.
 */
import http from 'node:http'
import client from 'prom-client'
import { FsxError } from '../errors.js'
import type { MountMetrics } from './metrics.js'

/** Parses "PORT", "HOST:PORT" or "[v6]:PORT"; the host defaults to 127.0.0.1. */
export function parseAddr (addr: string): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d+)$/.exec(addr.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FsxError('ECONFIG', `--metrics-addr "${addr}" is not HOST:PORT`, { hint: 'e.g. --metrics-addr 127.0.0.1:9464' })
  }
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port }
}

export function buildRegistry (metrics: MountMetrics): client.Registry {
  const registry = new client.Registry()
  const labelsOf = (): { mountpoint: string } => ({ mountpoint: metrics.info.mountpoint })
  let snap = metrics.snapshot()
  const refresh = (): void => { snap = metrics.snapshot() }
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: client.Gauge) => void): void => {
    registry.registerMetric(new client.Gauge({ name, help, labelNames: ['mountpoint', ...labelNames], registers: [], collect () { this.reset(); fill(this) } }))
  }
  // The first collector refreshes the snapshot the others read (prom-client collects in registration order).
  gauge('fsx_up', 'Whether the mount process is serving (1).', [], g => { refresh(); g.set(labelsOf(), 1) })
  gauge('fsx_ops_total', 'FUSE operations completed, by operation.', ['op'], g => {
    for (const [op, o] of Object.entries(snap.ops)) g.set({ ...labelsOf(), op }, o.count)
  })
  gauge('fsx_op_errors_total', 'FUSE operations that returned an error, by operation.', ['op'], g => {
    for (const [op, o] of Object.entries(snap.ops)) g.set({ ...labelsOf(), op }, o.errors)
  })
  gauge('fsx_op_latency_seconds', 'FUSE operation latency quantiles, by operation.', ['op', 'quantile'], g => {
    for (const [op, o] of Object.entries(snap.ops)) {
      g.set({ ...labelsOf(), op, quantile: '0.5' }, o.p50Ms / 1000)
      g.set({ ...labelsOf(), op, quantile: '0.95' }, o.p95Ms / 1000)
      g.set({ ...labelsOf(), op, quantile: '0.99' }, o.p99Ms / 1000)
    }
  })
  for (const field of ['hits', 'misses', 'evictions', 'entries', 'bytes'] as const) {
    const suffix = field === 'entries' || field === 'bytes' ? '' : '_total'
    gauge(`fsx_cache_${field}${suffix}`, `Cache ${field}, by layer.`, ['layer'], g => {
      for (const [layer, c] of Object.entries(snap.caches)) g.set({ ...labelsOf(), layer }, c[field])
    })
  }
  gauge('fsx_cache_pinned_bytes', 'Bytes of pinned files (fsx warm --pin), by data tier.', ['layer'], g => {
    for (const [layer, c] of Object.entries(snap.caches)) if (c.pinnedBytes !== undefined) g.set({ ...labelsOf(), layer }, c.pinnedBytes)
  })
  gauge('fsx_stale_serves_total', 'Answers served from expired caches because the backend failed (stale-if-error).', [], g => {
    g.set(labelsOf(), snap.stale?.serves ?? 0)
  })
  gauge('fsx_backend_failing', '1 while the backend fails and fsx serves from its caches (stale-if-error).', [], g => {
    g.set(labelsOf(), snap.stale?.backendFailing ? 1 : 0)
  })
  gauge('fsx_validator', 'Background validator figures (rounds, checked, changed, errors).', ['counter'], g => {
    for (const [counter, v] of Object.entries(snap.validator ?? {})) g.set({ ...labelsOf(), counter }, v)
  })
  gauge('fsx_coherence', 'Coherence with other mounts of the source: connected (1/0), messages sent and received, invalidations applied, resets, outages, lag p50/p99 in seconds.', ['counter'], g => {
    const c = snap.coherence
    if (c === undefined) return
    const figures: Record<string, number> = { connected: c.connected ? 1 : 0, sent: c.sent, received: c.received, applied: c.applied, resets: c.resets, outages: c.outages, lag_p50_seconds: c.lagP50Ms / 1000, lag_p99_seconds: c.lagP99Ms / 1000 }
    for (const [counter, v] of Object.entries(figures)) g.set({ ...labelsOf(), counter }, v)
  })
  gauge('fsx_backend', 'Backend counters (requests, bytes, retries, errors…), by name.', ['counter'], g => {
    for (const [counter, v] of Object.entries(snap.backend)) g.set({ ...labelsOf(), counter }, v)
  })
  gauge('fsx_readahead', 'Readahead figures.', ['counter'], g => {
    for (const [counter, v] of Object.entries(snap.readahead)) g.set({ ...labelsOf(), counter }, v)
  })
  gauge('fsx_writeback', 'Write-back figures.', ['counter'], g => {
    for (const [counter, v] of Object.entries(snap.writeback)) g.set({ ...labelsOf(), counter }, v)
  })
  gauge('fsx_memory_bytes', 'Memory of the mount process and its budget.', ['kind'], g => {
    for (const [kind, v] of Object.entries(snap.memory)) g.set({ ...labelsOf(), kind }, v)
  })
  gauge('fsx_open_files', 'Files open through the mount.', [], g => g.set(labelsOf(), snap.openFiles))
  return registry
}

/** Serves /metrics; resolves with the bound address. */
export async function serveMetrics (addr: string, metrics: MountMetrics): Promise<{ url: string, close: () => Promise<void> }> {
  const { host, port } = parseAddr(addr)
  const registry = buildRegistry(metrics)
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found; try /metrics\n')
      return
    }
    registry.metrics().then(text => {
      res.writeHead(200, { 'content-type': registry.contentType }).end(text)
    }, err => res.writeHead(500).end(String(err)))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new FsxError(err.code ?? 'EIO', `cannot serve metrics on ${host}:${port}: ${err.code}`)))
    server.listen(port, host, () => resolve())
  })
  server.unref()
  const bound = server.address() as { address: string, port: number }
  const shown = bound.address.includes(':') ? `[${bound.address}]` : bound.address
  return { url: `http://${shown}:${bound.port}/metrics`, close: async () => await new Promise<void>(resolve => server.close(() => resolve())) }
}
