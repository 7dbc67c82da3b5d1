#!/usr/bin/env node
// bench/vector.js — the vector plugin's benchmark (`npm run bench:vector`; not a test). Issue 12's targets, on a
// local mount with --vector-index:
//
//   - indexing through the mount: N vectors of dimension D (fixed seed, clustered so recall means something) written
//     as .fvecs files with `cp -r` into the mount; the clock runs from the copy's start until the index has applied
//     every change (vector.status: N vectors, nothing pending);
//   - search latency at k=10: one control-socket request per query (connect, JSON, search, answer: what `fsx search`
//     costs without its CLI start), p50/p95/p99 measured here, and the mount's own figure (searchLatencySeconds);
//   - recall@10 against exact brute force (computed here, in float64) on Q queries drawn from the same clusters;
//   - index memory (the plugin's estimate, and the daemon's RSS growth) and the saved index's size.
//
// Environment: VECTOR_N (100000), VECTOR_DIM (128), VECTOR_FILES (100), VECTOR_QUERIES (500), VECTOR_CLUSTERS (100),
// VECTOR_EF ("64,128": one recall/latency row per ef). Prints a Markdown table on stdout, progress on stderr, and
// writes bench/results/vector-<ts>.json. Nothing stays mounted: SIGTERM unmounts; exit and signals clean up.
//
// Invariant: the harness touches the mount only through child processes (cp, the fsx daemon itself) and the
// control socket.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emergencyUnmountAll, mountAt, track, unmountFuse, waitForMount, peakRssKiB, processUsage } from './lib/mounts.js';
import { envInt } from './lib/config.js';
import { run } from './lib/proc.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const { request } = await import(join(ROOT, 'dist/control/client.js'));
const { socketPath } = await import(join(ROOT, 'dist/control/protocol.js'));

const N = envInt('VECTOR_N', 100_000);
const DIM = envInt('VECTOR_DIM', 128);
const FILES = Math.min(envInt('VECTOR_FILES', 100), N);
const Q = envInt('VECTOR_QUERIES', 500);
const CLUSTERS = envInt('VECTOR_CLUSTERS', 100);
const EFS = (process.env.VECTOR_EF ?? '64,128').split(',').map(Number);
const K = 10;
const SEED = 1212;

const started = Date.now();
const log = (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

/** mulberry32: the same data set in every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviates (Box–Muller). */
function gauss(r) {
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/**
 * `n` points around CLUSTERS centres: centres uniform in [-1, 1]^D, points at a spread that keeps clusters apart but
 * not trivially so (neighbours of a query are mostly, not only, in its own cluster).
 */
function clustered(n, r, centres) {
  const g = gauss(r);
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * CLUSTERS);
    for (let d = 0; d < DIM; d++) out[i * DIM + d] = centres[c * DIM + d] + 0.35 * g();
  }
  return out;
}

/** .fvecs bytes of rows [from, to). */
function fvecs(data, from, to) {
  const buf = Buffer.alloc((to - from) * (4 + 4 * DIM));
  let o = 0;
  for (let i = from; i < to; i++) {
    buf.writeInt32LE(DIM, o);
    o += 4;
    for (let d = 0; d < DIM; d++, o += 4) buf.writeFloatLE(data[i * DIM + d], o);
  }
  return buf;
}

/** The exact k nearest rows of `data` to query `q` (squared L2 in float64), as row numbers nearest first. */
function bruteForce(data, q, k) {
  const best = [];
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let d = 0; d < DIM; d++) {
      const x = data[i * DIM + d] - q[d];
      s += x * x;
    }
    if (best.length < k || s < best[best.length - 1][0]) {
      best.push([s, i]);
      best.sort((a, b) => a[0] - b[0]);
      if (best.length > k) best.pop();
    }
  }
  return best.map(([, i]) => i);
}

const quantile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

let work;
let mountProc;
let mnt;
process.on('exit', () => { emergencyUnmountAll(); if (work && !mountAt(mnt)) rmSync(work, { recursive: true, force: true }); });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { mountProc?.kill('SIGKILL'); process.exit(130); });

