// A frozen S3 server (SIGSTOP: connections open, nothing answered) behind a real mount, with a bound on every
// operation's time. The first request that meets the silence fails within one s3Timeout; from then on the backend is
// known to be failing, and cached files, attributes and listings answer at once while what was never cached fails
// with EIO at once; after SIGCONT a background probe notices and everything works again. (Without the shared
// verdict each request waited out several deadlines: minutes per `cat`.)
import t from 'tap'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { bytes } from '../helpers/conformance.js'
import { startS3Server } from '../helpers/s3-server.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** s3Timeout of the mount: how long the first request waits for a frozen server. */
const S3_TIMEOUT_MS = scaled(2000)
/** "At once": well under one s3Timeout, so an answer that waited for S3 cannot pass for one that did not. */
const AT_ONCE_MS = scaled(1500)
/** The first request to meet the silence: one s3Timeout plus the mount's own work. */
const FIRST_MS = S3_TIMEOUT_MS + scaled(2500)

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  t.test('a frozen S3 server: every operation answers in time, cached ones at once, and all works after SIGCONT', async t => {
    const small = bytes(10_000, 1)
    const big = bytes(3 * 1024 * 1024 + 17, 2)
    const unread = bytes(1000, 3)
    const put = async (key: string, body: Buffer): Promise<void> => { await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body })) }
    await put('frozen/dir/small.txt', small)
    await put('frozen/big.bin', big)
    await put('frozen/unread.bin', unread)
    await put('frozen/other/x.txt', small)
    const env = {
      ...s3.env,
      FSX_RUNTIME_DIR: await tempDir('fsx-run-'),
      XDG_CACHE_HOME: await tempDir('fsx-cache-'),
      // Short TTLs, so everything cached has expired when the server freezes: every lookup asks the VFS, and the
      // VFS would ask S3.
      FSX_ATTR_TTL: '1s', FSX_ENTRY_TTL: '1s', FSX_NEGATIVE_TTL: '0s', FSX_ATTR_CACHE_TTL: '1s', FSX_DIR_CACHE_TTL: '1s',
      FSX_NEGATIVE_CACHE_TTL: '0s', FSX_S3_LIST_CACHE_TTL: '1s', FSX_S3_TIMEOUT: `${S3_TIMEOUT_MS}ms`, FSX_STALE_IF_ERROR: '10m'
    }
    const m = await mountFsx(t, `s3://${s3.bucket}/frozen`, ['--preset', 'balanced'], { env })
    let frozen = false
    t.teardown(() => { if (frozen) s3.resume() })
    const at = (p: string): string => JSON.stringify(path.join(m.mountpoint, p))
    /** Runs a shell command on the mount in a child and times it (the child is killed after a minute). */
    const op = async (cmd: string): Promise<{ code: number | null, out: string, err: string, ms: number }> => {
      const t0 = Date.now()
      const r = await run('bash', ['-c', `set -o pipefail; ${cmd}`], { timeoutMs: scaled(60_000) })
      return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim(), ms: Date.now() - t0 }
    }
    const stats = async (): Promise<any> => JSON.parse((await fsx(['stats', m.mountpoint, '--json'], { env })).stdout).mounts[0]

    // Warm: data, attributes and listings cached.
    t.equal((await op(`md5sum < ${at('dir/small.txt')}`)).out.split(' ')[0], md5(small))
    t.equal((await op(`md5sum < ${at('big.bin')}`)).out.split(' ')[0], md5(big))
    t.equal((await op(`ls ${at('dir')}`)).out, 'small.txt')
    t.equal((await op(`ls ${at('')}`)).out.split('\n').join(' '), 'big.bin dir other unread.bin')
    t.equal((await op(`ls -l ${at('')} | wc -l`)).out, '5', 'ls -l: attributes and xattrs of the root\'s entries cached too')
    // NB: a sleep, not a deadline: the TTLs (1 s) must have passed, however fast the machine is.
    await sleep(2500)

    s3.pause()
    frozen = true
    const first = await op(`stat ${at('dir/never-looked-up')}`)
    t.not(first.code, 0, 'a name never looked up cannot be answered')
    t.match(first.err, /Input\/output error/, `it fails with EIO (${first.err})`)
    t.ok(first.ms < FIRST_MS, `the first request to meet the frozen server answers within one s3Timeout: ${first.ms} ms (bound ${FIRST_MS})`)
    // That made S3 suspect; a probe that gets no answer either (one more s3Timeout) makes it known to be failing.
    await waitUntil(async () => (await stats()).stale.backendFailing === true, { timeoutMs: S3_TIMEOUT_MS + 5000, what: 'fsx to find S3 failing' })

    // The backend is known to be failing now: nothing waits for it.
    const cachedOps: Array<[string, string, (out: string) => void]> = [
      ['cat of a small file read before', `md5sum < ${at('dir/small.txt')}`, out => t.equal(out.split(' ')[0], md5(small), 'its bytes')],
      ['cat of a large file read before', `md5sum < ${at('big.bin')}`, out => t.equal(out.split(' ')[0], md5(big), 'its bytes')],
      ['stat of a file seen before', `stat -c %s ${at('dir/small.txt')}`, out => t.equal(out, String(small.length))],
      ['ls of a directory listed before', `ls ${at('dir')}`, out => t.equal(out, 'small.txt')],
      ['ls -l of the root', `ls -l ${at('')} | wc -l`, out => t.equal(out, '5', 'total line + four entries')]
    ]
    for (const [what, cmd, check] of cachedOps) {
      const r = await op(cmd)
      t.equal(r.code, 0, `${what} answers while S3 is frozen`)
      t.equal(r.err, '', `${what}: no error on the way`)
      check(r.out)
      t.ok(r.ms < AT_ONCE_MS, `${what}: at once, ${r.ms} ms (bound ${AT_ONCE_MS})`)
    }
    const uncachedOps: Array<[string, string]> = [
      ['cat of a file never read', `cat ${at('unread.bin')} > /dev/null`],
      ['stat of a name never seen', `stat ${at('dir/never-seen')}`],
      ['ls of a directory never listed', `ls ${at('other')}`],
      ['a new file', `echo new > ${at('dir/new.txt')}`]
    ]
    for (const [what, cmd] of uncachedOps) {
      const r = await op(cmd)
      t.not(r.code, 0, `${what} fails`)
      t.match(r.err, /Input\/output error/, `${what}: EIO (${r.err})`)
      t.ok(r.ms < AT_ONCE_MS, `${what}: at once, ${r.ms} ms (bound ${AT_ONCE_MS})`)
    }
    const down = await stats()
    t.equal(down.stale.backendFailing, true, 'fsx stats still says the backend is failing')
    t.equal(down.stale.lastError, 'ETIMEDOUT')
    t.ok(down.stale.serves > 0, `and counts stale answers (${down.stale.serves})`)
    t.match(m.log(), /backend failing \(ETIMEDOUT\)/, 'the log says so once')

    s3.resume()
    frozen = false
    // A background probe notices; no request had to wait for it.
    await waitUntil(async () => (await op(`cat ${at('unread.bin')} | md5sum`)).out.split(' ')[0] === md5(unread),
      { timeoutMs: S3_TIMEOUT_MS + 10_000, what: 'a file never read to read once S3 answers again' })
    t.pass('after SIGCONT, what was never cached reads again')
    t.equal((await op(`ls ${at('other')}`)).out, 'x.txt')
    const w = await op(`echo new > ${at('dir/new.txt')} && cat ${at('dir/new.txt')}`)
    t.equal(w.out, 'new', `and writes work again (${w.err})`)
    t.equal((await stats()).stale.backendFailing, false, 'fsx stats says the backend answers again')
    t.match(m.log(), /backend answers again/)
    t.equal(await m.stop(), 0)
  })
}
