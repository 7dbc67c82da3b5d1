/**
 * Open SFTP files and names that change under them (issue 13 item 8): a handle of a file that a rename replaced, or
 * whose name was removed, keeps reaching that file but never reopens whatever now has its name after a reconnect;
 * handles of the renamed file follow it; attributes a listing saw before a rename or a write never answer stat after
 * it.
 */
import t from 'tap'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { sftpBackend, type SftpBackend } from '../../plugins/backend-sftp/dist/index.js'
import { fsxError } from '../../dist/errors.js'
import { startSshd, sshdAvailable, type Sshd } from '../helpers/sshd.js'

const rw = { read: true, write: true, create: false, exclusive: false, truncate: false, append: false }

async function backendFor (sshd: Sshd): Promise<SftpBackend> {
  const raw = sshd.url
  return await sftpBackend.create({ scheme: 'sftp', raw, url: new URL(raw) }, {
    sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts, sftpKeepalive: 0, sftpConnections: 2
  }, { fsxError }) as SftpBackend
}

/**
 * Holds the first answer to a `what` request (e.g. readdir) of backend `b` until `release()`: the server has
 * answered, but the backend goes on only later, as on a busy machine. `reached` resolves once one is held.
 */
function holdFirstAnswer (b: SftpBackend, what: string): { reached: Promise<void>, release: () => void } {
  const host = b as unknown as { req: (...args: unknown[]) => Promise<unknown> }
  const req = host.req.bind(b)
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let reached!: () => void
  const reachedP = new Promise<void>(resolve => { reached = resolve })
  let held = false
  host.req = async (...args: unknown[]) => {
    const value = await req(...args)
    if (args[1] === what && !held) {
      held = true
      reached()
      await gate
    }
    return value
  }
  return { reached: reachedP, release: () => release() }
}

/** Writes 10 bytes and fsyncs: the code of the first failure (write-behind may report it at the fsync). */
async function writeThenSync (h: { write: (o: number, d: Buffer) => Promise<number>, sync: () => Promise<void> }): Promise<string | undefined> {
  try {
    await h.write(0, Buffer.alloc(10, 0xcc))
    await h.sync()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

if (sshdAvailable(t)) {
  const sshd = await startSshd(t)
  const file = (name: string): string => path.join(sshd.dataDir, name)

  t.test('after a reconnect, a handle of a file a rename replaced fails with ESTALE instead of opening the new file', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    await writeFile(file('ra'), Buffer.alloc(1000, 0xaa))
    await writeFile(file('rb'), Buffer.alloc(2000, 0xbb))
    const old = await b.open('/ra', rw, 0)
    const moved = await b.open('/rb', rw, 0)
    t.teardown(async () => { await old.close().catch(() => {}); await moved.close().catch(() => {}) })
    await b.rename('/rb', '/ra')
    t.same(await old.read(0, 10), Buffer.alloc(10, 0xaa), 'before a reconnect the old handle still reads the replaced file')
    await sshd.dropConnections()
    await t.rejects(old.read(0, 10), { code: 'ESTALE' }, 'after it, the replaced file cannot be reopened: ESTALE')
    t.equal(await writeThenSync(old), 'ESTALE', 'nor written (write-behind: the write or the next fsync says so)')
    t.same(await moved.read(0, 10), Buffer.alloc(10, 0xbb), 'the renamed file\'s handle reopens it under its new name')
    await moved.write(0, Buffer.alloc(10, 0xdd))
    await moved.sync()
    const now = await readFile(file('ra'))
    t.equal(now.length, 2000, 'the file at the name is the renamed one')
    t.same(now.subarray(0, 20), Buffer.concat([Buffer.alloc(10, 0xdd), Buffer.alloc(10, 0xbb)]), 'and holds only its own handle\'s writes')
  })

  t.test('after a reconnect, a handle of a removed file fails with ESTALE instead of opening a new file of that name', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    await writeFile(file('gone'), Buffer.alloc(1000, 0x11))
    const h = await b.open('/gone', rw, 0)
    t.teardown(async () => { await h.close().catch(() => {}) })
    await b.remove('/gone')
    await writeFile(file('gone'), Buffer.alloc(500, 0x22))
    t.same(await h.read(0, 10), Buffer.alloc(10, 0x11), 'before a reconnect the handle still reads the removed file')
    await sshd.dropConnections()
    await t.rejects(h.read(0, 10), { code: 'ESTALE' }, 'after it: ESTALE')
    t.equal(await writeThenSync(h), 'ESTALE', 'nor written')
    t.same(await readFile(file('gone')), Buffer.alloc(500, 0x22), 'the new file of that name is untouched')
  })

  t.test('a handle of a replaced file still reads its own writes, not read-ahead from before them', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    const K = 128 * 1024
    const data = Buffer.alloc(16 * K, 0x41)
    await writeFile(file('wa'), data)
    await writeFile(file('wb'), Buffer.alloc(100, 0x42))
    const h = await b.open('/wa', rw, 0)
    t.teardown(async () => { await h.close().catch(() => {}) })
    await b.rename('/wb', '/wa')
    for (let pos = 0; pos < 4 * K; pos += K) await h.read(pos, K) // the window now covers the next chunks
    await h.write(5 * K, Buffer.alloc(K, 0x43))
    t.same(await h.read(4 * K, 2 * K), Buffer.concat([Buffer.alloc(K, 0x41), Buffer.alloc(K, 0x43)]), 'the write is read back')
    t.same(await readFile(file('wa')), Buffer.alloc(100, 0x42), 'the file now at the name is untouched')
  })

  t.test('stat never answers from a listing that overlapped a rename of the name', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    await mkdir(file('ls1'))
    await writeFile(file('ls1/x'), Buffer.alloc(10))
    await writeFile(file('ls1/y'), Buffer.alloc(20))
    const hold = holdFirstAnswer(b, 'readdir')
    const listing = b.list('/ls1')
    await hold.reached // the server listed x (10 bytes) and y (20 bytes)
    await b.rename('/ls1/x', '/ls1/y')
    hold.release()
    t.same((await listing).map(e => e.name).sort(), ['x', 'y'], 'the listing itself is what the server said before')
    t.equal((await b.stat('/ls1/y')).size, 10, 'stat of the target: the renamed file')
    await t.rejects(b.stat('/ls1/x'), { code: 'ENOENT' }, 'stat of the old name: gone')
  })

  t.test('stat never answers from a listing that overlapped a write through a handle closed since', async t => {
    const b = await backendFor(sshd)
    t.teardown(() => b.close())
    await mkdir(file('ls2'))
    await writeFile(file('ls2/z'), Buffer.alloc(10))
    const hold = holdFirstAnswer(b, 'readdir')
    const listing = b.list('/ls2')
    await hold.reached
    const h = await b.open('/ls2/z', rw, 0)
    await h.write(4000, Buffer.alloc(96, 1))
    await h.close()
    hold.release()
    await listing
    t.equal((await b.stat('/ls2/z')).size, 4096, 'the size after the write')
  })
}
