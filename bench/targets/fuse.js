// bench/targets/fuse.js — the one way a target module mounts something: run the mount command (with a timeout),
// wait until the mount answers, find its daemon, and hand back a teardown that always leaves nothing mounted.
// Target modules for other backends (SFTP, S3) use mountFuse() too, so they get the same guarantees.

import { findDaemonPid, mountAt, track, unmountFuse, waitForMount } from '../lib/mounts.js';
import { run } from '../lib/proc.js';

/**
 * Mount with `cmd args` (which must return once mounted or daemonise) and return a target handle
 * { dir, pid, teardown }. `pidWord`: an argv word the daemon has besides the mountpoint (e.g. 'mount').
 * `unmountCmd`: optional [cmd, ...args] tried before fusermount (e.g. fsx's own `unmount`).
 * `env`: environment for the mount and unmount commands (default: ours).
 * `label`: how the mount command is named in an error line (default: cmd and its first argument).
 * Throws Error(one line) when the mount fails; nothing is left mounted or running in that case.
 */
export async function mountFuse(ctx, { cmd, args, cwd, env, pidWord, unmountCmd, label = `${cmd} ${args[0] ?? ''}` }) {
  const mnt = ctx.mntDir;
  track(mnt, null);
  const r = await run(cmd, args, { cwd, env, timeoutMs: ctx.timeouts.mountMs });
  if (!r.ok) {
    await cleanupFailed(mnt, pidWord);
    throw new Error(`${label.trim()}: ${r.error}`.replace(/\s+/g, ' '));
  }
  const ready = await waitForMount(mnt, { timeoutMs: ctx.timeouts.mountMs });
  if (!ready.ok) {
    await cleanupFailed(mnt, pidWord);
    throw new Error(ready.reason);
  }
  const pid = findDaemonPid(mnt, { word: pidWord });
  track(mnt, pid);
  return {
    dir: mnt,
    pid,
    fsType: ready.fsType,
    async teardown() {
      const notes = [];
      if (unmountCmd && mountAt(mnt)) {
        const u = await run(unmountCmd[0], unmountCmd.slice(1), { cwd, env, timeoutMs: ctx.timeouts.unmountMs });
        const what = label.trim().replace(/mount$/, 'unmount');
        if (!u.ok) notes.push(`${what} failed (fell back to fusermount): ${u.error}`);
      }
      notes.push(...(await unmountFuse(mnt, { pid })));
      return notes;
    },
  };
}

async function cleanupFailed(mnt, pidWord) {
  // The command may have failed after mounting, or left a daemon that never finished mounting.
  const pid = findDaemonPid(mnt, { word: pidWord });
  if (!mountAt(mnt) && pid) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
  await unmountFuse(mnt, { pid });
}

/** available() helper: true if `cmd` is on PATH, else a reason string. */
export async function onPath(cmd) {
  const r = await run('sh', ['-c', 'command -v "$1"', 'onPath', cmd], { timeoutMs: 5_000 });
  return r.ok ? true : `${cmd} is not installed`;
}
