// SFTP outages behind a real mount, with a bound on every operation's time: a frozen sshd (listener and sessions
// SIGSTOPped: connections accepted by the kernel, nothing answered) and a killed one (connections refused). The first
// request to meet a frozen server fails within one sftpTimeout, a refused connection at once; from then on the
// backend is known to be failing: cached attributes, listings and pages the kernel kept answer at once, everything
// else fails with EIO at once; once the server is back a background probe notices and everything works again.
import t, { type Test } from 'tap'
import path from 'node:path'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { randomBytes, createHash } from 'node:crypto'
import { fuseAvailable, mountFsx, run, fsx, tempDir, type Mount } from '../helpers/mount.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** sftpTimeout of the mounts: how long the first request waits for a frozen server. */
const SFTP_TIMEOUT_MS = scaled(2000)
/** "At once": well under one sftpTimeout, so an answer that waited for the server cannot pass for one that did not. */
const AT_ONCE_MS = scaled(1500)
/** The first request to meet a frozen server: one sftpTimeout plus the mount's own work. */
const FIRST_MS = SFTP_TIMEOUT_MS + scaled(2500)

interface Outcome { code: number | null, out: string, err: string, ms: number }

/** Runs a shell command on the mount in a child and times it. */
async function op (cmd: string): Promise<Outcome> {
  const t0 = Date.now()
  const r = await run('bash', ['-c', `set -o pipefail; ${cmd}`], { timeoutMs: scaled(60_000) })
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim(), ms: Date.now() - t0 }
}

/** The listener's pid (sshd writes it to its PidFile). */
async function listenerPid (sshd: Sshd): Promise<number> {
  return Number((await readFile(path.join(sshd.dir, 'sshd.pid'), 'utf8')).trim())
}

interface Files { small: Buffer, unread: Buffer }

/** Fresh files on the server for one test, and a mount of them with short TTLs, warmed. */
async function setup (t: Test, sshd: Sshd, name: string): Promise<{ m: Mount, at: (p: string) => string, files: Files, env: Record<string, string> }> {
  const root = path.join(sshd.dataDir, name)
  await mkdir(path.join(root, 'dir'), { recursive: true })
  await mkdir(path.join(root, 'other'))
  const files = { small: randomBytes(20_000), unread: randomBytes(1000) }
  await writeFile(path.join(root, 'dir', 'small.bin'), files.small)
  await writeFile(path.join(root, 'unread.bin'), files.unread)
  await writeFile(path.join(root, 'other', 'x.txt'), 'x')
  const env = {
    ...sshd.env,
    FSX_RUNTIME_DIR: await tempDir('fsx-run-'),
    // Short TTLs, so everything cached has expired when the server goes away.
    FSX_ATTR_TTL: '1s', FSX_ENTRY_TTL: '1s', FSX_NEGATIVE_TTL: '0s', FSX_ATTR_CACHE_TTL: '1s', FSX_DIR_CACHE_TTL: '1s',
    FSX_NEGATIVE_CACHE_TTL: '0s', FSX_STALE_IF_ERROR: '10m', FSX_SFTP_TIMEOUT: `${SFTP_TIMEOUT_MS}ms`
  }
  const m = await mountFsx(t, `${sshd.url}/${name}`, ['--preset', 'balanced'], { env })
  const at = (p: string): string => JSON.stringify(path.join(m.mountpoint, p))
  t.equal((await op(`md5sum < ${at('dir/small.bin')}`)).out.split(' ')[0], md5(files.small), 'warm: a file read')
  t.equal((await op(`ls ${at('dir')}`)).out, 'small.bin', 'warm: a directory listed')
  t.equal((await op(`ls -l ${at('')} | wc -l`)).out, '4', 'warm: the root listed with attributes')
  // NB: a sleep, not a deadline: the TTLs (1 s) must have passed, however fast the machine is.
  await sleep(2500)
  return { m, at, files, env }
}

/** Resolves once fsx stats say the backend is known to be failing (a failure, then a probe without an answer). */
async function knownFailing (m: Mount, env: Record<string, string>, timeoutMs: number): Promise<void> {
  await waitUntil(async () => JSON.parse((await fsx(['stats', m.mountpoint, '--json'], { env })).stdout).mounts[0].stale.backendFailing === true,
    { timeoutMs, what: 'fsx to find the server failing' })
}

