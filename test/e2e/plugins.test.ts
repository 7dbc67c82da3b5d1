// A third-party backend installed with `fsx plugins install` is found through the same fsx:backends hook as the
// built-in ones. The fixture backend cannot write at an offset (like S3), so this also drives the VFS's local
// staging of partial writes through a real mount.
import t from 'tap'
import path from 'node:path'
import { writeFile, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { fsx, fuseAvailable, mountFsx, run, sh, tempDir, ROOT } from '../helpers/mount.js'
import { exercise } from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'fsx-backend-memory')

t.test('a backend plugin installed with fsx plugins install serves its scheme', async t => {
  const home = await tempDir(t, 'fsx-plugins-')
  const env = { XDG_DATA_HOME: path.join(home, 'data'), XDG_CACHE_HOME: path.join(home, 'cache'), XDG_CONFIG_HOME: path.join(home, 'config') }

  const before = await fsx(['mount', 'mem://x', home], { env })
  t.equal(before.code, 3)
  t.match(before.stderr, /no backend serves "mem:" sources.*installed schemes: file, local/)

  const inst = await fsx(['plugins', 'install', `file:${FIXTURE}`], { env, timeoutMs: 180_000 })
  t.equal(inst.code, 0, inst.stderr)
  const list = await fsx(['plugins'], { env })
  t.match(list.stdout, /fsx-backend-memory/)

  if (!fuseAvailable(t)) return
  const m = await mountFsx(t, 'mem://store', ['--preset', 'balanced'], { env })
  const blob = randomBytes(1024 * 1024 + 3)
  const src = path.join(home, 'blob')
  await writeFile(src, blob)
  const r = await sh(`
    cp ${src} big.bin
    printf 'hello' > h.txt
    printf 'J' | dd of=h.txt bs=1 seek=1 conv=notrunc status=none
    truncate -s 3 h.txt
    mkdir d && mv h.txt d/h.txt
    cat d/h.txt`, m.mountpoint)
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, 'hJl', 'a partial write and a truncate went through the staged copy')
  t.ok((await readFile(path.join(m.mountpoint, 'big.bin'))).equals(blob), 'a 1 MiB file reads back byte for byte')
  const cmp = await run('cmp', [src, path.join(m.mountpoint, 'big.bin')])
  t.equal(cmp.code, 0)

  for (const seed of testSeeds([4242], line => t.comment(line))) {
    const report = await exercise({ root: m.mountpoint, seed, ops: 1500, opTimeoutMs: 60_000 })
    t.equal(report.ops, 1500, `the random-operation exerciser runs clean on a whole-object backend (seed=${seed})`)
  }
  t.equal(await m.stop(), 0)

  const un = await fsx(['plugins', 'uninstall', 'fsx-backend-memory'], { env })
  t.equal(un.code, 0, un.stderr)
})
