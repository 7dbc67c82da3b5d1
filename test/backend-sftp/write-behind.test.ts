/**
 * Write-behind of SFTP file handles (plugins/backend-sftp/src/file-handle.ts): a write returns once sent; whatever
 * is asked next about the file (stat, a read through another handle, utimens) sees it, however long the server
 * takes to answer the writes queued ahead (issue 13 item 8); a write that fails after it returned makes reads of the
 * file fail rather than return it without that write, and is reported by the next fsync; with consistency=strong
 * writes wait for their answer.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { sftpBackend, WRITE_BEHIND_BYTES, type SftpBackend, type SftpFileHandle } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'
import { startDelayProxy } from '../helpers/delay-proxy.js'
import { startCpuHog } from '../helpers/cpu-hog.js'
import { scaled, waitUntil } from '../helpers/timing.js'

const create = { read: true, write: true, create: true, exclusive: false, truncate: false, append: false }
const K = 128 * 1024
/** The SFTP request deadline these tests run with: short, so that failures come quickly. */
const TIMEOUT_MS = scaled(1500)

async function backendFor (sshd: Sshd, extra: Record<string, unknown> = {}, port = sshd.port, knownHosts = sshd.knownHosts): Promise<SftpBackend> {
  const raw = `sftp://root@127.0.0.1:${port}${sshd.dataDir}`
  return await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, {
    sftpKey: sshd.userKey, sftpKnownHosts: knownHosts, sftpTimeout: TIMEOUT_MS, sftpKeepalive: 0, ...extra
  }, { fsxError }) as SftpBackend
}

