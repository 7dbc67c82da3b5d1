// The kernel engine's wire format (src/fuse/kernel/codec.ts) against byte-exact fixtures. Each fixture is packed
// here field by field from the struct definitions in the kernel's include/uapi/linux/fuse.h (libfuse's
// include/fuse_kernel.h, protocol 7.45), independently of the codec, and compared byte for byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as C from '../../dist/fuse/kernel/codec.js'
import { Op } from '../../dist/fuse/kernel/abi.js'

type Field = ['u16' | 'u32' | 'i32' | 'u64' | 'i64', number | bigint] | ['bytes', Uint8Array]

/** Packs little-endian fields with no implicit padding (the structs are laid out with explicit padding fields). */
function pack (fields: Field[]): Buffer {
  const parts: Buffer[] = []
  for (const [kind, v] of fields) {
    if (kind === 'bytes') { parts.push(Buffer.from(v as Uint8Array)); continue }
    const size = kind === 'u16' ? 2 : kind === 'u32' || kind === 'i32' ? 4 : 8
    const b = Buffer.alloc(size)
    if (kind === 'u16') b.writeUInt16LE(Number(v))
    else if (kind === 'u32') b.writeUInt32LE(Number(v))
    else if (kind === 'i32') b.writeInt32LE(Number(v))
    else if (kind === 'u64') b.writeBigUInt64LE(BigInt(v))
    else b.writeBigInt64LE(BigInt(v))
    parts.push(b)
  }
  return Buffer.concat(parts)
}

/** struct fuse_in_header + arguments, with len filled in. */
function request (opcode: number, unique: bigint, nodeid: number, args: Field[], ids = { uid: 1001, gid: 1002, pid: 4242 }): Buffer {
  const body = pack(args)
  return Buffer.concat([pack([
    ['u32', 40 + body.length], ['u32', opcode], ['u64', unique], ['u64', nodeid],
    ['u32', ids.uid], ['u32', ids.gid], ['u32', ids.pid], ['u16', 0], ['u16', 0]
  ]), body])
}

const cstr = (s: string): Field => ['bytes', Buffer.concat([Buffer.from(s), Buffer.from([0])])]

const stat = {
  kind: 'file' as const, size: 5000, mode: 0o100640, uid: 1001, gid: 1002, nlink: 2,
  atimeMs: 1_700_000_000_123.5, mtimeMs: 1_600_000_000_500, ctimeMs: -1500, ino: 77, blocks: 16, rdev: 0
}

/** struct fuse_attr for `stat` with st_ino `ino`. */
function attr (ino: number): Field[] {
  return [
    ['u64', ino], ['u64', 5000], ['u64', 16],
    ['u64', 1_700_000_000], ['u64', 1_600_000_000], ['i64', -2],
    ['u32', 123_500_000], ['u32', 500_000_000], ['u32', 500_000_000],
    ['u32', 0o100640], ['u32', 2], ['u32', 1001], ['u32', 1002], ['u32', 0], ['u32', 4096], ['u32', 0]
  ]
}

test('the in header decodes with a 64-bit unique, the node id and the caller', () => {
  const r = C.decodeRequest(request(Op.GETATTR, 0x1_0000_0002n, 9, [['u32', 1], ['u32', 0], ['u64', 5]]))
  assert.equal(r.opcode, Op.GETATTR)
  assert.equal(r.unique, 0x1_0000_0002n)
  assert.equal(r.nodeid, 9)
  assert.deepEqual([r.uid, r.gid, r.pid], [1001, 1002, 4242])
  assert.deepEqual(C.getattrIn(r), { flags: 1, fh: 5 })
})

test('a request shorter than its header, its own length, or its opcode\'s struct is a ProtocolError', () => {
  assert.throws(() => C.decodeRequest(Buffer.alloc(20)), C.ProtocolError)
  const whole = request(Op.READ, 1n, 2, [['u64', 1], ['u64', 0], ['u32', 4096], ['u32', 0], ['u64', 0], ['u32', 0], ['u32', 0]])
  assert.throws(() => C.decodeRequest(whole.subarray(0, whole.length - 8)), C.ProtocolError)
  assert.throws(() => C.decodeRequest(request(Op.READ, 1n, 2, [['u64', 1]])), C.ProtocolError)
})

