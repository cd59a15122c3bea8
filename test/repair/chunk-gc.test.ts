// Chunk GC over a real catalog and in-memory nodes: what a delete queues is
// tombstoned on the right node and confirmed; afterwards the nodes hold exactly
// the chunks the catalog references. A node that fails keeps its deletions queued
// (with a backoff), a dead worker's lease runs out and another takes the task, and
// a chunk still referenced is never deleted whatever the queue says.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { checksumTree } from '../../src/codec/checksum.ts'
import { ChunkGc } from '../../src/repair/chunk-gc.ts'
import { RateMeter } from '../../src/repair/gc-util.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { memoryCluster, nodeIds, quietLog, runUntilIdle, stripeSizeBytes } from './harness.ts'

test('RateMeter averages events over its window and forgets older ones', () => {
  let nowMs = 0
  const meter = new RateMeter(10_000, () => nowMs)
  meter.add(50)
  nowMs = 5_000
  meter.add(50)
  assert.equal(meter.perSec(), 10)
  nowMs = 12_000 // the first 50 left the window
  assert.equal(meter.perSec(), 5)
  nowMs = 100_000
  assert.equal(meter.perSec(), 0)
})

forEachBackend((backend) => {
  const gcFor = (cluster: Awaited<ReturnType<typeof memoryCluster>>, nodeId: string, extra: Partial<ConstructorParameters<typeof ChunkGc>[0]> = {}) =>
    new ChunkGc({ catalog: cluster.catalog, store: cluster.store, nodeId, owner: `test-${nodeId.slice(-2)}`, log: quietLog, deletesPerSecMax: 1e6, idleMs: 50, ...extra })

  test('deleted and replaced objects: every queued chunk is tombstoned and the nodes hold only referenced chunks', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    const kept = randomBytes(2 * stripeSizeBytes + 5)
    for (let i = 0; i < 6; i++) await cluster.put(`obj-${i}`, randomBytes(stripeSizeBytes + 100 * i))
    await cluster.put('kept', kept)
    for (let i = 0; i < 4; i++) await cluster.objects.deleteObject(cluster.bucket, `obj-${i}`)
    await cluster.put('obj-4', randomBytes(3 * stripeSizeBytes)) // replaces: the old version's chunks are queued
    assert.ok(cluster.stored().size > (await cluster.referenced()).size, 'deleted chunks are still on the nodes before GC')
    const workers = nodeIds.map((id) => gcFor(cluster, id, { batchMax: 5 }))
    for (const worker of workers) await runUntilIdle(worker)
    assert.deepEqual(cluster.stored(), await cluster.referenced(), 'the nodes hold exactly the referenced chunks')
    assert.deepEqual(await catalog.deletions.stats(), { ready: 0, leased: 0, delayed: 0 })
    const deleted = workers.reduce((sum, w) => sum + Number(w.status().deleted), 0)
    // obj-0 is exactly one stripe, obj-1..3 and the replaced obj-4 two each: 12 chunks per stripe
    assert.equal(deleted, 12 * (1 + 2 * 3 + 2), 'tombstones written: 4 deleted objects and 1 replaced version')
    const read = await cluster.objects.getObject(cluster.bucket, 'kept')
    assert.ok(Buffer.concat(await read.body.toArray()).equals(kept), 'objects still referenced read back intact')
  })

  test('a node that fails keeps its deletions queued with a backoff; they go through once it is back', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    await cluster.put('doomed', randomBytes(stripeSizeBytes))
    await cluster.objects.deleteObject(cluster.bucket, 'doomed')
    const node = nodeIds[3]!
    cluster.store.setNodeFaults(node, { down: true })
    const gc = gcFor(cluster, node)
    await gc.step(new AbortController().signal)
    assert.equal(gc.status().failed, 1)
    const stats = await catalog.deletions.stats({ nodeId: node })
    assert.deepEqual(stats, { ready: 0, leased: 0, delayed: 1 }, 'the failed deletion waits for its retry')
    const row = await catalog.db.sql`SELECT last_error, attempts FROM chunk_deletions WHERE storage_node_id = ${node}`
    assert.match(String(row[0]!.last_error), /down/)
    assert.equal(cluster.memory.chunkIds(node).length, 1, 'the chunk is still on the node')
    cluster.store.clearNodeFaults(node)
    await catalog.db.sql`UPDATE chunk_deletions SET available_at = now() WHERE storage_node_id = ${node}` // skip the backoff
    await runUntilIdle(gc)
    assert.equal(cluster.memory.chunkIds(node).length, 0)
    assert.deepEqual(await catalog.deletions.stats({ nodeId: node }), { ready: 0, leased: 0, delayed: 0 })
  })

  test("a worker that dies mid-batch loses its lease; another worker takes the tasks", async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    await cluster.put('a', randomBytes(stripeSizeBytes))
    await cluster.objects.deleteObject(cluster.bucket, 'a')
    const node = nodeIds[0]!
    const [dead] = await catalog.deletions.claim({ owner: 'dead-worker', leaseMs: 300, limit: 10, nodeId: node })
    assert.ok(dead)
    const gc = gcFor(cluster, node)
    assert.equal((await gc.step(new AbortController().signal)).state, 'idle', 'a leased task is not taken')
    await new Promise((resolve) => setTimeout(resolve, 400))
    await runUntilIdle(gc)
    assert.equal(gc.status().deleted, 1)
    assert.equal(cluster.memory.chunkIds(node).length, 0)
    assert.equal(await catalog.deletions.complete(dead), false, "the dead worker's late confirmation finds its lease gone")
  })

  test('a chunk the catalog still references is never deleted, whatever the queue says', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    const data = randomBytes(stripeSizeBytes)
    await cluster.put('live', data)
    const [first] = [...(await cluster.referenced())]
    const [nodeId, chunkId] = first!.split('/') as [string, string]
    const stray = randomUUID() // an id no node holds: deleting it is harmless and succeeds
    await catalog.deletions.enqueue([{ nodeId, chunkId }, { nodeId, chunkId: stray }], { delayMs: 0 })
    const gc = gcFor(cluster, nodeId)
    await runUntilIdle(gc)
    assert.equal(gc.status().referencedSkipped, 1)
    assert.equal(gc.status().deleted, 1)
    assert.ok(cluster.memory.chunkIds(nodeId).includes(chunkId), 'the referenced chunk is still there')
    // The same id stored on another node (a timed-out write went to an alternate) is not referenced there: it goes.
    const other = nodeIds.find((n) => n !== nodeId)!
    const bytes = await cluster.memory.get(nodeId, chunkId)
    await cluster.memory.put(other, chunkId, bytes, checksumTree(bytes))
    await catalog.deletions.enqueue([{ nodeId: other, chunkId }], { delayMs: 0 })
    const otherGc = gcFor(cluster, other)
    await runUntilIdle(otherGc)
    assert.deepEqual([otherGc.status().deleted, otherGc.status().referencedSkipped], [1, 0])
    assert.ok(!cluster.memory.chunkIds(other).includes(chunkId) && cluster.memory.chunkIds(nodeId).includes(chunkId))
    assert.deepEqual(await catalog.deletions.stats(), { ready: 0, leased: 0, delayed: 0 }, 'the bogus task was dropped')
    const read = await cluster.objects.getObject(cluster.bucket, 'live')
    assert.ok(Buffer.concat(await read.body.toArray()).equals(data))
  })

  test('the rate bound spaces steps out', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    await cluster.put('x', randomBytes(stripeSizeBytes))
    await cluster.put('y', randomBytes(stripeSizeBytes))
    await cluster.objects.deleteObject(cluster.bucket, 'x')
    await cluster.objects.deleteObject(cluster.bucket, 'y')
    const gc = gcFor(cluster, nodeIds[5]!, { deletesPerSecMax: 2, batchMax: 1 })
    const first = await gc.step(new AbortController().signal)
    const second = await gc.step(new AbortController().signal)
    assert.equal(first.state, 'throttled')
    assert.ok(second.state === 'throttled' && second.delayMs > 600, `two deletions at 2/s wait about a second (${JSON.stringify(second)})`)
  })
})
