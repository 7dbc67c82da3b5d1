// bench/workloads.js — the workload groups, in run order. Each group runs in a fresh subdirectory of the target's
// directory, with the same input data for every target, and reports one row per metric.
//
// A group is { name, summary, metrics: [{ id, label, unit }], run(w) }. `unit` is 's' (wall seconds, lower is
// better), 'MiB/s' or 'IOPS' (higher is better). run(w) gets the context built in lib/runner.js:
//   w.dir                 fresh, empty subdirectory of the target (created by a child process)
//   w.scale               { fileBytes, smallFiles, treeFiles, fioSeconds } — see lib/config.js
//   w.fixtures            { dataFile, tree: { tar, files, dirs, bytes } } — see lib/fixtures.js
//   w.prep(label, cmd, args)           untimed set-up step; resolves false on failure
//   w.measure(id, { cmd, args, cold, bytes, ops, parse })   timed step; resolves false on failure
// `cold: true` drops the kernel caches (sync + drop_caches=3) first; `parse(result)` may return
// { seconds, value, detail } to replace the wall-clock numbers (fio's IOPS, fsops.js's own timer).
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

/** fio --output-format=json → IOPS of the (group-reported) read side. */
function fioIops(res) {
  const json = JSON.parse(res.stdout.slice(res.stdout.indexOf('{')));
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  return {
    value: job.read.iops,
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
      if (!(await w.measure('seq-read-cold', { ...dd(file, '/dev/null'), cold: true, bytes }))) return;
      await w.measure('seq-read-warm', { ...dd(file, '/dev/null'), bytes });
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
      { id: 'stat', label: 'stat all', unit: 's' },
      { id: 'rename', label: 'rename all', unit: 's' },
      { id: 'unlink', label: 'unlink all', unit: 's' },
    ],
    async run(w) {
      const dir = join(w.dir, 'files');
      const n = String(w.scale.smallFiles);
      const ops = w.scale.smallFiles;
      const fsops = (op) => ({ cmd: process.execPath, args: [FSOPS, op, dir, n], ops, parse: fsopsTimer });
      if (!(await w.measure('create', fsops('create')))) return;
      if (!(await w.measure('ls-cold', { cmd: 'ls', args: ['-l', dir], cold: true, ops }))) return;
      if (!(await w.measure('ls-warm', { cmd: 'ls', args: ['-l', dir], ops }))) return;
      if (!(await w.measure('stat', fsops('stat')))) return;
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
      if (!(await w.measure('find', { cmd: 'find', args: [root], cold: true, ops }))) return;
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
];
