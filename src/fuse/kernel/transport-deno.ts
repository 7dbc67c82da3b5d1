/**
 * The kernel engine's transport on Deno: /dev/fuse opened, mounted (mount(2), as root) and written through
 * src/sys (Deno.dlopen), requests read by a web Worker (./reader-deno.ts) blocked in read(2), notifications written
 * by a non-blocking FFI call (Deno runs it on another thread). See ./transport.ts.
 *
 * NB: mounting as a normal user needs fusermount3 to pass the descriptor over a unix socket that the child
 * inherits as its fd 3; Deno's subprocess API cannot hand a child extra descriptors, so under Deno fsx mounts as
 * root only (or use Node).
 */
import { FsxError } from '../../errors.js'
import { loadSys, sysUnavailableReason, type Sys } from '../../sys/index.js'
import { O_CLOEXEC, O_RDWR } from '../../sys/types.js'
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN } from './abi.js'
import { MOUNT_FLAGS, mountData, mountError, type KernelMountOptions, type Transport } from './transport.js'

const D = (globalThis as any).Deno

export async function createDenoTransport (): Promise<Transport> {
  const sys = await loadSys()
  if (sys === undefined) throw new FsxError('ENOLIBFUSE', `the kernel engine needs FFI: ${sysUnavailableReason() ?? 'unknown'}`, { hint: 'run deno with -A (or --allow-ffi)' })
  const lib = D.dlopen('libc.so.6', { write: { parameters: ['i32', 'buffer', 'usize'], result: 'isize', nonblocking: true } })
  return new DenoTransport(sys, lib)
}

class DenoTransport implements Transport {
  readonly name = 'deno'
  private fd = -1
  private worker?: any

  constructor (private readonly sys: Sys, private readonly lib: any) {}

  async mount (mountpoint: string, opts: KernelMountOptions): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new FsxError('ENOFUSE', 'under Deno the kernel engine mounts as root only', { hint: 'run as root, or run fsx with Node for a mount as a normal user' })
    }
    if (opts.autoUnmount === true) {
      throw new FsxError('ECONFIG', 'autoUnmount needs fusermount3, which Deno cannot hand the FUSE descriptor to', { hint: 'run fsx with Node for --auto-unmount' })
    }
    this.fd = this.sys.open(new TextEncoder().encode('/dev/fuse'), O_RDWR | O_CLOEXEC, 0)
    try {
      this.sys.mount(opts.fsname, mountpoint, `fuse.${opts.subtype}`, MOUNT_FLAGS, mountData(opts, this.fd, 0, 0))
    } catch (err) {
      this.sys.close(this.fd)
      this.fd = -1
      throw mountError(err, mountpoint)
    }
  }

  start (bufferBytes: number, onRequest: (req: Buffer) => void, onEnd: (err?: Error) => void): void {
    const worker = new (globalThis as any).Worker(new URL('./reader-deno.js', import.meta.url).href, { type: 'module' })
    this.worker = worker
    let ended = false
    const end = (err?: Error): void => {
      if (ended) return
      ended = true
      onEnd(err)
    }
    worker.onmessage = (e: MessageEvent) => {
      const m = e.data as Uint8Array | { end: string }
      if (m instanceof Uint8Array) onRequest(Buffer.from(m.buffer, m.byteOffset, m.byteLength))
      else end(m.end === 'ENODEV' ? undefined : new Error(`reading /dev/fuse failed: ${m.end}`))
    }
    worker.onerror = (e: ErrorEvent) => { e.preventDefault?.(); end(new Error(e.message)) }
    worker.postMessage({ fd: this.fd, bufferBytes })
  }

  reply (data: Buffer): void {
    try {
      this.sys.write(this.fd, data)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') throw err
    }
  }

  async notify (data: Buffer): Promise<string | undefined> {
    const n = Number(await this.lib.symbols.write(this.fd, data, BigInt(data.length)))
    // NB: errno of a call made on Deno's blocking pool cannot be read here; a failed notification only means the
    // kernel had nothing cached to drop.
    return n < 0 ? 'EIO' : undefined
  }

  backingOpen (fd: number): number {
    const map = new Uint8Array(16)
    new DataView(map.buffer).setInt32(0, fd, true)
    return this.sys.ioctl(this.fd, FUSE_DEV_IOC_BACKING_OPEN, map)
  }

  backingClose (id: number): void {
    const arg = new Uint8Array(4)
    new DataView(arg.buffer).setUint32(0, id, true)
    try { this.sys.ioctl(this.fd, FUSE_DEV_IOC_BACKING_CLOSE, arg) } catch { /* the connection is gone */ }
  }

  close (): void {
    if (this.fd >= 0) {
      try { this.sys.close(this.fd) } catch { /* already closed */ }
      this.fd = -1
    }
    try { this.worker?.terminate() } catch { /* gone */ }
  }
}
