/**
 * The backend conformance suite: one set of behaviour tests, run against any backend through the Backend interface
 * only. The core runs it against local, SFTP and S3 in its own tests (under tap); a plugin author runs it against a
 * backend of their own with one command, `fsx conformance SOURCE`, or from their own tests:
 *
 *   import { conformanceCases, runConformance } from '@fsx/sdk/conformance'
 *   const report = await runConformance(backend, { log: console.log })   // report.failed === 0
 *
 * Rules:
 * - Each case works in a directory of its own (`<base>/<n>-<slug>`, made by the runner), so cases are independent
 *   and can be read alone. `base` (default "/") must be empty, or at least free of names starting with a digit.
 * - Errors are matched by `code` only; where POSIX allows two codes the pattern says so.
 * - Optional behaviour is gated on `capabilities` (skipped, with the reason, when the backend lacks it). `truncate`
 *   and `counters` have no capability flag and are gated on the method being present.
 * - The cases speak to a small assertion interface, `Check`, that tap's `Test` already satisfies; `runConformance`
 *   implements it over node:assert, so running the suite needs no test framework.
 */
import assert from 'node:assert'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Backend, OpenFlags } from './backend.js'

/** The assertions a case uses (a subset of tap's `Test`, which can be passed as is). */
export interface Check {
  equal (found: unknown, wanted: unknown, message?: string): unknown
  /** Deep equality (Buffers byte for byte, arrays element by element). */
  same (found: unknown, wanted: unknown, message?: string): unknown
  ok (value: unknown, message?: string): unknown
  match (found: string, pattern: RegExp, message?: string): unknown
  /** The promise rejects with an error whose `code` equals the string or matches the pattern. */
  rejects (promise: Promise<unknown>, wanted: { code: string | RegExp }, message?: string): Promise<unknown>
  /** Runs `fn` once the case ends, passed or failed. */
  teardown (fn: () => unknown): void
}

/** One behaviour test. `skip` is the reason it does not apply to this backend, or false. */
export interface ConformanceCase {
  title: string
  skip: string | false
  /** The case's own directory; the runner creates it (mkdir 0755) before `run`. */
  dir: string
  run (t: Check, dir: string): Promise<void>
}

const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
const XATTR_CREATE = 1
const XATTR_REPLACE = 2

/** Deterministic, non-repeating-ish bytes (includes 0x00 and 0xff), so offsets mistakes show. */
export function bytes (n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 16
  }
  return b
}

const flags = (f: Partial<OpenFlags>): OpenFlags =>
  ({ read: false, write: false, create: false, exclusive: false, truncate: false, append: false, ...f })

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimit<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

type Body = (t: Check, dir: string, backend: Backend) => Promise<void>

