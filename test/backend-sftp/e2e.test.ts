// Real FUSE mounts of a real OpenSSH sshd through the SFTP backend, under every preset: what the application does
// through the mount must match the server's directory byte for byte, and failures must give the right errno. All
// filesystem work on the mount happens in child processes (bash, coreutils, a node errno probe).
import t from 'tap'
import path from 'node:path'
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { errnoProbe, fuseAvailable, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'

/** Every path under `dir` (relative, sorted) with its kind and, for files, content; symlinks by target. */
async function snapshot (dir: string, rel = ''): Promise<Map<string, string | Buffer>> {
  const out = new Map<string, string | Buffer>()
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(path.join(dir, r))
    if (st.isDirectory()) {
      out.set(r, 'dir')
      for (const [k, v] of await snapshot(dir, r)) out.set(k, v)
    } else if (st.isSymbolicLink()) {
      out.set(r, `-> ${await readlink(path.join(dir, r))}`)
    } else {
      out.set(r, await readFile(path.join(dir, r)))
    }
  }
  return out
}

if (fuseAvailable(t) && sshdAvailable(t)) {
  const sshd = await startSshd(t)
  const blob = randomBytes(3 * 1024 * 1024 + 17)
  const src = path.join(await tempDir(t, 'fsx-src-'), 'blob.bin')
  await writeFile(src, blob)

  for (const preset of ['balanced', 'high-performance', 'safe']) {
    t.test(`sftp backend under the ${preset} preset`, async t => {
      const data = path.join(sshd.dataDir, preset)
      await mkdir(data)
      const m = await mountFsx(t, `${sshd.url}/${preset}`, ['--preset', preset], { env: sshd.env })
      const mnt = m.mountpoint
      t.match(m.log(), new RegExp(`mounted sftp://root@127\\.0\\.0\\.1:${sshd.port}/`), 'the log names the source without secrets')

      await t.test('cp, mkdir, mv, ln -s, ln, rm, truncate, append and dd through the mount match the server byte for byte', async t => {
        const r = await sh(`
          cp ${src} blob.bin
          printf 'hello\\n' > a.txt
          mkdir -p d/e && cp a.txt d/e/copy.txt
          mv a.txt moved.txt
          ln -s moved.txt link
          ln moved.txt hard
          cp blob.bin gone.bin && rm gone.bin
          printf 0123456789 > t.txt
          truncate -s 4 t.txt && truncate -s 8 t.txt
          printf AB >> t.txt
          dd if=/dev/zero of=t.txt bs=1 count=2 seek=1 conv=notrunc,fsync status=none
          printf old > target && printf new > source && mv -f source target
          mkdir -p dsrc/sub dtgt && printf x > dsrc/sub/f && mv -T dsrc dtgt
          cat link; ls -1 | sort | tr '\\n' ' '`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /hello\n/)
        t.same((await readdir(data)).sort(), ['blob.bin', 'd', 'dtgt', 'hard', 'link', 'moved.txt', 't.txt', 'target'])
        t.ok((await readFile(path.join(data, 'blob.bin'))).equals(blob), 'a 3 MiB copy is byte-identical on the server')
        t.equal(await readFile(path.join(data, 'd/e/copy.txt'), 'utf8'), 'hello\n')
        t.equal(await readlink(path.join(data, 'link')), 'moved.txt')
        t.equal((await stat(path.join(data, 'hard'))).ino, (await stat(path.join(data, 'moved.txt'))).ino, 'ln made a hard link on the server')
        t.same([...await readFile(path.join(data, 't.txt'))], [0x30, 0, 0, 0x33, 0, 0, 0, 0, 0x41, 0x42])
        t.equal(await readFile(path.join(data, 'target'), 'utf8'), 'new', 'rename replaced the existing file')
        t.equal(await readFile(path.join(data, 'dtgt/sub/f'), 'utf8'), 'x', 'rename replaced the empty directory')
        const back = await run('cmp', [path.join(mnt, 'blob.bin'), src])
        t.equal(back.code, 0, 'reading back through the mount gives the same bytes')
        // The whole tree, as the server has it and as the mount shows it.
        const server = await snapshot(data)
        const seen = await run(process.execPath, ['-e', `
          const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto')
          const out = {}
          const walk = rel => { for (const n of fs.readdirSync(path.join(process.argv[1], rel)).sort()) {
            const r = rel ? rel + '/' + n : n, p = path.join(process.argv[1], r), st = fs.lstatSync(p)
            if (st.isDirectory()) { out[r] = 'dir'; walk(r) }
            else if (st.isSymbolicLink()) out[r] = '-> ' + fs.readlinkSync(p)
            else out[r] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') } }
          walk(''); console.log(JSON.stringify(out))`, mnt], { timeoutMs: 60_000 })
        t.equal(seen.code, 0, seen.stderr)
        const expected: Record<string, string> = {}
        for (const [k, v] of server) {
          expected[k] = typeof v === 'string' ? v : (await import('node:crypto')).createHash('sha256').update(v).digest('hex')
        }
        t.same(JSON.parse(seen.stdout), expected, 'every name, kind, link target and content hash matches the server')
      })

      await t.test('chmod, chown and utimens reach the server; touch -m leaves atime alone', async t => {
        const r = await sh(`
          printf x > m.txt
          chmod 640 m.txt
          chown 1234:2345 m.txt
          touch -a -d @2000000 m.txt
          touch -m -d @1000000 m.txt
          stat -c '%a %u %g %X %Y' m.txt`, mnt)
        t.equal(r.code, 0, r.stderr)
        const st = await stat(path.join(data, 'm.txt'))
        t.equal(st.mode & 0o777, 0o640)
        t.equal(st.uid, 1234)
        t.equal(st.gid, 2345)
        t.equal(Math.round(st.mtimeMs / 1000), 1000000)
        t.equal(Math.round(st.atimeMs / 1000), 2000000)
      })

      await t.test('df answers with the server filesystem totals', async t => {
        const r = await sh('df -P . | tail -1', mnt)
        t.equal(r.code, 0, r.stderr)
        t.ok(Number(r.stdout.trim().split(/\s+/)[1]) > 0, 'df reports a size')
      })

      await t.test('failures give the right errno', async t => {
        await mkdir(path.join(data, 'full'))
        await writeFile(path.join(data, 'full/f'), 'x')
        await writeFile(path.join(data, 'plain'), 'x')
        await mkdir(path.join(data, 'nonempty'))
        await writeFile(path.join(data, 'nonempty/f'), 'x')
        const res = await errnoProbe([
          ['missing', 'stat', `${mnt}/nope`],
          ['mkdirExisting', 'mkdir', `${mnt}/full`],
          ['createExcl', 'createExcl', `${mnt}/plain`],
          ['rmdirNonEmpty', 'rmdir', `${mnt}/full`],
          ['openDirForWrite', 'openWrite', `${mnt}/full`],
          ['unlinkDir', 'unlink', `${mnt}/full`],
          ['rmdirFile', 'rmdir', `${mnt}/plain`],
          ['throughFile', 'stat', `${mnt}/plain/x`],
          ['tooLong', 'createExcl', `${mnt}/${'n'.repeat(300)}`],
          ['renameDirOverFile', 'rename', `${mnt}/full`, `${mnt}/plain`],
          ['renameOverNonEmpty', 'rename', `${mnt}/nonempty`, `${mnt}/full`],
          ['readlinkFile', 'readlink', `${mnt}/plain`],
          ['xattr', 'getxattr', `${mnt}/plain`, 'user.none']
        ])
        t.same(res, {
          missing: 'ENOENT',
          mkdirExisting: 'EEXIST',
          createExcl: 'EEXIST',
          rmdirNonEmpty: 'ENOTEMPTY',
          openDirForWrite: 'EISDIR',
          unlinkDir: 'EISDIR',
          rmdirFile: 'ENOTDIR',
          throughFile: 'ENOTDIR',
          tooLong: 'ENAMETOOLONG',
          renameDirOverFile: 'ENOTDIR',
          renameOverNonEmpty: 'ENOTEMPTY',
          readlinkFile: 'EINVAL',
          xattr: 'ENOTSUP'
        })
      })

      const code = await m.stop()
      t.equal(code, 0, 'SIGTERM flushes, unmounts and exits 0')
    })
  }
}
