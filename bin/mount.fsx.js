#!/usr/bin/env node
// The mount(8) helper for fsx: link it as /sbin/mount.fuse.fsx (fstab type fuse.fsx) or /sbin/mount.fsx (type fsx):
//   ln -s "$(command -v mount.fsx)" /sbin/mount.fuse.fsx
// mount(8) runs it as `mount.fuse.fsx SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]`; it runs
// `fsx mount SOURCE MOUNTPOINT --daemon -o OPTIONS`, which returns 0 once the mount answers, or fails with fsx's
// one-line reason and exit code. Options: see `fsx mount --help` (-o) and README "Mount at boot".
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const positional = []
const options = []
let sloppy = false
let fake = false
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '-o') options.push(args[++i] ?? '')
  else if (a.startsWith('-o')) options.push(a.slice(2))
  else if (a === '-t' || a === '-N') i++ // the type is ours; namespaces are mount(8)'s business
  else if (/^-[sfnvi]+$/.test(a)) {
    if (a.includes('s')) sloppy = true
    if (a.includes('f')) fake = true
  } else positional.push(a)
}
if (positional.length !== 2) {
  process.stderr.write('mount.fsx: usage: mount.fsx SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]\n')
  process.exit(2)
}
if (fake) process.exit(0)
const [source, mountpoint] = positional
const run = fileURLToPath(new URL('./run.js', import.meta.url))
const argv = [run, 'mount', source, mountpoint, '--daemon']
for (const o of options) argv.push('-o', o)
if (sloppy) argv.push('--sloppy')
const r = spawnSync(process.execPath, argv, { stdio: 'inherit' })
process.exit(r.status ?? 1)
