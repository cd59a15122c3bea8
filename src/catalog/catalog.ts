// openCatalog(url): the handle every blobfs process holds on the control plane.
// It connects (postgres.js), brings the schema up to date, and exposes one typed
// module per table group; nothing outside src/catalog writes SQL.
import { chunkDeletionDelayMsDefault } from '../limits.ts'
import { AccessKeys } from './access-keys.ts'
import { Buckets } from './buckets.ts'
import { ChunkMap } from './chunks.ts'
import { Db, type DbOptions } from './db.ts'
import { migrate, type MigrationResult } from './migrations.ts'
import { Multipart } from './multipart.ts'
import { Nodes } from './nodes.ts'
import { Objects } from './objects.ts'
import { DeletionQueue, RepairQueue } from './queues.ts'

export interface CatalogOptions extends Omit<DbOptions, 'url'> {
  /** Apply missing migrations while opening (default true). */
  migrate?: boolean
  /** How long replaced/deleted chunks stay readable before GC may delete them. */
  deletionDelayMs?: number
}

export class Catalog {
  readonly db: Db
  readonly buckets: Buckets
  /** Versions: commit, lookup (stripes of a range), delete, attributes, rename, list. */
  readonly objects: Objects
  readonly multipart: Multipart
  /** The storage-node registry: heartbeats, states, placement candidates. */
  readonly nodes: Nodes
  readonly accessKeys: AccessKeys
  /** Stripes waiting to be rebuilt. */
  readonly repairs: RepairQueue
  /** Chunks waiting to be deleted from their nodes. */
  readonly deletions: DeletionQueue
  /** The chunk map seen from repair, drain and GC: one stripe, one node's chunks, references. */
  readonly chunks: ChunkMap

  constructor(db: Db, options: { deletionDelayMs?: number } = {}) {
    const config = { deletionDelayMs: options.deletionDelayMs ?? chunkDeletionDelayMsDefault }
    this.db = db
    this.buckets = new Buckets(db, config)
    this.objects = new Objects(db, config)
    this.multipart = new Multipart(db, config)
    this.nodes = new Nodes(db)
    this.accessKeys = new AccessKeys(db)
    this.repairs = new RepairQueue(db)
    this.deletions = new DeletionQueue(db, config)
    this.chunks = new ChunkMap(db, config)
  }

  /** Applies missing migrations (safe to run from several processes at once). */
  migrate(): Promise<MigrationResult> {
    return migrate(this.db)
  }

  close(): Promise<void> {
    return this.db.close()
  }
}

/**
 * Connects to the catalog at `url` and, unless `migrate: false`, applies missing
 * migrations. An unreachable database fails with CatalogUnavailable.
 */
export async function openCatalog(url: string, options: CatalogOptions = {}): Promise<Catalog> {
  const catalog = new Catalog(new Db({ ...options, url }), options)
  if (options.migrate !== false) {
    try {
      await catalog.migrate()
    } catch (error) {
      await catalog.close().catch(() => {})
      throw error
    }
  }
  return catalog
}
