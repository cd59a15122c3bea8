// Storage-node registry, access keys, and the chunk map as repair and GC use it.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { isBlobfsError } from '../../src/errors.ts'
import { bucketName, chunkIdsOf, MiB, partInput, queuedDeletions, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

forEachBackend((backend) => {
  test('nodes heartbeat, go DOWN when stale, come back UP; operator states stick', async () => {
    const catalog = await backend.freshCatalog()
    const base = { capacityBytes: 1000, usedBytes: 100 }
    const a = await catalog.nodes.heartbeat({ id: 'a', address: 'http://127.0.0.1:1', rack: 'r1', ...base })
    assert.deepEqual([a.id, a.state, a.rack, a.capacityBytes, a.usedBytes], ['a', 'UP', 'r1', 1000, 100])
    await catalog.nodes.heartbeat({ id: 'b', address: 'http://127.0.0.1:2', rack: 'r2', ...base })
    await catalog.nodes.heartbeat({ id: 'c', address: 'http://127.0.0.1:3', rack: 'r2', ...base, usedBytes: 2000 })
    assert.deepEqual((await catalog.nodes.listWritable({ heartbeatWithinMs: 60_000 })).map((n) => [n.id, n.freeBytes]), [
      ['a', 900],
      ['b', 900],
      ['c', 0],
    ])
    // b stops heartbeating (its last heartbeat moved into the past).
    await catalog.db.sql`UPDATE storage_nodes SET last_heartbeat = now() - INTERVAL '5 minutes' WHERE node_id = 'b'`
    assert.ok((await catalog.nodes.get('b'))!.heartbeatAgeMs >= 299_000)
    assert.deepEqual((await catalog.nodes.listWritable({ heartbeatWithinMs: 60_000 })).map((n) => n.id), ['a', 'c'])
    assert.deepEqual(await catalog.nodes.markStaleDown({ heartbeatWithinMs: 60_000 }), ['b'])
    assert.deepEqual(await catalog.nodes.markStaleDown({ heartbeatWithinMs: 60_000 }), [], 'already DOWN')
    assert.equal((await catalog.nodes.get('b'))!.state, 'DOWN')
    assert.equal((await catalog.nodes.heartbeat({ id: 'b', address: 'http://127.0.0.1:22', rack: 'r2', ...base })).state, 'UP')
    assert.equal((await catalog.nodes.get('b'))!.address, 'http://127.0.0.1:22')
    await catalog.nodes.setState('c', 'READONLY')
    assert.equal((await catalog.nodes.heartbeat({ id: 'c', address: 'http://127.0.0.1:3', rack: 'r2', ...base })).state, 'READONLY')
    assert.equal((await catalog.nodes.markDown('a')).state, 'DOWN')
    assert.deepEqual((await catalog.nodes.list()).map((n) => [n.id, n.state]), [
      ['a', 'DOWN'],
      ['b', 'UP'],
      ['c', 'READONLY'],
    ])
    assert.deepEqual((await catalog.nodes.listWritable({ heartbeatWithinMs: 60_000 })).map((n) => n.id), ['b'])
    await assert.rejects(catalog.nodes.setState('nope', 'UP'), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.nodes.setState('a', 'BROKEN' as never), (e) => isBlobfsError(e, 'InvalidArgument'))
    assert.equal(await catalog.nodes.get('nope'), null)
  })

  test('access keys are created, found, listed by owner and deleted', async () => {
    const catalog = await backend.sharedCatalog()
    const owner = `owner-${randomUUID()}`
    const made = await catalog.accessKeys.create({ owner })
    assert.match(made.accessKeyId, /^BF[A-Z2-7]{18}$/)
    assert.equal(made.secretAccessKey.length, 40)
    const chosen = await catalog.accessKeys.create({ owner, accessKeyId: `K${randomUUID()}`, secretAccessKey: 'secret' })
    await assert.rejects(catalog.accessKeys.create({ owner, accessKeyId: chosen.accessKeyId }), (e) => isBlobfsError(e, 'AlreadyExists'))
    assert.deepEqual(await catalog.accessKeys.get(chosen.accessKeyId), chosen)
    assert.deepEqual((await catalog.accessKeys.list({ owner })).map((k) => k.accessKeyId).sort(), [made.accessKeyId, chosen.accessKeyId].sort())
    assert.equal(await catalog.accessKeys.delete(chosen.accessKeyId), true)
    assert.equal(await catalog.accessKeys.delete(chosen.accessKeyId), false)
    assert.equal(await catalog.accessKeys.get(chosen.accessKeyId), null)
    assert.equal(await catalog.accessKeys.get(''), null)
  })

  test('repair reads a stripe, records rebuilt chunks, and the replaced ones are queued for deletion', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const input = stripedObject(bucket, 'r', 20 * MiB, { shape: { missing: [10] } })
    await catalog.objects.commit(input)
    const stripe = await catalog.chunks.stripe({ objectId: input.objectId, partNumber: 1, stripeIndex: 1 })
    assert.ok(stripe)
    assert.deepEqual([stripe.scheme, stripe.dataShards, stripe.parityShards, stripe.lengthBytes, stripe.shardSizeBytes, stripe.committed], ['RS_8_4', 8, 4, 4 * MiB, MiB / 2, true])
    assert.equal(stripe.chunks.length, 11)
    const lost = stripe.chunks.find((c) => c.chunkIndex === 3)!
    const rebuilt = [3, 10].map((chunkIndex) => ({ chunkIndex, chunkId: randomUUID(), nodeId: `fresh-${chunkIndex}`, lengthBytes: MiB / 2, root: 7 }))
    assert.deepEqual(await catalog.chunks.replace(stripe, rebuilt), { applied: true, chunksQueued: 1, conflict: false })
    const after = await catalog.chunks.stripe(stripe)
    assert.equal(after!.chunks.length, 12)
    assert.deepEqual(after!.chunks.filter((c) => c.nodeId.startsWith('fresh-')).map((c) => [c.chunkIndex, c.nodeId]), [[3, 'fresh-3'], [10, 'fresh-10']])
    assert.ok((await queuedDeletions(catalog)).has(lost.chunkId))
    await assert.rejects(
      catalog.chunks.replace(stripe, [{ chunkIndex: 0, chunkId: randomUUID(), nodeId: 'x', lengthBytes: 5, root: 1 }]),
      (e) => isBlobfsError(e, 'InvalidArgument'),
    )
    // The object goes away while a repair runs: the rebuilt chunks become garbage.
    await catalog.objects.delete(bucket, 'r')
    const orphan = { chunkIndex: 1, chunkId: randomUUID(), nodeId: 'fresh', lengthBytes: MiB / 2, root: 1 }
    assert.deepEqual(await catalog.chunks.replace(stripe, [orphan]), { applied: false, chunksQueued: 1, conflict: false })
    assert.ok((await queuedDeletions(catalog)).has(orphan.chunkId))
    assert.equal(await catalog.chunks.stripe(stripe), null)
  })

  test('a conditional replace applies only over the chunk ids it was planned on', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const input = stripedObject(bucket, 'c', 4 * MiB, { shape: { missing: [11] } })
    await catalog.objects.commit(input)
    const key = { objectId: input.objectId, partNumber: 1, stripeIndex: 0 }
    const seen = (await catalog.chunks.stripe(key))!
    const old2 = seen.chunks.find((c) => c.chunkIndex === 2)!.chunkId
    const planned = new Map<number, string | null>([[2, old2], [11, null]])
    const first = [2, 11].map((chunkIndex) => ({ chunkIndex, chunkId: randomUUID(), nodeId: `a-${chunkIndex}`, lengthBytes: seen.shardSizeBytes, root: 5 }))
    assert.deepEqual(await catalog.chunks.replace(key, first, { ifChunkIds: planned }), { applied: true, chunksQueued: 1, conflict: false })
    // A second repair planned on the same (now stale) view changes nothing; its chunks become garbage at once.
    const second = [2, 11].map((chunkIndex) => ({ chunkIndex, chunkId: randomUUID(), nodeId: `b-${chunkIndex}`, lengthBytes: seen.shardSizeBytes, root: 6 }))
    assert.deepEqual(await catalog.chunks.replace(key, second, { ifChunkIds: planned }), { applied: false, chunksQueued: 2, conflict: 'changed' })
    const after = (await catalog.chunks.stripe(key))!
    assert.deepEqual(after.chunks.filter((c) => c.nodeId.startsWith('a-')).map((c) => [c.chunkIndex, c.nodeId]), [[2, 'a-2'], [11, 'a-11']])
    assert.equal(after.chunks.length, 12)
    const deletions = await queuedDeletions(catalog)
    assert.ok(deletions.has(old2) && deletions.has(second[0]!.chunkId) && deletions.has(second[1]!.chunkId))
    assert.ok(!deletions.has(first[0]!.chunkId))
  })

  test('a replace that would leave two chunks of a stripe on one node is refused and changes no row', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const input = stripedObject(bucket, 't', 4 * MiB, { shape: { missing: [11] } })
    await catalog.objects.commit(input)
    const key = { objectId: input.objectId, partNumber: 1, stripeIndex: 0 }
    const before = (await catalog.chunks.stripe(key))!
    const planned = new Map(Array.from({ length: 12 }, (_, i) => [i, before.chunks.find((c) => c.chunkIndex === i)?.chunkId ?? null] as const))
    const holder = before.chunks.find((c) => c.chunkIndex === 4)!.nodeId
    const rebuilt = (chunkIndex: number, nodeId: string) => ({ chunkIndex, chunkId: randomUUID(), nodeId, lengthBytes: before.shardSizeBytes, root: 9 })
    // Chunk 2 rebuilt onto the node that keeps chunk 4; chunk 11 onto a free node in the same call.
    const refused = [rebuilt(2, holder), rebuilt(11, 'free-11')]
    assert.deepEqual(await catalog.chunks.replace(key, refused, { ifChunkIds: planned }), { applied: false, chunksQueued: 2, conflict: 'node-taken' })
    assert.deepEqual(await catalog.chunks.replace(key, [rebuilt(7, holder)]), { applied: false, chunksQueued: 1, conflict: 'node-taken' }, 'unconditional too')
    assert.deepEqual((await catalog.chunks.stripe(key))!.chunks, before.chunks, 'no row changed')
    const deletions = await queuedDeletions(catalog)
    for (const chunk of refused) assert.ok(deletions.has(chunk.chunkId), 'the refused chunks are queued for deletion')
    assert.ok(before.chunks.every((c) => !deletions.has(c.chunkId)), 'nothing the stripe keeps is queued')
    // Two new chunks of one call on one node: a caller's error.
    await assert.rejects(catalog.chunks.replace(key, [rebuilt(2, 'same'), rebuilt(11, 'same')]), (e) => isBlobfsError(e, 'InvalidArgument'))
    // The node of a chunk being replaced in the same call is free for another index: 4 moves away, 2 goes where 4 was.
    const swap = [rebuilt(4, 'away-4'), rebuilt(2, holder)]
    assert.deepEqual(await catalog.chunks.replace(key, swap, { ifChunkIds: planned }), { applied: true, chunksQueued: 2, conflict: false })
    const after = (await catalog.chunks.stripe(key))!
    assert.deepEqual([after.chunks.find((c) => c.chunkIndex === 2)!.nodeId, after.chunks.find((c) => c.chunkIndex === 4)!.nodeId], [holder, 'away-4'])
    assert.equal(new Set(after.chunks.map((c) => c.nodeId)).size, after.chunks.length, 'one chunk per node')
  })

  test('the chunk map answers for a node and for the GC sweep; stripes of open uploads are visible to repair', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const node = `node-${randomUUID()}`
    const input = stripedObject(bucket, 'n', 40 * MiB, { shape: { nodes: [node, 'x1', 'x2', 'x3'] } })
    await catalog.objects.commit(input)
    const all = []
    let after: string | undefined
    for (;;) {
      const page = await catalog.chunks.onNode(node, { afterChunkId: after, limit: 2 })
      if (page.length === 0) break
      all.push(...page)
      after = page[page.length - 1]!.chunkId
    }
    assert.equal(all.length, 9, 'chunk indexes 0, 4 and 8 of three stripes')
    assert.deepEqual([...new Set(all.map((c) => c.chunkIndex))].sort(), [0, 4, 8])
    const ids = chunkIdsOf(input)
    const unknown = randomUUID()
    assert.deepEqual(await catalog.chunks.referenced([ids[0]!, ids[5]!, unknown]), new Set([ids[0], ids[5]]))

    const upload = await catalog.multipart.create({ bucket, key: 'u', scheme: 'RS_4_2' })
    await catalog.multipart.recordPart(upload.uploadId, partInput(1, 3 * MiB, 2 * MiB, { dataShards: 4, parityShards: 2 }))
    const open = await catalog.chunks.stripe({ objectId: upload.objectId, partNumber: 1, stripeIndex: 1 })
    assert.deepEqual([open!.committed, open!.lengthBytes, open!.shardSizeBytes, open!.chunks.length], [false, MiB, MiB / 4, 6])
  })
})
