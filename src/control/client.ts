/**
 * Client side of the control protocol, used by `fsx stats`, `fsx mounts`, `fsx flush`…: finds the mount's record,
 * talks to its socket with a deadline, and turns every failure into one readable FsxError. A record whose process
 * is dead is reported and cleaned up.
 */
import net from 'node:net'
import path from 'node:path'
import { rm } from 'node:fs/promises'
import { FsxError } from '../errors.js'
import { listRecords, pidAlive, readRecord, removeRecord, type MountRecord } from '../mount/runtime.js'
import { socketPath, type ControlRequest } from './protocol.js'

/**
 * Sends one request and waits for its response line. A failure the mount answered rejects, unless `answered` is
 * set: then the response itself resolves ({"ok": false, "error": {code, message}}).
 */
export async function request (socket: string, req: ControlRequest, timeoutMs = 10_000, answered = false): Promise<Record<string, unknown>> {
  return await new Promise((resolve, reject) => {
    const conn = net.createConnection(socket)
    let buf = ''
    const timer = setTimeout(() => {
      conn.destroy()
      reject(new FsxError('ETIMEDOUT', `the mount did not answer within ${timeoutMs / 1000}s`))
    }, timeoutMs)
    conn.setEncoding('utf8')
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'))
    conn.on('data', d => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      conn.end()
      try {
        const res = JSON.parse(buf.slice(0, nl))
        if (res.ok || answered) resolve(res)
        else reject(new FsxError(res.error?.code ?? 'EIO', res.error?.message ?? 'control request failed'))
      } catch (err) {
        reject(new FsxError('EIO', `bad answer from the mount: ${(err as Error).message}`))
      }
    })
    conn.on('error', err => {
      clearTimeout(timer)
      reject(new FsxError((err as NodeJS.ErrnoException).code ?? 'EIO', `cannot reach the mount's control socket: ${(err as NodeJS.ErrnoException).code}`))
    })
  })
}

/** The record of the fsx mount at `mountpoint`, or a one-line error (not an fsx mount; process dead: cleaned). */
export async function findMount (mountpoint: string): Promise<MountRecord> {
  const abs = path.resolve(mountpoint)
  const rec = await readRecord(abs)
  if (!rec) throw new FsxError('EINVAL', `${abs} is not an fsx mount`, { hint: 'fsx mounts lists the running mounts' })
  if (!pidAlive(rec.pid)) {
    await removeRecord(abs, rec.pid)
    await rm(socketPath(abs), { force: true })
    throw new FsxError('ESRCH', `the fsx process ${rec.pid} serving ${abs} is dead; its stale record and socket were removed`, {
      hint: `if ${abs} still shows "Transport endpoint is not connected", run fsx unmount ${abs}`
    })
  }
  return rec
}

/** Sends a request to the mount at `mountpoint`. */
export async function ask (mountpoint: string, req: ControlRequest, timeoutMs?: number): Promise<Record<string, unknown>> {
  const rec = await findMount(mountpoint)
  return await request(socketPath(rec.mountpoint), req, timeoutMs)
}

/** Every live mount (dead ones are cleaned up on the way). */
export async function liveMounts (): Promise<MountRecord[]> {
  return await listRecords()
}
