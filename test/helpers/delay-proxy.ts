/**
 * A link of known latency for tests: a TCP proxy on 127.0.0.1 that forwards to a real server (sshd, s3rver) and holds
 * every chunk for a fixed time in each direction. A request and its answer through it take at least 2 × delayMs more
 * than without it, as over a WAN; bandwidth is not limited (chunks in flight overlap, as on a real link).
 *
 *   const link = await startDelayProxy(sshd.port, 3)   // every round trip ≥ 6 ms longer
 *   link.port                                          // clients connect here instead of the server
 *   await link.close()                                 // the listener and every socket closed
 *   await startDelayProxy(port, 2, { jitterMs: 20 })   // 2–22 ms per chunk: answers of different connections reorder
 *   await startDelayProxy(port, 1, { bytesPerSecond: 2 ** 20 })   // and at most 1 MiB/s each way per connection
 *
 * Invariants:
 * - A chunk is never delivered sooner than delayMs after it arrived, nor before a chunk that arrived ahead of it in
 *   the same direction. NB: Node may fire a timer up to 1 ms early, so the pump checks the clock and waits again.
 * - With `jitterMs`, each chunk waits a random extra 0..jitterMs (still in order within its direction: a TCP stream
 *   cannot reorder, but answers on different connections now arrive in an order unrelated to their requests').
 * - With `bytesPerSecond`, each direction of each connection delivers at most that rate: a chunk is due no sooner
 *   than the previous one's due time plus the time its bytes take at that rate.
 * - A half-close travels in order behind the data (both sides allow half-open sockets); a reset or error on one side
 *   destroys the other at once, as a broken link would.
 * - close() clears every timer and destroys every socket: nothing keeps the test process alive.
 */
import net from 'node:net'

/** Optional shaping of a delayed link. */
export interface LinkShape {
  /** Random extra delay per chunk, 0..jitterMs (default 0). */
  jitterMs?: number
  /** Rate limit per direction of each connection, bytes per second (default: unlimited). */
  bytesPerSecond?: number
}

export interface DelayProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number
  /** Stops listening and destroys every connection. */
  close (): Promise<void>
}

/** One direction of one connection: chunks (or the end, `data` undefined) waiting until `due` (performance.now ms). */
class DelayedPipe {
  private readonly queue: Array<{ due: number, data?: Buffer }> = []
  private timer: NodeJS.Timeout | undefined
  /** Due time of the last chunk queued: no chunk is due before the one ahead of it. */
  private lastDue = 0

  constructor (private readonly from: net.Socket, private readonly to: net.Socket, private readonly delayMs: number, private readonly shape: LinkShape = {}) {
    from.on('data', (data: Buffer) => this.push(data))
    from.on('end', () => this.push(undefined))
  }

  private push (data: Buffer | undefined): void {
    const now = performance.now()
    let due = Math.max(now + this.delayMs + Math.random() * (this.shape.jitterMs ?? 0), this.lastDue)
    const rate = this.shape.bytesPerSecond
    if (rate !== undefined && rate > 0 && data !== undefined) due = Math.max(due, this.lastDue + data.length * 1000 / rate)
    this.lastDue = due
    this.queue.push({ due, data })
    if (this.timer === undefined) this.timer = setTimeout(() => this.pump(), Math.max(1, due - now))
  }

  private pump (): void {
    this.timer = undefined
    const now = performance.now()
    while (this.queue.length > 0 && this.queue[0].due <= now) {
      const { data } = this.queue.shift()!
      if (this.to.destroyed) continue
      if (data === undefined) {
        this.to.end()
      } else if (!this.to.write(data) && !this.from.isPaused()) {
        // Backpressure: stop reading until the far side drains (what is queued still goes out on time).
        this.from.pause()
        this.to.once('drain', () => this.from.resume())
      }
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => this.pump(), Math.max(1, this.queue[0].due - now))
  }

  stop (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
  }
}

/** Starts a proxy to 127.0.0.1:`targetPort` adding `delayMs` to each direction. Close it in the test's teardown. */
export async function startDelayProxy (targetPort: number, delayMs: number, shape: LinkShape = {}): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>()
  const pipes = new Set<DelayedPipe>()
  const track = (s: net.Socket): void => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  }
  const server = net.createServer({ allowHalfOpen: true }, client => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true })
    track(client)
    track(upstream)
    // NB: without TCP_NODELAY small writes would wait for ACKs (Nagle) and add latency the test did not ask for.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const there = new DelayedPipe(client, upstream, delayMs, shape)
    const back = new DelayedPipe(upstream, client, delayMs, shape)
    pipes.add(there)
    pipes.add(back)
    const broken = (): void => {
      there.stop()
      back.stop()
      client.destroy()
      upstream.destroy()
    }
    client.on('error', broken)
    upstream.on('error', broken)
    client.on('close', hadError => { if (hadError) broken() })
    upstream.on('close', hadError => { if (hadError) broken() })
    const done = (): void => {
      if (client.destroyed && upstream.destroyed) { pipes.delete(there); pipes.delete(back) }
    }
    client.on('close', done)
    upstream.on('close', done)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    port,
    async close () {
      closing ??= new Promise<void>(resolve => {
        server.close(() => resolve())
        for (const p of pipes) p.stop()
        for (const s of sockets) s.destroy()
      })
      await closing
    }
  }
}
