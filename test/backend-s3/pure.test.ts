/**
 * The S3 plugin's pure parts, without a server: source parsing and settings (settings.ts), path ⇔ key mapping and
 * the copy-source encoding (keys.ts), the s3fs/rclone metadata formats (metadata.ts), the errno mapping
 * (errors.ts) and the metadata cache on a fake clock (cache.ts).
 */
import t from 'tap'
import {
  copySource, errnoCodeOf, isLinkError, KeyMap, metadata as md, MetaCache, parseS3Source, s3Backend, s3Settings, translate
} from '../../plugins/backend-s3/dist/index.js'
import { fsxError } from '../../dist/errors.js'

const src = (raw: string) => {
  let url: URL
  try { url = new URL(raw) } catch { url = new URL('s3://unparsable') }
  return { scheme: 's3', raw, url }
}

t.test('s3://bucket[/prefix] parses into bucket and a slash-terminated prefix', async t => {
  t.same(parseS3Source(src('s3://my-bucket')), { bucket: 'my-bucket', prefix: '' })
  t.same(parseS3Source(src('s3://my-bucket/')), { bucket: 'my-bucket', prefix: '' })
  t.same(parseS3Source(src('s3://b.x/photos/2024/')), { bucket: 'b.x', prefix: 'photos/2024/' })
  t.same(parseS3Source(src('s3://bkt/with space%20and#hash?q')), { bucket: 'bkt', prefix: 'with space%20and#hash?q/' }, 'the prefix is taken as typed')
})

t.test('bad sources are refused with EINVAL, credentials never echoed', async t => {
  for (const raw of ['s3://', 's3://bkt/a//b', 's3://bkt/a/../b', 's3://bkt/./a', 's3://b_k t', 's3://bkt?region=x']) {
    t.throws(() => parseS3Source(src(raw)), { code: 'EINVAL' }, raw)
  }
  const err = t.throws(() => parseS3Source(src('s3://AKIASECRET:hunter2@bkt/x'))) as Error
  t.match(err, { code: 'EINVAL' })
  t.notMatch(err.message, /hunter2|AKIASECRET/)
})

t.test('settings: defaults, AWS_ENDPOINT_URL_S3, path style on for custom endpoints, ranges checked', async t => {
  const d = s3Settings({}, {})
  t.same(d, { endpoint: undefined, region: undefined, pathStyle: false, timeoutMs: 30_000, partSizeBytes: 8 * 1024 * 1024, concurrency: 4, listCacheTtlMs: 1000, metadata: 'full', listedAbsence: true, deleteDelayMs: 0 })
  t.equal(s3Settings({ negativeCacheTtl: 0 }, {}).listedAbsence, false, 'without a negative cache a listing never answers that a name is absent')
  t.equal(s3Settings({}, { AWS_ENDPOINT_URL_S3: 'http://h:9000' }).endpoint, 'http://h:9000')
  t.equal(s3Settings({}, { AWS_ENDPOINT_URL: 'http://all:1' }).endpoint, 'http://all:1')
  t.equal(s3Settings({ s3Endpoint: 'http://flag:2' }, { AWS_ENDPOINT_URL_S3: 'http://h:9000' }).endpoint, 'http://flag:2', 'the fsx setting wins')
  t.equal(s3Settings({}, { AWS_ENDPOINT_URL_S3: 'http://h:9000' }).pathStyle, true)
  t.equal(s3Settings({ s3Endpoint: 'http://h:9000', s3PathStyle: false }, {}).pathStyle, false)
  t.equal(s3Settings({ attrTtl: 5000 }, {}).listCacheTtlMs, 5000, 'the list cache follows attrTtl by default')
  t.equal(s3Settings({ attrTtl: 5000, s3ListCacheTtl: 0 }, {}).listCacheTtlMs, 0)
  t.throws(() => s3Settings({ s3PartSize: 1024 }, {}), { code: 'EINVAL' })
  t.throws(() => s3Settings({ s3Concurrency: 0 }, {}), { code: 'EINVAL' })
  t.equal(s3Settings({ s3Metadata: 'listing' }, {}).metadata, 'listing')
  t.throws(() => s3Settings({ s3Metadata: 'some' }, {}), { code: 'EINVAL' })
  t.equal(s3Settings({ writeback: true }, {}).deleteDelayMs, 1000, 'with writeback, unlinks are batched for up to 1 s by default')
  t.equal(s3Settings({ writeback: true, s3DeleteDelay: 0 }, {}).deleteDelayMs, 0)
  t.equal(s3Settings({ writeback: true, coherence: 'redis://h' }, {}).deleteDelayMs, 0, 'not under coherence: peers are told when the unlink returns')
  t.equal(s3Settings({ s3DeleteDelay: 5000 }, {}).deleteDelayMs, 0, 'without writeback every unlink waits for S3')
  t.throws(() => s3Settings({ writeback: true, s3DeleteDelay: 120_000 }, {}), { code: 'EINVAL' })
  t.throws(() => s3Settings({ s3Endpoint: 'ftp://x' }, {}), { code: 'EINVAL' })
  const err = t.throws(() => s3Settings({ s3Endpoint: 'http://key:secret@h' }, {})) as Error
  t.notMatch(err.message, /secret/)
})

