import chalk from 'chalk'
import { FsxCommand } from '../cli/base.js'
import { CORE_OPTIONS, formatOptionValue } from '../config/options.js'
import { DEFAULT_PRESET, builtinPresetNames, loadPreset } from '../config/presets.js'

export default class Presets extends FsxCommand {
  static summary = 'List the built-in presets and what each one sets.'
  static description = 'With --json: {"presets": [{"name", "description", "default", "settings"}]}.'
  static examples = ['<%= config.bin %> presets', '<%= config.bin %> presets --json']
  static enableJsonFlag = true

  async run (): Promise<{ presets: Array<{ name: string, description: string, default: boolean, settings: Record<string, unknown> }> }> {
    await this.parse(Presets)
    const presets = await Promise.all((await builtinPresetNames()).map(n => loadPreset(n, CORE_OPTIONS)))
    for (const p of presets) {
      this.log(`${chalk.bold(p.name)}${p.name === DEFAULT_PRESET ? chalk.dim(' (default)') : ''}`)
      this.log(`  ${p.description}`)
      const parts = CORE_OPTIONS.filter(s => p.settings[s.key] !== undefined)
        .map(s => `${s.key}=${formatOptionValue(s, p.settings[s.key])}`)
      this.log(chalk.dim(`  ${parts.join('  ')}`))
    }
    this.log(chalk.dim('\nUse one with --preset NAME, FSX_PRESET=NAME, or --preset ./my-preset.json.'))
    return { presets: presets.map(p => ({ name: p.name, description: p.description, default: p.name === DEFAULT_PRESET, settings: p.settings })) }
  }
}
