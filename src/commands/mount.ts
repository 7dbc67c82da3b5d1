import { Args, Flags } from '@oclif/core'
import { spawn } from 'node:child_process'
import { mkdir, open } from 'node:fs/promises'
import path from 'node:path'
import { FsxCommand, type ChildFailure } from '../cli/base.js'
import { extractPluginFlags, settingFlags, settingsFromFlags } from '../cli/setting-flags.js'
import { resolveSettings, settingValues } from '../config/resolve.js'
import { parseSource } from '../backend/source.js'
import { EXIT, FsxError, redactSource } from '../errors.js'
import { startMount } from '../mount/service.js'
import { validateSource } from '../mount/backend.js'
import { logDir, mountId } from '../mount/runtime.js'
import { mountState } from '../fuse/unmount.js'

/** How long `--daemon` waits for the mount to answer before giving up. */
const DAEMON_READY_TIMEOUT_MS = 60_000

export default class Mount extends FsxCommand {
  static summary = 'Mount a local directory, SFTP server or S3 bucket as a FUSE filesystem.'
  static description = 'Runs in the foreground until SIGINT/SIGTERM or an unmount (Ctrl-C flushes and unmounts cleanly). ' +
    'With --daemon it returns once the mount answers. Settings come from the preset, the config file, FSX_* variables ' +
    'and flags, in that order of precedence (see fsx tune).'

  static examples = [
    '<%= config.bin %> mount ./data ./mnt',
    '<%= config.bin %> mount ./data ./mnt --preset safe --daemon',
    '<%= config.bin %> mount local:/srv/media /mnt/media --preset high-performance --attr-ttl 30s',
    'FSX_READAHEAD=1M <%= config.bin %> mount file:///data ./mnt'
  ]

  static args = {
    source: Args.string({ required: true, description: 'what to mount: /path, ./path, local:/path, file:///path, or a plugin\'s URL (sftp://…, s3://…)' }),
    mountpoint: Args.string({ required: true, description: 'an existing empty directory' })
  }

  static flags = {
    preset: Flags.string({ char: 'p', summary: 'Preset name (balanced, high-performance, safe) or path to a preset JSON file. [env: FSX_PRESET]' }),
    config: Flags.string({ summary: 'Config file (default: $XDG_CONFIG_HOME/fsx/config.json). [env: FSX_CONFIG]' }),
    daemon: Flags.boolean({ char: 'd', summary: 'Run in the background; exit 0 once the mount answers, non-zero with the reason otherwise.' }),
    'metrics-addr': Flags.string({ summary: 'Serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1). [env: FSX_METRICS_ADDR]', env: 'FSX_METRICS_ADDR' }),
    'log-file': Flags.string({ summary: 'Where a daemon writes its log (default: $XDG_STATE_HOME/fsx/logs/<id>.log).' }),
    ...settingFlags()
  }

