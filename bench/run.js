#!/usr/bin/env node
// bench/run.js — the benchmark harness (`npm run bench`). Measures and reports; it is not a test and exits 0 even
// when a target fails (the failure is in the report). Exits non-zero only when the harness itself cannot run or
// when it could not unmount something it mounted.
//
// Flow: read config (lib/config.js) → build fixtures once (lib/fixtures.js) → for each target in turn: setup,
// workloads (workloads.js, via lib/runner.js), teardown → tables per backend on stdout, progress on stderr →
// results/<ts>.json, results/<ts>.md, results/latest.md.
//
// Invariant: nothing stays mounted. Targets unmount in teardown; SIGINT/SIGTERM/SIGHUP, an uncaught error and
// process exit all run emergencyUnmountAll() and kill running children first.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKENDS, ENGINES, PRESETS, readConfig, SCALES } from './lib/config.js';
import { ensureDataFile, ensureTreeTar } from './lib/fixtures.js';
import { emergencyUnmountAll, mountsUnder } from './lib/mounts.js';
import { killAllChildren, run } from './lib/proc.js';
import {
  buildTables, engineComparison, footnotes, issueTargets, loadSummary, RATIO_NOTE, renderMarkdown, renderText,
  requestsTables,
} from './lib/report.js';
import { mergeRounds, runTarget } from './lib/runner.js';
import { loadTargets } from './targets.js';
import { workloads } from './workloads.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const PROJECT_ROOT = resolve(BENCH_DIR, '..');
const CACHE_DIR = join(BENCH_DIR, '.cache');
const RESULTS_DIR = join(BENCH_DIR, 'results');

