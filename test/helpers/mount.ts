/**
 * End-to-end helpers: real fsx mounts run as child processes (the test process never serves FUSE, so it may touch
 * the mount freely with async APIs), commands run as children, and every mount is torn down with a timeout even
 * when the test fails: SIGTERM to the mount process, then `fusermount -u`, then `umount -l`.
 *
 * Invariants:
 * - Every `timeoutMs` given to these helpers is in unscaled milliseconds: the helper scales it by
 *   FSX_TEST_TIME_FACTOR (test/helpers/timing.ts). Never pass `scaled(…)` here.
 * - Every temp dir a test makes through `tempDir(t, …)` (mountpoints included) is removed in its teardown, after
 *   the mounts made later in the same test are gone (tap runs teardowns last-in first-out). A removal never goes
 *   through a mount: whatever is still mounted inside is unmounted first, or the removal fails the test.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { scaled, waitUntil } from './timing.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = path.join(ROOT, 'bin', 'run.js')
/** The Deno the project installs (npm package `deno`), for mounts served by Deno. */
export const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno')

interface TapLike {
  teardown (fn: () => unknown): void
  fail (msg: string): unknown
  skip? (msg?: string): unknown
  plan? (n: number, comment?: string): unknown
  passing? (): boolean
  comment? (...msg: unknown[]): unknown
}

/**
 * True when real FUSE mounts can run here. Without /dev/fuse the test is skipped with the reason, except in CI
 * (CI=true), where it is a failure.
 */
export function fuseAvailable (t: TapLike): boolean {
  if (existsSync('/dev/fuse')) return true
  if (process.env.CI === 'true') t.fail('/dev/fuse is missing: FUSE end-to-end tests cannot run in CI')
  else t.plan?.(0, 'skipped: /dev/fuse is missing (load the fuse module or give the container --device /dev/fuse)')
  return false
}

/** Mountpoints at or below `dir`, deepest first, read from /proc/self/mountinfo. */
function mountsUnder (dir: string, mountinfo: string): string[] {
  const decode = (p: string): string => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return mountinfo.split('\n')
    .map(l => l.split(' ')[4])
    .filter((mp): mp is string => mp !== undefined)
    .map(decode)
    .filter(mp => mp === dir || mp.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
}

/** FSX_TEST_KEEP_TMP=1 keeps every temp dir (to look at after a failure); they are then named in the output. */
const KEEP_TMP = process.env.FSX_TEST_KEEP_TMP === '1'

/** Removes a temp dir a test made; unmounts whatever is mounted inside first, and refuses to remove through a mount. */
export async function removeTempDir (dir: string): Promise<void> {
  if (KEEP_TMP) {
    console.log(`# kept ${dir} (FSX_TEST_KEEP_TMP=1)`)
    return
  }
  for (const mp of mountsUnder(dir, await readFile('/proc/self/mountinfo', 'utf8'))) await forceUnmount(mp)
  const left = mountsUnder(dir, await readFile('/proc/self/mountinfo', 'utf8'))
  if (left.length > 0) throw new Error(`not removing ${dir}: still mounted at ${left.join(', ')}`)
  // NB: GNU rm walks with openat, so it removes trees deeper than PATH_MAX (the long-path tests make them); Node's
  // rm cannot (ENAMETOOLONG).
  await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENAMETOOLONG') throw err
    const r = await run('rm', ['-rf', '--one-file-system', dir])
    if (r.code !== 0) throw new Error(`rm -rf ${dir}: ${r.stderr}`)
  })
}

