// bench/targets/s3.js — targets for the S3 backend: fsx with each preset and engine, and the peers s3fs and rclone's
// s3 mount, each against its own fresh S3-compatible server (s3rver, patched by patches/s3rver+3.7.1.patch, a child
// process on 127.0.0.1) with the same settings, so every target starts from an empty bucket on an identical server.
// E.g. BENCH_BACKENDS=s3 BENCH_PRESETS=balanced node bench/run.js
//
// NB: s3rver is a single Node process writing to the local disk: it is the ceiling of every S3 target here, and far
// from AWS's latency and parallelism. The table compares the clients on equal terms, not S3 itself.

import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fsxAvailable, fsxEnv, fsxMatrix, mountFsx } from './fsx.js';
import { mountFuse, onPath } from './fuse.js';

const BUCKET = 'fsx-bench';
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const REGION = 'us-east-1';

/** Servers still running, killed on exit whatever happens. */
const servers = new Set();
process.on('exit', () => { for (const child of servers) try { child.kill('SIGKILL'); } catch { /* gone */ } });

/** s3rver's module path, or undefined when it is not installed (npm ci installs it as a devDependency). */
function s3rverModule(projectRoot) {
  try {
    return createRequire(join(projectRoot, 'package.json')).resolve('s3rver');
  } catch {
    return undefined;
  }
}

const SERVER_CHILD = `
const [mod, dir, bucket] = process.argv.slice(1)
const S3rver = require(mod)
new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true, configureBuckets: [{ name: bucket }] })
  .run().then(a => process.stdout.write('READY ' + a.port + '\\n'), err => { console.error(err); process.exit(1) })
`;

/** Starts a server with an empty bucket in `dir`; resolves { endpoint, stop }. */
async function startServer(ctx) {
  const mod = s3rverModule(ctx.projectRoot);
  if (!mod) throw new Error('s3rver is not installed (npm ci)');
  const dir = join(ctx.tmpDir, 's3rver');
  await mkdir(dir, { recursive: true });
  const child = spawn(process.execPath, ['-e', SERVER_CHILD, mod, dir, BUCKET], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.add(child);
  let err = '';
  child.stderr.on('data', (d) => { err += String(d); });
  const port = await new Promise((resolvePort, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s ${err}`.trim())), 15_000);
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /READY (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolvePort(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`s3rver exited with ${code}: ${err}`.trim())); });
  }).catch((e) => { child.kill('SIGKILL'); servers.delete(child); throw e; });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      servers.delete(child);
    },
  };
}

/**
 * Mounts with `mount(server)` (which returns mountFuse's handle) against a fresh server; the handle's teardown
 * unmounts first (the mount flushes to the server), then stops the server.
 */
async function withServer(ctx, mount) {
  const server = await startServer(ctx);
  let handle;
  try {
    handle = await mount(server);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    ...handle,
    async teardown() {
      const notes = (await handle.teardown()) ?? [];
      await server.stop();
      return notes;
    },
  };
}

/** Our environment without FSX_*, AWS_* and RCLONE_* settings, XDG homes in the target's scratch dir. */
function hermeticEnv(ctx) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(FSX|AWS|RCLONE)_/.test(k)));
  for (const [k, d] of [['XDG_CONFIG_HOME', 'config'], ['XDG_STATE_HOME', 'state'], ['XDG_CACHE_HOME', 'cache']]) {
    env[k] = join(ctx.tmpDir, 'xdg', d);
  }
  return env;
}

function serverAvailable(ctx) {
  return s3rverModule(ctx.projectRoot) ? true : 's3rver is not installed (npm ci)';
}

/** @type {import('../targets.js').Target[]} */
export const targets = [
  ...fsxMatrix({
    backend: 's3',
    prefix: 's3-',
    make: (preset, engine) => ({
      description: `fsx mount s3://${BUCKET} MNT --preset ${preset} --engine ${engine} --daemon (FSX_S3_ENDPOINT=s3rver)`,
      available: fsxAvailable(serverAvailable),
      setup: (ctx) => withServer(ctx, (server) => mountFsx(ctx, {
        source: `s3://${BUCKET}`,
        preset,
        engine,
        env: fsxEnv(ctx, {
          FSX_S3_ENDPOINT: server.endpoint,
          AWS_ACCESS_KEY_ID: ACCESS_KEY,
          AWS_SECRET_ACCESS_KEY: SECRET_KEY,
          AWS_REGION: REGION,
        }, /^(FSX|AWS|RCLONE)_/),
      })),
    }),
  }),
  {
    name: 's3fs',
    short: 's3fs',
    kind: 'peer',
    backend: 's3',
    description: 's3fs BUCKET MNT -o url=s3rver,use_path_request_style (defaults otherwise)',
    async available(ctx) {
      const onpath = await onPath('s3fs');
      return onpath === true ? serverAvailable(ctx) : onpath;
    },
    setup: (ctx) => withServer(ctx, async (server) => {
      const passwd = join(ctx.tmpDir, 's3fs-passwd');
      await writeFile(passwd, `${ACCESS_KEY}:${SECRET_KEY}\n`, { mode: 0o600 });
      return mountFuse(ctx, {
        cmd: 's3fs',
        args: [BUCKET, ctx.mntDir, '-o', `passwd_file=${passwd},url=${server.endpoint},use_path_request_style`],
        env: hermeticEnv(ctx),
        label: 's3fs',
      });
    }),
  },
  {
    name: 'rclone-s3',
    short: 'rclone',
    kind: 'peer',
    backend: 's3',
    description: 'rclone mount s3:BUCKET MNT --vfs-cache-mode full --cache-dir TMP --daemon (provider Other, path style)',
    async available(ctx) {
      const onpath = await onPath('rclone');
      return onpath === true ? serverAvailable(ctx) : onpath;
    },
    setup: (ctx) => withServer(ctx, (server) => mountFuse(ctx, {
      cmd: 'rclone',
      args: [
        'mount', `s3bench:${BUCKET}`, ctx.mntDir, '--vfs-cache-mode', 'full', '--cache-dir', join(ctx.tmpDir, 'rclone-cache'),
        // An empty, private config; the remote comes from the environment below.
        '--config', join(ctx.tmpDir, 'rclone.conf'), '--daemon',
      ],
      // NB: no AWS_CA_BUNDLE (hermeticEnv drops AWS_*): rclone refuses a custom CA bundle with its own transport.
      env: {
        ...hermeticEnv(ctx),
        RCLONE_CONFIG_S3BENCH_TYPE: 's3',
        RCLONE_CONFIG_S3BENCH_PROVIDER: 'Other',
        RCLONE_CONFIG_S3BENCH_ENDPOINT: server.endpoint,
        RCLONE_CONFIG_S3BENCH_ACCESS_KEY_ID: ACCESS_KEY,
        RCLONE_CONFIG_S3BENCH_SECRET_ACCESS_KEY: SECRET_KEY,
        RCLONE_CONFIG_S3BENCH_FORCE_PATH_STYLE: 'true',
      },
      pidWord: 'mount',
      label: 'rclone mount',
    })),
  },
];
