// The CLI with the SFTP plugin against a real sshd: `fsx tune` shows the SFTP settings (secrets as "(set)"), an
// unknown or changed host key is refused with one line naming the fingerprint, a bad login is one line without
// the password, hashed known_hosts entries and the insecure opt-out work, and `fsx mount … --daemon` gives a mount
// whose files match the server's byte for byte.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { sftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { fsx, fuseAvailable, forceUnmount, isMounted, run, tempDir } from '../helpers/mount.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'

const kit = { fsxError }
const lines = (s: string): string[] => s.split('\n').filter(l => l.trim() !== '')

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
      const mnt = await tempDir('fsx-mnt-')
      t.teardown(async () => {
        await fsx(['unmount', mnt], { timeoutMs: 20_000 })
        await forceUnmount(mnt)
      })
      const files: Record<string, Buffer> = { 'a.bin': randomBytes(1024 * 1024 + 5), 'empty': Buffer.alloc(0), 'deep/er/c.txt': Buffer.from('c\n') }
      for (const [name, data] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(sub, name)), { recursive: true })
        await writeFile(path.join(sub, name), data)
      }
      const r = await fsx(['mount', source, mnt, '--daemon', '--preset', 'high-performance'], { env: sshd.env, timeoutMs: 60_000 })
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
      const u = await fsx(['unmount', mnt], { timeoutMs: 20_000 })
      t.equal(u.code, 0, u.stderr)
      t.ok((await readFile(path.join(sub, 'w.bin'))).equals(written), 'what was written through the daemon mount is on the server')
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
