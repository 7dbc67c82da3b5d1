// Issue #5's promise on a real S3 server: the second cat of a large file through an S3 mount makes no backend read
// (counted by the backend's own byte counter, read through fsx stats), even with the kernel page cache dropped.
import t from 'tap'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { dropKernelCaches, fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { bytes } from '../helpers/conformance.js'
import { startS3Server } from '../helpers/s3-server.js'

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  t.test('a second cat of a large file through an S3 mount makes no backend read', async t => {
    const body = bytes(24 * 1024 * 1024 + 5, 77)
    await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'cache/large.bin', Body: body }))
    const env = { ...s3.env, FSX_RUNTIME_DIR: await tempDir('fsx-run-'), XDG_CACHE_HOME: await tempDir('fsx-cache-') }
    const m = await mountFsx(t, `s3://${s3.bucket}/cache`, ['--preset', 'balanced'], { env })
    const file = path.join(m.mountpoint, 'large.bin')
    const want = createHash('md5').update(body).digest('hex')
    const backend = async (): Promise<Record<string, number>> => {
      const r = await fsx(['stats', m.mountpoint, '--json'], { env })
      t.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout).mounts[0].backend
    }
    const first = await run('bash', ['-c', `md5sum < ${JSON.stringify(file)}`])
    t.equal(first.stdout.split(' ')[0], want, 'the first read returns the object byte for byte')
    const b1 = await backend()
    t.ok(b1.bytesRead >= body.length, `the first read fetched the object (${b1.bytesRead} bytes)`)

    await dropKernelCaches()
    const second = await run('bash', ['-c', `md5sum < ${JSON.stringify(file)}`])
    t.equal(second.stdout.split(' ')[0], want, 'the second read returns the same bytes')
    const b2 = await backend()
    t.equal(b2.bytesRead, b1.bytesRead, 'the second read fetched nothing from S3')
    const caches = JSON.parse((await fsx(['stats', m.mountpoint, '--json'], { env })).stdout).mounts[0].caches
    t.ok(caches.dataDisk.hits + caches.dataMemory.hits > 0, 'it was served by the data cache')
    t.ok(caches.dataDisk.hitRate > 0, 'stats show a data-cache hit rate')
  })
}
