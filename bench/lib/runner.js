// bench/lib/runner.js — runs the selected workload groups against one target: mount (setup), one fresh
// subdirectory per group, timed child processes, peak RSS just before teardown, teardown that always unmounts.
//
// Result shape (one per target; also what results/<ts>.json holds):
//   { name, short, kind, backend, description, status: 'ok'|'failed'|'unavailable', error, notes[],
//     setupSeconds, peakRssKiB, fsType, metrics: { [id]: Metric } }
//   Metric = { group, label, unit, status: 'ok'|'error'|'timeout'|'skipped', value, seconds, error?, detail }
// `value` is in `unit`: seconds for 's', MiB/s, or IOPS. A failed step never stops the run; it is recorded and the
// rest of its group is skipped (later steps depend on earlier ones).

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountAt, mountsUnder, peakRssKiB, unmountFuse } from './mounts.js';
import { lastLine, run } from './proc.js';

const MiB = 2 ** 20;

/** How long setup()/teardown() of a target may take in all, beyond the per-command timeouts inside them. */
const SETUP_LIMIT_MS = 90_000;

/**
 * Run `groups` against `target`. `env` = { cfg, fixtures, workDir, projectRoot, dropCaches: bool, log(line) }.
 * Never throws for anything a target or workload does; returns the target result.
 */
export async function runTarget(target, groups, env) {
  const { cfg, workDir, projectRoot, log } = env;
  const res = {
    name: target.name, short: target.short, kind: target.kind, backend: target.backend,
    description: target.description ?? '', status: 'ok', error: null, notes: [], setupSeconds: null,
    peakRssKiB: null, fsType: null, metrics: {},
  };
  const base = join(workDir, target.name);
  const ctx = {
    projectRoot,
    cfg,
    srcDir: join(base, 'src'),
    mntDir: join(base, 'mnt'),
    tmpDir: join(base, 'tmp'),
    timeouts: { mountMs: 30_000, unmountMs: 20_000 },
  };
  for (const d of [ctx.srcDir, ctx.mntDir, ctx.tmpDir]) mkdirSync(d, { recursive: true });

  const skipAll = (status, why) => {
    for (const g of groups) for (const m of g.metrics) res.metrics[m.id] = metric(g, m, { status, error: why });
  };

  let avail;
  try {
    avail = await target.available(ctx);
  } catch (err) {
    avail = err.message;
  }
  if (avail !== true) {
    res.status = 'unavailable';
    res.error = typeof avail === 'string' ? avail : 'not available';
    skipAll('skipped', res.error);
    log(`${target.name}: unavailable: ${res.error}`);
    cleanupBase(base, res);
    return res;
  }

  log(`${target.name}: setting up (${res.description})`);
  const t0 = Date.now();
  let handle;
  try {
    handle = await withTimeout(target.setup(ctx), SETUP_LIMIT_MS, 'setup');
  } catch (err) {
    res.status = 'failed';
    res.error = lastLine(err?.message ?? String(err)) || 'setup failed';
    skipAll('skipped', `target failed: ${res.error}`);
    log(`${target.name}: FAILED: ${res.error}`);
    res.notes.push(...(await unmountFuse(ctx.mntDir)));
    cleanupBase(base, res);
    return res;
  }
  res.setupSeconds = (Date.now() - t0) / 1000;
  res.fsType = handle.fsType ?? (handle.dir === ctx.srcDir ? 'native' : null);
  log(`${target.name}: ready in ${res.setupSeconds.toFixed(2)} s at ${handle.dir}` +
    (handle.pid ? ` (daemon pid ${handle.pid})` : ''));

  try {
    const deadline = Date.now() + cfg.budgetMs;
    const overBudget = `target budget of ${cfg.budgetMs / 1000} s used up`;
    let hung = null;
    for (const g of groups) {
      const why = hung ?? (Date.now() > deadline ? overBudget : null);
      if (why) {
        for (const m of g.metrics) res.metrics[m.id] = metric(g, m, { status: 'skipped', error: why });
        log(`${target.name}: ${g.name}: skipped (${why})`);
        continue;
      }
      hung = await runGroup(target, g, handle.dir, res, { ...env, deadline, overBudget });
      if (hung) res.notes.push(hung);
    }
  } finally {
    if (handle.pid) res.peakRssKiB = peakRssKiB(handle.pid);
    try {
      const notes = await withTimeout(Promise.resolve(handle.teardown()), SETUP_LIMIT_MS, 'teardown');
      if (Array.isArray(notes)) res.notes.push(...notes);
    } catch (err) {
      res.notes.push(`teardown: ${err.message}`);
    }
    if (mountAt(ctx.mntDir)) res.notes.push(...(await unmountFuse(ctx.mntDir, { pid: handle.pid })));
    cleanupBase(base, res);
    log(`${target.name}: torn down${res.notes.length ? ` (${res.notes.join('; ')})` : ''}`);
  }
  return res;
}

/** Shortest timeout a step gets even when the budget is (nearly) used up. */
const MIN_STEP_MS = 5_000;

/** How long a mount gets to answer `ls -a` after a step timed out before it is declared hung. */
const HEALTH_PROBE_MS = 5_000;

/**
 * Run one group in a fresh subdirectory of `dir`; records its metrics into res.metrics. Returns null, or a reason
 * string when the mount stopped answering (the caller then skips the remaining groups).
 */
