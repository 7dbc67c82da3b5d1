/**
 * A normal (non-root) user for end-to-end tests: uid 1001, made as `fsx-test-user` when that uid has no name
 * (fusermount3 wants a name), with /dev/fuse opened to every user (distributions make it 0666; a container may
 * make it 0600, and fusermount3 opens it as the user).
 *
 * Invariants:
 * - Test files run in parallel (tap's jobs) and several may need the user at once, so the user and the device mode
 *   are shared: the first holder sets them up, the last one out restores what it found (removes a user it made,
 *   puts the device mode back). Holders are listed in a state file under /run, changed only under a lock
 *   (an exclusive mkdir); a holder whose process is gone is dropped, so a killed test does not keep them forever.
 * - `run` runs a command as that user with no supplementary groups (setpriv), never through a shell.
 */
import { chmod, mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { run, type Result } from './mount.js'
import { waitUntil } from './timing.js'

export const TEST_UID = 1001
export const TEST_USER = 'fsx-test-user'

const LOCK = '/run/fsx-test-user.lock'
const STATE = '/run/fsx-test-user.json'

interface State {
  /** `pid:random` of each test holding the user now. */
  holders: string[]
  /** True when a holder made the user (so the last one removes it). */
  made: boolean
  /** The mode /dev/fuse had before a holder opened it, when one changed it. */
  devMode?: number
}

interface TapLike {
  teardown (fn: () => unknown): void
}

const alive = (holder: string): boolean => {
  try {
    process.kill(Number(holder.split(':')[0]), 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function locked<T> (fn: (s: State) => Promise<T>): Promise<T> {
  await waitUntil(async () => {
    try {
      await mkdir(LOCK)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      // A lock held longer than a minute belongs to a test that was killed while holding it.
      const st = await stat(LOCK).catch(() => undefined)
      if (st !== undefined && Date.now() - st.mtimeMs > 60_000) await rmdir(LOCK).catch(() => {})
      return false
    }
  }, { timeoutMs: 60_000, what: `the lock ${LOCK}` })
  try {
    let s: State = { holders: [], made: false }
    try {
      s = JSON.parse(await readFile(STATE, 'utf8')) as State
    } catch {}
    s.holders = s.holders.filter(alive)
    const out = await fn(s)
    if (s.holders.length === 0) await rm(STATE, { force: true })
    else await writeFile(STATE, JSON.stringify(s))
    return out
  } finally {
    await rmdir(LOCK)
  }
}

export interface TestUser {
  uid: number
  gid: number
  /** Runs `cmd args` as the user (setpriv, no supplementary groups); never throws for a non-zero exit. */
  run (cmd: string, args: string[], opts?: { env?: Record<string, string | undefined>, cwd?: string, timeoutMs?: number }): Promise<Result>
}

/** The test user, held until `t`'s teardown (see the invariants above). */
export async function testUser (t: TapLike): Promise<TestUser> {
  const me = `${process.pid}:${randomBytes(4).toString('hex')}`
  await locked(async s => {
    if (s.holders.length === 0) {
      s.made = false
      delete s.devMode
      if ((await run('getent', ['passwd', String(TEST_UID)])).code !== 0) {
        const made = await run('useradd', ['--no-create-home', '--uid', String(TEST_UID), '--user-group', '--shell', '/usr/sbin/nologin', TEST_USER])
        if (made.code !== 0) throw new Error(`useradd ${TEST_USER}: ${made.stderr.trim()}`)
        s.made = true
      }
      const devMode = (await stat('/dev/fuse')).mode & 0o777
      if ((devMode & 0o006) !== 0o006) {
        await chmod('/dev/fuse', 0o666)
        s.devMode = devMode
      }
    }
    s.holders.push(me)
  })
  t.teardown(async () => {
    await locked(async s => {
      s.holders = s.holders.filter(h => h !== me)
      if (s.holders.length > 0) return
      if (s.made) await run('userdel', [TEST_USER])
      if (s.devMode !== undefined) await chmod('/dev/fuse', s.devMode)
    })
  })
  const gid = Number((await run('id', ['-g', String(TEST_UID)])).stdout.trim())
  const prefix = ['--reuid', String(TEST_UID), '--regid', String(gid), '--clear-groups', '--']
  return {
    uid: TEST_UID,
    gid,
    // NB: the test runner adds its hooks to NODE_OPTIONS of every child; they would write where this user may not.
    run: async (cmd, args, opts = {}) => await run('setpriv', [...prefix, 'env', '-u', 'NODE_OPTIONS', cmd, ...args], opts)
  }
}
