// bench/lib/redis.js — a throwaway Redis for a benchmark: Debian's `redis-server` as a child on 127.0.0.1 and a free
// port, no persistence, its working directory under the caller's scratch dir. The bench's plain-JS twin of
// test/helpers/redis-server.ts (same flags, same notion of ready), without tap or scaled() timeouts.
//
//   const redis = await startRedis(dir)   // throws one line when redis-server is missing or does not answer
//   redis.url                             // redis://127.0.0.1:PORT/0, for --coherence
//   redis.pid                             // for a synchronous kill in an exit handler
//   await redis.stop()                    // SIGTERM, SIGKILL after 3 s; resolves once it has exited
//
// Invariant: "ready" means a PING on a fresh connection was answered with +PONG, not only that the port is bound.

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import net from 'node:net';
import { freePort } from './proc.js';

export const REDIS_BIN = '/usr/bin/redis-server';

/** True, or a one-line reason redis-server cannot run here. */
export function redisAvailable() {
  try {
    accessSync(REDIS_BIN, constants.X_OK);
    return true;
  } catch {
    return `${REDIS_BIN} is missing (apt-get install redis-server, or bash scripts/install-system-deps.sh)`;
  }
}


/** True when a fresh connection to 127.0.0.1:port gets +PONG for a PING within a second. */
function pong(port) {
  return new Promise((ok) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (v) => { s.destroy(); ok(v); };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { got += String(d); if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
    s.once('error', () => done(false));
  });
}

/** Starts redis-server on 127.0.0.1 with `dir` as its working directory; resolves once it answers PING. */
export async function startRedis(dir, { timeoutMs = 15_000 } = {}) {
  const why = redisAvailable();
  if (why !== true) throw new Error(why);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn(REDIS_BIN, [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log = (log + String(d)).slice(-4000); });
  child.stderr.on('data', (d) => { log = (log + String(d)).slice(-4000); });
  const exited = new Promise((ok) => child.once('exit', ok));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(t);
  };
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await pong(port)) return { port, url: `redis://127.0.0.1:${port}/0`, pid: child.pid, stop };
    await new Promise((ok) => setTimeout(ok, 50));
  }
  await stop();
  throw new Error(`redis-server did not answer on 127.0.0.1:${port}: ${log.trim().split('\n').pop() || 'no output'}`);
}
