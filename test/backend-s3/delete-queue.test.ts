// The S3 backend's delete queue (plugins/backend-s3/src/delete-queue.ts) on a fake `send`: what S3 answers per key
// reaches that key's unlink, waiting and deferred keys share batches, a cancelled key is never sent, and a delete
// never lands after a later write of its key. The real-server counts are in bulk.test.ts.
import t from 'tap'
import { DeleteQueue } from '../../plugins/backend-s3/dist/delete-queue.js'

interface Call { keys: string[]; answer: (outcome: unknown[]) => void; fail: (err: unknown) => void }

function queue (opts: { batch?: number; delayMs?: number } = {}) {
  const calls: Call[] = []
  const late: Array<[string, unknown]> = []
  const settled: Array<[string, unknown]> = []
  const q = new DeleteQueue({
    batch: opts.batch ?? 1000,
    delayMs: opts.delayMs ?? 60_000,
    send: async keys => await new Promise<unknown[]>((resolve, reject) => calls.push({ keys, answer: resolve, fail: reject })),
    onLateError: (k, err) => late.push([k, err]),
    onSettled: (k, err) => settled.push([k, err])
  })
  return { q, calls, late, settled }
}

const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('unlinks in flight together share one request; each gets its own key\'s outcome', async t => {
  const { q, calls } = queue()
  const denied = Object.assign(new Error('AccessDenied'), { Code: 'AccessDenied' })
  const a = q.add('/a')
  const b = q.add('/b')
  const c = q.add('/c')
  t.ok(q.has('/b'), 'queued: the key counts as gone')
  await tick()
  t.same(calls.map(c => c.keys), [['/a', '/b', '/c']], 'one request for the three')
  calls[0].answer([undefined, denied, undefined])
  await a
  await t.rejects(b, denied, 'the refused key\'s unlink fails with S3\'s answer for it')
  await c
  t.notOk(q.has('/b'), 'answered: no longer pending')
})

t.test('a request that fails as a whole fails every unlink in it', async t => {
  const { q, calls } = queue()
  const a = q.add('/a')
  const b = q.add('/b')
  await tick()
  calls[0].fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
  await t.rejects(a, { code: 'ECONNREFUSED' })
  await t.rejects(b, { code: 'ECONNREFUSED' })
})

t.test('deferred keys: sent when the batch is full, at flush, or when the delay runs out; late errors reported', async t => {
  const { q, calls, late } = queue({ batch: 3, delayMs: 30 })
  q.defer('/1'); q.defer('/2')
  await tick()
  t.equal(calls.length, 0, 'not full: nothing sent yet')
  q.defer('/3')
  t.same(calls.map(c => c.keys), [['/1', '/2', '/3']], 'full: sent at once')
  q.defer('/4')
  const flushed = q.flush()
  t.same(calls.map(c => c.keys), [['/1', '/2', '/3'], ['/4']], 'flush sends what is queued')
  calls[0].answer([undefined, 'gone wrong', undefined])
  calls[1].answer([undefined])
  await flushed
  t.same(late, [['/2', 'gone wrong']], 'the deferred key S3 refused is reported')
  q.defer('/5')
  await new Promise<void>(resolve => { const i = setInterval(() => { if (calls.length === 3) { clearInterval(i); resolve() } }, 5) })
  t.same(calls[2].keys, ['/5'], 'the delay ran out: sent')
  calls[2].answer([undefined])
  await q.flush()
})

t.test('cancel: a queued key is never sent; a key in flight is waited for', async t => {
  const { q, calls, settled } = queue()
  q.defer('/a'); q.defer('/b')
  await q.cancel('/a')
  t.notOk(q.has('/a'))
  t.same(settled, [['/a', undefined]])
  const flushed = q.flush()
  t.same(calls.map(c => c.keys), [['/b']], 'the cancelled key was not sent')
  let waited = false
  const c = q.cancel('/b').then(() => { waited = true })
  await tick()
  t.notOk(waited, 'a write of a key whose delete is in flight waits for it')
  calls[0].answer([undefined])
  await c
  await flushed
  t.ok(waited)
})
