#!/usr/bin/env node
// bench/lib/fsops.js — metadata workloads run as a child process against a (possibly FUSE) directory:
//   node bench/lib/fsops.js create|stat|rename|unlink DIR COUNT
//   node bench/lib/fsops.js getattr FILE SECONDS JOBS
// Operations are sequential synchronous calls, one file at a time, as most tools do them; so the number measured
// is per-operation latency × COUNT. Prints one JSON line { op, count, seconds } where `seconds` is timed around the
// operations only (Node's ~40 ms start-up would otherwise swamp a 20 ms local run).
//
// Names: create makes f000000…; rename moves f* → r*; unlink removes r*. stat lists DIR and lstat()s every entry.
// getattr: JOBS threads each stat() FILE in a loop for SECONDS (after a short warm-up, started together); prints
// { op, count, seconds, opsPerSecond } where opsPerSecond is the sum of each thread's count ÷ its own time.

import { lstatSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

if (!isMainThread) {
  // A getattr thread: wait for the common start, loop, report.
  const { file, seconds, gate } = workerData;
  parentPort.postMessage(getattrLoop(file, seconds, new Int32Array(gate)));
} else {
  await main();
}

/** stat(file) until `seconds` have passed; checks the clock every 64 calls. Waits on `gate` first if given. */
function getattrLoop(file, seconds, gate) {
  for (let i = 0; i < 200; i++) statSync(file); // warm-up: the name is looked up, the code is hot
  if (gate) {
    Atomics.add(gate, 1, 1);
    Atomics.wait(gate, 0, 0);
  }
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  for (let now = t0; now < end; now = process.hrtime.bigint()) {
    for (let i = 0; i < 64; i++) statSync(file);
    count += 64;
  }
  return { count, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function getattr(file, seconds, jobs) {
  if (jobs === 1) {
    const r = getattrLoop(file, seconds, null);
    return { op: 'getattr', count: r.count, seconds: r.seconds, opsPerSecond: r.count / r.seconds };
  }
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const workers = [];
  const results = [];
  for (let j = 0; j < jobs; j++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { file, seconds, gate } });
    workers.push(w);
    results.push(new Promise((ok, fail) => { w.once('message', ok); w.once('error', fail); }));
  }
  while (Atomics.load(g, 1) < jobs) await new Promise((ok) => setTimeout(ok, 5));
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  const rs = await Promise.all(results);
  const count = rs.reduce((a, r) => a + r.count, 0);
  return {
    op: 'getattr', count, seconds: Math.max(...rs.map((r) => r.seconds)),
    opsPerSecond: rs.reduce((a, r) => a + r.count / r.seconds, 0),
  };
}

async function main() {

/** Size of each small file in bytes: a typical small config/source file. */
const SMALL_FILE_BYTES = 1024;

const [op, dir, countArg, jobsArg] = process.argv.slice(2);
if (op === 'getattr') {
  const seconds = Number(countArg);
  const jobs = Number(jobsArg ?? 1);
  if (!dir || !(seconds > 0) || !Number.isInteger(jobs) || jobs < 1) {
    process.stderr.write('usage: fsops.js getattr FILE SECONDS JOBS\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await getattr(dir, seconds, jobs))}\n`);
  return;
}
const count = Number(countArg);
if (!op || !dir || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: fsops.js create|stat|rename|unlink DIR COUNT | getattr FILE SECONDS JOBS\n');
  process.exit(2);
}

const name = (prefix, i) => `${prefix}${String(i).padStart(6, '0')}`;
const body = Buffer.alloc(SMALL_FILE_BYTES, 'fsx bench small file\n');

let t0;
let done = 0;
switch (op) {
  case 'create':
    mkdirSync(dir, { recursive: true });
    t0 = process.hrtime.bigint();
    for (; done < count; done++) writeFileSync(join(dir, name('f', done)), body);
    break;
  case 'stat': {
    t0 = process.hrtime.bigint();
    for (const entry of readdirSync(dir)) {
      lstatSync(join(dir, entry));
      done++;
    }
    break;
  }
  case 'rename':
    t0 = process.hrtime.bigint();
    for (; done < count; done++) renameSync(join(dir, name('f', done)), join(dir, name('r', done)));
    break;
  case 'unlink':
    t0 = process.hrtime.bigint();
    for (; done < count; done++) unlinkSync(join(dir, name('r', done)));
    break;
  default:
    process.stderr.write(`fsops.js: unknown op ${op}\n`);
    process.exit(2);
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`${JSON.stringify({ op, count: done, seconds })}\n`);
}
