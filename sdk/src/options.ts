/**
 * The shape of one settings row. The core's options table (src/config/options.ts) is made of these rows, and a
 * plugin adds its own through its definition's `options`: each row gets a flag, an FSX_* variable, a config and
 * preset key, a line in `fsx tune` and a range check, all from the row.
 *
 * Spelling rule: key `sftpTimeout` ⇔ flag `--sftp-timeout` ⇔ env `FSX_SFTP_TIMEOUT`. A plugin's keys start with
 * its name. Values are held in base units: durations in milliseconds, sizes in bytes.
 *
 * Types only: nothing here exists at run time.
 */

export type OptionKind = 'duration' | 'size' | 'boolean' | 'count' | 'enum' | 'string'

/** One row of the table. */
export interface OptionSpec {
  /** camelCase key used in presets, config files, `tune --json`. */
  key: string
  kind: OptionKind
  /** Default in base units (ms, bytes). */
  default: number | boolean | string | undefined
  /** One line: what it does. */
  help: string
  /** Longer explanation for `tune --explain` and docs. */
  details?: string
  choices?: readonly string[]
  /** Never printed: shown as "(set)" in tune, stats and logs; refused in fstab and systemd-unit options. */
  secret?: boolean
  /** Which part of fsx reads it (for docs): "kernel", "vfs", "fuse", or a backend name. */
  scope: string
  /** Smallest accepted value, base units (ms, bytes, count). Number-valued rows (duration, size, count) have one. */
  min?: number
  /** Largest accepted value, base units. */
  max?: number
  /** 0 is accepted below `min` and turns the feature off (e.g. validateInterval: 0, or 1s to 1h). */
  zeroMeansOff?: boolean
}
