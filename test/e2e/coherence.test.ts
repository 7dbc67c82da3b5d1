// Coherence over Redis (issue 11, docs/SEMANTICS.md "Consistency across mounts"): two mounts of one SFTP source
// and two of one S3 bucket, high-performance with every TTL an hour (kernel and fsx) and no background validator,
// so nothing but coherence can make a change through mount A visible through mount B.
// - With `coherence`: a write, a create, a rename, a chmod and a delete through A are seen through B (stat, ls, cat)
//   within one second (scaled).
// - Without it, B still shows the old state after that second (the TTLs, not coherence, would otherwise be what
//   made it visible).
// - Redis stopped mid-run: both mounts keep working (on their TTLs), fsx stats says coherence is not connected;
//   once Redis is back, what A changed meanwhile and a new change on A are seen on B.
// Real parts only: Debian's redis-server, OpenSSH's sshd and the patched s3rver, on 127.0.0.1, started by the test.
import t, { type Test } from 'tap'
import path from 'node:path'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { fsx, fuseAvailable, mountFsx, run, tempDir, type Mount } from '../helpers/mount.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'
import { startS3Server, type S3Server } from '../helpers/s3-server.js'
import { startRedis, type Redis } from '../helpers/redis-server.js'
import { scaled, waitUntil } from '../helpers/timing.js'

/** The promise: a peer's change is seen within this long (scaled). */
const WITHIN_MS = scaled(1000)
const HOUR_TTLS = {
  FSX_ATTR_TTL: '1h', FSX_ENTRY_TTL: '1h', FSX_NEGATIVE_TTL: '1h',
  FSX_ATTR_CACHE_TTL: '1h', FSX_DIR_CACHE_TTL: '1h', FSX_NEGATIVE_CACHE_TTL: '1h',
  FSX_VALIDATE_INTERVAL: '0'
}
const SEED: Record<string, string> = { 'f.txt': 'old', 'mv-src.txt': 'moving', 'mode.txt': 'mode', 'del.txt': 'doomed' }

/** What a mount shows of the seeded files: content and size of f.txt, the listing, mode.txt's mode, names that exist. */
const STATE = `set -e
c=$(cat f.txt); printf 'content=%s\\n' "$c"
c=$(stat -c %s f.txt); printf 'size=%s\\n' "$c"
c=$(ls); printf 'ls=%s\\n' "$(echo $c)"
c=$(stat -c %a mode.txt); printf 'mode=%s\\n' "$c"
for n in new.txt mv-src.txt mv-dst.txt del.txt g.txt; do if [ -e "$n" ]; then echo "$n=yes"; else echo "$n=no"; fi; done
`
/** The changes made through mount A. */
const CHANGES = `set -e
printf 'new content' > f.txt
printf x > new.txt
mv mv-src.txt mv-dst.txt
chmod 600 mode.txt
rm del.txt
`

async function state (m: Mount): Promise<string> {
  const r = await run('bash', ['-c', STATE], { cwd: m.mountpoint, timeoutMs: scaled(30_000) })
  if (r.code !== 0) throw new Error(`reading the state through ${m.mountpoint} failed (${String(r.code)}): ${r.stderr.trim()}`)
  return r.stdout
}

async function change (t: Test, m: Mount, script: string): Promise<number> {
  const r = await run('bash', ['-c', script], { cwd: m.mountpoint, timeoutMs: scaled(30_000) })
  t.equal(r.code, 0, `the change through A succeeds ${r.stderr.trim()}`)
  return Date.now()
}

/**
 * Resolves with the time (ms after `since`) at which a state check of `m` that *started* by then saw `want`, or
 * undefined if no check started within `withinMs` did.
 */
