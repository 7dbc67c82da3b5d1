/**
 * fsx as a package people install and run at boot (issue 14), tested from the packed tarballs, as a user gets it:
 * `npm pack` of the root and every workspace (sdk, plugins/*) installed into a clean prefix; from there
 * `fsx --version`, a mount and an unmount; `mount -T FSTAB` of a `fuse.fsx` line through the mount.fsx helper
 * linked where mount(8) looks; a mount and unmount by a user who is not root; the oclif conventions (`fsx mont`,
 * JSON errors); `fsx conformance` against a backend installed as a separate plugin; `fsx systemd-unit`'s commands
 * run as systemd would run them; and the plugin guide's example (docs/PLUGINS.md) type-checked against the packed
 * @fsx/sdk outside the repository, then run through the conformance suite.
 *
 * The packing and the install happen once (the first subtest that needs them), into a temp dir removed at the end.
 * Every command of the installed fsx runs with its own XDG dirs and FSX_RUNTIME_DIR, so mounts other suites run on
 * this machine at the same time are neither seen nor touched.
 */
import t from 'tap'
import path from 'node:path'
import { chmod, chown, lstat, mkdir, readFile, readlink, symlink, unlink, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { forceUnmount, fuseAvailable, isMounted, ROOT, run, sh, tempDir, type Result } from '../helpers/mount.js'
import { waitUntil } from '../helpers/timing.js'
import { testUser } from '../helpers/user.js'

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'fsx-backend-memory')
/** The packages `npm pack` must produce: the root and every workspace. */
const PACKAGES = ['fsx', '@fsx/sdk', '@fsx/backend-local', '@fsx/backend-sftp', '@fsx/backend-s3', '@fsx/vector']
const tarballName = (name: string, version: string): string => `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`

interface Installed {
  /** Where the tarballs are. */
  tgz: string
  /** The npm prefix fsx is installed into (bin/fsx, lib/node_modules/fsx). */
  prefix: string
  fsx: string
  /** An environment of its own: XDG dirs and FSX_RUNTIME_DIR in a temp home, no test-runner hooks. */
  env: Record<string, string>
}

/** The environment for npm itself: the runner's npm_* variables (from `npm test`) would leak into the child npm. */
function npmEnv (extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {}
  for (const k of Object.keys(process.env)) if (k.startsWith('npm_') || k === 'NODE_OPTIONS') env[k] = undefined
  return { ...env, ...extra }
}

