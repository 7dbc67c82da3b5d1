/**
 * `fsx tune --probe SOURCE`: measures a backend directly (no mount): metadata round trip, root listing latency and
 * ranged-read throughput on the largest file found near the root. Read-only: it writes nothing to the backend.
 */
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
  for (let i = 0; i < ROUNDS; i++) rtts.push(await timed(() => backend.stat('/')))
  const lists: number[] = []
  for (let i = 0; i < 3; i++) lists.push(await timed(() => backend.list('/')))
  // The fastest round trip is the latency; slower ones measure whatever else the machine was doing.
  const result: ProbeResult = { rttMs: Math.min(...rtts), listMs: median(lists) }
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
