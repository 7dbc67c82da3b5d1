/**
 * Reading /proc/self/mountinfo: is a path a mountpoint, and of what type. No FUSE traffic is generated, so this is
 * safe to call from the process that serves the mount.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'

export interface MountEntry {
  mountpoint: string
  fstype: string
  source: string
}

function unescape (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

export async function readMounts (): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const [left, right] = line.split(' - ')
    const f = left.split(' ')
    const r = (right ?? '').split(' ')
    out.push({ mountpoint: unescape(f[4]), fstype: r[0] ?? '', source: unescape(r[1] ?? '') })
  }
  return out
}

/**
 * Is this an fsx mount? fsx mounts with FUSE subtype "fsx" (fstype `fuse.fsx`) and fsname `fsx:<source>`
 * (src/mount/service.ts); either mark is enough, so a mount made without subtype support still counts. Anything
 * else (sshfs, bindfs, another FUSE filesystem, a disk) is not, and `fsx unmount` leaves it alone. A dead fsx mount
 * (its process killed) keeps both marks until it is cleared.
 */
export function isFsxMount (m: MountEntry): boolean {
  return m.fstype === 'fuse.fsx' || (m.fstype === 'fuse' && m.source.startsWith('fsx:'))
}

/** The mount entry at exactly `p` (last one wins, as the kernel shows stacked mounts), if any. */
export async function mountAt (p: string): Promise<MountEntry | undefined> {
  const abs = path.resolve(p)
  const all = await readMounts()
  return all.filter(m => m.mountpoint === abs).pop()
}
