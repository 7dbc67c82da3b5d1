import { Args, Flags } from '@oclif/core'
import { featuresOf } from '../fuse/kernel/features.js'
import path from 'node:path'
import chalk from 'chalk'
import { FsxCommand } from '../cli/base.js'
import { extractPluginFlags, settingFlags, settingsFromFlags } from '../cli/setting-flags.js'
import { envName, flagName, formatOptionValue, rangeText } from '../config/options.js'
import { resolveSettings, type ResolvedSettings } from '../config/resolve.js'
import { builtinPresetNames, loadPreset } from '../config/presets.js'
import { FsxError } from '../errors.js'
import { parseSource } from '../backend/source.js'
import { settingValues } from '../config/resolve.js'
import { ask } from '../control/client.js'
import { adviseFromStats, recommendFromProbe } from '../control/advise.js'
import type { MountSnapshot } from '../control/metrics.js'
import { probeBackend } from '../control/probe.js'
import { createBackend } from '../mount/backend.js'
import { formatSize } from '../config/units.js'

export default class Tune extends FsxCommand {
  static summary = 'Show the resolved settings and where each value came from.'
  static description = 'Precedence, lowest to highest: default < preset < config file < environment (FSX_*) < flag. ' +
    'With --json: {"preset", "settings": {KEY: {"value", "source"}}} (durations in ms, sizes in bytes), or the ' +
    'explanation, probe or advice as an object; an error is {"error": {"code", "message", "hint", "exitCode"}}.'

  static enableJsonFlag = true
  static args = {
    mountpoint: Args.string({ description: 'a running mount: recommend changes from its live figures' })
  }

  static examples = [
    '<%= config.bin %> tune',
    '<%= config.bin %> tune --explain attrTtl',
    '<%= config.bin %> tune --probe sftp://me@host/data',
    '<%= config.bin %> tune ./mnt',
    '<%= config.bin %> tune --preset high-performance --json',
    'FSX_ATTR_TTL=7 <%= config.bin %> tune --json'
  ]

  static flags = {
    preset: Flags.string({ char: 'p', summary: 'Preset name or preset JSON file. [env: FSX_PRESET]' }),
    config: Flags.string({ summary: 'Config file (default: $XDG_CONFIG_HOME/fsx/config.json). [env: FSX_CONFIG]' }),
    probe: Flags.string({ summary: 'Measure a backend (round trip, listing, ranged reads) and recommend a preset and settings.', helpValue: 'SOURCE' }),
    explain: Flags.string({ summary: 'Explain one setting: what it does, its value in each preset, where the current value came from.', helpValue: 'KEY' }),
    ...settingFlags()
  }

  async run (): Promise<Record<string, unknown>> {
    const pluginOptions = await this.pluginOptions()
    const { argv, values: pluginValues } = extractPluginFlags(this.argv, pluginOptions)
    const { args, flags } = await this.parse(Tune, argv)
    const r = await resolveSettings({
      preset: flags.preset,
      config: flags.config,
      flags: { ...settingsFromFlags(flags), ...pluginValues },
      extraOptions: pluginOptions
    })
    if (flags.explain) return await this.explain(r, flags.explain)
    if (flags.probe) return await this.probe(r, flags.probe)
    if (args.mountpoint) return await this.advise(args.mountpoint)
    const settings: Record<string, { value: unknown, source: string }> = {}
    for (const spec of r.specs) {
      const s = r.settings[spec.key]
      settings[spec.key] = { value: spec.secret && s.value !== undefined ? '(set)' : (s.value ?? null), source: s.source }
    }
    this.log(`${chalk.bold('preset')} ${r.preset.name} ${chalk.dim(`(from ${r.presetSource})`)}  ${chalk.dim(r.preset.description)}`)
    if (r.configFile) this.log(`${chalk.bold('config')} ${r.configFile}`)
    const rows = r.specs.map(spec => {
      const s = r.settings[spec.key]
      return [spec.key, formatOptionValue(spec, s.value), s.source, envName(spec.key), rangeText(spec) ?? '']
    })
    const w = [0, 1, 2, 3].map(i => Math.max(...rows.map(row => row[i].length), 6))
    this.log(chalk.dim(`${'setting'.padEnd(w[0])}  ${'value'.padEnd(w[1])}  ${'source'.padEnd(w[2])}  ${'env'.padEnd(w[3])}  range`))
    const colour: Record<string, (s: string) => string> = { default: chalk.dim, preset: chalk.cyan, config: chalk.yellow, env: chalk.magenta, flag: chalk.green }
    for (const [k, v, src, env, range] of rows) {
      this.log(`${k.padEnd(w[0])}  ${v.padEnd(w[1])}  ${(colour[src] ?? String)(src.padEnd(w[2]))}  ${chalk.dim(env.padEnd(w[3]))}  ${range}`.trimEnd())
    }
    return { preset: r.preset.name, presetSource: r.presetSource, configFile: r.configFile ?? null, settings }
  }

