/**
 * The node-id table of the kernel engine: the numbers the kernel knows files by, mapped to names in the VFS's
 * path space.
 *
 * Invariants:
 * 1. Node 1 is the root; it is never forgotten and has no name.
 * 2. Every reply that hands the kernel a node id (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, and each
 *    READDIRPLUS entry with a non-zero id) calls `remember`, which adds one to that node's lookup count before the
 *    reply is written; FORGET and BATCH_FORGET subtract what the kernel says. A node leaves the table when its
 *    count reaches 0. (The kernel keeps a parent's dentry while a child's is alive, so a known node's parents
 *    are known too: `path` always reaches the root.)
 * 3. A (parent, name) pair names at most one node (`byName`). A node whose name goes away (unlink, rmdir, the
 *    target of a rename) leaves `byName` and is marked `detached`, but stays while the kernel holds it: its
 *    open files keep working through the VFS's handles.
 * 4. A name that now holds a different file (another kind, or another backend inode number) gets a new node;
 *    the old one is detached. Node ids are never reused within a mount, so the generation is always 0.
 * 5. Rename moves a node to its new (parent, name); the paths of everything below it follow, because paths are
 *    computed from parent links when asked.
 */

export const ROOT_ID = 1

export interface Node {
  readonly id: number
  parent: number
  /** Name in the parent (fsx's byte-exact string); "" for the root. */
  name: string
  /** Lookups the kernel holds (invariant 2). */
  nlookup: number
  /** File type bits of st_mode (S_IFMT) when known. */
  type: number
  /** Backend inode number, when the backend has them. */
  ino?: number
  /** The name was removed or replaced: no longer reachable by path (invariant 3). */
  detached: boolean
  /** Open file handles on this node (the engine counts them; passthrough and hidden unlinks use it). */
  opens: number
  /** Passthrough: the kernel's backing id for this node while any passthrough open lasts. */
  backingId?: number
  backingRefs: number
  /** Whole-object backends: the hidden name an unlinked-while-open file was moved to, removed at last release. */
  hiddenPath?: string
}

const S_IFMT = 0o170000

export class NodeTable {
  private readonly byId = new Map<number, Node>()
  private readonly byName = new Map<string, Node>()
  private nextId = ROOT_ID + 1

  constructor () {
    this.byId.set(ROOT_ID, { id: ROOT_ID, parent: 0, name: '', nlookup: 1, type: 0o040000, detached: false, opens: 0, backingRefs: 0 })
  }

  /** Nodes in the table (root included). */
  get size (): number { return this.byId.size }

  get (id: number): Node | undefined {
    return this.byId.get(id)
  }

  /** The node (parent, name) names now, if the kernel knows it. */
  child (parent: number, name: string): Node | undefined {
    return this.byName.get(key(parent, name))
  }

  /**
   * The VFS path of a node ("/" for the root), or undefined when the node is unknown or detached (its name is
   * gone: path-based operations on it answer ENOENT / ESTALE).
   */
  path (id: number): string | undefined {
    if (id === ROOT_ID) return '/'
    const parts: string[] = []
    let n = this.byId.get(id)
    while (n !== undefined && n.id !== ROOT_ID) {
      if (n.detached) return undefined
      parts.push(n.name)
      n = this.byId.get(n.parent)
    }
    if (n === undefined) return undefined
    parts.reverse()
    return '/' + parts.join('/')
  }

  /** Path of `name` in directory `parent` (undefined when the parent has no path). */
  childPath (parent: number, name: string): string | undefined {
    const dir = this.path(parent)
    if (dir === undefined) return undefined
    return dir === '/' ? '/' + name : dir + '/' + name
  }

  /**
   * Invariant 2 and 4: the node for (parent, name) holding a file of `mode`'s type (and backend inode `ino`),
   * created if needed, with one more lookup.
   */
  remember (parent: number, name: string, mode: number, ino?: number): Node {
    const k = key(parent, name)
    let n = this.byName.get(k)
    const type = mode & S_IFMT
    if (n !== undefined && (n.type !== type || (ino !== undefined && n.ino !== undefined && n.ino !== ino))) {
      this.detach(n)
      n = undefined
    }
    if (n === undefined) {
      n = { id: this.nextId++, parent, name, nlookup: 0, type, ino, detached: false, opens: 0, backingRefs: 0 }
      this.byId.set(n.id, n)
      this.byName.set(k, n)
    }
    n.nlookup++
    if (ino !== undefined) n.ino = ino
    return n
  }

  /** FORGET: the kernel dropped `count` lookups of `id`. Returns the node if it left the table. */
  forget (id: number, count: number): Node | undefined {
    if (id === ROOT_ID) return undefined
    const n = this.byId.get(id)
    if (n === undefined) return undefined
    n.nlookup -= count
    if (n.nlookup > 0 || n.opens > 0) return undefined
    this.drop(n)
    return n
  }

  /** The name (parent, name) is gone (unlink, rmdir): its node, if any, is detached (invariant 3). */
  removed (parent: number, name: string): Node | undefined {
    const n = this.byName.get(key(parent, name))
    if (n !== undefined) this.detach(n)
    return n
  }

  /** rename(2): the node at (p1, n1) is now at (p2, n2); whatever was at (p2, n2) is detached. */
  renamed (p1: number, n1: string, p2: number, n2: string): void {
    const from = this.byName.get(key(p1, n1))
    const to = this.byName.get(key(p2, n2))
    if (to !== undefined && to !== from) this.detach(to)
    if (from === undefined) return
    this.byName.delete(key(p1, n1))
    from.parent = p2
    from.name = n2
    this.byName.set(key(p2, n2), from)
  }

  /** RENAME_EXCHANGE: the two names swap their nodes. */
  exchanged (p1: number, n1: string, p2: number, n2: string): void {
    const a = this.byName.get(key(p1, n1))
    const b = this.byName.get(key(p2, n2))
    this.byName.delete(key(p1, n1))
    this.byName.delete(key(p2, n2))
    if (a !== undefined) { a.parent = p2; a.name = n2; this.byName.set(key(p2, n2), a) }
    if (b !== undefined) { b.parent = p1; b.name = n1; this.byName.set(key(p1, n1), b) }
  }

  /** A file handle on the node was opened / released; a forgotten node with no opens leaves the table. */
  opened (n: Node): void { n.opens++ }
  released (n: Node): void {
    n.opens--
    if (n.opens <= 0 && n.nlookup <= 0 && n.id !== ROOT_ID) this.drop(n)
  }

  /** Every node (for tests and stats). */
  nodes (): IterableIterator<Node> {
    return this.byId.values()
  }

  private detach (n: Node): void {
    if (!n.detached && this.byName.get(key(n.parent, n.name)) === n) this.byName.delete(key(n.parent, n.name))
    n.detached = true
  }

  private drop (n: Node): void {
    this.byId.delete(n.id)
    if (!n.detached && this.byName.get(key(n.parent, n.name)) === n) this.byName.delete(key(n.parent, n.name))
  }
}

/** The byName key: the parent's number cannot hold ':', so the first ':' splits it unambiguously. */
function key (parent: number, name: string): string {
  return `${parent}:${name}`
}
