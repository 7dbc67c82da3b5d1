#!/usr/bin/env node
// Build the fallback FUSE engine's addon: fuse-native's C source with native/fuse-native+2.2.6.patch applied.
//
// Why: fsx's default engine (src/fuse/kernel/) needs no compiled code at all. The fallback, `--engine fuse-native`
// (libfuse 2), needs fuse-native's addon built from a patched C file: the prebuild fuse-native 2.2.6 ships
// (prebuilds/linux-x64/node.napi.node) is compiled from the unpatched source, whose utimens passes atime twice
// and folds UTIME_NOW/UTIME_OMIT into ~1073 ms. node-gyp-build loads build/Release/fuse.node in preference to
// any prebuild, so building it there is enough; the prebuilds stay in place and are simply shadowed.
//
// Runs as fsx's "postinstall", on a developer's `npm ci` and on every user's install alike. Invariants:
// - It never fails an install: whatever stops the build (fuse-native not installed — it is an optional
//   dependency —, no compiler, no Node headers, a compiler error) is ONE line on stderr saying what it would need,
//   and exit 0. Only the fallback engine is then unavailable, and `--engine fuse-native` says so.
// - The patch is applied here, with the `diff` package, to the fuse-native this package resolves (nested or
//   hoisted), not by patch-package: that is a development tool (it also applies the test-only s3rver patch).
// - Idempotent; skips in a few ms when build/Release/fuse.node is newer than the patched .c and binding.gyp and
//   loads with the patch marker.
// - Offline: compiles against the local Node headers (<node prefix>/include/node), never downloads.
// - The addon links libfuse.so.2 by soname, so at run time it uses the system's libfuse2 (Debian: libfuse2 or
//   libfuse2t64). A missing libfuse.so.2 is reported, not a failure: it stops only mounting with this engine.
//
// Env: FSX_SKIP_FUSE_BUILD=1 skips everything; FSX_FUSE_BUILD_VERBOSE=1 streams node-gyp's output.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const TAG = 'build-fuse-native'
// Defined by the patch and exported by the patched addon; the newest marker, so an older patched build is rebuilt.
const PATCH_MARKER = 'fsx_bytes_names'
/** The fuse-native release the patch is written against. */
const FUSE_NATIVE_VERSION = '2.2.6'
const PATCH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', `fuse-native+${FUSE_NATIVE_VERSION}.patch`)
const ONLY_FALLBACK = 'the fallback engine (--engine fuse-native) is unavailable; the default kernel engine does not need it'
const require = createRequire(import.meta.url)

/** Gives up on the fallback engine: one line, and the install goes on (exit 0). */
function fail (msg) {
  console.error(`${TAG}: ${msg}; ${ONLY_FALLBACK}`)
  process.exit(0)
}

/** True when `cmd` is an executable on PATH (or an absolute path to one). */
function onPath (cmd) {
  if (cmd.includes('/')) return existsSync(cmd)
  return (process.env.PATH ?? '').split(':').some(dir => dir !== '' && existsSync(path.join(dir, cmd)))
}

/**
 * What node-gyp needs and is missing: Python 3, make, a C compiler and a C++ driver (gyp links with it). Debian:
 * python3, make, g++ (which brings gcc).
 */
function missingTools () {
  const missing = []
  if (!onPath(process.env.npm_config_python || process.env.PYTHON || 'python3')) missing.push('python3')
  if (!onPath('make')) missing.push('make')
  if (!onPath((process.env.CC ?? 'cc').split(' ')[0]) || !onPath((process.env.CXX ?? 'g++').split(' ')[0])) missing.push('g++')
  return missing
}

/** Applies native/fuse-native+2.2.6.patch to fuse-native's C file in place, unless it is applied already. */
async function applyPatch (pkgDir, source) {
  const text = readFileSync(source, 'utf8')
  if (text.includes(PATCH_MARKER)) return
  const version = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version
  if (version !== FUSE_NATIVE_VERSION) fail(`fuse-native ${version} is installed, but the patch is for ${FUSE_NATIVE_VERSION}`)
  const { applyPatch, parsePatch } = await import('diff')
  const part = parsePatch(readFileSync(PATCH, 'utf8')).find(p => p.newFileName?.endsWith('/fuse-native.c'))
  const patched = part === undefined ? false : applyPatch(text, part)
  if (patched === false) fail(`${PATCH} does not apply to ${source}`)
  writeFileSync(source, patched)
}

function mtimeMs (file) {
  try { return statSync(file).mtimeMs } catch { return -1 }
}

