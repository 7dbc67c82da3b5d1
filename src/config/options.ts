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
 *
 * Ranges: every number-valued row names its accepted range (`min`/`max`, base units; `zeroMeansOff` also accepts 0).
 * `parseOptionValue` is the one place a value is turned into base units, and it checks the range there, for every
 * source alike (preset, config file, environment, flag), with one line naming the setting, the source and the range.
 * Ranges are typo guards and the kernel's or a backend's hard limits; the reason for each non-obvious one is written
 * beside it.
 */
import { FsxError } from '../errors.js'
import { parseBoolean, parseCount, parseDuration, parseSize, formatDuration, formatSize } from './units.js'
import type { OptionSpec } from '@fsx/sdk'

/** The row shape is plugin API: it lives in @fsx/sdk (sdk/src/options.ts), since plugins add rows of their own. */
export type { OptionKind, OptionSpec } from '@fsx/sdk'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB
const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/**
 * Upper bound of every cache TTL, kernel or user space. The kernel takes any number, but past a day a cache entry is
 * kept only as long as memory pressure allows anyway, and a larger value is far more often a unit slip (milliseconds
 * typed where seconds are read: `FSX_ATTR_TTL=5000` is 83 minutes) than a wish.
 */
const MAX_TTL = DAY
/**
 * Upper bound of the entry counts of the user-space metadata caches: about 200 bytes of bookkeeping per entry, so
 * 10 million entries already take some 2 GiB before memoryBudget steps in.
 */
const MAX_ENTRIES = 10_000_000
/**
 * The kernel's largest FUSE request: fs.fuse.max_pages_limit defaults to 256 pages, 1 MiB (libfuse 2 asks for
 * 128K at most, whatever is set); one page is the smallest request that makes sense.
 */
const MIN_REQUEST = 4 * KiB
const MAX_REQUEST = 1 * MiB

