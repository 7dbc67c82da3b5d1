/**
 * What the S3 backend does beyond the conformance suite, against a real S3-compatible server (s3rver): how it reads
 * buckets other tools wrote, the metadata it leaves for other tools, multipart and split reads, retries, deadlines,
 * errors, and its cache (on a fake clock). The plain SDK plays "another tool". Imports compiled output.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client
} from '@aws-sdk/client-s3'
import { connect, s3Settings, type S3Backend } from '../../plugins/backend-s3/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { bytes } from '../helpers/conformance.js'
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server, type S3Server } from '../helpers/s3-server.js'
import { scaled } from '../helpers/timing.js'

const kit = { fsxError }
process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY
process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY
const MiB = 1024 * 1024

const s3 = await startS3Server(t)

let seq = 0
/** A backend on its own fresh prefix of the test bucket; closed in teardown. */
async function backend (t: Test, srv: S3Server, opts: Record<string, unknown> = {}, extra: { now?: () => number; prefix?: string; endpoint?: string } = {}): Promise<{ b: S3Backend; prefix: string }> {
  const prefix = extra.prefix ?? `t${++seq}/`
  const settings = s3Settings({ ...srv.options, ...(extra.endpoint ? { s3Endpoint: extra.endpoint } : {}), ...opts })
  const b = await connect({ bucket: srv.bucket, prefix }, settings, kit, { now: extra.now })
  t.teardown(() => b.close())
  return { b, prefix }
}

