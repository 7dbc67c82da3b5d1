/**
 * The coherence bus over Redis publish/subscribe, with ioredis (maintained, and it runs under Deno's Node
 * compatibility as well as Node): one connection publishes, one is subscribed to the source's channel.
 *
 * - Both reconnect on their own (at once, then every 100 ms more up to 1 s), and the channel is subscribed again
 *   by us at each reconnection (`autoResubscribe` off, so "subscribed" is an event we see, not a guess).
 * - Nothing queues while disconnected (`enableOfflineQueue` off, no retries): a publish that cannot be handed over
 *   rejects at once, and coherence.ts keeps the change for later.
 * - A server that stops answering without closing the connection (frozen, or a network that swallows packets) is
 *   found by a PING every HEARTBEAT_MS that must be answered within COMMAND_TIMEOUT_MS; both connections are then
 *   dropped and made again.
 * - Channel: `fsx:coherence:<db>:<source id>`. Redis channels are not per database, so the URL's database number
 *   is part of the name, as users of `/N` expect.
 * - No secrets: the password comes from its own setting, never from the URL, and `server` has neither.
 */
import type { Bus } from './coherence.js'
import { FsxError } from '../errors.js'

/** How often the publishing connection is pinged, and how long a command may go unanswered. */
const HEARTBEAT_MS = 1000
const COMMAND_TIMEOUT_MS = 2000
const CONNECT_TIMEOUT_MS = 2000

export interface RedisTarget {
  /** redis://[user@]host[:port][/db] or rediss:// (TLS). */
  url: URL
  /** Database number from the URL's path (0 by default). */
  db: number
  /** The URL without password, for logs and stats. */
  server: string
}

/**
 * Parses the `coherence` setting. A password in the URL is refused (it would show in `ps`, logs and `fsx tune`):
 * it belongs in `coherencePassword` / FSX_COHERENCE_PASSWORD. Throws ECONFIG with one line.
 */
export function parseRedisUrl (raw: string): RedisTarget {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new FsxError('ECONFIG', `coherence: "${raw.replace(/\/\/[^@/]*@/, '//…@')}" is not a URL: expected redis://host[:port][/db]`)
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new FsxError('ECONFIG', `coherence: ${url.protocol}// is not supported: expected redis://host[:port][/db] or rediss://`)
  }
  if (url.password !== '') {
    throw new FsxError('ECONFIG', 'coherence: a password in the URL is refused (it would show in ps and logs)', { hint: 'set it with FSX_COHERENCE_PASSWORD instead' })
  }
  if (url.hostname === '') throw new FsxError('ECONFIG', 'coherence: the URL names no host: expected redis://host[:port][/db]')
  const dbText = url.pathname.replace(/^\//, '')
  const db = dbText === '' ? 0 : Number(dbText)
  if (!Number.isInteger(db) || db < 0 || db > 65535) throw new FsxError('ECONFIG', `coherence: "${dbText}" is not a database number`)
  const port = url.port === '' ? 6379 : Number(url.port)
  const user = url.username === '' ? '' : `${url.username}@`
  return { url, db, server: `${url.protocol}//${user}${url.hostname}:${port}/${db}` }
}

/** A Bus on `channel` of the Redis server `target`. ioredis is loaded here, only when coherence is on. */
export async function redisBus (target: RedisTarget, channel: string, password?: string): Promise<Bus> {
  const mod = await import('ioredis')
  const Redis = mod.default as unknown as typeof mod.Redis
  const options = {
    password,
    username: target.url.username === '' ? undefined : decodeURIComponent(target.url.username),
    db: target.db,
    tls: target.url.protocol === 'rediss:' ? {} : undefined,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
    // A wrong password or ACL is not cured by waiting; still, keep trying (it may be fixed server-side).
    reconnectOnError: () => false as const
  }
  const host = target.url.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = target.url.port === '' ? 6379 : Number(target.url.port)
  const pub = new Redis(port, host, options)
  const sub = new Redis(port, host, options)
  let pubReady = false
  let subReady = false
  let heartbeat: ReturnType<typeof setInterval> | undefined
  let closed = false

  return {
    server: target.server,
    start ({ message, state }) {
      const down = (reason?: string): void => state(false, reason)
      const maybeUp = (): void => { if (pubReady && subReady && !closed) state(true) }
      // NB: an 'error' without a listener would throw; the reason is kept for stats and the log.
      const why = (err: Error): string => (err as { code?: string }).code ?? err.message.split('\n')[0]
      pub.on('error', err => down(why(err)))
      sub.on('error', err => down(why(err)))
      pub.on('ready', () => { pubReady = true; maybeUp() })
      pub.on('close', () => { if (pubReady) { pubReady = false; down('connection closed') } })
      sub.on('ready', () => {
        sub.subscribe(channel).then(() => { subReady = true; maybeUp() }, (err: Error) => {
          down(why(err))
          if (!closed) sub.disconnect(true)
        })
      })
      sub.on('close', () => { if (subReady) { subReady = false; down('connection closed') } })
      sub.on('message', (ch: string, raw: string) => { if (ch === channel) message(raw) })
      pub.connect().catch(() => {})
      sub.connect().catch(() => {})
      heartbeat = setInterval(() => {
        if (!pubReady) return
        pub.ping().catch((err: Error) => {
          if (closed) return
          // Unanswered: the server or the link froze. Make both connections again (they then report themselves).
          down(why(err))
          pub.disconnect(true)
          sub.disconnect(true)
        })
      }, HEARTBEAT_MS)
      heartbeat.unref?.()
    },
    async publish (raw: string): Promise<void> {
      await pub.publish(channel, raw)
    },
    async close (): Promise<void> {
      closed = true
      clearInterval(heartbeat)
      pub.disconnect(false)
      sub.disconnect(false)
    }
  }
}
