#!/usr/bin/env node
// The npm registry this project's machines reach serves only the linux-x64 build of the `deno` dev dependency, so
// `npm install` leaves the other platforms' optional packages out of package-lock.json and `npm ci` then refuses
// the lock as "out of sync". This adds lock entries for them, marked optional with their os/cpu, so npm ci skips
// them on Linux x64 exactly as it would had the registry listed them. Run after any `npm install` that rewrites
// the lock: node scripts/fix-lock-optional.mjs
import { readFile, writeFile } from 'node:fs/promises'

const PLATFORMS = {
  '@deno/win32-x64': { os: ['win32'], cpu: ['x64'] },
  '@deno/win32-arm64': { os: ['win32'], cpu: ['arm64'] },
  '@deno/darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  '@deno/darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  '@deno/linux-arm64-glibc': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] }
}
const lock = JSON.parse(await readFile('package-lock.json', 'utf8'))
const deno = lock.packages['node_modules/deno']
let added = 0
for (const [name, plat] of Object.entries(PLATFORMS)) {
  const key = `node_modules/${name}`
  if (!deno?.optionalDependencies?.[name] || lock.packages[key]) continue
  lock.packages[key] = { version: deno.optionalDependencies[name], ...plat, dev: true, license: 'MIT', optional: true }
  added++
}
await writeFile('package-lock.json', JSON.stringify(lock, null, 2) + '\n')
console.log(`fix-lock-optional: added ${added} entries`)
