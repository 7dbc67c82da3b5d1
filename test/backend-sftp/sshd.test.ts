/**
 * The test sshd itself (test/helpers/sshd.ts): OpenSSH's own sftp client logs in with the throwaway key, checks the
 * host key against the generated known_hosts, and sees the served directory; kill and restart keep the port.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { run } from '../helpers/mount.js'

if (sshdAvailable(t)) {
  t.test('OpenSSH sftp logs in with the test key and strict host key checking', async t => {
    const sshd = await startSshd(t)
    await writeFile(path.join(sshd.dataDir, 'hello.txt'), 'hi')
    const sftp = (): Promise<{ code: number | null, stdout: string, stderr: string }> => run('sftp', [
      '-b', '-', '-P', String(sshd.port), '-i', sshd.userKey,
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${sshd.knownHosts}`,
      '-o', 'IdentitiesOnly=yes', '-o', 'GlobalKnownHostsFile=/dev/null', 'root@127.0.0.1'
    ], { input: `ls -1 ${sshd.dataDir}\n`, timeoutMs: 20_000 })
    let r = await sftp()
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /hello\.txt/)
    t.match(sshd.hostFingerprint, /^SHA256:/)
    await sshd.kill({ connections: true })
    await sshd.start()
    r = await sftp()
    t.equal(r.code, 0, `again after a restart on port ${sshd.port}: ${r.stderr}`)
  })
}
