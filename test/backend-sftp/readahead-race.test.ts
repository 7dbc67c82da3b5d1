/**
 * Read-ahead of SFTP file handles under races (issue 15): many sequential and overlapping readers of one large file,
 * through one handle and through several, with reads unaligned to the read-ahead chunks and issued out of order as
 * the kernel does, over a link whose answers are delayed and reordered between connections, while busy loops hog
 * every core. No read may fail and every byte must match: read-ahead serves a chunk or reads it directly, it never
 * fails a read on its own account.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { sftpBackend, READAHEAD_CHUNK, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable } from '../helpers/sshd.js'
import { startDelayProxy } from '../helpers/delay-proxy.js'
import { startCpuHog } from '../helpers/cpu-hog.js'
import { createRng } from '../helpers/exerciser.js'

const ro = { read: true, write: false, create: false, exclusive: false, truncate: false, append: false }
const C = READAHEAD_CHUNK
const FILE_BYTES = 12 * 1024 * 1024 + 4321
/** The kernel's FUSE read size, and the page size its reads are aligned to (not to read-ahead chunks). */
const READ = 128 * 1024
const PAGE = 4096

/** The exerciser's seeded PRNG (mulberry32): the same numbers for the same seed in every run. */
const rng = (seed: number): () => number => createRng(seed).next

function shuffle<T> (a: T[], rand: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

interface Handle { read (offset: number, length: number): Promise<Buffer> }

/**
 * One reader as the kernel reads a file: from `start` (page aligned, so unaligned to chunks), batches of `batch`
 * READ-sized reads in flight at once, issued in shuffled order; the last batch runs past the end of the file.
 * Resolves with the number of reads and every failure or wrong answer, as text.
 */
async function kernelLikeReader (h: Handle, data: Buffer, start: number, batch: number, rand: () => number): Promise<{ reads: number, bad: string[] }> {
  const bad: string[] = []
  let reads = 0
  for (let pos = start; pos < data.length + READ; pos += batch * READ) {
    const offsets = shuffle(Array.from({ length: batch }, (_, i) => pos + i * READ), rand)
    await Promise.all(offsets.map(async off => {
      reads++
      try {
        const got = await h.read(off, READ)
        const want = data.subarray(Math.min(off, data.length), Math.min(off + READ, data.length))
        if (!got.equals(want)) bad.push(`read at ${off}: ${got.length} bytes, expected ${want.length}${got.length === want.length ? ' (content differs)' : ''}`)
      } catch (err) {
        bad.push(`read at ${off} failed: ${(err as Error).message}`)
      }
    }))
  }
  return { reads, bad }
}

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)
  const data = randomBytes(FILE_BYTES)
  await writeFile(path.join(sshd.dataDir, 'large.bin'), data)
  // Answers are held 1–9 ms per chunk: several connections' answers overtake one another.
  const link = await startDelayProxy(sshd.port, 1, { jitterMs: 8 })
  t.teardown(() => link.close())
  const key = (await readFile(sshd.knownHosts, 'utf8')).trim().split(/\s+/).slice(1).join(' ')
  const knownHosts = path.join(t.testdir(), 'known_hosts')
  await writeFile(knownHosts, `[127.0.0.1]:${link.port} ${key}\n`)
  const raw = `sftp://root@127.0.0.1:${link.port}${sshd.dataDir}`
  const b = await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, { sftpKey: sshd.userKey, sftpKnownHosts: knownHosts, sftpConnections: 4 }, { fsxError }) as SftpBackend
  t.teardown(() => b.close())
  await startCpuHog(t)

  const seed = Math.floor(Math.random() * 2 ** 31)

  t.test(`overlapping kernel-like readers share one handle: every read answers the right bytes (seed ${seed})`, async t => {
    const rand = rng(seed)
    const h = await b.open('/large.bin', ro, 0)
    t.teardown(() => h.close())
    const results = await Promise.all(Array.from({ length: 6 }, async (_, i) =>
      await kernelLikeReader(h, data, i * 37 * PAGE, 2 + (i % 3), rand)))
    const bad = results.flatMap(r => r.bad)
    t.same(bad.slice(0, 10), [], `${results.reduce((n, r) => n + r.reads, 0)} reads, ${bad.length} failed or wrong`)
  })

  t.test(`readers on several handles of the file at once, each with its own overlapping readers (seed ${seed + 1})`, async t => {
    const rand = rng(seed + 1)
    const handles = await Promise.all(Array.from({ length: 3 }, async () => await b.open('/large.bin', ro, 0)))
    t.teardown(async () => { for (const h of handles) await h.close() })
    const results = await Promise.all(handles.flatMap((h, k) => Array.from({ length: 3 }, async (_, i) =>
      await kernelLikeReader(h, data, (k * 3 + i) * 29 * PAGE + (i === 2 ? C / 2 : 0), 1 + ((k + i) % 4), rand))))
    const bad = results.flatMap(r => r.bad)
    t.same(bad.slice(0, 10), [], `${results.reduce((n, r) => n + r.reads, 0)} reads, ${bad.length} failed or wrong`)
  })

  t.test('a sequential reader that falls behind another on the same handle still reads every byte', async t => {
    const h = await b.open('/large.bin', ro, 0)
    t.teardown(() => h.close())
    const bad: string[] = []
    const reader = async (start: number, size: number, pauseEvery: number): Promise<void> => {
      let n = 0
      for (let pos = start; pos < data.length; pos += size) {
        try {
          const got = await h.read(pos, size)
          if (!got.equals(data.subarray(pos, Math.min(pos + size, data.length)))) bad.push(`read at ${pos} (${size}): wrong bytes`)
        } catch (err) {
          bad.push(`read at ${pos} (${size}) failed: ${(err as Error).message}`)
        }
        // The slow one yields to the fast one now and then, so the fast one's reads evict chunks behind it.
        if (++n % pauseEvery === 0) await new Promise(resolve => setImmediate(resolve))
      }
    }
    await Promise.all([reader(0, 3 * C + 5 * PAGE, 1_000_000), reader(PAGE, C + 3 * PAGE, 2), reader(7 * PAGE, READ, 1)])
    t.same(bad.slice(0, 10), [], `${bad.length} reads failed or were wrong`)
  })
}
