// fsx stats, fsx mounts and the Prometheus endpoint agree with what the test did to a real mount.
import t from 'tap'
import path from 'node:path'
import { writeFile } from 'node:fs/promises'
import { fsx, fuseAvailable, mountFsx, run, tempDir } from '../helpers/mount.js'

async function statsOf (mnt: string, env: Record<string, string>): Promise<any> {
  const r = await fsx(['stats', mnt, '--json'], { env })
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout).mounts[0]
}

if (fuseAvailable(t)) {
  t.test('stats count what the application did, and Prometheus shows the same', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') }
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f.bin'), Buffer.alloc(4096, 7))
    // Passthrough would hand the reads to the kernel; here fsx serves them, so it counts them.
    const m = await mountFsx(t, data, ['--preset', 'safe', '--no-passthrough', '--metrics-addr', '127.0.0.1:0'], { env })
    const url = /metrics at (http:\/\/\S+)/.exec(m.log())?.[1]
    t.ok(url, 'the mount logs its metrics URL')

    const before = await statsOf(m.mountpoint, env)
    const N = 5
    // Strong consistency drops the page cache at every open, so each cat is one open and one read.
    const r = await run('bash', ['-c', `for i in $(seq ${N}); do cat f.bin > /dev/null; done`], { cwd: m.mountpoint })
    t.equal(r.code, 0, r.stderr)
    const after = await statsOf(m.mountpoint, env)
    const d = (op: string): number => (after.ops[op]?.count ?? 0) - (before.ops[op]?.count ?? 0)
    t.equal(d('open'), N, `${N} opens`)
    t.equal(d('read'), N, `${N} reads`)
    t.equal(d('release'), N, `${N} releases`)
    t.ok(after.ops.read.p99Ms >= after.ops.read.p50Ms, 'latency percentiles are ordered')
    t.ok(after.backend.reads >= N, 'the backend counted the reads')

    const text = await (await fetch(url!)).text()
    const readLine = text.split('\n').find(l => l.startsWith('fsx_ops_total{') && l.includes('op="read"'))
    t.ok(readLine, 'the read counter is exported')
    const scraped = Number(readLine!.split(' ').pop())
    const now = await statsOf(m.mountpoint, env)
    t.equal(scraped, now.ops.read.count, 'Prometheus and fsx stats agree')
    t.match(text, /fsx_op_latency_seconds\{mountpoint="[^"]+",op="read",quantile="0.99"\} [0-9.e-]+/)
    t.equal((await fetch(url!.replace('/metrics', '/nope'))).status, 404)

    const human = await fsx(['stats', m.mountpoint], { env })
    t.equal(human.code, 0, human.stderr)
    t.match(human.stdout, /read\s+\d+\s+0/)
    t.notMatch(human.stdout, /\u001b\[/, 'plain text when not a TTY')

    const list = await fsx(['mounts', '--json'], { env })
    const mounts = JSON.parse(list.stdout).mounts
    t.equal(mounts.length, 1)
    t.equal(mounts[0].mountpoint, m.mountpoint)
    t.equal(mounts[0].preset, 'safe')
    t.equal(mounts[0].pid, m.child.pid)
  })

  t.test('opens passed through to the kernel are counted as such, and fsx serves none of their reads', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir('fsx-run-') }
    const data = await tempDir('fsx-data-')
    await writeFile(path.join(data, 'f.bin'), Buffer.alloc(4096, 7))
    const m = await mountFsx(t, data, ['--preset', 'safe'], { env })
    const before = await statsOf(m.mountpoint, env)
    if (before.engine?.engine !== 'kernel' || before.engine.passthroughOff) {
      t.plan(0, `skipped: passthrough is not in use on this mount (${before.engine?.passthroughOff ?? `engine ${before.engine?.engine}`})`)
      return
    }
    const N = 3
    const r = await run('bash', ['-c', `for i in $(seq ${N}); do cat f.bin > /dev/null; done`], { cwd: m.mountpoint })
    t.equal(r.code, 0, r.stderr)
    const after = await statsOf(m.mountpoint, env)
    t.equal(after.engine.passthroughOpens - before.engine.passthroughOpens, N, `${N} opens passed through`)
    t.equal((after.ops.read?.count ?? 0) - (before.ops.read?.count ?? 0), 0, 'no read reached fsx')
    const human = await fsx(['stats', m.mountpoint], { env })
    t.match(human.stdout, new RegExp(`engine: kernel, protocol 7\\.\\d+, ${after.engine.passthroughOpens} opens passed through`))
  })

  t.test('a repeated xattr lookup counts a hit in the user-space cache', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') }
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f'), 'x')
    const m = await mountFsx(t, data, ['--preset', 'balanced', '--xattrs'], { env })
    const f = path.join(m.mountpoint, 'f')
    t.equal((await run('setfattr', ['-n', 'user.k', '-v', 'v', f])).code, 0)
    t.equal((await run('getfattr', ['-n', 'user.k', f])).code, 0)
    const x0 = (await statsOf(m.mountpoint, env)).caches.xattr
    t.equal((await run('getfattr', ['-n', 'user.k', f])).code, 0)
    const x1 = (await statsOf(m.mountpoint, env)).caches.xattr
    t.ok(x1.hits > x0.hits, `a second lookup is a hit (${x0.hits} → ${x1.hits})`)
    t.ok(x1.hitRate > 0 && x1.hitRate <= 1)
  })

  t.test('fsx tune MOUNTPOINT advises from live figures; fsx tune --probe measures a backend', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') }
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f'), 'x')
    const m = await mountFsx(t, data, ['--preset', 'safe', '--attr-ttl', '0', '--entry-ttl', '0'], { env })
    const r = await run('bash', ['-c', 'for i in $(seq 300); do stat f > /dev/null; done'], { cwd: m.mountpoint })
    t.equal(r.code, 0, r.stderr)
    const advice = await fsx(['tune', m.mountpoint, '--json'], { env })
    t.equal(advice.code, 0, advice.stderr)
    const j = JSON.parse(advice.stdout)
    t.equal(j.preset, 'safe')
    t.ok(j.advice.some((a: { key: string, env: string }) => a.key === 'attrTtl' && a.env === 'FSX_ATTR_TTL'), JSON.stringify(j.advice))
    const probe = await fsx(['tune', '--probe', data, '--json'], { env })
    t.equal(probe.code, 0, probe.stderr)
    const p = JSON.parse(probe.stdout)
    t.ok(p.probe.rttMs > 0 && p.probe.listMs > 0)
    // Timing-free: the recommendation is the advice rule applied to what was measured (the rules themselves are
    // pinned with fixed latencies in test/unit/advise.test.ts).
    const { recommendFromProbe } = await import('../../dist/control/advise.js')
    t.same(p.recommendation, recommendFromProbe(p.probe))
    t.match(p.exports.join('\n'), new RegExp(`export FSX_PRESET=${p.recommendation.preset}`))
  })

  t.test('a dead mount process is reported and its stale socket cleaned', async t => {
    const env = { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') }
    const m = await mountFsx(t, await tempDir(t, 'fsx-data-'), [], { env })
    m.child.kill('SIGKILL')
    await new Promise(resolve => m.child.on('exit', resolve))
    const r = await fsx(['stats', m.mountpoint], { env })
    t.equal(r.code, 1)
    t.match(r.stderr, /is dead; its stale record and socket were removed/)
    const again = await fsx(['stats', m.mountpoint], { env })
    t.match(again.stderr, /is not an fsx mount/)
    const list = await fsx(['mounts', '--json'], { env })
    t.same(JSON.parse(list.stdout).mounts, [])
  })

  t.test('stats of a path that is not an fsx mount is one line', async t => {
    const r = await fsx(['stats', await tempDir(t)], { env: { FSX_RUNTIME_DIR: await tempDir(t, 'fsx-run-') } })
    t.equal(r.code, 1)
    t.equal(r.stderr.trim().split('\n').length, 1)
    t.match(r.stderr, /is not an fsx mount/)
  })
}
