/**
 * The options table: the single source of every setting's flag, FSX_* env name, config/preset key, default, help
 * text and JSON-schema type. Flags (src/commands), env parsing and provenance (resolve.ts), `fsx tune`, the presets'
 * JSON schema (presets/schema.json) and docs/SETTINGS.md are all generated from these rows.
 *
 * Spelling rule: key `attrTtl` ⇔ flag `--attr-ttl` ⇔ env `FSX_ATTR_TTL`. Values are held in base units:
 * durations in milliseconds, sizes in bytes.
 *
 * Backend plugins add rows of their own (e.g. sftpKey) through their definition's `options`; those use the same
 * spelling rule with the plugin's prefix.
 */
import { FsxError } from '../errors.js'
import { parseBoolean, parseCount, parseDuration, parseSize, formatDuration, formatSize } from './units.js'

export type OptionKind = 'duration' | 'size' | 'boolean' | 'count' | 'enum' | 'string'

/** One row of the table. */
export interface OptionSpec {
  /** camelCase key used in presets, config files, `tune --json`. */
  key: string
  kind: OptionKind
  /** Default in base units (ms, bytes). */
  default: number | boolean | string | undefined
  /** One line: what it does. */
  help: string
  /** Longer explanation for `tune --explain` and docs. */
  details?: string
  choices?: readonly string[]
  /** Never printed: shown as "(set)" in tune, stats and logs. */
  secret?: boolean
  /** Which part of fsx reads it (for docs): "kernel", "vfs", "fuse", or a backend name. */
  scope: string
}