t.test('the definition declares its option rows with scope s3 and no secret settings', async t => {
  t.same(s3Backend.schemes, ['s3'])
  const keys = s3Backend.options!.map(o => o.key)
  t.same(keys, ['s3Endpoint', 's3Region', 's3PathStyle', 's3Timeout', 's3PartSize', 's3Concurrency', 's3ListCacheTtl', 's3DeleteDelay', 's3Metadata'])
  t.ok(s3Backend.options!.every(o => o.scope === 's3' && o.help.length > 0 && !o.secret))
})

t.test('paths map to keys under the prefix; bad paths are refused', async t => {
  const k = new KeyMap('pre/', (code, message) => Object.assign(new Error(message), { code }))
  t.equal(k.fileKey('/a/b'), 'pre/a/b')
  t.equal(k.dirPrefix('/a'), 'pre/a/')
  t.equal(k.dirPrefix('/'), 'pre/')
  t.equal(k.pathOf('pre/a/b/'), '/a/b')
  t.equal(k.pathOf('other/a'), undefined)
  t.equal(k.pathOf('pre/a//b'), undefined)
  for (const p of ['a', '/a/../b', '/a//b', '/.', '/a/']) t.throws(() => k.check(p, 'stat'), { code: 'EINVAL' }, p)
  t.throws(() => k.check('/' + 'x'.repeat(256), 'stat'), { code: 'ENAMETOOLONG' })
  t.throws(() => k.check('/' + Array(10).fill('y'.repeat(120)).join('/'), 'stat'), { code: 'ENAMETOOLONG' }, 'over 1024 bytes of key')
})

t.test('x-amz-copy-source encodes every reserved character of the key, keeping slashes', async t => {
  t.equal(copySource('bkt', 'a b/user@host/100%/#x?y&z=1+2/ü'), 'bkt/a%20b/user%40host/100%25/%23x%3Fy%26z%3D1%2B2/%C3%BC')
  t.equal(copySource('bkt', "it's(1)*!"), 'bkt/it%27s%281%29%2A%21')
  t.equal(decodeURIComponent(copySource('bkt', 'a@b/c d')), 'bkt/a@b/c d')
})

t.test('mtime is written the way s3fs does and read in every form s3fs and rclone write', async t => {
  t.equal(md.formatTime(1577934245000), '1577934245')
  t.equal(md.formatTime(1577934245678), '1577934245.678000000')
  t.equal(md.parseTime('1577934245'), 1577934245000)
  t.equal(md.parseTime('1577934245.678000000'), 1577934245678, 's3fs')
  t.equal(md.parseTime('1614834367.123456789'), 1614834367123.4568, 'rclone, nanoseconds')
  t.equal(md.parseTime('1614834367.5'), 1614834367500, 'a short fraction')
  t.equal(md.parseTime('2026-11-21T10:30:36.446849756Z'), Date.parse('2026-11-21T10:30:36.446Z'), 'rclone -M atime (RFC 3339)')
  t.equal(md.parseTime('yesterday'), undefined)
  for (const ms of [0, 1, 999, 1000, 1577934245678, 4102444800123]) t.equal(md.parseTime(md.formatTime(ms)), ms, `round trip ${ms}`)
})

t.test('mode is written in decimal (s3fs) and read in decimal, 0-prefixed octal and rclone octal', async t => {
  t.equal(md.formatMode(0o100644), '33188')
  t.equal(md.parseMode('33188'), 0o100644, 's3fs file')
  t.equal(md.parseMode('493'), 0o755, 's3fs directory marker (no type bits)')
  t.equal(md.parseMode('41471'), 0o120777, 's3fs symlink')
  t.equal(md.parseMode('100644'), 0o100644, 'rclone -M (octal, no leading 0)')
  t.equal(md.parseMode('0100600'), 0o100600, 'leading 0: octal (s3fs reads base 0)')
  t.equal(md.parseMode('99999999'), undefined)
  t.equal(md.parseMode('rw-r--r--'), undefined)
})