async function main() {
  work = mkdtempSync(join(os.tmpdir(), 'fsx-bench-vector-'));
  const data = join(work, 'data');
  const staging = join(work, 'staging', 'vectors');
  mnt = join(work, 'mnt');
  for (const d of [data, staging, mnt]) mkdirSync(d, { recursive: true });

  log(`generating ${N} vectors of dimension ${DIM} in ${CLUSTERS} clusters (seed ${SEED}), ${FILES} .fvecs files`);
  const r = rng(SEED);
  const centres = new Float32Array(CLUSTERS * DIM).map(() => r() * 2 - 1);
  const set = clustered(N, r, centres);
  const queries = clustered(Q, r, centres);
  // Rows are spread over the files in order: file f holds rows [f·N/FILES, (f+1)·N/FILES).
  const bounds = Array.from({ length: FILES + 1 }, (_, f) => Math.floor((f * N) / FILES));
  const name = (f) => `/vectors/f${String(f).padStart(4, '0')}.fvecs`;
  for (let f = 0; f < FILES; f++) writeFileSync(join(work, 'staging', name(f)), fvecs(set, bounds[f], bounds[f + 1]));
  const rowOf = new Map(Array.from({ length: FILES }, (_, f) => [name(f), bounds[f]]));

  log('mounting');
  mountProc = spawn(process.execPath, [join(ROOT, 'bin/run.js'), 'mount', data, mnt, '--vector-index', '--cache-dir', join(work, 'cache')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let mountLog = '';
  mountProc.stdout.on('data', (d) => { mountLog += d; });
  mountProc.stderr.on('data', (d) => { mountLog += d; });
  track(mnt, mountProc.pid);
  const up = await waitForMount(mnt, { timeoutMs: 60_000 });
  if (!up.ok) throw new Error(`${up.reason}\n${mountLog}`);
  const sock = socketPath(mnt);
  const ask = async (req, timeoutMs = 60_000) => await request(sock, req, timeoutMs);
  const status = async () => (await ask({ cmd: 'vector.status' })).status;
  const rssBefore = rssKiB(mountProc.pid);

  log(`copying ${FILES} files into the mount and waiting for the index`);
  const cpu0 = processUsage(mountProc.pid);
  const t0 = performance.now();
  const cp = await run('cp', ['-r', staging, mnt], { timeoutMs: 3_600_000 });
  if (!cp.ok) throw new Error(`cp failed: ${cp.error}`);
  const tCopied = performance.now();
  for (;;) {
    const s = await status();
    if (s.vectors === N && s.pending === 0) break;
    if (s.invalidFiles > 0) throw new Error(`files left out of the index: ${JSON.stringify(s.invalid)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const tIndexed = performance.now();
  const cpu1 = processUsage(mountProc.pid);
  const indexCpuSeconds = cpu0 && cpu1 ? cpu1.cpuSeconds - cpu0.cpuSeconds : NaN;
  const indexSeconds = (tIndexed - t0) / 1000;
  log(`indexed in ${indexSeconds.toFixed(1)} s (copy ${((tCopied - t0) / 1000).toFixed(1)} s)`);

  log(`exact neighbours of ${Q} queries (brute force)`);
  const truth = [];
  for (let q = 0; q < Q; q++) truth.push(new Set(bruteForce(set, queries.subarray(q * DIM, (q + 1) * DIM), K)));

  const rows = [];
  for (const ef of EFS) {
    // One warm-up query: the first request of a run pays for connection setup and page faults.
    await ask({ cmd: 'vector.search', vector: Array.from(queries.subarray(0, DIM)), k: K, ef });
    const lat = [];
    let found = 0;
    for (let q = 0; q < Q; q++) {
      const vector = Array.from(queries.subarray(q * DIM, (q + 1) * DIM));
      const a = performance.now();
      const res = await ask({ cmd: 'vector.search', vector, k: K, ef });
      lat.push(performance.now() - a);
      for (const h of res.results) if (truth[q].has(rowOf.get(h.path) + h.index)) found++;
    }
    lat.sort((a, b) => a - b);
    rows.push({ ef, recall: found / (Q * K), p50: quantile(lat, 50), p95: quantile(lat, 95), p99: quantile(lat, 99), qps: 1000 / (lat.reduce((s, x) => s + x, 0) / lat.length) });
    log(`ef ${ef}: recall@10 ${(found / (Q * K)).toFixed(4)}, p99 ${quantile(lat, 99).toFixed(2)} ms`);
  }
  const snap = (await ask({ cmd: 'stats' })).mount;
  const fig = snap.extensions?.vector ?? {};
  const rssAfter = rssKiB(mountProc.pid);

  mountProc.kill('SIGTERM');
  await new Promise((res) => mountProc.once('exit', res));
  const notes = await unmountFuse(mnt, { pid: mountProc.pid });
  const saved = savedIndexBytes(join(work, 'cache'));

  const ok = (b) => (b ? 'yes' : '**no**');
  const r64 = rows.find((x) => x.ef === 64) ?? rows[0];
  const lines = [
    `Vector index (plugins/vector): ${N.toLocaleString('en')} vectors of dimension ${DIM}, ${CLUSTERS} clusters, ` +
      `seed ${SEED}, ${FILES} .fvecs files, local backend, kernel engine; ${Q} queries, k=${K}; ` +
      `${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)} at the end.`,
    '',
    '| target | issue 12 | measured | met |',
    '| :-- | --: | --: | :-: |',
    `| indexing through the mount (vectors/s, cp -r until indexed) | ≥ 5,000 | ${Math.round(N / indexSeconds).toLocaleString('en')} | ${ok(N / indexSeconds >= 5000)} |`,
    `| indexing: vectors per CPU-second of the mount process (all threads) | | ${Math.round(N / indexCpuSeconds).toLocaleString('en')} | |`,
    `| recall@10 at ef ${r64.ef} (vs exact brute force) | ≥ 0.95 | ${r64.recall.toFixed(4)} | ${ok(r64.recall >= 0.95)} |`,
    `| search p99 at k=10, ef ${r64.ef} (ms, control-socket round trip) | ≤ 5 | ${r64.p99.toFixed(2)} | ${ok(r64.p99 <= 5)} |`,
    `| index memory (estimate; daemon RSS growth) | reported | ${mib(fig.indexBytes)} MiB; ${mib((rssAfter - rssBefore) * 1024)} MiB | |`,
    `| saved index on disk | reported | ${mib(saved)} MiB | |`,
    '',
    '| ef | recall@10 | p50 ms | p95 ms | p99 ms | searches/s (one client) |',
    '| --: | --: | --: | --: | --: | --: |',
    ...rows.map((x) => `| ${x.ef} | ${x.recall.toFixed(4)} | ${x.p50.toFixed(2)} | ${x.p95.toFixed(2)} | ${x.p99.toFixed(2)} | ${Math.round(x.qps)} |`),
    '',
    `In the mount (searchLatencySeconds, all searches): p50 ${ms(fig.searchLatencySeconds?.['0.5'])}, ` +
      `p95 ${ms(fig.searchLatencySeconds?.['0.95'])}, p99 ${ms(fig.searchLatencySeconds?.['0.99'])} ms; ` +
      `copy ${((tCopied - t0) / 1000).toFixed(1)} s of the ${indexSeconds.toFixed(1)} s indexing.`,
  ];
  if (notes.length > 0) lines.push('', `unmount: ${notes.join('; ')}`);
  process.stdout.write(lines.join('\n') + '\n');
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `vector-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ N, DIM, FILES, Q, CLUSTERS, SEED, indexSeconds, indexCpuSeconds, copySeconds: (tCopied - t0) / 1000, rows, figures: fig, rssBeforeKiB: rssBefore, rssAfterKiB: rssAfter, savedBytes: saved, load: os.loadavg() }, null, 2));
  log(`results in ${file}`);
  return mountAt(mnt) ? 1 : 0;
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : peakRssKiB(pid);
  } catch {
    return 0;
  }
}

function savedIndexBytes(cache) {
  try {
    const root = join(cache, 'extensions', 'vector');
    const [dir] = readdirSync(root);
    const j = JSON.parse(readFileSync(join(root, dir, 'index.json'), 'utf8'));
    return readFileSync(join(root, dir, `index-${j.generation}.usearch`)).length;
  } catch {
    return 0;
  }
}

const mib = (b) => (typeof b === 'number' ? (b / 1048576).toFixed(1) : '?');
const ms = (s) => (typeof s === 'number' ? (s * 1000).toFixed(2) : '?');

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`bench vector: ${err?.message ?? err}\n`);
  process.exitCode = 1;
} finally {
  mountProc?.kill('SIGTERM');
}
