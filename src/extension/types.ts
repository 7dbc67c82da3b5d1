/**
 * The mount-extension contract: what a plugin implements to add behaviour to every mount without the core knowing
 * what it does (the vector index, plugins/vector, is one). A plugin registers a definition through the custom oclif
 * hook event `fsx:mount-extensions` (./registry.ts); for each mount the core calls its `start` with a context, and
 * the extension it returns may
 * - observe committed changes (`onCommit`: a file's write committed, a name removed, a rename), in order;
 * - read the mount's files as the mount serves them (`ctx.files`: through the VFS, so staged and journaled content
 *   is what it reads);
 * - answer control-socket commands (`commands`, served as `<name>.<command>`);
 * - report figures for `fsx stats` and Prometheus (`stats`, `figures`);
 * - take settings rows of its own (`options`, same shape as the core's table: flags, FSX_* env, tune, presets).
 *
 * Invariants:
 * - `onCommit` is called synchronously from the VFS after the change is committed: it must not throw or wait; work
 *   it needs is queued by the extension itself.
 * - An extension never touches the mountpoint: the mount process serves it, so a call on it from there would wait
 *   on itself. `ctx.files` is the way in.
 * - Control commands and figures never carry secrets.
 *
 * This file is types only: plugins import it with `import type`, so nothing here exists at run time.
 */
import type { DirEntry, Stat } from '../backend/types.js'
import type { VfsChange } from '../vfs/vfs.js'

export type { VfsChange }

/** The mount's files, as the mount serves them (through its VFS and caches). Paths are absolute in the mount. */
export interface MountFiles {
  /** Attributes (lstat), with what this mount has staged or journaled and the backend does not know yet. */
  stat(path: string): Promise<Stat>
  /** A directory's entries, with attributes where the listing had them. */
  list(path: string): Promise<DirEntry[]>
  /** The whole content of a file; a file over `maxBytes` fails with EFBIG (without reading it all). */
  read(path: string, maxBytes?: number): Promise<Buffer>
}

/** Helpers the core hands to extensions, so they need no run-time import of the core. */
export interface ExtensionKit {
  /** Builds an error carrying an errno `code`, like Node's own. */
  fsxError(code: string, message: string, extra?: { path?: string; op?: string; cause?: unknown; hint?: string }): Error
}

/** What `start` is given for one mount. */
export interface MountExtensionContext {
  /** Every resolved setting in base units (ms, bytes), the core's and every plugin's. */
  settings: Readonly<Record<string, unknown>>
  /** Absolute mountpoint. */
  mountpoint: string
  /** The backend's secret-free description, e.g. "s3://bucket/prefix". */
  source: string
  /**
   * A directory of this extension's own for this source, kept across mounts and restarts:
   * `<cacheDir>/extensions/<name>/<source id>`. Created before `start`.
   */
  stateDir: string
  files: MountFiles
  /** One line to the mount's log. */
  log(line: string): void
  kit: ExtensionKit
}

/** Figures for `fsx stats --json` and Prometheus: numbers, or one level of named numbers. */
export type ExtensionFigures = Record<string, number | Record<string, number>>

/** How a figure is described to Prometheus: `fsx_<extension>_<figure in snake case>`. */
export interface FigureDescription {
  help: string
  /** For a nested figure: the label its keys are given under (default "key"), e.g. "quantile". */
  label?: string
}

/** A control-socket command: the request's fields in, an answer object out (errors carry an errno `code`). */
export type ExtensionCommand = (request: Record<string, unknown>) => Promise<Record<string, unknown>>

/** A started extension, for one mount. */
export interface MountExtension {
  /** A change made through the mount was committed. Synchronous; must not throw or wait. */
  onCommit?(change: VfsChange): void
  /** Control commands, served as `<definition name>.<key>`. */
  commands?: Record<string, ExtensionCommand>
  /** Live figures; the same keys at every call. */
  stats?(): ExtensionFigures
  /** Prometheus descriptions of the figures, by key (a figure without one is still exported, its key as help). */
  figures?: Record<string, FigureDescription>
  /** The mount is stopping (clean unmount): save what must survive. Not called when the process is killed. */
  close?(): Promise<void>
}

/** What a plugin registers: a plain definition object. */
export interface MountExtensionDefinition {
  /** Short name, e.g. "vector": names its commands, figures and state directory. Lowercase letters and digits. */
  name: string
  /** One line shown in docs. */
  summary: string
  /** Settings rows of its own (FSX_* env, flags, tune, presets), same shape as the core's options table. */
  options?: import('../config/options.js').OptionSpec[]
  /** Whether this mount wants the extension (its settings turn it on); when false, nothing is made for it. Default true. */
  enabled?(settings: Readonly<Record<string, unknown>>): boolean
  /**
   * Called once per mount that wants it, before the FUSE engine serves it; resolves with the running extension, or undefined when
   * its settings leave it off for this mount. A rejection fails the mount with its message.
   */
  start(ctx: MountExtensionContext): Promise<MountExtension | undefined>
}

/** The payload of the `fsx:mount-extensions` hook: plugins call `register` once per definition. */
export interface MountExtensionHookOptions {
  register(def: MountExtensionDefinition): void
}
