// Issue 10 on a real S3 server through a real mount: write-back (high-performance) with many small files, and
// kill -9 of the mount process while their uploads are in flight. What the write-back journal promises
// (docs/SEMANTICS.md): close() returns once the file is fsynced into the on-disk journal, fsync() once S3 has it,
// and after a crash the journal is replayed at the next mount, so every file whose close or fsync returned has
// exactly its content on S3 afterwards; a file whose close had not returned is absent or complete, never partial.
// Part-way through, the S3 server is frozen (SIGSTOP): the uploads under way hang and the writer's next closes only
// reach the journal, so the kill always finds many small files not uploaded, some of them mid-request.
import t from 'tap'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { forceUnmount, fsx, fuseAvailable, mountFsx, tempDir } from '../helpers/mount.js'
import { startS3Server } from '../helpers/s3-server.js'
import { waitUntil } from '../helpers/timing.js'

const FILES = 300
/** Every FSYNC_EVERYth file is fsync'd before close; the others are only closed. */
const FSYNC_EVERY = 50
/** S3 is frozen once this many files were acknowledged (the last fsync'd one before it has returned)… */
const PAUSE_AT = 101
/** …and the mount killed once this many were (all closed only since the freeze: fsync would wait for S3). */
const KILL_AT = 140

/** File i's content: a few hundred bytes to a few KiB, different for every file. */
const CONTENT = `(i) => Buffer.from(String(i).padStart(4, '0') + ':' + 'abcdefghij'.repeat(10 + (i * 37) % 300) + '\\n')`
const contentOf: (i: number) => Buffer = eval(CONTENT)

/** Writes FILES files into argv[1]; prints "ack I" once file I's close (after its fsync, for some) returned. */
const WRITER = `const fs = require('fs'), path = require('path')
const contentOf = ${CONTENT}
const dir = process.argv[1], n = Number(process.argv[2]), every = Number(process.argv[3])
for (let i = 0; i < n; i++) {
  const fd = fs.openSync(path.join(dir, 'f' + i), 'w')
  fs.writeSync(fd, contentOf(i))
  if (i % every === 0) fs.fsyncSync(fd)
  fs.closeSync(fd)
  process.stdout.write('ack ' + i + '\\n')
}`

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  const sdk = s3.client()
  const get = async (Key: string): Promise<Buffer | undefined> => {
    try {
      const out = await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key }))
      return Buffer.from(await out.Body!.transformToByteArray())
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined
      throw err
    }
  }
  const count = async (Prefix: string): Promise<number> => {
    let n = 0
    let token: string | undefined
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix, ContinuationToken: token }))
      n += page.Contents?.length ?? 0
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return n
  }

  t.test(`kill -9 with ${FILES} small files in write-back: every file whose close or fsync returned is on S3 after the remount`, async t => {
    const env = { ...s3.env, FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-'), XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-') }
    const source = `s3://${s3.bucket}/wbkill`
    // A listing cache that outlasts the test: the writer's lookups of new names never need S3 while it is frozen.
    const m1 = await mountFsx(t, source, ['--preset', 'high-performance', '--s3-list-cache-ttl', '1h'], { env })
    const mnt = m1.mountpoint

    const writer = spawn(process.execPath, ['-e', `require('fs').mkdirSync(process.argv[1]); ${WRITER}`, path.join(mnt, 'w'), String(FILES), String(FSYNC_EVERY)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const writerExit = new Promise(resolve => writer.once('exit', resolve))
    t.teardown(() => { writer.kill('SIGKILL') })
    const acked = new Set<number>()
    let out = ''
    writer.stdout.on('data', d => {
      out += String(d)
      const lines = out.split('\n')
      out = lines.pop()!
      for (const l of lines) if (l.startsWith('ack ')) acked.add(Number(l.slice(4)))
    })
    await waitUntil(() => acked.size >= PAUSE_AT || writer.exitCode !== null, { timeoutMs: 300_000, what: `${PAUSE_AT} files acknowledged` })
    s3.pause()
    t.teardown(() => s3.resume())
    await waitUntil(() => acked.size >= KILL_AT || writer.exitCode !== null, { timeoutMs: 300_000, what: `${KILL_AT} files acknowledged` })
    t.ok(acked.size >= KILL_AT, `${acked.size} files acknowledged before the kill`)

    m1.child.kill('SIGKILL')
    await new Promise(resolve => m1.child.once('exit', resolve))
    const ackedAtKill = new Set(acked)
    s3.resume()
    writer.kill('SIGKILL')
    await writerExit
    await forceUnmount(mnt)
    const before = await count('wbkill/w/')
    t.ok(before < ackedAtKill.size, `the kill caught uploads in flight: ${before} of ${ackedAtKill.size} acknowledged files on S3 before the remount`)

    // Remount (straight to S3): the journal is replayed; `fsx flush` waits until it is uploaded.
    const m2 = await mountFsx(t, source, ['--preset', 'high-performance'], { env, mountpoint: mnt })
    const f = await fsx(['flush', mnt], { env, timeoutMs: 300_000 })
    t.equal(f.code, 0, f.stderr)
    t.match(m2.log(), /replaying \d+ upload/, 'the journal was replayed')
    const wrong: string[] = []
    let present = 0
    for (let i = 0; i < FILES; i++) {
      const got = await get(`wbkill/w/f${i}`)
      if (got !== undefined) present++
      if (ackedAtKill.has(i)) {
        if (got === undefined || !got.equals(contentOf(i))) wrong.push(`f${i} (${i % FSYNC_EVERY === 0 ? 'fsynced' : 'closed'}): ${got === undefined ? 'absent' : `${got.length} bytes, expected ${contentOf(i).length}`}`)
      } else if (got !== undefined && !got.equals(contentOf(i))) {
        wrong.push(`f${i} (not acknowledged): partial, ${got.length} bytes`)
      }
    }
    t.same(wrong, [], 'every acknowledged file has exactly its content; no file is partial')
    t.ok(present >= ackedAtKill.size, `${present} files on S3`)
    t.equal(await m2.stop(), 0, 'clean unmount')
  })
}
