/**
 * A real OpenSSH sshd for tests: `/usr/sbin/sshd -D -e -f <own config>` on 127.0.0.1 and a free port, with a
 * throwaway host key and user key made by ssh-keygen in a temp dir. Root may log in with the test key only
 * (PermitRootLogin prohibit-password, own AuthorizedKeysFile, UsePAM no); SFTP is internal-sftp.
 *
 *   const sshd = await startSshd(t)          // stopped in t's teardown
 *   sshd.env                                 // FSX_SFTP_KEY, FSX_SFTP_KNOWN_HOSTS for an fsx child
 *   await sshd.kill({ connections: true })   // a crash: the listener and every session process die
 *   await sshd.start()                       // again, same port and keys
 *
 * Invariants:
 * - Nothing outlives the test: teardown kills the listener and every session process it spawned (sshd's session
 *   children call setsid(), so they are found through /proc's parent links, not by process group).
 * - Every wait has a timeout, scaled by FSX_TEST_TIME_FACTOR (test/helpers/timing.ts); times given to these
 *   helpers are unscaled. A missing sshd is a skip outside CI and a failure with CI=true.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { scaled, waitUntil } from './timing.js'

export const SSHD_BIN = '/usr/sbin/sshd'

interface TapLike {
  teardown (fn: () => unknown): void
  fail (msg: string): unknown
  plan? (n: number, comment?: string): unknown
}

/** True when a real sshd can run here; outside CI a missing one skips the test, with CI=true it fails. */
export function sshdAvailable (t: TapLike): boolean {
  if (existsSync(SSHD_BIN) && existsSync('/usr/bin/ssh-keygen')) return true
  if (process.env.CI === 'true') t.fail(`${SSHD_BIN} is missing: SFTP tests cannot run in CI (install openssh-server)`)
  else t.plan?.(0, `skipped: ${SSHD_BIN} or ssh-keygen is missing (apt-get install openssh-server)`)
  return false
}

