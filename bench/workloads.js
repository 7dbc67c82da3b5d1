// bench/workloads.js — the workload groups, in run order. Each group runs in a fresh subdirectory of the target's
// directory, with the same input data for every target, and reports one row per metric.
//
// A group is { name, summary, metrics: [{ id, label, unit }], run(w) }. `unit` is 's' (wall seconds) or 'µs'
// (lower is better), 'MiB/s', 'IOPS' or 'ops/s' (higher is better). run(w) gets the context built in lib/runner.js:
//   w.dir                 fresh, empty subdirectory of the target (created by a child process)
//   w.scale               { fileBytes, smallFiles, treeFiles, fioSeconds, getattrSeconds, repeats } — lib/config.js
//   w.fixtures            { dataFile, tree: { tar, files, dirs, bytes } } — see lib/fixtures.js
//   w.prep(label, cmd, args)           untimed set-up step; resolves false on failure
//   w.measure(id, { cmd, args, cold, bytes, ops, parse, repeat, cpuMetric })   timed step; false on failure
// `cold: true` drops the kernel caches (sync + drop_caches=3) first; `parse(result)` may return
// { seconds, value, detail, ops } to replace the wall-clock numbers (fio's IOPS, fsops.js's own timer).
// `repeat: true` marks a step that changes nothing (a read, a listing): it runs BENCH_REPEATS times (full: 3) and
// the median counts, each run preceded by its own cache drop when cold. Steps that change the tree run once.
// `cpuMetric`: the id of a 'µs' metric the runner fills with the daemon's CPU time per operation in this step.
// On an fsx target the runner also counts the FUSE requests each step caused (fsx's control socket): the JSON's
// detail.requests / requestsPerOp, and the report's requests table.
//
// A group marked `only: true` runs only on targets that name it in their `groups` (the getattr micro-benchmark
// needs mounts of its own); every other group runs on every target without a `groups` list.
// A group returns early when a step fails; the rows it did not reach are reported as skipped.
// Every command is a child process: the harness never touches the mount itself.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const FSOPS = fileURLToPath(new URL('./lib/fsops.js', import.meta.url));

/** fsops.js's own timer is the measurement; wall time (with Node start-up) goes into the detail. */
function fsopsTimer(res) {
  const line = JSON.parse(res.stdout.trim().split('\n').at(-1));
  return { seconds: line.seconds, detail: { wallSeconds: res.seconds, count: line.count } };
}

/** fsops.js getattr: its summed per-thread rate is the value; the stat() count is the op count. */
function fsopsRate(res) {
  const line = JSON.parse(res.stdout.trim().split('\n').at(-1));
  return { value: line.opsPerSecond, ops: line.count, detail: { wallSeconds: res.seconds, count: line.count } };
}

/** fio --output-format=json → IOPS of the (group-reported) read side. */
function fioIops(res) {
  const json = JSON.parse(res.stdout.slice(res.stdout.indexOf('{')));
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  return {
    value: job.read.iops,
    ops: job.read.total_ios,
    detail: { wallSeconds: res.seconds, ios: job.read.total_ios, latMeanUs: job.read.clat_ns?.mean / 1000 },
  };
}

function dd(from, to, extra = []) {
  return { cmd: 'dd', args: [`if=${from}`, `of=${to}`, 'bs=1M', ...extra] };
}

/** @type {Array<{ name: string, summary: string, metrics: Array<{id: string, label: string, unit: string}>,
 *   run: (w: any) => Promise<void> }>} */