/** Kernel and core settings. Defaults are conservative; presets/balanced.json is what users get by default. */
export const CORE_OPTIONS: readonly OptionSpec[] = [
  {
    key: 'attrTtl', kind: 'duration', default: 1000, scope: 'kernel',
    min: 0, max: MAX_TTL,
    help: 'How long the kernel caches file attributes (FUSE attr_timeout).',
    details: 'Longer means fewer getattr calls reach fsx; changes made outside this mount show up at most this late.'
  },
  {
    key: 'entryTtl', kind: 'duration', default: 1000, scope: 'kernel',
    min: 0, max: MAX_TTL,
    help: 'How long the kernel caches name lookups (FUSE entry_timeout).',
    details: 'Longer means fewer lookups; a file created or removed outside this mount is noticed at most this late.'
  },
  {
    key: 'negativeTtl', kind: 'duration', default: 0, scope: 'kernel',
    min: 0, max: MAX_TTL,
    help: 'How long the kernel remembers that a name does not exist (FUSE negative_timeout).',
    details: 'Helps builds and interpreters that probe many missing paths. 0 disables it.'
  },
  {
    key: 'readahead', kind: 'size', default: 128 * 1024, scope: 'kernel',
    min: 0, max: 16 * MiB, // the kernel clamps readahead to the device's read_ahead_kb; 16M is past any useful window
    help: 'Kernel readahead window for sequential reads (FUSE max_readahead).'
  },
  {
    key: 'maxRead', kind: 'size', default: 128 * 1024, scope: 'kernel',
    min: MIN_REQUEST, max: MAX_REQUEST,
    help: 'Largest single read request the kernel sends (FUSE max_read).',
    details: 'With libfuse 2 the kernel caps requests at 128K whatever is asked.'
  },
  {
    key: 'maxWrite', kind: 'size', default: 128 * 1024, scope: 'kernel',
    min: MIN_REQUEST, max: MAX_REQUEST,
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
      'Write-back (true): on a remote backend (S3, SFTP) close() returns once the file\'s new content is in an on-disk ' +
      'journal under cacheDir/journal, uploaded whole in the background and replayed at the next mount after a crash; ' +
      'on a local directory, once the data is handed to the host. fsync() still waits for durability.'
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
    min: 0, max: MAX_ENTRIES,
    help: 'Paths whose extended attributes are cached in user space (0, or consistency=strong, disables the cache).'
  },
  {
    key: 'xattrCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    min: 0, max: MAX_TTL,
    help: 'How long a cached extended attribute (or its absence) is trusted.'
  },
  {
    key: 'attrCacheSize', kind: 'count', default: 10_000, scope: 'vfs',
    min: 0, max: MAX_ENTRIES,
    help: 'Paths whose attributes fsx caches in user space, under the kernel\'s own cache (0 disables it).',
    details: 'Saves a backend round trip when the kernel asks again: `ls -l` after a listing, a lookup after attrTtl. ' +
      'Off with consistency=strong. Every change made through this mount updates it at once.'
  },
  {
    key: 'attrCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    min: 0, max: MAX_TTL,
    help: 'How long a cached attribute is trusted in user space.',
    details: 'A change made outside this mount shows up at most attrTtl + attrCacheTtl late. ' +
      'With consistency=session a file\'s attributes are revalidated at every open anyway (close-to-open).'
  },
  {
    key: 'dirCacheSize', kind: 'count', default: 1000, scope: 'vfs',
    min: 0, max: MAX_ENTRIES,
    help: 'Directories whose listings fsx caches in user space (0 disables it).',
    details: 'A listing also fills the attribute cache with the attributes it carries. Off with consistency=strong.'
  },
  {
    key: 'dirCacheTtl', kind: 'duration', default: 1000, scope: 'vfs',
    min: 0, max: MAX_TTL,
    help: 'How long a cached directory listing is trusted; names added or removed outside this mount show up at most this late in listings.'
  },
  {
    key: 'negativeCacheSize', kind: 'count', default: 10_000, scope: 'vfs',
    min: 0, max: MAX_ENTRIES,
    help: 'Paths whose "no such file" answer fsx caches in user space (0 disables it).'
  },
  {
    key: 'negativeCacheTtl', kind: 'duration', default: 0, scope: 'vfs',
    min: 0, max: MAX_TTL,
    help: 'How long a cached "no such file" answer is trusted in user space (0 disables it).',
    details: 'A file created outside this mount under a name looked up in vain shows up at most negativeTtl + ' +
      'negativeCacheTtl late. Files created through this mount are seen at once.'
  },
  {
    key: 'validateInterval', kind: 'duration', default: 0, scope: 'vfs',
    min: SECOND, max: HOUR, zeroMeansOff: true, // under 1s each round's 256 stats become a steady load on the backend
    help: 'Background validator: how often fsx re-checks recently used files whose cached attributes are about to expire (0: off).',
    details: 'Each round asks the backend for the attributes of up to 256 recently used files that expire within the interval: ' +
      'unchanged ones stay cached (a later open or lookup need not wait for the backend), changed or removed ones are ' +
      'dropped from the attribute and data caches at once instead of at their TTL. Costs one stat (S3: one HEAD) per file ' +
      'checked. The kernel\'s own caches still follow attrTtl/entryTtl. Off with consistency=strong.'
  },
  {
    key: 'staleIfError', kind: 'duration', default: 3_600_000, scope: 'vfs',
    min: 0, max: 7 * DAY, // a week rides out a weekend outage; older answers are no longer "stale" but wrong
    help: 'While the backend fails (timeouts, connection errors, EIO), cached attributes, listings and data keep answering for this long past their TTL (0: fail at once).',
    details: 'Stale answers come only from what the backend said before it failed; they never override an answer it ' +
      'gives (ENOENT, EACCES), nor anything changed through this mount (writes not uploaded yet are served from the ' +
      'write-back journal as always). Each is counted in fsx stats (stale.serves). Off with consistency=strong.'
  },
  {
    key: 'dataCacheSize', kind: 'size', default: 1024 ** 3, scope: 'vfs',
    min: MiB, max: 64 * TiB, zeroMeansOff: true, // data is cached in 1 MiB blocks: a smaller cap holds none
    help: 'Hard cap of the on-disk data cache under cacheDir/data, per mounted source (0 disables it).',
    details: 'For remote backends (S3, SFTP: on SFTP, files opened read-only); local files use the kernel page cache. ' +
      'File content is cached in 1 MiB blocks, so a sparse read of a big file fetches only what it touches. The cap ' +
      'is never exceeded, not even while files are open. The cache survives a restart; a block is reused only while ' +
      'the object\'s size and mtime (or ETag) are unchanged, checked at every open (consistency=session or strong).'
  },
  {
    key: 'dataCacheMemory', kind: 'size', default: 64 * 1024 ** 2, scope: 'vfs',
    min: MiB, max: TiB, zeroMeansOff: true, // 1 MiB blocks, as on disk
    help: 'Hard cap of the in-memory data cache, which holds small files (0 disables it).'
  },
  {
    key: 'dataCacheSmallFile', kind: 'size', default: 1024 ** 2, scope: 'vfs',
    min: 0, max: GiB,
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
    min: SECOND, max: 30 * DAY,
    help: 'With dataCachePolicy=ttl: how long a cached block lives.'
  },
  {
    key: 'prefetchMax', kind: 'size', default: 8 * 1024 ** 2, scope: 'vfs',
    min: MiB, max: GiB, zeroMeansOff: true, // prefetch works in 1 MiB blocks; over 1G one reader would crowd out the cache
    help: 'Largest window fsx prefetches ahead of a sequential reader into the data cache (0 disables it).',
    details: 'User-space readahead into the data cache (S3, SFTP), on top of the kernel\'s ' +
      'short readahead: after three sequential reads of one open file, the next blocks are fetched as parallel ranged ' +
      'reads; the window starts at 2 MiB and doubles while the reads stay sequential; a random read stops it.'
  },
  {
    key: 'memoryBudget', kind: 'size', default: 512 * 1024 ** 2, scope: 'vfs',
    min: 16 * MiB, max: TiB, zeroMeansOff: true, // under 16M the metadata caches alone would evict every data block at once
    help: 'One memory budget for fsx\'s user-space caches and readahead buffers together (0: only each cache\'s own cap).',
    details: 'Covers the attribute, listing, negative and xattr caches (estimated), the in-memory data cache and blocks ' +
      'being fetched. Near the budget the in-memory data cache gives up blocks and readahead pauses; a read an ' +
      'application is waiting for is never refused, so blocks in flight for such reads (one per request) can ' +
      'briefly go over it.'
  },
  {
    key: 'writebackDirtyMax', kind: 'size', default: 1024 ** 3, scope: 'vfs',
    min: 0, max: 64 * TiB, // 0: every close waits for its upload, as write-through
    help: 'With writeback on a remote backend (S3, SFTP): most bytes journaled on local disk but not yet uploaded.',
    details: 'close() returns once the file is in the journal under cacheDir/journal; uploads run in the background and ' +
      'are replayed at the next mount after a crash. Above this many pending bytes, close() waits for uploads.'
  },
  {
    key: 'writebackDelay', kind: 'duration', default: 0, scope: 'vfs',
    min: 0, max: DAY,
    help: 'With writeback on a remote backend: how long a closed file waits in the journal before its upload starts (0: at once).',
    details: 'Like rclone\'s --vfs-write-back: a file rewritten again and again (editors, builds, logs rotated in place) is ' +
      'uploaded once, with its last content, instead of at every close. Waiting entries count against writebackDirtyMax, ' +
      'are replayed after a crash like the others, and go at once when fsync(), `fsx flush` or an unmount asks for them.'
  },
  {
    key: 'coherence', kind: 'string', default: undefined, scope: 'vfs',
    help: 'Redis server through which the mounts of one source tell each other what they change: redis://host[:port][/db] (off by default).',
    details: 'Every mount of the same source (same backend URL and root) with this setting publishes what it changes ' +
      '(created, written, truncated, renamed, removed, attributes changed) on a Redis channel for that source, and drops ' +
      'what it cached of what the others change, in user space and in the kernel (kernel engine), so long TTLs stay ' +
      'safe with several writers. Without Redis a mount falls back to its TTLs, says so in fsx stats, and drops ' +
      'everything it cached for the source when Redis is back. rediss:// for TLS; a password goes in coherencePassword. ' +
      'See docs/SEMANTICS.md, Consistency across mounts.'
  },
  {
    key: 'coherencePassword', kind: 'string', default: undefined, scope: 'vfs', secret: true,
    help: 'Password (AUTH) for the coherence Redis server (secret).'
  },
  {
    key: 'opTimeout', kind: 'duration', default: 120_000, scope: 'fuse',
    // 0 would fail every request at once; past an hour a waiting application looks hung, and fuse-native's timer
    // (setTimeout) wraps around past 2^31 ms (24.8 days) into an immediate timeout.
    min: SECOND, max: HOUR,
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

/**
 * Where a value came from, as the first words of an error about it: "environment FSX_ATTR_TTL", "flag --attr-ttl",
 * "config file /x/config.json: attrTtl", "preset safe: attrTtl". Env and flag names already name the setting.
 */
export function originLabel (spec: OptionSpec, origin: 'default' | 'preset' | 'config' | 'env' | 'flag', where = ''): string {
  switch (origin) {
    case 'env': return `environment ${envName(spec.key)}`
    case 'flag': return `flag --${flagName(spec.key)}`
    case 'config': return `config file ${where}: ${spec.key}`
    case 'preset': return `preset ${where}: ${spec.key}`
    case 'default': return `default of ${spec.key}`
  }
}

/**
 * Turns a raw value (string from env/flag, or JSON value from a preset/config) into base units and checks it
 * against the row's range. `label` says where it came from (`originLabel`); every error is ECONFIG, one line.
 */
export function parseOptionValue (spec: OptionSpec, raw: unknown, label: string): number | boolean | string {
  const value = parseRaw(spec, raw, label)
  if (typeof value === 'number' && !inRange(spec, value)) {
    const shown = typeof raw === 'string' ? raw.trim() : String(raw)
    throw new FsxError('ECONFIG', `${label}: ${shown} is out of range: ${spec.key} takes ${rangeText(spec)}`, {
      hint: `see: fsx tune --explain ${spec.key}`
    })
  }
  return value
}

function parseRaw (spec: OptionSpec, raw: unknown, what: string): number | boolean | string {
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    throw new FsxError('ECONFIG', `${what}: expected ${kindPhrase(spec)}, got ${JSON.stringify(raw)}`)
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
  throw new FsxError('ECONFIG', `${what}: expected ${kindPhrase(spec)}, got ${JSON.stringify(raw)}`)
}

/** What a value of this row looks like, for messages: "a duration (seconds, or 500ms, 5s, 2m, 1h)". */
export function kindPhrase (spec: OptionSpec): string {
  switch (spec.kind) {
    case 'duration': return 'a duration (seconds, or 500ms, 5s, 2m, 1h)'
    case 'size': return 'a size (bytes, or 128K, 1M, 1.5G)'
    case 'count': return 'a whole number'
    case 'boolean': return 'true or false'
    case 'enum': return `one of ${spec.choices?.join(', ')}`
    case 'string': return 'a string'
  }
}

/** True when `value` (base units) is within the row's range; rows without one accept anything. */
export function inRange (spec: OptionSpec, value: number): boolean {
  if (value === 0 && spec.zeroMeansOff === true) return true
  if (spec.min !== undefined && value < spec.min) return false
  if (spec.max !== undefined && value > spec.max) return false
  return true
}

/** The range in the units users write: "4K to 1M", "0 (off) or 1s to 1h", "1 to 16"; undefined without one. */
export function rangeText (spec: OptionSpec): string | undefined {
  if (spec.min === undefined && spec.max === undefined) return undefined
  const f = (v: number): string => formatOptionValue({ ...spec, secret: false }, v)
  const span = spec.max === undefined
    ? `at least ${f(spec.min!)}`
    : spec.min === undefined ? `at most ${f(spec.max)}` : `${f(spec.min)} to ${f(spec.max)}`
  return spec.zeroMeansOff === true && (spec.min ?? 0) > 0 ? `0 (off) or ${span}` : span
}

/** Human form of a value in base units: sizes as 128K, durations as 5s, secrets hidden. */
export function formatOptionValue (spec: OptionSpec, value: unknown): string {
  if (value === undefined) return '(unset)'
  if (spec.secret) return '(set)'
  if (spec.kind === 'size' && typeof value === 'number') return formatSize(value)
  if (spec.kind === 'duration' && typeof value === 'number') return formatDuration(value)
  return String(value)
}
