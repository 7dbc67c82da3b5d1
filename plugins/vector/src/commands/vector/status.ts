import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { VectorCommand } from '../../cli.js'
import type { IndexStatus } from '../../indexer.js'

export default class Status extends VectorCommand {
  static summary = 'Show a mount\'s vector index: vectors, files, files left out and why, validation progress.'
  static examples = ['<%= config.bin %> vector status ./mnt', '<%= config.bin %> vector status ./mnt --json']

  static args = { mountpoint: Args.string({ required: true, description: 'a running fsx mount with --vector-index' }) }

  static flags = {
    json: Flags.boolean({ summary: 'Print {"status": {"vectors", "files", "invalidFiles", "dim", "metric", "pending", "walk", "lastWalk", "invalid"}}.' })
  }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Status)
    const mountpoint = path.resolve(args.mountpoint)
    const status = (await this.vector(mountpoint, 'status')).status as IndexStatus
    if (flags.json) { this.log(JSON.stringify({ mountpoint, status }, null, 2)); return }
    this.log(`${mountpoint}: ${status.vectors} vectors${status.dim > 0 ? ` of dimension ${status.dim}` : ''} in ${status.files} files, metric ${status.metric}` +
      (status.pending > 0 ? `, ${status.pending} changes queued` : ''))
    if (status.walk !== undefined) {
      const w = status.walk
      this.log(`${w.reason} running since ${w.startedAt}: ${w.directories} directories, ${w.files} vector files seen, ${w.checked} checked`)
    } else if (status.lastWalk !== undefined) {
      this.log(`last ${status.lastWalk.reason}: ${status.lastWalk.files} vector files in ${status.lastWalk.seconds.toFixed(1)} s`)
    }
    if (status.engineFailed !== undefined) this.log(`the index engine stopped: ${status.engineFailed} (fsx vector reindex restarts it)`)
    if (status.invalidFiles > 0) {
      this.log(`${status.invalidFiles} files left out of the index:`)
      for (const f of status.invalid) this.log(`  ${f.path}: ${f.reason}`)
      if (status.invalid.length < status.invalidFiles) this.log(`  … and ${status.invalidFiles - status.invalid.length} more`)
    }
  }
}
