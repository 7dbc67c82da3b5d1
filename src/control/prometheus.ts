/**
 * Prometheus endpoint of one mount (`fsx mount --metrics-addr HOST:PORT`, loopback by default): prom-client metrics
 * served at GET /metrics in the text exposition format, every series labelled with the mountpoint.
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

/** Upper bounds (seconds) of the operation-duration histogram: 50 µs (a cached answer) to a minute (op timeout). */
export const DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** camelCase → snake_case, for metric names made from figure names (bytesRead → bytes_read). */
function snake (name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^a-zA-Z0-9_]/g, '_').toLowerCase()
}

/**
 * The mount's metrics, named and typed by Prometheus' conventions so that `rate()` and histogram_quantile() work:
 * counts that only grow are Counters (`*_total`), levels are Gauges, and operation durations are one Histogram
 * (`fsx_op_duration_seconds`, observed as each operation finishes, from the moment this registry exists: build it
 * before the engine mounts so that its `_count` equals `fsx_ops_total`). Counters and gauges are filled from one
 * snapshot of the mount at each scrape.
 */
export function buildRegistry (metrics: MountMetrics): client.Registry {
  const registry = new client.Registry()
  registry.setDefaultLabels({ mountpoint: metrics.info.mountpoint })
  let snap = metrics.snapshot()
  const refresh = (): void => { snap = metrics.snapshot() }
  // NB: a collect() resets its metric and sets it anew from the snapshot: a Counter cannot be set, but reset + inc
  // gives the same exposition, and the values themselves only grow (they are the mount's own running totals).
  const counter = (name: string, help: string, labelNames: string[], fill: (add: (labels: Record<string, string>, v: number) => void) => void): void => {
    registry.registerMetric(new client.Counter({
      name, help, labelNames, registers: [],
      collect () { this.reset(); fill((labels, v) => this.inc(labels, Math.max(0, v))) }
    }))
  }
  const gauge = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string>, v: number) => void) => void): void => {
    registry.registerMetric(new client.Gauge({
      name, help, labelNames, registers: [],
      collect () { this.reset(); fill((labels, v) => this.set(labels, v)) }
    }))
  }
  // The first collector refreshes the snapshot the others read (prom-client collects in registration order).
  gauge('fsx_up', 'Whether the mount process is serving (1).', [], set => { refresh(); set({}, 1) })

  counter('fsx_ops_total', 'FUSE operations completed, by operation.', ['op'], add => {
    for (const [op, o] of Object.entries(snap.ops)) add({ op }, o.count)
  })
  counter('fsx_op_errors_total', 'FUSE operations that returned an error, by operation.', ['op'], add => {
    for (const [op, o] of Object.entries(snap.ops)) add({ op }, o.errors)
  })
  const durations = new client.Histogram({
    name: 'fsx_op_duration_seconds', help: 'Time fsx took to answer a FUSE operation, by operation.', labelNames: ['op'], buckets: DURATION_BUCKETS, registers: [registry]
  })
  metrics.observers.push((op, ms) => durations.observe({ op }, ms / 1000))

  for (const field of ['hits', 'misses', 'evictions'] as const) {
    counter(`fsx_cache_${field}_total`, `Cache ${field}, by layer.`, ['layer'], add => {
      for (const [layer, c] of Object.entries(snap.caches)) add({ layer }, c[field])
    })
  }
  gauge('fsx_cache_entries', 'Entries held now, by cache layer.', ['layer'], set => {
    for (const [layer, c] of Object.entries(snap.caches)) set({ layer }, c.entries)
  })
  gauge('fsx_cache_bytes', 'Bytes held now, by cache layer.', ['layer'], set => {
    for (const [layer, c] of Object.entries(snap.caches)) set({ layer }, c.bytes)
  })
  gauge('fsx_cache_pinned_bytes', 'Bytes of pinned files (fsx warm --pin), by data tier.', ['layer'], set => {
    for (const [layer, c] of Object.entries(snap.caches)) if (c.pinnedBytes !== undefined) set({ layer }, c.pinnedBytes)
  })

  counter('fsx_readahead_triggered_total', 'Sequential reads that started readahead.', [], add => add({}, snap.readahead.triggered))
  counter('fsx_readahead_used_bytes_total', 'Bytes read ahead that a read then used.', [], add => add({}, snap.readahead.bytesUsed))
  counter('fsx_readahead_wasted_bytes_total', 'Bytes read ahead that no read used.', [], add => add({}, snap.readahead.bytesWasted))

  gauge('fsx_writeback_dirty_bytes', 'Bytes acknowledged to applications but not yet on the backend.', [], set => set({}, snap.writeback.dirtyBytes))
  gauge('fsx_writeback_queued', 'Files waiting for upload.', [], set => set({}, snap.writeback.queued))
  gauge('fsx_writeback_in_flight', 'Files being uploaded now.', [], set => set({}, snap.writeback.inFlight))
  counter('fsx_writeback_flushed_total', 'Files write-back uploaded.', [], add => add({}, snap.writeback.flushed))
  counter('fsx_writeback_errors_total', 'Failed write-back uploads.', [], add => add({}, snap.writeback.errors))

  counter('fsx_stale_serves_total', 'Answers served from expired caches because the backend failed (stale-if-error).', [], add => add({}, snap.stale?.serves ?? 0))
  gauge('fsx_backend_failing', '1 while the backend fails and fsx serves from its caches (stale-if-error).', [], set => set({}, snap.stale?.backendFailing ? 1 : 0))
  for (const field of ['rounds', 'checked', 'changed', 'errors'] as const) {
    counter(`fsx_validator_${field}_total`, `Background validator: ${field}.`, [], add => add({}, snap.validator?.[field] ?? 0))
  }

  // The backend's own figures, one metric each, typed by what the backend says they are (counters() or levels());
  // their names are fixed when the backend is created, so they are known here.
  const { counters, levels } = metrics.backendFigures()
  for (const name of Object.keys(counters)) {
    counter(`fsx_backend_${snake(name)}_total`, `Backend counter ${name}.`, [], add => add({}, metrics.backendFigures().counters[name] ?? 0))
  }
  for (const name of Object.keys(levels)) {
    gauge(`fsx_backend_${snake(name)}`, `Backend level ${name}.`, [], set => set({}, metrics.backendFigures().levels[name] ?? 0))
  }

  gauge('fsx_memory_bytes', 'Memory of the mount process (rss, heap_used) and of its caches (cache_used, cache_budget).', ['kind'], set => {
    set({ kind: 'rss' }, snap.memory.rssBytes)
    set({ kind: 'heap_used' }, snap.memory.heapUsedBytes)
    set({ kind: 'cache_used' }, snap.memory.usedBytes)
    set({ kind: 'cache_budget' }, snap.memory.budgetBytes)
  })
  gauge('fsx_open_files', 'Files open through the mount.', [], set => set({}, snap.openFiles))
  // Mount extensions: one gauge per figure, fsx_<extension>_<figure in snake case>; a nested figure's keys go in a label.
  const described = metrics.extensions?.figures() ?? {}
  for (const [ext, figures] of Object.entries(snap.extensions ?? {})) {
    for (const [key, value] of Object.entries(figures)) {
      const d = described[ext]?.[key]
      const label = typeof value === 'object' ? d?.label ?? 'key' : undefined
      gauge(`fsx_${snake(ext)}_${snake(key)}`, d?.help ?? key, label === undefined ? [] : [label], set => {
        const v = snap.extensions?.[ext]?.[key]
        if (typeof v === 'number') set({}, v)
        else if (v !== undefined && label !== undefined) for (const [k, n] of Object.entries(v)) set({ [label]: k }, n)
      })
    }
  }
  const coherence = (): Record<string, number> | undefined => {
    const c = snap.coherence
    return c === undefined ? undefined : { sent: c.sent, received: c.received, applied: c.applied, resets: c.resets, outages: c.outages }
  }
  gauge('fsx_coherence_connected', 'Coherence with other mounts of the source: 1 while connected to its server.', [], set => {
    if (snap.coherence !== undefined) set({}, snap.coherence.connected ? 1 : 0)
  })
  for (const field of ['sent', 'received', 'applied', 'resets', 'outages'] as const) {
    counter(`fsx_coherence_${field}_total`, `Coherence: ${field === 'applied' ? 'invalidations applied' : field === 'sent' || field === 'received' ? `messages ${field}` : field}.`, [], add => {
      const c = coherence()
      if (c !== undefined) add({}, c[field])
    })
  }
  gauge('fsx_coherence_lag_seconds', 'Coherence: time from a peer\'s change to its invalidation here, by quantile.', ['quantile'], set => {
    const c = snap.coherence
    if (c === undefined) return
    set({ quantile: '0.5' }, c.lagP50Ms / 1000)
    set({ quantile: '0.99' }, c.lagP99Ms / 1000)
  })
  return registry
}

/** Serves `registry` (from `buildRegistry`) at /metrics; resolves with the bound address. */
export async function serveMetrics (addr: string, registry: client.Registry): Promise<{ url: string, close: () => Promise<void> }> {
  const { host, port } = parseAddr(addr)
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
