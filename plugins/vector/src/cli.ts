/**
 * What the plugin's commands share: talking to a running mount through the core's `fsx:control` hook (the plugin
 * imports nothing from the core at run time), and the core's error behaviour — any failure is one line on stderr
 * ("fsx: <message> (<hint>)") and an exit code: 2 for a bad command line or query (EINVAL, a query file that cannot
 * be read), what the core says for the rest (1 general, 4 not a running fsx mount…).
 */
import { Command } from '@oclif/core'
import chalk from 'chalk'
import path from 'node:path'

/** An error with an errno-like code, a hint and the exit code to leave with. */
export class CliError extends Error {
  constructor (readonly code: string, message: string, readonly exitCode = 1, readonly hint?: string) {
    super(message)
  }
}

export abstract class VectorCommand extends Command {
  /**
   * One control request to the fsx mount at `mountpoint` (through the core). Resolves with the response, a failure the
   * mount answered included (`ok: false`); rejects when the mount cannot be asked.
   */
  protected async control (mountpoint: string, request: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const r = await this.config.runHook('fsx:control' as any, { mountpoint: path.resolve(mountpoint), request, timeoutMs } as any) as unknown as {
      successes: Array<{ result: unknown }>, failures: Array<{ error: Error }>
    }
    if (r.failures.length > 0) throw r.failures[0].error
    if (r.successes.length === 0) throw new CliError('EIO', 'this fsx cannot reach mounts (no fsx:control hook answered)')
    return r.successes[0].result as Record<string, unknown>
  }

  /**
   * A `vector.<cmd>` request. A failure the mount answered rejects with a CliError of its code, whose exit code is
   * `refusedExit(code)`; a mount that does not index vectors says so in one line.
   */
  protected async vector (mountpoint: string, cmd: string, fields: Record<string, unknown> = {}, opts: { timeoutMs?: number, refusedExit?: (code: string) => number } = {}): Promise<Record<string, unknown>> {
    const res = await this.control(mountpoint, { cmd: `vector.${cmd}`, ...fields }, opts.timeoutMs)
    if (res.ok === true) return res
    const e = (res.error ?? {}) as { code?: string, message?: string }
    const code = e.code ?? 'EIO'
    if (code === 'EINVAL' && /^unknown command/.test(e.message ?? '')) {
      throw new CliError('ENOTSUP', `${path.resolve(mountpoint)} does not index vectors`, 1, 'mount it with --vector-index (or FSX_VECTOR_INDEX=1)')
    }
    throw new CliError(code, `${code}: ${e.message ?? 'the mount refused the request'}`, opts.refusedExit?.(code) ?? 1)
  }

  async catch (err: Error & { code?: string, hint?: string, exitCode?: number, oclif?: { exit?: number } }): Promise<any> {
    if (err?.oclif?.exit !== undefined && (err as any).code === 'EEXIT') throw err
    if (process.env.FSX_DEBUG === '1') process.stderr.write(`${err?.stack ?? String(err)}\n`)
    const parseError = err?.constructor?.name?.endsWith('FlagsError') || /Nonexistent flag|Unexpected argument|Missing \d+ required arg|Expected --|expected .* to be one of|Parsing --|flag .* expects|can only be specified once|must also be provided|cannot also be provided|Exactly one of|Expected an integer|greater than or equal|less than or equal/i.test(err?.message ?? '')
    const message = (err?.message ?? String(err)).split('\n')[0].replace(/^Error:\s*/, '')
    const hint = parseError ? `see: fsx ${(this.id ?? '').replace(/:/g, ' ')} --help` : err?.hint
    const exitCode = parseError ? 2 : typeof err?.exitCode === 'number' ? err.exitCode : err?.code === 'EUSAGE' ? 2 : err?.code === 'ECONFIG' ? 3 : 1
    process.stderr.write(`${chalk.red('fsx:')} ${message}${hint ? chalk.dim(` (${hint})`) : ''}\n`)
    process.exitCode = exitCode
    return this.exit(exitCode)
  }
}