/** Temp dirs made without a test to tie them to: removed when the process exits (never through a mount). */
const orphans = new Set<string>()
process.on('exit', () => {
  if (KEEP_TMP || orphans.size === 0) return
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
  for (const dir of orphans) {
    const mounted = mountsUnder(dir, mountinfo)
    if (mounted.length > 0) {
      process.stderr.write(`test helpers: not removing ${dir}: still mounted at ${mounted.join(', ')}\n`)
      continue
    }
    try {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch (err) {
        // A tree deeper than PATH_MAX: GNU rm walks it with openat.
        if ((err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG' || spawnSync('rm', ['-rf', '--one-file-system', dir]).status !== 0) throw err
      }
    } catch (err) {
      process.stderr.write(`test helpers: could not remove ${dir}: ${String(err)}\n`)
    }
  }
})

/**
 * A fresh directory `<tmpdir>/<prefix>XXXXXX`, removed in `t`'s teardown (see the invariants above).
 * Without `t` (code that has no test at hand) it is removed when the process exits instead.
 */
export async function tempDir (t: Pick<TapLike, 'teardown'>, prefix?: string): Promise<string>
export async function tempDir (prefix?: string): Promise<string>
export async function tempDir (tOrPrefix?: Pick<TapLike, 'teardown'> | string, maybePrefix?: string): Promise<string> {
  const t = typeof tOrPrefix === 'object' ? tOrPrefix : undefined
  const prefix = (typeof tOrPrefix === 'string' ? tOrPrefix : maybePrefix) ?? 'fsx-e2e-'
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  if (t !== undefined) t.teardown(async () => await removeTempDir(dir))
  else orphans.add(dir)
  return dir
}

export interface Result { code: number | null, stdout: string, stderr: string }

/**
 * Runs a command as a child process; never throws for a non-zero exit. It is killed (SIGTERM) after `timeoutMs`
 * (default 60 s), scaled.
 */
export function run (cmd: string, args: string[], opts: { env?: Record<string, string | undefined>, cwd?: string, timeoutMs?: number, input?: string } = {}): Promise<Result> {
  return new Promise(resolve => {
    const child = execFile(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      timeout: scaled(opts.timeoutMs ?? 60_000),
      maxBuffer: 64 * 1024 * 1024
    }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

/** Runs the fsx CLI (`timeoutMs` as for `run`). */
export async function fsx (args: string[], opts: { env?: Record<string, string | undefined>, cwd?: string, timeoutMs?: number } = {}): Promise<Result> {
  return await run(process.execPath, [BIN, ...args], opts)
}

/** Runs a bash script (set -euo pipefail) in `cwd`. */
export async function sh (script: string, cwd?: string, env?: Record<string, string>): Promise<Result> {
  return await run('bash', ['-c', `set -euo pipefail\n${script}`], { cwd, env, timeoutMs: 120_000 })
}

/**
 * Runs filesystem calls in a child process (test/fixtures/errno-probe.mjs), so the test process never blocks on a
 * mount: `[[label, op, ...args]]` → `{label: "ok" | errno code}`.
 */
export async function errnoProbe (calls: Array<[string, string, ...string[]]>): Promise<Record<string, string>> {
  const r = await run(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'errno-probe.mjs'), JSON.stringify(calls)], { timeoutMs: 60_000 })
  if (r.code !== 0) throw new Error(`probe failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

/**
 * Test files run in parallel, and dropping the kernel's caches is machine-wide: a test that checks what the kernel
 * kept (pages, dentries) must not see another test's drop in the middle. Such a test holds the caches
 * (`holdKernelCaches`); a drop waits until no test holds them. Both sides announce themselves in HOLDS before they
 * look at the other's announcements (a dropper as `drop-PID-N`, a holder as `hold-PID-N`), so at least one of two
 * racing sides sees the other: a dropper that sees a hold withdraws and waits; a holder that sees a drop waits for
 * it to end. An announcement of a process that is gone is ignored.
 */
const HOLDS = path.join(os.tmpdir(), '.fsx-test-kernel-cache-holds')
let holdSeq = 0

async function announcements (kind: 'hold' | 'drop'): Promise<string[]> {
  const names = await readdir(HOLDS).catch(() => [] as string[])
  return names.filter(n => {
    const [k, pid] = n.split('-')
    if (k !== kind) return false
    try {
      process.kill(Number(pid), 0)
      return true
    } catch {
      return false
    }
  })
}

async function announce (kind: 'hold' | 'drop'): Promise<() => Promise<void>> {
  const file = path.join(HOLDS, `${kind}-${process.pid}-${++holdSeq}`)
  for (;;) {
    await mkdir(HOLDS, { recursive: true })
    // NB: the last one out removes the directory; one made a moment ago may be gone again.
    const made = await writeFile(file, '').then(() => true, (err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return false; throw err })
    if (made) break
  }
  return async () => {
    await rm(file, { force: true })
    // Nothing is left behind in the temp dir once no test holds or drops (ENOTEMPTY: another still does).
    await rmdir(HOLDS).catch(() => {})
  }
}

const pause = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/**
 * Holds the kernel's caches until `t`'s teardown (or the returned release): no `dropKernelCaches` of any test runs
 * meanwhile. Waits for a drop in progress to end.
 */
export async function holdKernelCaches (t: Pick<TapLike, 'teardown'>): Promise<() => Promise<void>> {
  const release = await announce('hold')
  t.teardown(release)
  while ((await announcements('drop')).length > 0) await pause(20)
  return release
}

/**
 * Drops the kernel's page, dentry and inode caches (needs root), so the next access goes through FUSE again. Waits
 * while another test holds them (`holdKernelCaches`), up to two minutes (scaled), then fails.
 */
export async function dropKernelCaches (): Promise<void> {
  const deadline = Date.now() + scaled(120_000)
  for (;;) {
    const withdraw = await announce('drop')
    try {
      if ((await announcements('hold')).length === 0) {
        await run('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'])
        return
      }
    } finally {
      await withdraw()
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for other tests to release the kernel caches')
    await pause(50)
  }
}

export async function isMounted (mountpoint: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return text.split('\n').some(l => l.split(' ')[4] === mountpoint)
}

/** Makes sure nothing stays mounted at `mountpoint`: fusermount -u, then umount -l (each bounded, scaled). */
export async function forceUnmount (mountpoint: string): Promise<void> {
  if (!await isMounted(mountpoint)) return
  await run('fusermount', ['-u', mountpoint], { timeoutMs: 10_000 })
  if (await isMounted(mountpoint)) await run('umount', ['-l', mountpoint], { timeoutMs: 10_000 })
}

export interface Mount {
  mountpoint: string
  source: string
  child: ChildProcess
  /** Everything the mount process wrote to stderr so far. */
  log (): string
  /** SIGTERM and wait for exit (then force); resolves with the exit code. */
  stop (): Promise<number | null>
}

/**
 * Starts `fsx mount SOURCE MOUNTPOINT [args]` in the foreground as a child; resolves once the kernel shows it
 * (within 30 s, scaled). Without `opts.mountpoint`, the mountpoint is a temp dir removed after the unmount.
 */
export async function mountFsx (t: TapLike, source: string, args: string[] = [], opts: { env?: Record<string, string>, mountpoint?: string, deno?: boolean } = {}): Promise<Mount> {
  const mountpoint = opts.mountpoint ?? await tempDir(t, 'fsx-mnt-')
  let stderr = ''
  // With `deno`, the mount process is `deno run -A bin/run.js mount …` (the kernel engine's Deno transport).
  const [cmd, pre] = opts.deno === true ? [DENO, ['run', '-A', BIN]] : [process.execPath, [BIN]]
  const child = spawn(cmd, [...pre, 'mount', source, mountpoint, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout?.on('data', d => { stderr += String(d) })
  child.stderr?.on('data', d => { stderr += String(d) })
  let exited = false
  let exitCode: number | null = null
  const exitP = new Promise<number | null>(resolve => child.on('exit', code => { exited = true; exitCode = code; resolve(code) }))

  const stop = async (): Promise<number | null> => {
    if (!exited) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), scaled(15_000))
      await exitP
      clearTimeout(timer)
    }
    await forceUnmount(mountpoint)
    return exitCode
  }
  t.teardown(async () => {
    const code = await stop()
    // A failed test shows what the mount process said (an "unexpected error in OP" stack, a backend message).
    if (t.passing?.() === false && stderr.trim() !== '') t.comment?.(`fsx mount ${mountpoint} (exit ${String(code)}) said:\n${stderr.slice(-8000)}`)
  })
  try {
    // Ready when the mount process says so (a stale mount may already show in mountinfo) and the kernel shows it.
    await waitUntil(async () => exited || (/ mounted .* on /.test(stderr) && await isMounted(mountpoint)),
      { timeoutMs: 30_000, what: `fsx to mount ${mountpoint}` })
  } catch (err) {
    await stop()
    throw err
  }
  if (exited) throw new Error(`fsx mount exited with ${String(exitCode)}: ${stderr.trim()}`)
  return { mountpoint, source, child, log: () => stderr, stop }
}
