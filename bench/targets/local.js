// bench/targets/local.js — targets for the local backend: the raw directory, fsx with each preset and each
// engine, and the peers bindfs and rclone mounting the same kind of local directory. Plus the `getattr` table's
// targets: fsx (each preset, each engine) and bindfs mounted with the kernel's attribute cache off, for the
// uncached-getattr micro-benchmark only (see the `getattr` group in workloads.js).

import { join } from 'node:path';
import { ENGINE_SHORT, ENGINE_SUFFIX, PRESET_SHORT, fsxAvailable, fsxEnv, fsxMatrix, mountFsx } from './fsx.js';
import { ENGINES, PRESETS } from '../lib/config.js';
import { mountFuse, onPath } from './fuse.js';

/** The getattr micro-benchmark's mount flags: attributes expire at once, names stay cached (see workloads.js). */
const ATTR_TTL_0 = ['--attr-ttl', '0'];

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
  ...fsxMatrix({
    backend: 'local',
    make: (preset, engine) => ({
      description: `fsx mount SRC MNT --preset ${preset} --engine ${engine} --daemon`,
      available: fsxAvailable(),
      setup: (ctx) => mountFsx(ctx, { source: ctx.srcDir, preset, engine, env: fsxEnv(ctx) }),
    }),
  }),
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
  // The getattr table: the same mounts with attributes never cached by the kernel, running only that group.
  ...PRESETS.flatMap((preset) => ENGINES.map((engine) => ({
    name: `getattr-fsx-${preset}${ENGINE_SUFFIX[engine]}`,
    short: `${PRESET_SHORT[preset]}${ENGINE_SHORT[engine]}`,
    kind: 'fsx',
    backend: 'local',
    table: 'local-getattr',
    groups: ['getattr'],
    interleave: true,
    preset,
    engine,
    description: `fsx mount SRC MNT --preset ${preset} --engine ${engine} --attr-ttl 0 --daemon`,
    available: fsxAvailable(),
    setup: (ctx) => mountFsx(ctx, { source: ctx.srcDir, preset, engine, env: fsxEnv(ctx), extraArgs: ATTR_TTL_0 }),
  }))),
  {
    name: 'getattr-bindfs',
    short: 'bindfs',
    kind: 'peer',
    backend: 'local',
    table: 'local-getattr',
    groups: ['getattr'],
    interleave: true,
    description: 'bindfs -o attr_timeout=0 SRC MNT (libfuse 2 in C: what a native daemon does)',
    available: () => onPath('bindfs'),
    setup: (ctx) => mountFuse(ctx, { cmd: 'bindfs', args: ['-o', 'attr_timeout=0', ctx.srcDir, ctx.mntDir] }),
  },
];
