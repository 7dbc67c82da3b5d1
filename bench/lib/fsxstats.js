// bench/lib/fsxstats.js — reads a running fsx mount's figures (the same snapshot `fsx stats MNT --json` prints as
// mounts[0]) straight from its control socket, so the harness can count the FUSE requests each timed step caused
// without spawning a CLI twice per step. The bench gives every fsx target a private FSX_RUNTIME_DIR, so the one
// `*.sock` there is that mount's.
//
// Protocol (src/control/protocol.ts): one JSON line {"cmd":"stats"} → one JSON line {"ok":true,"mount":{…}}.
// Only the socket is touched, never the mounted directory; a daemon that does not answer costs `timeoutMs`.

import { readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

/** The mount's stats snapshot from the control socket in `runtimeDir`, or null (with no socket / no answer). */
export async function fsxSnapshot(runtimeDir, timeoutMs = 5_000) {
  let sock;
  try {
    sock = readdirSync(runtimeDir).find((f) => f.endsWith('.sock'));
  } catch {
    return null;
  }
  if (!sock) return null;
  return new Promise((resolve) => {
    const conn = net.createConnection(join(runtimeDir, sock));
    let buf = '';
    const done = (v) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write('{"cmd":"stats"}\n'));
    conn.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const res = JSON.parse(buf.slice(0, nl));
        done(res.ok ? res.mount : null);
      } catch {
        done(null);
      }
    });
    conn.on('error', () => done(null));
  });
}

/** Per-opcode request counts between two snapshots: { op: count } for the ops that changed. */
export function opsDelta(before, after) {
  const out = {};
  if (!before?.ops || !after?.ops) return null;
  for (const [op, v] of Object.entries(after.ops)) {
    const d = (v?.count ?? 0) - (before.ops[op]?.count ?? 0);
    if (d > 0) out[op] = d;
  }
  return out;
}

/** Backend calls (SFTP/S3 requests, local syscalls fsx made) between two snapshots, or null. */
export function backendDelta(before, after) {
  const a = before?.backend?.requests;
  const b = after?.backend?.requests;
  return typeof a === 'number' && typeof b === 'number' ? b - a : null;
}

/** What the snapshot says about the engine: { engine, protocol, features, passthroughOpens, servedOpens }. */
export function engineInfo(snap) {
  if (!snap) return null;
  const e = snap.engine;
  // NB: fuse-native mounts have no `engine` block in their stats (libfuse negotiates; fsx sees no protocol).
  if (!e) return { engine: 'fuse-native' };
  return {
    engine: e.engine, transport: e.transport, protocol: e.protocol, features: e.features,
    passthroughOpens: e.passthroughOpens, servedOpens: e.servedOpens, passthroughOff: e.passthroughOff,
  };
}