/** While the backend is known to be failing: cached answers at once, everything else EIO at once. */
async function duringOutage (t: Test, at: (p: string) => string, files: Files): Promise<void> {
  const cached: Array<[string, string, (out: string) => void]> = [
    ['stat of a file seen before', `stat -c %s ${at('dir/small.bin')}`, out => t.equal(out, String(files.small.length))],
    ['ls of a directory listed before', `ls ${at('dir')}`, out => t.equal(out, 'small.bin')],
    ['ls -l of a directory listed before', `ls -l ${at('')} | wc -l`, out => t.equal(out, '4')],
    ['cat of a file read before (pages the kernel kept)', `md5sum < ${at('dir/small.bin')}`, out => t.equal(out.split(' ')[0], md5(files.small), 'its bytes')]
  ]
  for (const [what, cmd, check] of cached) {
    const r = await op(cmd)
    t.equal(r.code, 0, `${what} answers while the server is out`)
    t.equal(r.err, '', `${what}: no error on the way`)
    check(r.out)
    t.ok(r.ms < AT_ONCE_MS, `${what}: at once, ${r.ms} ms (bound ${AT_ONCE_MS})`)
  }
  const uncached: Array<[string, string]> = [
    ['cat of a file never read', `cat ${at('unread.bin')} > /dev/null`],
    ['stat of a name never seen', `stat ${at('dir/never-seen')}`],
    ['ls of a directory never listed', `ls ${at('other')}`],
    ['a new file', `echo new > ${at('dir/new.txt')}`]
  ]
  for (const [what, cmd] of uncached) {
    const r = await op(cmd)
    t.not(r.code, 0, `${what} fails`)
    t.match(r.err, /Input\/output error/, `${what}: EIO (${r.err})`)
    t.ok(r.ms < AT_ONCE_MS, `${what}: at once, ${r.ms} ms (bound ${AT_ONCE_MS})`)
  }
}

/** Once the server is back: a probe notices without a request waiting for it, and everything works again. */
async function afterOutage (t: Test, m: Mount, at: (p: string) => string, files: Files, env: Record<string, string>): Promise<void> {
  await waitUntil(async () => (await op(`md5sum < ${at('unread.bin')}`)).out.split(' ')[0] === md5(files.unread),
    { timeoutMs: SFTP_TIMEOUT_MS + 15_000, what: 'a file never read to read once the server answers again' })
  t.pass('what was never read reads again')
  t.equal((await op(`ls ${at('other')}`)).out, 'x.txt')
  const w = await op(`echo new > ${at('dir/new.txt')} && cat ${at('dir/new.txt')}`)
  t.equal(w.out, 'new', `writes work again (${w.err})`)
  const stats = JSON.parse((await fsx(['stats', m.mountpoint, '--json'], { env })).stdout).mounts[0]
  t.equal(stats.stale.backendFailing, false, 'fsx stats says the backend answers again')
  t.equal(await m.stop(), 0)
}

if (sshdAvailable(t) && fuseAvailable(t)) {
  t.test('a frozen sshd: the first request fails within one sftpTimeout, then cached answers come at once', async t => {
    const sshd = await startSshd(t)
    const { m, at, files, env } = await setup(t, sshd, 'frozen')
    const pid = await listenerPid(sshd)
    let frozen = true
    const thaw = async (): Promise<void> => {
      if (!frozen) return
      frozen = false
      process.kill(pid, 'SIGCONT')
      await sshd.freezeConnections(false)
    }
    t.teardown(thaw)
    await sshd.freezeConnections(true)
    process.kill(pid, 'SIGSTOP')

    const first = await op(`stat ${at('dir/never-looked-up')}`)
    t.not(first.code, 0, 'a name never looked up cannot be answered')
    t.match(first.err, /Input\/output error/, `it fails with EIO, not ETIMEDOUT (${first.err})`)
    t.ok(first.ms < FIRST_MS, `the first request answers within one sftpTimeout: ${first.ms} ms (bound ${FIRST_MS})`)
    // A probe that gets no answer either (one more sftpTimeout) makes the server known to be failing.
    await knownFailing(m, env, SFTP_TIMEOUT_MS + 5000)
    await duringOutage(t, at, files)
    t.match(m.log(), /backend failing \(ETIMEDOUT\)/, 'the log says the backend is failing')

    await thaw()
    await afterOutage(t, m, at, files, env)
  })

  t.test('a killed sshd: what is not cached fails with EIO at once (no wait for the reconnect backoff)', async t => {
    const sshd = await startSshd(t)
    const { m, at, files, env } = await setup(t, sshd, 'killed')
    await sshd.kill({ connections: true })

    const first = await op(`stat ${at('dir/never-looked-up')}`)
    t.not(first.code, 0, 'a name never looked up cannot be answered')
    t.match(first.err, /Input\/output error/, `it fails with EIO (${first.err})`)
    t.ok(first.ms < AT_ONCE_MS, `a refused connection is the answer: at once, ${first.ms} ms (bound ${AT_ONCE_MS})`)
    await knownFailing(m, env, 5000)
    await duringOutage(t, at, files)
    t.match(m.log(), /backend failing \(ECONNREFUSED\)/, 'the log says the backend is failing')

    await sshd.start()
    await afterOutage(t, m, at, files, env)
  })
}
