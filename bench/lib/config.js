// bench/lib/config.js — every knob of the harness in one table, read from the environment.
//
//   BENCH_SCALE      quick | full (default full): sizes below
//   BENCH_TARGETS    comma list of target names (default: all registered)
//   BENCH_BACKENDS   comma list of backends: local, sftp, s3 (default: all)
//   BENCH_ENGINES    comma list of fsx engines: kernel, fuse-native (default: both) — filters the fsx targets
//   BENCH_PRESETS    comma list of fsx presets: balanced, high-performance, safe (default: all) — filters fsx targets
//   BENCH_WORKLOADS  comma list of workload group names (default: all)
//   BENCH_REPEATS    how many times a repeatable step (read-only, idempotent) runs; the median is reported
//   BENCH_TIMEOUT    seconds one step may take before it is killed and recorded as 'timeout'
//   BENCH_BUDGET     seconds one target may spend on workloads; groups not started by then are skipped
//   BENCH_DIR        where the per-run work tree (sources, mountpoints, caches of peers) is made (default os tmpdir)
//   BENCH_FSX_BIN    the fsx CLI the fsx-* targets run (default <project>/bin/run.js; a .js file is run with node),
//                    e.g. another worktree's bin/run.js to compare two versions of fsx

import { tmpdir } from 'node:os';

const MiB = 2 ** 20;

/** fsx engines the harness knows (`fsx mount --engine`), in column order: the new one first. */
export const ENGINES = ['kernel', 'fuse-native'];
/** fsx presets benchmarked, in column order. */
export const PRESETS = ['balanced', 'high-performance', 'safe'];
export const BACKENDS = ['local', 'sftp', 's3'];

/**
 * Sizes per scale. full: 256 MiB files, 2,000 small files, 6,000-file tree, 5 s per fio run, 3 s per getattr
 * run; raw+bindfs+rclone take ~2.5 min in all on the 2-core dev machine (rclone, the slowest, ~75 s). quick: the
 * same shapes, smaller; raw+bindfs+rclone in about a minute. The step timeout kills one command; the budget caps
 * the time one target may take (steps are cut short to fit it), so a run stays bounded even when fsx is
 * pathologically slow or hangs: budget = 4× the slowest peer. `repeats`: runs of each repeatable step (median).
 */
export const SCALES = {
  full: {
    fileBytes: 256 * MiB, smallFiles: 2000, treeFiles: 6000, fioSeconds: 5, getattrSeconds: 3, repeats: 3,
    stepTimeoutS: 120, budgetS: 300,
  },
  quick: {
    fileBytes: 32 * MiB, smallFiles: 500, treeFiles: 1500, fioSeconds: 2, getattrSeconds: 1, repeats: 1,
    stepTimeoutS: 30, budgetS: 60,
  },
};

/** Read the harness configuration from `env`; throws on an unknown scale or value. Names are validated by the caller. */
export function readConfig(env = process.env) {
  const scaleName = (env.BENCH_SCALE || 'full').trim();
  const scale = SCALES[scaleName];
  if (!scale) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')} (got ${scaleName})`);
  const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : null);
  const oneOf = (name, known) => {
    const l = list(env[name]);
    for (const x of l ?? []) if (!known.includes(x)) throw new Error(`${name}: unknown ${x} (known: ${known.join(', ')})`);
    return l;
  };
  const seconds = (v, dflt, name) => {
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!(n > 0)) throw new Error(`${name} must be a positive number of seconds (got ${v})`);
    return n;
  };
  let repeats = scale.repeats;
  if (env.BENCH_REPEATS) {
    repeats = Number(env.BENCH_REPEATS);
    if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`BENCH_REPEATS must be a whole number ≥ 1 (got ${env.BENCH_REPEATS})`);
  }
  return {
    scaleName,
    scale: { ...scale, repeats },
    targets: list(env.BENCH_TARGETS),
    backends: oneOf('BENCH_BACKENDS', BACKENDS),
    engines: oneOf('BENCH_ENGINES', ENGINES),
    presets: oneOf('BENCH_PRESETS', PRESETS),
    workloads: list(env.BENCH_WORKLOADS),
    stepTimeoutMs: seconds(env.BENCH_TIMEOUT, scale.stepTimeoutS, 'BENCH_TIMEOUT') * 1000,
    budgetMs: seconds(env.BENCH_BUDGET, scale.budgetS, 'BENCH_BUDGET') * 1000,
    workRoot: env.BENCH_DIR || tmpdir(),
    fsxBin: env.BENCH_FSX_BIN || null,
  };
}

/** A positive whole number from the environment variable `name`, or `dflt` when it is unset or empty. */
export function envInt(name, dflt, env = process.env) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(v)}`);
  return n;
}
