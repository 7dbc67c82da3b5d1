// Stale-if-error on a real S3 server that dies: while it is down, files read before keep reading byte for byte
// from fsx's caches (attributes, listings and data past their TTLs), a file never read fails with EIO instead of
// hanging, and fsx stats say what is happening; once the server is back, fsx asks it again.
import t from 'tap'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { dropKernelCaches, fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { bytes } from '../helpers/conformance.js'
import { startS3Server } from '../helpers/s3-server.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  t.test('with the S3 server down, cached files keep reading; others fail with EIO; stats say so', async t => {
    const small = bytes(10_000, 1)
    const big = bytes(3 * 1024 * 1024 + 17, 2)
    const put = async (key: string, body: Buffer): Promise<void> => { await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body })) }
    await put('stale/dir/small.txt', small)
    await put('stale/big.bin', big)
    await put('stale/unread.bin', bytes(1000, 3))
    const env = {
      ...s3.env,
      FSX_RUNTIME_DIR: await tempDir('fsx-run-'),
      XDG_CACHE_HOME: await tempDir('fsx-cache-'),
      // Short TTLs, so that everything has expired by the time the server is gone; short deadlines.
      FSX_ATTR_TTL: '1s', FSX_ENTRY_TTL: '1s', FSX_NEGATIVE_TTL: '0s', FSX_ATTR_CACHE_TTL: '1s', FSX_DIR_CACHE_TTL: '1s',
      FSX_NEGATIVE_CACHE_TTL: '0s', FSX_S3_LIST_CACHE_TTL: '1s', FSX_S3_TIMEOUT: '3s', FSX_STALE_IF_ERROR: '10m'
    }
    const m = await mountFsx(t, `s3://${s3.bucket}/stale`, ['--preset', 'balanced'], { env })
    const at = (p: string): string => path.join(m.mountpoint, p)
    const sum = async (p: string): Promise<{ code: number | null, sum: string, stderr: string, ms: number }> => {
      const t0 = Date.now()
      const r = await run('bash', ['-c', `md5sum < ${JSON.stringify(at(p))}`], { timeoutMs: 60_000 })
      return { code: r.code, sum: r.stdout.split(' ')[0], stderr: r.stderr, ms: Date.now() - t0 }
    }
    const stats = async (): Promise<any> => JSON.parse((await fsx(['stats', m.mountpoint, '--json'], { env })).stdout).mounts[0]

    t.equal((await sum('dir/small.txt')).sum, md5(small))
    t.equal((await sum('big.bin')).sum, md5(big))
    t.equal((await run('ls', [at('dir')])).stdout.trim(), 'small.txt')
    t.equal((await stats()).stale.serves, 0, 'nothing stale while the server answers')

    await s3.crash()
    await sleep(2500)
    await dropKernelCaches()
    const s1 = await sum('dir/small.txt')
    t.equal(s1.sum, md5(small), `a small file read before still reads byte for byte (${s1.stderr.trim()})`)
    const b1 = await sum('big.bin')
    t.equal(b1.sum, md5(big), `a large file read before still reads byte for byte (${b1.stderr.trim()})`)
    const ls = await run('ls', [at('dir')])
    t.equal(ls.stdout.trim(), 'small.txt', `the listing still answers (${ls.stderr.trim()})`)
    const u = await sum('unread.bin')
    t.not(u.code, 0, 'a file never read cannot be served')
    t.match(u.stderr, /Input\/output error|Connection timed out/, u.stderr)
    t.ok(u.ms < scaled(3000), `and fails at once (${u.ms} ms): fsx knows the server is down, no hang`)
    const down = await stats()
    t.ok(down.stale.serves > 0, `stats count stale answers (${down.stale.serves})`)
    t.equal(down.stale.backendFailing, true)
    const human = await fsx(['stats', m.mountpoint], { env })
    t.match(human.stdout, /stale-if-error: \d+ answers served from expired caches .*backend failing now/)

    await s3.start()
    // A background probe (each second) notices the server is back; no request waits for it.
    await waitUntil(async () => (await sum('unread.bin')).code === 0, { timeoutMs: 15_000, what: 'what was missing to read again' })
    t.pass('the server is back: what was missing reads again')
    await dropKernelCaches()
    t.equal((await sum('dir/small.txt')).sum, md5(small))
    t.equal((await stats()).stale.backendFailing, false, 'and fsx says the backend answers again')
  })
}
