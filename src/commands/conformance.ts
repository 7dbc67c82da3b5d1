import { Args, Flags } from '@oclif/core'
import { randomBytes } from 'node:crypto'
import { runConformance } from '@fsx/sdk/conformance'
import { FsxCommand } from '../cli/base.js'
import { extractPluginFlags } from '../cli/setting-flags.js'
import { parseSource } from '../backend/source.js'
import type { Backend } from '../backend/types.js'
import { resolveSettings, settingValues } from '../config/resolve.js'
import { FsxError } from '../errors.js'
import { createBackend } from '../mount/backend.js'

export default class Conformance extends FsxCommand {
  static summary = 'Run the backend conformance suite against a source: the behaviour every backend plugin must show.'
  static description = 'Creates a scratch directory (.fsx-conformance-<random>) at the root of SOURCE, runs every case of ' +
    'the suite in @fsx/sdk/conformance in it through the Backend interface (no FUSE mount), prints one line per case and ' +
    'removes the scratch directory. Cases for what the backend does not announce in its capabilities are skipped with ' +
    'the reason. Exit 0 when no case fails, 1 otherwise. Backend settings come from flags (--sftp-key…), FSX_* and the ' +
    'config file, as for fsx mount.'

  static examples = [
    '<%= config.bin %> conformance ./empty-dir',
    '<%= config.bin %> conformance mem://scratch',
    'FSX_S3_ENDPOINT=http://127.0.0.1:9000 <%= config.bin %> conformance s3://test-bucket/conformance --grep rename'
  ]

  static args = {
    source: Args.string({ required: true, description: 'a source of the backend to test (its root gets a scratch directory)' })
  }

  static flags = {
    config: Flags.string({ summary: 'Config file (default: $XDG_CONFIG_HOME/fsx/config.json). [env: FSX_CONFIG]' }),
    grep: Flags.string({ summary: 'Run only the cases whose title matches this regular expression.', helpValue: 'REGEX' }),
    keep: Flags.boolean({ summary: 'Leave the scratch directory in place (to look at what a failing case left).' })
  }

  async run (): Promise<void> {
    const registry = await this.backends()
    const { argv, values: pluginValues } = extractPluginFlags(this.argv, registry.options())
    const { args, flags } = await this.parse(Conformance, argv)
    let grep: RegExp | undefined
    try {
      grep = flags.grep === undefined ? undefined : new RegExp(flags.grep)
    } catch (err) {
      throw new FsxError('EUSAGE', `--grep: ${(err as Error).message}`)
    }
    const resolved = await resolveSettings({ config: flags.config, flags: pluginValues, extraOptions: registry.options() })
    const backend = await createBackend(registry, parseSource(args.source), settingValues(resolved))
    const base = `/.fsx-conformance-${randomBytes(4).toString('hex')}`
    let report
    try {
      await backend.mkdir(base, 0o755)
      this.log(`conformance of ${backend.description} in ${base}`)
      report = await runConformance(backend, { base, grep, log: line => this.log(line) })
      if (!flags.keep) await removeTree(backend, base)
    } finally {
      await backend.close().catch(() => {})
    }
    this.log(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`)
    if (report.failed > 0) {
      throw new FsxError('EIO', `${report.failed} of ${report.passed + report.failed} conformance cases failed on ${backend.description}`, {
        hint: report.failures.map(f => f.title).slice(0, 3).join('; ') + (report.failures.length > 3 ? '; …' : '')
      })
    }
  }
}

/** Removes `dir` and everything below it through the Backend interface (best effort for what it cannot remove). */
async function removeTree (b: Backend, dir: string): Promise<void> {
  for (const e of await b.list(dir)) {
    const p = `${dir}/${e.name}`
    const kind = e.stat?.kind ?? (await b.stat(p)).kind
    if (kind === 'dir') await removeTree(b, p)
    else await b.remove(p)
  }
  await b.rmdir(dir)
}
