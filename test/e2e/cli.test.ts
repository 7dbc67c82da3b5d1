// The CLI as users meet it: daemon mount and unmount, clean signals, stale mounts, and one readable line with a
// non-zero exit for every kind of bad input, never a stack trace.
import t from 'tap'
import path from 'node:path'
import { writeFile, readFile, mkdir } from 'node:fs/promises'
import { BIN, fuseAvailable, fsx, isMounted, mountFsx, forceUnmount, run, tempDir, type Result } from '../helpers/mount.js'

/** One line on stderr, no stack frames, the expected exit code. */
function oneLineError (t: Tap.Test, r: Result, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit code ${code}: ${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${r.stderr}`)
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  t.match(lines[0], pattern)
}

t.test('bad input gives one readable line and a non-zero exit', async t => {
  const dir = await tempDir()
  const env = { XDG_CONFIG_HOME: dir }
  oneLineError(t, await fsx(['tune', '--preset', 'turbo'], { env }), 3, /unknown preset "turbo".*balanced, high-performance, safe/)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_ATTR_TTL: 'abc' } }), 3, /FSX_ATTR_TTL.*"abc" is not a duration/)
  oneLineError(t, await fsx(['tune', '--bogus'], { env }), 2, /Nonexistent flag: --bogus/)
  oneLineError(t, await fsx(['tune', '--readahead', 'lots'], { env }), 3, /readahead: "lots" is not a size/)
  oneLineError(t, await fsx(['mount', dir], { env }), 2, /Missing 1 required arg/)
  oneLineError(t, await fsx(['mount', path.join(dir, 'nope'), dir], { env }), 1, /does not exist/)
  oneLineError(t, await fsx(['mount', dir, path.join(dir, 'no-mnt')], { env }), 1, /mountpoint .*no-mnt does not exist.*mkdir -p/)
  await writeFile(path.join(dir, 'file'), 'x')
  oneLineError(t, await fsx(['mount', dir, path.join(dir, 'file')], { env }), 1, /is not a directory/)
  oneLineError(t, await fsx(['mount', 'zzz://host/x', dir], { env }), 3, /no backend serves "zzz:" sources/)
  oneLineError(t, await fsx(['mount', dir, dir, '--preset', 'nope'], { env }), 3, /unknown preset "nope"/)
  oneLineError(t, await fsx(['unmount', dir], { env }), 1, /is not mounted/)
})

t.test('a bad config file is one line naming the file', async t => {
  const dir = await tempDir()
  await mkdir(path.join(dir, 'fsx'))
  await writeFile(path.join(dir, 'fsx', 'config.json'), '{"attrTtl": "forever"}')
  oneLineError(t, await fsx(['tune'], { env: { XDG_CONFIG_HOME: dir } }), 3, /config file .*config\.json.*attrTtl: "forever" is not a duration/)
})

t.test('fsx tune --json reports values in base units with their sources', async t => {
  const dir = await tempDir()
  const r = await fsx(['tune', '--json', '--max-write', '64K'], { env: { XDG_CONFIG_HOME: dir, FSX_ATTR_TTL: '7', FSX_PRESET: 'safe' } })
  t.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout)
  t.equal(j.preset, 'safe')
  t.same(j.settings.attrTtl, { value: 7000, source: 'env' })
  t.same(j.settings.maxWrite, { value: 65536, source: 'flag' })
  t.same(j.settings.entryTtl, { value: 1000, source: 'preset' })
  t.same(j.settings.opTimeout, { value: 120000, source: 'default' })
  for (const k of ['attrTtl', 'entryTtl', 'readahead', 'maxRead', 'maxWrite', 'xattrCacheSize', 'xattrCacheTtl', 'writeback']) {
    t.ok(k in j.settings, k)
  }
})

t.test('fsx tune --explain explains a setting with its per-preset values and current source', async t => {
  const dir = await tempDir()
  const r = await fsx(['tune', '--explain', 'attrTtl'], { env: { XDG_CONFIG_HOME: dir } })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /attrTtl\s+--attr-ttl · FSX_ATTR_TTL/)
  t.match(r.stdout, /preset balanced: 5s/)
  t.match(r.stdout, /preset high-performance: 10s/)
  t.match(r.stdout, /now: 5s from preset \(balanced\)/)
  const j = JSON.parse((await fsx(['tune', '--explain', 'FSX_ATTR_TTL', '--json'], { env: { XDG_CONFIG_HOME: dir, FSX_ATTR_TTL: '3' } })).stdout)
  t.same(j.current, { value: 3000, source: 'env', preset: 'balanced' })
  t.same(j.presets, { balanced: 5000, 'high-performance': 10000, safe: 1000 })
  oneLineError(t, await fsx(['tune', '--explain', 'speed'], { env: { XDG_CONFIG_HOME: dir } }), 2, /no setting "speed"/)
})

t.test('fsx presets lists every preset with its description', async t => {
  const r = await fsx(['presets', '--json'])
  t.equal(r.code, 0, r.stderr)
  const names = JSON.parse(r.stdout).presets.map((p: { name: string }) => p.name)
  t.same(names, ['balanced', 'high-performance', 'safe'])
})

t.test('no /dev/fuse and no libfuse2 are each one line naming the fix', async t => {
  // A private mount namespace hides them from this one command only: a tmpfs over /dev, or /dev/null over libfuse.
  const have = await run('unshare', ['--mount', '--propagation', 'private', 'true'])
  if (have.code !== 0) {
    const why = `unshare cannot make a private mount namespace here (util-linux's unshare, as root): ${have.stderr.trim()}`
    if (process.env.CI === 'true') t.fail(why)
    else t.pass('no /dev/fuse and no libfuse2', { skip: why })
    return
  }
  const data = await tempDir()
  const mnt = await tempDir()
  const cmd = `exec ${process.execPath} ${JSON.stringify(BIN)} mount ${data} ${mnt}`
  const noDev = await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', `mount -t tmpfs tmpfs /dev && touch /dev/null && ${cmd}`])
  oneLineError(t, noDev, 4, /\/dev\/fuse does not exist.*modprobe fuse/)
  const lib = (await run('bash', ['-c', 'readlink -f "$(ldconfig -p | awk \'/libfuse\\.so\\.2 /{print $NF; exit}\')"'])).stdout.trim()
  t.ok(lib, 'libfuse.so.2 is installed here')
  const noLib = await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', `mount --bind /dev/null ${lib} && ${cmd}`])
  oneLineError(t, noLib, 4, /libfuse 2 is not installed.*apt-get install libfuse2/)
  t.notOk(await isMounted(mnt))
})