/** A known_hosts file in `dir` naming sshd's key under the proxy's address, [127.0.0.1]:port. */
async function knownHostsFor (sshd: Sshd, port: number, dir: string): Promise<string> {
  const key = (await readFile(sshd.knownHosts, 'utf8')).trim().split(/\s+/).slice(1).join(' ')
  const file = path.join(dir, 'known_hosts')
  await writeFile(file, `[127.0.0.1]:${port} ${key}\n`)
  return file
}

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)

  t.test('what is asked after a write returns sees it: stat, another handle, the server after close', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const data = randomBytes(32 * K + 7)
    const h = await b.open('/wb.bin', create, 0o644)
    for (let o = 0; o < data.length; o += K) await h.write(o, data.subarray(o, o + K))
    t.equal((await b.stat('/wb.bin')).size, data.length, 'stat right after the last write')
    const other = await b.open('/wb.bin', { ...create, create: false }, 0)
    t.ok((await other.read(0, data.length)).equals(data), 'another handle reads every byte')
    await other.close()
    await h.close()
    t.ok((await readFile(path.join(sshd.dataDir, 'wb.bin'))).equals(data), 'the server holds it after close')
  })

  t.test('over a slow link under a CPU hog, another handle reads every byte written before, however long the writes queue', async t => {
    // The link carries the write-behind window in 3 request deadlines: the last write of a window is answered long
    // after its own deadline, while the server keeps answering the ones ahead of it (a deadline counted from the
    // send failed those writes, and the other handle read the file without them).
    const rate = Math.floor(WRITE_BEHIND_BYTES / (3 * TIMEOUT_MS / 1000))
    const link = await startDelayProxy(sshd.port, 1, { bytesPerSecond: rate })
    t.teardown(() => link.close())
    const b = await backendFor(sshd, { sftpConnections: 2 }, link.port, await knownHostsFor(sshd, link.port, t.testdir()))
    t.teardown(() => b.close())
    await startCpuHog(t)
    const h = await b.open('/slow.bin', create, 0o644)
    const other = await b.open('/slow.bin', { ...create, create: false }, 0)
    t.teardown(async () => { await h.close().catch(() => {}); await other.close().catch(() => {}) })
    let expected = Buffer.alloc(0)
    for (const round of [1, 2]) {
      const data = randomBytes(WRITE_BEHIND_BYTES)
      for (let o = 0; o < data.length; o += K) await h.write(o, data.subarray(o, o + K))
      expected = data
      const got = await other.read(0, data.length + K)
      t.equal(got.length, expected.length, `round ${round}: the other handle reads the whole file`)
      t.ok(got.equals(expected), `round ${round}: every byte is the one written last`)
      t.equal((await b.stat('/slow.bin')).size, expected.length, `round ${round}: stat sees the size`)
    }
    t.equal(b.counters().timeouts, 0, 'no request timed out')
    await h.sync()
  })

  t.test('a write, truncate, fsync or attribute change through one handle comes after the writes another handle returned from', async t => {
    // Two handles of one file on two connections over a slow link: the server orders requests only within one
    // connection, so an earlier write still queued on the other one would land after (exerciser seed 780326213:
    // an ftruncate through h1 was undone by the write-behind of a write through another open of the file).
    const link = await startDelayProxy(sshd.port, 1, { bytesPerSecond: 2 * 1024 * 1024 })
    t.teardown(() => link.close())
    const b = await backendFor(sshd, { sftpConnections: 2 }, link.port, await knownHostsFor(sshd, link.port, t.testdir()))
    t.teardown(() => b.close())
    await waitUntil(() => b.levels().connections === 2, { timeoutMs: 10_000, what: 'both SFTP connections' })
    const big = (byte: number): Buffer => Buffer.alloc(2 * 1024 * 1024, byte)
    const writeBig = async (h: { write: (o: number, d: Buffer) => Promise<number> }, data: Buffer): Promise<void> => {
      for (let o = 0; o < data.length; o += K) await h.write(o, data.subarray(o, o + K))
    }
    const pair = async (name: string): Promise<[SftpFileHandle, SftpFileHandle]> => {
      const first = await b.open(name, create, 0o644)
      const second = await b.open(name, create, 0o644)
      t.teardown(async () => { await first.close().catch(() => {}); await second.close().catch(() => {}) })
      return [first, second]
    }

    let [h1, h2] = await pair('/order-truncate.bin')
    await writeBig(h2, big(0xa1))
    await h1.truncate(1000)
    await h2.close()
    await h1.close()
    t.equal((await stat(path.join(sshd.dataDir, 'order-truncate.bin'))).size, 1000, 'truncate after another handle\'s writes: the truncated size')

    ;[h1, h2] = await pair('/order-write.bin')
    await writeBig(h2, big(0xa2))
    await h1.write(0, Buffer.alloc(1000, 0xb2))
    await h2.close()
    await h1.close()
    const written = await readFile(path.join(sshd.dataDir, 'order-write.bin'))
    t.same(written.subarray(0, 1000), Buffer.alloc(1000, 0xb2), 'an overlapping write after another handle\'s: the later bytes')
    t.same(written.subarray(1000), big(0xa2).subarray(1000), 'and the rest of the earlier write')

    ;[h1, h2] = await pair('/order-fsync.bin')
    await writeBig(h2, big(0xa3))
    await h1.sync()
    t.same(await readFile(path.join(sshd.dataDir, 'order-fsync.bin')), big(0xa3), 'fsync through another handle: the server has every byte')

    ;[h1, h2] = await pair('/order-times.bin')
    await writeBig(h2, big(0xa4))
    const T = Date.UTC(2011, 2, 3, 4, 5, 6) / 1000
    await h1.setAttrs({ atime: T, mtime: T })
    await h2.close()
    await h1.close()
    t.equal((await stat(path.join(sshd.dataDir, 'order-times.bin'))).mtimeMs, T * 1000, 'times set through another handle stay')
  })

  t.test('a write that fails after it returned makes reads of the file fail, not return it without that write', async t => {
    const b = await backendFor(sshd, { sftpConnections: 2 })
    t.teardown(async () => { await sshd.freezeConnections(false); await b.close() })
    await writeFile(path.join(sshd.dataDir, 'failed.bin'), Buffer.alloc(2 * K, 1))
    const h = await b.open('/failed.bin', { ...create, create: false }, 0)
    const other = await b.open('/failed.bin', { ...create, create: false }, 0)
    t.same(await other.read(0, K), Buffer.alloc(K, 1), 'read before')
    await sshd.freezeConnections(true)
    await h.write(0, Buffer.alloc(K, 2)) // returns once sent: the server never answers it
    await t.rejects(other.read(0, K), { code: 'EIO' }, 'another handle: EIO, not the bytes from before the write')
    await t.rejects(h.read(0, K), { code: 'EIO' }, 'the writing handle too')
    await sshd.freezeConnections(false)
    await sshd.frozenSessionsSettled()
    await t.rejects(h.sync(), { code: /^(ETIMEDOUT|EIO)$/ }, 'the writer is told at its next fsync')
    t.equal((await other.read(0, 2 * K)).length, 2 * K, 'once the writer was told, reads work again')
    await h.close()
    await other.close()
  })

  t.test('utimens right after writes keeps the time it sets', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const h = await b.open('/times.bin', create, 0o644)
    for (let o = 0; o < 64 * K; o += K) await h.write(o, randomBytes(K))
    const T = Date.UTC(2010, 1, 2, 3, 4, 5)
    await b.utimens('/times.bin', T, T)
    await h.close()
    t.equal((await b.stat('/times.bin')).mtimeMs, T)
  })

  t.test('a write that fails after it returned is reported by the next fsync; the file works again after', async t => {
    const b = await backendFor(sshd)
    t.teardown(async () => { await sshd.freezeConnections(false); await b.close() })
    const h = await b.open('/late.bin', create, 0o644)
    await h.write(0, Buffer.from('before'))
    await h.sync()
    await sshd.freezeConnections(true)
    const start = Date.now()
    await h.write(6, Buffer.from(' lost?'))
    t.ok(Date.now() - start < TIMEOUT_MS / 2, 'the write returned without waiting for an answer')
    await t.rejects(h.sync(), { code: /^(ETIMEDOUT|EIO)$/ }, 'fsync reports the failure')
    t.ok(Date.now() - start < 3 * TIMEOUT_MS + scaled(1000), `within the deadline (${Date.now() - start} ms)`)
    await sshd.freezeConnections(false)
    // The frozen server still holds ' lost?' in its socket buffer and applies it when thawed (docs/SEMANTICS.md).
    await sshd.frozenSessionsSettled()
    await h.write(6, Buffer.from(' after'))
    await h.sync()
    await h.close()
    t.equal(await readFile(path.join(sshd.dataDir, 'late.bin'), 'utf8'), 'before after')
  })

  t.test('with consistency=strong a write waits for its answer', async t => {
    const b = await backendFor(sshd, { consistency: 'strong' })
    t.teardown(async () => { await sshd.freezeConnections(false); await b.close() })
    t.equal(b.writeBehind, false)
    const h = await b.open('/strong.bin', create, 0o644)
    await sshd.freezeConnections(true)
    const start = Date.now()
    await t.rejects(h.write(0, Buffer.from('x')), { code: /^(ETIMEDOUT|EIO)$/ })
    t.ok(Date.now() - start >= TIMEOUT_MS - 100, 'the write itself waited for the deadline')
    await sshd.freezeConnections(false)
    await h.close().catch(() => {})
  })
}
