// bench/lib/runner.js — runs the selected workload groups against one target: mount (setup), one fresh
// subdirectory per group, timed child processes, peak RSS just before teardown, teardown that always unmounts.
//
// Result shape (one per target; also what results/<ts>.json holds):
//   { name, short, kind, backend, table, preset, engine, engineAsked, description,
//     status: 'ok'|'failed'|'unavailable', error, notes[], setupSeconds, peakRssKiB, fsType,
//     load: { start, end } (1/5/15-min load averages), ops (fsx: per opcode { count, p50Ms, p95Ms } at the end),
//     metrics: { [id]: Metric } }
//   Metric = { group, label, unit, status: 'ok'|'error'|'timeout'|'skipped', value, seconds, error?, detail }
// `value` is in `unit`: seconds for 's', MiB/s, IOPS or ops/s. detail: wallSeconds, load1 (at the start of the
// step), samples (repeated steps: every run's value; the median is `value`), requests and requestsPerOp (fsx: FUSE
// requests by opcode during the step, from the mount's stats), backendRequests and backendRequestsPerOp (fsx: calls
// fsx made to its backend — SFTP/S3 requests, local file system calls), daemonCpuSeconds, daemonCtxSwitches (FUSE targets:
// the daemon's CPU time and thread switches during the step) and, per op, daemonCpuUsPerOp and
// daemonCtxSwitchesPerOp, opsPerSecond, mibPerSecond, cachesDropped. A step with `cpuMetric` also fills that
// metric (unit µs, lower is better) with daemonCpuUsPerOp.
// A failed step never stops the run; it is recorded and the rest of its group is skipped (later steps depend on
// earlier ones).

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { backendDelta, engineInfo, opsDelta } from './fsxstats.js';
import { mountAt, mountsUnder, peakRssKiB, processUsage, unmountFuse } from './mounts.js';
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
    table: target.table ?? target.backend, preset: target.preset ?? null, engine: null,
    engineAsked: target.engine ?? null, description: target.description ?? '', status: 'ok', error: null, notes: [],
    setupSeconds: null, peakRssKiB: null, fsType: null, load: { start: loadavg(), end: null }, ops: null, metrics: {},
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
      hung = await runGroup(target, g, handle.dir, res, { ...env, deadline, overBudget, stats: handle.stats, pid: handle.pid });
      if (hung) res.notes.push(hung);
    }
  } finally {
    if (handle.pid) res.peakRssKiB = peakRssKiB(handle.pid);
    if (handle.stats) {
      const snap = await handle.stats();
      res.engine = engineInfo(snap) ?? handle.engine ?? null;
      // Per opcode: requests over the whole mount, and fsx's own handling time (p50/p95 ms, request in → reply).
      res.ops = snap?.ops ? Object.fromEntries(Object.entries(snap.ops)
        .map(([k, v]) => [k, { count: v.count, p50Ms: v.p50Ms, p95Ms: v.p95Ms }])) : null;
    }
    res.load.end = loadavg();
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

/**
 * One result from the results of several rounds of the same target (interleaved targets): each metric's value is
 * the median of the rounds that measured it (detail from that round, plus `samples` and `rounds`), peak RSS the
 * highest, setup time the median, notes all of them. A target that failed in every round stays failed.
 */
export function mergeRounds(list) {
  if (list.length === 1) return list[0];
  const ok = list.filter((r) => r.status === 'ok');
  if (!ok.length) return { ...list[0], notes: list.flatMap((r) => r.notes) };
  const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
  const out = {
    ...ok.at(-1),
    notes: list.flatMap((r) => r.notes),
    setupSeconds: median(ok.map((r) => r.setupSeconds)),
    peakRssKiB: Math.max(...ok.map((r) => r.peakRssKiB ?? 0)) || null,
    load: { start: list[0].load.start, end: list.at(-1).load.end },
    rounds: list.length,
    metrics: {},
  };
  if (ok.length < list.length) out.notes.push(`${list.length - ok.length} of ${list.length} rounds failed`);
  for (const id of Object.keys(ok[0].metrics)) {
    const good = ok.map((r) => r.metrics[id]).filter((m) => m?.status === 'ok');
    if (!good.length) {
      out.metrics[id] = ok[0].metrics[id];
      continue;
    }
    const key = (m) => (m.unit === 's' || m.unit === 'µs' ? m.value : -m.value);
    const med = [...good].sort((a, b) => key(a) - key(b))[(good.length - 1) >> 1];
    out.metrics[id] = { ...med, detail: { ...med.detail, samples: good.map((m) => m.value), rounds: good.length } };
  }
  return out;
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
  const { cfg, fixtures, log, deadline, overBudget, stats, pid } = env;
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
      const runs = spec.repeat ? cfg.scale.repeats : 1;
      const samples = [];
      for (let i = 0; i < runs; i++) {
        if (Date.now() > deadline) {
          if (samples.length) break; // what was measured counts; the budget cut the repeats short
          lastFailure = overBudget;
          return false;
        }
        const s = await sample(spec, m);
        if (!s.ok) {
          record(m, { status: s.timedOut ? 'timeout' : 'error', seconds: s.seconds, error: s.error });
          lastFailure = `${id}: ${s.error}`;
          log(`${target.name}: ${g.name}: ${id}: ${s.timedOut ? 'TIMEOUT' : 'ERROR'}: ${s.error}`);
          return false;
        }
        samples.push(s);
      }
      // The median run (by the value the row shows); all of them in the detail.
      const key = (s) => (m.unit === 's' ? s.seconds : -s.value);
      const sorted = [...samples].sort((a, b) => key(a) - key(b));
      const med = sorted[(sorted.length - 1) >> 1];
      const detail = { ...med.detail };
      if (samples.length > 1) {
        detail.samples = samples.map((s) => (m.unit === 's' ? s.seconds : s.value));
      }
      const ops = samples.reduce((a, s) => a + (s.ops ?? 0), 0);
      if (ops > 0 && samples.every((s) => s.usage)) {
        // The daemon's own cost per operation, whatever else competes for the CPUs: CPU time and thread switches.
        detail.daemonCpuUsPerOp = (samples.reduce((a, s) => a + s.usage.cpuSeconds, 0) / ops) * 1e6;
        detail.daemonCtxSwitchesPerOp = samples.reduce((a, s) => a + s.usage.ctxSwitches, 0) / ops;
      }
      const requests = sumRequests(samples.map((s) => s.requests));
      if (requests) {
        detail.requests = requests;
        // Per operation where the step counts them (files, entries, stat calls, fio I/Os), else per MiB moved.
        const per = ops > 0 ? ops : spec.bytes ? (samples.length * spec.bytes) / MiB : 0;
        if (per > 0) detail.requestsPerOp = Object.fromEntries(Object.entries(requests).map(([k, v]) => [k, v / per]));
        if (per > 0 && !(ops > 0)) detail.requestsPer = 'MiB';
        if (samples.every((s) => s.backend !== null)) {
          detail.backendRequests = samples.reduce((a, s) => a + s.backend, 0);
          if (per > 0) detail.backendRequestsPerOp = detail.backendRequests / per;
        }
      }
      record(m, { status: 'ok', seconds: med.seconds, value: med.value, detail });
      if (spec.cpuMetric && detail.daemonCpuUsPerOp !== undefined) {
        const cm = g.metrics.find((x) => x.id === spec.cpuMetric);
        record(cm, {
          status: 'ok', seconds: null, value: detail.daemonCpuUsPerOp,
          detail: { ctxSwitchesPerOp: detail.daemonCtxSwitchesPerOp, from: id },
        });
      }
      const spread = samples.length > 1 ? ` [${detail.samples.map((v) => fmtNum(m.unit, v)).join(', ')}]` : '';
      log(`${target.name}: ${g.name}: ${id}: ${formatForLog(m.unit, med.value, med.seconds)}${spread}` +
        (detail.requestsPerOp ? ` ${formatRequests(detail.requestsPerOp)}` : ''));
      return true;
    },
  };

  /** One timed run of a step: cache drop if cold, request counts around it (fsx), the command, its numbers. */
  async function sample(spec, m) {
    let cold = null;
    if (spec.cold) cold = await dropCaches(env);
    const load1 = loadavg()[0];
    const before = stats ? await stats() : null;
    const use0 = processUsage(pid);
    const r = await run(spec.cmd, spec.args, { timeoutMs: stepTimeout(), stdout: spec.parse ? 'pipe' : 'ignore' });
    const use1 = processUsage(pid);
    const after = before ? await stats() : null;
    if (!r.ok) return { ok: false, timedOut: r.timedOut, seconds: r.seconds, error: r.error };
    let seconds = r.seconds;
    let value = null;
    let ops = spec.ops;
    let detail = { wallSeconds: r.seconds, load1 };
    if (spec.parse) {
      try {
        const p = spec.parse(r);
        if (p.seconds !== undefined) seconds = p.seconds;
        if (p.value !== undefined) value = p.value;
        if (p.ops !== undefined) ops = p.ops;
        detail = { ...detail, ...p.detail };
      } catch (err) {
        return { ok: false, seconds, error: `could not read ${spec.cmd} output: ${err.message}` };
      }
    }
    if (spec.cold) detail.cachesDropped = cold;
    if (m.unit === 's') value = seconds;
    else if (m.unit === 'MiB/s') value = spec.bytes / MiB / seconds;
    if (ops) detail.opsPerSecond = ops / seconds;
    if (spec.bytes && m.unit !== 'MiB/s') detail.mibPerSecond = spec.bytes / MiB / seconds;
    const usage = use0 && use1
      ? { cpuSeconds: use1.cpuSeconds - use0.cpuSeconds, ctxSwitches: use1.ctxSwitches - use0.ctxSwitches } : null;
    if (usage) {
      detail.daemonCpuSeconds = usage.cpuSeconds;
      detail.daemonCtxSwitches = usage.ctxSwitches;
    }
    return { ok: true, seconds, value, ops, detail, usage, requests: opsDelta(before, after), backend: backendDelta(before, after) };
  }

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
  return `${fmtNum(unit, value)} ${unit} (${seconds.toFixed(3)} s)`;
}

function fmtNum(unit, v) {
  return unit === 's' ? v.toFixed(3) : v.toFixed(unit === 'MiB/s' ? 1 : 0);
}

/** "req/op: getattr 1.00, lookup 0.01" — the biggest few. */
function formatRequests(perOp) {
  const top = Object.entries(perOp).sort((a, b) => b[1] - a[1]).slice(0, 6);
  return `req/op: ${top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`;
}

/** Sum per-opcode counts over samples (null when none had counts). */
function sumRequests(list) {
  const present = list.filter(Boolean);
  if (!present.length) return null;
  const out = {};
  for (const r of present) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
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
