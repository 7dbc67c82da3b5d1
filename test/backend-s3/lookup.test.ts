/**
 * How the S3 backend answers lookups (issue 10), counted in requests by the backend's own counters, against the real
 * S3-compatible server the suite starts (s3rver): a fresh listing answers names in it and names not in it; a lookup
 * in a directory never listed lists the parent (from that name onward) and the next lookups are free; when no listing
 * can answer, HEAD key, HEAD key/ and a 1-key LIST go out at once; `s3Metadata=listing` takes attributes from the
 * listing alone, and objects written in either mode read correctly in the other. Imports compiled output.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { connect, s3Settings, type S3Backend } from '../../plugins/backend-s3/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { bytes } from '../helpers/conformance.js'
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server, type S3Server } from '../helpers/s3-server.js'
import { scaled } from '../helpers/timing.js'

const kit = { fsxError }
process.env.AWS_ACCESS_KEY_ID = S3_ACCESS_KEY
process.env.AWS_SECRET_ACCESS_KEY = S3_SECRET_KEY

const s3 = await startS3Server(t)

let seq = 0
/** A backend on a fresh prefix (or the one given) of the test bucket, on a fake clock; closed in teardown. */
async function backend (t: Test, srv: S3Server, opts: Record<string, unknown>, extra: { prefix?: string; endpoint?: string } = {}): Promise<{ b: S3Backend; prefix: string }> {
  const prefix = extra.prefix ?? `lookup${++seq}/`
  const settings = s3Settings({ ...srv.options, ...(extra.endpoint !== undefined ? { s3Endpoint: extra.endpoint } : {}), ...opts })
  const b = await connect({ bucket: srv.bucket, prefix }, settings, kit, { now: () => 1_000_000 })
  t.teardown(() => b.close())
  return { b, prefix }
}

/** Requests of each kind `fn` made, with the listings it had sent ahead (list read-ahead) once they are done. */
async function counted (b: S3Backend, fn: () => Promise<unknown>): Promise<{ requests: number; head: number; list: number }> {
  await b.listedAhead()
  const before = b.counters()
  await fn()
  await b.listedAhead()
  const after = b.counters()
  return { requests: after.requests - before.requests, head: after.head - before.head, list: after.list - before.list }
}

