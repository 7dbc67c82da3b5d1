/**
 * End-to-end: real FUSE mounts of `s3://bucket/prefix` (fsx mount as a child, test/helpers/mount.ts) on a real
 * S3-compatible server (s3rver, test/helpers/s3-server.ts). POSIX work under each preset, checked through the mount
 * and with the plain SDK; interop both ways (objects other tools put; what fsx writes, with its x-amz-meta-*
 * headers, and s3fs/rclone reading it when installed); a 1,500-entry directory; the server dying mid-upload; the
 * random-operation exerciser.
 */
import t from 'tap'
import path from 'node:path'
import { readFile, readdir, rm, stat as lstatHost, writeFile } from 'node:fs/promises'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { forceUnmount, fuseAvailable, isMounted, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { bytes } from '../helpers/conformance.js'
import { startS3Server } from '../helpers/s3-server.js'
import { testSeeds } from '../helpers/timing.js'

const MiB = 1024 * 1024
/** Fixed seeds plus one random seed, printed as a comment (FSX_TEST_SEED=N replays it). */
const SEEDS = testSeeds([1, 4242], line => t.comment(line))
const EXERCISER_OPS = Number(process.env.FSX_S3_EXERCISER_OPS ?? 1000)

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  const Bucket = s3.bucket
  const sdk = s3.client()
  const getBody = async (Key: string): Promise<Buffer> =>
    Buffer.from(await (await sdk.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray())
  const head = async (Key: string) => await sdk.send(new HeadObjectCommand({ Bucket, Key }))
  const mountS3 = async (tt: typeof t, prefix: string, args: string[]) =>
    await mountFsx(tt, `s3://${Bucket}/${prefix}`, args, { env: s3.env })

  for (const preset of ['balanced', 'high-performance', 'safe']) {
    t.test(`POSIX work through a ${preset} mount lands as plain objects`, async t => {
      const prefix = `posix-${preset}`
      const m = await mountS3(t, prefix, ['--preset', preset, '--xattrs'])
      const src = path.join(t.testdir(), 'blob')
      const blob = bytes(3 * MiB + 7, 21)
      await writeFile(src, blob)
      const r = await sh(`
        cp ${src} big.bin
        printf 'hello' > h.txt
        printf 'J' | dd of=h.txt bs=1 seek=1 conv=notrunc status=none
        truncate -s 3 h.txt
        mkdir -p d/sub && mv h.txt d/h.txt && mv d dd
        ln -s dd/h.txt link
        touch -d '2020-01-02 03:04:05' big.bin
        chmod 640 big.bin
        setfattr -n user.note -v 'ü=1' big.bin
        ! rmdir dd 2>err.txt; grep -q 'not empty' err.txt; rm err.txt
        printf 'x' > gone && rm gone
        cat dd/h.txt; echo; readlink link; stat -c '%a %Y %s' big.bin; getfattr --only-values -n user.note big.bin; echo
        ls`, m.mountpoint)
      t.equal(r.code, 0, r.stderr)
      t.equal(r.stdout, `hJl\ndd/h.txt\n640 ${Date.UTC(2020, 0, 2, 3, 4, 5) / 1000} ${blob.length}\nü=1\nbig.bin\ndd\nlink\n`)
      t.ok((await readFile(path.join(m.mountpoint, 'big.bin'))).equals(blob), 'reads back byte for byte through the mount')
      t.equal(await m.stop(), 0, 'clean unmount')
      // What another tool sees.
      t.same(await getBody(`${prefix}/big.bin`), blob, 'the plain SDK reads it back byte for byte')
      t.match((await head(`${prefix}/big.bin`)).Metadata, { mode: String(0o100640), mtime: String(Date.UTC(2020, 0, 2, 3, 4, 5) / 1000) })
      t.equal((await getBody(`${prefix}/dd/h.txt`)).toString(), 'hJl')
      t.equal((await getBody(`${prefix}/link`)).toString(), 'dd/h.txt', 'symlink content is its target (s3fs)')
      t.equal((await head(`${prefix}/dd/`)).ContentType, 'application/x-directory')
      const keys = (await sdk.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}/` }))).Contents!.map(o => o.Key).sort()
      t.same(keys, [`${prefix}/big.bin`, `${prefix}/dd/`, `${prefix}/dd/h.txt`, `${prefix}/dd/sub/`, `${prefix}/link`], 'no stray objects')
    })
  }

  t.test('objects other tools put appear correctly; what fsx writes other tools read with its metadata', async t => {
    const prefix = 'interop'
    const mtime = Date.UTC(2019, 5, 6, 7, 8, 9)
    const put = (Key: string, Body: string | Buffer, Metadata?: Record<string, string>) => sdk.send(new PutObjectCommand({ Bucket, Key: `${prefix}/${Key}`, Body, Metadata }))
    await put('deep/a/b/c.txt', 'deep') // no markers anywhere: directories exist as prefixes only
    await put('deep/top.txt', 'top')
    await put('with meta', 'm', { mode: String(0o100600), uid: '4321', gid: '8765', mtime: String(mtime / 1000) })
    await put('rclone style', 'r', { mode: '100640', mtime: '1560000000.500000000' })
    const m = await mountS3(t, prefix, ['--preset', 'balanced'])
    const r = await sh(`
      find . | sort
      cat deep/a/b/c.txt; echo
      stat -c '%a %u %g %Y' 'with meta' 'rclone style'
      stat -c '%F' deep deep/a`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, [
      '.', './deep', './deep/a', './deep/a/b', './deep/a/b/c.txt', './deep/top.txt', './rclone style', './with meta',
      'deep', `600 4321 8765 ${mtime / 1000}`, '640 0 0 1560000000', 'directory', 'directory', ''
    ].join('\n'))
    const data = bytes(2 * MiB + 1, 9)
    await writeFile(path.join(m.mountpoint, 'written by fsx'), data)
    const h = await head(`${prefix}/written by fsx`)
    t.same(await getBody(`${prefix}/written by fsx`), data, 'byte for byte with the plain SDK')
    t.match(h.Metadata, { mode: String(0o100644), uid: String(process.getuid!()), gid: String(process.getgid!()), mtime: /^\d+(\.\d{9})?$/ })
    const st = await lstatHost(path.join(m.mountpoint, 'written by fsx'))
    t.equal(Math.floor(st.mtimeMs / 1000), Math.floor(Number(h.Metadata!.mtime)), 'the mount and the header agree on mtime')
    t.equal(await m.stop(), 0)
  })

  t.test('s3fs and rclone read what fsx wrote, and fsx reads what s3fs wrote: same mode, owner and mtime', async t => {
    const prefix = 'tools'
    const have = async (cmd: string) => (await run('sh', ['-c', `command -v ${cmd}`])).code === 0
    const m = await mountS3(t, prefix, ['--preset', 'safe'])
    let r = await sh(`printf 'by fsx' > f && chmod 640 f && touch -d '2021-02-03 04:05:06.25' f`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    const expectMtime = Date.UTC(2021, 1, 3, 4, 5, 6, 250)
    if (await have('s3fs')) {
      const dir = await tempDir('fsx-s3fs-')
      const passwd = path.join(dir, 'passwd')
      await writeFile(passwd, 'S3RVER:S3RVER\n', { mode: 0o600 })
      const mnt = path.join(dir, 'mnt')
      await sh(`mkdir -p ${mnt}`)
      const s3fs = await run('s3fs', [`${Bucket}:/${prefix}`, mnt, '-o', `passwd_file=${passwd},url=${s3.endpoint},use_path_request_style,use_xattr`])
      t.equal(s3fs.code, 0, s3fs.stderr)
      t.teardown(async () => {
        await forceUnmount(mnt)
        if (!await isMounted(mnt)) await rm(dir, { recursive: true, force: true })
      })
      r = await sh(`stat -c '%a %u %.3Y %s' f; cat f; echo; printf 'by s3fs' > g && chmod 604 g && touch -d '2018-07-08 09:10:11' g`, mnt)
      t.equal(r.code, 0, r.stderr)
      t.equal(r.stdout, `640 ${process.getuid!()} ${(expectMtime / 1000).toFixed(3)} 6\nby fsx\n`, 's3fs sees fsx\'s mode, owner and mtime')
      await run('fusermount', ['-u', mnt])
      r = await sh(`stat -c '%a %.0Y %s' g; cat g`, m.mountpoint)
      t.equal(r.stdout, `604 ${Date.UTC(2018, 6, 8, 9, 10, 11) / 1000} 7\nby s3fs`, 'fsx sees s3fs\'s mode and mtime')
    } else t.comment('s3fs not installed: not checked')
    if (await have('rclone')) {
      const env = {
        AWS_CA_BUNDLE: undefined as unknown as string,
        RCLONE_CONFIG_T_TYPE: 's3', RCLONE_CONFIG_T_PROVIDER: 'Other', RCLONE_CONFIG_T_ENDPOINT: s3.endpoint,
        RCLONE_CONFIG_T_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_T_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_T_FORCE_PATH_STYLE: 'true'
      }
      const ls = await run('rclone', ['lsjson', '--config', '/dev/null', `t:${Bucket}/${prefix}/f`], { env })
      t.equal(ls.code, 0, ls.stderr)
      const entry = JSON.parse(ls.stdout)[0]
      t.equal(Date.parse(entry.ModTime), expectMtime, 'rclone reads fsx\'s mtime')
    } else t.comment('rclone not installed: not checked')
    t.equal(await m.stop(), 0)
  })

  t.test('a directory of 1,500 entries lists completely through the mount', async t => {
    const prefix = 'many'
    const names = Array.from({ length: 1500 }, (_, i) => `e${String(i).padStart(4, '0')}`)
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < names.length) {
        const n = names[next++]
        await sdk.send(new PutObjectCommand({ Bucket, Key: `${prefix}/dir/${n}`, Body: n }))
      }
    }))
    const m = await mountS3(t, prefix, ['--preset', 'balanced'])
    const listed = (await readdir(path.join(m.mountpoint, 'dir'))).sort()
    t.equal(listed.length, 1500)
    t.same(listed, names)
    const r = await sh('ls -l dir | tail -n +2 | wc -l; cat dir/e1499', m.mountpoint)
    t.equal(r.stdout, '1500\ne1499')
    t.equal(await m.stop(), 0)
  })

  t.test('the server dying mid-upload fails fsync and close, and no half-written object appears', async t => {
    const prefix = 'crash'
    const m = await mountS3(t, prefix, ['--preset', 'balanced', '--s3-part-size', '5M', '--s3-concurrency', '1', '--s3-timeout', '3s'])
    const file = path.join(m.mountpoint, 'big')
    // The writer: 40 MiB in, then fsync (the upload), then close; prints what each returned.
    const writer = run(process.execPath, ['-e', `
      const fs = require('fs')
      const fd = fs.openSync(${JSON.stringify(file)}, 'w')
      fs.writeSync(fd, Buffer.alloc(40 * 1024 * 1024, 7))
      let out = ''
      try { fs.fsyncSync(fd); out += 'fsync ok ' } catch (e) { out += 'fsync ' + e.code + ' ' }
      try { fs.closeSync(fd); out += 'close ok' } catch (e) { out += 'close ' + e.code }
      console.log(out)`], { timeoutMs: 120_000 })
    // Wait until the multipart upload is under way (a part is on the server), then kill the server.
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const ups = await s3.uploadsInProgress()
      if (ups.length > 0 && (await readdir(path.join(s3.dir, Bucket, '._S3rver_uploads', ups[0])).catch(() => [])).some(f => /^\d+$/.test(f))) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    t.ok(Date.now() < deadline, 'the upload started')
    await s3.crash()
    const r = await writer
    t.match(r.stdout, /^fsync (EIO|ETIMEDOUT) close (EIO|ETIMEDOUT)/, 'the error reaches the application at fsync and at close')
    await s3.start()
    const h = await head(`${prefix}/big`).catch(() => undefined)
    t.ok(h === undefined || h.ContentLength === 0, `no half-written object (found ${h?.ContentLength ?? 'none'})`)
    const keys = (await sdk.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}/` }))).Contents?.map(o => o.Key) ?? []
    t.ok(keys.every(k => k === `${prefix}/big`), 'nothing else appeared')
    t.equal(await m.stop(), 0)
  })

  for (const seed of SEEDS) {
    t.test(`${EXERCISER_OPS} random operations through an S3 mount match the model (seed=${seed})`, async t => {
      const m = await mountS3(t, `exerciser-${seed}`, ['--preset', 'balanced'])
      const report = await exercise({ root: m.mountpoint, seed, ops: EXERCISER_OPS, opTimeoutMs: 60_000 })
      t.equal(report.ops, EXERCISER_OPS)
      t.ok(report.bytesWritten > 0 && report.bytesRead > 0)
      t.equal(await m.stop(), 0)
    })
  }
}
