import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { drainWithProgress } from '../cli/drain.js'

export default class Flush extends FsxCommand {
  static summary = 'Upload everything a mount has acknowledged but not yet written to the backend (S3 deletes still queued included), with progress, and wait until it is done.'
  static examples = ['<%= config.bin %> flush ./mnt']
  static args = { mountpoint: Args.string({ required: true, description: 'the mount' }) }
  static flags = { json: Flags.boolean({ summary: 'Print the write-back figures after draining as JSON.' }) }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Flush)
    const wb = await drainWithProgress(path.resolve(args.mountpoint), !flags.json)
    if (flags.json) this.log(JSON.stringify({ writeback: wb }))
    else this.log(`flushed ${path.resolve(args.mountpoint)}: nothing left to upload`)
  }
}
