/**
 * The mount lifecycle, as a library (the `mount` command only turns argv into a MountRequest):
 * preflight (mountpoint checks, stale-mount clearing, FUSE availability), backend creation, VFS, engine mount,
 * state record, and a clean stop (flush, unmount, release) on signal or when unmounted from outside.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { FsxError } from '../errors.js'
import type { Backend, SourceUrl } from '../backend/types.js'
import type { BackendRegistry } from '../backend/registry.js'
import type { ResolvedSettings } from '../config/resolve.js'
import { settingValues } from '../config/resolve.js'
import { loadEngine, type MountOptions, type MountedFs } from '../fuse/engine.js'
import { Vfs } from '../vfs/vfs.js'
import { parseRedisUrl, redisBus } from '../vfs/coherence-redis.js'
import { mountAt } from './mountinfo.js'
import { createBackend } from './backend.js'
import { defaultCacheDir, removeRecord, writeRecord } from './runtime.js'
import { MountMetrics } from '../control/metrics.js'
import { ControlServer } from '../control/server.js'
import { socketPath } from '../control/protocol.js'
import { buildRegistry, parseAddr, serveMetrics } from '../control/prometheus.js'
import { ExtensionHost } from '../extension/host.js'
import type { ExtensionRegistry } from '../extension/registry.js'

export interface MountRequest {
  source: SourceUrl
  mountpoint: string
  resolved: ResolvedSettings
  registry: BackendRegistry
  log: (line: string) => void
  engine?: string
  logFile?: string
  /** HOST:PORT for the Prometheus endpoint, if wanted. */
  metricsAddr?: string
  /** Mount extensions from plugins (`fsx:mount-extensions`), started for this mount. */
  extensions?: ExtensionRegistry
}

export interface RunningMount {
  mountpoint: string
  /** The FUSE engine serving it ("kernel", "fuse-native"). */
  engine: string
  backend: Backend
  vfs: Vfs
  metrics: MountMetrics
  /** URL of the Prometheus endpoint, when one is served. */
  metricsUrl?: string
  /** Flushes open files, unmounts (lazily if busy and `force`), releases the backend. */
  stop (opts?: { force?: boolean }): Promise<void>
  /** Resolves when the mount is gone (stopped here, or unmounted from outside). */
  done: Promise<void>
}

/**
 * Checks the mountpoint; clears a stale FUSE mount (ENOTCONN) left by a killed process. Every refusal is an
 * environment error (exit 4): EMOUNTPOINT (missing, not a directory, unusable), EMOUNTED, ESTALE_MOUNT.
 */
export async function preflightMountpoint (mountpoint: string, log: (l: string) => void): Promise<void> {
  let st
  try {
    st = await stat(mountpoint)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      const { unmountPath } = await import('../fuse/unmount.js')
      try {
        await unmountPath(mountpoint, true)
      } catch (e) {
        throw new FsxError('ESTALE_MOUNT', `${mountpoint} holds a dead FUSE mount that could not be cleared: ${(e as Error).message}`, {
          hint: `run: fusermount -uz ${mountpoint} (or umount -l as root)`
        })
      }
      log(`cleared a stale mount at ${mountpoint} left by a process that died`)
      st = await stat(mountpoint)
    } else if (code === 'ENOENT') {
      throw new FsxError('EMOUNTPOINT', `mountpoint ${mountpoint} does not exist`, { hint: `create it: mkdir -p ${mountpoint}`, cause: err })
    } else {
      throw new FsxError('EMOUNTPOINT', `mountpoint ${mountpoint} is not usable: ${code ?? (err as Error).message}`, { cause: err })
    }
  }
  if (!st.isDirectory()) throw new FsxError('EMOUNTPOINT', `mountpoint ${mountpoint} is not a directory`, { hint: 'mount on an empty directory' })
  const m = await mountAt(mountpoint)
  if (m) {
    throw new FsxError('EMOUNTED', `${mountpoint} is already mounted (${m.fstype} from ${m.source})`, { hint: `unmount it first: fsx unmount ${mountpoint}` })
  }
}

/**
 * Kernel options from resolved settings. `kernelPermissions` is what default_permissions is when the user did not
 * set it: on for an allow_other mount whose backend records owners (the kernel then checks mode/uid/gid for
 * every local user, as on a local filesystem), off otherwise (the backend's own account decides, as with sshfs).
 */
export function mountOptionsFrom (values: Record<string, unknown>, fsname: string, useIno: boolean, kernelPermissions = false): MountOptions {
  const consistency = values.consistency as string
  return {
    fsname,
    subtype: 'fsx',
    attrTtlMs: values.attrTtl as number,
    entryTtlMs: values.entryTtl as number,
    negativeTtlMs: values.negativeTtl as number,
    readaheadBytes: values.readahead as number,
    maxReadBytes: values.maxRead as number,
    maxWriteBytes: values.maxWrite as number,
    pageCache: consistency === 'strong' ? 'none' : consistency === 'eventual' ? 'keep' : 'auto',
    allowOther: values.allowOther as boolean,
    defaultPermissions: (values.defaultPermissions as boolean | undefined) ?? ((values.allowOther as boolean) && kernelPermissions),
    autoUnmount: values.autoUnmount as boolean,
    useIno,
    opTimeoutMs: values.opTimeout as number,
    debug: process.env.FSX_FUSE_DEBUG === '1',
    passthrough: values.passthrough as boolean | undefined,
    writebackCache: values.writebackCache as boolean | undefined
  }
}

