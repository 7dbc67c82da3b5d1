/**
 * @fsx/backend-sftp: serves a directory on an SFTP server (`sftp://[user@]host[:port]/path`). Registered with the
 * core through the `fsx:backends` hook (./hooks/backends.ts); this module is the definition object.
 *
 * Settings (SFTP_OPTIONS) arrive resolved in `create()`'s options. The SSH libraries (ssh2-sftp-client, ssh2) are
 * imported only when a backend is created. No run-time import of the core: types come in with `import type`,
 * errors are made with `kit.fsxError`.
 */
import type { BackendDefinition } from '@fsx/sdk'
import { SFTP_OPTIONS, sftpSettings } from './options.js'
import { SftpBackend } from './sftp-backend.js'
import { parseSftpSource } from './source.js'

export { SftpBackend, toStat, nlinkFromLongname } from './sftp-backend.js'
export { SftpFileHandle, MAX_INFLIGHT, READAHEAD_CHUNK, READAHEAD_AFTER, READAHEAD_MAX_CHUNKS, WRITE_BEHIND_BYTES } from './file-handle.js'
export { Pool, Session, TransportError, request } from './connection.js'
export { SFTP_OPTIONS, sftpSettings, type SftpSettings, DEFAULT_TIMEOUT_MS, DEFAULT_CONNECTIONS, DEFAULT_KEEPALIVE_MS } from './options.js'
export { parseSftpSource, describeTarget, hostKeyName, type SftpTarget } from './source.js'
export { parseKnownHosts, checkHostKey, hostFieldMatches, fingerprint, keyTypeOf, hostKeyAlgorithms } from './known-hosts.js'
export { hostKeyRefusal } from './ssh.js'

/** The definition registered with the core. */
export const sftpBackend: BackendDefinition = {
  apiVersion: 1,
  name: 'sftp',
  schemes: ['sftp'],
  summary: 'A directory on an SFTP server (sftp://[user@]host[:port]/path; /~/dir is relative to the home directory).',
  options: SFTP_OPTIONS,
  validate (source) {
    parseSftpSource(source)
  },
  async create (source, options, kit) {
    const target = parseSftpSource(source, (code, message) => kit.fsxError(code, message, { op: 'create' }))
    return await SftpBackend.create(target, sftpSettings(options), kit)
  }
}

export default sftpBackend
