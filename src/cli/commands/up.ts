// `blobfs up`: the whole cluster on one machine with one command (DESIGN.md,
// "Processes and commands"). This process serves the embedded catalog (PGlite on
// a loopback port); every other part is a child `blobfs` process — the storage
// nodes spread over racks, the S3 gateway, and with --mount the FUSE mount — with
// its log in DIR/logs. `blobfs ready` is printed once every part answers; SIGINT or
// SIGTERM stops them in reverse order (the mount first, so open files are uploaded;
// the catalog last). A second start on the same DIR comes back with all data.
import { mkdirSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import { openCatalog } from '../../catalog/catalog.ts'
import { startEmbeddedCatalog } from '../../catalog/embedded.ts'
import { BlobfsError, isBlobfsError } from '../../errors.ts'
import { dataShardsDefault, parityShardsDefault } from '../../limits.ts'
import { configureLogging, logger } from '../../log.ts'
import { clusterFileName, dataDirDefault, type ClusterFile } from '../cluster.ts'
import { failAndExit } from '../exit.ts'
import { startChild, type Child } from '../supervisor.ts'
import { gcConfigFrom, gcOptions, parseDuration, parseListen, parseSize, repairOptionDefaults } from './node.ts'

interface UpArgs {
  data: string
  nodes: number
  racks: number
  listen: string
  'access-key'?: string
  'secret-key'?: string
  mount?: string
  bucket: string
  'block-size': string
  sync: string
  'multipart-idle': string
  'orphan-grace': string
  'gc-rate': number
  'gc-interval-ms'?: number
  'down-timeout': string
  'repair-grace': string
  'log-level': string
}

const owner = 'admin'
const childReadyTimeoutMs = 120_000
const childStopGraceMs = 20_000

export const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'run a whole cluster on this machine: embedded catalog, storage nodes, S3 gateway, and optionally a FUSE mount',
  builder: (yargs) =>
    gcOptions(yargs)
      .option('data', { type: 'string', default: dataDirDefault, describe: 'directory for the catalog, the nodes\' block logs and the logs' })
      .option('nodes', { type: 'number', default: 12, describe: 'storage node processes (RS(8,4) wants 12 for full redundancy, 9 at least)' })
      .option('racks', { type: 'number', default: 4, describe: 'racks the nodes are spread over (failure domains for placement)' })
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'HOST:PORT of the S3 side-port and /api/v1' })
      .option('access-key', { type: 'string', describe: 'S3 access key id to create (with --secret-key); default: a dev key made on first start' })
      .option('secret-key', { type: 'string', describe: 'S3 secret for --access-key' })
      .option('mount', { type: 'string', describe: 'mount --bucket on this directory through FUSE' })
      .option('bucket', { type: 'string', default: 'default', describe: 'bucket to mount (created if missing)' })
      .option('block-size', { type: 'string', default: '256MiB', describe: 'size of each node\'s pre-allocated block files (smaller than a node\'s 1GiB default: all nodes share this disk)' })
      .option('sync', { type: 'string', choices: ['fdatasync', 'none'], default: 'fdatasync', describe: 'node durability; none is for benchmarks only' })
      .option('down-timeout', { type: 'string', default: repairOptionDefaults.downTimeout, describe: 'a node silent this long is DOWN (production: 10m)' })
      .option('repair-grace', { type: 'string', default: repairOptionDefaults.repairGrace, describe: 'a DOWN node\'s stripes are repaired after this much longer' })
      .option('log-level', { type: 'string', default: 'info', describe: 'log level of every part (logs go to DATA/logs)' })
      .example('$0 up --mount ./mnt', 'a 12-node cluster in ./blobfs-data with bucket "default" mounted on ./mnt')
      .example('$0 up --data /srv/blobfs --listen 0.0.0.0:9000 --access-key AK --secret-key SK', 'serve S3 on all interfaces with a chosen key')
      .example('$0 up --down-timeout 5s --repair-grace 5s', 'repair within seconds of a node stopping (tests, demos)')
      .example('$0 up --nodes 9 --racks 3', 'the smallest cluster: RS(8,4) then keeps k+1 = 9 chunks per stripe and queues a repair for each') as unknown as Argv<UpArgs>,
  handler: async (argv) => {
    try {
      await runUp(argv)
    } catch (error) {
      failAndExit(error)
    }
  },
}

