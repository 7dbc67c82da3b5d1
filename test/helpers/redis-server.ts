/**
 * A real Redis for tests: Debian's `redis-server` as a child on 127.0.0.1 and a free port, no persistence, its
 * working directory a fresh temp dir. What the coherence tests talk to (src/vfs/coherence-redis.ts).
 *
 *   const redis = await startRedis(t)     // undefined (test skipped) when redis-server is missing, unless CI=true
 *   redis.url                             // redis://127.0.0.1:PORT/0, for --coherence
 *   await redis.stop()                    // an outage: the server exits, every connection is closed
 *   await redis.start()                   // back, same port
 *
 * Invariants:
 * - Nothing outlives the test: teardown kills the server (SIGKILL if SIGTERM is not enough) and removes its dir.
 * - Every wait has a timeout scaled by FSX_TEST_TIME_FACTOR (test/helpers/timing.ts). "Ready" means a PING on a
 *   fresh connection was answered with +PONG, not only that the port is bound.
 * - A missing redis-server is a skip outside CI and a failure with CI=true (scripts/install-system-deps.sh installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import net from 'node:net'
import { freePort } from './sshd.js'
import { removeTempDir, tempDir } from './mount.js'
import { scaled, waitUntil } from './timing.js'

export const REDIS_BIN = '/usr/bin/redis-server'

interface TapLike {
  teardown (fn: () => unknown): void
  fail (msg: string): unknown
  plan? (n: number, comment?: string): unknown
}

export interface Redis {
  readonly port: number
  /** redis://127.0.0.1:PORT/0 */
  readonly url: string
  /** Stops the server (SIGTERM, then SIGKILL); resolves once it has exited and the port refuses connections. */
  stop (): Promise<void>
  /** Starts it again on the same port; resolves once it answers PING. */
  start (): Promise<void>
}

/** True when redis-server can run here; outside CI a missing one skips the test, with CI=true it fails. */
export async function redisAvailable (t: TapLike): Promise<boolean> {
  if (await access(REDIS_BIN, constants.X_OK).then(() => true, () => false)) return true
  if (process.env.CI === 'true') t.fail(`${REDIS_BIN} is missing: the coherence tests cannot run in CI (scripts/install-system-deps.sh installs redis-server)`)
  else t.plan?.(0, `skipped: ${REDIS_BIN} is missing (apt-get install redis-server, or scripts/install-system-deps.sh)`)
  return false
}

/** True when a fresh connection to 127.0.0.1:port gets +PONG for a PING within a second (scaled). */
async function pong (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    let got = ''
    const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
    s.setTimeout(scaled(1000), () => done(false))
    s.once('connect', () => s.write('PING\r\n'))
    s.on('data', d => { got += String(d); if (got.includes('\r\n')) done(got.startsWith('+PONG')) })
    s.once('error', () => done(false))
  })
}

/** Starts a redis-server on 127.0.0.1 and a free port; stopped and its directory removed in `t`'s teardown. */
export async function startRedis (t: TapLike): Promise<Redis | undefined> {
  if (!await redisAvailable(t)) return undefined
  const port = await freePort()
  const dir = await tempDir('fsx-redis-')
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error('redis-server is already running')
    const c = spawn(REDIS_BIN, [
      '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no',
      '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning'
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    exited = new Promise(resolve => c.once('exit', () => { if (child === c) child = undefined; resolve() }))
    c.stdout?.on('data', d => { log = (log + String(d)).slice(-4000) })
    c.stderr?.on('data', d => { log = (log + String(d)).slice(-4000) })
    try {
      await waitUntil(async () => {
        if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}: ${log.trim()}`)
        return await pong(port)
      }, { timeoutMs: scaled(10_000), what: `redis-server to answer on 127.0.0.1:${port}` })
    } catch (err) {
      await stop()
      throw err
    }
  }

  const stop = async (): Promise<void> => {
    const c = child
    if (c === undefined) return
    c.kill('SIGTERM')
    const killer = setTimeout(() => c.kill('SIGKILL'), scaled(3000))
    await exited
    clearTimeout(killer)
    child = undefined
  }

  t.teardown(async () => {
    await stop()
    await removeTempDir(dir)
  })
  await start()
  return { port, url: `redis://127.0.0.1:${port}/0`, stop, start }
}
