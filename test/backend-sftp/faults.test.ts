/**
 * Faults against a real OpenSSH sshd: connections dropped, the server killed mid-read and mid-write and restarted,
 * a link that stops answering (sessions SIGSTOPped), the server down for longer than the deadline. The application
 * must see success or an errno within the deadline, never a hang; open files keep working after a reconnect, and
 * data written after it is intact on the server. Deadlines are short here (sftpTimeout 2s, keepalive 500ms, both
 * scaled by FSX_TEST_TIME_FACTOR like the bounds checked against them).
 */
import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { sftpBackend, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'
import { fuseAvailable, mountFsx, run, sh, tempDir } from '../helpers/mount.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const kit = { fsxError }
const TIMEOUT_MS = scaled(2000)
const KEEPALIVE_MS = scaled(500)
/** Longest an operation may take: a wait for a connection plus one request, each bounded by the deadline. */
const BOUND_MS = 2 * TIMEOUT_MS + scaled(1500)
const flags = { read: true, write: true, create: true, exclusive: false, truncate: false, append: false }

async function backendFor (sshd: Sshd, dir = ''): Promise<SftpBackend> {
  const raw = sshd.url + dir
  return await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, {
    sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts, sftpTimeout: TIMEOUT_MS, sftpKeepalive: KEEPALIVE_MS, sftpConnections: 2
  }, kit) as SftpBackend
}

interface Outcome<T> { ok: boolean, value?: T, code?: string, ms: number }

