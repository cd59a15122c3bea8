// The garbage collectors of one `blobfs node` process, assembled at the
// composition root (src/node knows nothing of the catalog): the chunk GC and the
// inventory sweep work on this node's own chunks through its own chunk API, and
// the multipart GC aborts idle sessions cluster-wide (every node runs it; the
// catalog makes that safe). They run as adopted workers of the node, so they show
// in its /health and /metrics and stop with it.
import type { Catalog } from '../catalog/catalog.ts'
import { HttpChunkStore } from '../cluster/http-store.ts'
import { BlobfsError } from '../errors.ts'
import { chunkGcDeletesPerSecDefault, gcIdleMsDefault, inventorySweepIntervalMsDefault, multipartGcIntervalMsDefault, multipartIdleMsDefault, orphanGraceMsDefault } from '../limits.ts'
import type { Logger } from '../log.ts'
import type { StorageNode } from '../node/node.ts'
import { ChunkGc } from '../repair/chunk-gc.ts'
import { InventorySweep } from '../repair/inventory-sweep.ts'
import { MultipartGc } from '../repair/multipart-gc.ts'

export interface NodeGcConfig {
  /** Multipart sessions idle this long are aborted. */
  multipartIdleMs: number
  /** Unreferenced chunks younger than this are left alone by the sweep. */
  orphanGraceMs: number
  deletesPerSecMax: number
  /** Between multipart scans. */
  multipartIntervalMs: number
  /** Between inventory sweeps. */
  sweepIntervalMs: number
  /** How soon an idle chunk GC looks at the queue again. */
  gcIdleMs: number
}

export function nodeGcConfig(input: Partial<NodeGcConfig> = {}): Readonly<NodeGcConfig> {
  const config: NodeGcConfig = {
    multipartIdleMs: multipartIdleMsDefault,
    orphanGraceMs: orphanGraceMsDefault,
    deletesPerSecMax: chunkGcDeletesPerSecDefault,
    multipartIntervalMs: multipartGcIntervalMsDefault,
    sweepIntervalMs: inventorySweepIntervalMsDefault,
    gcIdleMs: gcIdleMsDefault,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  }
  for (const [key, value] of Object.entries(config)) {
    if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) throw new BlobfsError('InvalidArgument', `${key} must be a positive number`)
  }
  return Object.freeze(config)
}

export interface NodeGc {
  chunkGc: ChunkGc
  multipartGc: MultipartGc
  sweep: InventorySweep
  /** Releases the HTTP pool; call after the node stopped (which stops the workers). */
  close(): Promise<void>
}

export function startNodeGc(node: StorageNode, catalog: Catalog, config: Readonly<NodeGcConfig>, log: Logger): NodeGc {
  const store = new HttpChunkStore({
    resolve: (id) => {
      if (id !== node.nodeId) throw new BlobfsError('Internal', `the GC of node ${node.nodeId} reached for node ${id}`)
      return node.url
    },
  })
  const owner = `${node.nodeId}:${process.pid}`
  const chunkGc = new ChunkGc({ catalog, store, nodeId: node.nodeId, owner, log: log.child({ worker: 'chunk-gc' }), deletesPerSecMax: config.deletesPerSecMax, idleMs: config.gcIdleMs })
  const multipartGc = new MultipartGc({ catalog, log: log.child({ worker: 'multipart-gc' }), idleMs: config.multipartIdleMs, intervalMs: config.multipartIntervalMs })
  const sweep = new InventorySweep({
    catalog,
    store,
    nodeId: node.nodeId,
    log: log.child({ worker: 'inventory-sweep' }),
    graceMs: config.orphanGraceMs,
    intervalMs: config.sweepIntervalMs,
  })
  for (const worker of [chunkGc, multipartGc, sweep]) node.adopt(worker)
  return { chunkGc, multipartGc, sweep, close: () => store.close() }
}
