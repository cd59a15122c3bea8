// Draining a node over a real catalog and in-memory nodes: every chunk leaves the
// node (copied, or rebuilt when its copy is rotten), each stripe keeps one chunk
// per node and the rack rule, every object reads back byte-identical, and the
// chunk GC then empties the node. A writer that had not seen DRAINING yet is
// handled by running the drain again; a cluster with no room outside the stripe
// refuses to break the rule and loses nothing.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import type { Catalog } from '../../src/catalog/catalog.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import { ChunkGc } from '../../src/repair/chunk-gc.ts'
import { drainNode, type DrainOptions } from '../../src/repair/drain.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { memoryCluster, nodeIds, quietLog, rackOf, runUntilIdle, stripeSizeBytes, type MemoryCluster } from './harness.ts'

async function register(catalog: Catalog, ids: readonly string[]): Promise<void> {
  for (const id of ids) await catalog.nodes.heartbeat({ id, address: `http://${id}`, rack: rackOf(id), capacityBytes: 1e12, usedBytes: 0 })
}

/** Candidates as a membership view would give them: UP nodes, refreshed on demand. */
async function view(catalog: Catalog) {
  let nodes = await catalog.nodes.list()
  return {
    candidates: () => nodes.filter((n) => n.state === 'UP').map((n) => ({ id: n.id, rack: n.rack, freeBytes: 1e12 })),
    rackOf: (id: string) => nodes.find((n) => n.id === id)?.rack,
    refresh: async () => {
      nodes = await catalog.nodes.list()
    },
  }
}

async function stripesOk(cluster: MemoryCluster, perStripe: number, rackCap: number): Promise<void> {
  const rows = await cluster.catalog.db.sql<{ object_id: string; part_index: number; stripe_index: number; storage_node_id: string }[]>`
    SELECT object_id, part_index, stripe_index, storage_node_id FROM object_chunks_allocation`
  const stripes = new Map<string, string[]>()
  for (const r of rows) stripes.set(`${r.object_id}/${r.part_index}/${r.stripe_index}`, [...(stripes.get(`${r.object_id}/${r.part_index}/${r.stripe_index}`) ?? []), r.storage_node_id])
  for (const [key, nodes] of stripes) {
    assert.equal(nodes.length, perStripe, `${key} has all its chunks`)
    assert.equal(new Set(nodes).size, nodes.length, `${key}: one chunk per node`)
    const racks = new Map<string, number>()
    for (const n of nodes) racks.set(rackOf(n), (racks.get(rackOf(n)) ?? 0) + 1)
    assert.ok(Math.max(...racks.values()) <= rackCap, `${key}: at most ${rackCap} chunks per rack`)
  }
}

