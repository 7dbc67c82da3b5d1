/**
 * The base command: shared behaviour of every fsx command. Any error becomes exactly one readable line on stderr
 * ("fsx: <message> (<hint>)") and a stable exit code (src/errors.ts EXIT); no stack trace reaches the user unless
 * FSX_DEBUG=1. A command started with an IPC channel (the child of `fsx mount --daemon`) also sends that line's
 * parts and the exit code to its parent, which reports them as its own: one mapping, foreground or daemon.
 * Read-out commands set oclif's `enableJsonFlag`; under `--json` an error is printed instead as one JSON object on
 * stdout, `{"error": {"code", "message", "hint", "exitCode"}}`, with the same exit code.
 */
import { Command } from '@oclif/core'
import chalk from 'chalk'
import { exitCodeFor, EXIT } from '../errors.js'
import { loadBackends, type BackendRegistry } from '../backend/registry.js'
import { loadExtensions, type ExtensionRegistry } from '../extension/registry.js'
import type { OptionSpec } from '../config/options.js'

export abstract class FsxCommand extends Command {
  private registryCache?: BackendRegistry
  private extensionsCache?: ExtensionRegistry

  /** Backend definitions from every installed plugin (custom hook event `fsx:backends`). */
  protected async backends (): Promise<BackendRegistry> {
    this.registryCache ??= await loadBackends((event, opts) => this.config.runHook(event as any, opts as any) as any)
    return this.registryCache
  }

  /** Mount extensions from every installed plugin (custom hook event `fsx:mount-extensions`). */
  protected async extensions (): Promise<ExtensionRegistry> {
    this.extensionsCache ??= await loadExtensions((event, opts) => this.config.runHook(event as any, opts as any) as any)
    return this.extensionsCache
  }

  /** Settings rows of every plugin: backends' and mount extensions'. */
  protected async pluginOptions (): Promise<OptionSpec[]> {
    return [...(await this.backends()).options(), ...(await this.extensions()).options()]
  }

  protected errorLine (message: string, hint?: string): string {
    return `${chalk.red('fsx:')} ${firstLine(message)}${hint ? chalk.dim(` (${hint})`) : ''}`
  }

  async catch (err: Error & { code?: string, hint?: string, oclif?: { exit?: number } }): Promise<any> {
    // oclif's own exit (this.exit) and help requests pass through untouched.
    if (err?.oclif?.exit !== undefined && (err as any).code === 'EEXIT') throw err
    if (process.env.FSX_DEBUG === '1') process.stderr.write(`${err?.stack ?? String(err)}\n`)
    const parseError = err?.constructor?.name?.endsWith('FlagsError') || /Nonexistent flag|Unexpected argument|Missing \d+ required arg|Expected --|expected .* to be one of|Parsing --|flag .* expects|can only be specified once/i.test(err?.message ?? '')
    const message = firstLine(err?.message ?? String(err))
    const hint = parseError ? `see: fsx ${this.id ?? ''} --help`.replace(/ +--/, ' --') : err?.hint
    const exitCode = parseError ? EXIT.usage : exitCodeFor(err)
    const code = parseError ? 'EUSAGE' : String(err?.code ?? 'EIO')
    if (this.jsonEnabled()) {
      process.stdout.write(JSON.stringify({ error: { code, message, ...(hint === undefined ? {} : { hint }), exitCode } }, null, 2) + '\n')
    } else {
      process.stderr.write(this.errorLine(message, hint) + '\n')
    }
    await tellParent({ type: 'error', code, message, hint, exitCode })
    process.exitCode = exitCode
    return this.exit(exitCode)
  }
}

/** The message's first line, without a leading "Error: ". */
function firstLine (message: string): string {
  return message.split('\n')[0].replace(/^Error:\s*/, '')
}

/** What a `--daemon` child sends its parent when it fails, before it exits. */
export interface ChildFailure { type: 'error', code: string, message: string, hint?: string, exitCode: number }

/** Sends `msg` over the IPC channel, if this process has one, and waits until it is handed to the channel. */
async function tellParent (msg: ChildFailure): Promise<void> {
  if (typeof process.send !== 'function' || !process.connected) return
  await new Promise<void>(resolve => {
    try {
      process.send!(msg, undefined, {}, () => resolve())
    } catch {
      resolve()
    }
  })
}
