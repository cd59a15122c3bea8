// `blobfs node`: one storage node process (src/node). Flags are parsed here once
// into the node's frozen config; SIGINT/SIGTERM stop it cleanly (final index
// snapshot, so the next start is fast); a failed block log exits with status 1.
import type { Argv, CommandModule } from 'yargs'
import { BlobfsError } from '../../errors.ts'
import { downTimeoutMsDefault, repairConcurrencyDefault, repairGraceMsDefault, repairLeaseMsDefault, repairRateBytesPerSecDefault, units } from '../../limits.ts'
import { configureLogging, logger } from '../../log.ts'
import { openCatalog, type Catalog } from '../../catalog/catalog.ts'
import { repairConfig } from '../../repair/repair-worker.ts'
import { startNodeRepair } from '../node-repair.ts'
import { MemoryControlPlane, type NodeControlPlane } from '../../node/control-plane.ts'
import { parseDuration } from '../duration.ts'
export { parseDuration } from '../duration.ts'
import { failAndExit } from '../exit.ts'
import { nodeDrainCommand } from './drain.ts'
import { CatalogControlPlane } from '../node-control-plane.ts'
import { nodeGcConfig, startNodeGc, type NodeGcConfig } from '../node-gc.ts'
import { nodeConfig, StorageNode } from '../../node/node.ts'

interface NodeArgs {
  data: string
  listen: string
  rack: string
  catalog?: string
  advertise?: string
  sync: string
  'block-size': string
  'scrub-rate': number
  'scrub-pass-days': number
  'compaction-dead-ratio': number
  'snapshot-interval-records'?: number
  'heartbeat-interval-ms'?: number
  'multipart-idle': string
  'orphan-grace': string
  'gc-rate': number
  'gc-interval-ms'?: number
  'down-timeout': string
  'repair-grace': string
  'repair-concurrency': number
  'repair-rate': number
  'repair-lease': string
  'log-level': string
}

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: units.KiB, kib: units.KiB, m: units.MiB, mib: units.MiB, g: units.GiB, gib: units.GiB, t: units.TiB, tib: units.TiB }

/** "1GiB", "512m", "4096" -> bytes (binary units). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = m ? sizeUnits[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw new BlobfsError('InvalidArgument', `'${text}' is not a size (e.g. 1GiB, 64MiB, 4096)`)
  return Math.round(Number(m[1]) * unit)
}

/** A flag given twice keeps its last value (a wrapper script may append to a node's flags). */
function lastWins<T>(value: T | T[]): T {
  return Array.isArray(value) ? value[value.length - 1]! : value
}

/** The repair and failure-detection flags shared by `blobfs node` and `blobfs up`. */
export const repairOptionDefaults = {
  downTimeout: `${downTimeoutMsDefault / 1000}s`,
  repairGrace: `${repairGraceMsDefault / 1000}s`,
} as const

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim())
  if (!m) throw new BlobfsError('InvalidArgument', `--listen '${text}' is not HOST:PORT`)
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) }
}

/** With --catalog the node registers, heartbeats and reports into it; without, it runs standalone. */
export async function controlPlaneFor(catalogUrl: string | undefined): Promise<{ controlPlane: NodeControlPlane; catalog: Catalog | null; close(): Promise<void> }> {
  if (catalogUrl === undefined) {
    logger('node').info('no --catalog: running standalone (registration, heartbeats and corrupt-chunk reports stay in memory; no GC, no repair)')
    return { controlPlane: new MemoryControlPlane(), catalog: null, close: async () => {} }
  }
  const catalog = await openCatalog(catalogUrl)
  return { controlPlane: new CatalogControlPlane(catalog), catalog, close: () => catalog.close() }
}

/** The GC flags shared by `blobfs node` and `blobfs up` (which passes them on to its nodes). */
// Every flag of `blobfs node` is `global: false`: they run a node, and `node drain` has its own.
export function gcOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option('multipart-idle', { global: false, type: 'string', default: '7d', describe: 'abort multipart uploads with no part received for this long (e.g. 7d, 36h)' })
    .option('orphan-grace', { global: false, type: 'string', default: '24h', describe: 'delete chunks nothing references once they are this old; must exceed the longest upload (12h)' })
    .option('gc-rate', { global: false, type: 'number', default: 500, describe: 'chunk deletions per second, per node' })
    .option('gc-interval-ms', { global: false, type: 'number', hidden: true, describe: 'tests: milliseconds between multipart scans and inventory sweeps' })
}

/** GC flags -> the frozen GC configuration of a node. */
export function gcConfigFrom(argv: { 'multipart-idle': string; 'orphan-grace': string; 'gc-rate': number; 'gc-interval-ms'?: number | undefined }): Readonly<NodeGcConfig> {
  const intervalMs = argv['gc-interval-ms']
  return nodeGcConfig({
    multipartIdleMs: parseDuration(argv['multipart-idle'], '--multipart-idle'),
    orphanGraceMs: parseDuration(argv['orphan-grace'], '--orphan-grace'),
    deletesPerSecMax: argv['gc-rate'],
    ...(intervalMs !== undefined ? { multipartIntervalMs: intervalMs, sweepIntervalMs: intervalMs, gcIdleMs: Math.min(intervalMs, 5_000) } : {}),
  })
}