forEachBackend((backend) => {
  test('drain moves every chunk off the node, keeps the placement rules, and the GC then empties it', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    await register(catalog, nodeIds)
    const cluster = await memoryCluster(catalog, { dataShards: 4, parityShards: 2 })
    const data = new Map<string, Buffer>()
    for (let i = 0; i < 8; i++) {
      const bytes = randomBytes(stripeSizeBytes * (1 + (i % 3)) + i)
      data.set(`o${i}`, bytes)
      await cluster.put(`o${i}`, bytes)
    }
    const node = nodeIds[4]!
    const onNode = await catalog.chunks.countOnNode(node)
    assert.ok(onNode > 0)
    // Rot every other chunk, and every chunk of a stripe's short tail (a few bytes, mostly
    // padding): those are rebuilt from their stripes instead of copied.
    assert.equal(cluster.memory.chunkIds(node).length, onNode, 'the node holds exactly the chunks the catalog places there')
    const rotten = (await catalog.chunks.onNode(node, { limit: 1000 })).filter((c, i) => i % 2 === 0 || c.lengthBytes <= 8)
    for (const { chunkId } of rotten) {
      cluster.memory.rawBytes(node, chunkId)![0]! ^= 0xff // byte 0: a tail chunk may be 1 byte long
      await assert.rejects(cluster.memory.get(node, chunkId), /checksum|CRC|corrupt/i)
    }
    const membership = await view(catalog)
    const progress: number[] = []
    const result = await drainNode({ catalog, store: cluster.store, nodeId: node, log: quietLog, ...membership, onProgress: (p) => progress.push(p.moved) })
    assert.equal(result.drained, true, JSON.stringify(result))
    assert.deepEqual([result.moved, result.rebuilt, result.failed, result.remaining], [onNode, rotten.length, 0, 0])
    assert.equal(progress.at(-1), onNode, 'progress reached the total')
    assert.equal((await catalog.nodes.get(node))!.state, 'DRAINING')
    assert.equal(await catalog.chunks.countOnNode(node), 0)
    await stripesOk(cluster, 6, 2)
    for (const [key, bytes] of data) {
      const read = await cluster.objects.getObject(cluster.bucket, key)
      assert.ok(Buffer.concat(await read.body.toArray()).equals(bytes), `${key} reads back`)
    }
    await runUntilIdle(new ChunkGc({ catalog, store: cluster.store, nodeId: node, owner: 't', log: quietLog, deletesPerSecMax: 1e6 }))
    assert.equal(cluster.memory.chunkIds(node).length, 0, 'the old copies were deleted by the GC')
    const again = await drainNode({ catalog, store: cluster.store, nodeId: node, log: quietLog, ...membership })
    assert.deepEqual([again.drained, again.moved, again.total], [true, 0, 0], 'a second run finds nothing to do')
  })

  test('a writer that had not seen DRAINING: running the drain again moves its chunks too', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    await register(catalog, nodeIds)
    const cluster = await memoryCluster(catalog, { dataShards: 4, parityShards: 2 })
    const node = nodeIds[7]!
    const membership = await view(catalog)
    assert.equal((await drainNode({ catalog, store: cluster.store, nodeId: node, log: quietLog, ...membership })).drained, true)
    const stale = new ObjectStore({
      catalog,
      store: cluster.store,
      candidates: () => nodeIds.map((id) => ({ id, rack: rackOf(id), freeBytes: id === node ? 1e15 : 1e9 })), // still offers the node, and favours it
      config: objectStoreConfig({ stripeSizeBytes, dataShards: 4, parityShards: 2 }),
    })
    const bytes = randomBytes(4 * stripeSizeBytes)
    await stale.putObject(cluster.bucket, 'late', Readable.from([bytes]))
    assert.ok((await catalog.chunks.countOnNode(node)) > 0, 'the stale writer put chunks on the draining node')
    const result = await drainNode({ catalog, store: cluster.store, nodeId: node, log: quietLog, ...membership })
    assert.equal(result.drained, true)
    const read = await cluster.objects.getObject(cluster.bucket, 'late')
    assert.ok(Buffer.concat(await read.body.toArray()).equals(bytes))
    await stripesOk(cluster, 6, 2)
  })

  test('no room outside the stripe: the drain refuses to break the rules and loses nothing', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const six = nodeIds.slice(0, 6)
    await register(catalog, six)
    const cluster = await memoryCluster(catalog, { dataShards: 4, parityShards: 2, candidates: () => six })
    const bytes = randomBytes(2 * stripeSizeBytes)
    await cluster.put('tight', bytes)
    const membership = await view(catalog)
    const options: DrainOptions = { catalog, store: cluster.store, nodeId: six[0]!, log: quietLog, ...membership, passesMax: 1 }
    const result = await drainNode(options)
    assert.deepEqual([result.drained, result.moved, result.failed, result.remaining], [false, 0, 2, 2])
    assert.match(result.errors[0]!, /NotEnoughNodes: .*add a node first/)
    const read = await cluster.objects.getObject(cluster.bucket, 'tight')
    assert.ok(Buffer.concat(await read.body.toArray()).equals(bytes))
    await assert.rejects(drainNode({ ...options, nodeId: 'no-such-node' }), /not registered/)
    await catalog.nodes.markDown(six[1]!)
    await assert.rejects(drainNode({ ...options, nodeId: six[1]! }), /DOWN/)
  })

  test('relocate moves only the chunk it was given; a changed or vanished row, or a target that holds another chunk of the stripe, keeps the map and queues the copy', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog, { dataShards: 4, parityShards: 2 })
    await cluster.put('r', randomBytes(stripeSizeBytes))
    const found = (await catalog.objects.lookup(cluster.bucket, 'r', { offsetBytes: 0, lengthBytes: 1 }))!
    const key = { objectId: found.object.objectId, partNumber: 1, stripeIndex: 0 }
    const chunk = found.stripes[0]!.chunks[0]!
    const copy = { chunkIndex: chunk.chunkIndex, chunkId: randomUUID(), nodeId: 'elsewhere', lengthBytes: chunk.lengthBytes, root: chunk.root }
    assert.equal(await catalog.chunks.relocate(key, { chunkIndex: chunk.chunkIndex, fromChunkId: randomUUID(), to: copy }), 'changed')
    await assert.rejects(catalog.chunks.relocate(key, { chunkIndex: chunk.chunkIndex, fromChunkId: chunk.chunkId, to: { ...copy, chunkId: randomUUID(), root: (chunk.root + 1) >>> 0 } }), /differs/)
    const moved = { ...copy, chunkId: randomUUID() }
    assert.equal(await catalog.chunks.relocate(key, { chunkIndex: chunk.chunkIndex, fromChunkId: chunk.chunkId, to: moved }), 'moved')
    const state = (await catalog.chunks.stripe(key))!
    assert.deepEqual(state.chunks.find((c) => c.chunkIndex === chunk.chunkIndex), moved)
    const queued = await catalog.db.sql`SELECT chunk_id, reason FROM chunk_deletions ORDER BY reason`
    assert.deepEqual(queued.map((r) => [r.chunk_id, r.reason]), [[chunk.chunkId, 'DRAINED'], [copy.chunkId, 'ORPHANED']])
    // A target that holds another chunk of the stripe by now (a repair or another drain put it there): refused.
    const other = state.chunks.find((c) => c.chunkIndex === 1)!
    const crowded = { ...moved, chunkId: randomUUID(), nodeId: other.nodeId }
    assert.equal(await catalog.chunks.relocate(key, { chunkIndex: chunk.chunkIndex, fromChunkId: moved.chunkId, to: crowded }), 'node-taken')
    assert.deepEqual((await catalog.chunks.stripe(key))!.chunks, state.chunks, 'no row changed')
    const orphaned = await catalog.db.sql`SELECT storage_node_id FROM chunk_deletions WHERE chunk_id = ${crowded.chunkId} AND reason = 'ORPHANED'`
    assert.deepEqual(orphaned.map((r) => r.storage_node_id), [other.nodeId], 'the refused copy is queued for deletion')
    await cluster.objects.deleteObject(cluster.bucket, 'r')
    assert.equal(await catalog.chunks.relocate(key, { chunkIndex: chunk.chunkIndex, fromChunkId: moved.chunkId, to: { ...copy, chunkId: randomUUID() } }), 'gone')
  })
})
