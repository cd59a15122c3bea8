// `blobfs catalog migrate|serve`: the SQL catalog on its own. `migrate` brings a
// catalog's schema to this build's version (every process also does it at start;
// this is for operators who migrate before rolling out). `serve` runs the embedded
// PGlite catalog of a data directory as a process of its own, for clusters whose
// parts are started one by one.
import { resolve } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import { openCatalog } from '../../catalog/catalog.ts'
import { runningCatalogUrl, startEmbeddedCatalog } from '../../catalog/embedded.ts'
import { latestSchemaVersion, type MigrationResult } from '../../catalog/migrations.ts'
import { readClusterFile } from '../cluster.ts'
import { failAndExit } from '../exit.ts'

interface CatalogArgs {
  action: 'migrate' | 'serve'
  catalog?: string
  data?: string
  host: string
  port: number
  json: boolean
}

async function migrateCommand(argv: CatalogArgs): Promise<MigrationResult & { catalog: string }> {
  let url = argv.catalog
  if (!url) {
    const dataDir = resolve(argv.data ?? './blobfs-data')
    url = runningCatalogUrl(dataDir) ?? (await readClusterFile(dataDir))?.catalogUrl ?? undefined
    if (!url) {
      // Nobody serves this directory's catalog: open it here, migrate, close.
      const embedded = await startEmbeddedCatalog({ dataDir, migrate: false })
      try {
        const catalog = await openCatalog(embedded.url, { migrate: false })
        try {
          return { ...(await catalog.migrate()), catalog: `${dataDir}/catalog` }
        } finally {
          await catalog.close()
        }
      } finally {
        await embedded.stop()
      }
    }
  }
  const catalog = await openCatalog(url, { migrate: false })
  try {
    return { ...(await catalog.migrate()), catalog: url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') }
  } finally {
    await catalog.close()
  }
}

async function serveCommand(argv: CatalogArgs): Promise<void> {
  const dataDir = resolve(argv.data ?? './blobfs-data')
  const embedded = await startEmbeddedCatalog({ dataDir, host: argv.host, port: argv.port })
  console.log(argv.json ? JSON.stringify({ catalog: embedded.url, dataDir }) : `catalog ready ${embedded.url}`)
  await new Promise<void>((done) => {
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
  })
  await embedded.stop()
}

export const catalogCommand: CommandModule<object, CatalogArgs> = {
  command: 'catalog <action>',
  describe: 'migrate a catalog schema, or serve the embedded catalog of a data directory',
  builder: (yargs) =>
    yargs
      .positional('action', { choices: ['migrate', 'serve'] as const, describe: 'migrate: apply missing schema migrations; serve: run the embedded catalog' })
      .option('catalog', { type: 'string', describe: 'catalog URL: postgres://user:password@host:port/database (CockroachDB or PostgreSQL)' })
      .option('data', { type: 'string', describe: 'data directory whose embedded catalog (<data>/catalog) to use (default ./blobfs-data)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'serve: loopback address to listen on' })
      .option('port', { type: 'number', default: 0, describe: 'serve: port (0 picks a free one; the URL is printed)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts' })
      .conflicts('catalog', 'data')
      .example('$0 catalog migrate --catalog postgres://blobfs@db1:26257/blobfs?sslmode=verify-full', 'migrate a CockroachDB catalog before upgrading the cluster')
      .example('$0 catalog migrate --data ./blobfs-data', 'migrate the embedded catalog of a data directory (running or not)')
      .example('$0 catalog serve --data ./blobfs-data --port 5433', 'serve the embedded catalog; nodes and gateways use the printed URL')
      .epilogue(`Schema version of this build: ${latestSchemaVersion}. Migrations only add; running them from several processes at once is safe.`) as unknown as Argv<CatalogArgs>,
  handler: async (argv) => {
    try {
      if (argv.action === 'serve') return await serveCommand(argv)
      const result = await migrateCommand(argv)
      if (argv.json) console.log(JSON.stringify(result))
      else {
        const applied = result.applied.length > 0 ? `applied ${result.applied.join(', ')}` : 'nothing to apply'
        console.log(`catalog ${result.catalog}: schema version ${result.current} (${applied})`)
        if (result.unknown.length > 0) console.log(`warning: versions ${result.unknown.join(', ')} come from a newer blobfs`)
      }
    } catch (error) {
      failAndExit(error)
    }
  },
}