/** The suite's cases for `b`, each with its directory under `base` (default "/"). */
export function conformanceCases (b: Backend, base = '/'): ConformanceCase[] {
  const root = base.replace(/\/+$/, '')
  const out: ConformanceCase[] = []
  const caps = b.capabilities
  const unless = (ok: boolean, reason: string): string | false => ok ? false : reason
  const test = (title: string, skip: string | false, body: Body): void => {
    const dir = `${root}/${out.length + 1}-${title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40).replace(/-$/, '')}`
    out.push({ title, skip, dir, run: async (t, d) => await body(t, d, b) })
  }
  const always = false

  // --- identity -------------------------------------------------------------------------------------------
  test('description is scheme-qualified', always, async t => {
    t.match(b.description, /^[a-z][a-z0-9+.-]*:/)
  })

  // --- stat -----------------------------------------------------------------------------------------------
  test('stat of the root is a directory', always, async t => {
    const st = await b.stat('/')
    t.equal(st.kind, 'dir')
    t.equal(st.mode & S_IFMT, S_IFDIR, 'mode carries S_IFDIR')
  })

  test('stat of a missing path rejects with ENOENT', always, async (t, d) => {
    await t.rejects(b.stat(`${d}/missing`), { code: 'ENOENT' })
    await t.rejects(b.stat(`${d}/missing/deeper`), { code: 'ENOENT' })
  })

  test('stat below a regular file rejects with ENOTDIR', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.stat(`${d}/f/below`), { code: 'ENOTDIR' })
  })

  test('stat of a file reports kind, size, type bits and times', always, async (t, d) => {
    const before = Date.now()
    await b.write(`${d}/f`, bytes(1234))
    const st = await b.stat(`${d}/f`)
    t.equal(st.kind, 'file')
    t.equal(st.size, 1234)
    t.equal(st.mode & S_IFMT, S_IFREG, 'mode carries S_IFREG')
    t.ok(st.nlink >= 1, 'nlink at least 1')
    t.ok(st.mtimeMs > before - 5000 && st.mtimeMs < Date.now() + 5000, 'mtime is about now (ms since the epoch)')
  })

  test('paths with ".." components reject', always, async (t, d) => {
    await t.rejects(b.stat(`${d}/../..`), { code: /^(EINVAL|EACCES|EPERM)$/ })
    await t.rejects(b.stat('/..'), { code: /^(EINVAL|EACCES|EPERM)$/ })
    await t.rejects(b.write(`${d}/../../escape`, Buffer.from('x')), { code: /^(EINVAL|EACCES|EPERM)$/ })
    await t.rejects(b.list('/../'), { code: /^(EINVAL|EACCES|EPERM)$/ })
  })

  // --- mkdir / rmdir --------------------------------------------------------------------------------------
  test('mkdir creates a directory that stat reports as dir', always, async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    const st = await b.stat(`${d}/sub`)
    t.equal(st.kind, 'dir')
    t.equal(st.mode & S_IFMT, S_IFDIR)
  })

  test('mkdir of an existing name rejects with EEXIST', always, async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await t.rejects(b.mkdir(`${d}/sub`, 0o755), { code: 'EEXIST' })
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.mkdir(`${d}/f`, 0o755), { code: 'EEXIST' })
  })

  test('mkdir in a missing parent rejects with ENOENT', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await t.rejects(b.mkdir(`${d}/no/sub`, 0o755), { code: 'ENOENT' })
  })

  test('rmdir removes an empty directory', always, async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await b.rmdir(`${d}/sub`)
    await t.rejects(b.stat(`${d}/sub`), { code: 'ENOENT' })
  })

  test('rmdir of a non-empty directory rejects with ENOTEMPTY', always, async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await b.write(`${d}/sub/f`, Buffer.from('x'))
    await t.rejects(b.rmdir(`${d}/sub`), { code: 'ENOTEMPTY' })
    t.equal((await b.stat(`${d}/sub/f`)).kind, 'file', 'the content is untouched')
  })

  test('rmdir of a missing directory rejects with ENOENT', always, async (t, d) => {
    await t.rejects(b.rmdir(`${d}/missing`), { code: 'ENOENT' })
  })

  test('rmdir of a file rejects with ENOTDIR', always, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.rmdir(`${d}/f`), { code: 'ENOTDIR' })
  })

  // --- write / read ---------------------------------------------------------------------------------------
  test('write creates a file that read returns whole', always, async (t, d) => {
    const data = bytes(100_000, 7)
    await b.write(`${d}/f`, data)
    t.equal((await b.stat(`${d}/f`)).size, data.length)
    t.same(await b.read(`${d}/f`, 0, data.length), data)
  })

  test('write replaces the whole content', always, async (t, d) => {
    await b.write(`${d}/f`, bytes(5000, 1))
    const second = Buffer.from('short')
    await b.write(`${d}/f`, second)
    t.equal((await b.stat(`${d}/f`)).size, second.length)
    t.same(await b.read(`${d}/f`, 0, 5000), second, 'no tail of the old content remains')
  })

  test('write of an empty buffer makes an empty file', always, async (t, d) => {
    await b.write(`${d}/f`, Buffer.alloc(0))
    t.equal((await b.stat(`${d}/f`)).size, 0)
    t.equal((await b.read(`${d}/f`, 0, 10)).length, 0)
  })

  test('write from a staging file copies its content', always, async (t, d) => {
    const data = bytes(3 * 1024 * 1024 + 17, 3)
    const scratch = await mkdtemp(join(tmpdir(), 'fsx-conformance-'))
    t.teardown(async () => await rm(scratch, { recursive: true, force: true }))
    const staging = join(scratch, 'staging')
    await writeFile(staging, data)
    await b.write(`${d}/f`, { file: staging, size: data.length })
    t.equal((await b.stat(`${d}/f`)).size, data.length)
    t.same(await b.read(`${d}/f`, 0, data.length), data)
  })

  test('write records the mode and mtime it is given', unless(caps.chmod && caps.utimens, 'no chmod/utimens'), async (t, d) => {
    const mtimeMs = Date.UTC(2020, 0, 2, 3, 4, 5)
    await b.write(`${d}/f`, Buffer.from('x'), { mode: 0o100640, mtimeMs })
    const st = await b.stat(`${d}/f`)
    t.equal(st.mode & 0o7777, 0o640)
    t.equal(st.mtimeMs, mtimeMs)
  })

  test('write over a directory rejects with EISDIR', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await t.rejects(b.write(`${d}/sub`, Buffer.from('x')), { code: 'EISDIR' })
  })

  test('ranged read returns exactly the requested bytes and short at EOF', always, async (t, d) => {
    const data = bytes(10_000, 5)
    await b.write(`${d}/f`, data)
    t.same(await b.read(`${d}/f`, 0, 1), data.subarray(0, 1), 'first byte')
    t.same(await b.read(`${d}/f`, 4097, 3000), data.subarray(4097, 7097), 'middle range')
    t.same(await b.read(`${d}/f`, 9000, 5000), data.subarray(9000), 'short at EOF')
    t.equal((await b.read(`${d}/f`, 10_000, 10)).length, 0, 'empty at EOF')
    t.equal((await b.read(`${d}/f`, 20_000, 10)).length, 0, 'empty past EOF')
    t.equal((await b.read(`${d}/f`, 5, 0)).length, 0, 'zero length')
  })

  test('read of a missing file rejects with ENOENT', always, async (t, d) => {
    await t.rejects(b.read(`${d}/missing`, 0, 10), { code: 'ENOENT' })
  })

  test('read of a directory rejects with EISDIR', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await t.rejects(b.read(`${d}/sub`, 0, 10), { code: 'EISDIR' })
  })

  // --- remove ---------------------------------------------------------------------------------------------
  test('remove deletes a file', always, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.remove(`${d}/f`)
    await t.rejects(b.stat(`${d}/f`), { code: 'ENOENT' })
  })

  test('remove of a missing file rejects with ENOENT', always, async (t, d) => {
    await t.rejects(b.remove(`${d}/missing`), { code: 'ENOENT' })
  })

  test('remove of a directory rejects', always, async (t, d) => {
    await b.mkdir(`${d}/sub`, 0o755)
    await t.rejects(b.remove(`${d}/sub`), { code: /^(EISDIR|EPERM)$/ })
    t.equal((await b.stat(`${d}/sub`)).kind, 'dir', 'the directory is still there')
  })

  // --- list -----------------------------------------------------------------------------------------------
  test('list returns entries with stats', always, async (t, d) => {
    await b.write(`${d}/file`, bytes(42))
    await b.mkdir(`${d}/dir`, 0o755)
    const entries = await b.list(d)
    t.same(entries.map(e => e.name).sort(), ['dir', 'file'])
    const byName = new Map(entries.map(e => [e.name, e]))
    const f = byName.get('file')?.stat
    const sub = byName.get('dir')?.stat
    t.ok(f !== undefined && sub !== undefined, 'both entries carry stat')
    t.equal(f?.kind, 'file')
    t.equal(f?.size, 42)
    t.equal(sub?.kind, 'dir')
  })

  test('list of an empty directory is empty', always, async (t, d) => {
    t.same(await b.list(d), [])
  })

  test('list of a missing directory rejects with ENOENT', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await t.rejects(b.list(`${d}/missing`), { code: 'ENOENT' })
  })

  test('list of a file rejects with ENOTDIR', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.list(`${d}/f`), { code: 'ENOTDIR' })
  })

  test('1,500 entries list completely', always, async (t, d) => {
    const names = Array.from({ length: 1500 }, (_, i) => `entry-${String(i).padStart(4, '0')}`)
    const create = caps.randomWrite && b.open !== undefined
      ? async (name: string) => { await (await b.open!(`${d}/${name}`, flags({ write: true, create: true }), 0o644)).close() }
      : async (name: string) => { await b.write(`${d}/${name}`, Buffer.alloc(0)) }
    await eachLimit(names, 32, create)
    const listed = (await b.list(d)).map(e => e.name).sort()
    t.equal(listed.length, names.length)
    t.same(listed, names)
  })

  test('names with spaces, unicode, "@" and "%" round-trip', always, async (t, d) => {
    const names = ['with space', 'ünïcødé ✓ 日本', 'user@host', '100%', '%41%2F', 'emoji 😀', "quote's \"double\"", '#hash?q&x=1']
    for (const [i, name] of names.entries()) await b.write(`${d}/${name}`, Buffer.from(`content ${i}`))
    t.same((await b.list(d)).map(e => e.name).sort(), [...names].sort(), 'list returns the names exactly')
    for (const [i, name] of names.entries()) {
      t.equal((await b.read(`${d}/${name}`, 0, 100)).toString(), `content ${i}`, `read ${name}`)
    }
    await b.mkdir(`${d}/dir @ 50%`, 0o755)
    await b.write(`${d}/dir @ 50%/ü`, Buffer.from('deep'))
    t.equal((await b.read(`${d}/dir @ 50%/ü`, 0, 10)).toString(), 'deep', 'inside a directory with such a name')
  })

  // --- rename ---------------------------------------------------------------------------------------------
  test('rename moves a file', always, async (t, d) => {
    await b.write(`${d}/a`, Buffer.from('A'))
    await b.rename(`${d}/a`, `${d}/b`)
    await t.rejects(b.stat(`${d}/a`), { code: 'ENOENT' })
    t.equal((await b.read(`${d}/b`, 0, 10)).toString(), 'A')
  })

  test('rename over an existing file replaces it', unless(caps.atomicRename, 'no atomic rename'), async (t, d) => {
    await b.write(`${d}/a`, Buffer.from('A'))
    await b.write(`${d}/b`, Buffer.from('the old content'))
    await b.rename(`${d}/a`, `${d}/b`)
    await t.rejects(b.stat(`${d}/a`), { code: 'ENOENT' })
    t.equal((await b.read(`${d}/b`, 0, 100)).toString(), 'A')
  })

  test('rename of a missing source rejects with ENOENT', always, async (t, d) => {
    await t.rejects(b.rename(`${d}/missing`, `${d}/b`), { code: 'ENOENT' })
  })

  test('rename moves a directory with its contents', unless(caps.realDirectories, 'no real directories'), async (t, d) => {
    await b.mkdir(`${d}/a`, 0o755)
    await b.write(`${d}/a/f`, Buffer.from('inside'))
    await b.rename(`${d}/a`, `${d}/b`)
    await t.rejects(b.stat(`${d}/a`), { code: 'ENOENT' })
    t.equal((await b.read(`${d}/b/f`, 0, 10)).toString(), 'inside')
  })

  test('rename of a directory over a non-empty directory rejects with ENOTEMPTY',
    unless(caps.realDirectories && caps.atomicRename, 'no real directories or atomic rename'), async (t, d) => {
      await b.mkdir(`${d}/a`, 0o755)
      await b.mkdir(`${d}/b`, 0o755)
      await b.write(`${d}/b/f`, Buffer.from('x'))
      await t.rejects(b.rename(`${d}/a`, `${d}/b`), { code: /^(ENOTEMPTY|EEXIST)$/ })
    })

  test('rename of a directory over an empty directory replaces it',
    unless(caps.realDirectories && caps.atomicRename, 'no real directories or atomic rename'), async (t, d) => {
      await b.mkdir(`${d}/a`, 0o755)
      await b.write(`${d}/a/f`, Buffer.from('x'))
      await b.mkdir(`${d}/b`, 0o755)
      await b.rename(`${d}/a`, `${d}/b`)
      t.same((await b.list(`${d}/b`)).map(e => e.name), ['f'])
    })

  test('rename of a file over a directory rejects with EISDIR',
    unless(caps.realDirectories && caps.atomicRename, 'no real directories or atomic rename'), async (t, d) => {
      await b.write(`${d}/f`, Buffer.from('x'))
      await b.mkdir(`${d}/sub`, 0o755)
      await t.rejects(b.rename(`${d}/f`, `${d}/sub`), { code: 'EISDIR' })
    })

  test('rename of a directory over a file rejects with ENOTDIR',
    unless(caps.realDirectories && caps.atomicRename, 'no real directories or atomic rename'), async (t, d) => {
      await b.mkdir(`${d}/sub`, 0o755)
      await b.write(`${d}/f`, Buffer.from('x'))
      await t.rejects(b.rename(`${d}/sub`, `${d}/f`), { code: 'ENOTDIR' })
    })

  // --- symlinks / hard links ------------------------------------------------------------------------------
  const noSymlinks = unless(caps.symlinks && b.symlink !== undefined && b.readlink !== undefined, 'no symlinks')

  test('symlink creates a link that readlink returns verbatim', noSymlinks, async (t, d) => {
    await b.symlink!('some/target with space', `${d}/l`)
    t.equal(await b.readlink!(`${d}/l`), 'some/target with space')
    const st = await b.stat(`${d}/l`)
    t.equal(st.kind, 'symlink')
    t.equal(st.mode & S_IFMT, S_IFLNK, 'mode carries S_IFLNK')
    t.equal(st.size, Buffer.byteLength('some/target with space'), 'size is the target length')
  })

  test('stat of a symlink describes the link, not its target', noSymlinks, async (t, d) => {
    await b.write(`${d}/f`, bytes(5000))
    await b.symlink!('f', `${d}/l`)
    const st = await b.stat(`${d}/l`)
    t.equal(st.kind, 'symlink')
    t.equal(st.size, 1)
    const entry = (await b.list(d)).find(e => e.name === 'l')
    t.equal(entry?.stat?.kind, 'symlink', 'list does not follow it either')
  })

  test('a dangling symlink can be stat\'ed, listed and removed', noSymlinks, async (t, d) => {
    await b.symlink!('/nowhere/at/all', `${d}/l`)
    t.equal((await b.stat(`${d}/l`)).kind, 'symlink')
    t.same((await b.list(d)).map(e => e.name), ['l'])
    await b.remove(`${d}/l`)
    await t.rejects(b.stat(`${d}/l`), { code: 'ENOENT' })
  })

  test('symlink over an existing name rejects with EEXIST', noSymlinks, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.symlink!('target', `${d}/f`), { code: 'EEXIST' })
  })

  test('readlink of a regular file rejects with EINVAL', noSymlinks, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.readlink!(`${d}/f`), { code: 'EINVAL' })
  })

  const noLinks = unless(caps.hardlinks && b.link !== undefined, 'no hard links')

  test('link makes a second name for the same file', noLinks, async (t, d) => {
    await b.write(`${d}/a`, Buffer.from('shared'))
    await b.link!(`${d}/a`, `${d}/b`)
    const [sa, sb] = [await b.stat(`${d}/a`), await b.stat(`${d}/b`)]
    t.equal(sa.nlink, 2)
    t.equal(sb.nlink, 2)
    if (sa.ino !== undefined) t.equal(sb.ino, sa.ino, 'same inode')
    t.equal((await b.read(`${d}/b`, 0, 10)).toString(), 'shared')
    await b.remove(`${d}/a`)
    t.equal((await b.stat(`${d}/b`)).nlink, 1, 'the other name survives')
  })

  test('link to an existing name rejects with EEXIST', noLinks, async (t, d) => {
    await b.write(`${d}/a`, Buffer.from('x'))
    await b.write(`${d}/b`, Buffer.from('y'))
    await t.rejects(b.link!(`${d}/a`, `${d}/b`), { code: 'EEXIST' })
  })

  // --- attributes -----------------------------------------------------------------------------------------
  test('chmod changes the permission bits', unless(caps.chmod && b.chmod !== undefined, 'no chmod'), async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.chmod!(`${d}/f`, 0o640)
    const st = await b.stat(`${d}/f`)
    t.equal(st.mode & 0o7777, 0o640)
    t.equal(st.kind, 'file')
    await b.mkdir(`${d}/sub`, 0o755)
    await b.chmod!(`${d}/sub`, 0o700)
    t.equal((await b.stat(`${d}/sub`)).mode & 0o7777, 0o700, 'on a directory too')
  })

  test('chmod of a missing path rejects with ENOENT', unless(caps.chmod && b.chmod !== undefined, 'no chmod'), async (t, d) => {
    await t.rejects(b.chmod!(`${d}/missing`, 0o600), { code: 'ENOENT' })
  })

  test('chown to the current owner succeeds', unless(caps.chown && b.chown !== undefined, 'no chown'), async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    const st = await b.stat(`${d}/f`)
    await b.chown!(`${d}/f`, st.uid, st.gid)
    const after = await b.stat(`${d}/f`)
    t.equal(after.uid, st.uid)
    t.equal(after.gid, st.gid)
  })

  const noUtimens = unless(caps.utimens && b.utimens !== undefined, 'no utimens')
  const T1 = Date.UTC(2001, 1, 3, 4, 5, 6)
  const T2 = Date.UTC(2011, 6, 7, 8, 9, 10)
  const T3 = Date.UTC(2021, 10, 11, 12, 13, 14)

  test('utimens sets both times', noUtimens, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.utimens!(`${d}/f`, T1, T2)
    const st = await b.stat(`${d}/f`)
    t.equal(st.atimeMs, T1)
    t.equal(st.mtimeMs, T2)
  })

  test('utimens with one side undefined leaves it unchanged', noUtimens, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.utimens!(`${d}/f`, T1, T2)
    await b.utimens!(`${d}/f`, undefined, T3)
    let st = await b.stat(`${d}/f`)
    t.equal(st.atimeMs, T1, 'atime left alone')
    t.equal(st.mtimeMs, T3, 'mtime set')
    await b.utimens!(`${d}/f`, T2, undefined)
    st = await b.stat(`${d}/f`)
    t.equal(st.atimeMs, T2, 'atime set')
    t.equal(st.mtimeMs, T3, 'mtime left alone')
  })

  test('utimens of a symlink changes the link, not its target', unless(!noUtimens && !noSymlinks, 'no utimens or symlinks'), async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.utimens!(`${d}/f`, T1, T1)
    await b.symlink!('f', `${d}/l`)
    await b.utimens!(`${d}/l`, T2, T2)
    t.equal((await b.stat(`${d}/l`)).mtimeMs, T2, 'the link changed')
    t.equal((await b.stat(`${d}/f`)).mtimeMs, T1, 'the target did not')
  })

  test('statfs reports block counts and a name limit', unless(caps.statfs && b.statfs !== undefined, 'no statfs'), async (t, d) => {
    const s = await b.statfs!(d)
    t.ok(s.bsize > 0, 'bsize')
    t.ok(s.blocks > 0, 'blocks')
    t.ok(s.bavail <= s.bfree || s.bfree === 0, 'bavail <= bfree')
    t.ok(s.namemax >= 255, 'namemax')
  })

  // --- xattrs ---------------------------------------------------------------------------------------------
  const noXattrs = unless(caps.xattrs && b.getxattr !== undefined && b.setxattr !== undefined &&
    b.listxattr !== undefined && b.removexattr !== undefined, 'no xattrs')

  test('setxattr then getxattr returns the same bytes', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    const value = Buffer.from([0, 1, 2, 0xff, 0x0a, 0x3d, 0x22, 0x5c, 0])
    await b.setxattr!(`${d}/f`, 'user.binary', value, 0)
    t.same(await b.getxattr!(`${d}/f`, 'user.binary'), value)
    const big = bytes(4000, 9)
    await b.setxattr!(`${d}/f`, 'user.big', big, 0)
    t.same(await b.getxattr!(`${d}/f`, 'user.big'), big, 'a 4000-byte value')
  })

  test('an empty xattr value round-trips', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.setxattr!(`${d}/f`, 'user.empty', Buffer.alloc(0), 0)
    t.equal((await b.getxattr!(`${d}/f`, 'user.empty')).length, 0)
    t.ok((await b.listxattr!(`${d}/f`)).includes('user.empty'), 'and is listed')
  })

  test('listxattr lists the names set', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    const userNames = async (): Promise<string[]> => (await b.listxattr!(`${d}/f`)).filter(n => n.startsWith('user.')).sort()
    t.same(await userNames(), [], 'none at first')
    await b.setxattr!(`${d}/f`, 'user.one', Buffer.from('1'), 0)
    await b.setxattr!(`${d}/f`, 'user.two = ü\\', Buffer.from('2'), 0)
    t.same(await userNames(), ['user.one', 'user.two = ü\\'])
  })

  test('getxattr of a missing attribute rejects with ENODATA', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.getxattr!(`${d}/f`, 'user.nope'), { code: 'ENODATA' })
  })

  test('removexattr removes it, and again rejects with ENODATA', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await b.setxattr!(`${d}/f`, 'user.gone', Buffer.from('v'), 0)
    await b.removexattr!(`${d}/f`, 'user.gone')
    await t.rejects(b.getxattr!(`${d}/f`, 'user.gone'), { code: 'ENODATA' })
    await t.rejects(b.removexattr!(`${d}/f`, 'user.gone'), { code: 'ENODATA' })
  })

  test('setxattr honours XATTR_CREATE and XATTR_REPLACE', noXattrs, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.setxattr!(`${d}/f`, 'user.k', Buffer.from('1'), XATTR_REPLACE), { code: 'ENODATA' })
    await b.setxattr!(`${d}/f`, 'user.k', Buffer.from('1'), XATTR_CREATE)
    await t.rejects(b.setxattr!(`${d}/f`, 'user.k', Buffer.from('2'), XATTR_CREATE), { code: 'EEXIST' })
    await b.setxattr!(`${d}/f`, 'user.k', Buffer.from('3'), XATTR_REPLACE)
    t.equal((await b.getxattr!(`${d}/f`, 'user.k')).toString(), '3')
  })

  test('xattrs of a missing file reject with ENOENT', noXattrs, async (t, d) => {
    await t.rejects(b.getxattr!(`${d}/missing`, 'user.a'), { code: 'ENOENT' })
    await t.rejects(b.listxattr!(`${d}/missing`), { code: 'ENOENT' })
  })

  // --- open / handles -------------------------------------------------------------------------------------
  const noOpen = unless(caps.randomWrite && b.open !== undefined, 'no open/random writes')

  test('a handle reads and writes at offsets', noOpen, async (t, d) => {
    const h = await b.open!(`${d}/f`, flags({ read: true, write: true, create: true }), 0o644)
    t.equal(await h.write(0, Buffer.from('hello world')), 11)
    t.equal(await h.write(6, Buffer.from('WORLD')), 5)
    t.equal((await h.read(0, 100)).toString(), 'hello WORLD', 'short only at EOF')
    t.equal((await h.read(3, 4)).toString(), 'lo W')
    await h.sync()
    await h.close()
    t.equal((await b.read(`${d}/f`, 0, 100)).toString(), 'hello WORLD', 'visible through read() after close')
  })

  test('a write past EOF leaves a zero-filled hole', noOpen, async (t, d) => {
    const h = await b.open!(`${d}/f`, flags({ read: true, write: true, create: true }), 0o644)
    await h.write(10, Buffer.from('x'))
    t.same(await h.read(0, 100), Buffer.concat([Buffer.alloc(10), Buffer.from('x')]))
    await h.close()
    t.equal((await b.stat(`${d}/f`)).size, 11)
  })

  test('open of a missing file without create rejects with ENOENT', noOpen, async (t, d) => {
    await t.rejects(b.open!(`${d}/missing`, flags({ read: true }), 0), { code: 'ENOENT' })
  })

  test('open with exclusive on an existing file rejects with EEXIST', noOpen, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    await t.rejects(b.open!(`${d}/f`, flags({ write: true, create: true, exclusive: true }), 0o644), { code: 'EEXIST' })
  })

  test('open with truncate empties the file', noOpen, async (t, d) => {
    await b.write(`${d}/f`, bytes(1000))
    const h = await b.open!(`${d}/f`, flags({ write: true, truncate: true }), 0)
    await h.close()
    t.equal((await b.stat(`${d}/f`)).size, 0)
  })

  test('an append handle writes at end of file whatever the offset', noOpen, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('abc'))
    const h = await b.open!(`${d}/f`, flags({ write: true, append: true }), 0)
    await h.write(0, Buffer.from('def'))
    await h.write(1, Buffer.from('ghi'))
    await h.close()
    t.equal((await b.read(`${d}/f`, 0, 100)).toString(), 'abcdefghi')
  })

  test('handle truncate changes the size', noOpen, async (t, d) => {
    const h = await b.open!(`${d}/f`, flags({ read: true, write: true, create: true }), 0o644)
    await h.write(0, bytes(5000))
    await h.truncate(100)
    t.equal((await h.read(0, 10_000)).length, 100, 'shrunk')
    await h.truncate(300)
    t.same((await h.read(100, 10_000)), Buffer.alloc(200), 'grown with zeros')
    await h.close()
    t.equal((await b.stat(`${d}/f`)).size, 300)
  })

  test('a read-only handle rejects writes', noOpen, async (t, d) => {
    await b.write(`${d}/f`, Buffer.from('x'))
    const h = await b.open!(`${d}/f`, flags({ read: true }), 0)
    t.teardown(() => h.close())
    await t.rejects(h.write(0, Buffer.from('y')), { code: /^(EBADF|EACCES|EPERM)$/ })
  })

  test('truncate by path shrinks and grows a file', unless(b.truncate !== undefined, 'no truncate'), async (t, d) => {
    await b.write(`${d}/f`, bytes(1000, 2))
    await b.truncate!(`${d}/f`, 10)
    t.same(await b.read(`${d}/f`, 0, 100), bytes(1000, 2).subarray(0, 10))
    await b.truncate!(`${d}/f`, 20)
    t.equal((await b.stat(`${d}/f`)).size, 20)
    await t.rejects(b.truncate!(`${d}/missing`, 0), { code: 'ENOENT' })
  })

  // --- counters -------------------------------------------------------------------------------------------
  test('counters are numbers and requests grow', unless(b.counters !== undefined, 'no counters'), async (t, d) => {
    const before = b.counters!()
    await b.write(`${d}/f`, bytes(10))
    await b.read(`${d}/f`, 0, 10)
    const after = b.counters!()
    for (const [k, v] of Object.entries(after)) t.ok(Number.isFinite(v), `${k} is a number`)
    if ('requests' in after) t.ok(after.requests > before.requests, 'requests grew')
  })

  return out
}

