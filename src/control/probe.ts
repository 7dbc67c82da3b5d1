/**
 * `fsx tune --probe SOURCE`: measures a backend directly (no mount): metadata round trip, root listing latency and
 * ranged-read throughput on the largest file found near the root. Read-only: it writes nothing to the backend.
 *
 * The round trip must be one the server answered. A backend may answer `stat('/')` itself (S3: a bucket's root
 * always exists, so no request is sent) or from a cache, and timing that would call an object store 30 ms away
 * "local-disk fast". So each timed call is checked against the backend's `requests` counter: calls that sent
 * nothing are dropped, and when the root never reaches the server, names that cannot exist are looked up instead
 * (a miss must be asked). Backends without counters are trusted to send one request per stat.
 */
import { randomUUID } from 'node:crypto'
import type { Backend, Stat } from '../backend/types.js'
import type { ProbeResult } from './advise.js'

const ROUNDS = 7
const READ_CHUNK = 1024 * 1024
const READ_MAX = 16 * 1024 * 1024
const READ_PARALLEL = 4

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

/** Requests the backend has sent so far (its `requests` counter), or undefined when it keeps none. */
function requestsSent (backend: Backend): number | undefined {
  const n = backend.counters?.().requests
  return typeof n === 'number' ? n : undefined
}

/**
 * Milliseconds of one stat that cost exactly one request (one round trip), or undefined when the backend answered
 * without asking its server or sent several requests (S3's lookup of a missing name sends HEAD and LIST at once).
 */
async function statRoundTrip (backend: Backend, path: string): Promise<number | undefined> {
  const before = requestsSent(backend)
  const ms = await timed(async () => await backend.stat(path).catch(() => undefined))
  const after = requestsSent(backend)
  if (before === undefined || after === undefined) return ms
  // One request is one round trip; several may have been in flight together (S3 asks HEAD and LIST at once), so
  // their time says nothing of one: only single-request lookups are timed.
  return after - before === 1 ? ms : undefined
}

/** The largest regular file in the root or one level below (at most 50 directories looked at). */
async function findFile (backend: Backend): Promise<{ path: string, stat: Stat } | undefined> {
  let best: { path: string, stat: Stat } | undefined
  const consider = (path: string, stat?: Stat): void => {
    if (stat?.kind === 'file' && stat.size > (best?.stat.size ?? 0)) best = { path, stat }
  }
  const root = await backend.list('/')
  for (const e of root) consider(`/${e.name}`, e.stat)
  for (const e of root.filter(e => e.stat?.kind === 'dir').slice(0, 50)) {
    if (best && best.stat.size >= READ_MAX) break
    const sub = await backend.list(`/${e.name}`).catch(() => [])
    for (const f of sub) consider(`/${e.name}/${f.name}`, f.stat)
  }
  return best
}

export async function probeBackend (backend: Backend): Promise<ProbeResult> {
  await backend.stat('/') // warm up connections
  const rtts: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const ms = await statRoundTrip(backend, '/')
    if (ms !== undefined) rtts.push(ms)
  }
  if (rtts.length === 0) {
    // The root was answered locally. Before any listing (which would let a backend answer misses from it), look up
    // fresh names that cannot exist; the first also warms the connection up, and the minimum drops it.
    const missing = `/.fsx-probe-${randomUUID()}`
    for (let i = 0; i <= ROUNDS; i++) {
      const ms = await statRoundTrip(backend, `${missing}-${i}`)
      if (ms !== undefined) rtts.push(ms)
    }
  }
  const lists: number[] = []
  for (let i = 0; i < 3; i++) {
    // A backend may answer a listing from what it remembers (S3 from its last complete listing): made to forget, it
    // asks the server, which is what is measured.
    backend.invalidate?.('/', true)
    lists.push(await timed(() => backend.list('/')))
  }
  // The fastest round trip is the latency; slower ones measure whatever else the machine was doing. A listing (after
  // the backend forgot) asks the server, so it bounds the round trip when no stat did.
  const result: ProbeResult = { rttMs: Math.min(...(rtts.length > 0 ? rtts : lists)), listMs: median(lists) }
  const file = await findFile(backend)
  if (file && file.stat.size >= 64 * 1024) {
    const size = Math.min(file.stat.size, READ_MAX)
    const offsets: number[] = []
    for (let off = 0; off < size; off += READ_CHUNK) offsets.push(off)
    let bytes = 0
    const t0 = performance.now()
    for (let i = 0; i < offsets.length; i += READ_PARALLEL) {
      const chunks = await Promise.all(offsets.slice(i, i + READ_PARALLEL).map(off => backend.read(file.path, off, Math.min(READ_CHUNK, size - off))))
      for (const c of chunks) bytes += c.length
    }
    const secs = (performance.now() - t0) / 1000
    result.readBytes = bytes
    result.readBps = bytes / Math.max(secs, 1e-6)
  }
  return result
}
