/**
 * Mount options in mount(8)'s form, for /etc/fstab, `mount -o`, systemd units and `fsx mount -o`:
 *
 *   preset=high-performance,attr_ttl=30s,allow_other,_netdev,env_file=/etc/fsx/data.env
 *
 * - A setting is `key=value` or, for a boolean, `key` (on) and `nokey` / `key=false` (off). Keys are matched
 *   loosely, so the fstab habit `attr_ttl`, the flag's `attr-ttl` and the key `attrTtl` are one setting. Values are
 *   parsed and range-checked like flags (src/config/options.ts).
 * - `preset=`, `config=` and `env_file=` (a file of KEY=VALUE lines, e.g. FSX_SFTP_PASSWORD or AWS_* credentials,
 *   loaded into the environment before settings are resolved) are options too.
 * - Options meant for mount(8) and systemd (`_netdev`, `nofail`, `noauto`, `x-systemd.*`, `defaults`, `rw`, `user`…)
 *   are accepted and ignored; `ro` is refused (fsx has no read-only mount).
 * - Secrets are refused: fstab and unit files are readable by every user. They come from `env_file=` (mode 0600)
 *   or a key file (`sftp_key=/root/.ssh/id_ed25519`).
 * - Anything else is refused with one line (ECONFIG), unless `sloppy` (mount(8)'s -s), when it is ignored.
 */
import { readFile } from 'node:fs/promises'
import type { OptionSpec } from '../config/options.js'
import { envName } from '../config/options.js'
import { FsxError } from '../errors.js'

/** What a list of mount options asks for. `settings` holds raw values by key, for resolveSettings. */
export interface MountOptionValues {
  preset?: string
  config?: string
  envFile?: string
  settings: Record<string, unknown>
  /** Options that were ignored because `sloppy` was given (unknown ones). */
  ignored: string[]
}

/** mount(8), libmount and systemd options that are not fsx's to act on. */
const GENERIC = new Set(['defaults', 'rw', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail',
  'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'async', 'sync', 'atime', 'noatime', 'relatime', 'norelatime',
  'strictatime', 'nostrictatime', 'diratime', 'nodiratime', 'lazytime', 'nolazytime', 'silent', 'loud', 'bg', 'fg'])

const norm = (k: string): string => k.toLowerCase().replace(/[-_]/g, '')

/** Parses option strings (each a comma-separated list) against the settings table (core and plugin rows). */
export function parseMountOptions (lists: readonly string[], specs: readonly OptionSpec[], opts: { sloppy?: boolean } = {}): MountOptionValues {
  const byKey = new Map(specs.map(s => [norm(s.key), s]))
  const out: MountOptionValues = { settings: {}, ignored: [] }
  for (const item of lists.flatMap(l => l.split(',')).map(s => s.trim()).filter(s => s !== '')) {
    const eq = item.indexOf('=')
    const name = eq < 0 ? item : item.slice(0, eq)
    const value = eq < 0 ? undefined : item.slice(eq + 1)
    const key = norm(name)
    if (GENERIC.has(name) || name.startsWith('x-') || name === 'comment') continue
    if (name === 'ro') throw new FsxError('ECONFIG', 'mount option ro: fsx has no read-only mounts', { hint: 'mount it rw, or make the backend account read-only' })
    if (key === 'preset' || key === 'config' || key === 'envfile') {
      if (value === undefined || value === '') throw new FsxError('ECONFIG', `mount option ${name} needs a value (${name}=…)`)
      if (key === 'preset') out.preset = value
      else if (key === 'config') out.config = value
      else out.envFile = value
      continue
    }
    let spec = byKey.get(key)
    let negated = false
    if (spec === undefined && key.startsWith('no') && byKey.get(key.slice(2))?.kind === 'boolean') {
      spec = byKey.get(key.slice(2))
      negated = true
    }
    if (spec === undefined) {
      if (opts.sloppy === true) { out.ignored.push(item); continue }
      throw new FsxError('ECONFIG', `unknown mount option "${name}"`, { hint: 'options are the settings fsx tune lists, preset=, config= and env_file=' })
    }
    if (spec.secret === true) {
      throw new FsxError('ECONFIG', `mount option ${name} holds a secret, and fstab lines and unit files are readable by every user`, {
        hint: `put ${envName(spec.key)}=… in a root-only file named by env_file=FILE, or use a key file`
      })
    }
    if (spec.kind === 'boolean') {
      if (negated && value !== undefined) throw new FsxError('ECONFIG', `mount option ${name} takes no value`)
      out.settings[spec.key] = negated ? false : (value ?? true)
    } else {
      if (value === undefined || negated) throw new FsxError('ECONFIG', `mount option ${name} needs a value (${name}=…)`)
      out.settings[spec.key] = value
    }
  }
  return out
}

/**
 * Reads an environment file as systemd's EnvironmentFile= does (KEY=VALUE lines, `#` comments, optional quotes,
 * an optional leading `export`). Values are never printed.
 */
export async function readEnvFile (file: string): Promise<Record<string, string>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new FsxError('ECONFIG', `env_file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const out: Record<string, string> = {}
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (m === null) throw new FsxError('ECONFIG', `env_file ${file}:${i + 1}: not a KEY=VALUE line`)
    let v = m[2]
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1)
    out[m[1]] = v
  })
  return out
}