t.test('xattrs are one header in s3fs\'s form: urlencode(JSON name -> base64)', async t => {
  const x = new Map([['user.hello', Buffer.from('wörld=1')], ['user.bin', Buffer.from([0, 255, 10])]])
  const enc = md.encodeXattrs(x)!
  t.equal(enc, '%7B%22user.bin%22%3A%22AP8K%22%2C%22user.hello%22%3A%22d8O2cmxkPTE%3D%22%7D', 'byte for byte what s3fs 1.90 wrote')
  t.same([...md.decodeXattrs(enc)].map(([k, v]) => [k, v.toString('hex')]), [['user.bin', '00ff0a'], ['user.hello', Buffer.from('wörld=1').toString('hex')]])
  t.equal(md.encodeXattrs(new Map()), undefined)
  t.equal(md.decodeXattrs('%7Bnot json').size, 0)
})

t.test('stat from metadata; objects without metadata get defaults', async t => {
  const d = { uid: 1000, gid: 100 }
  const info = (metadata: Record<string, string>, extra: object = {}) => ({ key: 'k', size: 7, lastModifiedMs: 5000, metadata, headers: {}, ...extra })
  const bare = md.statOf(info({}), false, d)
  t.match(bare, { kind: 'file', mode: 0o100644, uid: 1000, gid: 100, mtimeMs: 5000, atimeMs: 5000, size: 7 })
  const full = md.statOf(info({ mode: '33184', uid: '7', gid: '8', mtime: '12.5', atime: '11' }), false, d)
  t.match(full, { kind: 'file', mode: 0o100640, uid: 7, gid: 8, mtimeMs: 12500, atimeMs: 11000 })
  t.match(md.statOf(info({ mode: '41471' }), false, d), { kind: 'symlink', mode: 0o120777, size: 7 })
  t.match(md.statOf(info({ mode: '493' }), true, d), { kind: 'dir', mode: 0o040755, size: 0 })
  t.match(md.statOf(info({}, { size: 0, headers: { ContentType: 'application/x-directory' } }), false, d), { kind: 'dir' }, 's3fs legacy "dir" object')
  t.match(md.implicitDirStat(42, d), { kind: 'dir', mode: 0o040755, mtimeMs: 42 })
})

t.test('S3 errors map to errnos; messages name op and path', async t => {
  const e = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status, attempts: 3 } })
  t.equal(errnoCodeOf(e('NoSuchKey', 404)), 'ENOENT')
  t.equal(errnoCodeOf(e('NotFound', 404)), 'ENOENT')
  t.equal(errnoCodeOf(e('NoSuchBucket', 404)), 'ENOENT')
  t.equal(errnoCodeOf(e('AccessDenied', 403)), 'EACCES')
  t.equal(errnoCodeOf(e('Unknown', 403)), 'EACCES')
  t.equal(errnoCodeOf(e('SlowDown', 503)), 'EIO', 'throttling, once the retries are spent')
  t.equal(errnoCodeOf(e('InternalError', 500)), 'EIO')
  t.equal(errnoCodeOf(e('MetadataTooLarge', 400)), 'E2BIG')
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { name: 'TimeoutError' })), 'ETIMEDOUT')
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { name: 'S3NoAnswer' })), 'ETIMEDOUT', 'an attempt that got no answer')
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED', 'no connection: a link error, not an answer')
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 'EHOSTUNREACH')
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { code: 'ECONNRESET', $metadata: { httpStatusCode: 500 } })), 'EIO', 'an answer, however bad')
  t.ok(isLinkError(Object.assign(new Error('x'), { name: 'TimeoutError' })))
  t.ok(isLinkError(fsxError('ECONNREFUSED', 'x')))
  t.notOk(isLinkError(e('SlowDown', 503)), 'throttling is an answer')
  t.notOk(isLinkError(e('NoSuchKey', 404)))
  t.equal(errnoCodeOf(Object.assign(new Error('x'), { name: 'CredentialsProviderError' })), 'EACCES')
  const err = translate(e('SlowDown', 503), 'write', '/a', fsxError)
  t.match(err, { code: 'EIO', path: '/a', op: 'write', message: 'write /a: S3 answered 503 SlowDown after 3 attempts' })
  const own = fsxError('ENOTEMPTY', 'x')
  t.equal(translate(own, 'rmdir', '/d', fsxError), own, 'errno-coded errors pass through')
  const timedOut = fsxError('ETIMEDOUT', 'list /d: no answer')
  t.equal(translate(timedOut, 'stat', '/d/f', fsxError), timedOut, 'so do link errors translated before')
  t.match(translate(Object.assign(new Error('getaddrinfo ENOTFOUND s3.example'), { code: 'ENOTFOUND' }), 'stat', '/f', fsxError), { code: 'EHOSTUNREACH' })
})

