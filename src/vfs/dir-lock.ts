/**
 * A directory owned by one process at a time (the data cache's disk tier, the write-back journal): a `lock` file
 * holding the owner's pid, created exclusively. A lock whose process is gone (kill -9) is stale and taken over.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'

const LOCK_FILE = 'lock'

/** True while a process with this pid exists (EPERM: it exists but is not ours). */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the lock of `dir` or throws naming the process that holds it. With `exclusiveInProcess`, a lock held by this
 * same process also counts as taken (two owners in one process); otherwise it is treated as left by an earlier
 * owner in this process that never unlocked.
 */
export async function lockDir (dir: string, what: string, opts: { exclusiveInProcess?: boolean } = {}): Promise<void> {
  const file = path.join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      const held = pid === process.pid ? opts.exclusiveInProcess === true : pid > 0 && pidAlive(pid)
      if (held) throw new Error(`${what} ${dir} is in use by process ${pid}`)
      await rm(file, { force: true })
    }
  }
  throw new Error(`cannot lock ${what} ${dir}`)
}

export async function unlockDir (dir: string): Promise<void> {
  await rm(path.join(dir, LOCK_FILE), { force: true })
}

/** The lock file's name, for code that lists such a directory. */
export const DIR_LOCK_FILE = LOCK_FILE
