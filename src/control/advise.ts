/**
 * Advice for `fsx tune`: from a probe of a backend (round trip, listing latency, ranged-read throughput) to a preset
 * and settings, and from a running mount's live figures to changes worth making. Pure functions over numbers, so
 * the rules are unit-tested; the commands only gather the numbers.
 *
 * The thresholds come from what the kernel and the presets do: a metadata round trip below ~1 ms (local disk) costs
 * less than a user-space cache check is worth; 1–20 ms (SFTP on a LAN) makes every getattr visible; above ~20 ms
 * (object stores, WAN) only long TTLs and large readahead windows keep tools usable.
 */
import type { MountSnapshot } from './metrics.js'

export interface ProbeResult {
  /** Fastest of several metadata round trips that reached the server (see probe.ts), ms per request. */
  rttMs: number
  /** Median directory listing latency of the root, ms. */
  listMs: number
  /** Ranged-read throughput, bytes per second (undefined when no file was large enough to measure). */
  readBps?: number
  /** Size of the file the read was measured on. */
  readBytes?: number
}

export interface Recommendation {
  preset: string
  /** Settings to override on top of the preset, key → value in user units (e.g. "30s", "1M"). */
  settings: Record<string, string>
  reasons: string[]
}

/** Picks a preset and settings from measured backend latencies. */
export function recommendFromProbe (p: ProbeResult): Recommendation {
  const reasons: string[] = []
  const settings: Record<string, string> = {}
  let preset: string
  if (p.rttMs < 1) {
    preset = 'balanced'
    reasons.push(`metadata round trip ${p.rttMs.toFixed(2)} ms is local-disk fast: short kernel TTLs cost little, so keep close-to-open consistency`)
  } else if (p.rttMs < 20) {
    preset = 'high-performance'
    settings.attrTtl = '10s'
    settings.entryTtl = '10s'
    settings.negativeTtl = '5s'
    reasons.push(`metadata round trip ${p.rttMs.toFixed(1)} ms (network): every getattr the kernel does not cache costs that much, so cache attributes and names for 10 s`)
  } else {
    preset = 'high-performance'
    settings.attrTtl = '30s'
    settings.entryTtl = '30s'
    settings.negativeTtl = '10s'
    reasons.push(`metadata round trip ${p.rttMs.toFixed(0)} ms (object store or WAN): long TTLs keep ls and builds usable`)
  }
  if (p.listMs > 50) reasons.push(`listing the root took ${p.listMs.toFixed(0)} ms: directory listings are worth caching`)
  if (p.readBps !== undefined) {
    // Bandwidth-delay product: the readahead window should cover what one round trip can deliver.
    const bdp = p.readBps * Math.max(p.rttMs, 0.1) / 1000
    const readahead = bdp > 512 * 1024 ? '1M' : bdp > 128 * 1024 ? '512K' : undefined
    if (readahead && preset !== 'balanced') {
      settings.readahead = readahead
      reasons.push(`ranged reads ran at ${(p.readBps / 1048576).toFixed(1)} MiB/s: a ${readahead} readahead window covers one round trip's worth of data`)
    } else {
      reasons.push(`ranged reads ran at ${(p.readBps / 1048576).toFixed(1)} MiB/s`)
    }
  }
  return { preset, settings, reasons }
}

export interface Advice { key: string, value: string, reason: string }

/** Recommends changes from a running mount's live figures and its current settings (base units). */
export function adviseFromStats (s: MountSnapshot, current: Record<string, unknown>): Advice[] {
  const out: Advice[] = []
  const op = (name: string): number => s.ops[name]?.count ?? 0
  const total = Object.values(s.ops).reduce((a, o) => a + o.count, 0)
  const attrTtl = Number(current.attrTtl ?? 0)
  // Name lookups are LOOKUP requests with the kernel engine, getattr ones with fuse-native: count both.
  const getattr = op('getattr') + op('lookup')
  if (total >= 100 && getattr / total > 0.4 && attrTtl < 10_000) {
    out.push({ key: 'attrTtl', value: `${Math.min(60, Math.max(10, (attrTtl / 1000) * 4))}s`, reason: `getattr is ${(100 * getattr / total).toFixed(0)}% of all operations under a ${attrTtl / 1000}s attribute TTL: the kernel asks again too soon` })
  }
  const attr = s.caches.attr
  if (attr && attr.hits + attr.misses >= 100 && attr.hitRate < 0.5 && attrTtl < 10_000) {
    out.push({ key: 'attrTtl', value: '10s', reason: `attribute cache hit rate ${(100 * attr.hitRate).toFixed(0)}% under a short TTL` })
  }
  const lookupMisses = (s.ops.getattr?.errors ?? 0) + (s.ops.lookup?.errors ?? 0)
  if (getattr >= 100 && lookupMisses / getattr > 0.3 && Number(current.negativeTtl ?? 0) < 1000) {
    out.push({ key: 'negativeTtl', value: '5s', reason: `${(100 * lookupMisses / getattr).toFixed(0)}% of lookups are for names that do not exist (builds, interpreters): let the kernel remember misses` })
  }
  const ra = s.readahead
  if (ra.bytesUsed + ra.bytesWasted > 16 * 1048576 && ra.bytesWasted > ra.bytesUsed) {
    out.push({ key: 'readahead', value: '128K', reason: `readahead wasted ${(100 * ra.bytesWasted / (ra.bytesUsed + ra.bytesWasted)).toFixed(0)}% of what it fetched: access is mostly random` })
  }
  const read = s.ops.read
  if (read && read.count >= 1000 && Number(current.readahead ?? 0) < 1048576 && ra.bytesWasted <= ra.bytesUsed && read.p50Ms > 1) {
    out.push({ key: 'readahead', value: '1M', reason: `reads wait ${read.p50Ms.toFixed(1)} ms at the median: a larger readahead window hides the backend's latency for sequential readers` })
  }
  const x = s.caches.xattr
  if (x && x.evictions > x.hits && x.hits + x.misses >= 100) {
    out.push({ key: 'xattrCacheSize', value: String(Math.max(4096, 2 * Number(current.xattrCacheSize ?? 0))), reason: `the xattr cache evicts more than it serves (${x.evictions} evictions, ${x.hits} hits)` })
  }
  if (s.writeback.errors > 0) {
    out.push({ key: 'writeback', value: 'false', reason: `${s.writeback.errors} background uploads failed: write-through reports failures at close` })
  }
  // One piece of advice per key: the first (strongest) reason wins.
  const seen = new Set<string>()
  return out.filter(a => !seen.has(a.key) && seen.add(a.key))
}