function exec (cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: scaled(timeoutMs) }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`))
      else resolve(String(stdout))
    })
  })
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

async function canConnect (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
    s.setTimeout(scaled(1000), () => done(false))
    // sshd speaks first: a banner means it is really serving, not just that something holds the port.
    s.once('data', d => done(String(d).startsWith('SSH-')))
    s.once('error', () => done(false))
  })
}

/** pid → parent pid of every process, read from /proc. */
async function parents (): Promise<Map<number, number>> {
  const parent = new Map<number, number>()
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      // Field 4 (ppid) comes after the parenthesised command name, which may itself hold spaces or parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parent.set(Number(name), ppid)
    } catch { /* gone */ }
  }
  return parent
}

/** Pids of every descendant of `pid` (children, grandchildren…), read from /proc. */
export async function descendants (pid: number): Promise<number[]> {
  const parent = await parents()
  const out: number[] = []
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) { out.push(child); walk(child) }
    }
  }
  walk(pid)
  return out
}

function signal (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch { /* already gone */ }
}

/** Process state letter of `pid` (R, S, T, Z…), or undefined once it is gone (reaped). */
async function procState (pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
}

/**
 * True once killed `pid` is reaped, or is a zombie its parent cannot reap now (stopped, or gone itself: the zombie
 * then belongs to init).
 */
async function reapedOrStuck (pid: number, parent: number): Promise<boolean> {
  const state = await procState(pid)
  if (state === undefined) return true
  if (state !== 'Z') return false
  const ps = await procState(parent)
  return ps === undefined || ps === 'T' || ps === 't' || ps === 'Z'
}

/**
 * SIGKILLs `root`'s descendants level by level, deepest first, each level at once, waiting until the parents have
 * reaped them: a session process whose parent died first would stay a zombie of init here (this init does not reap
 * promptly). The wait is bounded (1 s per level, scaled) and never fails: the processes are dead either way.
 */
async function killTree (root: number): Promise<void> {
  const depth = new Map<number, number>()
  const byParent = await parents()
  const walk = (p: number, d: number): void => {
    for (const [child, pp] of byParent) if (pp === p) { depth.set(child, d); walk(child, d + 1) }
  }
  walk(root, 0)
  const levels = [...new Set(depth.values())].sort((x, y) => y - x)
  for (const level of levels) {
    const pids = [...depth].filter(([, d]) => d === level).map(([pid]) => pid)
    for (const pid of pids) {
      signal(pid, 'SIGCONT')
      signal(pid, 'SIGKILL')
    }
    await waitUntil(async () => (await Promise.all(pids.map(pid => reapedOrStuck(pid, byParent.get(pid)!)))).every(Boolean),
      { timeoutMs: 1000, intervalMs: 5, what: 'killed sshd sessions to be reaped' }).catch(() => {})
  }
}

export interface Sshd {
  host: string
  port: number
  /** The temp dir holding config, keys and the served tree. */
  dir: string
  /** A directory to serve: `sftp://root@127.0.0.1:PORT${dataDir}`. */
  dataDir: string
  userKey: string
  knownHosts: string
  /** `ssh-keygen -lf` style fingerprint of the host key: "SHA256:…". */
  hostFingerprint: string
  /** sftp://root@127.0.0.1:PORT<dataDir> */
  url: string
  /** Environment for an fsx child: FSX_SFTP_KEY, FSX_SFTP_KNOWN_HOSTS. */
  env: Record<string, string>
  /** Starts sshd (again) on the same port; resolves once it answers with an SSH banner. */
  start (): Promise<void>
  /** Stops the listener; with `connections`, every session process too (a crash or reboot of the server). */
  kill (opts?: { connections?: boolean, signal?: NodeJS.Signals }): Promise<void>
  /** Kills only the session processes (connections drop, the listener stays). */
  dropConnections (): Promise<void>
  /** SIGSTOPs (true) or SIGCONTs (false) every session process: a link that stops answering without a reset. */
  freezeConnections (frozen: boolean): Promise<void>
  /**
   * After a thaw, waits until the sessions frozen last have settled: those whose client gave up on them (a request
   * timed out) apply what was still in their socket buffer and exit; the others stay, idle in the client's pool.
   * Settled = no frozen session exited for `quietMs`. Tests that write again after a thaw wait for this, or an old
   * session's late write may land after theirs. Both times are unscaled (defaults 1 s and 15 s); they are scaled here.
   */
  frozenSessionsSettled (quietMs?: number, timeoutMs?: number): Promise<void>
  /** Replaces the host key with a new one (the next start serves it); known_hosts still names the old one. */
  rekey (): Promise<void>
  /** What sshd wrote to stderr (-e), for failure messages. */
  log (): string
  stop (): Promise<void>
}

