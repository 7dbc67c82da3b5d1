/**
 * The Node reader thread (a worker_threads Worker started by ./transport-node.ts): blocks in read(2) on /dev/fuse
 * and hands each request to the JS thread. Small requests are copied out of the one read buffer; a large one
 * (a WRITE's data) is handed over whole and the buffer replaced, so nothing big is copied twice.
 *
 * Messages: a Uint8Array per request; at the end, { end: errno name }.
 */
import { readSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'

const { fd, bufferBytes } = workerData as { fd: number, bufferBytes: number }
/** Requests up to this size are copied; larger ones take the buffer with them. */
const COPY_MAX = 64 * 1024
let buf = Buffer.allocUnsafeSlow(bufferBytes)

for (;;) {
  let n: number
  try {
    n = readSync(fd, buf, 0, buf.length, null)
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EIO'
    // ENOENT: the request was interrupted before we read it; EINTR/EAGAIN: try again.
    if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue
    parentPort!.postMessage({ end: code })
    break
  }
  if (n === 0) {
    parentPort!.postMessage({ end: 'EOF' })
    break
  }
  if (n <= COPY_MAX) {
    const copy = new Uint8Array(n)
    copy.set(buf.subarray(0, n))
    parentPort!.postMessage(copy, [copy.buffer])
  } else {
    const whole = new Uint8Array(buf.buffer, buf.byteOffset, n)
    parentPort!.postMessage(whole, [buf.buffer as ArrayBuffer])
    buf = Buffer.allocUnsafeSlow(bufferBytes)
  }
}