export const workloads = [
  {
    name: 'seqread',
    summary: 'dd a file (bs=1M) to /dev/null: cold (caches dropped), then warm (read again)',
    metrics: [
      { id: 'seq-read-cold', label: 'seq read cold', unit: 'MiB/s' },
      { id: 'seq-read-warm', label: 'seq read warm', unit: 'MiB/s' },
    ],
    async run(w) {
      const file = join(w.dir, 'seq.bin');
      const bytes = w.scale.fileBytes;
      if (!(await w.prep('copy data file in', 'dd', dd(w.fixtures.dataFile, file, ['conv=fsync']).args))) return;
      if (!(await w.measure('seq-read-cold', { ...dd(file, '/dev/null'), cold: true, bytes, repeat: true }))) return;
      await w.measure('seq-read-warm', { ...dd(file, '/dev/null'), bytes, repeat: true });
    },
  },
  {
    name: 'seqwrite',
    summary: 'dd from /dev/zero (bs=1M) into a new file, fsync before dd exits (conv=fsync)',
    metrics: [{ id: 'seq-write-fsync', label: 'seq write + fsync', unit: 'MiB/s' }],
    async run(w) {
      const bytes = w.scale.fileBytes;
      const count = Math.round(bytes / 2 ** 20);
      await w.measure('seq-write-fsync', {
        ...dd('/dev/zero', join(w.dir, 'write.bin'), [`count=${count}`, 'conv=fsync']),
        bytes,
      });
    },
  },
  {
    name: 'randread',
    summary: 'fio 4 KiB random reads, psync, time-based; 1 and 4 jobs, page cache and O_DIRECT; caches dropped first',
    metrics: [
      { id: 'randread-1j', label: 'rand 4K read 1 job', unit: 'IOPS' },
      { id: 'randread-4j', label: 'rand 4K read 4 jobs', unit: 'IOPS' },
      { id: 'randread-1j-direct', label: 'rand 4K read 1 job direct', unit: 'IOPS' },
      { id: 'randread-4j-direct', label: 'rand 4K read 4 jobs direct', unit: 'IOPS' },
    ],
    async run(w) {
      const file = join(w.dir, 'rand.bin');
      if (!(await w.prep('copy data file in', 'dd', dd(w.fixtures.dataFile, file, ['conv=fsync']).args))) return;
      for (const [jobs, direct] of [[1, 0], [4, 0], [1, 1], [4, 1]]) {
        // Each variant stands alone: an O_DIRECT refusal must not hide the buffered numbers.
        await w.measure(`randread-${jobs}j${direct ? '-direct' : ''}`, {
          cmd: 'fio',
          args: [
            '--name=randread', `--filename=${file}`, `--size=${w.scale.fileBytes}`, '--rw=randread', '--bs=4k',
            '--ioengine=psync', `--numjobs=${jobs}`, `--direct=${direct}`, '--time_based',
            `--runtime=${w.scale.fioSeconds}`, '--group_reporting', '--randrepeat=1', '--norandommap',
            // --thread: jobs as threads of one process, so a timeout's kill takes them all.
            '--output-format=json', '--thread',
          ],
          cold: true,
          parse: fioIops,
        });
      }
    },
  },
  {
    name: 'smallfiles',
    summary: 'create N 1 KiB files, ls -l cold/warm, lstat all, rename all, unlink all (one file at a time)',
    metrics: [
      { id: 'create', label: 'create files', unit: 's' },
      { id: 'ls-cold', label: 'ls -l cold', unit: 's' },
      { id: 'ls-warm', label: 'ls -l warm', unit: 's' },
      { id: 'stat', label: 'stat all files', unit: 's' },
      { id: 'rename', label: 'rename all', unit: 's' },
      { id: 'unlink', label: 'unlink all', unit: 's' },
    ],
    async run(w) {
      const dir = join(w.dir, 'files');
      const n = String(w.scale.smallFiles);
      const ops = w.scale.smallFiles;
      const fsops = (op) => ({ cmd: process.execPath, args: [FSOPS, op, dir, n], ops, parse: fsopsTimer });
      if (!(await w.measure('create', fsops('create')))) return;
      if (!(await w.measure('ls-cold', { cmd: 'ls', args: ['-l', dir], cold: true, ops, repeat: true }))) return;
      if (!(await w.measure('ls-warm', { cmd: 'ls', args: ['-l', dir], ops, repeat: true }))) return;
      if (!(await w.measure('stat', { ...fsops('stat'), repeat: true }))) return;
      if (!(await w.measure('rename', fsops('rename')))) return;
      await w.measure('unlink', fsops('unlink'));
    },
  },
  {
    name: 'tree',
    summary: 'untar a node_modules sample, find over it (cold), tar it to a pipe (cold), rm -rf it',
    metrics: [
      { id: 'untar', label: 'untar tree', unit: 's' },
      { id: 'find', label: 'find tree cold', unit: 's' },
      { id: 'tar-read', label: 'tar-read tree cold', unit: 's' },
      { id: 'rm-rf', label: 'rm -rf tree', unit: 's' },
    ],
    async run(w) {
      const { tar, files, dirs, bytes } = w.fixtures.tree;
      const ops = files + dirs;
      const root = join(w.dir, 'node_modules');
      // --no-same-owner: extract as an ordinary user would; not every peer can chown.
      const untar = { cmd: 'tar', args: ['-x', '--no-same-owner', '-f', tar, '-C', w.dir], ops, bytes };
      if (!(await w.measure('untar', untar))) return;
      if (!(await w.measure('find', { cmd: 'find', args: [root], cold: true, ops, repeat: true }))) return;
      // NB: GNU tar skips reading file data when the archive is /dev/null, so the archive goes to a pipe instead.
      // NB: tar exits 1 for "file changed as we read it" — rclone's delayed write-back updates files' times under
      // it. The data was still all read, so 1 counts as success here; 2 (fatal) does not.
      const tarRead = 'tar -c -f - --warning=no-file-changed -C "$1" node_modules | cat > /dev/null; ' +
        's=("${PIPESTATUS[@]}"); [ "${s[0]}" -le 1 ] && [ "${s[1]}" -eq 0 ]';
      if (!(await w.measure('tar-read', {
        cmd: 'bash', args: ['-c', tarRead, 'tar-read', w.dir], cold: true, ops, bytes,
      }))) return;
      await w.measure('rm-rf', { cmd: 'rm', args: ['-rf', root], ops });
    },
  },
  {
    name: 'getattr',
    only: true,
    summary: 'uncached getattr: stat() one file in a loop (1 thread, then 4) on a mount whose kernel attribute ' +
      'cache is off (--attr-ttl 0), so every call is one GETATTR round trip to the daemon',
    metrics: [
      { id: 'getattr-1j', label: 'uncached getattr 1 thread', unit: 'ops/s' },
      { id: 'getattr-4j', label: 'uncached getattr 4 threads', unit: 'ops/s' },
      // The daemon's CPU time per getattr (all its threads, user + system): what a request costs the daemon,
      // much less disturbed by other load on the machine than the rate is.
      { id: 'getattr-1j-cpu', label: 'daemon CPU per getattr, 1 thread', unit: 'µs' },
      { id: 'getattr-4j-cpu', label: 'daemon CPU per getattr, 4 threads', unit: 'µs' },
    ],
    async run(w) {
      // NB: the name stays cached (entry TTL as the preset has it), so the loop makes no LOOKUP; the attributes
      // expire at once (attr_valid 0), so each stat() is one GETATTR. The runner's request counts check that.
      const file = join(w.dir, 'getattr.bin');
      if (!(await w.prep('create the file', 'dd', dd(w.fixtures.dataFile, file, ['count=1', 'conv=fsync']).args))) return;
      for (const jobs of [1, 4]) {
        await w.measure(`getattr-${jobs}j`, {
          cmd: process.execPath, args: [FSOPS, 'getattr', file, String(w.scale.getattrSeconds), String(jobs)],
          parse: fsopsRate, repeat: true, cpuMetric: `getattr-${jobs}j-cpu`,
        });
      }
    },
  },
];
