/**
 * The Deno reader thread (a web Worker started by ./transport-deno.ts): blocks in read(2) on /dev/fuse through
 * Deno.dlopen and hands each request to the JS thread, errno read on this same thread. Same protocol as
 * ./reader-node.ts: a Uint8Array per request; at the end, { end: errno name }.
 */
import { errnoName } from '../../sys/errno.js'

const D = (globalThis as any).Deno
const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null, postMessage: (m: unknown, t?: Transferable[]) => void, close: () => void }
const COPY_MAX = 64 * 1024

scope.onmessage = (e: MessageEvent) => {
  const { fd, bufferBytes } = e.data as { fd: number, bufferBytes: number }
  scope.onmessage = null
  const libc = D.dlopen('libc.so.6', {
    read: { parameters: ['i32', 'buffer', 'usize'], result: 'isize' },
    __errno_location: { parameters: [], result: 'pointer' }
  })
  const errno = (): number => new D.UnsafePointerView(libc.symbols.__errno_location()).getInt32()
  let buf = new Uint8Array(bufferBytes)
  for (;;) {
    const n = Number(libc.symbols.read(fd, buf, BigInt(buf.length)))
    if (n < 0) {
      const code = errnoName(errno())
      if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue
      scope.postMessage({ end: code })
      break
    }
    if (n === 0) {
      scope.postMessage({ end: 'EOF' })
      break
    }
    if (n <= COPY_MAX) {
      const copy = buf.slice(0, n)
      scope.postMessage(copy, [copy.buffer])
    } else {
      const whole = new Uint8Array(buf.buffer, 0, n)
      scope.postMessage(whole, [buf.buffer])
      buf = new Uint8Array(bufferBytes)
    }
  }
  libc.close()
  scope.close()
}
