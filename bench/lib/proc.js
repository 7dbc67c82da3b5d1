// bench/lib/proc.js — every command the harness runs goes through run(): a child process in its own process
// group, with a hard timeout after which the whole group is SIGKILLed and the result says `timedOut`.
//
// Invariants:
// - run() never rejects; failures come back as { ok: false, error }.
// - The harness itself never touches a mounted directory; anything that might block on FUSE is a child here, so a
//   hung mount costs one timeout, not the harness. (A FUSE request wait is killable, so SIGKILL does end it.)
// - Every live child group is remembered so an emergency exit can kill them (see killAllChildren()).

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';

/** Process-group leaders of children still running. */
const live = new Set();

/** Bytes of stdout/stderr kept per child (the rest is dropped; benchmark output is tiny or sent to /dev/null). */
const MAX_CAPTURE_BYTES = 1 << 20;

/** After 'exit', how long to wait for the pipes to close (a daemonised grandchild may hold them open). */
const PIPE_GRACE_MS = 300;

/**
 * Run `cmd args` to completion or until `timeoutMs` (default 60 s) passes.
 * Options: cwd, env, timeoutMs, stdout: 'pipe' | 'ignore' (default 'pipe').
 * Resolves { ok, code, signal, timedOut, seconds, stdout, stderr, error? }; `seconds` is wall time spawn→exit.
 */
export function run(cmd, args = [], opts = {}) {
  const { timeoutMs = 60_000, cwd, env = process.env, stdout = 'pipe' } = opts;
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let child;
    try {
      // detached: own process group, so a timeout can kill the command together with anything it forked.
      child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', stdout, 'pipe'] });
    } catch (err) {
      resolve(result({ ok: false, error: `${cmd}: ${err.message}`, seconds: 0 }));
      return;
    }
    const out = [];
    const err = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout?.on('data', (b) => { if (outBytes < MAX_CAPTURE_BYTES) out.push(b); outBytes += b.length; });
    child.stderr?.on('data', (b) => { if (errBytes < MAX_CAPTURE_BYTES) err.push(b); errBytes += b.length; });

    let timedOut = false;
    let seconds = null;
    let settled = false;
    if (child.pid) live.add(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);

    const finish = (code, signal, spawnError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      live.delete(child.pid);
      if (seconds === null) seconds = elapsed(t0);
      const stdoutText = Buffer.concat(out).toString('utf8');
      const stderrText = Buffer.concat(err).toString('utf8');
      const ok = !spawnError && !timedOut && code === 0;
      let error;
      if (spawnError) error = `${cmd}: ${spawnError.message}`;
      else if (timedOut) error = `timed out after ${(timeoutMs / 1000).toFixed(0)} s`;
      else if (!ok) error = lastLine(stderrText) || lastLine(stdoutText) || `${cmd} exited with ${code ?? signal}`;
      resolve(result({ ok, code, signal, timedOut, seconds, stdout: stdoutText, stderr: stderrText, error }));
    };

    child.on('error', (e) => finish(null, null, e));
    child.on('exit', (code, signal) => {
      seconds = elapsed(t0);
      // NB: 'close' waits for the pipes; a daemon forked by the command (bindfs, rclone --daemon, fsx --daemon)
      // can inherit them and keep them open forever, so 'exit' plus a short grace is what ends the wait.
      setTimeout(() => finish(code, signal), PIPE_GRACE_MS).unref();
    });
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** Run `script` with bash -o pipefail (for pipelines and redirections); same options and result as run(). */
export function sh(script, opts = {}) {
  return run('bash', ['-o', 'pipefail', '-c', script], opts);
}

/** Quote one word for bash. */
export function q(word) {
  return `'${String(word).replaceAll("'", "'\\''")}'`;
}

/** The last non-empty line of `text`, trimmed to 240 characters ('' if none). */
export function lastLine(text) {
  const lines = String(text ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.at(-1) ?? '';
  return line.length > 240 ? `${line.slice(0, 237)}...` : line;
}

/**
 * SIGKILL every child group still running (emergency exit path; synchronous). If there were any, blocks 300 ms so
 * they are gone (and no longer hold the mount busy) before the caller unmounts.
 */
export function killAllChildren() {
  const n = live.size;
  for (const pid of live) killGroup(pid);
  live.clear();
  if (n) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * SIGKILL `pid`, its process group and every descendant. NB: the group alone is not enough — fio's job
 * processes call setsid(), and a daemonising mount command detaches the same way; collect them by parent pid
 * before the kill (afterwards they are re-parented and lose the link).
 */
function killGroup(pid) {
  if (!pid) return;
  for (const d of descendants(pid)) {
    try { process.kill(d, 'SIGKILL'); } catch { /* gone */ }
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/** Pids of all descendants of `root`, from the ppid field of /proc/<pid>/stat. */
function descendants(root) {
  const children = new Map();
  let names = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch { /* exited */ }
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    for (const c of children.get(todo.pop()) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

function elapsed(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function result(r) {
  return { ok: false, code: null, signal: null, timedOut: false, seconds: 0, stdout: '', stderr: '', ...r };
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}