/** Path of node-gyp's CLI: the one npm ships (npm exports it to scripts), else a local install. */
function findNodeGyp () {
  const candidates = []
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp)
  if (process.env.npm_execpath) {
    candidates.push(path.join(path.dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'))
  }
  const prefix = path.dirname(path.dirname(process.execPath))
  candidates.push(path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'))
  try { candidates.push(require.resolve('node-gyp/bin/node-gyp.js')) } catch {}
  return candidates.find((c) => c.endsWith('.js') && existsSync(c))
}

/** A directory whose include/node holds headers for this very Node (Debian /usr, tarball prefix). */
function findNodeDir () {
  const version = process.versions.node
  const candidates = [
    process.env.npm_config_nodedir,
    path.dirname(path.dirname(process.execPath)),
    process.config.variables.node_prefix
  ].filter(Boolean)
  for (const dir of candidates) {
    const inc = path.join(dir, 'include/node')
    if (!existsSync(path.join(inc, 'node_api.h')) || !existsSync(path.join(inc, 'uv.h'))) continue
    const h = readFileSync(path.join(inc, 'node_version.h'), 'utf8')
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((p) => h.match(new RegExp(`#define NODE_${p}_VERSION (\\d+)`))?.[1]).join('.')
    // NB: N-API addons only need a matching major, but an exact match is what node-gyp itself trusts.
    if (v === version || v.split('.')[0] === version.split('.')[0]) return dir
  }
  return undefined
}

/**
 * Load the addon the way fuse-native does (node-gyp-build) in a child process, so a stale copy is
 * never cached in this one, and check it is ours. Returns a warning string, or throws.
 */
function checkLoads (pkgDir, built) {
  const probe = `
    const ngb = require(require.resolve('node-gyp-build', { paths: [${JSON.stringify(pkgDir)}] }))
    const picked = ngb.path(${JSON.stringify(pkgDir)})
    if (picked !== ${JSON.stringify(built)}) throw new Error('node-gyp-build picks ' + picked)
    if (ngb(${JSON.stringify(pkgDir)}).${PATCH_MARKER} !== 1) throw new Error('no ${PATCH_MARKER} marker (unpatched build)')`
  const res = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' })
  if (res.status === 0) return undefined
  const msg = (res.stderr.split('\n').find((l) => /Error/.test(l)) ?? res.error?.message ?? `exit ${res.status}`).trim()
  if (/libfuse\.so\.2/.test(msg)) {
    return 'built, but libfuse.so.2 is not installed (apt-get install libfuse2); mounting will fail until it is'
  }
  throw new Error(msg)
}

async function main () {
  if (process.env.FSX_SKIP_FUSE_BUILD === '1') return console.log(`${TAG}: skipped (FSX_SKIP_FUSE_BUILD=1)`)

  let pkgDir
  try {
    pkgDir = path.dirname(require.resolve('fuse-native/package.json'))
  } catch {
    fail('fuse-native (an optional dependency) is not installed')
  }
  const source = path.join(pkgDir, 'fuse-native.c')
  const gyp = path.join(pkgDir, 'binding.gyp')
  const built = path.join(pkgDir, 'build/Release/fuse.node')

  await applyPatch(pkgDir, source)

  const upToDate = mtimeMs(built) > Math.max(mtimeMs(source), mtimeMs(gyp))
  if (upToDate) {
    try {
      const warning = checkLoads(pkgDir, built)
      if (warning) console.error(`${TAG}: warning: ${warning}`)
      else console.log(`${TAG}: ${path.relative(process.cwd(), built)} is up to date`)
      return
    } catch { /* stale or broken build: fall through and rebuild */ }
  }

  const missing = missingTools()
  if (missing.length > 0) {
    fail(`not built: it needs python3, make and g++ (missing: ${missing.join(', ')}; Debian: apt-get install python3 make g++, then run: node ${fileURLToPath(import.meta.url)})`)
  }
  const nodeGyp = findNodeGyp()
  if (!nodeGyp) fail('not built: node-gyp not found (it ships with npm; is npm installed next to node?)')
  const nodeDir = findNodeDir()
  if (!nodeDir) fail(`not built: no local Node ${process.versions.node} headers (include/node/node_api.h) next to ${process.execPath} : node-gyp would download them, and fsx builds offline)`)

  const started = process.hrtime.bigint()
  const verbose = process.env.FSX_FUSE_BUILD_VERBOSE === '1'
  const res = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`], {
    cwd: pkgDir,
    stdio: verbose ? 'inherit' : 'pipe',
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodeDir }
  })
  if (res.error || res.status !== 0) {
    const log = `${res.stdout ?? ''}${res.stderr ?? ''}`
    let where = ''
    if (!verbose) {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'fsx-fuse-build-')), 'node-gyp.log')
      writeFileSync(file, log)
      where = `; full log: ${file}`
    }
    const lines = log.split('\n')
    const firstError = lines.find((l) => /\berror\b/.test(l) && !/^gyp /.test(l)) ?? // compiler, linker, make
      lines.find((l) => /^gyp ERR! stack \w*Error/.test(l))?.replace(/^gyp ERR! stack /, '') ?? // e.g. no Python
      lines.find((l) => /^gyp ERR! \S/.test(l))
    const why = res.error?.message ?? firstError?.trim() ?? `exit ${res.status}`
    fail(`node-gyp rebuild of fuse-native failed: ${why}${where}`)
  }

  try {
    const warning = checkLoads(pkgDir, built)
    if (warning) console.error(`${TAG}: warning: ${warning}`)
  } catch (err) {
    fail(`built addon does not load: ${err.message.split('\n')[0]}`)
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9
  console.log(`${TAG}: built ${path.relative(process.cwd(), built)} in ${secs.toFixed(1)}s`)
}

await main()