/** Starts a throwaway sshd; it is stopped (with every session) in `t`'s teardown. */
export async function startSshd (t: TapLike, opts: { connectionsPerStart?: number } = {}): Promise<Sshd> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fsx-sshd-'))
  // Removed even when setting up fails below (stop() removes it too, after the processes are gone).
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await chmod(dir, 0o755)
  const hostKey = path.join(dir, 'host_ed25519')
  const userKey = path.join(dir, 'user_ed25519')
  const dataDir = path.join(dir, 'data')
  await mkdir(dataDir)
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fsx-test-host', '-f', hostKey])
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fsx-test-user', '-f', userKey])
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${userKey}.pub`), { mode: 0o600 })
  const port = await freePort()
  const config = path.join(dir, 'sshd_config')
  await writeFile(config, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'Subsystem sftp internal-sftp',
    // Fault tests open and drop many connections quickly; the defaults (10:30:100) would refuse some.
    `MaxStartups ${opts.connectionsPerStart ?? 100}`,
    'MaxSessions 100',
    'LogLevel ERROR',
    ''
  ].join('\n'))

  const knownHosts = path.join(dir, 'known_hosts')
  const writeKnownHosts = async (): Promise<string> => {
    const pub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/)
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}\n`)
    const fp = (await exec('ssh-keygen', ['-lf', `${hostKey}.pub`])).split(/\s+/)[1]
    return fp
  }
  let hostFingerprint = await writeKnownHosts()

  let child: ChildProcess | undefined
  let stderr = ''
  let stopped = false

  const sessions = async (): Promise<number[]> => child?.pid ? await descendants(child.pid) : []
  let frozenPids: number[] = []

  const kill = async (o: { connections?: boolean, signal?: NodeJS.Signals } = {}): Promise<void> => {
    const c = child
    if (!c) return
    child = undefined
    const exited = c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>(resolve => c.once('exit', () => resolve()))
    if (o.connections && c.pid) {
      // Stop the listener first, or a client reconnecting meanwhile would get a session that outlives the "crash".
      signal(c.pid, 'SIGSTOP')
      await killTree(c.pid)
      signal(c.pid, 'SIGKILL')
    }
    if (c.pid) signal(c.pid, o.signal ?? 'SIGTERM')
    const timer = setTimeout(() => { if (c.pid) signal(c.pid, 'SIGKILL') }, scaled(5000))
    await exited
    clearTimeout(timer)
  }

  const start = async (): Promise<void> => {
    if (child) return
    const c = spawn(SSHD_BIN, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    child = c
    c.stderr?.on('data', d => { stderr += String(d) })
    const gone = (): boolean => c.exitCode !== null || c.signalCode !== null
    let serving = false
    await waitUntil(async () => gone() || (serving = await canConnect(port)), { timeoutMs: 15_000, what: 'sshd to serve' }).catch(() => {})
    if (serving) return
    await kill({ connections: true })
    throw new Error(`sshd did not start on 127.0.0.1:${port}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`)
  }

  const sshd: Sshd = {
    host: '127.0.0.1',
    port,
    dir,
    dataDir,
    userKey,
    knownHosts,
    get hostFingerprint () { return hostFingerprint },
    url: `sftp://root@127.0.0.1:${port}${dataDir}`,
    env: { FSX_SFTP_KEY: userKey, FSX_SFTP_KNOWN_HOSTS: knownHosts },
    start,
    kill,
    async dropConnections () {
      if (child?.pid) await killTree(child.pid)
    },
    async freezeConnections (frozen: boolean) {
      const pids = await sessions()
      if (frozen) frozenPids = pids
      for (const pid of pids) signal(pid, frozen ? 'SIGSTOP' : 'SIGCONT')
    },
    async frozenSessionsSettled (quietMsUnscaled = 1000, timeoutMsUnscaled = 15_000) {
      const quietMs = scaled(quietMsUnscaled)
      const timeoutMs = scaled(timeoutMsUnscaled)
      const until = Date.now() + timeoutMs
      // A zombie has finished its work: only a state other than Z counts as alive.
      const alive = async (pid: number): Promise<boolean> =>
        await readFile(`/proc/${pid}/stat`, 'utf8').then(st => !/^\d+ \(.*\) Z/.test(st), () => false)
      const living = async (): Promise<number> => (await Promise.all(frozenPids.map(alive))).filter(Boolean).length
      let count = await living()
      let since = Date.now()
      while (Date.now() - since < quietMs) {
        if (Date.now() > until) throw new Error(`frozen sshd sessions still exiting after ${timeoutMs} ms`)
        await new Promise(resolve => setTimeout(resolve, 50))
        const now = await living()
        if (now !== count) { count = now; since = Date.now() }
      }
    },
    async rekey () {
      await rm(hostKey, { force: true })
      await rm(`${hostKey}.pub`, { force: true })
      const saved = await readFile(knownHosts)
      await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fsx-test-host-2', '-f', hostKey])
      hostFingerprint = (await exec('ssh-keygen', ['-lf', `${hostKey}.pub`])).split(/\s+/)[1]
      await writeFile(knownHosts, saved)
    },
    log: () => stderr,
    async stop () {
      if (stopped) return
      stopped = true
      // Frozen sessions must be able to die.
      for (const pid of await sessions()) signal(pid, 'SIGCONT')
      await kill({ connections: true })
      await rm(dir, { recursive: true, force: true }).catch(() => {})
    }
  }
  t.teardown(() => sshd.stop())
  await start()
  return sshd
}