test('INIT in (with flags2) decodes and INIT out packs field for field', () => {
  const r = C.decodeRequest(request(Op.INIT, 2n, 0, [
    ['u32', 7], ['u32', 45], ['u32', 131072], ['u32', 0x7300_0001], ['u32', 0x0000_0020],
    ...Array.from({ length: 11 }, (): Field => ['u32', 0])
  ]))
  const i = C.initIn(r)
  assert.deepEqual([i.major, i.minor, i.maxReadahead], [7, 45, 131072])
  assert.equal(i.flags, 0x7300_0001n | (0x20n << 32n))
  const out = C.initReply(r, { minor: 45, maxReadahead: 65536, flags: (1n << 37n) | 1n, maxBackground: 64, congestionThreshold: 48, maxWrite: 1 << 20, timeGran: 1, maxPages: 256, maxStackDepth: 1 })
  assert.deepEqual(out, Buffer.concat([
    pack([['u32', 16 + 64], ['i32', 0], ['u64', 2n]]),
    pack([
      ['u32', 7], ['u32', 45], ['u32', 65536], ['u32', 1], ['u16', 64], ['u16', 48], ['u32', 1 << 20], ['u32', 1],
      ['u16', 256], ['u16', 0], ['u32', 1 << 5], ['u32', 1], ['u16', 0], ...Array.from({ length: 11 }, (): Field => ['u16', 0])
    ])
  ]))
})

test('LOOKUP names decode as bytes; an entry reply packs entry_out with the attributes', () => {
  const r = C.decodeRequest(request(Op.LOOKUP, 7n, 1, [['bytes', Buffer.from([0x6b, 0x65, 0x65, 0x70, 0xff, 0])]]))
  const { name } = C.cname(r, r.arg)
  assert.equal(name.length, 5)
  assert.equal(Buffer.from(name.slice(0, 4)).toString(), 'keep')
  const out = C.entryReply(r, 12, stat, 77, 5250, 1000)
  assert.deepEqual(out, Buffer.concat([
    pack([['u32', 16 + 128], ['i32', 0], ['u64', 7n]]),
    pack([['u64', 12], ['u64', 0], ['u64', 5], ['u64', 1], ['u32', 250_000_000], ['u32', 0], ...attr(77)])
  ]))
  const neg = C.entryReply(r, 0, undefined, 0, 1000, 0)
  assert.deepEqual(neg, Buffer.concat([
    pack([['u32', 144], ['i32', 0], ['u64', 7n]]),
    pack([['u64', 0], ['u64', 0], ['u64', 1], ['u64', 0], ['u32', 0], ['u32', 0]]),
    Buffer.alloc(88)
  ]), 'a negative entry: node 0, the negative timeout, zeroed attributes')
})

test('an error reply is the header alone with -errno; an attr reply packs fuse_attr_out', () => {
  const r = C.decodeRequest(request(Op.GETATTR, 3n, 5, [['u32', 0], ['u32', 0], ['u64', 0]]))
  assert.deepEqual(C.errorReply(r, 2), pack([['u32', 16], ['i32', -2], ['u64', 3n]]))
  assert.deepEqual(C.attrReply(r, stat, 77, 2500), Buffer.concat([
    pack([['u32', 16 + 104], ['i32', 0], ['u64', 3n]]),
    pack([['u64', 2], ['u32', 500_000_000], ['u32', 0], ...attr(77)])
  ]))
})

