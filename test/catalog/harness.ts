// Runs a group of catalog tests against every backend the catalog supports: a real
// PostgreSQL server (started for the test file, a fresh database per catalog) and
// PGlite served over pglite-socket by the embedded catalog (a fresh in-memory
// PGlite per catalog, cloned from a template to save start-up time).
import { after, before, describe } from 'node:test'
import { PGlite } from '@electric-sql/pglite'
import { openCatalog, type Catalog, type CatalogOptions } from '../../src/catalog/catalog.ts'
import { startEmbeddedCatalog, type EmbeddedCatalog } from '../../src/catalog/embedded.ts'
import { startPostgres, type PostgresServer } from '../support/postgres-server.ts'

export type BackendName = 'postgres' | 'pglite'

export interface Backend {
  readonly name: BackendName
  /** URL of an empty database, not migrated. */
  freshUrl(): Promise<string>
  /** A migrated catalog on an empty database; closed when the group ends. */
  freshCatalog(options?: CatalogOptions): Promise<Catalog>
  /** A migrated catalog shared by the tests of this group (isolate with unique names). */
  sharedCatalog(): Promise<Catalog>
}

abstract class BaseBackend implements Backend {
  abstract readonly name: BackendName
  private shared: Promise<Catalog> | undefined
  protected readonly opened: Catalog[] = []

  abstract start(): Promise<void>
  abstract freshUrl(): Promise<string>
  protected abstract stopServers(): Promise<void>

  async stop(): Promise<void> {
    await Promise.allSettled(this.opened.map((c) => c.close()))
    await this.stopServers()
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

class PostgresBackend extends BaseBackend {
  readonly name = 'postgres' as const
  private server: PostgresServer | undefined

  async start(): Promise<void> {
    this.server = await startPostgres()
  }

  protected async stopServers(): Promise<void> {
    await this.server?.stop()
  }

  freshUrl(): Promise<string> {
    return this.server!.createDatabase()
  }
}

class PgliteBackend extends BaseBackend {
  readonly name = 'pglite' as const
  private template: PGlite | undefined
  private readonly servers: EmbeddedCatalog[] = []

  async start(): Promise<void> {
    this.template = await PGlite.create()
  }

  protected async stopServers(): Promise<void> {
    await Promise.allSettled(this.servers.map((s) => s.stop()))
    await this.template?.close()
  }

  async freshUrl(): Promise<string> {
    const server = await startEmbeddedCatalog({ database: (await this.template!.clone()) as PGlite, migrate: false })
    this.servers.push(server)
    return server.url
  }
}

/** Declares `body` once per backend, inside describe(<backend name>). */
export function forEachBackend(body: (backend: Backend) => void): void {
  for (const backend of [new PostgresBackend(), new PgliteBackend()]) {
    describe(backend.name, () => {
      before(() => backend.start())
      after(() => backend.stop())
      body(backend)
    })
  }
}
