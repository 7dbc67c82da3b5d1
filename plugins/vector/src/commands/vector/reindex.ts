import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { VectorCommand } from '../../cli.js'
import type { IndexStatus } from '../../indexer.js'

/** How often the progress is asked for. */
const POLL_MS = 500

export default class Reindex extends VectorCommand {
  static summary = 'Rebuild the vector index of a mount from the .vec and .fvecs files it serves.'
  static description = 'Forgets the index and reads every vector file of the mount again (searches answer from what is ' +
    'indexed so far meanwhile). Waits until it is done, showing progress; Ctrl-C stops waiting, not the rebuild.'

  static examples = ['<%= config.bin %> vector reindex ./mnt', '<%= config.bin %> vector reindex ./mnt --json']

  static args = { mountpoint: Args.string({ required: true, description: 'a running fsx mount with --vector-index' }) }

  static flags = {
    json: Flags.boolean({ summary: 'Print the index status when done, as JSON (see fsx vector status --json).' })
  }

  async run (): Promise<void> {
    const { args, flags } = await this.parse(Reindex)
    const mountpoint = path.resolve(args.mountpoint)
    await this.vector(mountpoint, 'reindex')
    const tty = process.stderr.isTTY === true && !flags.json
    const t0 = Date.now()
    let status: IndexStatus
    for (;;) {
      status = (await this.vector(mountpoint, 'status')).status as IndexStatus
      if (status.engineFailed !== undefined) break
      if (status.walk === undefined && status.pending === 0) break
      if (tty) {
        const w = status.walk
        process.stderr.write(`\r\u001b[K${w ? `${w.directories} directories, ${w.files} vector files seen, ` : ''}${status.vectors} vectors indexed, ${status.pending} queued`)
      }
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    if (tty) process.stderr.write('\r\u001b[K')
    if (flags.json) { this.log(JSON.stringify({ mountpoint, status }, null, 2)); return }
    if (status.engineFailed !== undefined) this.error(`the index engine stopped: ${status.engineFailed}`, { exit: 1 })
    this.log(`reindexed ${mountpoint} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${status.vectors} vectors of dimension ${status.dim} in ${status.files} files` +
      (status.invalidFiles > 0 ? `, ${status.invalidFiles} files left out (fsx vector status lists them)` : ''))
  }
}