test('SETATTR decodes every field of fuse_setattr_in', () => {
  const r = C.decodeRequest(request(Op.SETATTR, 4n, 5, [
    ['u32', 0x1 | 0x8 | 0x20 | 0x40], ['u32', 0], ['u64', 9], ['u64', 123], ['u64', 0],
    ['u64', 10], ['i64', -20], ['u64', 0], ['u32', 1], ['u32', 2], ['u32', 0],
    ['u32', 0o4755], ['u32', 0], ['u32', 1001], ['u32', 1002], ['u32', 0]
  ]))
  assert.deepEqual(C.setattrIn(r), { valid: 0x69, fh: 9, size: 123, atime: 10, mtime: -20, atimensec: 1, mtimensec: 2, mode: 0o4755, uid: 1001, gid: 1002 })
})

test('WRITE data is the bytes after fuse_write_in; a size past the request is a ProtocolError', () => {
  const head: Field[] = [['u64', 3], ['u64', 4096], ['u32', 5], ['u32', 4], ['u64', 0], ['u32', 0], ['u32', 0]]
  const w = C.writeIn(C.decodeRequest(request(Op.WRITE, 5n, 5, [...head, ['bytes', Buffer.from('hello')]])))
  assert.deepEqual({ ...w, data: w.data.toString() }, { fh: 3, offset: 4096, size: 5, writeFlags: 4, data: 'hello' })
  const bad = request(Op.WRITE, 5n, 5, [['u64', 3], ['u64', 0], ['u32', 50], ['u32', 0], ['u64', 0], ['u32', 0], ['u32', 0], ['bytes', Buffer.from('hello')]])
  assert.throws(() => C.writeIn(C.decodeRequest(bad)), C.ProtocolError)
})

test('CREATE, MKNOD, MKDIR, SYMLINK, RENAME2 and LINK decode their structs and names', () => {
  assert.deepEqual(C.createIn(C.decodeRequest(request(Op.CREATE, 1n, 1, [['u32', 0o101], ['u32', 0o644], ['u32', 0o22], ['u32', 0], cstr('f')]))),
    { flags: 0o101, mode: 0o644, umask: 0o22, name: 'f' })
  assert.deepEqual(C.mknodIn(C.decodeRequest(request(Op.MKNOD, 1n, 1, [['u32', 0o20644], ['u32', 0x103], ['u32', 0], ['u32', 0], cstr('c')]))),
    { mode: 0o20644, rdev: 0x103, umask: 0, name: 'c' })
  assert.deepEqual(C.mkdirIn(C.decodeRequest(request(Op.MKDIR, 1n, 1, [['u32', 0o755], ['u32', 0o22], cstr('d')]))), { mode: 0o755, umask: 0o22, name: 'd' })
  assert.deepEqual(C.symlinkIn(C.decodeRequest(request(Op.SYMLINK, 1n, 1, [cstr('l'), cstr('../t')]))), { name: 'l', target: '../t' })
  assert.deepEqual(C.renameIn(C.decodeRequest(request(Op.RENAME2, 1n, 1, [['u64', 8], ['u32', 1], ['u32', 0], cstr('a'), cstr('b')]))),
    { newdir: 8, flags: 1, from: 'a', to: 'b' })
  assert.deepEqual(C.renameIn(C.decodeRequest(request(Op.RENAME, 1n, 1, [['u64', 8], cstr('a'), cstr('b')]))), { newdir: 8, flags: 0, from: 'a', to: 'b' })
  assert.deepEqual(C.linkIn(C.decodeRequest(request(Op.LINK, 1n, 1, [['u64', 33], cstr('h')]))), { oldnodeid: 33, name: 'h' })
  assert.throws(() => C.cname(C.decodeRequest(request(Op.LOOKUP, 1n, 1, [['bytes', Buffer.from('nonul')]])), 40), C.ProtocolError)
})

test('BATCH_FORGET lists its (node, count) pairs', () => {
  const r = C.decodeRequest(request(Op.BATCH_FORGET, 0n, 0, [['u32', 2], ['u32', 0], ['u64', 5], ['u64', 3], ['u64', 6], ['u64', 1]]))
  assert.deepEqual(C.batchForgetIn(r), [{ nodeid: 5, nlookup: 3 }, { nodeid: 6, nlookup: 1 }])
})

