/**
 * @fsx/backend-local: serves a directory on this machine. Registered with the core through the `fsx:backends` hook
 * (./hooks/backends.ts); this module is the definition object and the implementation.
 *
 * Sources it serves (the core has parsed them into a SourceUrl already):
 *   /srv/data  ./data  (bare paths: url is the file: URL of the absolute path)
 *   local:/srv/data  local:./data  file:///srv/data
 *
 * No run-time import of the core: types come in with `import type`, errors are made with `kit.fsxError` or are
 * Node's own fs errors (which carry errno codes already).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BackendDefinition, SourceUrl } from '@fsx/sdk'
import { LocalBackend } from './local-backend.js'

export { LocalBackend, LocalFileHandle, toStat, LIST_CONCURRENCY, type LocalBackendOptions } from './local-backend.js'
export type { XattrMode } from './xattr.js'
export { HostTree, type At } from './host-tree.js'

type MakeError = (code: string, message: string) => Error

/** An EINVAL error without the kit: `validate` is not handed one. Same shape as the core's (code, errno name). */
const plainError: MakeError = (code, message) => Object.assign(new Error(message), { code })

/** The absolute host path a source names. Pure: no file-system access. Throws EINVAL for what it cannot serve. */
export function rootFromSource (source: SourceUrl, makeError: MakeError = plainError): string {
  const { url } = source
  if (url.protocol === 'file:') {
    if (url.hostname !== '' && url.hostname !== 'localhost') {
      throw makeError('EINVAL', `local source: file URLs must name this machine, not "${url.hostname}"`)
    }
    try {
      return resolve(fileURLToPath(url))
    } catch (err) {
      throw makeError('EINVAL', `local source: not a usable file URL (${(err as Error).message})`)
    }
  }
  if (url.protocol === 'local:') {
    // Prefer the text as typed: a URL parser would percent-encode spaces and such in the path.
    let rest: string
    if (/^local:/i.test(source.raw)) {
      rest = source.raw.slice('local:'.length)
    } else {
      try {
        rest = decodeURIComponent(url.pathname)
      } catch {
        throw makeError('EINVAL', 'local source: the path holds a bad percent escape')
      }
    }
    if (rest.startsWith('//') && !rest.startsWith('///')) {
      throw makeError('EINVAL', 'local source: use local:/path (or file:///path); a host name is not allowed')
    }
    if (rest === '') throw makeError('EINVAL', 'local source: no path given (e.g. local:/srv/data)')
    if (rest.includes('\0')) throw makeError('EINVAL', 'local source: the path holds a NUL byte')
    return resolve(rest)
  }
  throw makeError('EINVAL', `local source: unsupported scheme "${url.protocol.replace(/:$/, '')}" (use a path, local: or file:)`)
}

/** The definition registered with the core. */
export const localBackend: BackendDefinition = {
  apiVersion: 1,
  name: 'local',
  schemes: ['local', 'file'],
  summary: 'A directory on this machine (path, local:/path or file:///path).',
  validate (source) {
    rootFromSource(source)
  },
  async create (source, _options, kit) {
    const root = rootFromSource(source, (code, message) => kit.fsxError(code, message, { op: 'create' }))
    return await LocalBackend.create(root, kit)
  }
}

export default localBackend
