/**
 * Unmounting and mount-state checks shared by every engine. They run outside the serving thread's FUSE traffic:
 * fusermount / umount(8) are child processes, and `mountState` compares st_dev with the parent's.
 */
import { execFile } from 'node:child_process'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { FsxError } from '../errors.js'

function run (cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number, stderr: string }> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      const code = err ? ((err as any).code === 'ENOENT' ? 127 : (typeof (err as any).code === 'number' ? (err as any).code : 1)) : 0
      resolve({ code, stderr: String(stderr ?? '') })
    })
  })
}

/**
 * Unmounts a FUSE mountpoint from outside the serving thread: fusermount -u (fusermount3), then umount(8).
 * `lazy` detaches even when busy. Rejects EBUSY with one line when files are in use.
 */
export async function unmountPath (mountpoint: string, lazy: boolean): Promise<void> {
  const flag = lazy ? '-uz' : '-u'
  let r = await run('fusermount', [flag, mountpoint])
  if (r.code === 127) r = await run('fusermount3', [flag, mountpoint])
  if (r.code === 0) return
  const um = await run('umount', lazy ? ['-l', mountpoint] : [mountpoint])
  if (um.code === 0) return
  const text = `${r.stderr} ${um.stderr}`
  if (/busy/i.test(text)) throw new FsxError('EBUSY', `${mountpoint} is busy: files are still open there`, { hint: 'close them, or use fsx unmount --lazy' })
  if (/not (found|mounted)|not a mountpoint|entry for .* not found/i.test(text)) throw new FsxError('EINVAL', `${mountpoint} is not mounted`)
  throw new FsxError('EIO', `cannot unmount ${mountpoint}: ${(um.stderr || r.stderr).trim().split('\n')[0]}`)
}

/** Is `p` a mountpoint now? Compares st_dev with the parent's; ENOTCONN means a dead FUSE mount. */
export async function mountState (p: string): Promise<'mounted' | 'stale' | 'none'> {
  try {
    const [self, parent] = await Promise.all([stat(p), stat(path.dirname(path.resolve(p)))])
    return self.dev !== parent.dev ? 'mounted' : 'none'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') return 'stale'
    return 'none'
  }
}
