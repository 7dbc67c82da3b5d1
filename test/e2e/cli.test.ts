// The CLI as users meet it: daemon mount and unmount, clean signals, stale mounts, and one readable line with a
// non-zero exit for every kind of bad input, never a stack trace. Exit codes (README "Errors"): 1 general, 2 usage,
// 3 configuration, 4 environment, 5 backend, the same in the foreground and with --daemon.
import t from 'tap'
import path from 'node:path'
import net from 'node:net'
import { writeFile, readFile, mkdir, rm } from 'node:fs/promises'
import { BIN, fuseAvailable, fsx, isMounted, mountFsx, forceUnmount, run, tempDir, type Result } from '../helpers/mount.js'
import { scaled, waitUntil } from '../helpers/timing.js'
import { mountId } from '../../dist/mount/runtime.js'

/** One line on stderr, no stack frames, the expected exit code. */
function oneLineError (t: Tap.Test, r: Result, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit code ${code}: ${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${r.stderr}`)
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  t.match(lines[0], pattern)
}

/** A temp dir removed in teardown, unless something is still mounted on it (never delete through a mount). */
async function scratch (t: Tap.Test, prefix = 'fsx-e2e-'): Promise<string> {
  const dir = await tempDir(prefix)
  t.teardown(async () => {
    await forceUnmount(dir)
    if (!await isMounted(dir)) await rm(dir, { recursive: true, force: true })
  })
  return dir
}

/** Environment that keeps a test's config, logs and mount records to itself. */
async function isolated (t: Tap.Test): Promise<Record<string, string>> {
  return { XDG_CONFIG_HOME: await scratch(t, 'fsx-cfg-'), XDG_STATE_HOME: await scratch(t, 'fsx-state-'), FSX_RUNTIME_DIR: await scratch(t, 'fsx-run-') }
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers: an endpoint that hangs. */
async function silentServer (t: Tap.Test): Promise<{ port: number, connections: () => number }> {
  const sockets = new Set<net.Socket>()
  let count = 0
  const srv = net.createServer(s => { count++; sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}) })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); srv.close(() => resolve()) }))
  return { port: (srv.address() as net.AddressInfo).port, connections: () => count }
}

t.test('bad input gives one readable line and a non-zero exit', async t => {
  const dir = await scratch(t)
  const env = { XDG_CONFIG_HOME: dir }
  oneLineError(t, await fsx(['tune', '--preset', 'turbo'], { env }), 3, /unknown preset "turbo".*balanced, high-performance, safe/)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_ATTR_TTL: 'abc' } }), 3, /FSX_ATTR_TTL.*"abc" is not a duration/)
  oneLineError(t, await fsx(['tune', '--bogus'], { env }), 2, /Nonexistent flag: --bogus/)
  oneLineError(t, await fsx(['tune', '--preset', 'safe', '--preset', 'safe'], { env }), 2, /can only be specified once/)
  oneLineError(t, await fsx(['tune', '--readahead', 'lots'], { env }), 3, /readahead: "lots" is not a size/)
  oneLineError(t, await fsx(['mount', dir], { env }), 2, /Missing 1 required arg/)
  // The source cannot be opened: the backend says so (5), as S3 does for a missing bucket.
  oneLineError(t, await fsx(['mount', path.join(dir, 'nope'), dir], { env }), 5, /local source .*nope does not exist/)
  // The mountpoint is the machine's side: environment (4), like "already mounted".
  oneLineError(t, await fsx(['mount', dir, path.join(dir, 'no-mnt')], { env }), 4, /mountpoint .*no-mnt does not exist.*mkdir -p/)
  await writeFile(path.join(dir, 'file'), 'x')
  oneLineError(t, await fsx(['mount', dir, path.join(dir, 'file')], { env }), 4, /mountpoint .* is not a directory/)
  oneLineError(t, await fsx(['mount', dir, dir, '--preset', 'nope'], { env }), 3, /unknown preset "nope"/)
  oneLineError(t, await fsx(['unmount', dir], { env }), 4, /is not mounted/)
})

t.test('a malformed source is a configuration error (3) for every scheme, in the foreground and with --daemon', async t => {
  const dir = await scratch(t)
  const env = await isolated(t)
  const cases: Array<[string, RegExp]> = [
    ['zzz://host/x', /no backend serves "zzz:" sources/],
    ['file://remote/x', /a file URL looks like file:\/\/\/absolute\/path/],
    ['sftp://h:99999/x', /bad source "sftp:\/\/h:99999\/x"/],
    ['sftp://bob:hunter2@host/x', /password in the URL is not accepted/],
    ['s3://user@bucket/x', /no credentials or port in the URL/],
    ['s3://bucket/a//b', /must not hold empty/],
    ['s3://-bad/x', /not a valid bucket name/]
  ]
  for (const [source, why] of cases) {
    for (const daemon of [[], ['--daemon']]) {
      const r = await fsx(['mount', source, dir, ...daemon], { env })
      oneLineError(t, r, 3, why)
      t.notMatch(r.stderr, /hunter2/, 'no password is printed')
    }
  }
  t.notOk(await isMounted(dir))
})

t.test('a value out of range is refused from every source, in one line naming the setting, the source and the range', async t => {
  const dir = await scratch(t)
  const env = await isolated(t)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_MAX_WRITE: '10G' } }), 3, /^fsx: environment FSX_MAX_WRITE: 10G is out of range: maxWrite takes 4K to 1M/)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_SFTP_CONNECTIONS: '99' } }), 3, /^fsx: environment FSX_SFTP_CONNECTIONS: 99 is out of range: sftpConnections takes 1 to 16/)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_OP_TIMEOUT: '0' } }), 3, /^fsx: environment FSX_OP_TIMEOUT: 0 is out of range: opTimeout takes 1s to 1h/)
  oneLineError(t, await fsx(['tune', '--max-read', '2M'], { env }), 3, /^fsx: flag --max-read: 2M is out of range: maxRead takes 4K to 1M/)
  oneLineError(t, await fsx(['tune', '--sftp-connections', '0'], { env }), 3, /^fsx: flag --sftp-connections: 0 is out of range/)
  oneLineError(t, await fsx(['tune', '--s3-part-size=1M'], { env }), 3, /^fsx: flag --s3-part-size: 1M is out of range: s3PartSize takes 5M to 5G/)
  const config = path.join(dir, 'config.json')
  await writeFile(config, JSON.stringify({ validateInterval: '100ms' }))
  oneLineError(t, await fsx(['tune', '--config', config], { env }), 3, /^fsx: config file .*config\.json: validateInterval: 100ms is out of range: validateInterval takes 0 \(off\) or 1s to 1h/)
  // Nothing is mounted with a bad value, foreground or daemon.
  const data = await scratch(t, 'fsx-data-')
  oneLineError(t, await fsx(['mount', data, dir], { env: { ...env, FSX_MAX_WRITE: '10G' } }), 3, /FSX_MAX_WRITE: 10G is out of range/)
  oneLineError(t, await fsx(['mount', data, dir, '--daemon'], { env: { ...env, FSX_OP_TIMEOUT: '0' } }), 3, /FSX_OP_TIMEOUT: 0 is out of range/)
  t.notOk(await isMounted(dir))
  // fsx tune shows the ranges.
  const table = await fsx(['tune'], { env })
  t.match(table.stdout, /maxWrite\s+1M\s+preset\s+FSX_MAX_WRITE\s+4K to 1M/)
  t.match(table.stdout, /sftpConnections\s+4\s+default\s+FSX_SFTP_CONNECTIONS\s+1 to 16/)
  const explained = JSON.parse((await fsx(['tune', '--explain', 'opTimeout', '--json'], { env })).stdout)
  t.same(explained.range, { min: 1000, max: 3_600_000, zeroMeansOff: false, text: '1s to 1h' })
})

t.test('preset and config files in the wrong shape are refused with one line (exit 3)', async t => {
  const dir = await scratch(t)
  const env = await isolated(t)
  // Issue #13: settings at the top level of a preset were accepted and silently ignored.
  const flat = path.join(dir, 'flat.json')
  await writeFile(flat, JSON.stringify({ attrTtl: '2s' }))
  oneLineError(t, await fsx(['tune', '--preset', flat], { env }), 3, /^fsx: preset file .*flat\.json: .*"settings" is missing.*"attrTtl" is a setting: it belongs inside "settings"/)
  const data = await scratch(t, 'fsx-data-')
  oneLineError(t, await fsx(['mount', data, dir, '--preset', flat], { env }), 3, /"attrTtl" is a setting/)
  oneLineError(t, await fsx(['tune'], { env: { ...env, FSX_PRESET: flat } }), 3, /preset file .*flat\.json/)
  await writeFile(flat, JSON.stringify({ description: 'mine', settings: { writeback: 'sometimes' } }))
  oneLineError(t, await fsx(['tune', '--preset', flat], { env }), 3, /writeback: "sometimes" is not true or false/)
  t.notOk(await isMounted(dir))
})

t.test('a bad config file is one line naming the file', async t => {
  const dir = await scratch(t)
  await mkdir(path.join(dir, 'fsx'))
  await writeFile(path.join(dir, 'fsx', 'config.json'), '{"attrTtl": "forever"}')
  oneLineError(t, await fsx(['tune'], { env: { XDG_CONFIG_HOME: dir } }), 3, /config file .*config\.json.*attrTtl: "forever" is not a duration/)
  await writeFile(path.join(dir, 'fsx', 'config.json'), '{"preset": "safe", "settings": {"attrTtl": "2s"}}')
  oneLineError(t, await fsx(['tune'], { env: { XDG_CONFIG_HOME: dir } }), 3, /config file .*config\.json: unknown setting "settings"/)
})

t.test('fsx tune --json reports values in base units with their sources', async t => {
  const dir = await scratch(t)
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
  const dir = await scratch(t)
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
  const data = await scratch(t)
  const mnt = await scratch(t)
  const cmd = `exec ${process.execPath} ${JSON.stringify(BIN)} mount ${data} ${mnt}`
  const noDev = await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', `mount -t tmpfs tmpfs /dev && touch /dev/null && ${cmd}`])
  oneLineError(t, noDev, 4, /\/dev\/fuse does not exist.*modprobe fuse/)
  const lib = (await run('bash', ['-c', 'readlink -f "$(ldconfig -p | awk \'/libfuse\\.so\\.2 /{print $NF; exit}\')"'])).stdout.trim()
  t.ok(lib, 'libfuse.so.2 is installed here')
  // Only the fuse-native engine needs libfuse 2; the default engine speaks the protocol itself.
  const noLib = await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', `mount --bind /dev/null ${lib} && ${cmd} --engine fuse-native`])
  oneLineError(t, noLib, 4, /libfuse 2 is not installed.*apt-get install libfuse2/)
  t.notOk(await isMounted(mnt))
})

if (fuseAvailable(t)) {
  t.test('--daemon returns once the mount answers, and fsx unmount leaves nothing behind', async t => {
    const data = await scratch(t, 'fsx-data-')
    const mnt = await scratch(t, 'fsx-mnt-')
    t.teardown(() => forceUnmount(mnt))
    await writeFile(path.join(data, 'hello.txt'), 'hi')
    const env = { XDG_STATE_HOME: await scratch(t, 'fsx-state-'), FSX_RUNTIME_DIR: await scratch(t, 'fsx-run-') }
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

  t.test('--daemon fails with the mount process\'s own reason and exit code', async t => {
    const env = await isolated(t)
    const data = await scratch(t, 'fsx-data-')
    const mnt = await scratch(t, 'fsx-mnt-')
    // Backend (5): the source cannot be opened.
    oneLineError(t, await fsx(['mount', '/definitely/not/here', mnt, '--daemon'], { env }), 5, /local source \/definitely\/not\/here does not exist/)
    // Environment (4): no such mountpoint.
    oneLineError(t, await fsx(['mount', data, path.join(mnt, 'absent'), '--daemon'], { env }), 4, /mountpoint .*absent does not exist/)
    // Configuration (3) that only the child finds, once the mount is up: the metrics address. Nothing stays mounted.
    oneLineError(t, await fsx(['mount', data, mnt, '--daemon', '--metrics-addr', 'nonsense'], { env }), 3, /--metrics-addr "nonsense" is not HOST:PORT/)
    t.notOk(await isMounted(mnt), 'the failed mount was undone')
    // Environment (4): already mounted, found by the child once the first mount is up.
    const up = await fsx(['mount', data, mnt, '--daemon'], { env })
    t.equal(up.code, 0, up.stderr)
    t.teardown(() => fsx(['unmount', mnt], { env }))
    const again = await fsx(['mount', data, mnt, '--daemon'], { env })
    oneLineError(t, again, 4, /already mounted \(fuse\.fsx from fsx:local:/)
    t.equal((await fsx(['unmount', mnt], { env })).code, 0)
    t.notOk(await isMounted(mnt))
  })

  t.test('--daemon never reports a stale line from an earlier run\'s log', async t => {
    const env = await isolated(t)
    const mnt = await scratch(t, 'fsx-mnt-')
    const log = path.join(env.XDG_STATE_HOME, 'fsx', 'logs', `${mountId(mnt)}.log`)
    await mkdir(path.dirname(log), { recursive: true })
    await writeFile(log, '2020-01-01T00:00:00.000Z fsx: an old reason from an earlier run\n')
    // An S3 endpoint that accepts and never answers keeps the child connecting until it is killed.
    const silent = await silentServer(t)
    const s3env = { ...env, FSX_S3_ENDPOINT: `http://127.0.0.1:${silent.port}`, FSX_S3_TIMEOUT: '10m', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1' }
    const parent = fsx(['mount', 's3://bucket', mnt, '--daemon'], { env: s3env, timeoutMs: scaled(120_000) })
    await waitUntil(() => silent.connections() > 0, { timeoutMs: 60_000, what: 'the daemon child to connect to the silent endpoint' })
    // Only the child is started with --log-file (the parent computes it).
    const pids = (await run('pgrep', ['-f', '--', `--log-file ${log}`])).stdout.trim().split('\n').filter(Boolean)
    t.equal(pids.length, 1, `one child process: ${pids.join(' ')}`)
    process.kill(Number(pids[0]), 'SIGKILL')
    const r = await parent
    oneLineError(t, r, 1, /the mount process was killed by SIGKILL \(log: /)
    t.notMatch(r.stderr, /old reason/, 'the earlier run\'s line is not this run\'s reason')
    t.notOk(await isMounted(mnt))
  })

  t.test('fsx unmount refuses a mount that is not fsx\'s (exit 4) and leaves it mounted', async t => {
    const env = await isolated(t)
    const src = await scratch(t, 'fsx-src-')
    await writeFile(path.join(src, 'keep.txt'), 'mine')
    // A real foreign FUSE mount: bindfs (installed by scripts/install-system-deps.sh).
    const bindMnt = await scratch(t, 'fsx-mnt-')
    const b = await run('bindfs', [src, bindMnt])
    t.equal(b.code, 0, `bindfs mounts: ${b.stderr}`)
    t.ok(await isMounted(bindMnt))
    oneLineError(t, await fsx(['unmount', bindMnt], { env }), 4, /is not an fsx mount \(fuse from .*fsx-src-.*\); fsx unmounts only its own mounts \(unmount it with: fusermount -u /)
    oneLineError(t, await fsx(['unmount', bindMnt, '--lazy'], { env }), 4, /is not an fsx mount/)
    t.ok(await isMounted(bindMnt), 'the bindfs mount is still there')
    t.equal(await readFile(path.join(bindMnt, 'keep.txt'), 'utf8'), 'mine')
    t.equal((await run('fusermount', ['-u', bindMnt])).code, 0)
    // A mount that is not FUSE at all.
    const tmpfsMnt = await scratch(t, 'fsx-mnt-')
    t.equal((await run('mount', ['-t', 'tmpfs', 'fsx-test-tmpfs', tmpfsMnt])).code, 0)
    oneLineError(t, await fsx(['unmount', tmpfsMnt], { env }), 4, /is not an fsx mount \(tmpfs from fsx-test-tmpfs\).*unmount it with: umount /)
    t.ok(await isMounted(tmpfsMnt), 'the tmpfs is still mounted')
    t.equal((await run('umount', [tmpfsMnt])).code, 0)
  })

  t.test('fsx unmount clears a dead fsx mount', async t => {
    const data = await scratch(t, 'fsx-data-')
    const m = await mountFsx(t, data)
    m.child.kill('SIGKILL')
    await new Promise(resolve => m.child.on('exit', resolve))
    t.match((await run('stat', [m.mountpoint])).stderr, /Transport endpoint is not connected/, 'the dead mount answers ENOTCONN')
    const r = await fsx(['unmount', m.mountpoint])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /unmounted /)
    t.notOk(await isMounted(m.mountpoint), 'nothing is left mounted')
  })

  t.test('a mount killed with SIGKILL leaves a stale mount that the next mount clears', async t => {
    const data = await scratch(t, 'fsx-data-')
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
      const data = await scratch(t, 'fsx-data-')
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
