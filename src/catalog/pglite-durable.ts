// PGlite on disk with its commits made durable.
//
// PGlite starts PostgreSQL with fsync off (`-F` in PGlite.defaultStartParams), and the
// Emscripten file system it runs on in Node (NODEFS) answers fsync and fdatasync
// without calling the kernel: a commit reaches the page cache and survives a crash of
// the process, not of the machine. The catalog's commit is what acknowledges a write
// (an object exists once its row is committed), so here PostgreSQL runs with fsync on,
// with `wal_sync_method=fsync` (Emscripten's fdatasync is a no-op it cannot reach), and
// NODEFS's fsync calls the kernel's fdatasync (fsync for a directory): a COMMIT is
// answered once its WAL is on disk, and a checkpoint once the data files it wrote are —
// what PostgreSQL does on any disk.
// A freshly created database is extracted into the directory by PGlite outside
// PostgreSQL's knowledge: its files are synced once, before the first use.
import fs from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { NodeFS } from '@electric-sql/pglite/nodefs'

/** The subset of an Emscripten NODEFS stream the sync needs. */
interface NodeFsStream {
  nfd?: number
  node: unknown
}

interface NodeFsModule {
  FS: { filesystems: { NODEFS: { stream_ops: Record<string, unknown>; realPath(node: unknown): string } } }
}

/** Counts the file syncs the database asked for (tests check a commit makes one). */
export interface SyncCounter {
  syncs: number
}

/** Mounts the directory like PGlite's NodeFS, with NODEFS's fsync calling the kernel's. */
class SyncingNodeFS extends NodeFS {
  constructor(
    directory: string,
    private readonly counter: SyncCounter,
  ) {
    super(directory)
  }

  override async init(...args: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    const { emscriptenOpts } = await super.init(...args)
    const counter = this.counter
    const preRun = [
      ...((emscriptenOpts.preRun as ((module: NodeFsModule) => void)[] | undefined) ?? []),
      (module: NodeFsModule) => {
        const nodefs = module.FS.filesystems.NODEFS
        nodefs.stream_ops.fsync = (stream: NodeFsStream) => {
          counter.syncs++
          if (typeof stream.nfd === 'number') {
            // A file: its data and the metadata needed to read it (its size), which is all
            // PostgreSQL needs (its default on Linux is fdatasync for the WAL); an mtime-only
            // change costs no journal commit.
            fs.fdatasyncSync(stream.nfd)
          } else {
            // A directory (PostgreSQL syncs one after creating or renaming a file in it): NODEFS keeps no descriptor.
            const fd = fs.openSync(nodefs.realPath(stream.node), 'r')
            try {
              fs.fsyncSync(fd)
            } finally {
              fs.closeSync(fd)
            }
          }
          return 0
        }
      },
    ]
    return { emscriptenOpts: { ...emscriptenOpts, preRun } as typeof emscriptenOpts }
  }
}

/** PostgreSQL's start parameters in PGlite, with fsync on and the WAL synced with fsync(). */
export function durableStartParams(): string[] {
  const params = PGlite.defaultStartParams.filter((p) => p !== '-F')
  if (params.length !== PGlite.defaultStartParams.length - 1) throw new Error('PGlite no longer starts PostgreSQL with -F: check src/catalog/pglite-durable.ts')
  return [...params, '-c', 'fsync=on', '-c', 'wal_sync_method=fsync']
}

/** Every file and directory under `directory`, synced (a database PGlite just extracted there). */
function syncTree(directory: string): void {
  for (const entry of fs.readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() && !entry.isDirectory()) continue
    const fd = fs.openSync(`${entry.parentPath}/${entry.name}`, 'r')
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  }
  const fd = fs.openSync(directory, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Opens (creating if needed) the PGlite database in `directory`, its commits durable. */
export async function openDurablePGlite(directory: string, counter: SyncCounter = { syncs: 0 }): Promise<PGlite> {
  const fresh = !fs.existsSync(directory) || fs.readdirSync(directory).length === 0
  const db = await PGlite.create({ fs: new SyncingNodeFS(directory, counter), startParams: durableStartParams() })
  if (fresh) syncTree(directory)
  return db
}