  private async explain (r: ResolvedSettings, key: string): Promise<Record<string, unknown>> {
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
    // Which FUSE features (kernel engine) this setting decides, from the engine's declarative list.
    const kernel = featuresOf(spec.key).map(f => ({ feature: `FUSE_${f.flag}`, why: f.why }))
    this.log(`${chalk.bold(spec.key)}  ${chalk.dim(`--${flagName(spec.key)} · ${envName(spec.key)} · ${spec.kind}${spec.choices ? ` (${spec.choices.join('|')})` : ''}`)}`)
    this.log(`  ${spec.help}`)
    if (spec.details) this.log(`  ${spec.details}`)
    this.log(`  default: ${formatOptionValue(spec, spec.default)}`)
    const range = rangeText(spec)
    if (range !== undefined) this.log(`  range: ${range}`)
    for (const [name, v] of Object.entries(presets)) this.log(`  preset ${name}: ${formatOptionValue(spec, v)}`)
    this.log(`  now: ${chalk.bold(formatOptionValue(spec, cur.value))} from ${cur.source}${cur.source === 'preset' ? ` (${r.preset.name})` : ''}`)
    for (const k of kernel) this.log(`  kernel engine: decides ${k.feature}: ${k.why}`)
    return {
      key: spec.key, flag: `--${flagName(spec.key)}`, env: envName(spec.key), kind: spec.kind, help: spec.help, details: spec.details ?? null,
      range: rangeText(spec) === undefined ? null : { min: spec.min ?? null, max: spec.max ?? null, zeroMeansOff: spec.zeroMeansOff === true, text: rangeText(spec) },
      default: spec.secret ? null : spec.default ?? null, presets: spec.secret ? {} : presets,
      current: { value: spec.secret && cur.value !== undefined ? '(set)' : cur.value ?? null, source: cur.source, preset: r.preset.name },
      kernelFeatures: kernel
    }
  }

  private async probe (r: ResolvedSettings, sourceText: string): Promise<Record<string, unknown>> {
    const registry = await this.backends()
    const source = parseSource(sourceText)
    const backend = await createBackend(registry, source, settingValues(r))
    let result
    try {
      result = await probeBackend(backend)
    } finally {
      await backend.close().catch(() => {})
    }
    const rec = recommendFromProbe(result)
    const exports = [`export FSX_PRESET=${rec.preset}`, ...Object.entries(rec.settings).map(([k, v]) => `export ${envName(k)}=${v}`)]
    this.log(`${chalk.bold('probe')} ${backend.description}`)
    this.log(`  metadata round trip ${result.rttMs.toFixed(2)} ms · root listing ${result.listMs.toFixed(2)} ms` +
      (result.readBps !== undefined ? ` · ranged reads ${(result.readBps / 1048576).toFixed(1)} MiB/s over ${formatSize(result.readBytes ?? 0)}` : ' · no file large enough to measure reads'))
    this.log(`${chalk.bold('recommended')} preset ${chalk.cyan(rec.preset)}${Object.keys(rec.settings).length ? ' with ' + Object.entries(rec.settings).map(([k, v]) => `${k}=${v}`).join(', ') : ''}`)
    for (const reason of rec.reasons) this.log(chalk.dim(`  - ${reason}`))
    this.log('')
    for (const e of exports) this.log(e)
    return { source: backend.description, probe: result, recommendation: rec, exports }
  }

  private async advise (mountpoint: string): Promise<Record<string, unknown>> {
    const mp = path.resolve(mountpoint)
    const snap = (await ask(mp, { cmd: 'stats' })).mount as MountSnapshot
    const cur = (await ask(mp, { cmd: 'settings' })).settings as Record<string, unknown>
    const advice = adviseFromStats(snap, cur)
    if (advice.length === 0) {
      this.log(`${mp}: nothing to change from what the live figures show (preset ${snap.preset}).`)
    } else {
      this.log(`${chalk.bold(mp)} ${chalk.dim(`(preset ${snap.preset})`)}: remount with`)
      for (const a of advice) this.log(`  ${chalk.cyan(`export ${envName(a.key)}=${a.value}`)}  ${chalk.dim(`# ${a.reason}`)}`)
    }
    return { mountpoint: mp, preset: snap.preset, advice: advice.map(a => ({ ...a, env: envName(a.key) })) }
  }
}
