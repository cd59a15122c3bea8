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
// PostgreSQL's knowledge: its files are synced once, before the first use. A sync the
// kernel refuses ends the process (PostgreSQL PANICs on it).
import fs from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { NodeFS } from '@electric-sql/pglite/nodefs'
import { logger } from '../log.ts'

/** The subset of an Emscripten NODEFS stream the sync needs. */
interface NodeFsStream {
  nfd?: number
  path?: string
  node: { mode: number }
}

interface NodeFsModule {
  FS: { isDir(mode: number): boolean; filesystems: { NODEFS: { stream_ops: Record<string, unknown> } } }
}

/** Counts the file syncs the database asked for (tests check a commit makes one). */
export interface SyncCounter {
  syncs: number
}

const log = logger('catalog')
/** The exit status of a process whose embedded catalog could not sync (EX_SOFTWARE). */
export const syncFailedExitCode = 70

/**
 * A sync the kernel refused (EIO, ENOSPC): what the WAL holds on disk is unknown, and a
 * commit answered now could be lost. PostgreSQL PANICs on it; here the process ends at
 * once, before anything else is acknowledged, and the next start recovers from the WAL.
 */
function syncFailed(stream: NodeFsStream, error: unknown): never {
  const message = 'the embedded catalog could not sync its files to disk; stopping before another commit is acknowledged'
  log.fatal({ err: error, file: stream.path }, message)
  fs.writeSync(2, `blobfs: ${message}: ${(error as Error)?.message ?? error}\n`) // the log may be asynchronous
  process.exit(syncFailedExitCode)
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
      ({ FS }: NodeFsModule) => {
        FS.filesystems.NODEFS.stream_ops.fsync = (stream: NodeFsStream) => {
          counter.syncs++
          try {
            // NODEFS opens directories too, so every stream has its descriptor.
            if (typeof stream.nfd !== 'number') throw new Error('a NODEFS stream without a descriptor')
            // A file: its data and the metadata needed to read it (its size): what
            // PostgreSQL itself asks of its WAL on Linux (fdatasync); an mtime-only change
            // costs no journal commit. A directory (synced after a file in it is created
            // or renamed): fsync.
            if (FS.isDir(stream.node.mode)) fs.fsyncSync(stream.nfd)
            else fs.fdatasyncSync(stream.nfd)
          } catch (error) {
            syncFailed(stream, error)
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

function syncPath(path: string): void {
  const fd = fs.openSync(path, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Every file and directory under `directory`, and itself, synced (a database PGlite just extracted there). */
function syncTree(directory: string): void {
  for (const entry of fs.readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() || entry.isDirectory()) syncPath(join(entry.parentPath, entry.name))
  }
  syncPath(directory)
}

/** Opens (creating if needed) the PGlite database in `directory`, its commits durable. */
export async function openDurablePGlite(directory: string, counter: SyncCounter = { syncs: 0 }): Promise<PGlite> {
  const fresh = !fs.existsSync(directory) || fs.readdirSync(directory).length === 0
  const db = await PGlite.create({ fs: new SyncingNodeFS(directory, counter), startParams: durableStartParams() })
  if (fresh) {
    syncTree(directory)
    syncPath(dirname(resolve(directory))) // the directory's own entry
  }
  return db
}
