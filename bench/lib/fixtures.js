// bench/lib/fixtures.js — the benchmark's input data, generated deterministically once into bench/.cache/ and
// reused, so every target (and every run on every machine with the same lockfile) sees the same bytes.
//
// - data-<N>M.bin: N MiB of AES-256-CTR keystream under a fixed key — incompressible, identical everywhere.
// - tree.tar (6,000 files) / tree-<N>.tar: a "source tree" cut from the project's node_modules: all regular files
//   of at most 256 KiB (no symlinks: not every peer supports them), sorted by path, taken in runs of
//   TREE_RUN_FILES consecutive files spread evenly over the list — so the sample spans many packages yet keeps a
//   realistic files-per-directory ratio (~7) — plus their directories. A sidecar .json holds a fingerprint of
//   the selection; the tar is rebuilt only when the fingerprint changes (i.e. node_modules changed).

import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync,
  writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from './proc.js';

/** Largest file taken into the tree tar, in bytes: keeps it a source tree, not a pile of bundles. */
const TREE_MAX_FILE_BYTES = 256 * 1024;

/** Consecutive files taken per run: whole directories, as in a real tree (every k-th file gave ~1 per dir). */
const TREE_RUN_FILES = 100;

/** File count whose tar keeps the plain name tree.tar. */
const TREE_DEFAULT_FILES = 6000;

/** Ensure `cacheDir/data-<MiB>M.bin` exists with `bytes` bytes of deterministic data; returns its path. */
export function ensureDataFile(cacheDir, bytes) {
  mkdirSync(cacheDir, { recursive: true });
  const file = join(cacheDir, `data-${Math.round(bytes / 2 ** 20)}M.bin`);
  if (existsSync(file) && statSync(file).size === bytes) return file;
  const key = createHash('sha256').update('fsx-bench data v1').digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(2 ** 20);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (let done = 0; done < bytes; done += zeros.length) {
      writeSync(fd, cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done))));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return file;
}

/**
 * Ensure a tar of `files` regular files sampled from `projectRoot/node_modules` exists in `cacheDir`.
 * Returns { tar, files, dirs, bytes } (files/dirs: entries in the tar; bytes: sum of file sizes).
 */
export async function ensureTreeTar(cacheDir, projectRoot, files) {
  mkdirSync(cacheDir, { recursive: true });
  const base = files === TREE_DEFAULT_FILES ? 'tree' : `tree-${files}`;
  const tar = join(cacheDir, `${base}.tar`);
  const sidecar = join(cacheDir, `${base}.json`);

  const all = [];
  walk(projectRoot, 'node_modules', all);
  if (all.length === 0) throw new Error(`no files under ${projectRoot}/node_modules (run npm ci first)`);
  const runs = Math.ceil(Math.min(files, all.length) / TREE_RUN_FILES);
  const picked = [];
  for (let r = 0, end = 0; r < runs; r++) {
    const start = Math.max(end, Math.floor((r * all.length) / runs)); // runs never overlap on a small tree
    end = start + TREE_RUN_FILES;
    picked.push(...all.slice(start, end));
  }
  picked.length = Math.min(picked.length, files);
  const fingerprint = createHash('sha256').update(picked.map(([p, s]) => `${p}\t${s}`).join('\n')).digest('hex');

  const dirs = new Set();
  for (const [p] of picked) {
    for (let d = dirname(p); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  }
  const info = { files: picked.length, dirs: dirs.size, bytes: picked.reduce((s, [, z]) => s + z, 0), fingerprint };

  if (existsSync(tar) && existsSync(sidecar)) {
    try {
      if (JSON.parse(readFileSync(sidecar, 'utf8')).fingerprint === fingerprint) return { tar, ...info };
    } catch { /* rebuild */ }
  }

  // Parents sort before their children, so the sorted list extracts in order.
  const list = [...dirs, ...picked.map(([p]) => p)].sort(byBytes);
  const listFile = join(cacheDir, `${base}.list`);
  writeFileSync(listFile, `${list.join('\n')}\n`);
  const tmp = `${tar}.tmp-${process.pid}`;
  const r = await run('tar', [
    '--create', '--file', tmp, '--directory', projectRoot, '--no-recursion', '--files-from', listFile,
    '--format=gnu', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@1704067200', '--mode=u+rw,go+r,go-w',
  ], { timeoutMs: 300_000 });
  if (!r.ok) throw new Error(`building ${tar}: ${r.error}`);
  renameSync(tmp, tar);
  writeFileSync(sidecar, `${JSON.stringify(info, null, 2)}\n`);
  return { tar, ...info };
}

/** Collect [relativePath, size] of regular files ≤ TREE_MAX_FILE_BYTES under root/rel, sorted by path bytes. */
function walk(root, rel, out) {
  let entries;
  try {
    entries = readdirSync(join(root, rel)).sort(byBytes);
  } catch {
    return;
  }
  for (const name of entries) {
    if (name === '.bin' || name === '.cache') continue;
    const p = `${rel}/${name}`;
    const st = lstatSync(join(root, p));
    if (st.isDirectory()) walk(root, p, out);
    else if (st.isFile() && st.size <= TREE_MAX_FILE_BYTES) out.push([p, st.size]);
  }
}

function byBytes(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
