// bench/targets/local.js — targets for the local backend: the raw directory, fsx with each preset, and the peers
// bindfs and rclone mounting the same kind of local directory.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mountFuse, onPath } from './fuse.js';

/** fsx presets benchmarked, with the short name used in ratio column headers. */
const FSX_PRESETS = [
  ['balanced', 'bal'],
  ['high-performance', 'hp'],
  ['safe', 'safe'],
];

/** The fsx CLI as [cmd, ...leading args]: BENCH_FSX_BIN or the project's bin/run.js; .js files run under node. */
function fsxCli(ctx) {
  const bin = ctx.cfg?.fsxBin ? resolve(ctx.cfg.fsxBin) : join(ctx.projectRoot, 'bin', 'run.js');
  return { bin, argv: /\.[cm]?js$/.test(bin) ? [process.execPath, bin] : [bin] };
}

/**
 * The environment for fsx commands: ours without FSX_* settings, with XDG config/state/cache homes in the target's
 * scratch dir, so neither the user's config file nor their environment changes what a preset means.
 */
function hermeticEnv(ctx) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FSX_')));
  for (const [k, d] of [['XDG_CONFIG_HOME', 'config'], ['XDG_STATE_HOME', 'state'], ['XDG_CACHE_HOME', 'cache']]) {
    env[k] = join(ctx.tmpDir, 'xdg', d);
  }
  return env;
}

function fsxTarget([preset, short]) {
  return {
    name: `fsx-${preset}`,
    short,
    kind: 'fsx',
    backend: 'local',
    description: `fsx mount SRC MNT --preset ${preset} --daemon`,
    async available(ctx) {
      const { bin } = fsxCli(ctx);
      return existsSync(bin) || `${bin} does not exist (yet)`;
    },
    setup(ctx) {
      const [cmd, ...pre] = fsxCli(ctx).argv;
      return mountFuse(ctx, {
        cmd,
        args: [...pre, 'mount', ctx.srcDir, ctx.mntDir, '--preset', preset, '--daemon'],
        cwd: ctx.projectRoot,
        env: hermeticEnv(ctx),
        pidWord: 'mount',
        label: 'fsx mount',
        unmountCmd: [cmd, ...pre, 'unmount', ctx.mntDir],
      });
    },
  };
}

/** @type {import('../targets.js').Target[]} */
export const targets = [
  {
    name: 'raw',
    short: 'raw',
    kind: 'raw',
    backend: 'local',
    description: 'the source directory itself (no FUSE)',
    async available() {
      return true;
    },
    async setup(ctx) {
      return { dir: ctx.srcDir, async teardown() {} };
    },
  },
  ...FSX_PRESETS.map(fsxTarget),
  {
    name: 'bindfs',
    short: 'bindfs',
    kind: 'peer',
    backend: 'local',
    description: 'bindfs SRC MNT (defaults)',
    available: () => onPath('bindfs'),
    setup: (ctx) => mountFuse(ctx, { cmd: 'bindfs', args: [ctx.srcDir, ctx.mntDir] }),
  },
  {
    name: 'rclone',
    short: 'rclone',
    kind: 'peer',
    backend: 'local',
    description: 'rclone mount SRC MNT --vfs-cache-mode full --cache-dir TMP --daemon',
    available: () => onPath('rclone'),
    setup: (ctx) => mountFuse(ctx, {
      cmd: 'rclone',
      args: [
        'mount', ctx.srcDir, ctx.mntDir, '--vfs-cache-mode', 'full', '--cache-dir', join(ctx.tmpDir, 'rclone-cache'),
        // An empty, private config: never read or write the user's rclone.conf (local paths need no remote).
        '--config', join(ctx.tmpDir, 'rclone.conf'), '--daemon',
      ],
      pidWord: 'mount',
    }),
  },
];
