/**
 * A bounded record of which paths changed lately, in order: "has `p` changed since sequence number `s`?".
 *
 * Why: an open file of a backend with server-side handles (SFTP) reads through the data cache only while nothing
 * has changed its path since it was opened (a write through another handle of this mount, a truncate, an unlink, a
 * change a peer mount announced over coherence). After such a change it reads through its own server handle, which
 * orders reads after every acknowledged write (plugins/backend-sftp/src/file-handle.ts). Asking at every read is
 * cheaper than finding every open handle of a path at every change, and needs nothing re-keyed at a rename.
 *
 * Invariants:
 * - Never a false "unchanged": a path's answer is true if any change of it, or of an ancestor recorded as a tree
 *   change, has a sequence number above `since`. Entries forgotten to stay under the cap raise `floor`, and every
 *   path counts as changed at `floor`, so forgetting only ever turns answers to "changed".
 * - O(depth of the path) per question, O(1) per change (amortised), at most `cap` entries per kind.
 */

/** Default number of remembered paths per kind: about 100 bytes each. */
const DEFAULT_CAP = 10_000

export class ChangeLog {
  private n = 0
  /** Every path counts as changed at this sequence number (entries below it were forgotten). */
  private floor = 0
  private readonly paths = new Map<string, number>()
  private readonly trees = new Map<string, number>()

  constructor (private readonly cap = DEFAULT_CAP) {}

  /** The sequence number of the last change recorded; take it before an open, ask `since` with it later. */
  get seq (): number { return this.n }

  /** Records a change of `p` (with `tree`, of everything below it too). */
  note (p: string, tree = false): void {
    const m = tree ? this.trees : this.paths
    const s = ++this.n
    m.delete(p)
    m.set(p, s)
    if (m.size > this.cap) {
      // The oldest goes (Map iterates in insertion order); what it said is kept, coarsely, in `floor`.
      const [oldest, at] = m.entries().next().value as [string, number]
      m.delete(oldest)
      this.floor = Math.max(this.floor, at)
    }
  }

  /** True when `p` may have changed after sequence number `since`. */
  since (p: string, since: number): boolean {
    if (this.floor > since) return true
    if (since >= this.n) return false
    if ((this.paths.get(p) ?? 0) > since) return true
    if (this.trees.size === 0) return false
    for (let q = p; ; q = q.slice(0, Math.max(1, q.lastIndexOf('/')))) {
      if ((this.trees.get(q) ?? 0) > since) return true
      if (q === '/') return false
    }
  }
}
