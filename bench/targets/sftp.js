// bench/targets/sftp.js — targets for the SFTP backend: fsx over SFTP with each preset and engine, and the peers
// sshfs and rclone's sftp mount, all against the same kind of server: a throwaway OpenSSH sshd on 127.0.0.1 (its
// own config, host key and user key, root login with that key only, internal-sftp) serving the target's source
// directory. `sftp-raw` is that directory itself (no SSH, no FUSE): the ceiling.
//
// The targets land in the report's `sftp` table. Each target starts its own sshd in setup() and stops it in
// teardown (after the unmount), so no target sees another's connections. Needs /usr/sbin/sshd and ssh-keygen (Debian openssh-server); the peers
// need sshfs and rclone on PATH (a missing one is reported as not run).

import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { fsxAvailable, fsxEnv, fsxMatrix, mountFsx } from './fsx.js';
import { mountFuse, onPath } from './fuse.js';
import { freePort } from '../lib/proc.js';

const SSHD = '/usr/sbin/sshd';

function exec(cmd, args) {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${cmd}: ${String(stderr).trim() || err.message}`.split('\n')[0]));
      else ok(String(stdout));
    });
  });
}


/** True once something on 127.0.0.1:port sends an SSH banner. */
function answers(port) {
  return new Promise((ok) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (v) => { s.destroy(); ok(v); };
    s.setTimeout(1000, () => done(false));
    s.once('data', (d) => done(String(d).startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

/** Descendants of `root` grouped by depth, deepest level first (read from /proc). */
async function descendantLevels(root) {
  const parent = new Map();
  for (const name of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const levels = [];
  const walk = (p, d) => {
    for (const [c, pp] of parent) {
      if (pp !== p) continue;
      (levels[d] ??= []).push(c);
      walk(c, d + 1);
    }
  };
  walk(root, 0);
  return levels.reverse();
}

export async function sshdAvailable() {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (openssh-server)`;
  return onPath('ssh-keygen');
}

/**
 * Starts a private sshd serving everything as root with a fresh key pair, in ctx.tmpDir/sshd.
 * Resolves { port, key, knownHosts, pid, stop() } once it answers; stop() kills it (and its sessions) and waits.
 * Also used by bench/coherence.js (one sshd for its four mounts).
 */
export async function startSshd(ctx) {
  const dir = join(ctx.tmpDir, 'sshd');
  await mkdir(dir, { recursive: true });
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const key = join(dir, 'user_ed25519');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${key}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no',
    'Subsystem sftp internal-sftp', 'MaxStartups 100', 'MaxSessions 100', 'LogLevel ERROR', '',
  ].join('\n'));
  const [type, blob] = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/);
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${type} ${blob}\n`);

  let stderr = '';
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise((ok) => child.once('exit', ok));
  const stop = async () => {
    // Session processes outlive the listener: end this sshd's own descendants (by pid, deepest first, so each
    // parent reaps its child), then the listener.
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      for (const level of await descendantLevels(child.pid)) {
        for (const pid of level) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
        await new Promise((ok) => setTimeout(ok, 50));
      }
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
  };
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await answers(port)) return { port, key, knownHosts, pid: child.pid, stop };
    await new Promise((ok) => setTimeout(ok, 50));
  }
  await stop();
  throw new Error(`sshd did not start: ${stderr.trim().split('\n').pop() || 'no output'}`);
}

/** Runs `mount(sshd)` with a private sshd; the handle's teardown unmounts, then stops the sshd. */
async function withSshd(ctx, mount) {
  const sshd = await startSshd(ctx);
  let handle;
  try {
    handle = await mount(sshd);
  } catch (err) {
    await sshd.stop();
    throw err;
  }
  return {
    ...handle,
    async teardown() {
      const notes = (await handle.teardown()) ?? [];
      await sshd.stop();
      return notes;
    },
  };
}

/** The environment of fsx over SFTP: fsxEnv() plus the key and known_hosts of this target's sshd. */
function sftpEnv(ctx, sshd) {
  return fsxEnv(ctx, { FSX_SFTP_KEY: sshd.key, FSX_SFTP_KNOWN_HOSTS: sshd.knownHosts });
}

/** @type {import('../targets.js').Target[]} */
export const targets = [
  {
    name: 'sftp-raw',
    short: 'raw',
    kind: 'raw',
    backend: 'sftp',
    description: 'the served directory itself (no SSH, no FUSE)',
    async available() {
      return true;
    },
    async setup(ctx) {
      return { dir: ctx.srcDir, async teardown() {} };
    },
  },
  ...fsxMatrix({
    backend: 'sftp',
    prefix: 'sftp-',
    shortPrefix: 's-',
    make: (preset, engine) => ({
      description: `fsx mount sftp://root@127.0.0.1:PORT/SRC MNT --preset ${preset} --engine ${engine} --daemon`,
      available: fsxAvailable(sshdAvailable),
      setup: (ctx) => withSshd(ctx, (sshd) => mountFsx(ctx, {
        source: `sftp://root@127.0.0.1:${sshd.port}${ctx.srcDir}`, preset, engine, env: sftpEnv(ctx, sshd),
      })),
    }),
  }),
  {
    name: 'sshfs',
    short: 'sshfs',
    kind: 'peer',
    backend: 'sftp',
    description: 'sshfs root@127.0.0.1:SRC MNT -p PORT (defaults, strict host key checking)',
    async available() {
      const s = await sshdAvailable();
      return s === true ? onPath('sshfs') : s;
    },
    setup: (ctx) => withSshd(ctx, (sshd) => mountFuse(ctx, {
      cmd: 'sshfs',
      args: [
        `root@127.0.0.1:${ctx.srcDir}`, ctx.mntDir, '-p', String(sshd.port),
        '-o', `IdentityFile=${sshd.key}`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
        '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes',
      ],
      pidWord: 'sshfs',
    })),
  },
  {
    name: 'rclone-sftp',
    short: 'rclone',
    kind: 'peer',
    backend: 'sftp',
    description: 'rclone mount :sftp:SRC MNT --vfs-cache-mode full --sftp-disable-hashcheck --daemon',
    async available() {
      const s = await sshdAvailable();
      return s === true ? onPath('rclone') : s;
    },
    setup: (ctx) => withSshd(ctx, (sshd) => mountFuse(ctx, {
      cmd: 'rclone',
      args: [
        'mount', `:sftp:${ctx.srcDir}`, ctx.mntDir, '--sftp-host', '127.0.0.1', '--sftp-port', String(sshd.port),
        '--sftp-user', 'root', '--sftp-key-file', sshd.key, '--sftp-known-hosts-file', sshd.knownHosts,
        // Without this, rclone runs md5sum/sha1sum over SSH exec for every upload (a shell an SFTP-only account
        // lacks), which dominates its times here and is not what an SFTP mount is compared on.
        '--sftp-disable-hashcheck',
        '--vfs-cache-mode', 'full', '--cache-dir', join(ctx.tmpDir, 'rclone-cache'),
        // An empty, private config: never read or write the user's rclone.conf.
        '--config', join(ctx.tmpDir, 'rclone.conf'), '--daemon',
      ],
      pidWord: 'mount',
    })),
  },
];