async function runUp(argv: UpArgs): Promise<void> {
  if ((argv['access-key'] === undefined) !== (argv['secret-key'] === undefined)) {
    throw new BlobfsError('InvalidArgument', '--access-key and --secret-key go together')
  }
  if (!(Number.isInteger(argv.racks) && argv.racks >= 1)) throw new BlobfsError('InvalidArgument', '--racks must be a whole number, at least 1')
  // A stripe is stored only with at least k+1 of its k+m chunks (DESIGN.md, "Placement").
  const nodesMin = dataShardsDefault + 1
  if (!(Number.isInteger(argv.nodes) && argv.nodes >= nodesMin)) {
    throw new BlobfsError('InvalidArgument', `--nodes must be at least ${nodesMin}: RS(${dataShardsDefault},${parityShardsDefault}) stores a stripe only on k+1 = ${nodesMin} or more distinct nodes`)
  }
  parseListen(argv.listen)
  parseSize(argv['block-size'])
  gcConfigFrom(argv)
  parseDuration(argv['down-timeout'], '--down-timeout')
  parseDuration(argv['repair-grace'], '--repair-grace', { zero: true })
  const dataDir = resolve(argv.data)
  const logDir = join(dataDir, 'logs')
  mkdirSync(logDir, { recursive: true })
  configureLogging({ level: argv['log-level'], name: 'blobfs-up' })
  const log = logger('up')
  const say = (line: string) => console.log(`blobfs: ${line}`)

  const children: Child[] = []
  let catalogStop: (() => Promise<void>) | null = null
  let stopping: Promise<void> | null = null
  const stopAll = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, 'stopping the cluster')
      // Reverse order: the mount uploads open files first, the catalog goes last.
      for (const child of [...children].reverse()) {
        if (child.name.startsWith('node-')) continue
        await child.stop(childStopGraceMs)
      }
      await Promise.all(children.filter((c) => c.name.startsWith('node-')).map((c) => c.stop(childStopGraceMs)))
      await catalogStop?.()
    })()
    return stopping
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      say(`${signal}: stopping`)
      stopAll(signal).then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'stop failed')
          process.exit(1)
        },
      )
    })
  }

  try {
    const catalog = await startEmbeddedCatalog({ dataDir })
    catalogStop = () => catalog.stop()
    say(`catalog   ${catalog.url} (embedded PGlite in ${join(dataDir, 'catalog')})`)

    for (let i = 0; i < argv.nodes; i++) {
      const name = `node-${String(i).padStart(2, '0')}`
      children.push(
        startChild({
          name,
          logFile: join(logDir, `${name}.log`),
          args: [
            'node',
            '--data', join(dataDir, 'nodes', name),
            '--listen', '127.0.0.1:0',
            '--rack', `rack-${i % argv.racks}`,
            '--catalog', catalog.url,
            '--block-size', argv['block-size'],
            '--sync', argv.sync,
            '--multipart-idle', argv['multipart-idle'],
            '--orphan-grace', argv['orphan-grace'],
            '--gc-rate', String(argv['gc-rate']),
            ...(argv['gc-interval-ms'] !== undefined ? ['--gc-interval-ms', String(argv['gc-interval-ms'])] : []),
            '--down-timeout', argv['down-timeout'],
            '--repair-grace', argv['repair-grace'],
            '--log-level', argv['log-level'],
          ],
          ready: /"msg":"storage node listening"/,
          readyTimeoutMs: childReadyTimeoutMs,
        }),
      )
    }
    await Promise.all(children.map((c) => c.ready))
    say(`nodes     ${argv.nodes} in ${Math.min(argv.racks, argv.nodes)} racks (data in ${join(dataDir, 'nodes')}, logs in ${logDir})`)

    const credentials = await ensureAccessKey(catalog.url, dataDir, argv)
    const gateway = startChild({
      name: 'gateway',
      logFile: join(logDir, 'gateway.log'),
      args: ['gateway', '--catalog', catalog.url, '--listen', argv.listen, '--log-level', argv['log-level']],
      ready: /^blobfs gateway listening on (\S+)/,
      readyTimeoutMs: childReadyTimeoutMs,
    })
    children.push(gateway)
    const gatewayUrl = (await gateway.ready)[1]!
    say(`S3        ${gatewayUrl}  access key ${credentials.accessKeyId}  secret ${credentials.secretAccessKey}`)

    let mountpoint: string | null = null
    if (argv.mount) {
      mountpoint = resolve(argv.mount)
      mkdirSync(mountpoint, { recursive: true })
      await ensureBucket(catalog.url, argv.bucket)
      const mount = startChild({
        name: 'mount',
        logFile: join(logDir, 'mount.log'),
        args: ['mount', argv.bucket, mountpoint, '--catalog', catalog.url, '--foreground', '--log-level', argv['log-level']],
        ready: /^blobfs mount ready/,
        readyTimeoutMs: childReadyTimeoutMs,
      })
      children.push(mount)
      await mount.ready
      say(`mount     bucket ${argv.bucket} on ${mountpoint}`)
    }

    const file: ClusterFile = { catalogUrl: catalog.url, gatewayUrl, mountpoint, pid: process.pid, startedAt: new Date().toISOString() }
    writeFileSync(join(dataDir, clusterFileName), JSON.stringify(file, null, 2) + '\n')
    for (const child of children) {
      void child.exited.then((status) => {
        if (!stopping) log.warn({ part: child.name, status }, `${child.name} exited; the cluster runs on without it (see its log)`)
      })
    }
    say(`stop with Ctrl-C or \`kill ${process.pid}\`; other commands find this cluster with --data ${argv.data}`)
    console.log('blobfs ready')
  } catch (error) {
    await stopAll('start-up failed').catch(() => {})
    throw error
  }
}

