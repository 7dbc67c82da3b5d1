/**
 * A real S3-compatible server for tests: s3rver (npm, patched by patches/s3rver+3.7.1.patch) in a child process on
 * 127.0.0.1, on a free port, with a fresh data directory. A child, not in-process, so a test can kill it mid-upload
 * (`crash`), freeze it (`pause`: requests then hang until their deadline), and start it again on the same port and
 * data (`start`). Stopped and its data removed in teardown, whatever the test did.
 *
 *   const s3 = await startS3Server(t)            // undefined (test skipped) when s3rver is missing, unless CI=true
 *   s3.env                                       // FSX_S3_ENDPOINT, AWS_ACCESS_KEY_ID=S3RVER, … for fsx children
 *   await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k', Body: 'x' }))
 *
 * Credentials are s3rver's fixed pair (S3RVER/S3RVER); nothing here reads the environment's AWS_* values.
 * The start wait (15 s) is scaled by FSX_TEST_TIME_FACTOR (test/helpers/timing.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3'
import { ROOT } from './mount.js'
import { scaled } from './timing.js'

interface TapLike {
  teardown (fn: () => unknown): void
  fail (msg: string): unknown
  plan? (n: number, comment?: string): unknown
}

// The SDK's warning about its releases after January 2027 on Node < 22 is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

export const S3_ACCESS_KEY = 'S3RVER'
export const S3_SECRET_KEY = 'S3RVER'
export const S3_REGION = 'us-east-1'

/** Absolute path of s3rver's module, or undefined when it is not installed. */
function s3rverModule (): string | undefined {
  try {
    return createRequire(path.join(ROOT, 'package.json')).resolve('s3rver')
  } catch {
    return undefined
  }
}

/**
 * True when the test server can run. Without s3rver the test is skipped with the reason, except in CI (CI=true),
 * where it is a failure.
 */
export function s3ServerAvailable (t: TapLike): boolean {
  if (s3rverModule() !== undefined) return true
  if (process.env.CI === 'true') t.fail('s3rver is not installed: the S3 tests cannot run in CI (npm ci installs it)')
  else t.plan?.(0, 'skipped: s3rver is not installed (npm install)')
  return false
}

/** The child's program: start s3rver, print "READY <port>", serve until killed. */
const CHILD = `
const [mod, dir, port, buckets] = process.argv.slice(1)
const S3rver = require(mod)
const server = new S3rver({
  address: '127.0.0.1', port: Number(port), directory: dir, silent: true,
  configureBuckets: JSON.parse(buckets).map(name => ({ name }))
})
server.run().then(a => process.stdout.write('READY ' + a.port + '\\n'), err => { console.error(err); process.exit(1) })
`

export interface S3Server {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string
  readonly port: number
  /** The server's data directory (s3rver's on-disk layout). */
  readonly dir: string
  /** A bucket made at start. */
  readonly bucket: string
  /** Environment for an fsx child process (mount): endpoint, credentials, region. */
  readonly env: Record<string, string>
  /** The backend settings a test passes to create()/connect() directly. */
  readonly options: Record<string, unknown>
  /** A plain SDK client for this server (what "another tool" would use). */
  client (opts?: { maxAttempts?: number }): S3Client
  /** Makes another bucket (names: 3–63 chars, lower case). */
  createBucket (name: string): Promise<void>
  /** Kills the server at once (SIGKILL: a crash mid-request); data stays. */
  crash (): Promise<void>
  /** Freezes / thaws the server process (SIGSTOP / SIGCONT): its connections stay open and answer nothing. */
  pause (): void
  resume (): void
  /** Starts it again on the same port and data. */
  start (): Promise<void>
  /** Multipart uploads in progress in `bucket` (s3rver has no ListMultipartUploads: its on-disk uploads directory). */
  uploadsInProgress (bucket?: string): Promise<string[]>
  /** Whatever the child printed on stderr. */
  log (): string
}

let bucketSeq = 0

/** Starts a server (with one bucket) for this test; undefined when unavailable (the test is then planned out). */
export async function startS3Server (t: TapLike, opts: { bucket?: string } = {}): Promise<S3Server | undefined> {
  if (!s3ServerAvailable(t)) return undefined
  const mod = s3rverModule()!
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fsx-s3rver-'))
  const bucket = opts.bucket ?? `fsx-test-${process.pid}-${++bucketSeq}`
  let child: ChildProcess | undefined
  let port = 0
  let stderr = ''
  const clients: S3Client[] = []

  const launch = async (): Promise<void> => {
    const c = spawn(process.execPath, ['-e', CHILD, mod, dir, String(port), JSON.stringify([bucket])], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child = c
    c.stderr?.on('data', d => { stderr += String(d) })
    port = await new Promise<number>((resolve, reject) => {
      let out = ''
      const limit = scaled(15_000)
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${limit} ms: ${stderr}`)), limit)
      c.stdout?.on('data', d => {
        out += String(d)
        const m = /READY (\d+)/.exec(out)
        if (m) { clearTimeout(timer); resolve(Number(m[1])) }
      })
      c.on('exit', code => { clearTimeout(timer); reject(new Error(`s3rver exited with ${String(code)}: ${stderr}`)) })
    })
  }

  const kill = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGCONT')
    c.kill('SIGKILL')
    await exited
  }

  // Registered before the first start, so a server that fails to start is still killed and its data removed.
  t.teardown(async () => {
    for (const c of clients) c.destroy()
    await kill()
    await rm(dir, { recursive: true, force: true })
  })
  await launch()

  const endpoint = (): string => `http://127.0.0.1:${port}`
  const server: S3Server = {
    get endpoint () { return endpoint() },
    get port () { return port },
    dir,
    bucket,
    get env () {
      return { FSX_S3_ENDPOINT: endpoint(), AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, AWS_REGION: S3_REGION }
    },
    get options () {
      return { s3Endpoint: endpoint(), s3Region: S3_REGION }
    },
    client (o = {}) {
      const c = new S3Client({
        endpoint: endpoint(),
        region: S3_REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: o.maxAttempts
      })
      clients.push(c)
      return c
    },
    async createBucket (name) {
      await server.client().send(new CreateBucketCommand({ Bucket: name }))
    },
    crash: kill,
    pause () { child?.kill('SIGSTOP') },
    resume () { child?.kill('SIGCONT') },
    start: launch,
    async uploadsInProgress (b = bucket) {
      return await readdir(path.join(dir, b, '._S3rver_uploads')).catch(() => [])
    },
    log: () => stderr
  }
  return server
}
