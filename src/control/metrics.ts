/**
 * Live figures of one mount: per-FUSE-operation counts, errors and latency histograms (hdr-histogram-js, in
 * microseconds), plus the VFS's cache counters and the backend's request counters, assembled into the snapshot that
 * `fsx stats --json` prints and Prometheus scrapes.
 */
import * as hdr from 'hdr-histogram-js'
import type { Vfs } from '../vfs/vfs.js'
import type { CoherenceStats } from '../vfs/coherence.js'
import type { Backend } from '../backend/types.js'
import type { ExtensionFigures, FigureDescription } from '../extension/types.js'

/** Histogram range: 1 µs to 1 hour, 2 significant digits (≈1% error) — enough for p99 of filesystem calls. */
const HIST = { lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 as const }

interface OpFigures { count: number, errors: number, hist: hdr.Histogram }

export interface OpSnapshot { count: number, errors: number, p50Ms: number, p95Ms: number, p99Ms: number }
export interface CacheSnapshot {
  hits: number
  misses: number
  hitRate: number
  entries: number
  bytes: number
  evictions: number
  /** Data tiers: bytes of pinned files (`fsx warm --pin`). */
  pinnedBytes?: number
}

export interface MountSnapshot {
  mountpoint: string
  source: string
  preset: string
  pid: number
  uptimeS: number
  ops: Record<string, OpSnapshot>
  caches: Record<string, CacheSnapshot>
  readahead: { triggered: number, bytesUsed: number, bytesWasted: number }
  writeback: { dirtyBytes: number, queued: number, inFlight: number, flushed: number, errors: number }
  backend: Record<string, number>
  memory: { rssBytes: number, heapUsedBytes: number, usedBytes: number, budgetBytes: number }
  /** Stale-if-error: answers served past their TTL while the backend failed; whether it is failing now. */
  stale: { serves: number, backendFailing: boolean, lastError?: string }
  /** Background validator: rounds, files checked, found changed or gone, failed checks. */
  validator: { rounds: number, checked: number, changed: number, errors: number }
  /** Coherence with other mounts of the source (the `coherence` setting), when on. */
  coherence?: CoherenceStats
  openFiles: number
  /** The FUSE engine's own figures (name, protocol, negotiated features, passthrough opens…). */
  engine?: Record<string, unknown>
  /** Mount extensions' figures, by extension name (present when an extension runs on this mount). */
  extensions?: Record<string, ExtensionFigures>
}

export class MountMetrics {
  private readonly ops = new Map<string, OpFigures>()
  private readonly started = Date.now()
  /** The engine's figures, once it is mounted (set by the mount service). */
  engineStats?: () => Record<string, unknown>
  /** Called with each finished operation, after it is counted (the Prometheus histogram). */
  readonly observers: Array<(op: string, ms: number, errno: number) => void> = []
  /** The mount extensions' figures and their Prometheus descriptions (set by the mount service). */
  extensions?: { size: number, stats: () => Record<string, ExtensionFigures>, figures: () => Record<string, Record<string, FigureDescription>> }

  constructor (readonly info: { mountpoint: string, source: string, preset: string }, private readonly vfs: Vfs, private readonly backend: Backend) {}

  /** Engine hook: one call per finished FUSE operation. */
  record (op: string, ms: number, errno: number): void {
    let f = this.ops.get(op)
    if (!f) {
      f = { count: 0, errors: 0, hist: hdr.build(HIST) }
      this.ops.set(op, f)
    }
    f.count++
    if (errno < 0) f.errors++
    f.hist.recordValue(Math.max(1, Math.min(HIST.highestTrackableValue, Math.round(ms * 1000))))
    for (const o of this.observers) o(op, ms, errno)
  }

  /** The backend's counts that only grow (`counters()`) and its levels (`levels()`: connections, open files…). */
  backendFigures (): { counters: Record<string, number>, levels: Record<string, number> } {
    return { counters: this.backend.counters?.() ?? {}, levels: this.backend.levels?.() ?? {} }
  }

  snapshot (): MountSnapshot {
    const ops: Record<string, OpSnapshot> = {}
    for (const [name, f] of [...this.ops.entries()].sort()) {
      ops[name] = {
        count: f.count,
        errors: f.errors,
        p50Ms: f.hist.getValueAtPercentile(50) / 1000,
        p95Ms: f.hist.getValueAtPercentile(95) / 1000,
        p99Ms: f.hist.getValueAtPercentile(99) / 1000
      }
    }
    const v = this.vfs.stats()
    const caches: Record<string, CacheSnapshot> = {}
    for (const [layer, c] of Object.entries(v.caches)) {
      const total = c.hits + c.misses
      caches[layer] = { hits: c.hits, misses: c.misses, hitRate: total === 0 ? 0 : c.hits / total, entries: c.entries, bytes: c.bytes ?? 0, evictions: c.evictions, ...(c.pinnedBytes !== undefined ? { pinnedBytes: c.pinnedBytes } : {}) }
    }
    const mem = process.memoryUsage()
    return {
      ...this.info,
      pid: process.pid,
      uptimeS: Math.round((Date.now() - this.started) / 1000),
      ops,
      caches,
      readahead: v.readahead ?? { triggered: 0, bytesUsed: 0, bytesWasted: 0 },
      writeback: v.writeback ?? { dirtyBytes: 0, queued: 0, inFlight: 0, flushed: 0, errors: 0 },
      backend: { ...this.backend.counters?.(), ...this.backend.levels?.() },
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, usedBytes: v.memory?.usedBytes ?? 0, budgetBytes: v.memory?.budgetBytes ?? 0 },
      stale: v.stale ?? { serves: 0, backendFailing: false },
      validator: v.validator ?? { rounds: 0, checked: 0, changed: 0, errors: 0 },
      ...(v.coherence ? { coherence: v.coherence } : {}),
      openFiles: v.openFiles,
      ...(this.engineStats ? { engine: this.engineStats() } : {}),
      ...(this.extensions !== undefined && this.extensions.size > 0 ? { extensions: this.extensions.stats() } : {})
    }
  }
}
