/**
 * @fsx/backend-s3: S3 and S3-compatible object stores, `s3://bucket[/prefix]`. Registered with the core through the
 * `fsx:backends` hook (./hooks/backends.ts); this module is the definition object and `connect`, which builds the
 * SDK client. The SDK is imported only inside `connect` (dynamic import), so `fsx --help` never loads it.
 *
 * Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the
 * shared files, SSO, web identity, instance/container roles) and are never printed: not in errors, not in the
 * description, not in `fsx tune` (they are no setting at all).
 */
import type { BackendDefinition, BackendKit } from '../../../src/backend/types.js'
import { errnoCodeOf, NO_ANSWER, reasonOf } from './errors.js'
import { MAX_ATTEMPTS, S3Backend, type S3BackendOptions } from './s3-backend.js'
import { describeTarget, parseS3Source, S3_OPTIONS, s3Settings, type S3Settings, type S3Target } from './settings.js'

export { S3Backend, MAX_ATTEMPTS, SPLIT_READ_BYTES, MAX_COPY_BYTES, type S3Deps, type S3BackendOptions } from './s3-backend.js'
export { S3_OPTIONS, s3Settings, parseS3Source, describeTarget, type S3Settings, type S3Target } from './settings.js'
export { MetaCache, type NodeInfo } from './cache.js'
export { KeyMap, copySource } from './keys.js'
export * as metadata from './metadata.js'
export { errnoCodeOf, isLinkError, reasonOf, translate, NO_ANSWER } from './errors.js'

/** Largest number of sockets one backend keeps to the endpoint: room for several large transfers at once. */
function maxSockets (s: S3Settings): number {
  return Math.max(16, s.concurrency * 8)
}

/**
 * Builds the SDK client for `settings`, checks that the bucket answers (a 1-key listing of the prefix, which is
 * what mounting needs anyway), and returns the backend. Errors: ENOENT (no such bucket), EACCES (credentials,
 * permissions), EIO/ETIMEDOUT (endpoint unreachable), each one readable line.
 */
export async function connect (target: S3Target, settings: S3Settings, kit: BackendKit, opts: S3BackendOptions = {}): Promise<S3Backend> {
  // The SDK warns on every start under Node < 22 about its releases after January 2027; fsx pins its SDK version.
  // NB: only when the user has not decided otherwise (this is the SDK's own documented switch).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const sdk = await import('@aws-sdk/client-s3')
  const http = await import('node:http')
  const https = await import('node:https')
  const make = (region: string | undefined): InstanceType<typeof sdk.S3Client> => new sdk.S3Client({
    region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.pathStyle,
    followRegionRedirects: true,
    maxAttempts: MAX_ATTEMPTS,
    retryMode: 'standard',
    // Several S3-compatible servers reject the SDK's default flexible checksums (CRC32 trailers).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      // One attempt: s3Timeout to connect (10 s at most), s3Timeout until the answer's headers, and a body that
      // stalls for s3Timeout fails too (socketTimeout: no data either way).
      connectionTimeout: Math.min(settings.timeoutMs, 10_000),
      requestTimeout: settings.timeoutMs,
      socketTimeout: settings.timeoutMs,
      throwOnRequestTimeout: true,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: maxSockets(settings) }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: maxSockets(settings) })
    }
  })
  let client = make(settings.region)
  if (settings.region === undefined) {
    // The SDK's chain (AWS_REGION, the profile) found nothing: S3-compatible servers rarely care, AWS redirects.
    try {
      await client.config.region()
    } catch {
      client.destroy()
      client = make('us-east-1')
    }
  }
  noRetryOnTimeout(client)
  const loadUpload = async (): Promise<typeof import('@aws-sdk/lib-storage').Upload> => (await import('@aws-sdk/lib-storage')).Upload
  const backend = new S3Backend(target, settings, { sdk, client, loadUpload }, kit, opts)
  try {
    await client.send(new sdk.ListObjectsV2Command({ Bucket: target.bucket, Prefix: target.prefix, MaxKeys: 1 }),
      { abortSignal: AbortSignal.timeout(settings.timeoutMs * MAX_ATTEMPTS + 5000) })
  } catch (err) {
    await backend.close()
    const code = errnoCodeOf(err)
    const where = settings.endpoint === undefined ? 'AWS S3' : redactEndpoint(settings.endpoint)
    const what = code === 'ENOENT'
      ? `bucket "${target.bucket}" does not exist (${where})`
      : code === 'EACCES'
        ? `access to ${describeTarget(target)} denied: ${reasonOf(err)}`
        : `cannot reach ${where}: ${reasonOf(err)}`
    throw kit.fsxError(code, `s3 source ${describeTarget(target)}: ${what}`, { op: 'create', cause: err })
  }
  return backend
}

/**
 * Makes an attempt that got no answer within s3Timeout final: the SDK's standard retry strategy would send it again
 * (twice), tripling the wait of a filesystem call for a server that froze, and a server that did not answer one
 * attempt rarely answers the next. Throttling, 5xx answers and refused or reset connections are still retried (they
 * come back fast). Sits just inside the retry middleware, where it sees each attempt's error.
 */
function noRetryOnTimeout (client: { middlewareStack: { addRelativeTo: (mw: any, opts: any) => void } }): void {
  client.middlewareStack.addRelativeTo((next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
    try {
      return await next(args)
    } catch (err) {
      if ((err as { name?: string } | null)?.name !== 'TimeoutError') throw err
      // NB: no `cause`: the SDK looks for a retryable error there too.
      throw Object.assign(new Error((err as Error).message), { name: NO_ANSWER, $metadata: (err as { $metadata?: unknown }).$metadata })
    }
  }, { relation: 'after', toMiddleware: 'retryMiddleware', name: 'fsxNoRetryOnTimeout', override: true })
}

/** An endpoint for messages: scheme, host and port only. */
function redactEndpoint (endpoint: string): string {
  try {
    const u = new URL(endpoint)
    return `${u.protocol}//${u.host}`
  } catch {
    return 'the S3 endpoint'
  }
}

/** The definition registered with the core. */
export const s3Backend: BackendDefinition = {
  name: 's3',
  schemes: ['s3'],
  summary: 'An S3 bucket or prefix, on AWS or any S3-compatible server (s3://bucket[/prefix]).',
  options: S3_OPTIONS,
  validate (source, options) {
    parseS3Source(source)
    s3Settings(options)
  },
  async create (source, options, kit) {
    const mk = (code: string, message: string): Error => kit.fsxError(code, message, { op: 'create' })
    const target = parseS3Source(source, mk)
    const settings = s3Settings(options, process.env, mk)
    return await connect(target, settings, kit)
  }
}

export default s3Backend
