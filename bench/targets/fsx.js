// bench/targets/fsx.js — what every fsx target shares, whatever the backend: the CLI to run, a hermetic
// environment, the preset × engine matrix, and a mount that checks it got the engine it asked for and can report
// its request counts.
//
// Every fsx target is one preset with one engine: `fsx-<backend-prefix><preset>` runs `--engine kernel` and
// `fsx-<prefix><preset>-fuse-native` runs `--engine fuse-native`. The engine is always named on the command line:
// the default (`auto`) would fall back to fuse-native silently, and a column must measure what its name says —
// setup fails when the mount's stats report another engine.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ENGINES, PRESETS } from '../lib/config.js';
import { engineInfo, fsxSnapshot } from '../lib/fsxstats.js';
import { mountFuse } from './fuse.js';

/** Column-header abbreviations of the presets and engines (ratio columns read e.g. `bal/bindfs`, `bal/bal-fn`). */
export const PRESET_SHORT = { balanced: 'bal', 'high-performance': 'hp', safe: 'safe' };
export const ENGINE_SUFFIX = { kernel: '', 'fuse-native': '-fuse-native' };
export const ENGINE_SHORT = { kernel: '', 'fuse-native': '-fn' };

/** The fsx CLI as { bin, argv }: BENCH_FSX_BIN or the project's bin/run.js; .js files run under node. */
export function fsxCli(ctx) {
  const bin = ctx.cfg?.fsxBin ? resolve(ctx.cfg.fsxBin) : join(ctx.projectRoot, 'bin', 'run.js');
  return { bin, argv: /\.[cm]?js$/.test(bin) ? [process.execPath, bin] : [bin] };
}

/**
 * The environment for fsx commands: ours without FSX_* (and `drop`-matched) settings, XDG config/state/cache homes
 * and FSX_RUNTIME_DIR in the target's scratch dir, so neither the user's config nor their environment changes what
 * a preset means, and the control socket found there is this mount's.
 */
export function fsxEnv(ctx, extra = {}, drop = /^FSX_/) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !drop.test(k)));
  for (const [k, d] of [['XDG_CONFIG_HOME', 'config'], ['XDG_STATE_HOME', 'state'], ['XDG_CACHE_HOME', 'cache']]) {
    env[k] = join(ctx.tmpDir, 'xdg', d);
  }
  env.FSX_RUNTIME_DIR = runtimeDir(ctx);
  return { ...env, ...extra };
}

export function runtimeDir(ctx) {
  return join(ctx.tmpDir, 'run');
}

/** available() of an fsx target: the CLI exists (and `more()` if given). */
export function fsxAvailable(more) {
  return async (ctx) => {
    const { bin } = fsxCli(ctx);
    if (!existsSync(bin)) return `${bin} does not exist (yet)`;
    return more ? more(ctx) : true;
  };
}

/**
 * `fsx mount SOURCE MNT --preset P --engine E --daemon [extraArgs]` through mountFuse(); the handle also has
 * `stats()` (the control socket's snapshot, or null) and `engine` (what the mount reports). Throws when the
 * mount runs another engine than asked for (after unmounting it).
 */
export async function mountFsx(ctx, { source, preset, engine, env, extraArgs = [] }) {
  const [cmd, ...pre] = fsxCli(ctx).argv;
  const handle = await mountFuse(ctx, {
    cmd,
    args: [...pre, 'mount', source, ctx.mntDir, '--preset', preset, '--engine', engine, '--daemon', ...extraArgs],
    cwd: ctx.projectRoot,
    env,
    pidWord: 'mount',
    label: 'fsx mount',
    unmountCmd: [cmd, ...pre, 'unmount', ctx.mntDir],
  });
  const rdir = env.FSX_RUNTIME_DIR;
  const stats = () => fsxSnapshot(rdir);
  const info = engineInfo(await stats());
  if (info && info.engine !== engine) {
    await handle.teardown();
    throw new Error(`asked for --engine ${engine}, the mount runs ${info.engine}`);
  }
  return { ...handle, stats, engine: info };
}

/**
 * The preset × engine matrix of fsx targets for one backend. `name(preset, engine)` and `short(...)` name them;
 * `make(preset, engine)` returns the rest of the definition (description, available, setup).
 */
export function fsxMatrix({ backend, prefix = '', shortPrefix = '', make }) {
  return PRESETS.flatMap((preset) => ENGINES.map((engine) => ({
    name: `fsx-${prefix}${preset}${ENGINE_SUFFIX[engine]}`,
    short: `${shortPrefix}${PRESET_SHORT[preset]}${ENGINE_SHORT[engine]}`,
    kind: 'fsx',
    backend,
    preset,
    engine,
    ...make(preset, engine),
  })));
}