/** What `runConformance` found. */
export interface ConformanceReport {
  passed: number
  failed: number
  skipped: number
  /** Title and first line of the reason of each failed case. */
  failures: Array<{ title: string, reason: string }>
}

/** The `Check` of `runConformance`: node:assert, first failure ends the case. */
function assertCheck (teardowns: Array<() => unknown>): Check {
  return {
    equal: (found, wanted, message) => assert.strictEqual(found, wanted, message),
    same: (found, wanted, message) => assert.deepEqual(found, wanted, message),
    ok: (value, message) => assert.ok(value, message),
    match: (found, pattern, message) => assert.match(found, pattern, message),
    rejects: async (promise, wanted, message) => await assert.rejects(promise, (err: { code?: unknown }) => {
      const code = String(err?.code)
      const good = typeof wanted.code === 'string' ? code === wanted.code : wanted.code.test(code)
      if (!good) throw new assert.AssertionError({ message: `${message ?? 'rejects'}: code ${code}, wanted ${String(wanted.code)}`, actual: code, expected: wanted.code })
      return true
    }, message),
    teardown: fn => { teardowns.push(fn) }
  }
}

/**
 * Runs every case against `backend`, one at a time, each in its own directory under `base` (default "/"), and
 * reports one line per case through `log` (`ok`, `not ok` with the reason, or `skip` with why). Never throws for
 * a failing case; closing the backend is the caller's job.
 */
export async function runConformance (backend: Backend, opts: { base?: string, log?: (line: string) => void, grep?: RegExp } = {}): Promise<ConformanceReport> {
  const log = opts.log ?? (() => {})
  const report: ConformanceReport = { passed: 0, failed: 0, skipped: 0, failures: [] }
  for (const c of conformanceCases(backend, opts.base)) {
    if (opts.grep !== undefined && !opts.grep.test(c.title)) continue
    if (c.skip !== false) {
      report.skipped++
      log(`skip    ${c.title} (${c.skip})`)
      continue
    }
    const teardowns: Array<() => unknown> = []
    try {
      await backend.mkdir(c.dir, 0o755)
      await c.run(assertCheck(teardowns), c.dir)
      report.passed++
      log(`ok      ${c.title}`)
    } catch (err) {
      const reason = String((err as Error)?.message ?? err).split('\n')[0]
      report.failed++
      report.failures.push({ title: c.title, reason })
      log(`not ok  ${c.title}: ${reason}`)
    } finally {
      for (const fn of teardowns.reverse()) {
        try { await fn() } catch { /* the case's verdict stands */ }
      }
    }
  }
  return report
}
