/**
 * POSIX conformance through real mounts, for the categories of pjdfstest that fsx failed (ownership, special
 * files, long names, names as bytes, rename edge cases), written from what those tests check, over the local
 * backend, a real sshd (logged in as root) and a real S3 server. Every call on a mount runs in a child process
 * (bash, coreutils, setpriv for a second user); results are checked through the mount and on the backend.
 */
import t from 'tap'
import path from 'node:path'
import { chmod, lstat, mkdir, readdir, stat } from 'node:fs/promises'
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { fuseAvailable, mountFsx, sh, tempDir, type Mount } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { startS3Server } from '../helpers/s3-server.js'

/** The local target's backing directory of the test running now. */
/** The local target's backing directory of the test running now. */
let current = ''

/** A second local user, as pjdfstest uses: uid/gid 1001 (no account needed: setpriv takes numbers). */
const USER = 1001
const as1001 = (script: string): string =>
  `setpriv --reuid ${USER} --regid ${USER} --clear-groups bash -c '${('set -euo pipefail\n' + script).replace(/'/g, "'\\''")}'`

interface Target {
  name: string
  /** Mounts it with `args`. */
  mount: (tt: typeof t, args: string[]) => Promise<Mount>
  /** Owner of a path on the backend side (relative to the mount root), as "uid:gid". */
  ownerOnBackend: (rel: string) => Promise<string>
  /** Names on the backend side (raw bytes as latin1 for comparison), in the directory `rel`. */
  namesOnBackend?: (rel: string) => Promise<string[]>
  bytesNames: boolean
  specialFiles: boolean
}

