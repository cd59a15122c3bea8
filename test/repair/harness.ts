// An in-memory cluster for the GC and drain tests: a real catalog (PostgreSQL or
// PGlite, see test/catalog/harness.ts), twelve in-memory nodes in four racks
// behind a fault injector, and the object layer writing to them — so the workers
// run exactly as in a node process, without sockets.
import { Readable } from 'node:stream'
import type { Catalog } from '../../src/catalog/catalog.ts'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import { logger } from '../../src/log.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import type { StepResult, Worker } from '../../src/worker.ts'
import { bucketName } from '../catalog/fixtures.ts'

export const nodeIds = Array.from({ length: 12 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)
export const rackOf = (id: string) => `rack-${nodeIds.indexOf(id) % 4}`
export const stripeSizeBytes = 8 * 16 * 1024
export const quietLog = logger('test').child({}, { level: 'silent' })

export interface MemoryCluster {
  catalog: Catalog
  memory: MemoryChunkStore
  store: FaultInjectingChunkStore
  objects: ObjectStore
  bucket: string
  /** Every chunk held by any node, as "node/chunk". */
  stored(): Set<string>
  /** Every chunk row of the catalog, as "node/chunk" (read directly: tests only). */
  referenced(): Promise<Set<string>>
  put(key: string, data: Buffer): Promise<void>
}

export async function memoryCluster(
  catalog: Catalog,
  options: { now?: () => number; candidates?: () => string[]; dataShards?: number; parityShards?: number } = {},
): Promise<MemoryCluster> {
  const memory = new MemoryChunkStore(nodeIds, options.now)
  const store = new FaultInjectingChunkStore(memory, 7)
  const objects = new ObjectStore({
    catalog,
    store,
    candidates: () => (options.candidates?.() ?? nodeIds).map((id) => ({ id, rack: rackOf(id), freeBytes: 1e12 })),
    config: objectStoreConfig({
      stripeSizeBytes,
      loadWindowBytes: 2 * stripeSizeBytes,
      hedgeAfterMs: 1000,
      getTimeoutMs: 5000,
      ...(options.dataShards !== undefined ? { dataShards: options.dataShards } : {}),
      ...(options.parityShards !== undefined ? { parityShards: options.parityShards } : {}),
    }),
  })
  const bucket = bucketName('gc')
  await objects.createBucket(bucket, 'owner-gc')
  return {
    catalog,
    memory,
    store,
    objects,
    bucket,
    stored: () => new Set(nodeIds.flatMap((node) => memory.chunkIds(node).map((chunk) => `${node}/${chunk}`))),
    referenced: async () => {
      const rows = await catalog.db.sql<{ storage_node_id: string; chunk_id: string }[]>`SELECT storage_node_id, chunk_id FROM object_chunks_allocation`
      return new Set(rows.map((r) => `${r.storage_node_id}/${r.chunk_id}`))
    },
    put: async (key, data) => {
      await objects.putObject(bucket, key, Readable.from([data]))
    },
  }
}

/** Steps a worker until it reports idle (or `stepsMax` steps, then fails). */
export async function runUntilIdle(worker: Worker, stepsMax = 10_000): Promise<StepResult[]> {
  const results: StepResult[] = []
  const signal = new AbortController().signal
  for (let i = 0; i < stepsMax; i++) {
    const result = await worker.step(signal)
    results.push(result)
    if (result.state === 'idle') return results
  }
  throw new Error(`${worker.name} was still busy after ${stepsMax} steps`)
}
