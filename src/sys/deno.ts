/**
 * Sys on Deno through Deno.dlopen of libc (needs --allow-ffi; `deno run -A` gives it). errno is read through
 * __errno_location() right after each call, on the same thread (every symbol here is synchronous).
 * See ./types.ts for the contract.
 */
import { sysError } from './errno.js'
import type { Sys } from './types.js'

const SYS_openat2 = 437n
const AF_UNIX = 1
const SOCK_STREAM = 1
/** Not inherited by children: a child that must have one end gets it dup2'd into place (which clears the flag). */
const SOCK_CLOEXEC = 0o2000000
const SOL_SOCKET = 1
const SCM_RIGHTS = 1
const enc = new TextEncoder()

/** NUL-terminated copy of `b`. */
function cstr (b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + 1)
  out.set(b, 0)
  return out
}

export function createDenoSys (): Sys {
  const D = (globalThis as any).Deno
  const libc = D.dlopen('libc.so.6', {
    syscall: { parameters: ['i64', 'i32', 'buffer', 'buffer', 'usize'], result: 'i64' },
    mknodat: { parameters: ['i32', 'buffer', 'u32', 'u64'], result: 'i32' },
    open: { parameters: ['buffer', 'i32', 'u32'], result: 'i32' },
    close: { parameters: ['i32'], result: 'i32' },
    read: { parameters: ['i32', 'buffer', 'usize'], result: 'isize' },
    write: { parameters: ['i32', 'buffer', 'usize'], result: 'isize' },
    ioctl: { parameters: ['i32', 'u64', 'buffer'], result: 'i32' },
    mount: { parameters: ['buffer', 'buffer', 'buffer', 'u64', 'buffer'], result: 'i32' },
    umount2: { parameters: ['buffer', 'i32'], result: 'i32' },
    poll: { parameters: ['buffer', 'u64', 'i32'], result: 'i32' },
    socketpair: { parameters: ['i32', 'i32', 'i32', 'buffer'], result: 'i32' },
    recvmsg: { parameters: ['i32', 'buffer', 'i32'], result: 'isize' },
    __errno_location: { parameters: [], result: 'pointer' }
  })
  const f = libc.symbols
  const errno = (): number => new D.UnsafePointerView(f.__errno_location()).getInt32()
  const check = (name: string, r: number | bigint): number => {
    const n = Number(r)
    if (n < 0) throw sysError(name, errno())
    return n
  }
  const s = (text: string): Uint8Array => cstr(enc.encode(text))
  const addr = (b: Uint8Array): bigint => BigInt(D.UnsafePointer.value(D.UnsafePointer.of(b)))
  return {
    runtime: 'deno',
    openat2 (dirfd, path, flags, mode, resolve) {
      const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)])
      return check('openat2', f.syscall(SYS_openat2, dirfd, cstr(path), how, 24n))
    },
    mknodat (dirfd, name, mode, dev) { check('mknodat', f.mknodat(dirfd, cstr(name), mode, BigInt(dev))) },
    open (path, flags, mode) { return check('open', f.open(cstr(path), flags, mode)) },
    close (fd) { check('close', f.close(fd)) },
    read (fd, buf) { return check('read', f.read(fd, buf, BigInt(buf.length))) },
    write (fd, buf) { return check('write', f.write(fd, buf, BigInt(buf.length))) },
    ioctl (fd, request, arg) { return check('ioctl', f.ioctl(fd, BigInt(request), arg)) },
    mount (source, target, fstype, flags, data) { check('mount', f.mount(s(source), s(target), s(fstype), BigInt(flags), s(data))) },
    umount2 (target, flags) { check('umount2', f.umount2(s(target), flags)) },
    poll (fd, events, timeoutMs) {
      const pfd = new Uint8Array(8)
      const dv = new DataView(pfd.buffer)
      dv.setInt32(0, fd, true)
      dv.setInt16(4, events, true)
      const n = check('poll', f.poll(pfd, 1n, timeoutMs))
      return n === 0 ? 0 : dv.getUint16(6, true)
    },
    socketpair () {
      const sv = new Int32Array(2)
      check('socketpair', f.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
      return [sv[0], sv[1]]
    },
    recvFd (sock) {
      const data = new Uint8Array(1)
      const control = new Uint8Array(24)
      const iov = new BigUint64Array([addr(data), 1n])
      const msg = new BigUint64Array(7)
      msg[2] = addr(new Uint8Array(iov.buffer))
      msg[3] = 1n
      msg[4] = addr(control)
      msg[5] = 24n
      const n = check('recvmsg', f.recvmsg(sock, new Uint8Array(msg.buffer), 0))
      if (n === 0) return -1
      const cdv = new DataView(control.buffer)
      if (Number(msg[5]) < 20 || cdv.getInt32(8, true) !== SOL_SOCKET || cdv.getInt32(12, true) !== SCM_RIGHTS) return -1
      return cdv.getInt32(16, true)
    }
  }
}
