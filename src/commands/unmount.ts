import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { FsxError } from '../errors.js'
import { unmountPath } from '../fuse/unmount.js'
import { isFsxMount, mountAt } from '../mount/mountinfo.js'
import { pidAlive, readRecord, removeRecord } from '../mount/runtime.js'
import { drainWithProgress } from '../cli/drain.js'

export default class Unmount extends FsxCommand {
  static summary = 'Unmount an fsx mount and wait for its process to finish.'
  static description = 'Refuses (exit 4) a mountpoint where nothing is mounted or where the mount is not fsx\'s ' +
    '(sshfs, bindfs, any other filesystem): unmount those with their own tools. A dead fsx mount (its process ' +
    'killed) is cleared.'
  static hiddenAliases = ['umount']
  static examples = ['<%= config.bin %> unmount ./mnt', '<%= config.bin %> unmount ./mnt --lazy']

  static args = {
    mountpoint: Args.string({ required: true, description: 'the mountpoint' })
  }

  static flags = {
    lazy: Flags.boolean({ char: 'l', summary: 'Detach even if files are open (they fail with ENOTCONN afterwards).' }),
    timeout: Flags.integer({ summary: 'Seconds to wait for the mount process to exit.', default: 30 })
  }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Unmount)
    const mountpoint = path.resolve(args.mountpoint)
    const entry = await mountAt(mountpoint)
    const rec = await readRecord(mountpoint)
    if (!entry) {
      if (rec && pidAlive(rec.pid)) {
        process.kill(rec.pid, 'SIGTERM')
        this.log(`${mountpoint} was not mounted; stopped its fsx process ${rec.pid}`)
        return
      }
      await removeRecord(mountpoint, rec?.pid)
      throw new FsxError('ENOTMOUNTED', `${mountpoint} is not mounted`)
    }
    if (!isFsxMount(entry)) {
      // NB: never unmount what fsx did not mount (an sshfs, a bind mount, a disk): it is someone else's.
      throw new FsxError('ENOTFSX', `${mountpoint} is not an fsx mount (${entry.fstype} from ${entry.source}); fsx unmounts only its own mounts`, {
        hint: entry.fstype.startsWith('fuse') ? `unmount it with: fusermount -u ${mountpoint}` : `unmount it with: umount ${mountpoint}`
      })
    }
    if (rec && pidAlive(rec.pid)) {
      // Upload what write-back still holds before the kernel mount goes away (with progress on a terminal).
      await drainWithProgress(mountpoint, true).catch(err => {
        if (!flags.lazy) throw err
        this.warn(`could not drain write-back: ${(err as Error).message}`)
      })
    }
    await unmountPath(mountpoint, flags.lazy)
    if (rec && pidAlive(rec.pid)) {
      // The mount process notices the unmount within a second, releases its backend and exits.
      const deadline = Date.now() + flags.timeout * 1000
      while (pidAlive(rec.pid) && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
      if (pidAlive(rec.pid)) {
        process.kill(rec.pid, 'SIGTERM')
        this.warn(`mount process ${rec.pid} did not exit within ${flags.timeout}s; sent SIGTERM`)
      }
    }
    this.log(`unmounted ${mountpoint}`)
  }
}
