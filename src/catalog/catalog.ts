// openCatalog(url): the handle every blobfs process holds on the control plane.
// It connects (postgres.js), brings the schema up to date, and exposes one typed
// module per table group; nothing outside src/catalog writes SQL.
import { chunkDeletionDelayMsDefault } from '../limits.ts'
import { Buckets } from './buckets.ts'
import { Db, type DbOptions } from './db.ts'
import { migrate, type MigrationResult } from './migrations.ts'
import { Objects } from './objects.ts'

export interface CatalogOptions extends Omit<DbOptions, 'url'> {
  /** Apply missing migrations while opening (default true). */
  migrate?: boolean
  /** How long replaced/deleted chunks stay readable before GC may delete them. */
  deletionDelayMs?: number
}

export class Catalog {
  readonly db: Db
  readonly buckets: Buckets
  readonly objects: Objects

  constructor(db: Db, options: { deletionDelayMs?: number } = {}) {
    const config = { deletionDelayMs: options.deletionDelayMs ?? chunkDeletionDelayMsDefault }
    this.db = db
    this.buckets = new Buckets(db, config)
    this.objects = new Objects(db, config)
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
