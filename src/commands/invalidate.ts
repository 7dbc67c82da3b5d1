import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { toMountPath } from '../cli/mount-paths.js'
import { ask } from '../control/client.js'

export default class Invalidate extends FsxCommand {
  static summary = 'Drop what a mount has cached for some paths (attributes, listings, data, xattrs), so the next access asks the backend.'
  static description = 'A directory is dropped with everything below it. The kernel\'s own caches expire by their TTLs (attrTtl, entryTtl).'
  static strict = false
  static examples = ['<%= config.bin %> invalidate ./mnt ./mnt/datasets/train', '<%= config.bin %> invalidate ./mnt   # everything']
  static args = {
    mountpoint: Args.string({ required: true, description: 'the mount' }),
    paths: Args.string({ description: 'paths inside the mount (default: all)' })
  }

  static flags = {
    prefix: Flags.boolean({ summary: 'Treat each PATH as a prefix: drop it and everything below it (directories always are).' }),
    json: Flags.boolean({ summary: 'Print {"invalidated": [paths]}.' })
  }

  async run (): Promise<void> {
    const { args, argv, flags } = await this.parse(Invalidate)
    const mp = path.resolve(args.mountpoint)
    const paths = (argv as string[]).slice(1).map(p => toMountPath(mp, p))
    const res = await ask(mp, { cmd: 'invalidate', paths, prefix: flags.prefix })
    if (flags.json) this.log(JSON.stringify({ invalidated: res.invalidated }))
    else this.log(`invalidated ${(res.invalidated as string[]).join(', ')} on ${mp}`)
  }
}
