import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { FsxCommand } from '../cli/base.js'
import { extractPluginFlags, settingFlags, settingsFromFlags } from '../cli/setting-flags.js'
import { envName, flagName, formatOptionValue } from '../config/options.js'
import { resolveSettings, type ResolvedSettings } from '../config/resolve.js'
import { builtinPresetNames, loadPreset } from '../config/presets.js'
import { FsxError } from '../errors.js'

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
    explain: Flags.string({ summary: 'Explain one setting: what it does, its value in each preset, where the current value came from.', helpValue: 'KEY' }),
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
    if (flags.explain) return await this.explain(r, flags.explain, flags.json)
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

  private async explain (r: ResolvedSettings, key: string, json: boolean): Promise<void> {
    const norm = key.replace(/^--/, '').replace(/^FSX_/i, '').toLowerCase().replace(/[-_]/g, '')
    const spec = r.specs.find(s => s.key.toLowerCase() === norm)
    if (!spec) {
      throw new FsxError('EUSAGE', `no setting "${key}"`, { hint: `settings: ${r.specs.map(s => s.key).join(', ')}` })
    }
    const presets: Record<string, unknown> = {}
    for (const name of await builtinPresetNames()) {
      const p = await loadPreset(name, r.specs)
      presets[name] = p.settings[spec.key] ?? spec.default
    }
    const cur = r.settings[spec.key]
    if (json) {
      this.log(JSON.stringify({
        key: spec.key, flag: `--${flagName(spec.key)}`, env: envName(spec.key), kind: spec.kind, help: spec.help, details: spec.details ?? null,
        default: spec.secret ? null : spec.default ?? null, presets: spec.secret ? {} : presets,
        current: { value: spec.secret && cur.value !== undefined ? '(set)' : cur.value ?? null, source: cur.source, preset: r.preset.name }
      }, null, 2))
      return
    }
    this.log(`${chalk.bold(spec.key)}  ${chalk.dim(`--${flagName(spec.key)} · ${envName(spec.key)} · ${spec.kind}${spec.choices ? ` (${spec.choices.join('|')})` : ''}`)}`)
    this.log(`  ${spec.help}`)
    if (spec.details) this.log(`  ${spec.details}`)
    this.log(`  default: ${formatOptionValue(spec, spec.default)}`)
    for (const [name, v] of Object.entries(presets)) this.log(`  preset ${name}: ${formatOptionValue(spec, v)}`)
    this.log(`  now: ${chalk.bold(formatOptionValue(spec, cur.value))} from ${cur.source}${cur.source === 'preset' ? ` (${r.preset.name})` : ''}`)
  }
}