/** How long a mount waits for the coherence server at start before it goes on without it (and keeps trying). */
const COHERENCE_WAIT_MS = 5000

export async function startMount (req: MountRequest): Promise<RunningMount> {
  const mountpoint = path.resolve(req.mountpoint)
  const values = settingValues(req.resolved)
  // The kernel already applied the application's umask to create/mkdir modes; ours must not mask them again.
  process.umask(0)
  // A malformed coherence URL is a configuration error, found before anything is mounted or connected.
  const coherence = typeof values.coherence === 'string' && values.coherence !== '' ? parseRedisUrl(values.coherence) : undefined
  await preflightMountpoint(mountpoint, req.log)
  // FUSE availability is checked before any backend connection is made.
  const engine = await loadEngine(req.engine ?? (values.engine as string | undefined) ?? 'auto', req.log)

  // Failures to reach or open the source are backend errors (exit 5), whatever the scheme.
  const backend = await createBackend(req.registry, req.source, values)
  backend.setLog?.(req.log)
  let mounted: MountedFs | undefined
  let extensions: ExtensionHost | undefined
  let vfsMade: Vfs | undefined
  try {
    const rootStat = await backend.stat('/').catch(err => {
      throw new FsxError('EBACKEND', `source ${backend.description}: cannot read its root: ${(err as Error).message}`, { cause: err })
    })
    if (rootStat.kind !== 'dir') throw new FsxError('EBACKEND', `source ${backend.description} is not a directory`)
    const vfs = new Vfs(backend, {
      writeback: values.writeback as boolean,
      xattrs: values.xattrs as boolean | undefined,
      consistency: values.consistency as 'strong' | 'session' | 'eventual',
      xattrCacheSize: values.xattrCacheSize as number,
      xattrCacheTtlMs: values.xattrCacheTtl as number,
      attrCacheSize: values.attrCacheSize as number,
      attrCacheTtlMs: values.attrCacheTtl as number,
      dirCacheSize: values.dirCacheSize as number,
      dirCacheTtlMs: values.dirCacheTtl as number,
      negativeCacheSize: values.negativeCacheSize as number,
      negativeCacheTtlMs: values.negativeCacheTtl as number,
      dataCacheSize: values.dataCacheSize as number,
      dataCacheMemory: values.dataCacheMemory as number,
      dataCacheSmallFile: values.dataCacheSmallFile as number,
      dataCachePolicy: values.dataCachePolicy as 'lru' | 'lfu' | 'ttl' | 'hybrid',
      dataCacheTtlMs: values.dataCacheTtl as number,
      prefetchMaxBytes: values.prefetchMax as number,
      memoryBudgetBytes: values.memoryBudget as number,
      writebackDirtyMaxBytes: values.writebackDirtyMax as number,
      writebackDelayMs: values.writebackDelay as number,
      staleIfErrorMs: values.staleIfError as number,
      validateIntervalMs: values.validateInterval as number,
      opTimeoutMs: values.opTimeout as number,
      log: req.log,
      cacheDir: (values.cacheDir as string | undefined) ?? defaultCacheDir(),
      coherence: coherence === undefined
        ? undefined
        : async id => await redisBus(coherence, `fsx:coherence:${coherence.db}:${id}`, values.coherencePassword as string | undefined)
    })
    // Extensions start before the engine serves, so they hear every commit made through the mount.
    extensions = await ExtensionHost.start(req.extensions, { vfs, settings: values, mountpoint, cacheDir: vfs.opts.cacheDir, log: req.log })
    const ext = extensions
    vfsMade = vfs
    // Coherence connects while the kernel mount is made; the wait for it is below.
    const peers = coherence === undefined ? undefined : vfs.connectPeers(COHERENCE_WAIT_MS)
    // NB: awaited below, after the kernel mount; a failure meanwhile must not count as an unhandled rejection.
    peers?.catch(() => {})
    for (const line of backend.notices?.() ?? []) req.log(line)
    // default_permissions: the user's choice if they made one, else on for allow_other over a backend with owners.
    const dpExplicit = req.resolved.settings.defaultPermissions?.source !== undefined && req.resolved.settings.defaultPermissions.source !== 'default'
    const opts = {
      ...mountOptionsFrom({ ...values, defaultPermissions: dpExplicit ? values.defaultPermissions : undefined },
        `fsx:${backend.description}`, rootStat.ino !== undefined, backend.capabilities.owners === true),
      log: req.log
    }
    const metrics = new MountMetrics({ mountpoint, source: backend.description, preset: req.resolved.preset.name }, vfs, backend)
    // The extensions' figures are registered with the Prometheus registry below, so they are known first.
    metrics.extensions = ext
    // Before the engine mounts, so that the duration histogram sees every operation (its _count = fsx_ops_total).
    if (req.metricsAddr) parseAddr(req.metricsAddr)
    const promRegistry = req.metricsAddr ? buildRegistry(metrics) : undefined
    mounted = await engine.mount(mountpoint, vfs, opts, {
      onOp: (op, ms, errno) => metrics.record(op, ms, errno),
      onUnexpected: (op, err) => req.log(`unexpected error in ${op}: ${(err as Error)?.stack ?? String(err)}`)
    })
    metrics.engineStats = mounted.stats
    if (coherence !== undefined && !await peers!) {
      req.log(`coherence: ${coherence.server} does not answer yet: changes made by other mounts are seen when TTLs expire until it does`)
    }
    const control = new ControlServer(socketPath(mountpoint), {
      ping: async () => ({ pid: process.pid }),
      stats: async () => ({ mount: metrics.snapshot() }),
      invalidate: async (r) => {
        const paths = Array.isArray(r.paths) && r.paths.length > 0 ? r.paths.map(String) : ['/']
        for (const p of paths) vfs.invalidate(p)
        return { invalidated: paths }
      },
      pin: async (r) => {
        const paths = Array.isArray(r.paths) ? r.paths.map(String) : []
        const supported = await vfs.pin(paths, r.unpin !== true)
        return { supported, paths }
      },
      cached: async (r) => ({ bytes: await vfs.cachedBytes(Array.isArray(r.paths) ? r.paths.map(String) : []) }),
      flush: async () => {
        const failed = await vfs.drain()
        if (failed > 0) throw new FsxError('EIO', `${failed} open file(s) could not be flushed`)
        return { writeback: metrics.snapshot().writeback }
      },
      settings: async () => ({
        preset: req.resolved.preset.name,
        settings: Object.fromEntries(req.resolved.specs.map(spec => [spec.key, spec.secret && values[spec.key] !== undefined ? '(set)' : values[spec.key] ?? null]))
      }),
      ...ext.commands()
    })
    await control.start()
    const prom = req.metricsAddr && promRegistry ? await serveMetrics(req.metricsAddr, promRegistry) : undefined
    if (prom) req.log(`metrics at ${prom.url}`)
    await writeRecord({
      pid: process.pid,
      mountpoint,
      source: backend.description,
      preset: req.resolved.preset.name,
      startedAt: new Date().toISOString(),
      logFile: req.logFile
    })

    let resolveDone!: () => void
    const done = new Promise<void>(resolve => { resolveDone = resolve })
    let stopping: Promise<void> | undefined
    const m = mounted
    const finish = async (): Promise<void> => {
      clearInterval(watch)
      await control.stop().catch(() => {})
      await prom?.close().catch(() => {})
      await ext.close()
      await vfs.close().catch(err => req.log(`closing backend: ${(err as Error).message}`))
      await removeRecord(mountpoint).catch(() => {})
      resolveDone()
    }
    // Notice an unmount done from outside (fusermount -u, fsx unmount, umount) without generating FUSE traffic.
    // NB: the watch keeps the process alive (it is cleared by finish()). Once the kernel ends the connection the
    // engine holds nothing, and an unref'd watch let a foreground `fsx mount` die with Node's exit code 13 (top-level
    // await never settled) instead of finishing cleanly with 0: systemd's ExecStop then saw the service fail.
    const watch = setInterval(() => {
      if (stopping) return
      mountAt(mountpoint).then(entry => {
        if (!entry && !stopping) {
          req.log(`${mountpoint} was unmounted`)
          stopping = m.unmount().catch(() => {}).then(finish)
        }
      }, () => {})
    }, 1000)

    return {
      mountpoint,
      engine: engine.name,
      backend,
      vfs,
      metrics,
      metricsUrl: prom?.url,
      done,
      stop: async (o = {}) => {
        if (stopping) return await stopping
        stopping = (async () => {
          const errors = await vfs.flushAll()
          if (errors > 0) req.log(`${errors} open file(s) could not be flushed before unmount`)
          try {
            await m.unmount()
          } catch (err) {
            if ((err as FsxError).code === 'EBUSY' && o.force) {
              req.log(`${mountpoint} is busy; detaching it lazily`)
              const { unmountPath } = await import('../fuse/unmount.js')
              await unmountPath(mountpoint, true)
            } else {
              stopping = undefined
              throw err
            }
          }
          await finish()
        })()
        return await stopping
      }
    }
  } catch (err) {
    if (mounted) await mounted.unmount().catch(() => {})
    await extensions?.close()
    await vfsMade?.disconnectPeers().catch(() => {})
    await backend.close().catch(() => {})
    throw err
  }
}
