/**
 * The kernel features the engine asks for at INIT, in one declarative list beside the settings that decide them.
 * `fsx tune --explain KEY` lists the features a setting turns on or off from here; the session negotiates
 * `wantedFeatures(opts) & what the kernel offers`.
 */
import { Init } from './abi.js'
import type { MountOptions } from '../engine.js'

export interface FeatureOptions extends Pick<MountOptions, 'pageCache'> {
  passthrough: boolean
  writebackCache: boolean
}

export interface Feature {
  /** The INIT flag's name in ./abi.ts. */
  flag: keyof typeof Init
  /** What it buys, in one line. */
  why: string
  /** Settings that decide whether it is asked for (absent: always asked for). */
  settings?: string[]
  when?: (o: FeatureOptions) => boolean
}

export const FEATURES: readonly Feature[] = [
  { flag: 'ASYNC_READ', why: 'several reads of one file in flight at once (readahead overlaps the application)' },
  { flag: 'BIG_WRITES', why: 'WRITE requests larger than one page' },
  { flag: 'MAX_PAGES', why: 'READ and WRITE requests up to 1 MiB (256 pages) instead of 128 KiB', settings: ['maxRead', 'maxWrite'] },
  { flag: 'ATOMIC_O_TRUNC', why: 'open(O_TRUNC) is one OPEN, not OPEN + SETATTR' },
  { flag: 'PARALLEL_DIROPS', why: 'lookups and readdir in one directory run in parallel' },
  { flag: 'ASYNC_DIO', why: 'O_DIRECT reads and writes are submitted in parallel' },
  { flag: 'HANDLE_KILLPRIV_V2', why: 'fsx clears set-id bits itself: no GETXATTR security.capability before writes' },
  { flag: 'DO_READDIRPLUS', why: 'ls -l gets names and attributes in one request: no LOOKUP per entry' },
  { flag: 'READDIRPLUS_AUTO', why: 'the kernel uses READDIRPLUS only when attributes will be wanted' },
  { flag: 'CACHE_SYMLINKS', why: 'readlink answers are kept in the page cache', settings: ['consistency'], when: o => o.pageCache !== 'none' },
  { flag: 'AUTO_INVAL_DATA', why: 'cached pages are dropped when a file\'s size or mtime changes (session, strong)', settings: ['consistency'], when: o => o.pageCache !== 'keep' },
  { flag: 'EXPLICIT_INVAL_DATA', why: 'cached pages stay until fsx says the file changed (eventual)', settings: ['consistency'], when: o => o.pageCache === 'keep' },
  { flag: 'WRITEBACK_CACHE', why: 'the kernel buffers writes and sends them in large batches', settings: ['writebackCache'], when: o => o.writebackCache && !o.passthrough },
  { flag: 'PASSTHROUGH', why: 'reads, writes and mmap of local files go straight to the backing file', settings: ['passthrough'], when: o => o.passthrough },
  { flag: 'SETXATTR_EXT', why: 'setxattr carries its flags in the extended layout' },
  { flag: 'INIT_EXT', why: 'INIT flags beyond bit 31 (needed for passthrough)' }
]

export interface Features {
  flags: bigint
  names: string[]
}

/** What the engine asks the kernel for under these settings. */
export function wantedFeatures (o: FeatureOptions): Features {
  let flags = 0n
  const names: string[] = []
  for (const f of FEATURES) {
    if (f.when !== undefined && !f.when(o)) continue
    flags |= Init[f.flag]
    names.push(f.flag)
  }
  return { flags, names }
}

/** The features a setting decides, for `fsx tune --explain`. */
export function featuresOf (setting: string): readonly Feature[] {
  return FEATURES.filter(f => f.settings?.includes(setting))
}
