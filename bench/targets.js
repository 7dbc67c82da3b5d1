// bench/targets.js — the target registry. A target is a plain definition object; target modules export
// `targets` (an array of them) and are listed in TARGET_MODULES. A new backend: write bench/targets/<b>.js
// exporting `targets` (use mountFuse() from ./targets/fuse.js, mountFsx() from ./targets/fsx.js) and add it to the
// list. Targets are grouped into one report table per `table` (default: their `backend`); in each, kernel-engine
// fsx targets are compared with the `raw` and `peer` targets and with their fuse-native twin.
//
// @typedef {object} Target
// @property {string} name        unique, used in BENCH_TARGETS and as a column header
// @property {string} [short]     column-header abbreviation for ratio columns (default: name)
// @property {'raw'|'fsx'|'peer'} kind
// @property {'local'|'sftp'|'s3'} backend
// @property {string} [table]     report table it lands in (default: backend), e.g. 'local-getattr'
// @property {string[]} [groups]  the only workload groups it runs; without it, every group not marked `only`
// @property {boolean} [interleave]  run once per round (BENCH_REPEATS rounds) in turn with the other interleaved
//                                 targets, after the rest; values are medians over the rounds (the getattr table)
// @property {string} [preset]    fsx targets: the preset (BENCH_PRESETS filters on it)
// @property {'kernel'|'fuse-native'} [engine]  fsx targets: the engine (BENCH_ENGINES filters on it)
// @property {string} [description]
// @property {(ctx: SetupContext) => Promise<boolean|string>} available  true, or the reason it cannot run
// @property {(ctx: SetupContext) => Promise<Handle>} setup  throws Error(one line) when it cannot mount
//
// @typedef {object} SetupContext
// @property {string} projectRoot  /work/main (absolute)
// @property {object} cfg          the harness configuration (lib/config.js), for target-specific knobs
// @property {string} srcDir       empty directory to serve (local backends; others may ignore it)
// @property {string} mntDir       empty directory to mount on
// @property {string} tmpDir       scratch space for the target (caches, configs)
// @property {{ mountMs: number, unmountMs: number }} timeouts
//
// @typedef {object} Handle
// @property {string} dir          where the workloads run
// @property {number} [pid]        FUSE daemon pid, for peak RSS (VmHWM, read just before teardown)
// @property {() => Promise<string[]|void>} teardown  unmounts; returns notes on anything unusual
// @property {() => Promise<object|null>} [stats]  fsx: the mount's stats snapshot (per-op request counts…)
// @property {object} [engine]     fsx: what the mount reports of its engine (lib/fsxstats.js engineInfo)

import { ENGINES } from './lib/config.js';

const TARGET_MODULES = ['./targets/local.js', './targets/sftp.js', './targets/s3.js'];

const KINDS = new Set(['raw', 'fsx', 'peer']);
const BACKENDS = new Set(['local', 'sftp', 's3']);

/** Load every target module; returns the targets in registration order. Throws on a malformed definition. */
export async function loadTargets() {
  const all = [];
  for (const mod of TARGET_MODULES) {
    const { targets } = await import(mod);
    for (const t of targets) {
      const where = `${mod}: target ${t?.name}`;
      if (!t?.name || all.some((o) => o.name === t.name)) throw new Error(`${where}: missing or duplicate name`);
      if (!KINDS.has(t.kind)) throw new Error(`${where}: kind must be one of ${[...KINDS]}`);
      if (!BACKENDS.has(t.backend)) throw new Error(`${where}: backend must be one of ${[...BACKENDS]}`);
      if (typeof t.available !== 'function' || typeof t.setup !== 'function') {
        throw new Error(`${where}: available() and setup() are required`);
      }
      if (t.kind === 'fsx' && !ENGINES.includes(t.engine)) throw new Error(`${where}: engine must be one of ${ENGINES}`);
      all.push({ short: t.name, table: t.backend, ...t });
    }
  }
  return all;
}