  async run (): Promise<void> {
    const registry = await this.backends()
    const { argv, values: pluginValues } = extractPluginFlags(this.argv, registry.options())
    const { args, flags } = await this.parse(Mount, argv)
    const resolved = await resolveSettings({
      preset: flags.preset,
      config: flags.config,
      flags: { ...settingsFromFlags(flags), ...pluginValues },
      extraOptions: registry.options()
    })
    // A malformed source of any scheme is a configuration error (exit 3), found before anything is started.
    const source = parseSource(args.source)
    validateSource(registry, source, settingValues(resolved))
    const mountpoint = path.resolve(args.mountpoint)

    if (flags.daemon) return await this.daemonize(mountpoint, args.source, flags['log-file'])

    const log = (line: string): void => { process.stderr.write(`${new Date().toISOString()} ${line}\n`) }
    const running = await startMount({ source, mountpoint, resolved, registry, log, logFile: flags['log-file'], metricsAddr: flags['metrics-addr'] })
    log(`mounted ${running.backend.description} on ${mountpoint} (preset ${resolved.preset.name}, ${running.engine} engine, pid ${process.pid})`)
    if (process.send) {
      process.send({ type: 'ready' })
      process.disconnect?.()
    }

    let signals = 0
    const onSignal = (sig: string): void => {
      signals++
      if (signals > 1) {
        log(`${sig} again: exiting without a clean unmount`)
        process.exit(1)
      }
      log(`${sig}: flushing and unmounting ${mountpoint}`)
      running.stop({ force: true }).then(() => {
        log('unmounted')
        process.exit(0)
      }, err => {
        log(`unmount failed: ${(err as Error).message}`)
        process.exit(1)
      })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    process.on('SIGHUP', onSignal)
    await running.done
    process.exit(0)
  }

  /**
   * Re-runs this command in the foreground as a detached child and waits for it to report the mount ready. When it
   * fails instead, this process fails with the child's own reason and exit code (sent over IPC by the child's
   * `catch`, see src/cli/base.ts); a child that dies without saying why is described from what it wrote to its log
   * during this run only, never from an earlier run's lines.
   */
  private async daemonize (mountpoint: string, sourceText: string, logFile?: string): Promise<void> {
    const file = logFile ?? path.join(logDir(), `${mountId(mountpoint)}.log`)
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
    const out = await open(file, 'a', 0o600)
    const logStart = (await out.stat()).size
    const bin = path.join(this.config.root, 'bin', 'run.js')
    // The child runs in the foreground and logs to `file`, given once (oclif refuses a flag given twice).
    const childArgs: string[] = []
    for (let i = 0; i < this.argv.length; i++) {
      const a = this.argv[i]
      if (a === '--') { childArgs.push(...this.argv.slice(i)); break }
      if (a === '--daemon' || a === '-d' || a.startsWith('--log-file=')) continue
      if (a === '--log-file') { i++; continue }
      childArgs.push(a)
    }
    const child = spawn(process.execPath, [...process.execArgv, bin, 'mount', ...childArgs, '--log-file', file], {
      detached: true,
      stdio: ['ignore', out.fd, out.fd, 'ipc'],
      env: process.env
    })
    await out.close()
    type Outcome = { ok: true } | { ok: false, failure?: ChildFailure, exitCode: number | null, signal: NodeJS.Signals | null, timedOut?: boolean, spawnError?: Error }
    const outcome = await new Promise<Outcome>(resolve => {
      let failure: ChildFailure | undefined
      const timer = setTimeout(() => {
        child.kill('SIGTERM')
        resolve({ ok: false, exitCode: null, signal: null, timedOut: true })
      }, DAEMON_READY_TIMEOUT_MS)
      child.on('message', (m: any) => {
        if (m?.type === 'ready') { clearTimeout(timer); resolve({ ok: true }) }
        if (m?.type === 'error' && typeof m.message === 'string' && Number.isInteger(m.exitCode)) failure = m as ChildFailure
      })
      child.on('error', err => { clearTimeout(timer); resolve({ ok: false, exitCode: null, signal: null, spawnError: err }) })
      // 'close', not 'exit': it comes after the IPC channel is drained, so a failure the child sent has arrived.
      child.on('close', (exitCode, signal) => { clearTimeout(timer); resolve({ ok: false, failure, exitCode, signal }) })
    })
    if (!outcome.ok) {
      if (outcome.timedOut === true) {
        throw new FsxError('ETIMEDOUT', `the mount did not answer within ${DAEMON_READY_TIMEOUT_MS / 1000}s (log: ${file})`)
      }
      if (outcome.spawnError !== undefined) throw new FsxError('EIO', `cannot start the mount process: ${outcome.spawnError.message}`)
      const f = outcome.failure
      // The child's real exit code; its own words when it sent them.
      const exitCode = outcome.exitCode !== null && outcome.exitCode !== 0 ? outcome.exitCode : f?.exitCode ?? EXIT.failure
      if (f !== undefined) throw new FsxError(f.code, f.message, { hint: f.hint ?? `log: ${file}`, exitCode })
      const said = await errorLineSince(file, logStart)
      const how = outcome.signal !== null ? `was killed by ${outcome.signal}` : `exited with code ${String(outcome.exitCode)} before the mount answered`
      throw new FsxError('EIO', said ?? `the mount process ${how}`, { hint: `log: ${file}`, exitCode })
    }
    // The child reported ready; prove the mount answers from this (non-serving) process.
    if (await mountState(mountpoint) !== 'mounted') {
      throw new FsxError('EIO', `${mountpoint} does not answer after mounting (log: ${file})`)
    }
    child.unref()
    if (child.connected) child.disconnect()
    this.log(`mounted ${redactSource(sourceText)} on ${mountpoint} (pid ${child.pid}, log ${file})`)
  }
}

/** The last "fsx: …" error line written to the log from byte `start` on (this run's part of it), if any. */
async function errorLineSince (file: string, start: number): Promise<string | undefined> {
  let text = ''
  try {
    const fh = await open(file, 'r')
    try {
      const { size } = await fh.stat()
      const buf = Buffer.alloc(Math.max(0, size - start))
      await fh.read(buf, 0, buf.length, start)
      text = buf.toString('utf8')
    } finally {
      await fh.close()
    }
  } catch {
    return undefined
  }
  // eslint-disable-next-line no-control-regex
  const line = text.split('\n').map(l => l.replace(/\u001b\[[0-9;]*m/g, '')).filter(l => /(^|\s)fsx:\s/.test(l)).pop()
  return line?.replace(/^.*?fsx:\s*/, '')
}
