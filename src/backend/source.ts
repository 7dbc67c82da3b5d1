/**
 * Source parsing: turns what the user typed as SOURCE into a SourceUrl and picks its scheme.
 * Local forms: `/path`, `./path`, `path`, `~/path`, `local:/path`, `local:path`, `file:///path`.
 * Anything shaped `scheme://…` or `scheme:…` with a registered scheme goes to that scheme's backend.
 */
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { FsxError, redactSource } from '../errors.js'
import type { SourceUrl } from './types.js'

const SCHEME = /^([a-z][a-z0-9+.-]*):(.*)$/i

/** Parses SOURCE. Throws ECONFIG with one readable line for a malformed URL. */
export function parseSource (raw: string): SourceUrl {
  if (raw.trim() === '') throw new FsxError('ECONFIG', 'the source is empty', { hint: 'give a directory, sftp://host/path or s3://bucket' })
  const m = SCHEME.exec(raw)
  // A bare path, or something like "C:" that is not a URL: local.
  if (!m || raw.startsWith('/') || raw.startsWith('.') || raw.startsWith('~')) {
    return { scheme: 'local', raw, url: pathToFileURL(expandHome(raw)) }
  }
  const scheme = m[1].toLowerCase()
  const rest = m[2]
  if (scheme === 'local') {
    return { scheme: 'local', raw, url: pathToFileURL(expandHome(rest.startsWith('//') ? rest.slice(2) : rest)) }
  }
  if (scheme === 'file') {
    try {
      const url = new URL(raw)
      if (url.host !== '' && url.host !== 'localhost') throw new Error('remote host')
      return { scheme: 'local', raw, url }
    } catch {
      throw new FsxError('ECONFIG', `bad source "${redactSource(raw)}": a file URL looks like file:///absolute/path`)
    }
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new FsxError('ECONFIG', `bad source "${redactSource(raw)}": not a valid ${scheme}: URL`, { hint: `write it as ${scheme}://host/path` })
  }
  return { scheme, raw, url }
}

function expandHome (p: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1))
  return path.resolve(p)
}