t.test('the metadata cache expires on its clock and follows mutations', async t => {
  let now = 1000
  const c = new MetaCache(500, () => now)
  const st = md.implicitDirStat(0, { uid: 0, gid: 0 })
  c.storeListing('/d', c.begin(), '', undefined, [['a', { kind: 'file', size: 1 }]])
  c.end()
  c.setNode('/d/a', { stat: st })
  t.ok(c.node('/d/a'))
  t.same(c.listed('/d', 'a'), { kind: 'file', size: 1 }, 'a complete listing answers names in it')
  t.equal(c.listed('/d', 'zz'), null, 'and names not in it')
  c.added('/d/b', 'file')
  t.equal(c.dir('/d')?.get('b')?.kind, 'file', 'a write adds to the cached listing')
  c.removed('/d/a')
  t.equal(c.node('/d/a'), null, 'a removal is remembered as absent')
  t.equal(c.dir('/d')?.has('a'), false)
  // A page "from a name onward" covers (after, upTo] only.
  c.storeListing('/p', c.begin(), 'k1', 'k5', [['k2', { kind: 'file' }], ['k5', { kind: 'dir' }]])
  c.end()
  t.same([c.listed('/p', 'k2')?.kind, c.listed('/p', 'k3')], ['file', null])
  t.same([c.listed('/p', 'k1'), c.listed('/p', 'k6'), c.dir('/p')], [undefined, undefined, undefined], 'outside the page: unknown')
  t.equal(c.listed('/p', 'k5'), undefined, 'nor the page\'s last name (a prefix "k5/" may come after it)')
  // A listing that began before a change of one of its names keeps what the change made of that name.
  const start = c.listingBegins('/q')
  c.touch('/q/mine')
  c.added('/q/mine', 'file')
  c.storeListing('/q', start, '', undefined, [['old', { kind: 'file' }]])
  c.listingEnds('/q')
  t.same([...(c.dir('/q')?.keys() ?? [])].sort(), ['mine', 'old'], 'a name made during a listing that missed it stays')
  c.setNode('/d/x/y', { stat: st })
  c.removedTree('/d')
  t.equal(c.node('/d/x/y'), undefined, 'a tree removal forgets everything below')
  // Another client changed a tree (coherence): everything cached of it and its parent's listing is forgotten.
  c.storeListing('/t', c.begin(), '', undefined, [['u', { kind: 'dir' }]])
  c.end()
  c.storeListing('/t/u', c.begin(), '', undefined, [['v', { kind: 'file', size: 2 }]])
  c.end()
  c.setNode('/t/u/v', { stat: st })
  c.forgetTree('/t/u')
  t.same([c.node('/t/u/v'), c.listed('/t/u', 'v'), c.listed('/t', 'u')], [undefined, undefined, undefined], 'forgetTree forgets below, and the parent\'s listing')
  c.setNode('/e', { stat: st })
  now += 499
  t.ok(c.node('/e'), 'fresh just before the TTL')
  now += 1
  t.equal(c.node('/e'), undefined, 'expired at the TTL')
  const off = new MetaCache(0, () => now)
  off.setNode('/e', { stat: st })
  t.equal(off.node('/e'), undefined, 'TTL 0 stores nothing')
  const small = new MetaCache(1000, () => now, 3)
  for (const p of ['/1', '/2', '/3', '/4']) small.setNode(p, null)
  t.equal(small.node('/1'), undefined, 'bounded: the oldest entry goes first')
  t.equal(small.node('/4'), null)
})

t.test('a write begun before a listing and done before it is stored is not wiped by it (nor a delete undone)', async t => {
  const now = 1000
  const c = new MetaCache(500, () => now)
  c.storeListing('/d', c.begin(), '', undefined, [['gone', { kind: 'file' }]])
  c.end()
  c.touch('/d/new') // the PUT begins
  c.touch('/d/gone') // and a DELETE
  const start = c.listingBegins('/d') // a listing begins: S3 answers it before either lands
  c.added('/d/new', 'file') // the PUT is done
  c.removed('/d/gone') // the DELETE is done
  c.storeListing('/d', start, '', undefined, [['gone', { kind: 'file' }]])
  c.listingEnds('/d')
  t.equal(c.listed('/d', 'new')?.kind, 'file', 'the written file stays listed')
  t.equal(c.listed('/d', 'gone'), null, 'the deleted one stays gone')
})
