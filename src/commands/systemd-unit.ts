import { Args, Flags } from '@oclif/core'
import path from 'node:path'
import { FsxCommand } from '../cli/base.js'
import { parseMountOptions } from '../cli/mount-options.js'
import { parseSource } from '../backend/source.js'
import { CORE_OPTIONS } from '../config/options.js'
import { resolveSettings, settingValues } from '../config/resolve.js'
import { FsxError, redactSource } from '../errors.js'
import { validateSource } from '../mount/backend.js'
import { commandLine, escapePath, unitValue } from '../cli/systemd.js'

export default class SystemdUnit extends FsxCommand {
  static summary = 'Print a systemd unit that mounts SOURCE on MOUNTPOINT at boot, after the network, and stops it cleanly with a flush.'
  static description = 'The default is a .service running `fsx mount` in the foreground: on stop, `fsx unmount` uploads what ' +
    'write-back holds and unmounts, and the service restarts on failure. --type mount prints a .mount unit instead ' +
    '(it needs the mount.fsx helper linked as /sbin/mount.fuse.fsx; on stop the kernel unmounts, and a write-back journal ' +
    'is replayed at the next mount). The options are checked as `fsx mount` would check them; secrets are refused (unit ' +
    'files are readable by every user): give them with --environment-file.'

  static examples = [
    '<%= config.bin %> systemd-unit /mnt/data s3://bucket/prefix -o preset=high-performance,allow_other --environment-file /etc/fsx/data.env > /etc/systemd/system/fsx-mnt-data.service',
    '<%= config.bin %> systemd-unit /mnt/media /srv/media --type mount -o preset=safe'
  ]

  static args = {
    mountpoint: Args.string({ required: true, description: 'an existing empty directory (absolute, or resolved now)' }),
    source: Args.string({ required: true, description: 'what to mount, as for fsx mount' })
  }

  static flags = {
    type: Flags.string({ summary: 'Kind of unit: service (fsx in the foreground) or mount (mount(8) through mount.fsx).', options: ['service', 'mount'], default: 'service' }),
    options: Flags.string({ char: 'o', multiple: true, summary: 'Settings as mount options: preset=NAME,attr_ttl=30s,allow_other (as in /etc/fstab).', helpValue: 'OPTIONS' }),
    'environment-file': Flags.string({ summary: 'KEY=VALUE file for secrets and FSX_* settings (FSX_SFTP_PASSWORD, AWS_ACCESS_KEY_ID…); keep it mode 0600.', helpValue: 'FILE' })
  }

  async run (): Promise<void> {
    const registry = await this.backends()
    const { args, flags } = await this.parse(SystemdUnit)
    const mountpoint = path.resolve(args.mountpoint)
    const options = (flags.options ?? []).flatMap(o => o.split(',')).filter(o => o.trim() !== '')
    if (options.some(o => /^env[-_]?file=/i.test(o))) throw new FsxError('EUSAGE', 'give the environment file with --environment-file, not -o env_file=')
    // Checked now, with what this shell has, so that a typo fails here rather than at boot.
    const o = parseMountOptions(options, [...CORE_OPTIONS, ...registry.options()])
    const resolved = await resolveSettings({ preset: o.preset, config: o.config, flags: o.settings, extraOptions: registry.options(), env: {} })
    validateSource(registry, parseSource(args.source), settingValues(resolved))
    const envFile = flags['environment-file'] === undefined ? undefined : path.resolve(flags['environment-file'])
    const fsx = [process.execPath, path.join(this.config.root, 'bin', 'run.js')]
    const what = `fsx mount of ${redactSource(args.source)} on ${mountpoint}`
    if (flags.type === 'mount') {
      const name = `${escapePath(mountpoint)}.mount`
      const opts = ['_netdev', ...options, ...(envFile === undefined ? [] : [`env_file=${envFile}`])]
      this.log([
        `# ${what}. Save as /etc/systemd/system/${name}; needs: ln -s ${path.join(this.config.root, 'bin', 'mount.fsx.js')} /sbin/mount.fuse.fsx`,
        `# then: systemctl daemon-reload && systemctl enable --now ${name}`,
        '[Unit]',
        `Description=${unitValue(what)}`,
        'Wants=network-online.target',
        'After=network-online.target',
        '',
        '[Mount]',
        `What=${unitValue(args.source)}`,
        `Where=${unitValue(mountpoint)}`,
        'Type=fuse.fsx',
        `Options=${unitValue(opts.join(','))}`,
        'TimeoutSec=2min',
        '',
        '[Install]',
        'WantedBy=remote-fs.target',
        ''
      ].join('\n'))
      return
    }
    const name = `fsx-${escapePath(mountpoint)}.service`
    const mount = [...fsx, 'mount', args.source, mountpoint, ...(options.length > 0 ? ['-o', options.join(',')] : [])]
    this.log([
      `# ${what}. Save as /etc/systemd/system/${name}`,
      `# then: systemctl daemon-reload && systemctl enable --now ${name}`,
      '[Unit]',
      `Description=${unitValue(what)}`,
      'Wants=network-online.target',
      'After=network-online.target',
      `RequiresMountsFor=${unitValue(path.dirname(mountpoint))}`,
      '',
      '[Service]',
      'Type=simple',
      ...(envFile === undefined ? [] : [`EnvironmentFile=${unitValue(envFile)}`]),
      `ExecStart=${commandLine(mount)}`,
      // fsx unmount uploads what write-back holds, then unmounts; the foreground fsx then exits 0. Should it fail
      // (files still open), systemd's SIGTERM makes fsx flush and detach the mount lazily.
      `ExecStop=${commandLine([...fsx, 'unmount', mountpoint])}`,
      'TimeoutStopSec=15min',
      'Restart=on-failure',
      'RestartSec=5s',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      ''
    ].join('\n'))
  }
}
