/**
 * The kernel engine's transport on Node: /dev/fuse opened with node:fs, requests read by a worker thread
 * (./reader-node.ts), replies written with fs.writeSync, notifications with the asynchronous fs.write (the libuv
 * pool), and mount(2) / ioctl through src/sys (koffi). As root the mount is made with mount(2); otherwise
 * fusermount3 mounts and passes the descriptor back over a unix socket (SCM_RIGHTS). See ./transport.ts.
 */
import { closeSync, openSync, write as writeCb, writeSync, constants as fsConstants } from 'node:fs'
import { spawn } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { FsxError } from '../../errors.js'
import { loadSys, sysUnavailableReason, type Sys } from '../../sys/index.js'
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN } from './abi.js'
import { MOUNT_FLAGS, mountData, mountError, type KernelMountOptions, type Transport } from './transport.js'

const O_CLOEXEC = 0o2000000

export async function createNodeTransport (): Promise<Transport> {
  const sys = await loadSys()
  if (sys === undefined) throw new FsxError('ENOLIBFUSE', `the kernel engine needs system calls fsx could not load: ${sysUnavailableReason() ?? 'unknown'}`, { hint: 'reinstall with npm ci (koffi), or use --engine fuse-native' })
  return new NodeTransport(sys)
}

class NodeTransport implements Transport {
  readonly name = 'node'
  private fd = -1
  private worker?: Worker
  /** With auto_unmount: our end of fusermount3's socket, held open for the mount's life (its close unmounts). */
  private watch = -1

  constructor (private readonly sys: Sys) {}

  async mount (mountpoint: string, opts: KernelMountOptions): Promise<void> {
    if (process.geteuid?.() === 0 && opts.autoUnmount !== true) {
      this.fd = openSync('/dev/fuse', fsConstants.O_RDWR | O_CLOEXEC)
      try {
        this.sys.mount(opts.fsname, mountpoint, `fuse.${opts.subtype}`, MOUNT_FLAGS, mountData(opts, this.fd, 0, 0))
      } catch (err) {
        closeSync(this.fd)
        this.fd = -1
        throw mountError(err, mountpoint)
      }
      return
    }
    const m = await fusermount(this.sys, mountpoint, opts)
    this.fd = m.fd
    this.watch = m.watch
  }

  start (bufferBytes: number, onRequest: (req: Buffer) => void, onEnd: (err?: Error) => void): void {
    // NB: execArgv [] — the reader needs nothing but node:fs: it must not first run the process's --import hooks (a
    // test runner's loaders) while the kernel waits for someone to read INIT.
    const worker = new Worker(new URL('./reader-node.js', import.meta.url), { workerData: { fd: this.fd, bufferBytes }, execArgv: [] })
    this.worker = worker
    let ended = false
    const end = (err?: Error): void => {
      if (ended) return
      ended = true
      onEnd(err)
    }
    worker.on('message', (m: Uint8Array | { end: string }) => {
      if (m instanceof Uint8Array) onRequest(Buffer.from(m.buffer, m.byteOffset, m.byteLength))
      // ENODEV: the filesystem was unmounted (or the connection aborted): the normal end.
      else end(m.end === 'ENODEV' ? undefined : new Error(`reading /dev/fuse failed: ${m.end}`))
    })
    worker.on('error', err => end(err))
    // NB: the reader is what keeps the process alive while it serves (it ends by itself at unmount: ENODEV).
    worker.on('exit', () => end())
  }

  reply (data: Buffer): void {
    try {
      writeSync(this.fd, data)
    } catch (err) {
      const code = (err as { code?: string }).code
      // ENOENT: the request was interrupted and is gone; ENODEV: unmounted meanwhile. Nothing to tell anyone.
      if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') throw err
    }
  }

  async notify (data: Buffer): Promise<string | undefined> {
    return await new Promise(resolve => writeCb(this.fd, data, 0, data.length, null, err => resolve(err ? ((err as { code?: string }).code ?? 'EIO') : undefined)))
  }

  backingOpen (fd: number): number {
    const map = Buffer.alloc(16)
    map.writeInt32LE(fd, 0)
    return this.sys.ioctl(this.fd, FUSE_DEV_IOC_BACKING_OPEN, map)
  }

  backingClose (id: number): void {
    const arg = Buffer.alloc(4)
    arg.writeUInt32LE(id, 0)
    try { this.sys.ioctl(this.fd, FUSE_DEV_IOC_BACKING_CLOSE, arg) } catch { /* the connection is gone */ }
  }

  close (): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd) } catch { /* already closed */ }
      this.fd = -1
    }
    if (this.watch >= 0) {
      try { this.sys.close(this.watch) } catch { /* gone */ }
      this.watch = -1
    }
    // A reader still blocked in read(2) (the connection outlived us) must not keep the process alive.
    this.worker?.unref()
  }
}

/**
 * Mounts through fusermount3 (for users who are not root, and for auto_unmount): it opens /dev/fuse, mounts, and
 * sends the descriptor back over a socketpair (its fd 3, named by _FUSE_COMMFD). With auto_unmount it stays
 * behind, watching the socket: `watch` is our end, to keep open while mounted (-1 otherwise).
 */
async function fusermount (sys: Sys, mountpoint: string, opts: KernelMountOptions): Promise<{ fd: number, watch: number }> {
  const [mine, theirs] = sys.socketpair()
  const o = [`fsname=${opts.fsname.replace(/[,\\]/g, '_')}`, `subtype=${opts.subtype}`, mountData(opts), ...(opts.autoUnmount === true ? ['auto_unmount'] : [])].join(',')
  let stderr = ''
  const child = spawn('fusermount3', ['-o', o, '--', mountpoint], {
    stdio: ['ignore', 'ignore', 'pipe', theirs],
    env: { ...process.env, _FUSE_COMMFD: '3' }
  })
  child.stderr?.on('data', d => { stderr += String(d) })
  const exited = new Promise<number | null>(resolve => {
    child.on('exit', code => resolve(code))
    child.on('error', () => resolve(-1))
  })
  sys.close(theirs)
  // NB: recvmsg blocks this thread until fusermount3 sends the descriptor or exits (closing its end); it takes
  // milliseconds, and this runs before anything is served.
  let fd = -1
  try {
    fd = sys.recvFd(mine)
  } finally {
    if (fd < 0 || opts.autoUnmount !== true) sys.close(mine)
  }
  // With auto_unmount fusermount3 keeps running (it unmounts when our end of the socket closes): don't wait.
  const code = opts.autoUnmount === true && fd >= 0 ? 0 : await exited
  if (fd < 0) {
    const why = stderr.trim().split('\n')[0] || (code === -1 ? 'fusermount3 is not installed' : `fusermount3 exited with ${String(code)}`)
    throw new FsxError(code === -1 ? 'ENOLIBFUSE' : 'EIO', `cannot mount ${mountpoint}: ${why}`, { hint: code === -1 ? 'apt-get install fuse3' : undefined })
  }
  // The watcher (auto_unmount) outlives this call: it must not hold this process open.
  child.stderr?.destroy()
  child.unref()
  return { fd, watch: opts.autoUnmount === true ? mine : -1 }
}
