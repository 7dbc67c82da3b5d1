#!/usr/bin/env node
// bench/lib/fsops.js — metadata workloads run as a child process against a (possibly FUSE) directory:
//   node bench/lib/fsops.js create|stat|rename|unlink DIR COUNT
// Operations are sequential synchronous calls, one file at a time, as most tools do them; so the number measured
// is per-operation latency × COUNT. Prints one JSON line { op, count, seconds } where `seconds` is timed around the
// operations only (Node's ~40 ms start-up would otherwise swamp a 20 ms local run).
//
// Names: create makes f000000…; rename moves f* → r*; unlink removes r*. stat lists DIR and lstat()s every entry.

import { lstatSync, mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Size of each small file in bytes: a typical small config/source file. */
const SMALL_FILE_BYTES = 1024;

const [op, dir, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!op || !dir || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: fsops.js create|stat|rename|unlink DIR COUNT\n');
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