let installing: Promise<Installed> | undefined
/** Packs every package and installs the tarballs into a clean prefix, once per file. */
async function installed (): Promise<Installed> {
  installing ??= (async () => {
    const base = await tempDir(t, 'fsx-pkg-')
    // The non-root test reaches the installed fsx through here.
    await chmod(base, 0o755)
    const tgz = path.join(base, 'tgz')
    const prefix = path.join(base, 'prefix')
    await mkdir(tgz)
    const packed = await run('npm', ['pack', '--pack-destination', tgz, '--workspaces', '--include-workspace-root', '--json'],
      { cwd: ROOT, env: npmEnv(), timeoutMs: 300_000 })
    if (packed.code !== 0) throw new Error(`npm pack: ${packed.stderr.slice(-2000)}`)
    const names = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string }>).map(p => p.filename)
    const started = Date.now()
    // --prefer-offline: what `npm ci` already fetched comes from npm's cache; only what is missing goes to the registry.
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier',
      ...names.map(n => `./${n}`)], { cwd: tgz, env: npmEnv(), timeoutMs: 300_000 })
    if (inst.code !== 0) throw new Error(`npm install -g of the tarballs: ${inst.stderr.slice(-3000)}`)
    t.comment(`npm install -g of ${names.length} tarballs took ${((Date.now() - started) / 1000).toFixed(1)} s`)
    const home = path.join(base, 'home')
    await mkdir(home)
    const env = {
      HOME: home,
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_CACHE_HOME: path.join(home, 'cache'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_STATE_HOME: path.join(home, 'state'),
      FSX_RUNTIME_DIR: path.join(home, 'run'),
      // mount(8) runs the helper, whose #! line finds node on PATH.
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`
    }
    return { tgz, prefix, fsx: path.join(prefix, 'bin', 'fsx'), env }
  })()
  return await installing
}

/** Runs the installed fsx with the package's own environment (plus `env`). */
async function fsxi (args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<Result> {
  const p = await installed()
  return await run('env', ['-u', 'NODE_OPTIONS', p.fsx, ...args], { env: { ...p.env, ...env }, timeoutMs })
}

const lines = (s: string): string[] => s.split('\n').filter(l => l.trim() !== '')

t.test('npm pack makes a tarball per package, with the license and the built code, without dev-only files', async t => {
  const p = await installed()
  for (const name of PACKAGES) {
    const version = name === '@fsx/sdk' ? (JSON.parse(await readFile(path.join(ROOT, 'sdk', 'package.json'), 'utf8')) as { version: string }).version
      : name === 'fsx' ? VERSION : (JSON.parse(await readFile(path.join(ROOT, 'plugins', name.replace('@fsx/', ''), 'package.json'), 'utf8')) as { version: string }).version
    const list = await run('tar', ['tzf', path.join(p.tgz, tarballName(name, version))])
    t.equal(list.code, 0, `${name} was packed: ${list.stderr}`)
    const files = lines(list.stdout)
    t.ok(files.includes('package/LICENSE'), `${name} carries its LICENSE`)
    t.ok(files.some(f => /^package\/dist\/.*\.js$/.test(f)), `${name} carries its built code`)
    t.notOk(files.some(f => /^package\/(src|test|patches)\//.test(f) || f.endsWith('.tsbuildinfo')), `${name} carries no sources, tests or dev-only patches`)
  }
  const root = lines((await run('tar', ['tzf', path.join(p.tgz, tarballName('fsx', VERSION))])).stdout)
  for (const f of ['package/bin/run.js', 'package/bin/mount.fsx.js', 'package/oclif.manifest.json', 'package/presets/balanced.json', 'package/dist/index.d.ts']) {
    t.ok(root.includes(f), `fsx carries ${f}`)
  }
})

t.test('the packed tarballs install into a clean prefix; fsx --version, mount and unmount work from there', async t => {
  const p = await installed()
  const v = await fsxi(['--version'])
  t.equal(v.code, 0, v.stderr)
  t.match(v.stdout, new RegExp(`^fsx/${VERSION.replace(/\./g, '\\.')} `), 'the installed version')

  // The exports maps: what a script or a plugin imports by package name.
  const imp = await run(process.execPath, ['--input-type=module', '-e',
    "const fsx = await import('fsx'); const sdk = await import('@fsx/sdk'); const c = await import('@fsx/sdk/conformance');" +
    "console.log(JSON.stringify([fsx.API_VERSION, sdk.API_VERSION, typeof fsx.run, typeof c.runConformance]))"],
  { cwd: path.join(p.prefix, 'lib'), env: p.env })
  t.equal(imp.code, 0, imp.stderr)
  t.same(JSON.parse(imp.stdout || 'null'), [1, 1, 'function', 'function'], 'fsx and @fsx/sdk import by name')

  // All three built-in backends load from the installed plugins: an unknown scheme names them.
  const data = await tempDir(t, 'fsx-data-')
  const unknown = await fsxi(['mount', 'nope://x', data])
  t.equal(unknown.code, 3, unknown.stderr)
  t.match(unknown.stderr, /installed schemes: .*local.*s3.*sftp/)

  await writeFile(path.join(data, 'hello.txt'), 'from the installed fsx\n')
  const mnt = await tempDir(t, 'fsx-mnt-')
  const m = await fsxi(['mount', data, mnt, '--daemon'], {}, 60_000)
  t.equal(m.code, 0, m.stderr)
  t.ok(await isMounted(mnt), 'mounted')
  const cat = await sh(`cat hello.txt && echo more > new.txt`, mnt)
  t.equal(cat.stdout, 'from the installed fsx\n', cat.stderr)
  const u = await fsxi(['unmount', mnt])
  t.equal(u.code, 0, u.stderr)
  t.equal(await isMounted(mnt), false, 'unmounted')
  t.equal(await readFile(path.join(data, 'new.txt'), 'utf8'), 'more\n', 'what was written through the mount is in the source')
  const left = await fsxi(['mounts', '--json'])
  t.same(JSON.parse(left.stdout).mounts, [], 'the mount process is gone from the runtime dir')
})

t.test('oclif conventions in the installed fsx', async t => {
  const typo = await fsxi(['mont', './a', './b'])
  t.equal(typo.code, 2, 'a mistyped command is a usage error')
  t.equal(lines(typo.stderr).length, 1, `one line: ${typo.stderr}`)
  t.match(typo.stderr, /did you mean "mount"/)
  t.equal(typo.stdout, '')

  const stats = await fsxi(['stats', '--json'])
  t.equal(stats.code, 4, 'no mount running is an environment error')
  let parsed: { error?: { code?: string, message?: string, exitCode?: number } } = {}
  t.doesNotThrow(() => { parsed = JSON.parse(stats.stdout) }, `stdout is JSON: ${stats.stdout}`)
  t.equal(parsed.error?.code, 'ENOTMOUNTED')
  t.equal(parsed.error?.exitCode, 4)
  t.match(parsed.error?.message ?? '', /no fsx mounts/)

  const plain = await fsxi(['stats'])
  t.equal(plain.code, 4)
  t.equal(lines(plain.stderr).length, 1, `without --json, one line on stderr: ${plain.stderr}`)
})

t.test('fsx conformance passes for a backend installed as a separate plugin, and fails for a broken one', async t => {
  const before = await fsxi(['conformance', 'mem://c'])
  t.equal(before.code, 3, 'before the plugin is linked, its scheme is unknown')

  const link = await fsxi(['plugins', 'link', FIXTURE], {}, 180_000)
  t.equal(link.code, 0, link.stderr)
  const list = await fsxi(['plugins'])
  t.match(list.stdout, /fsx-backend-memory/, 'the plugin is installed in the isolated data dir')
  const conf = await fsxi(['conformance', 'mem://conformance'], {}, 300_000)
  t.equal(conf.code, 0, conf.stderr)
  const summary = /(\d+) passed, (\d+) failed, (\d+) skipped/.exec(conf.stdout)
  t.ok(summary !== null && Number(summary[1]) > 20 && summary[2] === '0', `the suite ran and passed: ${lines(conf.stdout).at(-1) ?? ''}`)

  // The same backend with one wrong errno: the command must fail, in one line naming the failed case.
  const broken = await tempDir(t, 'fsx-broken-')
  await mkdir(path.join(broken, 'hooks'))
  const pkg = JSON.parse(await readFile(path.join(FIXTURE, 'package.json'), 'utf8')) as { name: string }
  pkg.name = 'fsx-backend-broken'
  await writeFile(path.join(broken, 'package.json'), JSON.stringify(pkg))
  await writeFile(path.join(broken, 'hooks', 'backends.js'), await readFile(path.join(FIXTURE, 'hooks', 'backends.js')))
  const source = await readFile(path.join(FIXTURE, 'memory.js'), 'utf8')
  const wrong = source.replace("this.err('ENOTEMPTY'", "this.err('EBUSY'").replace("name: 'memory'", "name: 'broken'").replace("schemes: ['mem']", "schemes: ['broken']").replaceAll('mem://', 'broken://')
  t.not(wrong, source, 'the fault was injected')
  await writeFile(path.join(broken, 'memory.js'), wrong)
  t.equal((await fsxi(['plugins', 'link', broken], {}, 180_000)).code, 0)
  const bad = await fsxi(['conformance', 'broken://x'], {}, 300_000)
  t.equal(bad.code, 1, 'a failing case fails the command')
  t.match(bad.stdout, /not ok.*rmdir/i, 'the failed case is named')
  t.equal(lines(bad.stderr).length, 1, `one line: ${bad.stderr}`)
  t.match(bad.stderr, /conformance cases failed on broken:\/\/x/)
  t.teardown(async () => {
    await fsxi(['plugins', 'unlink', 'fsx-backend-broken'])
    await fsxi(['plugins', 'unlink', 'fsx-backend-memory'])
  })
})

t.test('fsx systemd-unit prints a service whose ExecStart mounts and ExecStop unmounts, after the network, with no secret', async t => {
  const p = await installed()
  const secrets = { AWS_SECRET_ACCESS_KEY: 'aws-secret-in-env-8f3a', FSX_SFTP_PASSWORD: 'sftp-secret-in-env-1c9e' }
  const s3 = await fsxi(['systemd-unit', '/mnt/fsx-data', 's3://bucket/prefix', '-o', 'preset=high-performance,allow_other', '--environment-file', '/etc/fsx/data.env'], secrets)
  t.equal(s3.code, 0, s3.stderr)
  const unit = s3.stdout
  const key = (k: string): string[] => lines(unit).filter(l => l.startsWith(`${k}=`)).map(l => l.slice(k.length + 1))
  const runJs = path.join(p.prefix, 'lib', 'node_modules', 'fsx', 'bin', 'run.js')
  t.same(key('After'), ['network-online.target'], 'starts after the network is up')
  t.same(key('Wants'), ['network-online.target'], 'and pulls it in')
  t.same(key('ExecStart'), [`${process.execPath} ${runJs} mount s3://bucket/prefix /mnt/fsx-data -o preset=high-performance,allow_other`])
  t.same(key('ExecStop'), [`${process.execPath} ${runJs} unmount /mnt/fsx-data`], 'stops with fsx unmount (flush, then unmount)')
  t.same(key('EnvironmentFile'), ['/etc/fsx/data.env'], 'secrets come from the environment file')
  t.match(unit, /^Type=simple$/m)
  for (const v of Object.values(secrets)) t.notOk(unit.includes(v), 'no secret from the environment is written into the unit')

  const leak = await fsxi(['systemd-unit', '/mnt/x', 'sftp://me@host/dir', '-o', 'sftp_password=hunter2-7d1b'])
  t.equal(leak.code, 3, 'a secret in the options is refused')
  t.equal(lines(leak.stderr).length, 1, leak.stderr)
  t.notOk(`${leak.stdout}${leak.stderr}`.includes('hunter2-7d1b'), 'and not repeated')

  // --type mount: a .mount unit for mount(8) and the mount.fsx helper, named as systemd names it from the path.
  const mu = await fsxi(['systemd-unit', '/mnt/fsx-data', 's3://bucket/prefix', '--type', 'mount', '-o', 'preset=safe', '--environment-file', '/etc/fsx/data.env'], secrets)
  t.equal(mu.code, 0, mu.stderr)
  const mkey = (k: string): string[] => lines(mu.stdout).filter(l => l.startsWith(`${k}=`)).map(l => l.slice(k.length + 1))
  t.match(mu.stdout, /Save as \/etc\/systemd\/system\/mnt-fsx\\x2ddata\.mount/, 'its file name is the escaped mountpoint')
  t.same(mkey('After'), ['network-online.target'])
  t.same([mkey('What'), mkey('Where'), mkey('Type')], [['s3://bucket/prefix'], ['/mnt/fsx-data'], ['fuse.fsx']])
  t.same(mkey('Options'), ['_netdev,preset=safe,env_file=/etc/fsx/data.env'], 'mount options, the secrets file by name')
  for (const v of Object.values(secrets)) t.notOk(mu.stdout.includes(v), 'no secret in the .mount unit')

  const verify = await run('systemd-analyze', ['--version'])
  if (verify.code === 0) {
    const dir = await tempDir(t, 'fsx-unit-')
    const file = path.join(dir, 'fsx-mnt-fsx\\x2ddata.service')
    await writeFile(file, unit)
    const v = await run('systemd-analyze', ['verify', '--man=no', file])
    t.equal(v.code, 0, `systemd-analyze verify: ${v.stderr}`)
    const mfile = path.join(dir, 'mnt-fsx\\x2ddata.mount')
    await writeFile(mfile, mu.stdout)
    const mv = await run('systemd-analyze', ['verify', '--man=no', mfile])
    t.equal(mv.code, 0, `systemd-analyze verify of the .mount unit: ${mv.stderr}`)
  } else t.comment('systemd-analyze is not installed: the unit was not verified by systemd')

  if (!fuseAvailable(t)) return
  // What systemd would do with the unit: start ExecStart in the foreground, then ExecStop, and the service exits 0.
  const data = await tempDir(t, 'fsx-data-')
  const mnt = await tempDir(t, 'fsx-mnt-')
  await writeFile(path.join(data, 'f'), 'unit\n')
  const local = await fsxi(['systemd-unit', mnt, data, '-o', 'preset=safe'])
  t.equal(local.code, 0, local.stderr)
  const start = lines(local.stdout).find(l => l.startsWith('ExecStart='))?.slice('ExecStart='.length).split(' ') ?? []
  const stop = lines(local.stdout).find(l => l.startsWith('ExecStop='))?.slice('ExecStop='.length).split(' ') ?? []
  t.ok(start.length > 2 && stop.length > 2, 'both commands are there')
  const service = spawn('env', ['-u', 'NODE_OPTIONS', ...start], { env: { ...process.env, ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  service.stdout.on('data', d => { out += String(d) })
  service.stderr.on('data', d => { out += String(d) })
  const exited = new Promise<number | null>(resolve => service.on('exit', code => resolve(code)))
  let done = false
  void exited.then(() => { done = true })
  t.teardown(async () => {
    if (!done) service.kill('SIGKILL')
    await forceUnmount(mnt)
  })
  await waitUntil(async () => done || await isMounted(mnt), { timeoutMs: 30_000, what: 'the service to mount' })
  t.equal(done, false, `ExecStart stays in the foreground: ${out}`)
  t.equal((await sh('cat f', mnt)).stdout, 'unit\n')
  const stopped = await run('env', ['-u', 'NODE_OPTIONS', ...stop], { env: p.env })
  t.equal(stopped.code, 0, stopped.stderr)
  t.equal(await exited, 0, `the service exits 0 after ExecStop: ${out}`)
  t.equal(await isMounted(mnt), false)
})

if (fuseAvailable(t)) {
  t.test('mount -T FSTAB mounts a fuse.fsx line through the mount.fsx helper, with its options; umount unmounts', async t => {
    const p = await installed()
    // mount(8) runs /sbin/mount.<type> (util-linux searches /sbin, /sbin/fs.d, /sbin/fs and nothing else), so the
    // helper is linked there for the test. The link is also a lock: another run of this test (another checkout on
    // this machine) waits until it is gone.
    const helper = '/sbin/mount.fuse.fsx'
    const target = path.join(p.prefix, 'bin', 'mount.fsx')
    await waitUntil(async () => {
      try {
        await symlink(target, helper)
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        return false
      }
    }, { timeoutMs: 120_000, what: `${helper} to be free (another fsx test holds it, or remove it by hand: ${await readlink(helper).catch(() => '?')})` })
    t.teardown(async () => {
      if ((await lstat(helper).catch(() => undefined))?.isSymbolicLink() === true && await readlink(helper) === target) await unlink(helper)
    })

    const data = await tempDir(t, 'fsx-data-')
    const mnt = await tempDir(t, 'fsx-mnt-')
    const etc = await tempDir(t, 'fsx-fstab-')
    await writeFile(path.join(data, 'f'), 'from fstab\n')
    const fstab = path.join(etc, 'fstab')
    await writeFile(fstab, `# a test-made fstab\n${data} ${mnt} fuse.fsx _netdev,noauto,x-systemd.automount,preset=high-performance,attr_ttl=42s 0 0\n`)
    const m = await run('env', ['-u', 'NODE_OPTIONS', 'mount', '-T', fstab, mnt], { env: p.env, timeoutMs: 60_000 })
    t.equal(m.code, 0, `mount -T: ${m.stderr}`)
    t.teardown(async () => { await forceUnmount(mnt) })
    const entry = lines(await readFile('/proc/mounts', 'utf8')).find(l => l.split(' ')[1] === mnt)
    t.match(entry ?? '', / fuse\.fsx /, 'the kernel shows a fuse.fsx mount')
    t.equal((await sh('cat f', mnt)).stdout, 'from fstab\n')

    const stats = await fsxi(['stats', mnt, '--json'])
    t.equal(stats.code, 0, stats.stderr)
    const s = JSON.parse(stats.stdout).mounts[0] as { preset: string, pid: number }
    t.equal(s.preset, 'high-performance', 'preset= from the fstab line is applied')
    const logDir = path.join(p.env.XDG_STATE_HOME, 'fsx', 'logs')
    const log = (await run('bash', ['-c', `cat ${logDir}/*.log`])).stdout
    t.match(log, new RegExp(`on ${mnt} \\(preset high-performance,`), `the mount's log names the preset: ${log}`)

    const u = await run('umount', [mnt], { env: p.env })
    t.equal(u.code, 0, u.stderr)
    t.equal(await isMounted(mnt), false, 'umount unmounts')
    await waitUntil(() => { try { process.kill(s.pid, 0); return false } catch { return true } }, { timeoutMs: 30_000, what: 'the mount process to exit after umount' })
    const left = await fsxi(['mounts', '--json'])
    t.same(JSON.parse(left.stdout).mounts, [], 'and it left no runtime state behind')

    // A secret on an fstab line is refused (fstab is world-readable), without being repeated.
    await writeFile(fstab, `${data} ${mnt} fuse.fsx noauto,sftp_password=fstab-secret-2b7c 0 0\n`)
    const bad = await run('env', ['-u', 'NODE_OPTIONS', 'mount', '-T', fstab, mnt], { env: p.env, timeoutMs: 60_000 })
    t.not(bad.code, 0, 'refused')
    t.match(bad.stderr, /holds a secret/)
    t.notOk(bad.stderr.includes('fstab-secret-2b7c'), 'the secret is not repeated')
    t.equal(await isMounted(mnt), false)
  })

  t.test('a user who is not root mounts and unmounts with the installed fsx (fusermount3)', async t => {
    const p = await installed()
    const user = await testUser(t)
    const base = await tempDir(t, 'fsx-user-')
    await chmod(base, 0o755)
    const data = path.join(base, 'data')
    const mnt = path.join(base, 'fsx-mnt-user')
    const home = path.join(base, 'home')
    for (const d of [data, mnt, home]) { await mkdir(d); await chown(d, user.uid, user.gid) }
    await writeFile(path.join(data, 'f'), 'mine\n')
    await chown(path.join(data, 'f'), user.uid, user.gid)
    const env = {
      ...p.env,
      HOME: home,
      XDG_RUNTIME_DIR: home,
      XDG_CACHE_HOME: path.join(home, 'cache'),
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      FSX_RUNTIME_DIR: path.join(home, 'run')
    }
    t.teardown(async () => {
      await user.run(p.fsx, ['unmount', mnt], { env })
      await forceUnmount(mnt)
    })
    const m = await user.run(p.fsx, ['mount', data, mnt, '--daemon'], { env, timeoutMs: 60_000 })
    t.equal(m.code, 0, `fsx mount as uid ${user.uid}: ${m.stderr}`)
    const entry = lines(await readFile('/proc/mounts', 'utf8')).find(l => l.split(' ')[1] === mnt) ?? ''
    t.match(entry, new RegExp(`user_id=${user.uid}\\b`), `the mount belongs to the user: ${entry}`)
    t.equal((await user.run('cat', [path.join(mnt, 'f')], { env })).stdout, 'mine\n')
    t.equal((await user.run('bash', ['-c', `echo two > ${mnt}/g`], { env })).code, 0, 'the user writes')
    const u = await user.run(p.fsx, ['unmount', mnt], { env })
    t.equal(u.code, 0, `fsx unmount as the user: ${u.stderr}`)
    t.equal(await isMounted(mnt), false, 'unmounted')
    t.equal(await readFile(path.join(data, 'g'), 'utf8'), 'two\n')

    // allow_other needs user_allow_other in /etc/fuse.conf; without it the user is told so in one line.
    const conf = await readFile('/etc/fuse.conf', 'utf8').catch(() => '')
    const permitted = /^\s*user_allow_other\s*$/m.test(conf)
    const ao = await user.run(p.fsx, ['mount', data, mnt, '--daemon', '--allow-other'], { env, timeoutMs: 60_000 })
    if (permitted) {
      t.equal(ao.code, 0, `allow_other is permitted by /etc/fuse.conf: ${ao.stderr}`)
      await user.run(p.fsx, ['unmount', mnt], { env })
    } else {
      t.not(ao.code, 0, 'allow_other without user_allow_other in /etc/fuse.conf is refused')
      t.equal(lines(ao.stderr).length, 1, `in one line: ${ao.stderr}`)
      t.match(ao.stderr, /user_allow_other/, 'which names what to change')
      t.equal(await isMounted(mnt), false)
    }
  })
}

t.test('the plugin guide\'s example (docs/PLUGINS.md) compiles against the packed @fsx/sdk outside the repository, and passes conformance', async t => {
  const p = await installed()
  const guide = await readFile(path.join(ROOT, 'docs', 'PLUGINS.md'), 'utf8')
  // Each file of the example is a fenced block right under a `<!-- file: PATH -->` line.
  const files = [...guide.matchAll(/^<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)^```$/gm)].map(m => ({ name: m[1], text: m[2] }))
  t.same(files.map(f => f.name).sort(), ['package.json', 'src/hooks/backends.ts', 'src/ram.ts', 'tsconfig.json'], 'the guide holds the whole plugin')
  const dir = await tempDir(t, 'fsx-guide-')
  t.notOk(dir.startsWith(`${ROOT}/`), 'outside the repository')
  for (const f of files) {
    await mkdir(path.dirname(path.join(dir, f.name)), { recursive: true })
    await writeFile(path.join(dir, f.name), f.text)
  }
  const sdk = path.join(p.tgz, tarballName('@fsx/sdk', (JSON.parse(await readFile(path.join(ROOT, 'sdk', 'package.json'), 'utf8')) as { version: string }).version))
  // The packed @fsx/sdk stands in for the registry's; the guide's devDependencies (typescript, @types/node) come
  // from npm's cache where `npm ci` put them.
  const inst = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier', sdk], { cwd: dir, env: npmEnv(), timeoutMs: 300_000 })
  t.equal(inst.code, 0, `npm install: ${inst.stderr.slice(-2000)}`)
  const check = await run(path.join(dir, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', dir], { cwd: dir, timeoutMs: 120_000 })
  t.equal(check.code, 0, `tsc --noEmit: ${check.stdout}${check.stderr}`)

  // A definition for another plugin API fails to type-check: the SDK's apiVersion is a literal.
  const ram = path.join(dir, 'src', 'ram.ts')
  const source = await readFile(ram, 'utf8')
  await writeFile(ram, source.replace('apiVersion: 1,', 'apiVersion: 2,'))
  const other = await run(path.join(dir, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', dir], { cwd: dir, timeoutMs: 120_000 })
  t.not(other.code, 0, 'apiVersion: 2 does not compile against @fsx/sdk 1')
  t.match(other.stdout, /src\/ram\.ts\(\d+,\d+\): error TS2322: Type '2' is not assignable to type '1'/, `the apiVersion line is the error: ${other.stdout}`)
  await writeFile(ram, source)

  const build = await run('npm', ['run', 'build'], { cwd: dir, env: npmEnv(), timeoutMs: 120_000 })
  t.equal(build.code, 0, `npm run build: ${build.stdout}${build.stderr}`)
  const link = await fsxi(['plugins', 'link', dir], {}, 180_000)
  t.equal(link.code, 0, link.stderr)
  t.teardown(async () => { await fsxi(['plugins', 'unlink', 'fsx-backend-ram']) })
  const help = await fsxi(['mount', '--help'])
  t.match(help.stdout, /--ram-size/, 'its setting shows in fsx mount --help')
  const conf = await fsxi(['conformance', 'ram://guide'], {}, 300_000)
  t.equal(conf.code, 0, `fsx conformance: ${conf.stdout.split('\n').filter(l => l.startsWith('not ok')).join('\n')}${conf.stderr}`)
  t.match(conf.stdout, /\d+ passed, 0 failed/)
  const tooSmall = await fsxi(['conformance', 'ram://guide', '--ram-size', '1K'])
  t.equal(tooSmall.code, 3, 'its setting is range-checked')
  t.match(tooSmall.stderr, /ramSize/)
})
