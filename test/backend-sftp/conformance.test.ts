/**
 * The backend conformance suite (test/helpers/conformance.ts) against the SFTP backend, talking to a real OpenSSH
 * sshd (test/helpers/sshd.ts) on 127.0.0.1: once with the default settings, created through the definition as the
 * CLI does. Imports compiled output (`npm test` runs `tsc -b` first).
 */
import t from 'tap'
import { sftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { conformance } from '../helpers/conformance.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'

const kit = { fsxError }

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)
  void conformance(t, 'sftp', async () => {
    const raw = sshd.url
    const backend = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) },
      { sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts }, kit)
    return { backend, cleanup: async () => {} }
  })
}