test('dirents and direntplus are 8-byte aligned records; one that does not fit is refused', () => {
  const out = Buffer.alloc(80)
  const next = C.writeDirent(out, 0, Buffer.from('abc'), 77, 0o100644, 3)
  assert.equal(next, 32)
  assert.deepEqual(out.subarray(0, 32), Buffer.concat([pack([['u64', 77], ['u64', 3], ['u32', 3], ['u32', 8]]), Buffer.from('abc'), Buffer.alloc(5)]))
  assert.equal(C.writeDirent(out, 32, Buffer.from('x'.repeat(30)), 1, 0o040000, 4), -1, '24 + 30 bytes do not fit in 48')
  const plus = Buffer.alloc(200)
  const end = C.writeDirent(plus, 0, Buffer.from('f'), 77, stat.mode, 9, { nodeid: 12, st: stat, entryMs: 1000, attrMs: 1000 })
  assert.equal(end, C.direntSize(1, true))
  assert.equal(end, 128 + 24 + 8)
  assert.deepEqual(plus.subarray(0, end), Buffer.concat([
    pack([['u64', 12], ['u64', 0], ['u64', 1], ['u64', 1], ['u32', 0], ['u32', 0], ...attr(77)]),
    pack([['u64', 77], ['u64', 9], ['u32', 1], ['u32', 8]]), Buffer.from('f'), Buffer.alloc(7)
  ]))
})

test('notifications carry unique 0 and the code in the error field', () => {
  assert.deepEqual(C.notifyInvalInode(12, 0, 0), pack([['u32', 40], ['i32', 2], ['u64', 0n], ['u64', 12], ['i64', 0], ['i64', 0]]))
  assert.deepEqual(C.notifyInvalEntry(1, 'ab'), Buffer.concat([pack([['u32', 35], ['i32', 3], ['u64', 0n], ['u64', 1], ['u32', 2], ['u32', 0]]), Buffer.from('ab\0')]))
  assert.deepEqual(C.notifyDelete(1, 12, 'ab'), Buffer.concat([pack([['u32', 43], ['i32', 6], ['u64', 0n], ['u64', 1], ['u64', 12], ['u32', 2], ['u32', 0]]), Buffer.from('ab\0')]))
})

test('open, create, write, statfs and xattr-size replies pack their structs', () => {
  const r = C.decodeRequest(request(Op.OPEN, 9n, 5, [['u32', 0], ['u32', 0]]))
  assert.deepEqual(C.openReply(r, 3, 0x80, 5), pack([['u32', 32], ['i32', 0], ['u64', 9n], ['u64', 3], ['u32', 0x80], ['i32', 5]]))
  assert.deepEqual(C.writeReply(r, 4096), pack([['u32', 24], ['i32', 0], ['u64', 9n], ['u32', 4096], ['u32', 0]]))
  assert.deepEqual(C.xattrSizeReply(r, 17), pack([['u32', 24], ['i32', 0], ['u64', 9n], ['u32', 17], ['u32', 0]]))
  const fs = { bsize: 4096, frsize: 4096, blocks: 100, bfree: 50, bavail: 40, files: 10, ffree: 5, favail: 5, namemax: 255 }
  assert.deepEqual(C.statfsReply(r, fs), Buffer.concat([
    pack([['u32', 96], ['i32', 0], ['u64', 9n], ['u64', 100], ['u64', 50], ['u64', 40], ['u64', 10], ['u64', 5], ['u32', 4096], ['u32', 255], ['u32', 4096], ['u32', 0]]),
    Buffer.alloc(24)
  ]))
  const c = C.createReply(r, 12, stat, 77, 1000, 1000, 4, 0x20)
  assert.equal(c.length, 16 + 128 + 16)
  assert.deepEqual(c.subarray(144), pack([['u64', 4], ['u32', 0x20], ['i32', 0]]))
})
