/**
 * Deferred deletes of the S3 backend (writeback on, s3DeleteDelay), against the real S3-compatible server: an unlinked
 * file is gone for this mount at once while its key waits in the queue; a write, symlink or mkdir of the same name
 * never has the old delete land after it; an rmdir sends the queued keys first; close sends what is left. Counted with
 * the backend's own counters. Imports compiled output.
 */
import t, { type Test } from 'tap'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { connect, s3Settings, type S3Backend } from '../../plugins/backend-s3/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server } from '../helpers/s3-server.js'

const kit = { fsxError }
process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY
process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY

const s3 = await startS3Server(t)

if (s3 !== undefined) {
  const Bucket = s3.bucket
  const sdk = s3.client()
  let seq = 0
  const backend = async (t: Test, opts: Record<string, unknown> = {}): Promise<{ b: S3Backend, prefix: string }> => {
    const prefix = `deferred${++seq}/`
    const settings = s3Settings({ ...s3.options, writeback: true, s3DeleteDelay: 60_000, s3ListCacheTtl: 60_000, ...opts })
    const b = await connect({ bucket: Bucket, prefix }, settings, kit)
    t.teardown(() => b.close())
    return { b, prefix }
  }
  const exists = async (Key: string): Promise<boolean> =>
    await sdk.send(new HeadObjectCommand({ Bucket, Key })).then(() => true, (err: { name?: string }) => { if (err.name === 'NotFound') return false; throw err })
  const keys = async (Prefix: string): Promise<string[]> =>
    ((await sdk.send(new ListObjectsV2Command({ Bucket, Prefix }))).Contents ?? []).map(o => o.Key!).sort()

  t.test('an unlinked file is gone for the mount at once; its key is deleted with others later', async t => {
    const { b, prefix } = await backend(t)
    for (const n of ['a', 'b', 'c']) await b.write(`/${n}`, Buffer.from(n))
    const before = b.counters()
    await b.remove('/a')
    await b.remove('/b')
    t.equal(b.counters().requests, before.requests, 'unlink made no request yet')
    t.equal(b.counters().deletesPending, 2)
    t.ok(await exists(`${prefix}a`), 'the object is still in the bucket')
    await t.rejects(b.stat('/a'), { code: 'ENOENT' }, 'but gone for this mount')
    t.same((await b.list('/')).map(e => e.name), ['c'], 'and from its listings')
    await t.rejects(b.remove('/a'), { code: 'ENOENT' }, 'a second unlink: ENOENT')
    await b.close()
    const after = b.counters()
    t.same([after.deleteBatch - before.deleteBatch, after.deletedKeys - before.deletedKeys, after.delete - before.delete], [1, 2, 0], 'close sent one DeleteObjects for both')
    t.same(await keys(prefix), [`${prefix}c`])
  })

  t.test('the same name written, made a directory or a symlink after the unlink: the old delete never lands after it', async t => {
    const { b, prefix } = await backend(t)
    for (const n of ['w', 'd', 'l']) await b.write(`/${n}`, Buffer.from('old'))
    for (const n of ['w', 'd', 'l']) await b.remove(`/${n}`)
    await b.write('/w', Buffer.from('new'))
    await b.mkdir('/d', 0o755)
    await b.symlink('target', '/l')
    t.equal(b.counters().deletesPending, 0, 'nothing left queued')
    t.match(await b.stat('/w'), { kind: 'file', size: 3 })
    t.match(await b.stat('/d'), { kind: 'dir' })
    t.match(await b.stat('/l'), { kind: 'symlink' })
    await b.close()
    t.same(await keys(prefix), [`${prefix}d/`, `${prefix}l`, `${prefix}w`], 'the new objects are there, the file under the directory\'s name is gone')
    t.equal((await (await sdk.send(new GetObjectCommand({ Bucket, Key: `${prefix}w` }))).Body!.transformToString()), 'new')
  })

  t.test('a renamed file is gone from its old name for the mount at once; the old key goes with the next batch', async t => {
    const { b, prefix } = await backend(t)
    for (const n of ['a', 'b']) await b.write(`/${n}`, Buffer.from(n))
    const before = b.counters()
    await b.rename('/a', '/a2')
    await b.rename('/b', '/b2')
    const mid = b.counters()
    t.same([mid.copy - before.copy, mid.delete - before.delete, mid.deleteBatch - before.deleteBatch, mid.deletesPending], [2, 0, 0, 2], 'two CopyObjects, no delete yet')
    await t.rejects(b.stat('/a'), { code: 'ENOENT' }, 'the old name is gone for this mount')
    t.same((await b.list('/')).map(e => e.name), ['a2', 'b2'])
    t.match(await b.stat('/a2'), { kind: 'file', size: 1 })
    // The old name written again before the batch went: the queued delete never lands after it.
    await b.write('/b', Buffer.from('new b'))
    await b.flush()
    const after = b.counters()
    t.equal(after.deleteBatch - before.deleteBatch + after.delete - before.delete, 1, 'one delete request, for /a alone (a single key: DeleteObject)')
    t.same(await keys(prefix), [`${prefix}a2`, `${prefix}b`, `${prefix}b2`])
    t.equal((await (await sdk.send(new GetObjectCommand({ Bucket, Key: `${prefix}b` }))).Body!.transformToString()), 'new b')
  })

  t.test('flush (fsx flush) sends the queued keys and returns once they are gone from the bucket', async t => {
    const { b, prefix } = await backend(t)
    for (const n of ['a', 'b', 'c']) await b.write(`/${n}`, Buffer.from(n))
    await b.remove('/a')
    await b.remove('/b')
    t.same(await keys(prefix), [`${prefix}a`, `${prefix}b`, `${prefix}c`], 'queued: still in the bucket')
    const before = b.counters()
    await b.flush()
    const after = b.counters()
    t.same([after.deleteBatch - before.deleteBatch, after.deletedKeys - before.deletedKeys, after.deletesPending], [1, 2, 0], 'one DeleteObjects for both')
    t.same(await keys(prefix), [`${prefix}c`], 'gone when flush returns')
    await b.remove('/c')
    t.equal(b.counters().deletesPending, 1, 'the backend goes on queueing after a flush')
  })

  t.test('rmdir sends the queued keys of its files first', async t => {
    const { b, prefix } = await backend(t)
    await b.mkdir('/dir', 0o755)
    for (let i = 0; i < 5; i++) await b.write(`/dir/f${i}`, Buffer.from('x'))
    for (let i = 0; i < 5; i++) await b.remove(`/dir/f${i}`)
    const before = b.counters()
    await b.rmdir('/dir')
    const after = b.counters()
    t.same([after.deleteBatch - before.deleteBatch, after.deletedKeys - before.deletedKeys], [1, 5], 'one DeleteObjects for the five, before the marker')
    t.same(await keys(prefix), [])
  })
}
