// Paths near PATH_MAX over SFTP: OpenSSH's sftp-server answers ENAMETOOLONG as BAD_MESSAGE, the same code as
// EINVAL. A path whose server form (the served root joined in front) reaches PATH_MAX must come back as
// ENAMETOOLONG, as a name over 255 bytes does, not EINVAL; and one just under it still works.
import t from 'tap'
import path from 'node:path'
import { mkdir } from 'node:fs/promises'
import { sftpBackend, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { fuseAvailable, mountFsx, run } from '../helpers/mount.js'

const PATH_MAX = 4096
const COMPONENT = 'd'.repeat(200)
const flags = { read: true, write: true, create: true, exclusive: false, truncate: false, append: false }

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)

  t.test('the backend: ENAMETOOLONG once the server path reaches PATH_MAX, success just under it', async t => {
    const raw = sshd.url
    const b = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts }, { fsxError }) as SftpBackend
    t.teardown(() => b.close())
    // Directories down to a depth where one more component crosses PATH_MAX on the server.
    const serverLength = (p: string): number => Buffer.byteLength(sshd.dataDir + p)
    let deep = ''
    while (serverLength(`${deep}/${COMPONENT}/${COMPONENT}`) < PATH_MAX) {
      deep += '/' + COMPONENT
      await b.mkdir(deep, 0o755)
    }
    const fits = `${deep}/${'f'.repeat(PATH_MAX - 1 - serverLength(deep) - 1)}`
    t.equal(serverLength(fits), PATH_MAX - 1, 'a path of PATH_MAX - 1 bytes on the server…')
    const h = await b.open(fits, flags, 0o644)
    await h.close()
    t.equal((await b.stat(fits)).kind, 'file', '…works')
    const over = `${deep}/${COMPONENT}/${COMPONENT}`
    t.ok(serverLength(over) >= PATH_MAX, `${serverLength(over)} bytes on the server`)
    await t.rejects(b.mkdir(`${deep}/${COMPONENT}/${COMPONENT}`, 0o755), { code: 'ENAMETOOLONG' }, 'mkdir')
    await t.rejects(b.stat(over), { code: 'ENAMETOOLONG' }, 'stat')
    await t.rejects(b.open(over, flags, 0o644), { code: 'ENAMETOOLONG' }, 'create')
    await t.rejects(b.rename(fits, over), { code: 'ENAMETOOLONG' }, 'rename to it')
    await t.rejects(b.symlink('target', over), { code: 'ENAMETOOLONG' }, 'symlink')
    await t.rejects(b.stat(`/${'n'.repeat(256)}`), { code: 'ENAMETOOLONG' }, 'and a name over 255 bytes, as before')
    await t.rejects(b.stat('/a/../b'), { code: 'EINVAL' }, 'EINVAL stays for what is invalid')
  })

  if (fuseAvailable(t)) {
    t.test('through a mount: an application working deep down gets ENAMETOOLONG past PATH_MAX', async t => {
      await mkdir(path.join(sshd.dataDir, 'mnt'))
      const m = await mountFsx(t, `${sshd.url}/mnt`, [], { env: sshd.env })
      // Relative steps: the kernel checks each call's own short path; fsx and the server see the whole path.
      const steps = Math.ceil(PATH_MAX / (COMPONENT.length + 1))
      const r = await run('bash', ['-c', [
        `cd ${JSON.stringify(m.mountpoint)}`,
        `for i in $(seq ${steps}); do out=$(mkdir ${COMPONENT} 2>&1) || { echo "$out"; echo "depth $i"; exit 0; }; cd ${COMPONENT}; done`,
        'echo "no error"'
      ].join('\n')], { timeoutMs: 120_000 })
      t.match(r.stdout, /File name too long/, `mkdir deep down fails with ENAMETOOLONG: ${r.stdout.trim()} ${r.stderr.trim()}`)
      t.notMatch(r.stdout, /Invalid argument/)
      t.equal(await m.stop(), 0)
    })
  }
}