async function runGroup(target, g, dir, res, env) {
  const { cfg, fixtures, log, deadline, overBudget } = env;
  // A step may run for the step timeout, but never (much) past the target's budget.
  const stepTimeout = () => Math.min(cfg.stepTimeoutMs, Math.max(MIN_STEP_MS, deadline - Date.now()));
  const sub = join(dir, `bench-${g.name}`);
  let lastFailure = null;
  const record = (m, fields) => {
    res.metrics[m.id] = metric(g, m, fields);
  };

  // `mkdir` without -p: fails if the directory exists, so every group really starts empty.
  const mk = await run('mkdir', [sub], { timeoutMs: cfg.stepTimeoutMs });
  if (!mk.ok) lastFailure = `mkdir ${sub}: ${mk.error}`;

  const w = {
    dir: sub,
    scale: cfg.scale,
    fixtures,
    async prep(label, cmd, args) {
      if (Date.now() > deadline) {
        lastFailure = overBudget;
        return false;
      }
      const r = await run(cmd, args, { timeoutMs: stepTimeout(), stdout: 'ignore' });
      if (!r.ok) lastFailure = `${label}: ${r.error}`;
      return r.ok;
    },
    async measure(id, spec) {
      const m = g.metrics.find((x) => x.id === id);
      if (!m) throw new Error(`workload ${g.name} has no metric ${id}`);
      if (Date.now() > deadline) {
        lastFailure = overBudget;
        return false;
      }
      let cold = null;
      if (spec.cold) cold = await dropCaches(env);
      const r = await run(spec.cmd, spec.args, { timeoutMs: stepTimeout(), stdout: spec.parse ? 'pipe' : 'ignore' });
      if (!r.ok) {
        record(m, { status: r.timedOut ? 'timeout' : 'error', seconds: r.seconds, error: r.error });
        lastFailure = `${id}: ${r.error}`;
        log(`${target.name}: ${g.name}: ${id}: ${r.timedOut ? 'TIMEOUT' : 'ERROR'}: ${r.error}`);
        return false;
      }
      let seconds = r.seconds;
      let value = null;
      let detail = { wallSeconds: r.seconds };
      if (spec.parse) {
        try {
          const p = spec.parse(r);
          if (p.seconds !== undefined) seconds = p.seconds;
          if (p.value !== undefined) value = p.value;
          detail = { ...detail, ...p.detail };
        } catch (err) {
          const error = `could not read ${spec.cmd} output: ${err.message}`;
          record(m, { status: 'error', seconds, error });
          lastFailure = `${id}: ${error}`;
          log(`${target.name}: ${g.name}: ${id}: ERROR: ${error}`);
          return false;
        }
      }
      if (spec.cold) detail.cachesDropped = cold;
      if (m.unit === 's') value = seconds;
      else if (m.unit === 'MiB/s') value = spec.bytes / MiB / seconds;
      if (spec.ops) detail.opsPerSecond = spec.ops / seconds;
      if (spec.bytes && m.unit !== 'MiB/s') detail.mibPerSecond = spec.bytes / MiB / seconds;
      record(m, { status: 'ok', seconds, value, detail });
      log(`${target.name}: ${g.name}: ${id}: ${formatForLog(m.unit, value, seconds)}`);
      return true;
    },
  };

  if (!lastFailure) {
    try {
      await g.run(w);
    } catch (err) {
      lastFailure = `${g.name}: ${err.message}`;
      log(`${target.name}: ${g.name}: ERROR: ${err.message}`);
    }
  }
  for (const m of g.metrics) {
    if (!res.metrics[m.id]) record(m, { status: 'skipped', error: lastFailure ?? 'not reached' });
  }
  // After a timeout, make sure the mount still answers; a hung one would cost a full timeout per later step.
  const timedOut = !mk.ok || g.metrics.some((m) => res.metrics[m.id].status === 'timeout');
  if (timedOut) {
    const probe = await run('ls', ['-a', dir], { timeoutMs: HEALTH_PROBE_MS, stdout: 'ignore' });
    if (!probe.ok) {
      log(`${target.name}: mount stopped answering (ls: ${probe.error}); skipping the rest`);
      return `mount stopped answering after ${g.name} (ls: ${probe.error})`;
    }
  }
  // Untimed cleanup, so the next group starts on an empty, quiet filesystem.
  const rm = await run('rm', ['-rf', sub], { timeoutMs: Math.max(cfg.stepTimeoutMs, 60_000) });
  if (!rm.ok) res.notes.push(`cleanup of ${g.name}: ${rm.error}`);
  return null;
}

/**
 * sync (as a child, it may block on a mount) then drop page cache, dentries and inodes. FUSE kernel caches go with
 * them; a daemon's own user-space caches do not. Returns false when caches could not be dropped.
 */
export async function dropCaches(env) {
  if (!env.dropCaches) return false;
  await run('sync', [], { timeoutMs: env.cfg.stepTimeoutMs });
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function metric(g, m, fields) {
  return {
    group: g.name, label: m.label, unit: m.unit, status: 'ok', value: null, seconds: null, detail: {}, ...fields,
  };
}

function formatForLog(unit, value, seconds) {
  if (unit === 's') return `${seconds.toFixed(3)} s`;
  return `${value.toFixed(unit === 'IOPS' ? 0 : 1)} ${unit} (${seconds.toFixed(3)} s)`;
}

async function withTimeout(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Delete a target's work tree, but never while anything is mounted in it (rm would walk into the mount). */
function cleanupBase(base, res) {
  const left = mountsUnder(base);
  if (left.length) {
    res.notes.push(`left ${base} in place: still mounted: ${left.map((m) => m.mountPoint).join(', ')}`);
    return;
  }
  try {
    rmSync(base, { recursive: true, force: true });
  } catch (err) {
    res.notes.push(`could not remove ${base}: ${err.message}`);
  }
}
