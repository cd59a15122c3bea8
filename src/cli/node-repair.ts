// Durability work inside every `blobfs node` process (DESIGN.md: repair is
// decentralized): the failure detector and the repair worker, over the node's own
// catalog connection, a view of the registry and an HTTP client to the peers.
// Both run as workers of the node (its /health and /metrics show them), and the
// repair metrics go into the node's registry. Lives at the composition root so that
// src/node and src/repair never import each other.
import type { Catalog } from '../catalog/catalog.ts'
import { HttpChunkStore } from '../cluster/http-store.ts'
import { Membership } from '../cluster/membership.ts'
import type { Logger } from '../log.ts'
import type { StorageNode } from '../node/node.ts'
import { FailureDetector } from '../repair/failure-detector.ts'
import { RepairMetrics } from '../repair/metrics.ts'
import { RepairWorker, type RepairConfig } from '../repair/repair-worker.ts'
import { heartbeatStaleMsDefault } from './cluster.ts'

/** Longest gap between the repair worker's background reloads of the node registry. */
export const repairRegistryRefreshMsMax = 30_000

/**
 * How often a node's repair side reloads the registry on its own. Rarely: the worker
 * reloads it right after it claims work (a view as new as its tasks), so this only
 * keeps an idle view from growing old — and 12 nodes reloading every 2 s were a
 * third of an idle cluster's catalog traffic.
 */
export function repairRegistryRefreshMs(downTimeoutMs: number): number {
  return Math.min(repairRegistryRefreshMsMax, Math.max(200, Math.floor(downTimeoutMs / 4)))
}

export interface NodeRepair {
  readonly worker: RepairWorker
  readonly detector: FailureDetector
  /** Call after the node stopped its workers. */
  close(): Promise<void>
}

export async function startNodeRepair(options: { catalog: Catalog; node: StorageNode; config: Readonly<RepairConfig>; log: Logger }): Promise<NodeRepair> {
  const { catalog, node, config, log } = options
  const membership = new Membership({
    load: async () => (await catalog.nodes.list()).map((n) => ({ ...n })),
    refreshIntervalMs: repairRegistryRefreshMs(config.downTimeoutMs),
    // A node silent for longer takes no rebuilt chunks, even before it is marked DOWN.
    heartbeatStaleMs: Math.min(heartbeatStaleMsDefault, config.downTimeoutMs),
    onError: (error) => log.warn({ err: error }, 'refreshing the node registry failed; repair uses the last view'),
  })
  await membership.start().catch((error: unknown) => log.warn({ err: error }, 'first registry load failed; it is retried'))
  const store = new HttpChunkStore({ resolve: (id) => membership.address(id) })
  const detector = new FailureDetector({
    catalog,
    config: { downTimeoutMs: config.downTimeoutMs, repairGraceMs: config.repairGraceMs },
    selfId: node.nodeId,
    log: log.child({ part: 'failure-detector' }),
  })
  let worker: RepairWorker | undefined
  const metrics = new RepairMetrics(node.metrics.registry, {
    backlog: () => catalog.repairs.stats(),
    inFlight: () => worker?.tasksInFlight ?? 0,
    nodesDown: () => Number(detector.status().nodesDown),
  })
  worker = new RepairWorker({
    catalog,
    store,
    nodes: () => membership.all(),
    candidates: () => membership.candidates(),
    refreshNodes: () => membership.refresh(),
    owner: `${node.nodeId}/${process.pid}`,
    config,
    log: log.child({ part: 'repair' }),
    metrics,
  })
  node.addWorker(detector)
  node.addWorker(worker)
  log.info({ downTimeoutMs: config.downTimeoutMs, repairGraceMs: config.repairGraceMs, concurrency: config.concurrency, rateBytesPerSec: config.rateBytesPerSec }, 'failure detection and repair started')
  return {
    worker,
    detector,
    async close() {
      membership.stop()
      await store.close()
    },
  }
}