export const nodeCommand: CommandModule<object, NodeArgs> = {
  command: 'node',
  describe: 'run a storage node: chunks in block logs under --data, served over HTTP on --listen (or `node drain`)',
  builder: (yargs: Argv<object>) =>
    gcOptions(yargs)
      .option('data', { global: false, type: 'string', demandOption: true, describe: 'directory holding the block logs, index snapshot and node id' })
      .option('listen', { global: false, type: 'string', default: '127.0.0.1:9101', describe: 'HOST:PORT for the chunk API (port 0 picks a free one)' })
      .option('rack', { global: false, type: 'string', default: 'default', describe: 'rack (failure domain) name, for placement' })
      .option('catalog', { global: false, type: 'string', describe: 'catalog URL (postgres://...) to register and heartbeat with' })
      .option('advertise', { global: false, type: 'string', describe: 'base URL clients should use, when it differs from --listen' })
      .option('sync', { global: false, type: 'string', choices: ['fdatasync', 'none'], default: 'fdatasync', describe: 'fdatasync before acknowledging; none is for benchmarks only' })
      .option('block-size', { global: false, type: 'string', default: '1GiB', describe: 'size of each pre-allocated block file' })
      .option('scrub-rate', { global: false, type: 'number', default: 32, describe: 'scrubber read rate cap, MiB/s' })
      .option('scrub-pass-days', { global: false, type: 'number', default: 7, describe: 'days a full scrub pass is spread over' })
      .option('compaction-dead-ratio', { global: false, type: 'number', default: 0.5, describe: 'compact a block once this share of it is dead' })
      .option('snapshot-interval-records', { global: false, type: 'number', hidden: true, describe: 'records between index snapshots' })
      .option('heartbeat-interval-ms', { global: false, type: 'number', hidden: true, describe: 'milliseconds between heartbeats' })
      .option('down-timeout', { global: false, coerce: lastWins, type: 'string', default: repairOptionDefaults.downTimeout, describe: 'a node silent this long is DOWN (production: 10m, so a reboot starts no repair)' })
      .option('repair-grace', { global: false, coerce: lastWins, type: 'string', default: repairOptionDefaults.repairGrace, describe: 'a DOWN node\'s stripes are queued for repair after this much longer' })
      .option('repair-concurrency', { global: false, coerce: lastWins, type: 'number', default: repairConcurrencyDefault, describe: 'stripes this node repairs at once (0: this node repairs nothing)' })
      .option('repair-rate', { global: false, coerce: lastWins, type: 'number', default: repairRateBytesPerSecDefault / units.MiB, describe: 'repair read+write rate cap of this node, MiB/s' })
      .option('repair-lease', { global: false, coerce: lastWins, type: 'string', default: `${repairLeaseMsDefault / 1000}s`, describe: 'how long a claimed repair task is held before another node may take it (extended while it works)' })
      .option('log-level', { global: false, type: 'string', default: 'info', describe: 'pino log level' })
      .example('$0 node --data /srv/blobfs/n1 --listen 0.0.0.0:9101 --rack r1 --advertise http://10.0.0.7:9101 --catalog postgres://db/blobfs --down-timeout 10m --repair-grace 5m', 'a production node')
      .example('$0 node --data ./n1 --catalog postgres://127.0.0.1:5432/blobfs --repair-concurrency 4 --repair-rate 200', 'repair faster on a node with spare network and disk')
      .example('$0 node --data ./n1 --listen 127.0.0.1:0 --rack r1 --block-size 64MiB', 'a small standalone node on a free port')
      .example('$0 node --data /tmp/bench --sync none', 'benchmarks only: acknowledge before fdatasync')
      .example('$0 node --data ./n1 --catalog postgres://db/blobfs --multipart-idle 2d --gc-rate 2000', 'abort uploads idle for 2 days; delete faster')
      .example('$0 node drain NODE_ID', 'move every chunk off a node before removing it (see `blobfs node drain --help`)')
      .command(nodeDrainCommand) as unknown as Argv<NodeArgs>,
  handler: async (argv) => {
    configureLogging({ level: argv['log-level'], name: 'blobfs-node' })
    const log = logger('node')
    const listen = parseListen(argv.listen)
    const config = nodeConfig({
      dataDir: argv.data,
      listenHost: listen.host,
      listenPort: listen.port,
      advertiseUrl: argv.advertise ?? null,
      rack: argv.rack,
      sync: argv.sync as 'fdatasync' | 'none',
      blockSizeBytes: parseSize(argv['block-size']),
      scrubRateBytesPerSecMax: argv['scrub-rate'] * units.MiB,
      scrubPassMs: argv['scrub-pass-days'] * 24 * 3600 * 1000,
      compactionDeadRatio: argv['compaction-dead-ratio'],
      snapshotIntervalRecords: argv['snapshot-interval-records'],
      heartbeatIntervalMs: argv['heartbeat-interval-ms'],
    })
    let gcConfig: Readonly<NodeGcConfig>
    let repair: ReturnType<typeof repairConfig>
    try {
      gcConfig = gcConfigFrom(argv)
      repair = repairConfig({
        downTimeoutMs: parseDuration(argv['down-timeout'], '--down-timeout'),
        repairGraceMs: parseDuration(argv['repair-grace'], '--repair-grace', { zero: true }),
        concurrency: argv['repair-concurrency'],
        rateBytesPerSec: argv['repair-rate'] * units.MiB,
        leaseMs: parseDuration(argv['repair-lease'], '--repair-lease'),
      })
    } catch (error) {
      return failAndExit(error)
    }
    const control = await controlPlaneFor(argv.catalog)
    const node = await StorageNode.start(config, {
      controlPlane: control.controlPlane,
      log,
      onFatal: (error) => {
        log.fatal({ err: error }, 'exiting: the block log failed')
        process.exit(1)
      },
    })
    const gc = control.catalog ? startNodeGc(node, control.catalog, gcConfig, log) : null
    const durability = control.catalog ? await startNodeRepair({ catalog: control.catalog, node, config: repair, log }) : null
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      node
        .stop()
        .then(() => gc?.close())
        .then(() => durability?.close())
        .then(control.close)
        .then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'stop failed')
          process.exit(1)
        },
      )
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  },
}