function suite (target: Target): void {
  t.test(`${target.name}: names are bytes, never merged`, async t => {
    const m = await target.mount(t, [])
    if (target.bytesNames) {
      const r = await sh(`
        printf one > $'keep\\xff'
        printf two > $'keep\\xfe'
        cat $'keep\\xff'; cat $'keep\\xfe'; echo
        ls | od -An -tx1 | tr -d ' \\n'; echo
        rm $'keep\\xff'
        cat $'keep\\xfe'; echo
        ls | od -An -tx1 | tr -d ' \\n'`, m.mountpoint)
      t.equal(r.code, 0, r.stderr)
      const [both, listed, after, listedAfter] = r.stdout.split('\n')
      t.equal(both, 'onetwo', 'two names that are not UTF-8 keep two contents')
      t.equal(listed, '6b656570fe0a6b656570ff0a', 'ls shows both names with their exact bytes')
      t.equal(after, 'two', 'unlinking one leaves the other')
      t.equal(listedAfter, '6b656570fe0a')
      if (target.namesOnBackend) t.same(await target.namesOnBackend('.'), ['keep\xfe'], 'the backend holds the exact bytes')
    } else {
      const r = await sh(`
        err=$( { printf one > $'keep\\xff'; } 2>&1 ) && exit 3
        echo "$err"
        ls | od -An -tx1 | tr -d ' \\n'`, m.mountpoint)
      t.equal(r.code, 0, r.stderr)
      t.match(r.stdout, /Invalid or incomplete multibyte or wide character/, 'a name that is not UTF-8 is refused with EILSEQ')
      t.equal(r.stdout.split('\n')[1], '', 'and nothing was created under another name')
    }
    const u = await sh('printf ok > "ünï €.txt" && cat "ünï €.txt" && ls | grep ü', m.mountpoint)
    t.equal(u.stdout, 'okünï €.txt\n', 'UTF-8 names work as before')
  })

  t.test(`${target.name}: files a second user creates on an allow_other mount are that user's`, async t => {
    const m = await target.mount(t, ['--allow-other'])
    const setup = await sh('mkdir shared && chmod 1777 shared && mkdir sgid && chmod 2777 sgid && chgrp 4242 sgid', m.mountpoint)
    t.equal(setup.code, 0, setup.stderr)
    const r = await sh(as1001(`
      cd shared
      printf a > f && printf b >> f && cat f; echo
      mkdir d && printf c > d/inner && cat d/inner; echo
      ln -s f l
      stat -c '%u:%g %n' f d d/inner
      stat -c '%u:%g' l
      cd ../sgid
      printf s > g && mkdir sub
      stat -c '%u:%g %a %n' g sub`), m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    t.equal(lines[0], 'ab', 'the user can append to the file it created')
    t.equal(lines[1], 'c', 'and create inside the directory it created')
    t.equal(lines[2], `${USER}:${USER} f`)
    t.equal(lines[3], `${USER}:${USER} d`)
    t.equal(lines[4], `${USER}:${USER} d/inner`)
    t.equal(lines[5], `${USER}:${USER}`, 'a symlink belongs to its creator')
    t.match(lines[6], new RegExp(`^${USER}:4242 \\d+ g$`), 'in a setgid directory the group is the directory\'s')
    t.match(lines[7], new RegExp(`^${USER}:4242 2\\d\\d\\d sub$`), 'and a new directory there is setgid too')
    t.equal(await target.ownerOnBackend('shared/f'), `${USER}:${USER}`, 'the backend records the owner')
    t.equal(await target.ownerOnBackend('shared/d'), `${USER}:${USER}`)
  })

  t.test(`${target.name}: FIFOs, sockets and device nodes`, async t => {
    const m = await target.mount(t, [])
    const r = await sh(`
      err=$(mktemp)
      for what in "mkfifo p" "mknod c c 1 3" "${process.execPath} -e 'require(\\"net\\").createServer().on(\\"error\\", e => { console.error(e.code); process.exit(1) }).listen(\\"s\\", () => process.exit(0))'"; do
        if eval "$what" 2>"$err"; then echo ok; else tail -n 1 "$err"; fi
      done
      rm -f "$err"
      ls`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    if (target.specialFiles) {
      t.equal(r.stdout, 'ok\nok\nok\nc\np\ns\n', 'mkfifo, mknod and bind(2) create their nodes')
      const types = await sh("stat -c '%F %t:%T' p c s", m.mountpoint)
      t.equal(types.stdout, 'fifo 0:0\ncharacter special file 1:3\nsocket 0:0\n', 'with their types and device numbers')
      const st = await sh("printf hello > p & cat p; wait", m.mountpoint)
      t.equal(st.stdout, 'hello', 'the FIFO works as one')
    } else {
      t.match(r.stdout, /^mkfifo: cannot create fifo 'p': Operation not permitted\nmknod: c: Operation not permitted\n[^\n]*EPERM/, 'EPERM, as documented')
    }
  })

  t.test(`${target.name}: rename edge cases`, async t => {
    const m = await target.mount(t, [])
    const r = await sh(`
      ren () { python3 -c 'import os, sys
try:
    os.rename(sys.argv[1], sys.argv[2]); print("ok")
except OSError as e:
    print(e.strerror)' "$1" "$2"; }
      mkdir -p a/b e && printf x > f && printf y > g && mkdir full && printf z > full/in
      ren a a/b/c
      ren f e
      ren e f
      ren e full
      ren f f
      ren f g
      cat g; echo; ls`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    t.equal(lines[0], 'Invalid argument', 'a directory into itself: EINVAL')
    t.equal(lines[1], 'Is a directory', 'a file over a directory: EISDIR')
    t.equal(lines[2], 'Not a directory', 'a directory over a file: ENOTDIR')
    t.match(lines[3], /^(Directory not empty|File exists)$/, 'a directory over a non-empty one: ENOTEMPTY (or EEXIST)')
    t.equal(lines[4], 'ok', 'a file onto itself changes nothing')
    t.equal(lines[5], 'ok')
    t.equal(lines[6], 'x', 'a file over a file replaces it')
    t.equal(lines.slice(7).join(' ').trim(), 'a e full g')
  })
}

if (fuseAvailable(t)) {
  suite({
    name: 'local',
    mount: async (tt, args) => {
      const data = await tempDir('fsx-data-')
      await chmod(data, 0o755)
      const m = await mountFsx(tt, data, args)
      current = data
      return m
    },
    ownerOnBackend: async rel => { const s = await lstat(path.join(current, rel)); return `${s.uid}:${s.gid}` },
    namesOnBackend: async rel => (await readdir(path.join(current, rel), { encoding: 'buffer' })).map(b => b.toString('latin1')).sort(),
    bytesNames: true,
    specialFiles: true
  })

  // fuse-native (libfuse 2) stays a supported engine: the same cases through it.
  suite({
    name: 'local, fuse-native engine',
    mount: async (tt, args) => {
      const data = await tempDir('fsx-data-')
      await chmod(data, 0o755)
      current = data
      return await mountFsx(tt, data, [...args, '--engine', 'fuse-native'])
    },
    ownerOnBackend: async rel => { const s = await lstat(path.join(current, rel)); return `${s.uid}:${s.gid}` },
    namesOnBackend: async rel => (await readdir(path.join(current, rel), { encoding: 'buffer' })).map(b => b.toString('latin1')).sort(),
    bytesNames: true,
    specialFiles: true
  })

  t.test('local: a path of 4,081 bytes (PATH_MAX is 4,096 with the source\'s own path in front) and names of 255 bytes work; 256 bytes is ENAMETOOLONG', async t => {
    const data = await tempDir('fsx-data-')
    const m = await mountFsx(t, data, [])
    const part = 'd'.repeat(203)
    const deep = Array.from({ length: 20 }, () => part).join('/')
    const r = await sh(`
      mkdir -p ${deep}
      printf deep > ${deep}/f
      cat ${deep}/f; echo
      printf n > ${'n'.repeat(255)} && echo ok255
      err=$(mktemp)
      if ( printf n > ${'n'.repeat(256)} ) 2>"$err"; then echo created256; else sed 's/.*: //' "$err"; fi
      rm -f "$err"`, m.mountpoint)
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, 'deep\nok255\nFile name too long\n')
    t.equal(Buffer.byteLength(`${deep}/f`), 4081)
    // Read relative to the source: with the source's own path in front it would be longer than PATH_MAX.
    t.equal((await sh(`cat ${deep}/f`, data)).stdout, 'deep', 'the file is on the backend at that path')
  })
}

if (fuseAvailable(t) && sshdAvailable(t)) {
  const sshd = await startSshd(t)
  let n = 0
  let where = ''
  suite({
    name: 'sftp',
    mount: async (tt, args) => {
      where = path.join(sshd.dataDir, `c${n++}`)
      await mkdir(where)
      await chmod(where, 0o755)
      return await mountFsx(tt, `${sshd.url}/${path.basename(where)}`, args, { env: sshd.env })
    },
    ownerOnBackend: async rel => { const s = await stat(path.join(where, rel)); return `${s.uid}:${s.gid}` },
    bytesNames: false,
    specialFiles: false
  })
}

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  let n = 0
  let prefix = ''
  const sdk = s3.client()
  suite({
    name: 's3',
    mount: async (tt, args) => {
      prefix = `conf${n++}`
      return await mountFsx(tt, `s3://${s3.bucket}/${prefix}`, args, { env: s3.env })
    },
    ownerOnBackend: async rel => {
      const head = async (Key: string) => await sdk.send(new HeadObjectCommand({ Bucket: s3.bucket, Key }))
      const h = await head(`${prefix}/${rel}`).catch(async () => await head(`${prefix}/${rel}/`))
      return `${h.Metadata?.uid}:${h.Metadata?.gid}`
    },
    bytesNames: false,
    specialFiles: false
  })
}
