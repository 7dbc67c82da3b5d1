/**
 * A CPU hog for tests that must hold on a loaded machine: busy-loop child processes, one per core by default, so
 * the code under test, its servers and the test itself fight for the CPU as on a busy CI runner.
 *
 *   await startCpuHog(t)              // as many busy loops as cores; stopped in t's teardown
 *   await startCpuHog(t, { procs: 2 })
 *
 * Invariants:
 * - Nothing outlives the test: teardown SIGKILLs every child by its pid and waits for its exit; a child also exits
 *   by itself when its parent is gone (it checks its parent pid between bursts) or after `maxMs`.
 * - Children run plain `node -e`, with no stdio: they never touch a mount or a file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import os from 'node:os'

interface TapLike {
  teardown (fn: () => unknown): void
}

export interface CpuHog {
  /** Pids of the busy loops. */
  readonly pids: number[]
  /** Kills the busy loops and waits for them to exit (teardown does it too). */
  stop (): Promise<void>
}

/** Starts `procs` busy-loop processes (default: one per core), stopped in `t`'s teardown. */
export async function startCpuHog (t: TapLike, opts: { procs?: number, maxMs?: number } = {}): Promise<CpuHog> {
  const procs = opts.procs ?? Math.max(1, os.availableParallelism())
  const maxMs = opts.maxMs ?? 30 * 60_000
  // Bursts of ~10 ms between checks: the parent's death or the time limit ends the loop promptly.
  const script = `const p = ${process.pid}, end = Date.now() + ${maxMs}; for (;;) { ` +
    'const s = Date.now(); while (Date.now() - s < 10); if (process.ppid !== p || Date.now() > end) process.exit(0) }'
  const children: ChildProcess[] = []
  for (let i = 0; i < procs; i++) children.push(spawn(process.execPath, ['-e', script], { stdio: 'ignore' }))
  await Promise.all(children.map(async c => await new Promise<void>((resolve, reject) => {
    c.once('spawn', () => resolve())
    c.once('error', reject)
  })))
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= Promise.all(children.map(async c => {
      if (c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise<void>(resolve => c.once('exit', () => resolve()))
      c.kill('SIGKILL')
      await exited
    })).then(() => {})
    await stopping
  }
  t.teardown(stop)
  return { pids: children.map(c => c.pid!), stop }
}
