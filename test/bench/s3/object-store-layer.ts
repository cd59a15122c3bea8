// The real object layer for the S3 benchmark (--object-layer test/bench/s3/object-store-layer.ts):
// ObjectStore with its catalog on a PostgreSQL server started for the run and twelve
// in-memory storage nodes in four racks (RS(8,4), 16 MiB stripes, the defaults), so
// the figures include erasure coding, chunk checksums and catalog transactions but
// not node disks or the node HTTP hop.
import { openCatalog } from '../../../src/catalog/catalog.ts'
import { MemoryChunkStore } from '../../../src/cluster/memory-store.ts'
import { objectStoreConfig } from '../../../src/objects/config.ts'
import { ObjectStore } from '../../../src/objects/object-store.ts'
import { startPostgres } from '../../support/postgres-server.ts'
import type { BenchObjectLayer } from './memory-layer.ts'

const nodeIds = Array.from({ length: 12 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)

export async function openObjectLayer(): Promise<BenchObjectLayer> {
  const postgres = await startPostgres()
  const catalog = await openCatalog(await postgres.createDatabase())
  const objects = new ObjectStore({
    catalog,
    store: new MemoryChunkStore(nodeIds),
    candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
    config: objectStoreConfig(),
  })
  const accessKey = await catalog.accessKeys.create({ owner: 'bench' })
  return {
    objects,
    accessKey,
    description: 'ObjectStore (catalog on PostgreSQL, 12 in-memory nodes in 4 racks, RS(8,4))',
    async close() {
      await catalog.close()
      await postgres.stop()
    },
  }
}