if (fuseAvailable(t)) {
  t.test('--daemon returns once the mount answers, and fsx unmount leaves nothing behind', async t => {
    const data = await tempDir('fsx-data-')
    const mnt = await tempDir('fsx-mnt-')
    t.teardown(() => forceUnmount(mnt))
    await writeFile(path.join(data, 'hello.txt'), 'hi')
    const env = { XDG_STATE_HOME: await tempDir('fsx-state-'), FSX_RUNTIME_DIR: await tempDir('fsx-run-') }
    const up = await fsx(['mount', data, mnt, '--preset', 'safe', '--daemon'], { env })
    t.equal(up.code, 0, up.stderr)
    t.match(up.stdout, /mounted .* on /)
    t.ok(await isMounted(mnt), 'mounted when --daemon returns')
    t.equal(await readFile(path.join(mnt, 'hello.txt'), 'utf8'), 'hi')

    const again = await fsx(['mount', data, mnt], { env })
    t.equal(again.code, 4)
    t.match(again.stderr, /already mounted/)

    const down = await fsx(['unmount', mnt], { env })
    t.equal(down.code, 0, down.stderr)
    t.notOk(await isMounted(mnt), 'nothing mounted after fsx unmount')
    const ps = await run('pgrep', ['-f', `mount ${data} ${mnt}`])
    t.equal(ps.stdout.trim(), '', 'the mount process has exited')
  })

  t.test('--daemon reports why a mount failed', async t => {
    const mnt = await tempDir('fsx-mnt-')
    const r = await fsx(['mount', '/definitely/not/here', mnt, '--daemon'], { env: { XDG_STATE_HOME: await tempDir() } })
    t.not(r.code, 0)
    t.match(r.stderr, /does not exist/)
    t.notOk(await isMounted(mnt))
  })

  t.test('a mount killed with SIGKILL leaves a stale mount that the next mount clears', async t => {
    const data = await tempDir('fsx-data-')
    const m = await mountFsx(t, data)
    m.child.kill('SIGKILL')
    await new Promise(resolve => m.child.on('exit', resolve))
    const st = await run('stat', [m.mountpoint])
    t.match(st.stderr, /Transport endpoint is not connected/, 'the dead mount answers ENOTCONN')
    const m2 = await mountFsx(t, data, [], { mountpoint: m.mountpoint })
    t.match(m2.log(), /cleared a stale mount/)
    await writeFile(path.join(m2.mountpoint, 'after'), 'ok')
    t.equal(await readFile(path.join(data, 'after'), 'utf8'), 'ok')
    t.equal(await m2.stop(), 0)
  })

  t.test('SIGINT and SIGTERM flush, unmount and exit 0', async t => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const data = await tempDir('fsx-data-')
      const m = await mountFsx(t, data, ['--preset', 'high-performance'])
      await writeFile(path.join(m.mountpoint, 'f'), 'data')
      const exited = new Promise<number | null>(resolve => m.child.on('exit', code => resolve(code)))
      m.child.kill(sig)
      t.equal(await exited, 0, `${sig} exits 0`)
      t.notOk(await isMounted(m.mountpoint), `${sig} unmounts`)
      t.equal(await readFile(path.join(data, 'f'), 'utf8'), 'data')
    }
  })
}
