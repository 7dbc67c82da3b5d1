// Issue 10 on a real S3 server through a real mount: creating a file makes no request (the new file is visible
// through the mount at once, in stat and in listings), and is uploaded once, at close; unlink, rmdir, chmod and
// xattrs of a file created and not yet uploaded behave as on a local filesystem. Counted with the backend's own
// request counters (fsx stats), with write-through and with the write-back journal.
import t from 'tap'
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { BIN, fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'
import { startS3Server } from '../helpers/s3-server.js'
import { scaled, waitUntil } from '../helpers/timing.js'

/** Opens argv[1] with flags argv[2] (and writes argv[3] if given), says "open", then writes the JSON string read
 *  from stdin and closes it. */
const HOLDER = `const fs = require('fs')
const fd = fs.openSync(process.argv[1], process.argv[2])
if (process.argv[3] !== undefined) fs.writeSync(fd, process.argv[3])
process.stdout.write('open\\n')
let buf = ''
process.stdin.on('data', d => {
  buf += d
  const nl = buf.indexOf('\\n')
  if (nl < 0) return
  const text = JSON.parse(buf.slice(0, nl))
  if (text !== '') fs.writeSync(fd, text)
  fs.closeSync(fd)
  process.exit(0)
})`

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  const sdk = s3.client()
  let seq = 0
  for (const writeback of [false, true]) {
    t.test(`create-then-stat makes no request; the file is uploaded once, at close (writeback ${String(writeback)})`, async t => {
      const name = `create${++seq}`
      const env = { ...s3.env, FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-'), XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-') }
      const m = await mountFsx(t, `s3://${s3.bucket}/${name}`, ['--preset', 'balanced', '--xattrs', '--s3-list-cache-ttl', '10m', ...(writeback ? ['--writeback'] : [])], { env })
      const mnt = m.mountpoint
      const backend = async (): Promise<Record<string, number>> => {
        const r = await fsx(['stats', mnt, '--json'], { env })
        t.equal(r.code, 0, r.stderr)
        return JSON.parse(r.stdout).mounts[0].backend
      }
      const sh = async (script: string, more: Record<string, string> = {}): Promise<string> => {
        const r = await run('bash', ['-c', script], { env: { ...env, MNT: mnt, FSX: `${process.execPath} ${BIN}`, ...more } })
        t.equal(r.code, 0, r.stderr)
        return r.stdout
      }
      // Runs `script` (bash, in its own process) while `file` is held open by a process that opened it with `flags`
      // ('w': O_CREAT|O_TRUNC, 'wx': O_CREAT|O_EXCL as tar does) and forks nothing (a fork closing its copy of the
      // descriptor at exec would be a FUSE flush, an upload), having written `first` if given; then that process
      // writes `then` and closes the file.
      const whileOpen = async (file: string, flags: string, script: string, then = '', first?: string): Promise<string> => {
        const holder = spawn(process.execPath, ['-e', HOLDER, path.join(mnt, file), flags, ...(first !== undefined ? [first] : [])], { stdio: ['pipe', 'pipe', 'inherit'] })
        const exited = new Promise<number | null>(resolve => holder.on('exit', code => resolve(code)))
        let said = ''
        holder.stdout.on('data', d => { said += String(d) })
        await waitUntil(() => said.includes('open\n') || holder.exitCode !== null, { timeoutMs: scaled(30_000), what: `${file} opened` })
        const out = await sh(script)
        holder.stdin.end(JSON.stringify(then) + '\n')
        t.equal(await exited, 0, `${file} written and closed`)
        return out
      }
      await sh('mkdir "$MNT/d" && ls "$MNT/d"') // the directory is made and listed: lookups in it are answered

      // While the new file is open: it stats, lists and reads back; the backend saw nothing.
      const before = await backend()
      const statsFile = path.join(await tempDir(t, 'fsx-out-'), 'stats.json')
      const out = await whileOpen('d/new', 'w', `stat -c '%s %F %a' "$MNT/d/new"; ls "$MNT/d"; cat "$MNT/d/new"
        $FSX stats "$MNT" --json > ${JSON.stringify(statsFile)}`)
      t.match(out, /^0 regular empty file 644\nnew\n$/, 'stat, ls and another open show the new file while it is open')
      const during = JSON.parse(await readFile(statsFile, 'utf8')).mounts[0].backend
      t.equal(during.requests - before.requests, 0, 'create, stat and readdir of the new file made no request')
      await sh('sync "$MNT/d/new"') // fsync: durable on S3 (write-back included)
      t.equal((await sdk.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${name}/d/new` }))).ContentLength, 0, 'closed: the empty object exists')

      // Write a small file in one go: one PUT (no empty PUT at create).
      const b0 = await backend()
      await whileOpen('d/hello', 'wx', 'true', 'hello\n') // open(O_EXCL) as tar does, write, close
      await sh('sync "$MNT/d/hello"')
      const b1 = await backend()
      t.equal(b1.put - b0.put, 1, 'one PUT for a new file written and closed')
      const got = await sdk.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${name}/d/hello` }))
      t.equal(await got.Body!.transformToString(), 'hello\n')

      // tar's way: open(O_EXCL), write, set the mtime alone (futimens before close), close: still one PUT, no
      // CopyObject; the upload records the mtime.
      const b2 = await backend()
      const timed = await whileOpen('d/timed', 'wx', `touch -h -m -d @1600000000 "$MNT/d/timed" && stat -c '%Y' "$MNT/d/timed"`, '', 'data\n')
      t.equal(timed, '1600000000\n', 'the new mtime shows at once')
      await sh('sync "$MNT/d/timed"')
      const b3 = await backend()
      t.same([b3.put - b2.put, b3.copy - b2.copy], [1, 0], 'one PUT, no CopyObject for the mtime')
      const head = await sdk.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${name}/d/timed` }))
      t.same([head.ContentLength, head.Metadata?.mtime], [5, '1600000000'], 'the object records the content and the mtime')
      t.equal(await sh(`stat -c '%Y %s' "$MNT/d/timed"`), '1600000000 5\n')

      // A file created and not uploaded yet: chmod changes what its upload will record, xattrs read as none, rmdir
      // of its directory is ENOTEMPTY, unlink removes it (nothing left on S3).
      await sh('mkdir "$MNT/e"')
      let r = await whileOpen('e/tmp', 'w', `getfattr -n user.x "$MNT/e/tmp" 2>&1 | grep -q 'No such attribute' && echo noattr
        rmdir "$MNT/e" 2>&1 | grep -q 'not empty' && echo notempty
        ls "$MNT/e"`)
      t.equal(r, 'noattr\nnotempty\ntmp\n', 'no xattrs; its directory is not empty')
      r = await sh('rm "$MNT/e/tmp" && echo removed')
      r += await whileOpen('e/tmp2', 'w', `chmod 600 "$MNT/e/tmp2" && stat -c '%a' "$MNT/e/tmp2"`, 'data\n')
      r += await sh(`stat -c '%a %s' "$MNT/e/tmp2"; rm "$MNT/e/tmp2" && echo removed`)
      r += await whileOpen('e/gone', 'w', `rm "$MNT/e/gone" && echo removed-while-open`)
      t.equal(r, 'removed\n600\n600 5\nremoved\nremoved-while-open\n', 'chmod while new; unlink after close and while open')
      // With write-back an unlink's delete may still be queued (s3DeleteDelay): the unmount sends it.
      if (writeback) t.equal(await m.stop(), 0, 'clean unmount')
      for (const k of ['tmp', 'tmp2', 'gone']) {
        await t.rejects(sdk.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${name}/e/${k}` })), { name: 'NotFound' }, `nothing left: e/${k}`)
      }
      if (!writeback) t.equal(await m.stop(), 0, 'clean unmount')
    })
  }
}
