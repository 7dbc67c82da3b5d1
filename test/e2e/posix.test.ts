// POSIX behaviour through a real FUSE mount of the local backend, under every preset, checked against the
// backing directory. All filesystem work happens in child processes (bash, coreutils, a node errno probe).
import t from 'tap'
import path from 'node:path'
import { mkdir, writeFile, readFile, lstat, stat, readlink, readdir, symlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { errnoProbe, fuseAvailable, mountFsx, run, sh, tempDir } from '../helpers/mount.js'

if (fuseAvailable(t)) {
  for (const preset of ['balanced', 'high-performance', 'safe']) {
    t.test(`local backend under the ${preset} preset`, async t => {
      const data = await tempDir(t, 'fsx-data-')
      const outside = await tempDir(t, 'fsx-outside-')
      await writeFile(path.join(outside, 'secret'), 'outside')
      // xattrs are off in balanced and high-performance (ls -l then asks nothing per file): turned on to test them.
      const m = await mountFsx(t, data, ['--preset', preset, '--xattrs'])
      const mnt = m.mountpoint
      const blob = randomBytes(3 * 1024 * 1024 + 17)
      const src = path.join(await tempDir(t, 'fsx-src-'), 'blob.bin')
      await writeFile(src, blob)

      await t.test('cp, ls, mv, ln -s and rm through the mount match the backing directory byte for byte', async t => {
        const r = await sh(`
          cp ${src} blob.bin
          printf 'hello\\n' > a.txt
          mkdir -p d/e && cp a.txt d/e/copy.txt
          mv a.txt moved.txt
          ln -s moved.txt link
          ln moved.txt hard
          cp blob.bin gone.bin && rm gone.bin
          cat link; ls -1 | sort | tr '\\n' ' '`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /hello\n/)
        t.same((await readdir(data)).sort(), ['blob.bin', 'd', 'hard', 'link', 'moved.txt'])
        t.ok((await readFile(path.join(data, 'blob.bin'))).equals(blob), 'a 3 MiB copy is byte-identical on the backend')
        t.equal(await readFile(path.join(data, 'd/e/copy.txt'), 'utf8'), 'hello\n')
        t.equal(await readlink(path.join(data, 'link')), 'moved.txt')
        t.equal((await stat(path.join(data, 'hard'))).nlink, 2, 'hard link shares the inode')
        t.equal((await stat(path.join(data, 'hard'))).ino, (await stat(path.join(data, 'moved.txt'))).ino)
        const back = await run('cmp', [path.join(mnt, 'blob.bin'), src])
        t.equal(back.code, 0, 'reading back through the mount gives the same bytes')
      })

      await t.test('rename replaces an existing file and an existing empty directory', async t => {
        const r = await sh(`
          printf old > target && printf new > source && mv -f source target && cat target
          mkdir -p dsrc/sub dtgt && printf x > dsrc/sub/f && mv -T dsrc dtgt && ls dtgt/sub`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.equal(await readFile(path.join(data, 'target'), 'utf8'), 'new')
        t.equal(await readFile(path.join(data, 'dtgt/sub/f'), 'utf8'), 'x')
        await t.rejects(lstat(path.join(data, 'dsrc')), { code: 'ENOENT' })
      })

      await t.test('write, truncate, append and fsync keep the content the application expects', async t => {
        const r = await sh(`
          printf 0123456789 > t.txt
          truncate -s 4 t.txt && truncate -s 8 t.txt
          printf AB >> t.txt
          dd if=/dev/zero of=t.txt bs=1 count=2 seek=1 conv=notrunc,fsync status=none
          od -An -c t.txt | tr -s ' '`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.same([...await readFile(path.join(data, 't.txt'))], [0x30, 0, 0, 0x33, 0, 0, 0, 0, 0x41, 0x42])
      })

      await t.test('chmod, chown and utimens reach the backend; UTIME_OMIT leaves the other time alone', async t => {
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
        t.equal(Math.round(st.mtimeMs / 1000), 1000000, 'mtime set by touch -m')
        t.equal(Math.round(st.atimeMs / 1000), 2000000, 'atime kept by touch -m (UTIME_OMIT)')
      })

      await t.test('extended attributes are set, read, listed and removed', async t => {
        const r = await sh(`
          printf x > x.txt
          setfattr -n user.colour -v blue x.txt
          getfattr -n user.colour --only-values x.txt; echo
          getfattr -d x.txt | grep -c user.colour
          setfattr -x user.colour x.txt
          getfattr -n user.colour x.txt 2>&1 || true`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /^blue\n1\n.*No such attribute/s)
      })

      await t.test('statfs and access answer', async t => {
        const r = await sh(`df -P . | tail -1; test -r blob.bin && test -w blob.bin && echo accessible`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /accessible/)
        const blocks = Number(r.stdout.split('\n')[0].trim().split(/\s+/)[1])
        t.ok(blocks > 0, 'df reports a size')
      })

      await t.test('failures give the right errno', async t => {
        await mkdir(path.join(data, 'full'))
        await writeFile(path.join(data, 'full/f'), 'x')
        await writeFile(path.join(data, 'plain'), 'x')
        const long = 'n'.repeat(300)
        const res = await errnoProbe([
          ['missing', 'stat', `${mnt}/nope`],
          ['mkdirExisting', 'mkdir', `${mnt}/full`],
          ['createExcl', 'createExcl', `${mnt}/plain`],
          ['rmdirNonEmpty', 'rmdir', `${mnt}/full`],
          ['openDirForWrite', 'openWrite', `${mnt}/full`],
          ['unlinkDir', 'unlink', `${mnt}/full`],
          ['rmdirFile', 'rmdir', `${mnt}/plain`],
          ['throughFile', 'stat', `${mnt}/plain/x`],
          ['tooLong', 'createExcl', `${mnt}/${long}`],
          ['crossDevice', 'rename', `${mnt}/plain`, `${outside}/plain`],
          ['renameDirOverFile', 'rename', `${mnt}/full`, `${mnt}/plain`],
          ['renameOverNonEmpty', 'rename', `${mnt}/d`, `${mnt}/full`],
          ['readlinkFile', 'readlink', `${mnt}/plain`],
          ['missingXattr', 'getxattr', `${mnt}/plain`, 'user.none']
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
          crossDevice: 'EXDEV',
          renameDirOverFile: 'ENOTDIR',
          renameOverNonEmpty: 'ENOTEMPTY',
          readlinkFile: 'EINVAL',
          missingXattr: 'ENODATA'
        })
      })

      await t.test('another user gets EACCES without allow_other', async t => {
        const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ls', mnt])
        t.not(r.code, 0)
        t.match(r.stderr, /Permission denied/)
      })

      await t.test('a symlink pointing out of the root is not followed on the host side', async t => {
        await symlink(outside, path.join(data, 'escape'))
        await symlink(path.join(outside, 'secret'), path.join(data, 'escape-file'))
        const before = await stat(path.join(outside, 'secret'))
        const r = await sh(`
          stat -c %F escape
          touch -h -d @1000 escape-file
          chown -h 4321:4321 escape-file`, mnt)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /symbolic link/)
        const after = await stat(path.join(outside, 'secret'))
        t.equal(after.mtimeMs, before.mtimeMs, 'the target outside the root kept its mtime')
        t.equal(after.uid, before.uid, 'the target outside the root kept its owner')
        t.equal((await lstat(path.join(data, 'escape-file'))).uid, 4321, 'the link itself changed')
      })

      const code = await m.stop()
      t.equal(code, 0, 'SIGTERM flushes, unmounts and exits 0')
    })
  }
}