interface Credentials {
  accessKeyId: string
  secretAccessKey: string
}

/** The given key (created if missing), or the dev key made on first start (kept in DATA/credentials.json). */
async function ensureAccessKey(catalogUrl: string, dataDir: string, argv: UpArgs): Promise<Credentials> {
  const catalog = await openCatalog(catalogUrl)
  try {
    if (argv['access-key'] && argv['secret-key']) {
      const existing = await catalog.accessKeys.get(argv['access-key'])
      if (existing && existing.secretAccessKey !== argv['secret-key']) {
        throw new BlobfsError('AlreadyExists', `access key ${argv['access-key']} exists with another secret; remove it with \`blobfs key rm\` first`)
      }
      if (!existing) await catalog.accessKeys.create({ owner, accessKeyId: argv['access-key'], secretAccessKey: argv['secret-key'] })
      return { accessKeyId: argv['access-key'], secretAccessKey: argv['secret-key'] }
    }
    const path = join(dataDir, 'credentials.json')
    const saved = await readFile(path, 'utf8').then((text) => JSON.parse(text) as Credentials, () => null)
    if (saved && (await catalog.accessKeys.get(saved.accessKeyId))) return saved
    const key = await catalog.accessKeys.create({ owner })
    const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey }
    writeFileSync(path, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 })
    return credentials
  } finally {
    await catalog.close()
  }
}

async function ensureBucket(catalogUrl: string, bucket: string): Promise<void> {
  const catalog = await openCatalog(catalogUrl)
  try {
    await catalog.buckets.create({ name: bucket, owner }).catch((error: unknown) => {
      if (!isBlobfsError(error, 'BucketAlreadyExists') && !isBlobfsError(error, 'BucketAlreadyOwnedByYou')) throw error
    })
  } finally {
    await catalog.close()
  }
}
