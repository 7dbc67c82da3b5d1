/**
 * fsx's help class (package.json `oclif.helpClass`): oclif's own, plus the backend plugins' settings in the help of
 * the commands that take them, one section per backend ("SFTP FLAGS", "S3 FLAGS", a third-party plugin's too).
 *
 * Why here: those flags come from the plugins' definitions (`options`), known only once the `fsx:backends` hook has
 * run, while oclif's manifest is static. The commands take them out of argv themselves (src/cli/setting-flags.ts
 * `extractPluginFlags`); this shows them, in oclif's format, by adding them to the command's flags for help only.
 */
import { Help, type Command } from '@oclif/core'
import { loadBackends } from '../backend/registry.js'
import { envName, flagName, rangeText } from '../config/options.js'

/** The commands that accept backend settings as flags. */
const TAKES_BACKEND_FLAGS = new Set(['mount', 'tune', 'conformance', 'systemd-unit'])

export default class FsxHelp extends Help {
  async showCommandHelp (command: Command.Loadable): Promise<void> {
    if (!TAKES_BACKEND_FLAGS.has(command.id)) return await super.showCommandHelp(command)
    const registry = await loadBackends((event, opts) => this.config.runHook(event as any, opts as any) as any)
    const flags: Record<string, unknown> = { ...command.flags }
    for (const def of registry.definitions()) {
      for (const spec of def.options ?? []) {
        const range = rangeText(spec)
        const summary = `${spec.help} [env: ${envName(spec.key)}]${range === undefined ? '' : ` [range: ${range}]`}`
        const helpGroup = def.name.toUpperCase()
        flags[flagName(spec.key)] = spec.kind === 'boolean'
          ? { name: flagName(spec.key), type: 'boolean', allowNo: true, summary, helpGroup }
          : { name: flagName(spec.key), type: 'option', multiple: false, summary, helpGroup, helpValue: spec.choices ? spec.choices.join('|') : ({ duration: 'DURATION', size: 'SIZE', count: 'N' } as Record<string, string>)[spec.kind] ?? 'VALUE' }
      }
    }
    await super.showCommandHelp({ ...command, flags } as Command.Loadable)
  }
}
