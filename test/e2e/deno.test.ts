/**
 * Mounts served by Deno: the mount process is `deno run -A bin/run.js mount …` (the kernel engine's Deno
 * transport, FFI through Deno.dlopen), over the local backend, a real sshd and a real S3 server. Each gets the
 * POSIX round trip and the exerciser; the local one passthrough, the S3 one a kill -9 of the Deno process with
 * uploads held in the write-back journal, replayed by the next mount. The test runner stays on Node.
 */
import t from 'tap'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { createHash, randomBytes } from 'node:crypto'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { DENO, dropKernelCaches, forceUnmount, fsx, fuseAvailable, mountFsx, sh, tempDir, type Mount } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds, waitUntil } from '../helpers/timing.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { startS3Server } from '../helpers/s3-server.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')
const SEEDS = testSeeds([11, 12], line => t.comment(line))

/** cp, mkdir, mv, ln -s, truncate, append, dd and rm through the mount; what the backend should then hold. */
async function posixRoundTrip (t: typeof import('tap').default, m: Mount, blob: string, symlinks = true): Promise<void> {
  const r = await sh(`
    cp ${blob} blob.bin
    printf 'hello\\n' > a.txt
    mkdir -p d/e && cp a.txt d/e/copy.txt
    mv a.txt moved.txt
    ${symlinks ? 'ln -s moved.txt link && cat link' : 'cat moved.txt'}
    printf 0123456789 > t.txt && truncate -s 4 t.txt && printf AB >> t.txt
    dd if=/dev/zero of=t.txt bs=1 count=1 seek=1 conv=notrunc,fsync status=none
    cp blob.bin gone.bin && rm gone.bin
    md5sum blob.bin | cut -d' ' -f1; od -An -c t.txt | tr -s ' '; ls | tr '\\n' ' '`, m.mountpoint)
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  t.equal(lines[0], 'hello')
  t.equal(lines[1], md5(await readFile(blob)), 'a copy reads back byte for byte')
  t.equal(lines[2].trim(), '0 \\0 2 3 A B')
  t.equal(lines[3], symlinks ? 'blob.bin d link moved.txt t.txt ' : 'blob.bin d moved.txt t.txt ')
}

if (fuseAvailable(t)) {
  if (!existsSync(DENO)) {
    t.fail(`Deno is not installed at ${DENO} (npm ci installs it)`)
  } else {
    const src = path.join(await tempDir('fsx-src-'), 'blob.bin')
    const blobBytes = randomBytes(3 * 1024 * 1024 + 17)
    await writeFile(src, blobBytes)

    t.test('local, served by Deno: POSIX round trip, passthrough and the exerciser', async t => {
      const data = await tempDir('fsx-data-')
      const m = await mountFsx(t, data, [], { deno: true })
      await posixRoundTrip(t, m, src)
      t.equal(await readFile(path.join(data, 'moved.txt'), 'utf8'), 'hello\n', 'the backing directory holds the result')
      t.equal(await readlink(path.join(data, 'link')), 'moved.txt')
      await dropKernelCaches()
      t.equal((await sh('md5sum blob.bin | cut -d" " -f1', m.mountpoint)).stdout.trim(), md5(blobBytes))
      const st = JSON.parse((await fsx(['stats', m.mountpoint, '--json'])).stdout).mounts[0]
      t.equal(st.engine.transport, 'deno', 'the Deno transport serves it')
      t.equal(st.ops.read?.count ?? 0, 0, 'reads are passed through: zero READ requests')
      for (const seed of SEEDS) {
        const report = await exercise({ root: m.mountpoint, seed, ops: 1000 })
        t.equal(report.ops, 1000, `the exerciser runs clean (seed=${seed})`)
      }
      t.equal(await m.stop(), 0, 'SIGTERM unmounts cleanly')
    })

    if (sshdAvailable(t)) {
      t.test('SFTP, served by Deno: POSIX round trip and the exerciser', async t => {
        const sshd = await startSshd(t)
        const m = await mountFsx(t, sshd.url, [], { env: sshd.env, deno: true })
        await posixRoundTrip(t, m, src)
        t.equal(await readFile(path.join(sshd.dataDir, 'moved.txt'), 'utf8'), 'hello\n', 'the server holds the result')
        for (const seed of SEEDS) {
          const report = await exercise({ root: m.mountpoint, seed, ops: 500 })
          t.equal(report.ops, 500, `the exerciser runs clean (seed=${seed})`)
        }
        t.equal(await m.stop(), 0)
      })
    }

    const s3 = await startS3Server(t)
    if (s3 !== undefined) {
      t.test('S3, served by Deno: POSIX round trip, the exerciser, and kill -9 with uploads journaled', async t => {
        const home = await tempDir('fsx-deno-s3-')
        const env = { ...s3.env, XDG_CACHE_HOME: path.join(home, 'cache') }
        const m = await mountFsx(t, `s3://${s3.bucket}/rt`, [], { env, deno: true })
        await posixRoundTrip(t, m, src)
        for (const seed of SEEDS) {
          const report = await exercise({ root: m.mountpoint, seed, ops: 300 })
          t.equal(report.ops, 300, `the exerciser runs clean (seed=${seed})`)
        }
        t.equal(await m.stop(), 0)

        // Write-back: close() returns once the file is journaled. The files exist first (creating one is a request
        // of its own); then the server is frozen, so the rewrites stay in the journal.
        const m1 = await mountFsx(t, `s3://${s3.bucket}/wb`, ['--preset', 'high-performance', '--s3-timeout', '2s'], { env, deno: true })
        const made = await sh(': > small.txt && : > big.bin && sync', m1.mountpoint)
        t.equal(made.code, 0, made.stderr)
        await waitUntil(async () => JSON.parse((await fsx(['stats', m1.mountpoint, '--json'])).stdout).mounts[0].writeback.queued === 0,
          { timeoutMs: 30_000, what: 'the empty files to be uploaded' })
        s3.pause()
        let resumed = false
        t.teardown(() => { if (!resumed) s3.resume() })
        const w = await sh(`printf 'acknowledged\\n' > small.txt && cp ${src} big.bin`, m1.mountpoint)
        t.equal(w.code, 0, w.stderr)
        m1.child.kill('SIGKILL')
        await new Promise(resolve => m1.child.once('exit', resolve))
        await forceUnmount(m1.mountpoint)
        s3.resume()
        resumed = true
        const sdk = s3.client()
        const body = async (Key: string): Promise<Buffer | undefined> => {
          try {
            return Buffer.from(await (await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key }))).Body!.transformToByteArray())
          } catch { return undefined }
        }
        const m2 = await mountFsx(t, `s3://${s3.bucket}/wb`, ['--preset', 'high-performance'], { env, deno: true, mountpoint: m1.mountpoint })
        await waitUntil(async () => (await body('wb/small.txt'))?.toString() === 'acknowledged\n' && (await body('wb/big.bin'))?.equals(blobBytes) === true,
          { timeoutMs: 60_000, what: 'the journal to be replayed after the kill -9' })
        t.pass('every acknowledged file reached S3 after the kill -9, byte for byte')
        t.match(m2.log(), /replaying 2 upload/)
        t.equal(await m2.stop(), 0)
        t.ok((await stat(home)).isDirectory())
      })
    }
  }
}