/** Kernel and core settings. Defaults are conservative; presets/balanced.json is what users get by default. */
export const CORE_OPTIONS: readonly OptionSpec[] = [
  {
    key: 'attrTtl', kind: 'duration', default: 1000, scope: 'kernel',
    help: 'How long the kernel caches file attributes (FUSE attr_timeout).',
    details: 'Longer means fewer getattr calls reach fsx; changes made outside this mount show up at most this late.'
  },
  {
    key: 'entryTtl', kind: 'duration', default: 1000, scope: 'kernel',
    help: 'How long the kernel caches name lookups (FUSE entry_timeout).',
    details: 'Longer means fewer lookups; a file created or removed outside this mount is noticed at most this late.'
  },
  {
    key: 'negativeTtl', kind: 'duration', default: 0, scope: 'kernel',
    help: 'How long the kernel remembers that a name does not exist (FUSE negative_timeout).',
    details: 'Helps builds and interpreters that probe many missing paths. 0 disables it.'
  },
  {
    key: 'readahead', kind: 'size', default: 128 * 1024, scope: 'kernel',
    help: 'Kernel readahead window for sequential reads (FUSE max_readahead).'
  },
  {
    key: 'maxRead', kind: 'size', default: 128 * 1024, scope: 'kernel',
    help: 'Largest single read request the kernel sends (FUSE max_read).',
    details: 'With libfuse 2 the kernel caps requests at 128K whatever is asked.'
  },
  {
    key: 'maxWrite', kind: 'size', default: 128 * 1024, scope: 'kernel',
    help: 'Largest single write request the kernel sends (FUSE max_write, with big_writes).',
    details: 'Without big_writes the kernel writes 4K at a time. With libfuse 2 the kernel caps requests at 128K.'
  },
  {
    key: 'consistency', kind: 'enum', default: 'session', choices: ['strong', 'session', 'eventual'], scope: 'vfs',
    help: 'How soon changes made outside this mount are seen: strong, session (close-to-open) or eventual.',
    details: 'strong: the kernel page cache is dropped on every open (no kernel_cache); no user-space metadata or xattr ' +
      'caches; cached data blocks are revalidated at every open. ' +
      'session: cached file data is kept across opens only while the file\'s mtime and size are unchanged (auto_cache); ' +
      'lookups are served from the user-space caches, but every open revalidates the file\'s attributes (close-to-open). ' +
      'eventual: cached file data is kept across opens until evicted (kernel_cache), and opens too are served from the ' +
      'caches until their TTLs pass. A change made outside the mount is seen within attrTtl + attrCacheTtl ' +
      '(listings: dirCacheTtl; a name looked up in vain: negativeTtl + negativeCacheTtl).'
  },
  {
    key: 'writeback', kind: 'boolean', default: false, scope: 'vfs',
    help: 'Acknowledge close() before data is durable on the backend (write-back) instead of after (write-through).',
    details: 'Write-through (false): close() and fsync() return only once the backend holds the data durably. ' +
      'Write-back (true): close() returns once the data is handed to the backend; fsync() still waits for durability.'
  },
  {
    key: 'xattrs', kind: 'boolean', default: true, scope: 'vfs',
    help: 'Serve extended attributes (getfattr, setfattr, rsync -X) where the backend has them.',
    details: 'Off: every xattr call answers "not supported" and the kernel stops asking for the rest of the mount, so ' +
      'ls -l makes no request per file for SELinux labels and POSIX ACLs (it asks for both on every entry, every ' +
      'time). On: xattrs work, at one round trip to fsx per file and per ls -l (answered from the xattr cache).'
  },
  {
    key: 'xattrCacheSize', kind: 'count', default: 1024, scope: 'vfs',
    help: 'Paths whose extended attributes are cached in user space (0, or consistency=strong, disables the cache).'
  },
  {
    key: 'xattrCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    help: 'How long a cached extended attribute (or its absence) is trusted.'
  },
  {
    key: 'attrCacheSize', kind: 'count', default: 10_000, scope: 'vfs',
    help: 'Paths whose attributes fsx caches in user space, under the kernel\'s own cache (0 disables it).',
    details: 'Saves a backend round trip when the kernel asks again: `ls -l` after a listing, a lookup after attrTtl. ' +
      'Off with consistency=strong. Every change made through this mount updates it at once.'
  },
  {
    key: 'attrCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    help: 'How long a cached attribute is trusted in user space.',
    details: 'A change made outside this mount shows up at most attrTtl + attrCacheTtl late. ' +
      'With consistency=session a file\'s attributes are revalidated at every open anyway (close-to-open).'
  },
  {
    key: 'dirCacheSize', kind: 'count', default: 1000, scope: 'vfs',
    help: 'Directories whose listings fsx caches in user space (0 disables it).',
    details: 'A listing also fills the attribute cache with the attributes it carries. Off with consistency=strong.'
  },
  {
    key: 'dirCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    help: 'How long a cached directory listing is trusted; names added or removed outside this mount show up at most this late in listings.'
  },
  {
    key: 'negativeCacheSize', kind: 'count', default: 10_000, scope: 'vfs',
    help: 'Paths whose "no such file" answer fsx caches in user space (0 disables it).'
  },
  {
    key: 'negativeCacheTtl', kind: 'duration', default: 0, scope: 'vfs',
    help: 'How long a cached "no such file" answer is trusted in user space (0 disables it).',
    details: 'A file created outside this mount under a name looked up in vain shows up at most negativeTtl + ' +
      'negativeCacheTtl late. Files created through this mount are seen at once.'
  },
  {
    key: 'validateInterval', kind: 'duration', default: 0, scope: 'vfs',
    help: 'Background validator: how often fsx re-checks recently used files whose cached attributes are about to expire (0: off).',
    details: 'Each round asks the backend for the attributes of up to 256 recently used files that expire within the interval: ' +
      'unchanged ones stay cached (a later open or lookup need not wait for the backend), changed or removed ones are ' +
      'dropped from the attribute and data caches at once instead of at their TTL. Costs one stat (S3: one HEAD) per file ' +
      'checked. The kernel\'s own caches still follow attrTtl/entryTtl. Off with consistency=strong.'
  },
  {
    key: 'staleIfError', kind: 'duration', default: 3_600_000, scope: 'vfs',
    help: 'While the backend fails (timeouts, connection errors, EIO), cached attributes, listings and data keep answering for this long past their TTL (0: fail at once).',
    details: 'Stale answers come only from what the backend said before it failed; they never override an answer it ' +
      'gives (ENOENT, EACCES), nor anything changed through this mount (writes not uploaded yet are served from the ' +
      'write-back journal as always). Each is counted in fsx stats (stale.serves). Off with consistency=strong.'
  },
  {
    key: 'dataCacheSize', kind: 'size', default: 1024 ** 3, scope: 'vfs',
    help: 'Hard cap of the on-disk data cache under cacheDir/data, per mounted source (0 disables it).',
    details: 'Only for backends that cannot write at an offset (S3-like); local files use the kernel page cache. ' +
      'File content is cached in 1 MiB blocks, so a sparse read of a big file fetches only what it touches. The cap ' +
      'is never exceeded, not even while files are open. The cache survives a restart; a block is reused only while ' +
      'the object\'s size and mtime (or ETag) are unchanged, checked at every open (consistency=session or strong).'
  },
  {
    key: 'dataCacheMemory', kind: 'size', default: 64 * 1024 ** 2, scope: 'vfs',
    help: 'Hard cap of the in-memory data cache, which holds small files (0 disables it).'
  },
  {
    key: 'dataCacheSmallFile', kind: 'size', default: 1024 ** 2, scope: 'vfs',
    help: 'Files up to this size are cached in memory, bigger ones on disk.'
  },
  {
    key: 'dataCachePolicy', kind: 'enum', default: 'lru', choices: ['lru', 'lfu', 'ttl', 'hybrid'], scope: 'vfs',
    help: 'What the data cache evicts first when full: lru, lfu, ttl or hybrid.',
    details: 'lru: least recently used. lfu: least often used (keeps a data set read again and again). ' +
      'ttl: oldest first, and blocks expire after dataCacheTtl. hybrid: segmented LRU, where blocks read twice ' +
      'survive a one-off scan of a big file.'
  },
  {
    key: 'dataCacheTtl', kind: 'duration', default: 3_600_000, scope: 'vfs',
    help: 'With dataCachePolicy=ttl: how long a cached block lives.'
  },
  {
    key: 'prefetchMax', kind: 'size', default: 8 * 1024 ** 2, scope: 'vfs',
    help: 'Largest window fsx prefetches ahead of a sequential reader into the data cache (0 disables it).',
    details: 'User-space readahead for backends that cannot write at an offset (S3-like), on top of the kernel\'s ' +
      'short readahead: after three sequential reads of one open file, the next blocks are fetched as parallel ranged ' +
      'reads; the window starts at 2 MiB and doubles while the reads stay sequential; a random read stops it.'
  },
  {
    key: 'memoryBudget', kind: 'size', default: 512 * 1024 ** 2, scope: 'vfs',
    help: 'One memory budget for fsx\'s user-space caches and readahead buffers together (0: only each cache\'s own cap).',
    details: 'Covers the attribute, listing, negative and xattr caches (estimated), the in-memory data cache and blocks ' +
      'being fetched. Near the budget the in-memory data cache gives up blocks and readahead pauses; a read an ' +
      'application is waiting for is never refused, so blocks in flight for such reads (one per request) can ' +
      'briefly go over it.'
  },
  {
    key: 'writebackDirtyMax', kind: 'size', default: 1024 ** 3, scope: 'vfs',
    help: 'With writeback on a backend that writes whole objects (S3-like): most bytes journaled on local disk but not yet uploaded.',
    details: 'close() returns once the file is in the journal under cacheDir/journal; uploads run in the background and ' +
      'are replayed at the next mount after a crash. Above this many pending bytes, close() waits for uploads.'
  },
  {
    key: 'opTimeout', kind: 'duration', default: 120_000, scope: 'fuse',
    help: 'Deadline for one filesystem operation; past it the application gets ETIMEDOUT instead of waiting forever.',
    details: 'fuse-native answers ETIMEDOUT after 15s by default, which cuts off slow but healthy uploads. fsx sets it ' +
      'to this value on purpose; backends use shorter per-request deadlines so their own errors arrive first.'
  },
  {
    key: 'cacheDir', kind: 'string', default: undefined, scope: 'vfs',
    help: 'Directory for staging files and caches (default: $XDG_CACHE_HOME/fsx, else ~/.cache/fsx).'
  },
  {
    key: 'engine', kind: 'enum', default: 'auto', choices: ['auto', 'kernel', 'fuse-native'], scope: 'fuse',
    help: 'How fsx talks to the kernel: its own FUSE protocol engine (kernel), fuse-native (libfuse 2), or auto.',
    details: 'kernel: fsx speaks the FUSE kernel protocol itself over /dev/fuse (protocol 7.45: passthrough, READDIRPLUS, ' +
      '1 MiB requests, notifications), on Node and Deno. fuse-native: the libfuse 2 binding (protocol 7.19), Node only, ' +
      'kept for machines where the kernel engine cannot run. auto: kernel, else fuse-native with one log line saying why.'
  },
  {
    key: 'passthrough', kind: 'boolean', default: true, scope: 'kernel',
    help: 'Kernel engine: hand local files\' reads, writes and mmap straight to the backing file (FUSE passthrough).',
    details: 'Needs Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH and fsx running as root (CAP_SYS_ADMIN). Where the kernel ' +
      'refuses, fsx serves the I/O itself and says so once in its log; `fsx stats` counts passthrough opens.'
  },
  {
    key: 'writebackCache', kind: 'boolean', default: false, scope: 'kernel',
    help: 'Kernel engine: let the kernel buffer writes and send them in large batches (FUSE writeback cache).',
    details: 'Small writes become one large WRITE and write() returns before fsx sees the data; close() still flushes. ' +
      'Not with passthrough (local files). See docs/SEMANTICS.md for what it changes for other writers.'
  },
  {
    key: 'allowOther', kind: 'boolean', default: false, scope: 'kernel',
    help: 'Let users other than the one who mounted access the mount (FUSE allow_other).',
    details: 'Non-root users need user_allow_other in /etc/fuse.conf.'
  },
  {
    key: 'defaultPermissions', kind: 'boolean', default: false, scope: 'kernel',
    help: 'Let the kernel check permissions from mode/uid/gid (FUSE default_permissions) instead of the backend.',
    details: 'When not set, it is on for an allowOther mount whose backend records owners (local run as root, S3, ' +
      'SFTP logged in as root), so every local user gets exactly the access mode/uid/gid give; off otherwise, ' +
      'where the backend account decides (as with sshfs).'
  },
  {
    key: 'autoUnmount', kind: 'boolean', default: false, scope: 'kernel',
    help: 'Unmount automatically if the fsx process dies (FUSE auto_unmount, through fusermount).'
  }
]

