/**
 * The S3 plugin's settings (rows of the same options table the core uses) and source parsing.
 *
 * Spelling rule as in the core: key `s3Endpoint` ⇔ flag `--s3-endpoint` ⇔ env `FSX_S3_ENDPOINT`. The core resolves
 * them (default < preset < config file < env < flag) and hands the values, in base units (ms, bytes), to
 * `create()`; `s3Settings()` applies the plugin's own defaults and checks ranges so a backend built directly (tests,
 * library use) gets the same values.
 *
 * Nothing here touches the network or the SDK: `validate()` runs it before any connection is made.
 * Credentials are never a setting: they come from the SDK's default chain (env, shared profile, SSO, instance role).
 */
import type { OptionSpec } from '@fsx/sdk'
import type { SourceUrl } from '@fsx/sdk'

type MakeError = (code: string, message: string) => Error

/** An EINVAL-style error without the kit (`validate` is not handed one); same shape as the core's. */
export const plainError: MakeError = (code, message) => Object.assign(new Error(message), { code })

const MiB = 1024 * 1024

/** S3's smallest multipart part (except the last one). */
export const MIN_PART_SIZE = 5 * MiB
/** S3's largest part, and the largest object CopyObject accepts (larger ones would need a multipart copy). */
export const MAX_PART_SIZE = 5 * 1024 * MiB
/** Upper bound for s3Concurrency: beyond this, one transfer starves every other request of sockets. */
export const MAX_CONCURRENCY = 64
/** Shortest request deadline accepted: under 100 ms not even a local server answers reliably. */
export const MIN_TIMEOUT_MS = 100
/** Longest request deadline accepted: past 10 minutes (×3 attempts) a stuck request only looks like a hang. */
export const MAX_TIMEOUT_MS = 600_000
/** Longest listing cache time, as the core's TTLs: a day. */
export const MAX_LIST_CACHE_TTL_MS = 24 * 3_600_000
/** Longest s3DeleteDelay: a minute (past it a crash could leave many unlinked objects behind). */
export const MAX_DELETE_DELAY_MS = 60_000

