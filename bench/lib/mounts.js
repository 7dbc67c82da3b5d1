// bench/lib/mounts.js — FUSE mount bookkeeping for the harness: is it mounted, wait until it answers, find the
// daemon, read its peak RSS, and take it down again whatever state it is in.
//
// Invariants:
// - Every mount a target makes is track()ed until unmountFuse() has seen it gone; an exit/signal handler calls
//   emergencyUnmountAll() so no run, however it ends, leaves a FUSE mount behind.
// - Only /proc is read in-process. Anything that touches the mounted directory is a child (see proc.js).
// - Only daemons we started are ever killed, by pid.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { run, sleep } from './proc.js';

/** Mounts made and not yet seen unmounted: mountpoint → daemon pid (or null if not found). */
const active = new Map();

/** Parse /proc/self/mountinfo into [{ mountPoint, fsType, source }]. */
export function mountTable() {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').filter(Boolean).map((line) => {
    const [left, right = ''] = line.split(' - ');
    const f = left.split(' ');
    const [fsType, source] = right.split(' ');
    return { mountPoint: unescape(f[4]), fsType, source };
  });
}

/** The mount table entry whose mount point is exactly `mnt`, or null. */
export function mountAt(mnt) {
  return mountTable().findLast((m) => m.mountPoint === mnt) ?? null;
}

/** Mount points at or below `dir` (to refuse deleting a work tree that still has something mounted in it). */
export function mountsUnder(dir) {
  return mountTable().filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(`${dir}/`));
}

/**
 * Wait until `mnt` is a FUSE mount that answers `ls -a` within 5 s. Polls every 200 ms for `timeoutMs` (30 s).
 * Resolves { ok: true } or { ok: false, reason }.
 */
export async function waitForMount(mnt, { timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let reason = 'not in /proc/self/mountinfo';
  while (Date.now() < deadline) {
    const m = mountAt(mnt);
    if (m && m.fsType.startsWith('fuse')) {
      const probe = await run('ls', ['-a', mnt], { timeoutMs: 5_000, stdout: 'ignore' });
      if (probe.ok) return { ok: true, fsType: m.fsType };
      reason = `mounted (${m.fsType}) but ls failed: ${probe.error}`;
    } else if (m) {
      reason = `mounted but as ${m.fsType}, not fuse`;
    }
    await sleep(200);
  }
  return { ok: false, reason: `mount did not answer within ${timeoutMs / 1000} s: ${reason}` };
}

/**
 * Find the FUSE daemon serving `mnt`: a process (not us) whose argv has `mnt` as one argument and, if `word` is
 * given, an argument containing `word` (e.g. 'mount'). Prefers one holding /dev/fuse open. Returns pid or null.
 */
export function findDaemonPid(mnt, { word } = {}) {
  const candidates = [];
  for (const name of safeReaddir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (!argv.includes(mnt) && !argv.includes(`${mnt}/`)) continue;
    if (word && !argv.some((a) => a.includes(word))) continue;
    candidates.push(pid);
  }
  const holdsFuse = candidates.filter(holdsDevFuse);
  return holdsFuse[0] ?? candidates[0] ?? null;
}

/** Peak resident set size of `pid` in KiB (VmHWM), or null if it cannot be read. */
export function peakRssKiB(pid) {
  if (!pid) return null;
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on every Linux architecture). */
const USER_HZ = 100;

/**
 * CPU time and context switches of process `pid` so far, all threads together: { cpuSeconds, ctxSwitches }, or
 * null when it cannot be read. cpuSeconds is user + system time (10 ms resolution); ctxSwitches sums voluntary and
 * involuntary switches over /proc/<pid>/task/* (each one a thread going to sleep or being preempted).
 */
export function processUsage(pid) {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(f[11]) + Number(f[12])) / USER_HZ; // fields 14 and 15: utime, stime
    let ctxSwitches = 0;
    for (const tid of safeReaddir(`/proc/${pid}/task`)) {
      try {
        const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        for (const m of st.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) ctxSwitches += Number(m[1]);
      } catch { /* thread gone */ }
    }
    return { cpuSeconds, ctxSwitches };
  } catch {
    return null;
  }
}

/** True while process `pid` exists (and is not a zombie). */
export function alive(pid) {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Remember a mount for emergency cleanup. */
export function track(mnt, pid) {
  active.set(mnt, pid ?? null);
}

/**
 * Take `mnt` down: `fusermount -u`, then `umount -l` if still mounted, each with a 10 s timeout; if it is still
 * mounted after that and we know the daemon, SIGKILL it (which aborts the FUSE connection) and lazy-unmount again.
 * Then wait up to 5 s for the daemon to exit, SIGTERM/SIGKILL it if it lingers. Returns notes (strings) on
 * anything beyond the first clean step, [] otherwise.
 */
export async function unmountFuse(mnt, { pid = active.get(mnt) ?? null } = {}) {
  const notes = [];
  if (mountAt(mnt)) {
    const r = await run('fusermount', ['-u', mnt], { timeoutMs: 10_000 });
    if (mountAt(mnt)) {
      notes.push(`fusermount -u failed (${r.error ?? 'still mounted'}); used umount -l`);
      await run('umount', ['-l', mnt], { timeoutMs: 10_000 });
    }
    if (mountAt(mnt) && alive(pid)) {
      notes.push(`still mounted; killed daemon ${pid}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await sleep(200);
      await run('umount', ['-l', mnt], { timeoutMs: 10_000 });
    }
    if (mountAt(mnt)) notes.push(`could not unmount ${mnt}`);
  }
  if (pid && !(await waitExit(pid, 5_000))) {
    notes.push(`daemon ${pid} still running after unmount; sent SIGTERM`);
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    if (!(await waitExit(pid, 3_000))) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  if (!mountAt(mnt)) active.delete(mnt);
  return notes;
}

/** Synchronous last-resort cleanup for exit/signal handlers: unmount everything still tracked. */
export function emergencyUnmountAll() {
  for (const [mnt, pid] of active) {
    if (mountAt(mnt)) spawnSync('fusermount', ['-u', mnt], { timeout: 5_000, stdio: 'ignore' });
    if (mountAt(mnt)) spawnSync('umount', ['-l', mnt], { timeout: 5_000, stdio: 'ignore' });
    if (mountAt(mnt) && alive(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      spawnSync('umount', ['-l', mnt], { timeout: 5_000, stdio: 'ignore' });
    }
    if (!mountAt(mnt)) active.delete(mnt);
  }
  return [...active.keys()];
}

async function waitExit(pid, ms) {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

function holdsDevFuse(pid) {
  for (const fd of safeReaddir(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse') return true;
    } catch { /* raced */ }
  }
  return false;
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
