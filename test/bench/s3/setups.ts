// The two ways the S3 benchmark (index.ts) puts the gateway and the object layer
// side by side, each giving both targets over the same object layer and the CPU
// time of the processes besides the benchmark's own:
//
// - clusterSetup: a real cluster, `blobfs up` (test/support/up.ts, the same command
//   the object layer's benchmark runs): its embedded catalog, 12 `blobfs node`
//   processes in 4 racks and its `blobfs gateway` process. The gateway is that
//   process; the direct run is the object layer as every command opens it
//   (openCluster) in the benchmark process, over the same nodes and catalog.
//   This is the object layer's own throughput as issue 5 measures it.
// - inMemorySetup: the gateway (serve.ts) and the direct run each over their own
//   instance of an in-process object layer module (object-store-layer.ts: ObjectStore
//   over in-memory nodes; memory-layer.ts: bytes in RAM), with no node processes:
//   what the gateway itself costs when the layer under it is cheap.
import { join } from 'node:path'
import { openCluster } from '../../../src/cli/cluster.ts'
import { childrenRunning, cpuSecondsOf } from '../../support/processes.ts'
import { startUp } from '../../support/up.ts'
import type { BenchObjectLayer } from './memory-layer.ts'
import { curlReader, directTarget, s3Target, startServer, type LaneReader, type Target } from './targets.ts'

/** CPU time so far of the processes other than the benchmark's own, in microseconds. */
export interface OtherCpu {
  /** The gateway process. */
  gateway: number
  /** The storage node processes together (0 without node processes). */
  nodes: number
  /** The catalog's process (`blobfs up`, which serves the embedded catalog; 0 when not measured). */
  catalog: number
}

export interface Setup {
  description: string
  gw: Target
  direct: Target
  /** The gateway's large GET read by curl instead of the SDK (the real cluster only). */
  curl?: LaneReader
  cpuUs(): Promise<OtherCpu>
  /** Stops everything the setup started (the targets included). */
  close(): Promise<void>
}

const nodeCount = 12
const stopTimeoutMs = 60_000

export async function clusterSetup(root: string): Promise<Setup> {
  // --block-size as the object layer's benchmark: each node's pre-allocated block files.
  const up = await startUp(join(root, 'up'), ['--block-size', '1GiB'])
  const closing: (() => Promise<unknown>)[] = [
    async () => {
      // SIGINT (its clean stop), then SIGKILL to its whole process group if it lingers.
      let timer: NodeJS.Timeout | undefined
      await Promise.race([up.stop(), new Promise((resolve) => (timer = setTimeout(resolve, stopTimeoutMs)))])
      clearTimeout(timer)
      up.kill()
    },
  ]
  const close = async () => {
    for (const step of closing.reverse()) await step().catch(() => {})
  }
  try {
    const upPid = up.child.pid!
    const nodePids = childrenRunning(upPid, 'node')
    const [gatewayPid, ...moreGateways] = childrenRunning(upPid, 'gateway')
    if (nodePids.length !== nodeCount) throw new Error(`found ${nodePids.length} node processes under blobfs up, expected ${nodeCount}`)
    if (gatewayPid === undefined || moreGateways.length > 0) throw new Error('expected one gateway process under blobfs up')
    const endpoint = up.cluster.gatewayUrl
    if (endpoint === null) throw new Error('blobfs up wrote no gateway URL')
    const cluster = await openCluster(up.cluster.catalogUrl)
    closing.push(() => cluster.close())
    const gw = s3Target('blobfs gateway', { endpoint, ...up.credentials }, async () => {}, 'bench')
    const layer: BenchObjectLayer = {
      objects: cluster.objects,
      accessKey: { ...up.credentials, owner: 'bench' },
      description: 'openCluster',
      close: async () => {},
    }
    const direct = directTarget(layer, 'bench-direct')
    closing.push(() => gw.close(), () => direct.close())
    const seconds = (pid: number) => cpuSecondsOf(pid) * 1e6
    return {
      description: `blobfs up: ${nodeCount} blobfs node processes in 4 racks (fdatasync, RS(8,4)), embedded catalog, blobfs gateway process; direct = openCluster in the benchmark process`,
      gw,
      direct,
      curl: curlReader('blobfs gateway, read by curl', { endpoint, ...up.credentials }),
      cpuUs: async () => ({ gateway: seconds(gatewayPid), nodes: nodePids.reduce((sum, pid) => sum + seconds(pid), 0), catalog: seconds(upPid) }),
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

export async function inMemorySetup(objectLayerModule: string): Promise<Setup> {
  const gateway = await startServer(['--target', 'blobfs', '--object-layer', objectLayerModule])
  try {
    const gw = s3Target('blobfs gateway', gateway.info, gateway.stop)
    const module = (await import(objectLayerModule)) as { openObjectLayer(): Promise<BenchObjectLayer> }
    const direct = directTarget(await module.openObjectLayer())
    return {
      description: gateway.info.description,
      gw,
      direct,
      cpuUs: async () => ({ gateway: await gateway.cpuUs(), nodes: 0, catalog: 0 }),
      async close() {
        await gw.close().catch(() => {})
        await direct.close()
      },
    }
  } catch (error) {
    await gateway.stop()
    throw error
  }
}