/** FSX_ + upper snake case of the key: attrTtl → FSX_ATTR_TTL. */
export function envName (key: string): string {
  return 'FSX_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

/** Kebab case of the key: attrTtl → attr-ttl. */
export function flagName (key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()
}

/** Turns a raw value (string from env/flag, or JSON value from a preset/config) into base units. */
export function parseOptionValue (spec: OptionSpec, raw: unknown, where: string): number | boolean | string {
  const what = `${where} ${spec.key}`
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    throw new FsxError('ECONFIG', `${what}: expected a ${spec.kind}, got ${JSON.stringify(raw)}`)
  }
  switch (spec.kind) {
    case 'duration':
      if (typeof raw === 'boolean') break
      return parseDuration(raw, what)
    case 'size':
      if (typeof raw === 'boolean') break
      return parseSize(raw, what)
    case 'count':
      if (typeof raw === 'boolean') break
      return parseCount(raw, what)
    case 'boolean':
      if (typeof raw === 'number') break
      return parseBoolean(raw, what)
    case 'enum': {
      const v = String(raw)
      if (!spec.choices?.includes(v)) {
        throw new FsxError('ECONFIG', `${what}: "${v}" is not one of ${spec.choices?.join(', ')}`)
      }
      return v
    }
    case 'string':
      return String(raw)
  }
  throw new FsxError('ECONFIG', `${what}: expected a ${spec.kind}, got ${JSON.stringify(raw)}`)
}

/** Human form of a value in base units: sizes as 128K, durations as 5s, secrets hidden. */
export function formatOptionValue (spec: OptionSpec, value: unknown): string {
  if (value === undefined) return '(unset)'
  if (spec.secret) return '(set)'
  if (spec.kind === 'size' && typeof value === 'number') return formatSize(value)
  if (spec.kind === 'duration' && typeof value === 'number') return formatDuration(value)
  return String(value)
}

/** JSON-schema type fragment for one option, used for presets/schema.json. */
export function schemaFor (spec: OptionSpec): Record<string, unknown> {
  const description = spec.help
  switch (spec.kind) {
    case 'duration': return { description, anyOf: [{ type: 'number', minimum: 0 }, { type: 'string', pattern: '^\\s*(\\d+(\\.\\d+)?|\\.\\d+)\\s*(ms|s|sec|m|min|h)?\\s*$' }] }
    case 'size': return { description, anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\s*(\\d+(\\.\\d+)?|\\.\\d+)\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?\\s*$' }] }
    case 'count': return { description, type: 'integer', minimum: 0 }
    case 'boolean': return { description, type: 'boolean' }
    case 'enum': return { description, enum: spec.choices }
    case 'string': return { description, type: 'string' }
  }
}
