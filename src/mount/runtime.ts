/**
 * Where running mounts leave their traces: one JSON state file per mount under the runtime directory
 * ($XDG_RUNTIME_DIR/fsx, else /run/fsx for root, else $TMPDIR/fsx-<uid>), mode 0700. `fsx unmount` and later
 * `fsx mounts`/`fsx stats` find mounts there; a state file whose pid is dead is stale and removed on sight.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { pidAlive } from '../vfs/dir-lock.js'

/** Is a mount's process still running (re-exported for the CLI). */
export { pidAlive }

export interface MountRecord {
  pid: number
  mountpoint: string
  /** Secret-free source description. */
  source: string
  preset: string
  startedAt: string
  logFile?: string
}

export function runtimeDir (env: Record<string, string | undefined> = process.env): string {
  if (env.FSX_RUNTIME_DIR) return env.FSX_RUNTIME_DIR
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'fsx')
  if (process.getuid?.() === 0) return '/run/fsx'
  return path.join(os.tmpdir(), `fsx-${process.getuid?.() ?? 'user'}`)
}

/** Default directory for caches and staging files. */
export function defaultCacheDir (env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache')
  return path.join(base, 'fsx')
}

/** Default log directory for daemons. */
export function logDir (env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state')
  return path.join(base, 'fsx', 'logs')
}

/** Stable id of a mountpoint, used for file names. */
export function mountId (mountpoint: string): string {
  return createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 16)
}

function recordFile (mountpoint: string): string {
  return path.join(runtimeDir(), `${mountId(mountpoint)}.json`)
}

export async function writeRecord (rec: MountRecord): Promise<void> {
  await mkdir(runtimeDir(), { recursive: true, mode: 0o700 })
  await writeFile(recordFile(rec.mountpoint), JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 })
}

export async function removeRecord (mountpoint: string, pid = process.pid): Promise<void> {
  const rec = await readRecord(mountpoint)
  if (rec && rec.pid !== pid) return
  await rm(recordFile(mountpoint), { force: true })
}


export async function readRecord (mountpoint: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(mountpoint), 'utf8')) as MountRecord
  } catch {
    return undefined
  }
}

/** Every live mount record; stale ones (dead pid) are removed. */
export async function listRecords (): Promise<MountRecord[]> {
  let files: string[]
  try { files = await readdir(runtimeDir()) } catch { return [] }
  const out: MountRecord[] = []
  for (const f of files.filter(f => f.endsWith('.json'))) {
    const file = path.join(runtimeDir(), f)
    try {
      const rec = JSON.parse(await readFile(file, 'utf8')) as MountRecord
      if (pidAlive(rec.pid)) out.push(rec)
      else {
        // A dead mount process: its record and control socket are stale.
        await rm(file, { force: true })
        await rm(file.replace(/\.json$/, '.sock'), { force: true })
      }
    } catch { /* unreadable: skip */ }
  }
  return out
}
