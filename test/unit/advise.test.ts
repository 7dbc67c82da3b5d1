// Tuning advice: probes map to presets by measured latency; live figures map to concrete setting changes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { recommendFromProbe, adviseFromStats } from '../../dist/control/advise.js'

test('a local-disk round trip keeps balanced; a LAN round trip and an object store get longer TTLs', () => {
  const local = recommendFromProbe({ rttMs: 0.05, listMs: 0.5, readBps: 2e9, readBytes: 16 << 20 })
  const sftp = recommendFromProbe({ rttMs: 4, listMs: 12, readBps: 80e6, readBytes: 16 << 20 })
  const s3 = recommendFromProbe({ rttMs: 45, listMs: 120, readBps: 60e6, readBytes: 16 << 20 })
  assert.equal(local.preset, 'balanced')
  assert.deepEqual(local.settings, {})
  assert.equal(sftp.preset, 'high-performance')
  assert.equal(sftp.settings.attrTtl, '10s')
  assert.equal(s3.settings.attrTtl, '30s')
  assert.equal(s3.settings.readahead, '1M', 'bandwidth × delay of 60 MB/s × 45 ms wants a 1M window')
  assert.notDeepEqual(sftp, s3)
})

function snapshot (over: Record<string, unknown> = {}): any {
  return {
    mountpoint: '/m', source: 'local:/d', preset: 'safe', pid: 1, uptimeS: 10, openFiles: 0,
    ops: {}, caches: {}, readahead: { triggered: 0, bytesUsed: 0, bytesWasted: 0 },
    writeback: { dirtyBytes: 0, queued: 0, inFlight: 0, flushed: 0, errors: 0 }, backend: {},
    memory: { rssBytes: 0, heapUsedBytes: 0, usedBytes: 0, budgetBytes: 0 }, ...over
  }
}
const op = (count: number, errors = 0, p50Ms = 0.1): any => ({ count, errors, p50Ms, p95Ms: p50Ms, p99Ms: p50Ms })

test('getattr-heavy traffic under a short attribute TTL advises a longer one', () => {
  const a = adviseFromStats(snapshot({ ops: { getattr: op(900), read: op(100) } }), { attrTtl: 1000 })
  assert.equal(a[0].key, 'attrTtl')
  assert.match(a[0].reason, /90% of all operations under a 1s/)
})

test('many lookups of missing names advise a negative TTL', () => {
  const a = adviseFromStats(snapshot({ ops: { getattr: op(500, 300), open: op(500) } }), { attrTtl: 60000, negativeTtl: 0 })
  assert.deepEqual(a.map(x => x.key), ['negativeTtl'])
})

test('wasted readahead advises a smaller window; failed uploads advise write-through', () => {
  const a = adviseFromStats(snapshot({
    readahead: { triggered: 10, bytesUsed: 4 << 20, bytesWasted: 40 << 20 },
    writeback: { dirtyBytes: 0, queued: 0, inFlight: 0, flushed: 3, errors: 2 }
  }), { attrTtl: 60000 })
  assert.deepEqual(a.map(x => x.key).sort(), ['readahead', 'writeback'])
})

test('a healthy mount gets no advice', () => {
  assert.deepEqual(adviseFromStats(snapshot({ ops: { read: op(50), getattr: op(10) } }), { attrTtl: 5000 }), [])
})
