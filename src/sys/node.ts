/**
 * Sys on Node through koffi (a maintained FFI with prebuilt binaries in its npm package; no compiler needed).
 * Loaded lazily by ./index.ts so nothing pays for it unless it is used. See ./types.ts for the contract.
 */
import { createRequire } from 'node:module'
import { sysError } from './errno.js'
import type { Sys } from './types.js'

const require = createRequire(import.meta.url)
const SYS_openat2 = 437
const AF_UNIX = 1
const SOCK_STREAM = 1
/** Not inherited by children: a child that must have one end gets it dup2'd into place (which clears the flag). */
const SOCK_CLOEXEC = 0o2000000
const SOL_SOCKET = 1
const SCM_RIGHTS = 1

/** NUL-terminated copy of `b`. */
function cstr (b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(b.length + 1)
  out.set(b, 0)
  out[b.length] = 0
  return out
}

export function createNodeSys (): Sys {
  const koffi = require('koffi')
  const libc = koffi.load('libc.so.6')
  // NB: glibc's syscall() is variadic; on x86-64 and arm64 Linux integer/pointer arguments travel in the same
  // registers either way, so a fixed prototype is safe for the calls made here.
  const openat2 = libc.func('long syscall(long nr, int dirfd, const uint8_t *path, const void *how, size_t size)')
  const mknodat = libc.func('int mknodat(int dirfd, const uint8_t *path, uint32_t mode, uint64_t dev)')
  const open = libc.func('int open(const uint8_t *path, int flags, uint32_t mode)')
  const close = libc.func('int close(int fd)')
  const read = libc.func('intptr_t read(int fd, _Out_ uint8_t *buf, size_t n)')
  const write = libc.func('intptr_t write(int fd, const uint8_t *buf, size_t n)')
  const ioctl = libc.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)')
  const mount = libc.func('int mount(const char *src, const char *tgt, const char *type, unsigned long flags, const char *data)')
  const umount2 = libc.func('int umount2(const char *tgt, int flags)')
  const poll = libc.func('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)')
  const socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int32_t *sv)')
  const recvmsg = libc.func('intptr_t recvmsg(int fd, _Inout_ uint8_t *msg, int flags)')
  const errno = (): number => koffi.errno() as number
  const check = (name: string, r: number | bigint): number => {
    const n = Number(r)
    if (n < 0) throw sysError(name, errno())
    return n
  }
  return {
    runtime: 'node',
    openat2 (dirfd, path, flags, mode, resolve) {
      const how = Buffer.alloc(24)
      how.writeBigUInt64LE(BigInt(flags), 0)
      how.writeBigUInt64LE(BigInt(mode), 8)
      how.writeBigUInt64LE(BigInt(resolve), 16)
      return check('openat2', openat2(SYS_openat2, dirfd, cstr(path), how, 24))
    },
    mknodat (dirfd, name, mode, dev) { check('mknodat', mknodat(dirfd, cstr(name), mode, dev)) },
    open (path, flags, mode) { return check('open', open(cstr(path), flags, mode)) },
    close (fd) { check('close', close(fd)) },
    read (fd, buf) { return check('read', read(fd, buf, buf.length)) },
    write (fd, buf) { return check('write', write(fd, buf, buf.length)) },
    ioctl (fd, request, arg) { return check('ioctl', ioctl(fd, request, arg)) },
    mount (source, target, fstype, flags, data) { check('mount', mount(source, target, fstype, flags, data)) },
    umount2 (target, flags) { check('umount2', umount2(target, flags)) },
    poll (fd, events, timeoutMs) {
      const pfd = Buffer.alloc(8)
      pfd.writeInt32LE(fd, 0)
      pfd.writeInt16LE(events, 4)
      const n = check('poll', poll(pfd, 1, timeoutMs))
      return n === 0 ? 0 : pfd.readUInt16LE(6)
    },
    socketpair () {
      const sv = new Int32Array(2)
      check('socketpair', socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
      return [sv[0], sv[1]]
    },
    recvFd (sock) {
      // struct msghdr { name, namelen, iov, iovlen, control, controllen, flags } with pointers into buffers
      // that koffi pins for the call: built as one block whose pointers are filled by koffi.address().
      const data = Buffer.alloc(1)
      const control = Buffer.alloc(24) // CMSG_SPACE(sizeof(int)) on 64-bit
      const iov = Buffer.alloc(16)
      iov.writeBigUInt64LE(BigInt(koffi.address(data)), 0)
      iov.writeBigUInt64LE(1n, 8)
      const msg = Buffer.alloc(56)
      msg.writeBigUInt64LE(BigInt(koffi.address(iov)), 16)
      msg.writeBigUInt64LE(1n, 24)
      msg.writeBigUInt64LE(BigInt(koffi.address(control)), 32)
      msg.writeBigUInt64LE(24n, 40)
      const n = check('recvmsg', recvmsg(sock, msg, 0))
      if (n === 0) return -1
      const len = Number(msg.readBigUInt64LE(40))
      if (len < 20 || control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_RIGHTS) return -1
      return control.readInt32LE(16)
    }
  }
}