const body = async (c: S3Client, Bucket: string, Key: string): Promise<Buffer> =>
  Buffer.from(await (await c.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray())

if (s3 !== undefined) {
  const Bucket = s3.bucket
  const sdk = s3.client()
  const put = async (Key: string, Body: string | Buffer = 'x', extra: Record<string, unknown> = {}) => {
    await sdk.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }))
  }
  const head = async (Key: string) => await sdk.send(new HeadObjectCommand({ Bucket, Key }))

  t.test('a bucket other tools wrote (deep keys, no markers) lists and stats as directories', async t => {
    const { b, prefix } = await backend(t, s3, { s3ListCacheTtl: 0 })
    await put(`${prefix}tools/a/b/c.txt`, 'deep')
    await put(`${prefix}tools/a/d.txt`, 'dd')
    await put(`${prefix}tools/top`, 'top')
    await put(`${prefix}tools/empty/`, '')
    t.same((await b.list('/tools')).map(e => [e.name, e.stat?.kind]), [['a', 'dir'], ['empty', 'dir'], ['top', 'file']])
    t.same((await b.list('/tools/a')).map(e => e.name), ['b', 'd.txt'])
    const before = b.counters()
    const st = await b.stat('/tools/a/b')
    const after = b.counters()
    t.equal(st.kind, 'dir', 'a directory that exists only as a prefix')
    t.same([after.head - before.head, after.list - before.list], [2, 1], 'HEAD key, HEAD key/, then a 1-key LIST')
    t.equal(st.mode & 0o777, 0o755)
    t.equal((await b.read('/tools/a/b/c.txt', 0, 100)).toString(), 'deep')
    t.same(await b.list('/tools/empty'), [], 'a marker alone is an empty directory')
    await t.rejects(b.rmdir('/tools/a'), { code: 'ENOTEMPTY' })
    await t.rejects(b.stat('/tools/nothing'), { code: 'ENOENT' })
    await t.rejects(b.list('/tools/top'), { code: 'ENOTDIR' })
  })

  t.test('attributes other tools wrote are read: s3fs and rclone formats, defaults without them', async t => {
    const { b, prefix } = await backend(t, s3, { s3ListCacheTtl: 0 })
    await put(`${prefix}s3fs`, 'a', { Metadata: { mode: '33184', uid: '1001', gid: '1002', mtime: '1577934245.678000000' } })
    await put(`${prefix}rclone`, 'b', { Metadata: { mode: '100600', mtime: '1614834367.123456789', atime: '2021-03-04T05:06:07Z' } })
    await put(`${prefix}plain`, 'c')
    t.match(await b.stat('/s3fs'), { kind: 'file', mode: 0o100640, uid: 1001, gid: 1002, mtimeMs: 1577934245678 })
    t.match(await b.stat('/rclone'), { mode: 0o100600, atimeMs: Date.parse('2021-03-04T05:06:07Z') })
    t.equal(Math.floor((await b.stat('/rclone')).mtimeMs), 1614834367123)
    const plain = await b.stat('/plain')
    const lm = (await head(`${prefix}plain`)).LastModified!.getTime()
    t.match(plain, { mode: 0o100644, uid: process.getuid!(), mtimeMs: lm })
  })

  t.test('what fsx writes is a plain object carrying x-amz-meta-mtime, mode, uid, gid', async t => {
    const { b, prefix } = await backend(t, s3)
    const data = bytes(100_000, 3)
    await b.write('/f', data, { mode: 0o100640, uid: 1234, gid: 5678, mtimeMs: 1577934245678 })
    t.same(await body(sdk, Bucket, `${prefix}f`), data, 'byte for byte')
    const h = await head(`${prefix}f`)
    t.match(h.Metadata, { mode: '33184', uid: '1234', gid: '5678', mtime: '1577934245.678000000' })
    t.match(h.Metadata?.ctime, /^\d+(\.\d{9})?$/)
    t.equal(h.ContentType, 'application/octet-stream')
    await b.mkdir('/d', 0o750)
    const m = await head(`${prefix}d/`)
    t.equal(m.ContentType, 'application/x-directory', 'mkdir leaves an s3fs-style marker')
    t.equal(m.Metadata?.mode, String(0o40750))
  })

  t.test('a rewrite keeps the object\'s other metadata, xattrs and content type', async t => {
    const { b, prefix } = await backend(t, s3)
    await put(`${prefix}pic.png`, 'old', { ContentType: 'image/png', CacheControl: 'max-age=60', Metadata: { owner: 'someone' } })
    await b.setxattr('/pic.png', 'user.tag', Buffer.from('v'), 0)
    await b.write('/pic.png', Buffer.from('new content'), { mode: 0o100644 })
    const h = await head(`${prefix}pic.png`)
    t.equal(h.ContentType, 'image/png')
    t.equal(h.CacheControl, 'max-age=60')
    t.equal(h.Metadata?.owner, 'someone')
    t.equal((await b.getxattr('/pic.png', 'user.tag')).toString(), 'v')
    t.equal((await body(sdk, Bucket, `${prefix}pic.png`)).toString(), 'new content')
  })

  t.test('chmod, chown, utimens and xattrs rewrite metadata in place (CopyObject REPLACE), content and type kept', async t => {
    const { b, prefix } = await backend(t, s3)
    await put(`${prefix}doc`, 'content', { ContentType: 'text/plain' })
    // Before the first lookup: that lists the prefix, and another client's new keys are then seen after the TTL.
    await put(`${prefix}implicit/x`, 'x')
    const before = b.counters()
    await b.chmod('/doc', 0o600)
    await b.chown('/doc', 42, 43)
    await b.utimens('/doc', Date.UTC(2001, 0, 1), Date.UTC(2002, 0, 1))
    await b.setxattr('/doc', 'user.k', Buffer.from([0, 1, 2]), 0)
    t.equal(b.counters().copy - before.copy, 4, 'one CopyObject each')
    const h = await head(`${prefix}doc`)
    t.equal(h.ContentType, 'text/plain')
    t.match(h.Metadata, { mode: String(0o100600), uid: '42', gid: '43', atime: String(Date.UTC(2001, 0, 1) / 1000), mtime: String(Date.UTC(2002, 0, 1) / 1000) })
    t.equal(decodeURIComponent(h.Metadata!.xattr), JSON.stringify({ 'user.k': 'AAEC' }), 'xattrs in s3fs\'s format')
    t.equal((await body(sdk, Bucket, `${prefix}doc`)).toString(), 'content')
    await b.chmod('/implicit', 0o700)
    t.equal((await head(`${prefix}implicit/`)).Metadata?.mode, String(0o40700), 'a directory without a marker gets one')
    const { b: fresh } = await backend(t, s3, { s3ListCacheTtl: 0 }, { prefix })
    t.equal((await fresh.stat('/implicit')).mode, 0o40700)
    t.match(await fresh.stat('/doc'), { mode: 0o100600, uid: 42, gid: 43, mtimeMs: Date.UTC(2002, 0, 1) })
    await t.rejects(fresh.chmod('/missing', 0o600), { code: 'ENOENT' })
  })

  t.test('symlinks are stored the way s3fs stores them', async t => {
    const { b, prefix } = await backend(t, s3)
    await b.symlink('../target dir/ü', '/link')
    t.equal((await body(sdk, Bucket, `${prefix}link`)).toString(), '../target dir/ü', 'the content is the target')
    t.equal((await head(`${prefix}link`)).Metadata?.mode, '41471', 'S_IFLNK | 0777 in decimal')
    const { b: fresh } = await backend(t, s3, { s3ListCacheTtl: 0 }, { prefix })
    t.equal(await fresh.readlink('/link'), '../target dir/ü')
    t.equal((await fresh.list('/')).find(e => e.name === 'link')?.stat?.kind, 'symlink', 'listed as a symlink')
  })

  t.test('rename copies and deletes; keys with "@", spaces and unicode; a directory moves every key', async t => {
    const { b, prefix } = await backend(t, s3)
    await b.write('/user@host 50% ü', Buffer.from('one'))
    await b.rename('/user@host 50% ü', '/to@ ✓')
    t.equal((await body(sdk, Bucket, `${prefix}to@ ✓`)).toString(), 'one')
    await t.rejects(head(`${prefix}user@host 50% ü`), { name: 'NotFound' })
    await b.mkdir('/dir @x', 0o755)
    for (let i = 0; i < 30; i++) await put(`${prefix}dir @x/sub/${i}@`, String(i))
    await put(`${prefix}dir @x/f`, 'f')
    await b.rename('/dir @x', '/moved')
    const keys = (await sdk.send(new ListObjectsV2Command({ Bucket, Prefix: prefix }))).Contents!.map(o => o.Key!.slice(prefix.length)).sort()
    t.equal(keys.filter(k => k.startsWith('moved/')).length, 32, 'marker, f and 30 keys below')
    t.equal(keys.filter(k => k.startsWith('dir @x')).length, 0, 'nothing left behind')
    t.equal((await b.read('/moved/sub/7@', 0, 10)).toString(), '7')
    await b.write('/a', Buffer.from('A'))
    await b.write('/b', Buffer.from('old'))
    await b.rename('/a', '/b')
    t.equal((await b.read('/b', 0, 10)).toString(), 'A', 'over an existing file')
    await b.mkdir('/e1', 0o755)
    await b.mkdir('/e2', 0o755)
    await b.write('/e2/x', Buffer.from('x'))
    await t.rejects(b.rename('/e1', '/e2'), { code: 'ENOTEMPTY' })
    await t.rejects(b.rename('/e1', '/b'), { code: 'ENOTDIR' })
    await t.rejects(b.rename('/b', '/e1'), { code: 'EISDIR' })
    await t.rejects(b.rename('/moved', '/moved/sub/x'), { code: 'EINVAL' })
    await b.rmdir('/e1')
    await b.rename('/e2', '/e1')
    t.same((await b.list('/e1')).map(e => e.name), ['x'], 'a directory over an empty one')
  })

  t.test('large writes are multipart uploads streamed from the staging file', async t => {
    const { b, prefix } = await backend(t, s3, { s3PartSize: 5 * MiB, s3Concurrency: 3 })
    const data = bytes(12 * MiB + 5, 11)
    const staging = join(t.testdir(), 'staging')
    await writeFile(staging, data)
    const before = b.counters()
    await b.write('/big', { file: staging, size: data.length }, { mode: 0o100600, mtimeMs: 1e12 })
    const after = b.counters()
    t.equal(after.multipart - before.multipart, 1)
    t.equal(after.put - before.put, 0, 'no single PUT')
    t.same(await body(sdk, Bucket, `${prefix}big`), data)
    t.match((await head(`${prefix}big`)).Metadata, { mode: String(0o100600), mtime: '1000000000' })
    t.same(await s3.uploadsInProgress(), [], 'no multipart upload left in progress')
  })

  t.test('large reads are split into parallel ranged GETs', async t => {
    const { b } = await backend(t, s3, { s3Concurrency: 4 })
    const data = bytes(9 * MiB, 5)
    await b.write('/f', data)
    const before = b.counters().get
    t.same(await b.read('/f', 0, 8 * MiB), data.subarray(0, 8 * MiB))
    t.equal(b.counters().get - before, 4, 'four 2 MiB ranges')
    t.same(await b.read('/f', 7 * MiB, 4 * MiB), data.subarray(7 * MiB), 'short at EOF, ranges past it dropped')
    t.same(await b.read('/f', 100, 1000), data.subarray(100, 1100))
  })

  t.test('throttling and 5xx are retried with backoff, then fail with EIO', async t => {
    let failures = 0
    const proxy = http.createServer((req, res) => {
      if (failures > 0) {
        failures--
        req.resume()
        res.writeHead(503, { 'Content-Type': 'application/xml' })
        res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>')
        return
      }
      const up = http.request({ host: '127.0.0.1', port: s3.port, path: req.url, method: req.method, headers: req.headers }, r => {
        res.writeHead(r.statusCode ?? 500, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
    })
    await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise(resolve => proxy.close(resolve)))
    const endpoint = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
    const { b } = await backend(t, s3, {}, { endpoint })
    failures = 2
    await b.write('/f', Buffer.from('through'))
    t.equal(b.counters().retries, 2, 'two retries, then success')
    t.equal((await b.read('/f', 0, 100)).toString(), 'through')
    failures = 1000
    await t.rejects(b.read('/f', 0, 100), { code: 'EIO', message: /503 SlowDown after 3 attempts/ })
    failures = 0
  })

  t.test('every call has one deadline: a server that stops answering fails it after one s3Timeout, no retry, no object', async t => {
    const TIMEOUT = scaled(1000)
    let now = Date.now()
    const { b, prefix } = await backend(t, s3, { s3Timeout: TIMEOUT, s3ListCacheTtl: 60_000 }, { now: () => now })
    await b.write('/exists', Buffer.from('x'))
    await b.write('/d/known', Buffer.from('k'))
    await b.list('/d')
    now += 120_000 // the listing of /d expired: a lookup below it lists /d again first
    s3.pause()
    let resumed = false
    t.teardown(() => { if (!resumed) s3.resume() })
    // Each call: the first request that gets no answer ends it (no retry of it, no next probe of the same lookup).
    // A lookup sends its HEAD and the parent's listing at once: both are in flight when the first one times out.
    const calls: Array<[string, () => Promise<unknown>, number]> = [
      ['write', async () => await b.write('/new', Buffer.from('never')), 1],
      ['stat of a name no listing holds', async () => await b.stat('/elsewhere/x'), 2],
      ['stat of a name in a directory listed before', async () => await b.stat('/d/other'), 2],
      ['list', async () => await b.list('/other'), 1],
      ['ping', async () => await b.ping(), 1]
    ]
    for (const [what, call, requests] of calls) {
      const before = b.counters()
      const t0 = Date.now()
      await t.rejects(call(), { code: 'ETIMEDOUT' }, what)
      const took = Date.now() - t0
      const after = b.counters()
      t.equal(after.retries - before.retries, 0, `${what}: a timed-out attempt is not retried`)
      t.equal(after.requests - before.requests, requests, `${what}: the requests sent at once (${requests}), not the next probe after them`)
      t.ok(took < TIMEOUT + scaled(2000), `${what}: gave up after ${took} ms (s3Timeout ${TIMEOUT} ms)`)
    }
    s3.resume()
    resumed = true
    await t.rejects(head(`${prefix}new`), { name: 'NotFound' })
    await b.ping()
  })

  t.test('wrong credentials are EACCES, a missing bucket ENOENT; no secret in any message', async t => {
    // NB: s3rver checks the access key id, not SigV4 signatures: a wrong key id is what it can refuse.
    process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONGWRONGWRONG'
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong-secret-value'
    t.teardown(() => { process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY; process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY })
    const err = await connect({ bucket: Bucket, prefix: '' }, s3Settings(s3.options), kit).then(() => undefined, (e: Error) => e)
    t.match(err, { code: 'EACCES', message: /403 InvalidAccessKeyId/ })
    t.notMatch(String(err?.message), /wrong-secret-value|AKIAWRONG/)
    process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY
    process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY
    await t.rejects(connect({ bucket: 'no-such-bucket', prefix: '' }, s3Settings(s3.options), kit), { code: 'ENOENT', message: /bucket "no-such-bucket" does not exist/ })
    const { b } = await backend(t, s3)
    t.equal(b.description, `s3://${Bucket}/t${seq}`)
  })

  t.test('the cache: a fresh listing answers lookups of missing names; entries expire on the clock', async t => {
    let now = 1_000_000
    const { b, prefix } = await backend(t, s3, { s3ListCacheTtl: 1000 }, { now: () => now })
    await put(`${prefix}d/a`, 'a')
    await b.list('/d')
    const c0 = b.counters().requests
    await t.rejects(b.stat('/d/missing'), { code: 'ENOENT' })
    t.equal((await b.stat('/d/a')).kind, 'file')
    t.equal(b.counters().requests, c0, 'no request: the listing knew, and primed the attributes')
    await put(`${prefix}d/missing`, 'now here')
    await t.rejects(b.stat('/d/missing'), { code: 'ENOENT' }, 'another client\'s object is not seen within the TTL')
    now += 1000
    const c1 = b.counters()
    t.equal((await b.stat('/d/missing')).size, 8, 'seen once the TTL passed')
    await t.rejects(b.stat('/d/other'), { code: 'ENOENT' })
    await t.rejects(b.stat('/d/third'), { code: 'ENOENT' })
    const c2 = b.counters()
    t.same([c2.list - c1.list, c2.head - c1.head], [1, 1], 'a directory listed before is listed again, not probed name by name')
    await b.write('/d/mine', Buffer.from('m'))
    t.equal((await b.stat('/d/mine')).size, 1, 'this mount\'s own changes are seen at once')
    await b.remove('/d/mine')
    await t.rejects(b.stat('/d/mine'), { code: 'ENOENT' })
  })
}