const started = Date.now();
const log = (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

let workDir = null;

installCleanupHandlers();
try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`bench: ${err?.message ?? err}\n`);
  process.exitCode = 1;
} finally {
  finalCleanup();
}

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    const targets = await loadTargets();
    process.stdout.write(usage(targets));
    return 0;
  }
  const cfg = readConfig();
  const allTargets = await loadTargets();
  const targets = select('BENCH_TARGETS', cfg.targets, allTargets, (t) => t.name).filter((t) =>
    (!cfg.backends || cfg.backends.includes(t.backend)) &&
    (t.kind !== 'fsx' || !cfg.engines || cfg.engines.includes(t.engine)) &&
    (t.kind !== 'fsx' || !cfg.presets || cfg.presets.includes(t.preset)));
  const groups = select('BENCH_WORKLOADS', cfg.workloads, workloads, (g) => g.name);
  // A target runs the selected groups it takes: its own `groups` list, else every group not marked `only`.
  const groupsOf = (t) => groups.filter((g) => (t.groups ? t.groups.includes(g.name) : !g.only));
  const plan = targets.map((t) => [t, groupsOf(t)]).filter(([, gs]) => gs.length > 0);
  if (plan.length === 0) throw new Error('nothing to run: no selected target takes any selected workload');

  const dropCaches = canDropCaches();
  log(`scale ${cfg.scaleName}: ${JSON.stringify(cfg.scale)}; step timeout ${cfg.stepTimeoutMs / 1000} s, ` +
    `target budget ${cfg.budgetMs / 1000} s`);
  if (!dropCaches) log('NOTE: /proc/sys/vm/drop_caches is not writable: "cold" results are warm (marked *)');

  log('preparing fixtures in bench/.cache (once)');
  const fixtures = {
    dataFile: ensureDataFile(CACHE_DIR, cfg.scale.fileBytes),
    tree: await ensureTreeTar(CACHE_DIR, PROJECT_ROOT, cfg.scale.treeFiles),
  };
  log(`fixtures: ${fixtures.dataFile}; ${fixtures.tree.tar} (${fixtures.tree.files} files, ${fixtures.tree.dirs} ` +
    `dirs, ${(fixtures.tree.bytes / 2 ** 20).toFixed(1)} MiB)`);

  mkdirSync(cfg.workRoot, { recursive: true });
  workDir = mkdtempSync(join(cfg.workRoot, 'fsx-bench-'));
  const machine = await machineInfo(workDir, dropCaches);

  log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.availableParallelism()} CPUs; ` +
    `${plan.length} targets: ${plan.map(([t]) => t.name).join(', ')}`);
  const env = { cfg, fixtures, workDir, projectRoot: PROJECT_ROOT, dropCaches, log };
  const results = [];
  for (const [target, gs] of plan.filter(([t]) => !t.interleave)) results.push(await runTarget(target, gs, env));
  // Interleaved targets (the getattr table's): every one mounted, run once and unmounted per round, round after
  // round, so a pair compared in a ratio sits side by side in time whatever the machine's other load does; each
  // row's value is the median over the rounds.
  const inter = plan.filter(([t]) => t.interleave);
  const rounds = new Map(inter.map(([t]) => [t.name, []]));
  for (let round = 1; round <= (inter.length ? cfg.scale.repeats : 0); round++) {
    log(`interleaved targets: round ${round} of ${cfg.scale.repeats}`);
    const once = { ...env, cfg: { ...cfg, scale: { ...cfg.scale, repeats: 1 } } };
    for (const [target, gs] of inter) rounds.get(target.name).push(await runTarget(target, gs, once));
  }
  for (const list of rounds.values()) results.push(mergeRounds(list));

  const metricDefs = groups.flatMap((g) => g.metrics);
  const tables = buildTables(results, metricDefs);
  const goals = issueTargets(results, metricDefs);
  const engineChecks = engineComparison(results, metricDefs);
  const notes = footnotes(results);
  const finishedAt = new Date();
  const elapsedSeconds = (Date.now() - started) / 1000;

  // Terminal report.
  const chalk = await loadChalk();
  const width = process.stdout.isTTY ? process.stdout.columns : Infinity;
  let text = `\n${chalk.bold(`fsx bench — scale ${cfg.scaleName}, ${elapsedSeconds.toFixed(0)} s`)}\n${RATIO_NOTE}\n`;
  if (!dropCaches) text += '* caches could not be dropped: "cold" numbers are warm.\n';
  for (const t of tables) text += `\n${chalk.bold(`table: ${t.table}`)}\n${renderText(t, chalk, width)}\n`;
  if (goals.rows.length) text += `\n${chalk.bold('issue 9 targets (local, kernel engine, best preset)')}\n${renderText(goals, chalk, width)}\n`;
  for (const c of engineChecks) text += `\n${c.summary}\n`;
  text += `\nload average (1 min) during the run: ${loadSummary(results)}\n`;
  if (notes.length) text += `\n${notes.map((n) => `- ${n}`).join('\n')}\n`;
  process.stdout.write(text);

  // Files.
  const stamp = finishedAt.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = {
    startedAt: new Date(started).toISOString(), finishedAt: finishedAt.toISOString(), elapsedSeconds,
    scale: cfg.scaleName, sizes: cfg.scale, stepTimeoutSeconds: cfg.stepTimeoutMs / 1000,
    budgetSeconds: cfg.budgetMs / 1000, machine,
    fixtures: { dataFile: fixtures.dataFile, tree: fixtures.tree },
    workloads: groups.map((g) => ({ name: g.name, summary: g.summary, metrics: g.metrics })),
    ratioDefinition: RATIO_NOTE, targets: results, notes,
    issueTargets: goals.rows.map((r) => r.data), engineComparison: engineChecks,
  };
  const md = markdown(json, tables, notes, goals, engineChecks, requestsTables(results, metricDefs));
  writeFileSync(join(RESULTS_DIR, `${stamp}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, `${stamp}.md`), md);
  writeFileSync(join(RESULTS_DIR, 'latest.md'), md);
  log(`wrote bench/results/${stamp}.json, ${stamp}.md and latest.md`);
  return 0;
}

