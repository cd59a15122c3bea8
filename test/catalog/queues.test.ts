// Work queues: concurrent claimers never share a task, expired leases are claimed
// again (and the late holder can no longer complete), a stripe is never queued
// twice, and a stripe reported again while being repaired goes back in the queue.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { openCatalog, type Catalog } from '../../src/catalog/catalog.ts'
import type { RepairTask, StripeKey } from '../../src/catalog/queues.ts'
import { bucketName, chunkIdsOf, MiB, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

const stripeKey = (t: StripeKey) => `${t.objectId}/${t.partNumber}/${t.stripeIndex}`

/** Makes every lease of `table` run out now (instead of waiting for the clock). */
async function expireLeases(catalog: Catalog, table: 'repair_tasks' | 'chunk_deletions'): Promise<void> {
  await catalog.db.sql.unsafe(`UPDATE ${table} SET available_at = now() - INTERVAL '1 second' WHERE lease_token IS NOT NULL`)
}

forEachBackend((backend) => {
  test('concurrent claimers never hold the same repair task, and together they take every task', async () => {
    const url = await backend.freshUrl()
    const workers = await Promise.all(Array.from({ length: 6 }, () => openCatalog(url, { connectionsMax: 2 })))
    try {
      const tasks = Array.from({ length: 60 }, (_, i) => ({ objectId: randomUUID(), partNumber: 1, stripeIndex: i, reason: 'CORRUPT' as const }))
      assert.equal(await workers[0]!.repairs.enqueue(tasks), 60)
      const held = new Map<string, string>()
      await Promise.all(
        workers.map(async (worker, w) => {
          for (;;) {
            const claimed = await worker.repairs.claim({ owner: `worker-${w}`, leaseMs: 600_000, limit: 3 })
            if (claimed.length === 0) return
            assert.ok(claimed.length <= 3, `worker-${w} asked for 3 tasks and got ${claimed.length}`)
            for (const task of claimed) {
              const key = stripeKey(task)
              assert.ok(!held.has(key), `${key} claimed by ${held.get(key)} and worker-${w}`)
              held.set(key, `worker-${w}`)
              assert.equal(task.lease.owner, `worker-${w}`)
              assert.equal(task.attempts, 1)
            }
          }
        }),
      )
      assert.deepEqual([...held.keys()].sort(), tasks.map(stripeKey).sort())
      assert.deepEqual(await workers[0]!.repairs.stats(), { ready: 0, leased: 60, delayed: 0 })
    } finally {
      await Promise.all(workers.map((w) => w.close()))
    }
  })

  test('a claim takes at most `limit` tasks, also when the planner thinks the queue is empty (analyzed after it drained)', async () => {
    const catalog = await backend.freshCatalog()
    const stripes = (n: number) => Array.from({ length: n }, (_, i) => ({ objectId: randomUUID(), partNumber: 1, stripeIndex: i, reason: 'NODE_DOWN' as const }))
    const chunks = (n: number) => Array.from({ length: n }, () => ({ nodeId: 'node-a', chunkId: randomUUID() }))
    // A round of work drains both queues; statistics then say they are empty.
    await catalog.repairs.enqueue(stripes(72))
    await catalog.deletions.enqueue(chunks(72), { delayMs: 0 })
    for (let t = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 100 }); t.length > 0; t = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 100 })) {
      for (const task of t) assert.equal(await catalog.repairs.complete(task), 'done')
    }
    for (let t = await catalog.deletions.claim({ owner: 'a', leaseMs: 60_000, limit: 100 }); t.length > 0; t = await catalog.deletions.claim({ owner: 'a', leaseMs: 60_000, limit: 100 })) {
      for (const task of t) await catalog.deletions.complete(task)
    }
    await catalog.db.sql`ANALYZE repair_tasks`
    await catalog.db.sql`ANALYZE chunk_deletions`
    // The next failure queues 40 stripes and 40 deletions: a worker asking for 2 gets 2.
    await catalog.repairs.enqueue(stripes(40))
    await catalog.deletions.enqueue(chunks(40), { delayMs: 0 })
    assert.equal((await catalog.repairs.claim({ owner: 'b', leaseMs: 60_000, limit: 2 })).length, 2)
    assert.deepEqual(await catalog.repairs.stats(), { ready: 38, leased: 2, delayed: 0 })
    assert.equal((await catalog.deletions.claim({ owner: 'b', leaseMs: 60_000, limit: 2, nodeId: 'node-a' })).length, 2)
    assert.equal((await catalog.deletions.claim({ owner: 'b', leaseMs: 60_000, limit: 3 })).length, 3)
  })

  test('an expired lease is claimed again; the old holder can neither extend nor complete it', async () => {
    const catalog = await backend.freshCatalog()
    const objectId = randomUUID()
    await catalog.repairs.enqueue([{ objectId, partNumber: 2, stripeIndex: 7, reason: 'NODE_DOWN', detail: 'node-3' }])
    const [first] = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 })
    assert.ok(first)
    assert.deepEqual([first.objectId, first.partNumber, first.stripeIndex, first.reason, first.detail], [objectId, 2, 7, 'NODE_DOWN', 'node-3'])
    assert.deepEqual(await catalog.repairs.claim({ owner: 'b', leaseMs: 60_000, limit: 10 }), [], 'held under lease')
    assert.equal(await catalog.repairs.extend(first, 60_000), true)
    await expireLeases(catalog, 'repair_tasks')
    const [second] = await catalog.repairs.claim({ owner: 'b', leaseMs: 60_000, limit: 10 })
    assert.ok(second)
    assert.notEqual(second.lease.token, first.lease.token)
    assert.equal(second.attempts, 2)
    assert.equal(await catalog.repairs.extend(first, 60_000), false)
    assert.equal(await catalog.repairs.release(first, { retryAfterMs: 0, error: 'late' }), false)
    assert.equal(await catalog.repairs.complete(first), 'lost')
    assert.equal(await catalog.repairs.complete(second), 'done')
    assert.deepEqual(await catalog.repairs.stats(), { ready: 0, leased: 0, delayed: 0 })
  })

  test('a stripe is queued once; a new report during a repair sends it back to the queue', async () => {
    const catalog = await backend.freshCatalog()
    const key = { objectId: randomUUID(), partNumber: 1, stripeIndex: 0 }
    assert.equal(await catalog.repairs.enqueue([{ ...key, reason: 'CORRUPT' }]), 1)
    await catalog.repairs.enqueue([{ ...key, reason: 'CORRUPT' }])
    const claimed = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 })
    assert.equal(claimed.length, 1, 'one task for the stripe')
    await catalog.repairs.enqueue([{ ...key, reason: 'NODE_DOWN' }])
    assert.equal(await catalog.repairs.complete(claimed[0]!), 'requeued')
    const [again] = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 })
    assert.ok(again)
    assert.equal(again.reason, 'NODE_DOWN')
    assert.equal(await catalog.repairs.complete(again), 'done')
    // A failure backs off: the task waits, then is claimable.
    await catalog.repairs.enqueue([{ ...key, reason: 'CORRUPT' }])
    const [failing] = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 })
    assert.equal(await catalog.repairs.release(failing!, { retryAfterMs: 3_600_000, error: 'no node in rack r2' }), true)
    assert.deepEqual(await catalog.repairs.stats(), { ready: 0, leased: 0, delayed: 1 })
    assert.deepEqual(await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 }), [])
    await catalog.repairs.enqueue([{ ...key, reason: 'CORRUPT' }]) // a new report makes it claimable now
    const [retried] = await catalog.repairs.claim({ owner: 'a', leaseMs: 60_000, limit: 10 })
    assert.equal(retried!.lastError, 'no node in rack r2')
  })

  test('stripes are queued from chunk ids and from a dead node, batch by batch', async () => {
    const catalog = await backend.freshCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const nodes = Array.from({ length: 12 }, (_, i) => `n${i}`)
    const inputs = [stripedObject(bucket, 'a', 40 * MiB, { shape: { nodes } }), stripedObject(bucket, 'b', 20 * MiB, { shape: { nodes } })]
    for (const input of inputs) await catalog.objects.commit(input)
    assert.equal(await catalog.repairs.enqueueChunks([chunkIdsOf(inputs[0]!)[0]!, chunkIdsOf(inputs[0]!)[1]!, randomUUID()], 'CORRUPT'), 1)
    const seen: RepairTask[] = []
    let cursor: string | undefined
    let batchesRun = 0
    do {
      const result = await catalog.repairs.enqueueNode('n5', { afterChunkId: cursor, limit: 2 })
      cursor = result.nextAfterChunkId ?? undefined
      batchesRun++
    } while (cursor !== undefined)
    assert.ok(batchesRun >= 3)
    seen.push(...(await catalog.repairs.claim({ owner: 'x', leaseMs: 60_000, limit: 100 })))
    // n5 holds chunk 5 of every stripe: 3 stripes of a, 2 of b, each queued once.
    assert.equal(seen.length, 5)
    assert.deepEqual(
      seen.map((t) => [t.objectId === inputs[0]!.objectId ? 'a' : 'b', t.stripeIndex]).sort(),
      [['a', 0], ['a', 1], ['a', 2], ['b', 0], ['b', 1]],
    )
  })

  test('NODE_DOWN tasks whose node came back are dropped; other reasons and leased tasks stay', async () => {
    const catalog = await backend.freshCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const nodes = Array.from({ length: 12 }, (_, i) => `d${i}`)
    for (const id of nodes) await catalog.nodes.heartbeat({ id, address: `http://${id}`, rack: 'r', capacityBytes: 1, usedBytes: 0 })
    const input = stripedObject(bucket, 'a', 64 * MiB, { shape: { nodes } }) // 4 stripes, chunk i on d<i>
    await catalog.objects.commit(input)
    await catalog.nodes.markDown('d3')
    await catalog.nodes.markDown('d7')
    for (const node of ['d3', 'd7']) await catalog.repairs.enqueueNode(node, { limit: 100 })
    assert.equal((await catalog.repairs.stats()).ready, 4)
    const stripe2 = { objectId: input.objectId, partNumber: 1, stripeIndex: 2 }
    const claimed = await catalog.repairs.claim({ owner: 'w', leaseMs: 60_000, limit: 100 })
    const leased = claimed.find((t) => t.stripeIndex === 0)!
    for (const task of claimed) if (task !== leased) assert.equal(await catalog.repairs.release(task, { retryAfterMs: 0, error: 'given back' }), true)
    const failing = await catalog.repairs.failing({ limit: 10 })
    assert.deepEqual(failing.map((t) => [t.stripeIndex, t.lastError]).sort(), [[1, 'given back'], [2, 'given back'], [3, 'given back']])
    await catalog.repairs.enqueue([{ ...stripe2, reason: 'CORRUPT' }]) // a read found rot in stripe 2 as well
    assert.equal(await catalog.repairs.dropUnneeded({ limit: 100 }), 0, 'both nodes are still down')
    await catalog.nodes.heartbeat({ id: 'd3', address: 'http://d3', rack: 'r', capacityBytes: 1, usedBytes: 0 })
    assert.equal(await catalog.repairs.dropUnneeded({ limit: 100 }), 0, 'd7 is still down and holds a chunk of every stripe')
    await catalog.nodes.heartbeat({ id: 'd7', address: 'http://d7', rack: 'r', capacityBytes: 1, usedBytes: 0 })
    assert.equal(await catalog.repairs.dropUnneeded({ limit: 1 }), 1, 'bounded by the limit')
    assert.equal(await catalog.repairs.dropUnneeded({ limit: 100 }), 4 - 1 - 1 - 1, 'the leased task and the CORRUPT one stay')
    const left = await catalog.db.sql`SELECT stripe_index, reason, lease_token IS NOT NULL AS leased FROM repair_tasks ORDER BY stripe_index`
    assert.equal(left.length, 2)
    assert.ok(left.some((r) => r.stripe_index === 2 && r.reason === 'CORRUPT'))
    assert.ok(left.some((r) => r.stripe_index === 0 && r.leased))
  })

  test('chunk deletions: delays, per-node claims, leases', async () => {
    const catalog = await backend.freshCatalog()
    const now = Array.from({ length: 4 }, () => ({ nodeId: 'n1', chunkId: randomUUID() }))
    const other = { nodeId: 'n2', chunkId: randomUUID() }
    const later = { nodeId: 'n1', chunkId: randomUUID() }
    assert.equal(await catalog.deletions.enqueue([...now, other], { delayMs: 0 }), 5)
    assert.equal(await catalog.deletions.enqueue([now[0]!], { delayMs: 0 }), 0, 'not queued twice')
    await catalog.deletions.enqueue([later], { delayMs: 3_600_000 })
    assert.deepEqual(await catalog.deletions.stats({ nodeId: 'n1' }), { ready: 4, leased: 0, delayed: 1 })
    const claimed = await catalog.deletions.claim({ owner: 'gc', leaseMs: 60_000, limit: 10, nodeId: 'n1' })
    assert.deepEqual(claimed.map((t) => t.chunkId).sort(), now.map((c) => c.chunkId).sort())
    assert.ok(await catalog.deletions.complete(claimed[0]!))
    assert.ok(await catalog.deletions.extend(claimed[1]!, 60_000))
    assert.ok(await catalog.deletions.release(claimed[2]!, { retryAfterMs: 0, error: 'node unreachable' }))
    await expireLeases(catalog, 'chunk_deletions')
    const again = await catalog.deletions.claim({ owner: 'gc2', leaseMs: 60_000, limit: 10, nodeId: 'n1' })
    assert.deepEqual(again.map((t) => t.chunkId).sort(), [claimed[1]!.chunkId, claimed[2]!.chunkId, claimed[3]!.chunkId].sort())
    assert.equal(await catalog.deletions.complete(claimed[1]!), false, 'the old lease is gone')
    assert.equal(again.find((t) => t.chunkId === claimed[2]!.chunkId)!.lastError, 'node unreachable')
    const n2 = await catalog.deletions.claim({ owner: 'gc', leaseMs: 60_000, limit: 10, nodeId: 'n2' })
    assert.deepEqual(n2.map((t) => t.chunkId), [other.chunkId])
  })

  test('concurrent deletion claimers never share a chunk', async () => {
    const url = await backend.freshUrl()
    const workers = await Promise.all(Array.from({ length: 4 }, () => openCatalog(url, { connectionsMax: 2 })))
    try {
      const chunks = Array.from({ length: 40 }, (_, i) => ({ nodeId: `n${i % 3}`, chunkId: randomUUID() }))
      await workers[0]!.deletions.enqueue(chunks, { delayMs: 0 })
      const taken = new Set<string>()
      await Promise.all(
        workers.map(async (worker, w) => {
          for (;;) {
            const claimed = await worker.deletions.claim({ owner: `w${w}`, leaseMs: 600_000, limit: 4 })
            if (claimed.length === 0) return
            for (const task of claimed) {
              assert.ok(!taken.has(task.chunkId))
              taken.add(task.chunkId)
            }
          }
        }),
      )
      assert.equal(taken.size, 40)
    } finally {
      await Promise.all(workers.map((w) => w.close()))
    }
  })
})
