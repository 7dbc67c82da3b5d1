// The CLI with the SFTP plugin against a real sshd: `fsx tune` shows the SFTP settings (secrets as "(set)"), an
// unknown or changed host key is refused with one line naming the fingerprint, a bad login is one line without
// the password, a refused port too, each with the backend exit code (5) in the foreground and with --daemon; hashed
// known_hosts entries and the insecure opt-out work; `fsx mount … --daemon` gives a mount whose files match the
// server's byte for byte; and `fsx unmount` refuses an sshfs mount of the same server.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { sftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { fsx, fuseAvailable, forceUnmount, isMounted, run, tempDir } from '../helpers/mount.js'
import { freePort, startSshd, sshdAvailable } from '../helpers/sshd.js'

const kit = { fsxError }
const lines = (s: string): string[] => s.split('\n').filter(l => l.trim() !== '')

/** A temp dir removed in teardown, unless something is still mounted on it (never delete through a mount). */
async function scratch (t: Tap.Test, prefix: string): Promise<string> {
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

t.test('fsx tune lists the sftp settings with their sources, secrets shown as "(set)"', async t => {
  const r = await fsx(['tune', '--json', '--sftp-timeout', '7s', '--sftp-connections=3'], {
    env: { FSX_SFTP_PASSWORD: 'hunter2-secret', FSX_SFTP_KEY_PASSPHRASE: 'pass-secret', FSX_SFTP_KEY: '/keys/id', FSX_CONFIG: undefined }
  })
  t.equal(r.code, 0, r.stderr)
  const s = JSON.parse(r.stdout).settings
  t.same(s.sftpPassword, { value: '(set)', source: 'env' })
  t.same(s.sftpKeyPassphrase, { value: '(set)', source: 'env' })
  t.same(s.sftpKey, { value: '/keys/id', source: 'env' })
  t.same(s.sftpTimeout, { value: 7000, source: 'flag' })
  t.same(s.sftpConnections, { value: 3, source: 'flag' })
  t.same(s.sftpInsecureHostKey, { value: false, source: 'default' })
  t.same(s.sftpKnownHosts, { value: '~/.ssh/known_hosts', source: 'default' })
  const table = await fsx(['tune'], { env: { FSX_SFTP_PASSWORD: 'hunter2-secret' } })
  t.match(table.stdout, /sftpPassword\s+\(set\)/)
  t.notMatch(r.stdout + table.stdout + table.stderr, /hunter2|pass-secret/, 'no secret is printed')
})

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)
  const sub = path.join(sshd.dataDir, 'cli')
  await mkdir(sub)
  const source = `${sshd.url}/cli`

  t.test('an unknown host key is refused with one line naming its SHA256 fingerprint and how to trust it', async t => {
    const empty = path.join(await tempDir('fsx-kh-'), 'known_hosts')
    await writeFile(empty, '')
    const mnt = await tempDir('fsx-mnt-')
    t.teardown(() => forceUnmount(mnt))
    const r = await fsx(['mount', source, mnt], { env: { FSX_SFTP_KEY: sshd.userKey, FSX_SFTP_KNOWN_HOSTS: empty }, timeoutMs: 30_000 })
    t.equal(r.code, 5, 'exit code 5: backend')
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
    t.match(r.stderr, /unknown host key for \[127\.0\.0\.1\]:\d+/)
    t.ok(r.stderr.includes(sshd.hostFingerprint), `names ${sshd.hostFingerprint}`)
    t.match(r.stderr, /ssh-keyscan -p \d+ -t ed25519 127\.0\.0\.1 >> /)
    t.match(r.stderr, /FSX_SFTP_INSECURE_HOST_KEY/)
    t.notOk(await isMounted(mnt), 'nothing was mounted')
  })

  t.test('the insecure opt-out connects to an unknown host; hashed known_hosts entries are honoured', async t => {
    const dir = await tempDir('fsx-kh-')
    const empty = path.join(dir, 'empty')
    await writeFile(empty, '')
    const raw = source
    const b = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: empty, sftpInsecureHostKey: true }, kit)
    t.equal((await b.stat('/')).kind, 'dir', 'connected without a known_hosts entry')
    await b.close()
    const hashed = path.join(dir, 'hashed')
    await writeFile(hashed, await readFile(sshd.knownHosts))
    execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'ignore' })
    t.match(await readFile(hashed, 'utf8'), /^\|1\|/)
    const h = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: hashed }, kit)
    t.equal((await h.stat('/')).kind, 'dir', 'connected through a hashed entry')
    await h.close()
  })

  t.test('sftp://host/~/dir names a directory in the login\'s home', async t => {
    const home = (await import('node:os')).userInfo().homedir
    const dir = await (await import('node:fs/promises')).mkdtemp(path.join(home, 'fsx-home-'))
    t.teardown(() => import('node:fs/promises').then(fs => fs.rm(dir, { recursive: true, force: true })))
    await writeFile(path.join(dir, 'here.txt'), 'home')
    const raw = `sftp://root@127.0.0.1:${sshd.port}/~/${path.basename(dir)}`
    const b = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts }, kit)
    t.equal((b as unknown as { root: string }).root, dir)
    t.equal(b.description, `sftp://root@127.0.0.1:${sshd.port}/~/${path.basename(dir)}`)
    t.equal((await b.read('/here.txt', 0, 10)).toString(), 'home')
    await b.close()
  })

  t.test('a login the server refuses is one line that names the methods, never the password', async t => {
    const wrongKey = path.join(await tempDir('fsx-key-'), 'id')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey])
    const mnt = await tempDir('fsx-mnt-')
    const r = await fsx(['mount', source, mnt, '--sftp-key', wrongKey], {
      env: { FSX_SFTP_KNOWN_HOSTS: sshd.knownHosts, FSX_SFTP_PASSWORD: 'hunter2-secret', SSH_AUTH_SOCK: '' }, timeoutMs: 30_000
    })
    t.equal(r.code, 5)
    t.equal(lines(r.stderr).length, 1, r.stderr)
    t.match(r.stderr, /refused every login method tried \(key .*id, password\)/)
    t.notMatch(r.stderr, /hunter2/)
  })

  if (fuseAvailable(t)) {
    t.test('fsx mount --daemon gives a mount whose files match the server byte for byte', async t => {
      const env = { ...sshd.env, ...await isolated(t) }
      const mnt = await scratch(t, 'fsx-mnt-')
      t.teardown(async () => {
        await fsx(['unmount', mnt], { env, timeoutMs: 20_000 })
        await forceUnmount(mnt)
      })
      const files: Record<string, Buffer> = { 'a.bin': randomBytes(1024 * 1024 + 5), 'empty': Buffer.alloc(0), 'deep/er/c.txt': Buffer.from('c\n') }
      for (const [name, data] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(sub, name)), { recursive: true })
        await writeFile(path.join(sub, name), data)
      }
      const r = await fsx(['mount', source, mnt, '--daemon', '--preset', 'high-performance'], { env, timeoutMs: 60_000 })
      t.equal(r.code, 0, r.stderr)
      t.ok(await isMounted(mnt))
      for (const name of Object.keys(files)) {
        const c = await run('cmp', [path.join(mnt, name), path.join(sub, name)])
        t.equal(c.code, 0, `${name} matches: ${c.stdout}${c.stderr}`)
      }
      const written = randomBytes(2 * 1024 * 1024 + 1)
      const src = path.join(await tempDir('fsx-src-'), 'w.bin')
      await writeFile(src, written)
      const cp = await run('cp', [src, path.join(mnt, 'w.bin')])
      t.equal(cp.code, 0, cp.stderr)
      const u = await fsx(['unmount', mnt], { env, timeoutMs: 20_000 })
      t.equal(u.code, 0, u.stderr)
      t.ok((await readFile(path.join(sub, 'w.bin'))).equals(written), 'what was written through the daemon mount is on the server')
    })
  }

  t.test('backend failures exit 5 with one line, in the foreground and with --daemon alike', async t => {
    const env = { ...await isolated(t), SSH_AUTH_SOCK: '' }
    const mnt = await scratch(t, 'fsx-mnt-')
    const empty = path.join(await scratch(t, 'fsx-kh-'), 'known_hosts')
    await writeFile(empty, '')
    const wrongKey = path.join(await scratch(t, 'fsx-key-'), 'id')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey])
    const closed = await freePort()
    const cases: Array<[string, string, Record<string, string>, RegExp]> = [
      ['a refused port', `sftp://root@127.0.0.1:${closed}/x`, sshd.env, new RegExp(`cannot connect to \\[127\\.0\\.0\\.1\\]:${closed}: connection refused`)],
      ['an unknown host key', source, { FSX_SFTP_KEY: sshd.userKey, FSX_SFTP_KNOWN_HOSTS: empty }, /unknown host key for \[127\.0\.0\.1\]:\d+/],
      ['a refused login', source, { FSX_SFTP_KEY: wrongKey, FSX_SFTP_KNOWN_HOSTS: sshd.knownHosts }, /refused every login method tried/],
      ['a missing directory', `${sshd.url}/no-such-dir`, sshd.env, /no-such-dir does not exist/]
    ]
    for (const [what, src, extra, why] of cases) {
      for (const daemon of [[], ['--daemon']]) {
        const r = await fsx(['mount', src, mnt, ...daemon], { env: { ...env, ...extra }, timeoutMs: 60_000 })
        t.equal(r.code, 5, `${what}${daemon.length ? ' (--daemon)' : ''}: exit 5: ${r.stderr}`)
        t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
        t.match(r.stderr, why, what)
        t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
      }
    }
    t.notOk(await isMounted(mnt), 'nothing was mounted')
  })

  if (fuseAvailable(t)) {
    t.test('fsx unmount refuses an sshfs mount (exit 4) and leaves it mounted', async t => {
      const mnt = await scratch(t, 'fsx-mnt-')
      await writeFile(path.join(sub, 'sshfs.txt'), 'theirs')
      const m = await run('sshfs', ['-p', String(sshd.port), '-o', `IdentityFile=${sshd.userKey}`, '-o', `UserKnownHostsFile=${sshd.knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@127.0.0.1:${sub}`, mnt], { timeoutMs: 60_000 })
      t.equal(m.code, 0, `sshfs mounts: ${m.stderr}`)
      t.ok(await isMounted(mnt))
      const r = await fsx(['unmount', mnt], { env: await isolated(t) })
      t.equal(r.code, 4, r.stderr)
      t.equal(lines(r.stderr).length, 1, r.stderr)
      t.match(r.stderr, /is not an fsx mount \(fuse\.sshfs from root@127\.0\.0\.1:.*\); fsx unmounts only its own mounts \(unmount it with: fusermount -u /)
      t.ok(await isMounted(mnt), 'the sshfs mount is still there')
      t.equal(await readFile(path.join(mnt, 'sshfs.txt'), 'utf8'), 'theirs')
      t.equal((await run('fusermount', ['-u', mnt])).code, 0)
    })
  }

  // Last: it restarts sshd with a new host key.
  t.test('a changed host key is refused with one line naming the new fingerprint', async t => {
    await sshd.kill({ connections: true })
    await sshd.rekey()
    await sshd.start()
    const mnt = await tempDir('fsx-mnt-')
    t.teardown(() => forceUnmount(mnt))
    const r = await fsx(['mount', source, mnt], { env: sshd.env, timeoutMs: 30_000 })
    t.equal(r.code, 5)
    t.equal(lines(r.stderr).length, 1, r.stderr)
    t.match(r.stderr, /HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+/)
    t.ok(r.stderr.includes(sshd.hostFingerprint), `names the new key ${sshd.hostFingerprint}`)
    t.match(r.stderr, /ssh-keygen -R/)
  })
}