/** Pick the named entries (in the order given) or all; throws listing the valid names on an unknown one. */
function select(envName, names, all, key) {
  if (!names) return all;
  return names.map((n) => {
    const hit = all.find((x) => key(x) === n);
    if (!hit) throw new Error(`${envName}: unknown name ${n} (known: ${all.map(key).join(', ')})`);
    return hit;
  });
}

function canDropCaches() {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

async function machineInfo(dir, dropCaches) {
  const first = async (cmd, args) => {
    const r = await run(cmd, args, { timeoutMs: 10_000 });
    return r.ok ? (r.stdout || r.stderr).trim().split('\n')[0] : null;
  };
  let osName = null;
  try {
    osName = /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
  } catch { /* not Linux-like */ }
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8'));
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? null,
    memTotalBytes: os.totalmem(),
    kernel: os.release(),
    os: osName,
    node: process.version,
    fsx: { version: pkg.version, commit: await first('git', ['-C', PROJECT_ROOT, 'rev-parse', '--short', 'HEAD']) },
    tools: {
      rclone: await first('rclone', ['version']),
      bindfs: await first('bindfs', ['--version']),
      fio: await first('fio', ['--version']),
      tar: await first('tar', ['--version']),
      fusermount3: await first('fusermount3', ['--version']),
      libfuse2: await first('dpkg-query', ['-W', '-f', '${Version}', 'libfuse2']), // what fuse-native links
    },
    workDir: dir,
    workDirFs: await first('stat', ['-f', '-c', '%T', dir]),
    dropCaches,
  };
}

function markdown(json, tables, notes, goals, engineChecks, reqTables) {
  const m = json.machine;
  const out = [
    `# fsx bench — ${json.finishedAt}`,
    '',
    `Scale **${json.scale}** (${describeSizes(json.sizes)}), ${json.elapsedSeconds.toFixed(0)} s in all.  `,
    `Machine: ${m.nproc} CPU (${m.cpu}), ${(m.memTotalBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, ` +
      `${m.os ?? '?'}, Node ${m.node}; work dir on ${m.workDirFs}.  `,
    `Tools: ${Object.entries(m.tools).map(([k, v]) => `${k}: ${v ?? 'missing'}`).join('; ')}.  `,
    `fsx ${m.fsx.version}${m.fsx.commit ? ` @ ${m.fsx.commit}` : ''}.  `,
    `Load average (1 min) at each target's start → end (${m.nproc} CPUs; above ${m.nproc} other work competed ` +
      `for the CPUs): ${loadSummary(json.targets)}.`,
    '',
    RATIO_NOTE,
    m.dropCaches ? 'Cold rows: `sync; echo 3 > /proc/sys/vm/drop_caches` first (kernel caches only).'
      : '\\* /proc/sys/vm/drop_caches was not writable: "cold" rows are warm.',
    '',
  ];
  for (const t of tables) out.push(`## ${t.table}`, '', renderMarkdown(t), '');
  if (goals.rows.length) {
    out.push('## Issue 9 targets (local backend, kernel engine, best preset)', '', renderMarkdown(goals), '');
  }
  for (const c of engineChecks) out.push(c.summary, '');
  if (reqTables.length) {
    out.push('## FUSE requests per operation (fsx targets)', '',
      'FUSE requests fsx received during each step ÷ the step\'s operations (files, entries, stat calls, fio I/Os; ' +
      'MiB for the sequential rows): the total, then the biggest opcodes; `backend` is what fsx asked its backend ' +
      '(SFTP/S3 requests, local file system calls) per operation. From the mount\'s own stats.', '');
    for (const t of reqTables) out.push(`### ${t.table}`, '', renderMarkdown(t), '');
  }
  out.push('## Targets', '');
  for (const r of json.targets) {
    const eng = r.engine?.protocol ? `; engine ${r.engine.engine} (protocol ${r.engine.protocol}` +
      `${r.engine.passthroughOpens !== undefined ? `, ${r.engine.passthroughOpens} passthrough opens, ${r.engine.servedOpens} served` : ''})`
      : r.engine ? `; engine ${r.engine.engine}` : '';
    const load = `; load ${r.load.start[0].toFixed(1)} → ${r.load.end?.[0]?.toFixed(1) ?? '?'}`;
    out.push(`- **${r.name}** (${r.kind}): ${r.description}` +
      (r.status === 'ok' ? `; ready in ${r.setupSeconds?.toFixed(2)} s${eng}${load}` : ` — ${r.status}: ${r.error}`));
  }
  if (notes.length) out.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  out.push('', '## Workloads', '', ...json.workloads.map((g) => `- **${g.name}**: ${g.summary}`), '');
  return out.join('\n');
}

