/**
 * SFTP v3 status codes and the helpers that recognise them. The translation to errno lives in the backend
 * (sftp-backend.ts `fail`), because several codes need a follow-up look at the server to be told apart: OpenSSH's
 * sftp-server folds most errnos into FAILURE (EEXIST, ENOTEMPTY, EISDIR, ENOSPC…) and NO_SUCH_FILE (ENOENT,
 * ENOTDIR, ELOOP, EBADF), and sends EINVAL and ENAMETOOLONG as BAD_MESSAGE.
 */

/** SSH_FX_* (draft-ietf-secsh-filexfer-02). */
export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8
} as const

/** The status code of an answer from the server (ssh2 puts it in a numeric `code`), else undefined. */
export function statusOf (err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

/** SSH_FXF_* open flags. */
export const OPEN = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20
} as const

/** Longest name component Linux filesystems accept; the server says ENAMETOOLONG as BAD_MESSAGE. */
export const NAME_MAX = 255
/** Linux PATH_MAX, the terminating NUL included: a longer path is ENAMETOOLONG on the server, sent as BAD_MESSAGE. */
export const PATH_MAX = 4096

/** True when some component of the paths is longer than NAME_MAX bytes. */
export function nameTooLong (...paths: Array<string | undefined>): boolean {
  return paths.some(p => p !== undefined && p.split('/').some(c => Buffer.byteLength(c) > NAME_MAX))
}
