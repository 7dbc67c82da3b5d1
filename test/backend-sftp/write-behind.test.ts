/**
 * Write-behind of SFTP file handles (plugins/backend-sftp/src/file-handle.ts): a write returns once sent; whatever
 * is asked next about the file (stat, a read through another handle, utimens) sees it; a failure after the write
 * returned is reported by the next fsync; with consistency=strong writes wait for their answer.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { sftpBackend, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'

const create = { read: true, write: true, create: true, exclusive: false, truncate: false, append: false }
const K = 128 * 1024
const TIMEOUT_MS = 1500

async function backendFor (sshd: Sshd, extra: Record<string, unknown> = {}): Promise<SftpBackend> {
  const raw = sshd.url
  return await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, {
    sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts, sftpTimeout: TIMEOUT_MS, sftpKeepalive: 0, ...extra
  }, { fsxError }) as SftpBackend
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
    t.ok(Date.now() - start < 3 * TIMEOUT_MS + 1000, `within the deadline (${Date.now() - start} ms)`)
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
