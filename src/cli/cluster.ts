// The composition root every command uses to reach a cluster: from a catalog URL
// (or the directory of a `blobfs up`) to a ready ObjectStore — catalog, membership
// view of the nodes, HTTP chunk store, and the object layer with read-reported bad
// chunks going to the repair queue. Only cli/ assembles layers; the layers
// themselves never look each other up.
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { openCatalog, type Catalog, type CatalogOptions } from '../catalog/catalog.ts'
import { runningCatalogUrl } from '../catalog/embedded.ts'
import { HttpChunkStore } from '../cluster/http-store.ts'
import { Membership } from '../cluster/membership.ts'
import { BlobfsError } from '../errors.ts'
import { logger } from '../log.ts'
import { objectStoreConfig, type ObjectStoreConfig } from '../objects/config.ts'
import { ObjectStore } from '../objects/object-store.ts'

export const membershipRefreshMsDefault = 2_000
export const heartbeatStaleMsDefault = 15_000

/** What `blobfs up` writes into its directory so other commands can find it. */
export interface ClusterFile {
  catalogUrl: string
  gatewayUrl: string | null
  mountpoint: string | null
  pid: number
  startedAt: string
}

export const clusterFileName = 'cluster.json'

export async function readClusterFile(dataDir: string): Promise<ClusterFile | null> {
  try {
    return JSON.parse(await readFile(join(resolve(dataDir), clusterFileName), 'utf8')) as ClusterFile
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

export const dataDirDefault = './blobfs-data'

/** --catalog wins; else the embedded catalog a `blobfs up` serves for --data (default ./blobfs-data). */
export async function resolveCatalogUrl(options: { catalog?: string | undefined; data?: string | undefined }): Promise<string> {
  if (options.catalog) return options.catalog
  const dataDir = resolve(options.data ?? dataDirDefault)
  const url = runningCatalogUrl(dataDir)
  if (!url) {
    throw new BlobfsError('CatalogUnavailable', `no running cluster in ${dataDir}: start it with \`blobfs up --data ${options.data ?? dataDirDefault}\`, or pass --catalog postgres://...`)
  }
  return url
}

export interface Cluster {
  catalog: Catalog
  membership: Membership
  store: HttpChunkStore
  objects: ObjectStore
  close(): Promise<void>
}

export async function openCluster(catalogUrl: string, overrides: Partial<ObjectStoreConfig> = {}, catalogOptions: CatalogOptions = {}): Promise<Cluster> {
  const log = logger('cluster')
  const shape = objectStoreConfig(overrides)
  const catalog = await openCatalog(catalogUrl, catalogOptions)
  const membership = new Membership({
    load: async () => (await catalog.nodes.list()).map((n) => ({ ...n })),
    refreshIntervalMs: membershipRefreshMsDefault,
    heartbeatStaleMs: heartbeatStaleMsDefault,
    // A stripe is written on every UP node rather than refused when the catalog stalled.
    placementNodesWanted: shape.dataShards + shape.parityShards,
    onError: (error) => log.warn({ err: error }, 'refreshing the node registry failed; using the last view'),
  })
  try {
    await membership.start()
  } catch (error) {
    await catalog.close()
    throw error
  }
  const store = new HttpChunkStore({ resolve: (node) => membership.address(node) })
  const objects = new ObjectStore({
    catalog,
    store,
    candidates: () => membership.candidates(),
    refreshCandidates: () => membership.refresh(),
    config: objectStoreConfig(overrides),
    reportBadChunk: (objectId, chunk, code) => {
      log.warn({ objectId, chunkId: chunk.chunkId, nodeId: chunk.nodeId, code }, 'bad chunk found by a read; queueing repair')
      catalog.repairs
        .enqueueChunks([chunk.chunkId], code === 'ChunkCorrupt' ? 'CORRUPT' : 'MISSING', `read from ${chunk.nodeId}: ${code}`)
        .catch((error: unknown) => log.error({ err: error, chunkId: chunk.chunkId }, 'could not queue the repair'))
    },
  })
  return {
    catalog,
    membership,
    store,
    objects,
    async close() {
      membership.stop()
      await store.close?.()
      await catalog.close()
    },
  }
}

/** The object layer of the cluster at `--catalog` / `--data`, for the front-end commands. */
export async function openObjectLayer(where: { catalog?: string | undefined; data?: string | undefined; catalogUrl?: string }): Promise<{ objects: ObjectStore; close(): Promise<void> }> {
  const cluster = await openCluster(where.catalogUrl ?? (await resolveCatalogUrl(where)))
  return { objects: cluster.objects, close: () => cluster.close() }
}