if (s3 !== undefined) {
  const Bucket = s3.bucket
  const sdk = s3.client()
  const put = async (Key: string, Body: string | Buffer = 'x', extra: Record<string, unknown> = {}): Promise<void> => {
    await sdk.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }))
  }
  const lastModified = async (Key: string): Promise<number> => (await sdk.send(new HeadObjectCommand({ Bucket, Key }))).LastModified!.getTime()

  t.test('listing mode: a lookup in a directory never listed lists it once; then its names and their absence cost nothing', async t => {
    const { b, prefix } = await backend(t, s3, { s3Metadata: 'listing', s3ListCacheTtl: 60_000 })
    await put(`${prefix}d/a`, 'aaa', { Metadata: { mode: String(0o100600), uid: '1001' } })
    await put(`${prefix}d/b`, 'bbbbb')
    await put(`${prefix}d/sub/x`, 'x')
    let st = await b.stat('/d') // the parent itself: found by its own parent's listing
    let n = await counted(b, async () => { st = await b.stat('/d/a') })
    t.same([n.list, n.head], [1, 0], 'one listing of the parent, no HEAD')
    t.match(st, { kind: 'file', size: 3, mode: 0o100644, uid: process.getuid!(), mtimeMs: await lastModified(`${prefix}d/a`) },
      'size and LastModified from the listing; mode and owner the mount\'s defaults')
    n = await counted(b, async () => {
      t.match(await b.stat('/d/b'), { kind: 'file', size: 5 })
      t.match(await b.stat('/d/sub'), { kind: 'dir' })
      await t.rejects(b.stat('/d/nothing'), { code: 'ENOENT' })
      await t.rejects(b.stat('/d/a0'), { code: 'ENOENT' })
    })
    t.equal(n.requests, 0, 'the fresh listing answered a file, a directory and two absent names')
    n = await counted(b, async () => {
      const names = await b.list('/d')
      t.same(names.map(e => [e.name, e.stat?.kind]), [['a', 'file'], ['b', 'file'], ['sub', 'dir']])
      t.same((await b.list('/d/sub')).map(e => [e.name, e.stat?.kind, e.stat?.size]), [['x', 'file', 1]])
    })
    t.same([n.list, n.head], [1, 0], 'list: /d answered by that fresh listing; /d/sub, not listed yet, one ListObjectsV2 (sent ahead when /d was listed); no HEAD per entry')
  })

  t.test('full mode: a listing hit costs one HEAD (the object\'s metadata), a listing negative nothing', async t => {
    const { b, prefix } = await backend(t, s3, { s3Metadata: 'full', s3ListCacheTtl: 60_000 })
    await put(`${prefix}d/a`, 'aaa', { Metadata: { mode: String(0o100600), uid: '1001' } })
    await put(`${prefix}d/b`, 'bb', { Metadata: { mode: String(0o100640), gid: '1002' } })
    await b.stat('/d')
    let n = await counted(b, async () => t.match(await b.stat('/d/a'), { mode: 0o100600, uid: 1001 }))
    t.same([n.list, n.head], [1, 1], 'a lookup in a directory never listed: its HEAD and the parent\'s listing, at once')
    n = await counted(b, async () => t.match(await b.stat('/d/b'), { mode: 0o100640, gid: 1002 }))
    t.same([n.list, n.head], [0, 1], 'a name the fresh listing holds: one HEAD for its metadata, no probe of key/')
    n = await counted(b, async () => {
      await t.rejects(b.stat('/d/missing'), { code: 'ENOENT' })
      await t.rejects(b.stat('/d/c'), { code: 'ENOENT' })
    })
    t.equal(n.requests, 0, 'names the fresh listing does not hold: no request')
  })

  t.test('a miss in a large directory lists from that name onward; that page answers the names after it', async t => {
    const { b, prefix } = await backend(t, s3, { s3Metadata: 'listing', s3ListCacheTtl: 60_000 })
    const names = Array.from({ length: 1100 }, (_, i) => `k${String(i).padStart(4, '0')}`)
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map(async k => await put(`${prefix}big/${k}`, k)))
    }
    await b.stat('/big')
    let n = await counted(b, async () => t.match(await b.stat('/big/k1000'), { kind: 'file', size: 5 }))
    t.same([n.list, n.head], [1, 0], 'one page of the parent, from the name onward')
    n = await counted(b, async () => {
      t.match(await b.stat('/big/k1099'), { size: 5 })
      t.match(await b.stat('/big/k1050'), { size: 5 })
      await t.rejects(b.stat('/big/k1050x'), { code: 'ENOENT' })
      await t.rejects(b.stat('/big/zzz'), { code: 'ENOENT' })
    })
    t.equal(n.requests, 0, 'names after it (present or not) answered by that page')
    n = await counted(b, async () => t.match(await b.stat('/big/k0001'), { size: 5 }))
    t.equal(n.list, 1, 'a name before the page is not covered by it: another page')
    n = await counted(b, async () => t.match(await b.stat('/big/k0500'), { size: 5 }))
    t.equal(n.requests, 0, 'which answers the names after that one')
  })

  t.test('with no listing to answer (cache off), HEAD key, HEAD key/ and a 1-key LIST go out at once', async t => {
    // A proxy that holds each request until three are waiting (or a bound passes): probes sent one after another
    // get through only one at a time, probes sent together are all held at once.
    let waiting: Array<() => void> = []
    let held = 0
    let most = 0
    let timer: NodeJS.Timeout | undefined
    const release = (): void => {
      clearTimeout(timer)
      timer = undefined
      const w = waiting
      waiting = []
      held = 0
      for (const go of w) go()
    }
    const proxy = http.createServer((req, res) => {
      const forward = (): void => {
        const up = http.request({ host: '127.0.0.1', port: s3.port, path: req.url, method: req.method, headers: req.headers }, r => {
          res.writeHead(r.statusCode ?? 500, r.headers)
          r.pipe(res)
        })
        up.on('error', () => res.destroy())
        req.pipe(up)
      }
      waiting.push(forward)
      most = Math.max(most, ++held)
      if (held >= 3) release()
      else timer ??= setTimeout(release, scaled(2000))
    })
    await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
    t.teardown(async () => { release(); await new Promise(resolve => proxy.close(() => resolve(undefined))) })
    const endpoint = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
    const { b, prefix } = await backend(t, s3, { s3Metadata: 'full', s3ListCacheTtl: 0 }, { endpoint })
    await put(`${prefix}deep/er/file`, 'x')
    most = 0
    const n = await counted(b, async () => t.match(await b.stat('/deep'), { kind: 'dir' }))
    t.same([n.head, n.list], [2, 1], 'HEAD deep, HEAD deep/, LIST deep/ (1 key)')
    t.equal(most, 3, 'all three were in flight together')
    most = 0
    await t.rejects(b.stat('/nothing'), { code: 'ENOENT' })
    t.equal(most, 3, 'a miss too')
  })

  t.test('objects written in listing mode read correctly with full, and the other way round', async t => {
    const prefix = `lookup${++seq}/`
    const { b: listing } = await backend(t, s3, { s3Metadata: 'listing', s3ListCacheTtl: 60_000 }, { prefix })
    const { b: full } = await backend(t, s3, { s3Metadata: 'full', s3ListCacheTtl: 0 }, { prefix })
    const data = bytes(70_000, 10)
    // Another tool's object, there before the listing-mode mount lists anything (it trusts its listings for the TTL).
    await put(`${prefix}o/other`, 'by another tool', { ContentType: 'text/plain', Metadata: { mode: String(0o100640), uid: '42', gid: '43' } })

    // listing → full: what fsx writes in listing mode carries the full metadata.
    await listing.mkdir('/l', 0o750)
    await listing.write('/l/f', data, { mode: 0o100600, uid: 1234, gid: 5678, mtimeMs: Date.UTC(2020, 1, 2) })
    await listing.symlink('f', '/l/link')
    t.match(await full.stat('/l'), { kind: 'dir', mode: 0o40750 })
    t.match(await full.stat('/l/f'), { kind: 'file', size: data.length, mode: 0o100600, uid: 1234, gid: 5678, mtimeMs: Date.UTC(2020, 1, 2) })
    t.same(await full.read('/l/f', 0, data.length), data, 'byte for byte')
    t.equal(await full.readlink('/l/link'), 'f')

    // An object the listing-mode mount knows from a listing only: chmod, chown, utimens and xattrs read and rewrite
    // the object's own metadata (a HEAD, then CopyObject), never defaults, never a directory marker.
    const entries = await listing.list('/o')
    t.match(entries.find(e => e.name === 'other')?.stat, { mode: 0o100644 }, 'listed: the default mode')
    await listing.setxattr('/o/other', 'user.k', Buffer.from('v'), 0)
    await listing.chmod('/o/other', 0o600)
    t.match(await full.stat('/o/other'), { kind: 'file', mode: 0o100600, uid: 42, gid: 43 }, 'the owner the object recorded is kept')
    t.equal((await full.getxattr('/o/other', 'user.k')).toString(), 'v')
    await t.rejects(sdk.send(new HeadObjectCommand({ Bucket, Key: `${prefix}o/other/` })), { name: 'NotFound' }, 'no directory marker was made for it')
    t.equal((await full.read('/o/other', 0, 100)).toString(), 'by another tool')

    // full → listing: reads the same bytes; a rewrite in listing mode keeps the mode and owner the object records.
    // (A second listing-mode mount: the first trusts its listing of / for s3ListCacheTtl, so it would not see /g.)
    await full.write('/g', data, { mode: 0o100640, uid: 77, gid: 78, mtimeMs: Date.UTC(2021, 0, 1) })
    await full.setxattr('/g', 'user.tag', Buffer.from('kept'), 0)
    const { b: listing2 } = await backend(t, s3, { s3Metadata: 'listing', s3ListCacheTtl: 60_000 }, { prefix })
    const st = await listing2.stat('/g')
    t.match(st, { kind: 'file', size: data.length, mode: 0o100644 }, 'listed: the default mode')
    t.same(await listing2.read('/g', 0, data.length), data, 'byte for byte')
    // What the VFS does on close: the content, with the attributes it knows (here: the listing's defaults).
    await listing2.write('/g', Buffer.from('rewritten'), { mode: st.mode, uid: st.uid, gid: st.gid })
    t.match(await full.stat('/g'), { size: 9, mode: 0o100640, uid: 77, gid: 78 }, 'a rewrite from listing defaults keeps what the object recorded')
    t.equal((await full.getxattr('/g', 'user.tag')).toString(), 'kept')
    t.equal((await listing2.getxattr('/g', 'user.tag')).toString(), 'kept', 'xattrs are read from the object')
  })

  for (const metadata of ['listing', 'full']) {
    t.test(`${metadata}: a traversal is listed ahead: the next 16 subdirectories are listed in the background and cost it nothing`, async t => {
      const { b, prefix } = await backend(t, s3, { s3Metadata: metadata, s3ListCacheTtl: 60_000 })
      const dirs = Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}`)
      for (const d of dirs) for (const f of ['a', 'b']) await put(`${prefix}tree/${d}/${f}`, f)
      const c0 = b.counters()
      await b.list('/tree')
      for (const d of dirs) {
        t.same((await b.list(`/tree/${d}`)).map(e => e.name), ['a', 'b'], `${d} listed`)
        await b.listedAhead()
      }
      const c1 = b.counters()
      t.same([c1.list - c0.list, c1.listAhead - c0.listAhead], [21, 20], 'each directory listed once, every subdirectory ahead of the traversal')
      t.equal(c1.head - c0.head, metadata === 'full' ? 60 : 0, metadata === 'full' ? 'one HEAD per entry (the 20 directories, their 40 files), none twice' : 'no HEAD')
      t.match(await b.stat('/tree/d19/b'), { kind: 'file', size: 1 })
    })
  }

  t.test('a single listing of a directory whose parent was not listed lists nothing ahead', async t => {
    const { b, prefix } = await backend(t, s3, { s3Metadata: 'listing', s3ListCacheTtl: 60_000 })
    for (const d of ['x', 'y', 'z']) await put(`${prefix}top/${d}/f`, 'f')
    const n = await counted(b, async () => { await b.list('/top/x'); await b.listedAhead() })
    t.equal(n.list, 1, 'its own listing only (it has no subdirectory)')
  })
}
