/**
 * Paths on the command line that name places inside a mount ("./mnt/a/b", "/abs/mnt/a", or "a/b" relative to the
 * mountpoint) turned into the mount's own paths ("/a/b"), refusing anything outside the mount.
 */
import path from 'node:path'
import { FsxError } from '../errors.js'

export function toMountPath (mountpoint: string, p: string): string {
  const mp = path.resolve(mountpoint)
  let abs = path.resolve(p)
  if (!(abs === mp || abs.startsWith(mp + path.sep)) && !path.isAbsolute(p)) abs = path.resolve(mp, p)
  if (!(abs === mp || abs.startsWith(mp + path.sep))) throw new FsxError('EINVAL', `${p} is not inside the mount ${mp}`)
  const rel = path.relative(mp, abs)
  return rel === '' ? '/' : '/' + rel.split(path.sep).join('/')
}
