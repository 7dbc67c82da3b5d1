// The CLI with the S3 plugin against a real S3-compatible server (s3rver): a bucket that does not exist, an endpoint
// that refuses connections and one that stops answering are backend errors: one line, exit 5, in the foreground and
// with --daemon alike, and never a hang. A malformed s3:// source is a configuration error (3) like any scheme's.
import t from 'tap'
import { rm } from 'node:fs/promises'
import { forceUnmount, fsx, fuseAvailable, isMounted, tempDir, type Result } from '../helpers/mount.js'
import { startS3Server } from '../helpers/s3-server.js'
import { freePort } from '../helpers/sshd.js'
import { scaled } from '../helpers/timing.js'

/** One line on stderr, no stack frames, the expected exit code. */
function oneLineError (t: Tap.Test, r: Result, code: number, pattern: RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exit code ${code}: ${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 1, `${what}: one line: ${r.stderr}`)
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  t.match(lines[0], pattern, what)
}

/** A temp dir removed in teardown, unless something is still mounted on it (never delete through a mount). */
async function scratch (t: Tap.Test, prefix: string): Promise<string> {
  const dir = await tempDir(prefix)
  t.teardown(async () => {
    await forceUnmount(dir)
    if (!await isMounted(dir)) await rm(dir, { recursive: true, force: true })
  })
  return dir
}

const s3 = fuseAvailable(t) ? await startS3Server(t) : undefined
if (s3 !== undefined) {
  const isolated = async (tt: Tap.Test): Promise<Record<string, string>> => ({
    ...s3.env,
    XDG_CONFIG_HOME: await scratch(tt, 'fsx-cfg-'),
    XDG_STATE_HOME: await scratch(tt, 'fsx-state-'),
    XDG_CACHE_HOME: await scratch(tt, 'fsx-cache-'),
    FSX_RUNTIME_DIR: await scratch(tt, 'fsx-run-')
  })
  const modes = [[], ['--daemon']]
  const label = (what: string, mode: string[]): string => `${what}${mode.length > 0 ? ' (--daemon)' : ''}`

  t.test('a bucket that does not exist is a backend error (5)', async t => {
    const env = await isolated(t)
    const mnt = await scratch(t, 'fsx-mnt-')
    for (const mode of modes) {
      const r = await fsx(['mount', 's3://no-such-bucket-here/x', mnt, ...mode], { env, timeoutMs: scaled(60_000) })
      oneLineError(t, r, 5, /s3 source s3:\/\/no-such-bucket-here\/x: bucket "no-such-bucket-here" does not exist \(http:\/\/127\.0\.0\.1:\d+\)/, label('missing bucket', mode))
    }
    t.notOk(await isMounted(mnt))
  })

  t.test('an endpoint that refuses connections is a backend error (5)', async t => {
    const env = { ...await isolated(t), FSX_S3_ENDPOINT: `http://127.0.0.1:${await freePort()}`, FSX_S3_TIMEOUT: '1s' }
    const mnt = await scratch(t, 'fsx-mnt-')
    for (const mode of modes) {
      const r = await fsx(['mount', `s3://${s3.bucket}`, mnt, ...mode], { env, timeoutMs: scaled(60_000) })
      oneLineError(t, r, 5, /cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/, label('refused port', mode))
    }
    t.notOk(await isMounted(mnt))
  })

  t.test('a malformed s3:// source is a configuration error (3), like any scheme\'s', async t => {
    const env = await isolated(t)
    const mnt = await scratch(t, 'fsx-mnt-')
    for (const mode of modes) {
      oneLineError(t, await fsx(['mount', `s3://${s3.bucket}:9000/x`, mnt, ...mode], { env }), 3, /no credentials or port in the URL/, label('port in the URL', mode))
      oneLineError(t, await fsx(['mount', `s3://${s3.bucket}/a/../b`, mnt, ...mode], { env }), 3, /must not hold empty, "\." or "\.\." segments/, label('dot-dot prefix', mode))
    }
  })

  // Last: it freezes the server.
  t.test('an endpoint that stops answering is a backend error (5) within the S3 deadline, not a hang', async t => {
    const env = { ...await isolated(t), FSX_S3_TIMEOUT: '500ms' }
    const mnt = await scratch(t, 'fsx-mnt-')
    s3.pause()
    t.teardown(() => s3.resume())
    for (const mode of modes) {
      // Bounded by the command's own (scaled) time limit: a hang is killed and fails the exit-code check.
      const r = await fsx(['mount', `s3://${s3.bucket}`, mnt, ...mode], { env, timeoutMs: scaled(90_000) })
      oneLineError(t, r, 5, new RegExp(`s3 source s3://${s3.bucket}: cannot reach http://127\\.0\\.0\\.1:\\d+: `), label('frozen server', mode))
    }
    t.notOk(await isMounted(mnt))
  })
}
