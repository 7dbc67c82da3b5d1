// Issue 10 on a real S3 server through a real mount: untar of a 2,000-file tree and `rm -rf` of it, counted with the
// backend's own request counters (fsx stats --json). The kernel sends rm -rf's unlinks one at a time (it holds the
// directory's lock for each), so with write-back an unlink returns once its key is queued and the keys go out in
// DeleteObjects batches; without write-back each unlink waits for its own DeleteObject.
import t from 'tap'
import path from 'node:path'
import { mkdir, writeFile } from 'node:fs/promises'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { startS3Server } from '../helpers/s3-server.js'

const FILES = 2000
/** The tree: most files in one directory (the "a directory of 2,000 objects"), a few in two below it. */
const SUBDIRS = ['sub1', 'sub2']
const PER_SUBDIR = 5

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  const sdk = s3.client()
  const keysUnder = async (prefix: string): Promise<string[]> => {
    const out: string[] = []
    let token: string | undefined
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }))
      for (const o of page.Contents ?? []) out.push(o.Key!)
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out
  }

  t.test(`untar of ${FILES} files and rm -rf through a write-back mount: bounded requests, few DeleteObjects`, async t => {
    const home = await tempDir(t, 'fsx-bulk-')
    const src = path.join(home, 'src', 'tree')
    await mkdir(src, { recursive: true })
    const flat = FILES - SUBDIRS.length * PER_SUBDIR
    for (let i = 0; i < flat; i++) await writeFile(path.join(src, `f${String(i).padStart(4, '0')}`), `file ${i}\n`)
    for (const d of SUBDIRS) {
      await mkdir(path.join(src, d))
      for (let i = 0; i < PER_SUBDIR; i++) await writeFile(path.join(src, d, `g${i}`), `${d} ${i}\n`)
    }
    const tarball = path.join(home, 'tree.tar')
    t.equal((await run('tar', ['-cf', tarball, '-C', path.join(home, 'src'), 'tree'])).code, 0, 'tarball made')

    const env = { ...s3.env, FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-'), XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-') }
    // s3DeleteDelay 1m: no batch is sent because its time ran out during the test (a loaded machine takes long
    // over 2,000 unlinks); batches go out when full and at each rmdir, which is what the bound below counts.
    const m = await mountFsx(t, `s3://${s3.bucket}/bulk`, ['--preset', 'high-performance', '--s3-metadata', 'listing', '--s3-delete-delay', '1m'], { env })
    const mnt = m.mountpoint
    const backend = async (): Promise<Record<string, number>> => {
      const r = await fsx(['stats', mnt, '--json'], { env })
      t.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout).mounts[0].backend
    }
    const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
      Object.fromEntries(['requests', 'put', 'head', 'list', 'copy', 'delete', 'deleteBatch', 'deletedKeys', 'get'].map(k => [k, (b[k] ?? 0) - (a[k] ?? 0)]))

    // Untar (a child process), then drain the journal: every file is on S3.
    const b0 = await backend()
    const t0 = Date.now()
    const x = await run('tar', ['-xf', tarball, '-C', mnt, '--no-same-owner'], { timeoutMs: 600_000 })
    t.equal(x.code, 0, x.stderr)
    const f = await fsx(['flush', mnt], { env, timeoutMs: 600_000 })
    t.equal(f.code, 0, f.stderr)
    const b1 = await backend()
    const untar = delta(b0, b1)
    t.comment(`untar and flush: ${Date.now() - t0} ms, requests ${JSON.stringify(untar)}`)
    const dirs = 1 + SUBDIRS.length
    t.equal((await keysUnder('bulk/tree/')).filter(k => !k.endsWith('/')).length, FILES, 'every file is in the bucket')
    // One PUT per file (creating a file makes no request: no empty PUT before its content) and one per directory
    // marker, + 20 for the odd file saved twice.
    t.ok(untar.put >= FILES + dirs && untar.put <= FILES + dirs + 20, `PUTs: ${untar.put}, one per file and directory (+ ≤ 20)`)
    // No HEAD per file: the directories were made through this mount (known empty), so every lookup of a name
    // tar creates is answered from the cache, and an upload of a new file asks nothing first.
    t.ok(untar.head <= 20, `HEADs: ${untar.head} (≤ 20, not one per file)`)
    // Listings: the directory's cached listing expires every s3ListCacheTtl (the preset's 10 s) and is made again
    // (2 pages for 2,000 names) by the next lookup: their number grows with the untar's duration, not per file.
    t.ok(untar.list <= FILES / 4, `LISTs: ${untar.list} (≤ ${FILES / 4}, not one per file)`)
    // tar sets each file's mtime with futimens before its close: the upload records it (no CopyObject per file);
    // the directories' times are set afterwards, one CopyObject of each marker.
    t.ok(untar.copy <= dirs + 20, `CopyObjects: ${untar.copy} (the directories' times, + ≤ 20; none per file)`)

    // rm -rf: one unlink per file from the kernel; the keys go out in batches.
    const t1 = Date.now()
    const r = await run('rm', ['-rf', path.join(mnt, 'tree')], { timeoutMs: 600_000 })
    t.equal(r.code, 0, r.stderr)
    const b2 = await backend()
    const rm = delta(b1, b2)
    t.comment(`rm -rf: ${Date.now() - t1} ms, requests ${JSON.stringify(rm)}`)
    t.ok(rm.deleteBatch >= 1 && rm.deleteBatch <= 10, `DeleteObjects requests: ${rm.deleteBatch} (≤ 10)`)
    t.equal(rm.deletedKeys, FILES, 'they deleted every file\'s key')
    t.ok(rm.delete <= dirs + 10, `DeleteObject requests: ${rm.delete} (the ${dirs} directory markers, not one per file)`)
    t.same(await keysUnder('bulk/'), [], 'the bucket holds nothing of the tree afterwards')
    t.equal((await run('ls', ['-A', mnt])).stdout, '', 'and the mount shows nothing')
    t.equal(await m.stop(), 0, 'clean unmount')
  })
}
