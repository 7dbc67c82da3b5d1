/**
 * The per-mount control server: a unix socket (mode 0600, in the runtime directory) answering the control protocol.
 * Handlers are async and never touch the mountpoint itself (this process serves FUSE: a call on its own mount from
 * here would deadlock).
 */
import net from 'node:net'
import { chmod, mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { ControlRequest, ControlResponse } from './protocol.js'

export type Handler = (req: ControlRequest) => Promise<Record<string, unknown>>

export class ControlServer {
  private server?: net.Server

  constructor (readonly socket: string, private readonly handlers: Record<string, Handler>) {}

  async start (): Promise<void> {
    await mkdir(path.dirname(this.socket), { recursive: true, mode: 0o700 })
    await rm(this.socket, { force: true })
    this.server = net.createServer(conn => this.serve(conn))
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(this.socket, () => resolve())
    })
    await chmod(this.socket, 0o600)
    this.server.unref()
  }

  private serve (conn: net.Socket): void {
    let buf = ''
    conn.setEncoding('utf8')
    conn.on('error', () => {})
    conn.on('data', chunk => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        void this.answer(line).then(res => { if (!conn.destroyed) conn.write(JSON.stringify(res) + '\n') })
      }
    })
  }

  private async answer (line: string): Promise<ControlResponse> {
    let req: ControlRequest
    try {
      req = JSON.parse(line)
    } catch {
      return { ok: false, error: { code: 'EINVAL', message: 'request is not JSON' } }
    }
    const h = this.handlers[req.cmd]
    if (!h) return { ok: false, error: { code: 'EINVAL', message: `unknown command "${String(req.cmd)}"` } }
    try {
      return { ok: true, ...await h(req) }
    } catch (err) {
      const e = err as { code?: string, message?: string }
      return { ok: false, error: { code: e.code ?? 'EIO', message: e.message ?? String(err) } }
    }
  }

  async stop (): Promise<void> {
    await new Promise<void>(resolve => this.server ? this.server.close(() => resolve()) : resolve())
    await rm(this.socket, { force: true })
  }
}
