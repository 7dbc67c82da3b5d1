/**
 * The fuse-native engine (libfuse 2) is kept for machines where the kernel engine cannot run: the POSIX work and
 * the exerciser through it, over the local backend and S3, with `--engine fuse-native`. (The POSIX conformance
 * cases run through it too: test/e2e/posix-conformance.test.ts.)
 */
import t from 'tap'
import path from 'node:path'
import { readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { fsx, fuseAvailable, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'
import { startS3Server } from '../helpers/s3-server.js'

const SEEDS = testSeeds([21], line => t.comment(line))
const ENGINE = ['--engine', 'fuse-native']

if (fuseAvailable(t)) {
  t.test('local through fuse-native: cp, mv, ln, truncate, xattrs, then the exerciser', async t => {
    const data = await tempDir('fsx-data-')
    const blob = randomBytes(2 * 1024 * 1024 + 5)
    const src = path.join(await tempDir('fsx-src-'), 'blob')
    await writeFile(src, blob)
    const m = await mountFsx(t, data, [...ENGINE, '--xattrs'])
    const st = JSON.parse((await fsx(['stats', m.mountpoint, '--json'])).stdout).mounts[0]
    t.equal(st.engine, undefined, 'fuse-native reports no kernel-engine figures')
    const r = await sh(`
      cp ${src} blob.bin && printf hi > a && mv a b && ln -s b l && ln b h
      printf 0123456789 > t && truncate -s 3 t && printf Z >> t
      setfattr -n user.k -v v b && getfattr --only-values -n user.k b; echo
      cat l t; echo`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, 'v\nhi012Z\n')
    t.ok((await readFile(path.join(data, 'blob.bin'))).equals(blob))
    t.equal(await readlink(path.join(data, 'l')), 'b')
    t.equal((await stat(path.join(data, 'h'))).nlink, 2)
    t.equal((await run('cmp', [src, path.join(m.mountpoint, 'blob.bin')])).code, 0)
    for (const seed of SEEDS) {
      const report = await exercise({ root: m.mountpoint, seed, ops: 1500 })
      t.equal(report.ops, 1500, `the exerciser runs clean (seed=${seed})`)
    }
    t.equal(await m.stop(), 0)
  })

  const s3 = await startS3Server(t)
  if (s3 !== undefined) {
    t.test('S3 through fuse-native: the exerciser', async t => {
      const m = await mountFsx(t, `s3://${s3.bucket}/fn`, ENGINE, { env: s3.env })
      for (const seed of SEEDS) {
        const report = await exercise({ root: m.mountpoint, seed, ops: 500 })
        t.equal(report.ops, 500, `the exerciser runs clean (seed=${seed})`)
      }
      t.equal(await m.stop(), 0)
    })
  }
}