export const S3_OPTIONS: OptionSpec[] = [
  {
    key: 's3Endpoint', kind: 'string', default: undefined, scope: 's3',
    help: 'Endpoint URL of an S3-compatible server, e.g. http://127.0.0.1:9000 (default: AWS, or AWS_ENDPOINT_URL_S3).',
    details: 'Without it the SDK\'s own AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL are honoured, else AWS S3 itself.'
  },
  {
    key: 's3Region', kind: 'string', default: undefined, scope: 's3',
    help: 'Region of the bucket (default: the SDK\'s: AWS_REGION, the shared config profile, else us-east-1).',
    details: 'A wrong region on AWS is corrected by following the region redirect S3 answers with.'
  },
  {
    key: 's3PathStyle', kind: 'boolean', default: undefined, scope: 's3',
    help: 'Path-style addressing (endpoint/bucket/key) instead of virtual-hosted (bucket.endpoint/key); default on with a custom endpoint, off for AWS.'
  },
  {
    key: 's3Timeout', kind: 'duration', default: 30_000, scope: 's3', min: MIN_TIMEOUT_MS, max: MAX_TIMEOUT_MS,
    help: 'Deadline of one S3 request attempt (to connect, to the first byte of the answer, and for any stall); an attempt that gets no answer in time is not retried.',
    details: 'An S3 that does not answer in time (or refuses connections) counts as failing: fsx then answers from its ' +
      'caches, fails what is not cached with EIO at once, and a background probe finds out when S3 answers again. ' +
      'Throttling (503 SlowDown), 5xx answers and reset connections are retried with backoff (3 attempts), then EIO. ' +
      'Keep it well under opTimeout.'
  },
  {
    key: 's3PartSize', kind: 'size', default: 8 * MiB, scope: 's3', min: MIN_PART_SIZE, max: MAX_PART_SIZE,
    help: 'Multipart upload part size: larger objects are uploaded in parallel parts of this size (S3\'s limits).',
    details: 'Raised automatically for objects above 10,000 parts. Memory per upload is about s3PartSize × s3Concurrency.'
  },
  {
    key: 's3Concurrency', kind: 'count', default: 4, scope: 's3', min: 1, max: MAX_CONCURRENCY,
    help: 'Requests in flight for one large transfer: parts of one upload, ranges of one large read, keys of a directory rename.'
  },
  {
    key: 's3ListCacheTtl', kind: 'duration', default: undefined, scope: 's3', min: 0, max: MAX_LIST_CACHE_TTL_MS,
    help: 'How long a directory listing and an object\'s attributes are trusted before S3 is asked again (default: attrTtl; 0: always ask).',
    details: 'Unset, it follows the attrTtl in effect (the preset\'s), so S3 answers are trusted as long as the kernel ' +
      'trusts attributes. Lookups of names a fresh listing does not hold are answered "no such file" without a request; ' +
      'changes made through this mount update the cache at once, changes made by other clients show up at most this late ' +
      '(plus the kernel\'s attrTtl/entryTtl).'
  },
  {
    key: 's3DeleteDelay', kind: 'duration', default: 1000, scope: 's3', min: 0, max: MAX_DELETE_DELAY_MS,
    help: 'With writeback: how long the delete of an unlinked file may wait to be sent in one DeleteObjects request with the next unlinks (0: every unlink waits for S3).',
    details: 'The kernel sends `rm -rf`\'s unlinks one at a time, so they share a request only if an unlink returns ' +
      'before S3 has deleted its object. With writeback on (and coherence off), an unlink returns once the object is ' +
      'gone for this mount, and its key is sent with the others in a DeleteObjects request of up to 1,000 keys when ' +
      'the batch is full, this long after the batch\'s first key, at an rmdir or directory rename, and at unmount. ' +
      'Until then other clients still see the object, and a crash (kill -9) in that time leaves it in the bucket; a ' +
      'key S3 refuses to delete is logged and shows again. Without writeback (or with coherence) every unlink waits ' +
      'for its delete.'
  },
  {
    key: 's3Metadata', kind: 'enum', default: 'full', choices: ['listing', 'full'], scope: 's3',
    help: 'Where attributes come from: listing (ListObjectsV2 alone: size, LastModified, kind) or full (x-amz-meta-* of each object, one HEAD per object not cached).',
    details: 'listing: `ls -l`, `find` and lookups answered by a listing cost no request per object (as rclone ' +
      '--use-server-modtime and mountpoint-s3): files show mode 0644, directories 0755, the mounting user, and ' +
      'LastModified as their times; an object\'s recorded mode, owner, mtime and symlink-ness (x-amz-meta-*, written by ' +
      'fsx, s3fs or rclone) show only where a HEAD was made anyway (a lookup no listing answered, a chmod, chown, ' +
      'touch or xattr call, fsx\'s own writes) and are always kept when an object is rewritten. Symlinks listed in ' +
      'this mode show as small files. full: every object\'s x-amz-meta-* is read (one HEAD per object a listing ' +
      'shows that is not cached): right for buckets shared with s3fs or rclone metadata, slower for many small objects.'
  }
]

/** The plugin's settings in base units, defaults applied. */
export interface S3Settings {
  /** Custom endpoint URL, or undefined for AWS. */
  endpoint?: string
  region?: string
  pathStyle: boolean
  /** Deadline of one request attempt, ms. */
  timeoutMs: number
  partSizeBytes: number
  concurrency: number
  listCacheTtlMs: number
  /** Where attributes come from (s3Metadata). */
  metadata: 'listing' | 'full'
  /** A fresh listing that lacks a name answers ENOENT for it without a request (off without a negative cache). */
  listedAbsence?: boolean
  /** Unlinks return before S3 deleted the object, which is sent in a batch within this many ms (0: they wait). */
  deleteDelayMs: number
}

