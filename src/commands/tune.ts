import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { FsxCommand } from '../cli/base.js'
import { extractPluginFlags, settingFlags, settingsFromFlags } from '../cli/setting-flags.js'
import { envName, formatOptionValue } from '../config/options.js'
import { resolveSettings } from '../config/resolve.js'

export default class Tune extends FsxCommand {
  static summary = 'Show the resolved settings and where each value came from.'
  static description = 'Precedence, lowest to highest: default < preset < config file < environment (FSX_*) < flag.'
  static examples = [
    '<%= config.bin %> tune',
    '<%= config.bin %> tune --preset high-performance --json',
    'FSX_ATTR_TTL=7 <%= config.bin %> tune --json'
  ]

  static flags = {
    preset: Flags.string({ char: 'p', summary: 'Preset name or preset JSON file. [env: FSX_PRESET]' }),
    config: Flags.string({ summary: 'Config file (default: $XDG_CONFIG_HOME/fsx/config.json). [env: FSX_CONFIG]' }),
    json: Flags.boolean({ summary: 'Print {"preset", "settings": {KEY: {"value", "source"}}}; durations in ms, sizes in bytes.' }),
    ...settingFlags()
  }

  async run (): Promise<void> {
    const registry = await this.backends()
    const { argv, values: pluginValues } = extractPluginFlags(this.argv, registry.options())
    const { flags } = await this.parse(Tune, argv)
    const r = await resolveSettings({
      preset: flags.preset,
      config: flags.config,
      flags: { ...settingsFromFlags(flags), ...pluginValues },
      extraOptions: registry.options()
    })
    if (flags.json) {
      const settings: Record<string, { value: unknown, source: string }> = {}
      for (const spec of r.specs) {
        const s = r.settings[spec.key]
        settings[spec.key] = { value: spec.secret && s.value !== undefined ? '(set)' : (s.value ?? null), source: s.source }
      }
      this.log(JSON.stringify({ preset: r.preset.name, presetSource: r.presetSource, configFile: r.configFile ?? null, settings }, null, 2))
      return
    }
    this.log(`${chalk.bold('preset')} ${r.preset.name} ${chalk.dim(`(from ${r.presetSource})`)}  ${chalk.dim(r.preset.description)}`)
    if (r.configFile) this.log(`${chalk.bold('config')} ${r.configFile}`)
    const rows = r.specs.map(spec => {
      const s = r.settings[spec.key]
      return [spec.key, formatOptionValue(spec, s.value), s.source, envName(spec.key)]
    })
    const w = [0, 1, 2].map(i => Math.max(...rows.map(row => row[i].length), 6))
    this.log(chalk.dim(`${'setting'.padEnd(w[0])}  ${'value'.padEnd(w[1])}  ${'source'.padEnd(w[2])}  env`))
    const colour: Record<string, (s: string) => string> = { default: chalk.dim, preset: chalk.cyan, config: chalk.yellow, env: chalk.magenta, flag: chalk.green }
    for (const [k, v, src, env] of rows) {
      this.log(`${k.padEnd(w[0])}  ${v.padEnd(w[1])}  ${(colour[src] ?? String)(src.padEnd(w[2]))}  ${chalk.dim(env)}`)
    }
  }
}
