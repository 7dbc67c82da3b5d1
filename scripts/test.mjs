#!/usr/bin/env node
// `npm test` (after `npm run build`): every tap suite, then the unit tests under Deno (`npm run test:deno`). Both
// always run, whatever the first did; the exit status is non-zero when either failed, and the last line says which.
// Arguments go to tap (`npm test -- test/e2e/cli.test.ts`). tap's per-file timeout (package.json "tap.timeout",
// seconds) is scaled by FSX_TEST_TIME_FACTOR, like every deadline inside the tests (test/helpers/timing.ts).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))

const raw = process.env.FSX_TEST_TIME_FACTOR
const factor = raw === undefined || raw === '' ? 1 : Number(raw)
if (!Number.isFinite(factor) || factor <= 0) {
  console.error(`npm test: FSX_TEST_TIME_FACTOR must be a positive number, not ${JSON.stringify(raw)}`)
  process.exit(2)
}
const timeout = Math.ceil((pkg.tap?.timeout ?? 30) * factor)

/** Runs a step with inherited stdio; its exit status (a signal counts as a failure). */
function step (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`npm test: could not run ${cmd}: ${r.error.message}`)
    return 1
  }
  return r.status ?? 1
}

const tap = step('tap', [`--timeout=${timeout}`, ...process.argv.slice(2)])
// The npm that runs this script (npm_execpath), or the one on PATH when run by hand.
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm']
const deno = step(npm[0], [...npm.slice(1), 'run', '--silent', 'test:deno'])
const word = code => code === 0 ? 'passed' : `failed (exit ${code})`
console.log(`npm test: tap suites ${word(tap)}; Deno unit tests ${word(deno)} (FSX_TEST_TIME_FACTOR=${factor})`)
process.exit(tap !== 0 || deno !== 0 ? 1 : 0)