async function seenWithin (m: Mount, want: string, since: number, withinMs: number): Promise<number | undefined> {
  for (;;) {
    const t0 = Date.now()
    if (t0 - since > withinMs) return undefined
    if (await state(m) === want) return t0 - since
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

interface Source {
  name: string
  url: string
  env: Record<string, string>
}

async function stats (m: Mount, env: Record<string, string>): Promise<any> {
  const r = await fsx(['stats', m.mountpoint, '--json'], { env })
  if (r.code !== 0) throw new Error(`fsx stats failed: ${r.stderr}`)
  return JSON.parse(r.stdout).mounts[0]
}

/** Two mounts of `src` (each its own cache dir), high-performance, hour TTLs, coherence at `redis` if given. */
async function twoMounts (t: Test, src: Source, redis?: Redis): Promise<{ a: Mount, b: Mount, env: Record<string, string> }> {
  const env = { ...src.env, ...HOUR_TTLS, FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-'), ...(redis ? { FSX_COHERENCE: redis.url } : {}) }
  const a = await mountFsx(t, src.url, ['--preset', 'high-performance'], { env: { ...env, XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-') } })
  const b = await mountFsx(t, src.url, ['--preset', 'high-performance'], { env: { ...env, XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-') } })
  if (redis !== undefined) {
    for (const m of [a, b]) {
      await waitUntil(async () => (await stats(m, env)).coherence?.connected === true, { timeoutMs: 10_000, what: `${m.mountpoint} to connect to Redis` })
    }
  }
  return { a, b, env }
}

/** Every field of `before` differs in `after` except those named (all lines of STATE are name=value). */
function changedFields (before: string, after: string): string[] {
  const b = before.trim().split('\n')
  const a = after.trim().split('\n')
  return b.filter((line, i) => a[i] !== line).map(line => line.split('=')[0])
}

function backendTests (kind: string, seed: (name: string) => Promise<Source>, redis: Redis): void {
  t.test(`${kind}: with coherence, a write, create, rename, chmod and delete through A are seen through B within ${WITHIN_MS} ms`, async t => {
    const src = await seed('on')
    const { a, b, env } = await twoMounts(t, src, redis)
    const before = await state(b)
    t.equal(await state(a), before, 'both mounts show the seeded files')
    const at = await change(t, a, CHANGES)
    const want = await state(a)
    t.same(changedFields(before, want).sort(), ['content', 'del.txt', 'ls', 'mode', 'mv-dst.txt', 'mv-src.txt', 'new.txt', 'size'].sort(), 'A shows every change')
    const lag = await seenWithin(b, want, at, WITHIN_MS)
    t.ok(lag !== undefined, `B shows every change within ${WITHIN_MS} ms (${lag ?? 'not'} ms)${lag === undefined ? `; B shows:\n${await state(b)}` : ''}`)
    const sa = await stats(a, env)
    const sb = await stats(b, env)
    t.ok(sa.coherence.sent > 0, `A published its changes (${String(sa.coherence.sent)} messages)`)
    t.ok(sb.coherence.received > 0 && sb.coherence.applied >= 5, `B applied them (${String(sb.coherence.received)} messages, ${String(sb.coherence.applied)} invalidations)`)
    t.ok(sb.coherence.lagP99Ms >= sb.coherence.lagP50Ms && sb.coherence.lagP50Ms > 0, 'B measured the lag')
    const text = await fsx(['stats', b.mountpoint], { env })
    t.match(text.stdout, /coherence: redis:\/\/127\.0\.0\.1:\d+\/0 connected · \d+ sent, \d+ received, \d+ invalidations applied, lag p50/, 'fsx stats shows coherence')
  })

  t.test(`${kind}: without coherence, B still shows the old state after ${WITHIN_MS} ms (hour TTLs)`, async t => {
    const src = await seed('off')
    const { a, b, env } = await twoMounts(t, src)
    const before = await state(b)
    const at = await change(t, a, CHANGES)
    t.not(await state(a), before, 'A shows the changes')
    // NB: a sleep, not a deadline: the absence of a change can only be checked after the time it had.
    await new Promise(resolve => setTimeout(resolve, Math.max(0, at + WITHIN_MS + scaled(500) - Date.now())))
    t.equal(await state(b), before, 'B still shows every old answer')
    t.equal((await stats(b, env)).coherence, undefined, 'fsx stats has no coherence figures when it is off')
  })

  t.test(`${kind}: Redis stopped mid-run: both mounts keep working on TTLs, stats say so, and catch up when it is back`, async t => {
    const src = await seed('outage')
    const { a, b, env } = await twoMounts(t, src, redis)
    const before = await state(b)
    await redis.stop()
    t.teardown(async () => { await redis.start().catch(() => {}) })
    for (const m of [a, b]) {
      await waitUntil(async () => (await stats(m, env)).coherence.connected === false, { timeoutMs: 10_000, what: `${m.mountpoint} to notice Redis is gone` })
    }
    const text = await fsx(['stats', b.mountpoint], { env })
    t.match(text.stdout, /coherence: redis:\S+ not connected.*on TTLs until it is back/, 'fsx stats says coherence is off and TTLs apply')
    // Both mounts work: A changes, B answers (from its caches: an hour of TTL).
    await change(t, a, 'printf gg > g.txt\n')
    t.equal(await state(b), before, 'B keeps answering on its TTLs while Redis is away')
    t.match((await stats(a, env)).coherence, { connected: false, waiting: 1 }, 'A keeps its change for when Redis is back')

    await redis.start()
    for (const m of [a, b]) {
      await waitUntil(async () => (await stats(m, env)).coherence.connected === true, { timeoutMs: 10_000, what: `${m.mountpoint} to reconnect to Redis` })
    }
    const sb = await stats(b, env)
    t.ok(sb.coherence.outages >= 1 && sb.coherence.resets >= 1, `B counted the outage and dropped its caches (${String(sb.coherence.outages)} outages, ${String(sb.coherence.resets)} resets)`)
    let want = await state(a)
    t.ok(await seenWithin(b, want, Date.now(), WITHIN_MS) !== undefined, 'after Redis is back, B shows the change A made while it was away')
    const at = await change(t, a, CHANGES)
    want = await state(a)
    const lag = await seenWithin(b, want, at, WITHIN_MS)
    t.ok(lag !== undefined, `after Redis is back, a change on A is seen on B within ${WITHIN_MS} ms (${lag ?? 'not'} ms)`)
  })
}

/** A mount whose Redis does not answer at start mounts anyway (after a bounded wait), on TTLs, and connects later. */
function startWithoutRedis (redis: Redis): void {
  t.test('local: Redis down when the mount starts: it mounts, works on TTLs, says so, and connects once Redis is up', async t => {
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f.txt'), 'x')
    await redis.stop()
    t.teardown(async () => { await redis.start().catch(() => {}) })
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-'), XDG_CACHE_HOME: await tempDir(t, 'fsx-cache-'), FSX_COHERENCE: redis.url }
    const m = await mountFsx(t, data, [], { env })
    t.match(m.log(), /coherence: redis:\S+ does not answer yet/, 'the mount says it goes on without Redis')
    const r = await run('bash', ['-c', 'cat f.txt && echo y > g.txt'], { cwd: m.mountpoint })
    t.equal(r.code, 0, `the mount works ${r.stderr}`)
    t.equal((await stats(m, env)).coherence.connected, false, 'fsx stats: not connected')
    await redis.start()
    await waitUntil(async () => (await stats(m, env)).coherence.connected === true, { timeoutMs: 10_000, what: 'the mount to connect once Redis is up' })
    t.pass('connected once Redis is up')
  })
}

if (fuseAvailable(t) && sshdAvailable(t)) {
  const redis = await startRedis(t)
  const sshd: Sshd = await startSshd(t)
  const s3: S3Server | undefined = await startS3Server(t)
  if (redis !== undefined) startWithoutRedis(redis)
  if (redis !== undefined && s3 !== undefined) {
    backendTests('SFTP', async name => {
      const root = path.join(sshd.dataDir, name)
      await mkdir(root)
      for (const [f, body] of Object.entries(SEED)) await writeFile(path.join(root, f), body)
      await chmod(path.join(root, 'mode.txt'), 0o644)
      return { name, url: `${sshd.url}/${name}`, env: sshd.env }
    }, redis)
    backendTests('S3', async name => {
      const client = s3.client()
      for (const [f, body] of Object.entries(SEED)) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${name}/${f}`, Body: body }))
      return { name, url: `s3://${s3.bucket}/${name}`, env: s3.env }
    }, redis)
  }
}