/** Runs `p` and reports how it settled and how long it took. */
async function settle<T> (p: Promise<T>): Promise<Outcome<T>> {
  const start = Date.now()
  try {
    const value = await p
    return { ok: true, value, ms: Date.now() - start }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code, ms: Date.now() - start }
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)

  t.test('an open file keeps reading and writing after every connection is dropped', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const h = await b.open('/dropped.bin', flags, 0o644)
    const first = randomBytes(100_000)
    await h.write(0, first)
    await sshd.dropConnections()
    const second = randomBytes(50_000)
    const w = await settle(h.write(first.length, second))
    t.ok(w.ok, `the write after the drop succeeds (${w.code ?? 'ok'}, ${w.ms} ms)`)
    t.same(await h.read(0, 200_000), Buffer.concat([first, second]), 'the handle reads everything back')
    await h.sync()
    await h.close()
    t.same(await readFile(path.join(sshd.dataDir, 'dropped.bin')), Buffer.concat([first, second]), 'the server holds it')
    t.ok(b.counters().reopens >= 1, 'the file was reopened on a new connection')
    t.ok(b.counters().reconnects >= 1, 'the pool reconnected')
  })

  t.test('killing sshd mid-read and restarting it: every read settles in time, and reads after it are correct', async t => {
    const data = randomBytes(24 * 1024 * 1024)
    await writeFile(path.join(sshd.dataDir, 'big-read.bin'), data)
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const h = await b.open('/big-read.bin', { ...flags, write: false, create: false }, 0)
    const reads: Array<Promise<Outcome<Buffer>>> = []
    for (let i = 0; i < 6; i++) reads.push(settle(h.read(i * 4 * 1024 * 1024, 4 * 1024 * 1024)))
    await sleep(5)
    await sshd.kill({ connections: true })
    await sleep(300)
    await sshd.start()
    const outcomes = await Promise.all(reads)
    outcomes.forEach((o, i) => {
      t.ok(o.ms < BOUND_MS, `read ${i} settled in ${o.ms} ms (bound ${BOUND_MS})`)
      if (o.ok) t.ok(o.value!.equals(data.subarray(i * 4 * 1024 * 1024, (i + 1) * 4 * 1024 * 1024)), `read ${i} got the right bytes`)
      else t.match(o.code, /^(EIO|ETIMEDOUT)$/, `read ${i} failed with an errno`)
    })
    const again = await h.read(0, data.length)
    t.ok(again.equals(data), 'the same handle reads the whole file correctly after the restart')
    await h.close()
  })

  t.test('killing sshd mid-write and restarting it: writes settle in time, and the data written after is intact', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const h = await b.open('/big-write.bin', flags, 0o644)
    const block = 1024 * 1024
    const blocks = 32
    const data = randomBytes(blocks * block)
    let errors = 0
    let restarted: Promise<void> | undefined
    for (let i = 0; i < blocks; i++) {
      // The crash lands while the following blocks are being written; sshd is back 300 ms later.
      if (i === 4) restarted = sshd.kill({ connections: true }).then(async () => { await sleep(300); await sshd.start() })
      // The application writes every block until it succeeds, as a careful one would after an error.
      for (let attempt = 0; ; attempt++) {
        const o = await settle(h.write(i * block, data.subarray(i * block, (i + 1) * block)))
        t.ok(o.ms < BOUND_MS, `block ${i} attempt ${attempt} settled in ${o.ms} ms`)
        if (o.ok) break
        errors++
        t.match(o.code, /^(EIO|ETIMEDOUT)$/, `block ${i} failed with an errno`)
        if (attempt > 5) throw new Error(`block ${i} never succeeded`)
      }
    }
    await restarted
    await h.sync()
    await h.close()
    t.ok((await readFile(path.join(sshd.dataDir, 'big-write.bin'))).equals(data), `the server holds all ${blocks} MiB intact (${errors} errors seen, ${b.counters().reopens} reopens)`)
  })

  t.test('a link that stops answering gives success or ETIMEDOUT within the deadline, then recovers', async t => {
    const b = await backendFor(sshd)
    t.teardown(async () => { await sshd.freezeConnections(false); await b.close() })
    await b.write('/frozen.txt', Buffer.from('still here'))
    await sshd.freezeConnections(true)
    const o = await settle(b.stat('/frozen.txt'))
    t.ok(o.ms < BOUND_MS, `stat settled in ${o.ms} ms`)
    if (!o.ok) t.match(o.code, /^(EIO|ETIMEDOUT)$/)
    const again = await settle(b.read('/frozen.txt', 0, 100))
    t.ok(again.ok, `a new connection serves the next request (${again.code ?? 'ok'}, ${again.ms} ms)`)
    t.equal(again.value?.toString(), 'still here')
    await sshd.freezeConnections(false)
  })

  t.test('keepalives notice a dead link with nothing in flight', async t => {
    const b = await backendFor(sshd)
    t.teardown(async () => { await sshd.freezeConnections(false); await b.close() })
    await b.stat('/')
    const before = b.counters().reconnects
    await sshd.freezeConnections(true)
    const replaced = await waitUntil(() => b.counters().reconnects > before, { timeoutMs: 3000, what: 'the pool to reconnect' })
      .then(() => true, () => false)
    t.ok(replaced, 'the pool replaced the silent connections by itself')
    await sshd.freezeConnections(false)
    t.equal((await b.stat('/')).kind, 'dir')
  })

  t.test('with the server down, operations fail with ECONNREFUSED at once, not after the deadline; it comes back on restart', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    await sshd.kill({ connections: true })
    for (const what of ['stat', 'stat again, every slot just refused', 'ping']) {
      const o = await settle(what === 'ping' ? b.ping() : b.stat('/'))
      t.notOk(o.ok)
      t.equal(o.code, 'ECONNREFUSED', `${what}: the refusal is the answer`)
      t.ok(o.ms < TIMEOUT_MS / 2, `${what}: failed after ${o.ms} ms, no wait for the reconnect backoff or the deadline`)
    }
    await sshd.start()
    const again = await settle(b.stat('/'))
    t.ok(again.ok, `works again after the restart (${again.code ?? 'ok'}, ${again.ms} ms)`)
  })

  if (fuseAvailable(t)) {
    t.test('through a mount: cat and dd see success or an error in time across a server restart, and later data is intact', async t => {
      const big = randomBytes(32 * 1024 * 1024)
      await writeFile(path.join(sshd.dataDir, 'mnt-big.bin'), big)
      const m = await mountFsx(t, sshd.url, ['--preset', 'balanced'], {
        env: { ...sshd.env, FSX_SFTP_TIMEOUT: `${TIMEOUT_MS}ms`, FSX_SFTP_KEEPALIVE: `${KEEPALIVE_MS}ms` }
      })
      const mnt = m.mountpoint
      // pipefail: a cat that fails must fail the pipeline, not hide behind cksum's success.
      const reader = run('bash', ['-c', `set -o pipefail; cat ${mnt}/mnt-big.bin | cksum`], { timeoutMs: 60_000 })
      const writer = run('dd', ['if=/dev/urandom', `of=${mnt}/mnt-write.bin`, 'bs=1M', 'count=32', 'conv=fsync', 'status=none'], { timeoutMs: 60_000 })
      await sleep(100)
      const start = Date.now()
      await sshd.kill({ connections: true })
      await sleep(500)
      await sshd.start()
      const [r, w] = await Promise.all([reader, writer])
      t.ok(Date.now() - start < scaled(30_000), `both finished ${Date.now() - start} ms after the kill`)
      t.ok(r.code === 0 || /Input\/output error|timed out/i.test(r.stderr), `the reader got success or an errno: ${r.code} ${r.stderr.trim()}`)
      if (r.code === 0) {
        const want = await run('bash', ['-c', `cksum < ${path.join(sshd.dataDir, 'mnt-big.bin')}`])
        t.equal(r.stdout.split(' ').slice(0, 2).join(' '), want.stdout.split(' ').slice(0, 2).join(' '), 'a reader that succeeded got the right bytes')
      }
      t.ok(w.code === 0 || /Input\/output error|timed out/i.test(w.stderr), `the writer got success or an errno: ${w.code} ${w.stderr.trim()}`)
      // fsx may have found the server failing (what it has cached answers, the rest is EIO at once) until a
      // background probe notices it is back: a lookup of a missing name says ENOENT, an answer of the server, then.
      let n = 0
      await waitUntil(async () => /No such file/.test((await run('stat', [path.join(mnt, `no-such-${n++}`)])).stderr),
        { timeoutMs: 10_000, what: 'the server to answer through the mount again' })
      const src = path.join(await tempDir('fsx-src-'), 'after.bin')
      const after = randomBytes(8 * 1024 * 1024 + 3)
      await writeFile(src, after)
      const c = await sh(`cp ${src} after.bin && cmp after.bin ${src} && cmp mnt-big.bin ${path.join(sshd.dataDir, 'mnt-big.bin')}`, mnt)
      t.equal(c.code, 0, `after the restart the mount writes and reads intact data: ${c.stderr}`)
      t.ok((await readFile(path.join(sshd.dataDir, 'after.bin'))).equals(after), 'the server holds the bytes written after the reconnect')
      t.equal(await m.stop(), 0)
    })
  }
}
