// Runs a group of catalog tests against every backend the catalog supports: a real
// PostgreSQL server (started for the test file, a fresh database per catalog) and,
// from the embedded slice on, PGlite served over pglite-socket.
import { after, before, describe } from 'node:test'
import { openCatalog, type Catalog, type CatalogOptions } from '../../src/catalog/catalog.ts'
import { startPostgres, type PostgresServer } from '../support/postgres-server.ts'

export type BackendName = 'postgres'

export interface Backend {
  readonly name: BackendName
  /** URL of an empty database (PostgreSQL: a new database each call). */
  freshUrl(): Promise<string>
  /** A migrated catalog on an empty database; closed when the group ends. */
  freshCatalog(options?: CatalogOptions): Promise<Catalog>
  /** A migrated catalog shared by the tests of this group (isolate with unique names). */
  sharedCatalog(): Promise<Catalog>
}

class PostgresBackend implements Backend {
  readonly name = 'postgres' as const
  private server: PostgresServer | undefined
  private shared: Promise<Catalog> | undefined
  private readonly opened: Catalog[] = []

  async start(): Promise<void> {
    this.server = await startPostgres()
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.opened.map((c) => c.close()))
    await this.server?.stop()
  }

  freshUrl(): Promise<string> {
    return this.server!.createDatabase()
  }

  async freshCatalog(options: CatalogOptions = {}): Promise<Catalog> {
    const catalog = await openCatalog(await this.freshUrl(), options)
    this.opened.push(catalog)
    return catalog
  }

  sharedCatalog(): Promise<Catalog> {
    this.shared ??= this.freshCatalog()
    return this.shared
  }
}

/** Declares `body` once per backend, inside describe(backend name). */
export function forEachBackend(body: (backend: Backend) => void): void {
  const backend = new PostgresBackend()
  describe(backend.name, () => {
    before(() => backend.start())
    after(() => backend.stop())
    body(backend)
  })
}
