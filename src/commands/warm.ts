import { Args, Flags } from '@oclif/core'
import cliProgress from 'cli-progress'
import { createReadStream } from 'node:fs'
import { lstat, opendir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { minimatch } from 'minimatch'
import { FsxCommand } from '../cli/base.js'
import { toMountPath } from '../cli/mount-paths.js'
import { ask, findMount } from '../control/client.js'
import { formatSize } from '../config/units.js'
import { FsxError } from '../errors.js'

export default class Warm extends FsxCommand {
  static summary = 'Load files\' data and metadata into a mount\'s caches ahead of use, in parallel, with progress.'
  static description = 'Reads each file through the mount once (or only stats it with --metadata-only), so later reads are ' +
    'served from the caches. Directories are walked recursively.'

  static strict = false
  static examples = [
    '<%= config.bin %> warm ./mnt ./mnt/datasets/train',
    '<%= config.bin %> warm ./mnt --glob "**/*.parquet" --jobs 8',
    '<%= config.bin %> warm ./mnt --from-file files.txt --metadata-only',
    '<%= config.bin %> warm ./mnt ./mnt/models --pin',
    '<%= config.bin %> warm ./mnt ./mnt/models --unpin'
  ]

  static args = {
    mountpoint: Args.string({ required: true, description: 'the mount' }),
    paths: Args.string({ description: 'files or directories inside the mount' })
  }

  static flags = {
    glob: Flags.string({ summary: 'Warm the files whose path inside the mount matches PATTERN (e.g. "data/**/*.bin").', helpValue: 'PATTERN' }),
    'from-file': Flags.string({ summary: 'Read the paths to warm from FILE, one per line.', helpValue: 'FILE' }),
    'metadata-only': Flags.boolean({ summary: 'Only load attributes and listings, not file data.' }),
    pin: Flags.boolean({
      summary: 'Keep the warmed files\' data in the data cache: exempt from eviction (the cache caps still hold), across restarts, until --unpin.',
      exclusive: ['metadata-only', 'unpin']
    }),
    unpin: Flags.boolean({ summary: 'Release pins on these files (their data stays cached, evictable again); reads nothing.', exclusive: ['metadata-only'] }),
    jobs: Flags.integer({ char: 'j', summary: 'Files warmed in parallel.', default: 4, min: 1, max: 64 }),
    json: Flags.boolean({ summary: 'Print {"files", "bytes", "errors", "seconds"} (and "pinnedBytes" with --pin) when done.' })
  }

  async run (): Promise<void> {
    const { args, argv, flags } = await this.parse(Warm)
    const mp = path.resolve(args.mountpoint)
    await findMount(mp)
    const roots = (argv as string[]).slice(1)
    if (flags['from-file']) {
      const text = await readFile(flags['from-file'], 'utf8').catch(err => {
        throw new FsxError('ENOENT', `cannot read ${flags['from-file']}: ${(err as NodeJS.ErrnoException).code}`)
      })
      roots.push(...text.split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#')))
    }
    if (roots.length === 0 && !flags.glob) throw new FsxError('EUSAGE', 'nothing to warm', { hint: 'give PATHs, --glob PATTERN or --from-file LIST' })
    if (roots.length === 0) roots.push(mp)
    const abs = roots.map(r => path.join(mp, toMountPath(mp, r)))

    const files: Array<{ file: string, size: number }> = []
    const state = { files: 0, bytes: 0, errors: 0, totalBytes: 0, listed: 0 }
    const walk = async (p: string): Promise<void> => {
      let st
      try { st = await lstat(p) } catch { state.errors++; return }
      if (st.isDirectory()) {
        const dir = await opendir(p).catch(() => { state.errors++ })
        if (!dir) return
        for await (const e of dir) await walk(path.join(p, e.name))
      } else if (st.isFile()) {
        const rel = path.relative(mp, p).split(path.sep).join('/')
        if (flags.glob && !minimatch(rel, flags.glob, { dot: true })) return
        files.push({ file: p, size: st.size })
        state.totalBytes += st.size
      }
      state.listed++
    }
    for (const r of abs) await walk(r)

    // Pins go first, so the blocks this run reads are stored pinned.
    const inMount = files.map(f => toMountPath(mp, f.file))
    if (flags.pin || flags.unpin) {
      const res = await ask(mp, { cmd: 'pin', paths: inMount, unpin: flags.unpin })
      if (res.supported !== true) {
        throw new FsxError('ENOTSUP', `${mp} has no data cache to pin files in`, { hint: 'remote backends (S3, SFTP) have one; local files are left to the kernel\'s page cache. On S3 and SFTP, check dataCacheSize / dataCacheMemory with fsx tune' })
      }
      if (flags.unpin) {
        if (flags.json) this.log(JSON.stringify({ unpinned: inMount.length }))
        else this.log(`unpinned ${inMount.length} files on ${mp}`)
        return
      }
    }

    const tty = process.stderr.isTTY && !flags.json
    const bar = tty
      ? new cliProgress.SingleBar({ stream: process.stderr, format: 'warming [{bar}] {value}/{total} files · {bytes_h} of {total_h} · {errors} errors · ETA {eta_formatted}', hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic)
      : undefined
    bar?.start(files.length, 0, { bytes_h: '0', total_h: formatSize(state.totalBytes), errors: 0 })
    const t0 = performance.now()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const f = files[next++]
        try {
          // NB: not `state.bytes += await …`, which reads state.bytes before the await and loses other workers' bytes.
          const n = flags['metadata-only'] ? 0 : await drain(f.file)
          state.bytes += n
        } catch {
          state.errors++
        }
        state.files++
        bar?.update(state.files, { bytes_h: formatSize(state.bytes), errors: state.errors })
      }
    }
    await Promise.all(Array.from({ length: flags.jobs }, worker))
    bar?.stop()
    const seconds = (performance.now() - t0) / 1000
    const pinnedBytes = flags.pin ? await this.cachedBytes(mp, inMount) : undefined
    if (flags.json) {
      this.log(JSON.stringify({ files: state.files, bytes: state.bytes, errors: state.errors, seconds: Number(seconds.toFixed(3)), ...(flags.pin ? { pinnedBytes } : {}) }))
    } else {
      this.log(`warmed ${state.files} files (${formatSize(state.bytes)}${flags['metadata-only'] ? ', metadata only' : ''}) in ${seconds.toFixed(1)}s` +
        (state.errors ? `, ${state.errors} errors` : '') + (flags.pin ? `; ${formatSize(pinnedBytes!)} pinned` : ''))
    }
    if (flags.pin && pinnedBytes! < state.bytes) {
      this.warn(`only ${formatSize(pinnedBytes!)} of ${formatSize(state.bytes)} could be pinned: the data cache is too small for everything pinned (raise dataCacheSize / dataCacheMemory)`)
    }
    if (state.errors > 0) process.exitCode = 1
  }

  /** Bytes of `paths` the mount's data cache holds once the blocks just read are stored. */
  private async cachedBytes (mp: string, paths: string[]): Promise<number> {
    return Number((await ask(mp, { cmd: 'cached', paths }, 60_000)).bytes ?? 0)
  }
}

/** Reads a file to the end and discards it; resolves with the bytes read. */
function drain (file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0
    createReadStream(file, { highWaterMark: 1024 * 1024 })
      .on('data', (c: Buffer | string) => { n += c.length })
      .on('end', () => resolve(n))
      .on('error', reject)
  })
}
