/**
 * Read-ahead of SFTP file handles (plugins/backend-sftp/src/file-handle.ts): sequential 128 KiB reads, as the kernel
 * sends them, are served from a window of chunks kept in flight; reads never see bytes older than a write or
 * truncate made through fsx, on the same handle or another one of the same file; the end of file is exact.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { sftpBackend, READAHEAD_CHUNK, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'

const rw = { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }
const K = 128 * 1024

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)
  const raw = sshd.url
  const b = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts }, { fsxError }) as SftpBackend
  t.teardown(() => b.close())
  t.equal(READAHEAD_CHUNK, K)

  t.test('sequential 128 KiB reads return the file exactly, short only at the end', async t => {
    const data = randomBytes(5 * 1024 * 1024 + 1234)
    await writeFile(path.join(sshd.dataDir, 'seq.bin'), data)
    const h = await b.open('/seq.bin', rw, 0)
    const out: Buffer[] = []
    const before = b.counters().requests
    for (let pos = 0; ; pos += K) {
      const chunk = await h.read(pos, K)
      out.push(chunk)
      if (chunk.length < K) break
    }
    t.ok(Buffer.concat(out).equals(data), 'same bytes')
    t.equal((await h.read(data.length, K)).length, 0, 'empty at EOF')
    t.ok(b.counters().requests - before < 60, `about one request per chunk (${b.counters().requests - before})`)
    await h.close()
  })

  t.test('unaligned sequential reads straddling chunks are exact', async t => {
    const data = randomBytes(3 * 1024 * 1024)
    await writeFile(path.join(sshd.dataDir, 'odd.bin'), data)
    const h = await b.open('/odd.bin', rw, 0)
    const out: Buffer[] = []
    let pos = 0
    for (const size of [1000, 200_000, 4096, 131_072, 99_999, 500_000, 3_000_000]) {
      const chunk = await h.read(pos, size)
      out.push(chunk)
      pos += chunk.length
    }
    t.ok(Buffer.concat(out).equals(data))
    await h.close()
  })

  t.test('a write through the same handle or another handle is seen by the next read', async t => {
    const data = randomBytes(4 * 1024 * 1024)
    await writeFile(path.join(sshd.dataDir, 'rw.bin'), data)
    const a = await b.open('/rw.bin', rw, 0)
    const other = await b.open('/rw.bin', rw, 0)
    for (let pos = 0; pos < 4 * K; pos += K) await a.read(pos, K) // the window now covers the next chunks
    const patch = Buffer.alloc(K, 0xab)
    await a.write(5 * K, patch)
    t.same(await a.read(4 * K, 2 * K), Buffer.concat([data.subarray(4 * K, 5 * K), patch]), 'own write')
    const patch2 = Buffer.alloc(1000, 0xcd)
    await other.write(6 * K + 10, patch2)
    t.same((await a.read(6 * K, K)).subarray(10, 1010), patch2, 'another handle\'s write')
    await other.truncate(6 * K + 500)
    t.equal((await a.read(6 * K, K)).length, 500, 'a truncate through another handle')
    await b.truncate('/rw.bin', 8 * K)
    t.same(await a.read(7 * K, K), Buffer.alloc(K), 'a truncate by path grows it with zeros')
    await a.close()
    await other.close()
  })

  t.test('a file that grows past the end seen by read-ahead is read to its new end', async t => {
    await writeFile(path.join(sshd.dataDir, 'grow.bin'), Buffer.alloc(3 * K, 1))
    const h = await b.open('/grow.bin', rw, 0)
    for (let pos = 0; pos < 3 * K; pos += K) t.equal((await h.read(pos, K)).length, K)
    t.equal((await h.read(3 * K, K)).length, 0, 'EOF')
    await h.write(3 * K, Buffer.alloc(K, 2))
    t.same(await h.read(3 * K, K), Buffer.alloc(K, 2), 'the appended chunk is read')
    await h.close()
  })
}
