/**
 * The base command: shared behaviour of every fsx command. Any error becomes exactly one readable line on stderr
 * ("fsx: <message> (<hint>)") and a stable exit code (src/errors.ts EXIT); no stack trace reaches the user unless
 * FSX_DEBUG=1.
 */
import { Command } from '@oclif/core'
import chalk from 'chalk'
import { exitCodeFor, EXIT } from '../errors.js'
import { loadBackends, type BackendRegistry } from '../backend/registry.js'

export abstract class FsxCommand extends Command {
  private registryCache?: BackendRegistry

  /** Backend definitions from every installed plugin (custom hook event `fsx:backends`). */
  protected async backends (): Promise<BackendRegistry> {
    this.registryCache ??= await loadBackends((event, opts) => this.config.runHook(event as any, opts as any) as any)
    return this.registryCache
  }

  protected errorLine (message: string, hint?: string): string {
    const first = message.split('\n')[0].replace(/^Error:\s*/, '')
    return `${chalk.red('fsx:')} ${first}${hint ? chalk.dim(` (${hint})`) : ''}`
  }

  async catch (err: Error & { code?: string, hint?: string, oclif?: { exit?: number } }): Promise<any> {
    // oclif's own exit (this.exit) and help requests pass through untouched.
    if (err?.oclif?.exit !== undefined && (err as any).code === 'EEXIT') throw err
    if (process.env.FSX_DEBUG === '1') process.stderr.write(`${err?.stack ?? String(err)}\n`)
    const parseError = err?.constructor?.name?.endsWith('FlagsError') || /Nonexistent flag|Unexpected argument|Missing \d+ required arg|Expected --|expected .* to be one of|Parsing --|flag .* expects/i.test(err?.message ?? '')
    if (parseError) {
      process.stderr.write(this.errorLine(err.message, `see: fsx ${this.id ?? ''} --help`.replace(/ +--/, ' --')) + '\n')
      process.exitCode = EXIT.usage
      return this.exit(EXIT.usage)
    }
    process.stderr.write(this.errorLine(err?.message ?? String(err), err?.hint) + '\n')
    const code = exitCodeFor(err)
    process.exitCode = code
    return this.exit(code)
  }
}
