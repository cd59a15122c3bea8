// `blobfs gateway`: the S3 side-port and /api/v1 JSON API as one process, pointed at
// a catalog (DESIGN.md, "Processes and commands"). Flags are parsed here once into
// the gateway's options; SIGINT/SIGTERM close it cleanly.
//
// The object layer comes from the factory the command is built with: the cluster
// composition root (cluster.ts openObjectLayer) in commands/index.ts, an in-memory
// one in the tests.
import type { Argv, CommandModule } from 'yargs'
import { resolveCatalogUrl } from '../cluster.ts'
import { failAndExit } from '../exit.ts'
import { clusterOptions, type ClusterArgs } from '../options.ts'
import { configureLogging, logger } from '../../log.ts'
import { rateLimitBurstDefault, rateLimitRequestsPerSecondDefault, requestIdleTimeoutMsDefault } from '../../limits.ts'
import type { ObjectLayer } from '../../objects/types.ts'
import { createS3Server, type S3Gateway } from '../../s3/index.ts'
import { parseListen } from './node.ts'

/** Opens the object layer for a catalog URL; close() releases catalog connections and node clients. */
export type ObjectLayerFactory = (options: { catalogUrl: string }) => Promise<{ objects: ObjectLayer; close(): Promise<void> }>

export interface GatewayArgs extends ClusterArgs {
  listen: string
  domain?: string
  region: string
  'rate-limit': number
  'rate-burst': number
  'idle-timeout-ms': number
  'log-level': string
}

export interface RunningGateway {
  gateway: S3Gateway
  endpoint: string
  stop(): Promise<void>
}

/** Opens the object layer, starts the gateway and prints where it listens. */
export async function runGateway(argv: GatewayArgs, openObjectLayer: ObjectLayerFactory): Promise<RunningGateway> {
  const log = logger('gateway')
  const listen = parseListen(argv.listen)
  const layer = await openObjectLayer({ catalogUrl: await resolveCatalogUrl(argv) })
  const gateway = createS3Server({
    objects: layer.objects,
    domain: argv.domain ?? null,
    region: argv.region,
    rateLimit: argv['rate-limit'] > 0 ? { requestsPerSecond: argv['rate-limit'], burst: Math.max(1, argv['rate-burst']) } : null,
    requestIdleTimeoutMs: argv['idle-timeout-ms'],
    logger: logger('s3'),
    processMetrics: true,
  })
  try {
    const { endpoint } = await gateway.listen(listen.port, listen.host)
    log.info({ endpoint, domain: argv.domain ?? null }, 'gateway listening')
    return {
      gateway,
      endpoint,
      async stop() {
        await gateway.close()
        await layer.close()
      },
    }
  } catch (error) {
    await layer.close()
    throw error
  }
}

export function gatewayCommand(openObjectLayer: ObjectLayerFactory): CommandModule<object, GatewayArgs> {
  return {
    command: 'gateway',
    describe: 'serve the S3 REST side-port and the /api/v1 JSON API on --listen',
    builder: (yargs: Argv<object>) =>
      clusterOptions(yargs)
        .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'HOST:PORT to serve S3 and /api/v1 on (port 0 picks a free one)' })
        .option('domain', { type: 'string', describe: 'base domain for virtual-hosted-style requests (BUCKET.DOMAIN); path style always works' })
        .option('region', { type: 'string', default: 'us-east-1', describe: 'region reported by GetBucketLocation (requests signed for any region are accepted)' })
        .option('rate-limit', { type: 'number', default: rateLimitRequestsPerSecondDefault, describe: 'requests per second per access key (0 turns the limit off)' })
        .option('rate-burst', { type: 'number', default: rateLimitBurstDefault, describe: 'requests an access key may make at once' })
        .option('idle-timeout-ms', { type: 'number', default: requestIdleTimeoutMsDefault, describe: 'a body with no bytes for this long is refused (400 RequestTimeout)' })
        .option('log-level', { type: 'string', default: 'info', describe: 'pino log level (one JSON line per request at info)' })
        .example('$0 gateway --catalog postgres://blobfs@db:26257/blobfs --listen 0.0.0.0:9000', 'serve S3 on all interfaces')
        .example('$0 gateway --data ./blobfs-data --listen 127.0.0.1:9001 --domain s3.example.com', 'a second gateway for a `blobfs up` cluster, also answering BUCKET.s3.example.com')
        .example('aws --endpoint-url http://127.0.0.1:9000 s3 ls', 'then use any S3 client')
        .example('curl http://127.0.0.1:9000/metrics', 'Prometheus metrics') as unknown as Argv<GatewayArgs>,
    handler: async (argv) => {
      configureLogging({ level: argv['log-level'], name: 'blobfs-gateway' })
      const log = logger('gateway')
      let running: RunningGateway
      try {
        running = await runGateway(argv, openObjectLayer)
      } catch (error) {
        return failAndExit(error)
      }
      console.log(`blobfs gateway listening on ${running.endpoint}`)
      let stopping = false
      const stop = (signal: string): void => {
        if (stopping) return
        stopping = true
        log.info({ signal }, 'stopping')
        running.stop().then(
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
}