function describeSizes(s) {
  return `${s.fileBytes / 2 ** 20} MiB files, ${s.smallFiles} small files, ${s.treeFiles}-file tree, ` +
    `fio ${s.fioSeconds} s per run, getattr ${s.getattrSeconds} s per run, repeatable steps ×${s.repeats}`;
}

async function loadChalk() {
  try {
    return (await import('chalk')).default;
  } catch {
    const id = (s) => s;
    return { bold: id, red: id, green: id, yellow: id };
  }
}

function usage(targets) {
  return `fsx bench — npm run bench (= npm run build && node bench/run.js)

Environment:
  BENCH_SCALE=quick|full        sizes (default full):
${Object.entries(SCALES).map(([k, s]) => `                                  ${k}: ${describeSizes(s)}`).join('\n')}
  BENCH_TARGETS=a,b,...         targets: ${targets.map((t) => t.name).join(', ')}
  BENCH_BACKENDS=a,b,...        backends: ${BACKENDS.join(', ')}
  BENCH_ENGINES=a,b,...         fsx engines: ${ENGINES.join(', ')} (fsx targets only)
  BENCH_PRESETS=a,b,...         fsx presets: ${PRESETS.join(', ')} (fsx targets only)
  BENCH_WORKLOADS=a,b,...       workloads: ${workloads.map((g) => g.name).join(', ')}
  BENCH_REPEATS=N               runs of each repeatable step, median reported (quick ${SCALES.quick.repeats}, full ${SCALES.full.repeats})
  BENCH_TIMEOUT=SECONDS         per-step timeout (quick ${SCALES.quick.stepTimeoutS}, full ${SCALES.full.stepTimeoutS})
  BENCH_BUDGET=SECONDS          per-target time budget (quick ${SCALES.quick.budgetS}, full ${SCALES.full.budgetS})
  BENCH_DIR=DIR                 where sources and mountpoints are made (default ${os.tmpdir()})
  BENCH_FSX_BIN=PATH            fsx CLI for the fsx-* targets (default bin/run.js; .js runs under node)

Results: bench/results/<timestamp>.json and .md, bench/results/latest.md. See bench/README.md.
`;
}

/** Remove the work tree if (and only if) nothing is mounted in it; report leftovers as an error. */
function finalCleanup() {
  killAllChildren();
  const left = emergencyUnmountAll();
  if (left.length) {
    process.stderr.write(`bench: STILL MOUNTED (unmount by hand): ${left.join(', ')}\n`);
    process.exitCode = 1;
  }
  if (workDir) {
    const under = mountsUnder(workDir);
    if (under.length) {
      process.stderr.write(`bench: not removing ${workDir}: mounted: ${under.map((m) => m.mountPoint).join(', ')}\n`);
      process.exitCode = 1;
    } else {
      try { rmSync(workDir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
    workDir = null;
  }
}

function installCleanupHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: unmounting and exiting\n`);
      finalCleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: uncaught: ${err?.stack ?? err}\n`);
    finalCleanup();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection: ${err?.stack ?? err}\n`);
    finalCleanup();
    process.exit(1);
  });
  process.on('exit', () => {
    killAllChildren();
    emergencyUnmountAll();
  });
}
