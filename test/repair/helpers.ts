// A small cluster for repair tests without sockets: a real catalog (per backend),
// in-memory nodes behind a fault injector, a node registry view the test edits
// (states, heartbeat ages), the object layer to write real objects, and repair
// workers over all of it.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { pino } from 'pino'
import type { Catalog } from '../../src/catalog/catalog.ts'
import type { StripeRecord } from '../../src/catalog/types.ts'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import type { NodeView } from '../../src/cluster/membership.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import type { NodeCandidate } from '../../src/cluster/placement.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import { repairConfig, RepairWorker, type RepairConfig } from '../../src/repair/repair-worker.ts'

export const silent = pino({ level: 'silent' })
export const stripeSizeBytes = 8 * 16 * 1024 // 16 KiB chunks: many stripes from little data

export function nodeId(i: number): string {
  return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`
}

export interface RepairHarness {
  catalog: Catalog
  memory: MemoryChunkStore
  store: FaultInjectingChunkStore
  views: NodeView[]
  objects: ObjectStore
  bucket: string
  worker(owner?: string, overrides?: Partial<RepairConfig>): RepairWorker
  /** A node is DOWN past the grace, its disk gone: reads fail, its chunks are lost. */
  lose(index: number): void
  /** Adds an empty node to the registry and the memory store. */
  addNode(index: number, rack: string): void
  put(key: string, data: Buffer): Promise<void>
  read(key: string): Promise<Buffer>
  stripes(key: string): Promise<StripeRecord[]>
}

export function candidatesOf(views: readonly NodeView[]): NodeCandidate[] {
  return views.filter((v) => v.state === 'UP').map((v) => ({ id: v.id, rack: v.rack, freeBytes: 1e12 }))
}

export async function repairHarness(catalog: Catalog, nodeCount: number, racks: number): Promise<RepairHarness> {
  const views: NodeView[] = []
  const memory = new MemoryChunkStore()
  const store = new FaultInjectingChunkStore(memory, 7)
  const bucket = 'repair-test'
  const harness: RepairHarness = {
    catalog,
    memory,
    store,
    views,
    bucket,
    objects: new ObjectStore({
      catalog,
      store,
      candidates: () => candidatesOf(views),
      config: objectStoreConfig({ stripeSizeBytes, loadWindowBytes: 4 * stripeSizeBytes, hedgeAfterMs: 1000, getTimeoutMs: 5000 }),
    }),
    worker: (owner = 'w1', overrides = {}) =>
      new RepairWorker({
        catalog,
        store,
        nodes: () => views,
        candidates: () => candidatesOf(views),
        owner,
        config: repairConfig({ leaseMs: 10_000, concurrency: 4, rateBytesPerSec: 1e12, idleMs: 5, retryMsMin: 1, retryMsMax: 5, downTimeoutMs: 1000, repairGraceMs: 1000, ...overrides }),
        log: silent,
      }),
    lose(index) {
      const view = views.find((v) => v.id === nodeId(index))!
      view.state = 'DOWN'
      view.heartbeatAgeMs = 60_000
      store.setNodeFaults(view.id, { down: true })
      memory.wipeNode(view.id)
    },
    addNode(index, rack) {
      memory.addNode(nodeId(index))
      views.push({ id: nodeId(index), address: 'memory', rack, state: 'UP', capacityBytes: 1e12, usedBytes: 0, heartbeatAgeMs: 0 })
    },
    async put(key, data) {
      await harness.objects.putObject(bucket, key, Readable.from([data]))
    },
    async read(key) {
      return streamToBuffer((await harness.objects.getObject(bucket, key)).body)
    },
    async stripes(key) {
      const found = await catalog.objects.lookup(bucket, key, { offsetBytes: 0, lengthBytes: 1 << 30 })
      assert.ok(found, `${key} exists`)
      return found.stripes
    },
  }
  for (let i = 0; i < nodeCount; i++) harness.addNode(i, `rack-${i % racks}`)
  await harness.objects.createBucket(bucket, 'tester')
  return harness
}

/** Steps the worker until the queue has nothing claimable and nothing leased. */
export async function drain(worker: RepairWorker, catalog: Catalog, stepsMax = 500): Promise<void> {
  const signal = new AbortController().signal
  for (let i = 0; i < stepsMax; i++) {
    const result = await worker.step(signal)
    if (result.state === 'idle') {
      const stats = await catalog.repairs.stats()
      if (stats.ready === 0 && stats.leased === 0) return
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  assert.fail(`the repair queue did not drain in ${stepsMax} steps: ${JSON.stringify(await catalog.repairs.stats())}`)
}

/** Every chunk row points at a node that holds exactly those bytes (by checksum root). */
export async function assertChunksIntact(h: RepairHarness, key: string): Promise<void> {
  for (const stripe of await h.stripes(key)) {
    for (const chunk of stripe.chunks) {
      const info = await h.memory.head(chunk.nodeId, chunk.chunkId)
      assert.ok(info, `chunk ${chunk.chunkIndex} of stripe ${stripe.stripeIndex} is on ${chunk.nodeId}`)
      assert.equal(info.root, chunk.root)
      await h.memory.get(chunk.nodeId, chunk.chunkId) // verifies every page
    }
  }
}
