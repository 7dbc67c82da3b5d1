import { Args, Flags } from '@oclif/core'
import { spawn } from 'node:child_process'
import { mkdir, open, readFile } from 'node:fs/promises'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { extractPluginFlags, settingFlags, settingsFromFlags } from '../cli/setting-flags.js'
import { resolveSettings } from '../config/resolve.js'
import { parseSource } from '../backend/source.js'
import { FsxError, redactSource } from '../errors.js'
import { startMount } from '../mount/service.js'
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
    const source = parseSource(args.source)
    registry.forSource(source)
    const mountpoint = path.resolve(args.mountpoint)

    if (flags.daemon) return await this.daemonize(mountpoint, args.source, flags['log-file'])

    const log = (line: string): void => { process.stderr.write(`${new Date().toISOString()} ${line}\n`) }
    const running = await startMount({ source, mountpoint, resolved, registry, log, logFile: flags['log-file'], metricsAddr: flags['metrics-addr'] })
    log(`mounted ${running.backend.description} on ${mountpoint} (preset ${resolved.preset.name}, pid ${process.pid})`)
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

  /** Re-runs this command in the foreground as a detached child and waits for it to report the mount ready. */
  private async daemonize (mountpoint: string, sourceText: string, logFile?: string): Promise<void> {
    const file = logFile ?? path.join(logDir(), `${mountId(mountpoint)}.log`)
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
    const out = await open(file, 'a', 0o600)
    const bin = path.join(this.config.root, 'bin', 'run.js')
    const childArgs = this.argv.filter(a => a !== '--daemon' && a !== '-d')
    const child = spawn(process.execPath, [...process.execArgv, bin, 'mount', ...childArgs, '--log-file', file], {
      detached: true,
      stdio: ['ignore', out.fd, out.fd, 'ipc'],
      env: process.env
    })
    await out.close()
    const outcome = await new Promise<{ ok: boolean, message?: string }>(resolve => {
      const timer = setTimeout(() => {
        child.kill('SIGTERM')
        resolve({ ok: false, message: `the mount did not answer within ${DAEMON_READY_TIMEOUT_MS / 1000}s (log: ${file})` })
      }, DAEMON_READY_TIMEOUT_MS)
      child.on('message', (m: any) => {
        if (m?.type === 'ready') { clearTimeout(timer); resolve({ ok: true }) }
      })
      child.on('exit', () => {
        clearTimeout(timer)
        resolve({ ok: false })
      })
    })
    if (!outcome.ok) {
      throw new FsxError('EIO', outcome.message ?? await lastErrorLine(file) ?? `the mount process exited (log: ${file})`)
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

/** The last "fsx: …" error line a failed child wrote to its log. */
async function lastErrorLine (file: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const line = text.split('\n').filter(l => /fsx:/.test(l)).pop()
  return line?.replace(/\u001b\[[0-9;]*m/g, '').replace(/^.*?fsx:\s*/, '')
}