/** Reads the plugin's keys out of the resolved settings (and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL from `env`). */
export function s3Settings (options: Record<string, unknown>, env: Record<string, string | undefined> = process.env, makeError: MakeError = plainError): S3Settings {
  const num = (key: string, dflt: number): number => {
    const v = options[key]
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw makeError('EINVAL', `s3 setting ${key}: expected a non-negative number`)
    return v
  }
  const str = (key: string): string | undefined => {
    const v = options[key]
    if (v === undefined || v === null || v === '') return undefined
    if (typeof v !== 'string') throw makeError('EINVAL', `s3 setting ${key}: expected a string`)
    return v
  }
  const endpoint = str('s3Endpoint') ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL)
  if (endpoint !== undefined) checkEndpoint(endpoint, makeError)
  const pathStyle = options.s3PathStyle
  if (pathStyle !== undefined && typeof pathStyle !== 'boolean') throw makeError('EINVAL', 's3 setting s3PathStyle: expected a boolean')
  const timeoutMs = num('s3Timeout', 30_000)
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) throw makeError('EINVAL', 's3Timeout must be between 100ms and 10m')
  const partSizeBytes = num('s3PartSize', 8 * MiB)
  if (partSizeBytes < MIN_PART_SIZE || partSizeBytes > MAX_PART_SIZE) throw makeError('EINVAL', 's3PartSize must be between 5M and 5G (S3\'s part size limits)')
  const metadata = options.s3Metadata ?? 'full'
  if (metadata !== 'listing' && metadata !== 'full') throw makeError('EINVAL', 's3Metadata must be listing or full')
  const concurrency = num('s3Concurrency', 4)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) throw makeError('EINVAL', `s3Concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`)
  const deleteDelayMs = num('s3DeleteDelay', 1000)
  if (deleteDelayMs > MAX_DELETE_DELAY_MS) throw makeError('EINVAL', 's3DeleteDelay must be at most 1m')
  return {
    endpoint,
    region: str('s3Region'),
    pathStyle: pathStyle ?? endpoint !== undefined,
    timeoutMs,
    partSizeBytes: Math.floor(partSizeBytes),
    concurrency,
    listCacheTtlMs: num('s3ListCacheTtl', num('attrTtl', 1000)),
    metadata,
    // A mount without a negative cache (safe) promises that a name another client creates is seen at once: a
    // listing then answers only what it holds, never that a name is absent.
    listedAbsence: options.negativeCacheTtl === undefined || num('negativeCacheTtl', 0) > 0,
    // Deferred deletes are a write-back: only with writeback, and not under coherence (peers are told of an unlink
    // when it returns, and would list the object again before it is gone).
    deleteDelayMs: options.writeback === true && (options.coherence === undefined || options.coherence === null || options.coherence === '') ? deleteDelayMs : 0
  }
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim()
}

/** An http(s) URL without credentials in it (those belong in the SDK's chain, and would end up in logs). */
function checkEndpoint (endpoint: string, makeError: MakeError): void {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw makeError('EINVAL', 's3 endpoint is not a URL (e.g. http://127.0.0.1:9000)')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw makeError('EINVAL', `s3 endpoint must be an http:// or https:// URL, not ${url.protocol}`)
  if (url.username !== '' || url.password !== '') {
    throw makeError('EINVAL', 's3 endpoint must not carry credentials: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile')
  }
}

/** Bucket and key prefix a source names. */
export interface S3Target {
  bucket: string
  /** '' for the whole bucket, else the key prefix with one trailing slash ("photos/2024/"). */
  prefix: string
}

/** Legacy (us-east-1) bucket names allow upper case and underscores; everything else is refused. */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/

/**
 * Parses `s3://bucket[/prefix]`. The prefix is taken as typed (not percent-decoded: "%20" is three characters of a
 * key, and "?" or "#" are part of it); empty, "." and ".." segments are refused, leading and trailing slashes
 * dropped. Pure.
 */
export function parseS3Source (source: SourceUrl, makeError: MakeError = plainError): S3Target {
  const m = /^s3:\/\/([^/]*)(\/[\s\S]*)?$/i.exec(source.raw)
  if (!m) throw makeError('EINVAL', 's3 source: write it as s3://bucket or s3://bucket/prefix')
  const bucket = m[1]
  if (bucket.includes('@') || bucket.includes(':')) {
    throw makeError('EINVAL', 's3 source: no credentials or port in the URL (use AWS_* variables and --s3-endpoint)')
  }
  if (/[?#]/.test(bucket)) throw makeError('EINVAL', 's3 source: no query or fragment allowed (settings are --s3-* flags)')
  if (!BUCKET.test(bucket)) throw makeError('EINVAL', 's3 source: not a valid bucket name (letters, digits, ".", "-", "_")')
  const rest = (m[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, '')
  if (rest === '') return { bucket, prefix: '' }
  for (const seg of rest.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw makeError('EINVAL', 's3 source: the prefix must not hold empty, "." or ".." segments')
  }
  if (rest.includes('\0')) throw makeError('EINVAL', 's3 source: the prefix holds a NUL byte')
  return { bucket, prefix: rest + '/' }
}

/** The secret-free description: "s3://bucket" or "s3://bucket/prefix". */
export function describeTarget (t: S3Target): string {
  return `s3://${t.bucket}${t.prefix === '' ? '' : '/' + t.prefix.slice(0, -1)}`
}
