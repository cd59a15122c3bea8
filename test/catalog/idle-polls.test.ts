// What every node asks the catalog every few seconds — a repair claim, a chunk-GC
// claim, "is any node stale?" — is answered without a transaction when the answer
// is "nothing" (the usual case), and does its work as before when it is not. A
// transaction holds its connection, and the embedded catalog's single session,
// from BEGIN to COMMIT, so idle polls that open one stall everyone else's lookups.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { Catalog } from '../../src/catalog/catalog.ts'
import { forEachBackend } from './harness.ts'

const transactions = (catalog: Catalog) => catalog.db.stats.transactions

forEachBackend((backend) => {
  test('an empty or not-yet-due queue is polled without a transaction; a due task is still claimed at once', async () => {
    const catalog = await backend.freshCatalog()
    const claim = { owner: 'poller', leaseMs: 60_000, limit: 8 }
    let before = transactions(catalog)
    assert.deepEqual(await catalog.repairs.claim(claim), [])
    assert.deepEqual(await catalog.deletions.claim({ ...claim, nodeId: 'n1' }), [])
    assert.deepEqual(await catalog.deletions.claim(claim), [])
    assert.equal(transactions(catalog), before, 'empty queues: no transaction')

    // Tasks that are not claimable by this poller: another node's deletion, a delayed one, a leased repair.
    const otherNode = { nodeId: 'n2', chunkId: randomUUID() }
    const later = { nodeId: 'n1', chunkId: randomUUID() }
    await catalog.deletions.enqueue([otherNode], { delayMs: 0 })
    await catalog.deletions.enqueue([later], { delayMs: 3_600_000 })
    const stripe = { objectId: randomUUID(), partNumber: 1, stripeIndex: 3 }
    await catalog.repairs.enqueue([{ ...stripe, reason: 'CORRUPT' }])
    const leased = await catalog.repairs.claim(claim)
    assert.deepEqual(leased.map((t) => [t.objectId, t.stripeIndex]), [[stripe.objectId, 3]])
    before = transactions(catalog)
    assert.deepEqual(await catalog.deletions.claim({ ...claim, nodeId: 'n1' }), [])
    assert.deepEqual(await catalog.repairs.claim(claim), [], 'the only repair task is leased')
    assert.equal(transactions(catalog), before, 'nothing claimable: no transaction')

    // Due work is claimed by the same call, as before.
    const n2 = await catalog.deletions.claim({ ...claim, nodeId: 'n2' })
    assert.deepEqual(n2.map((t) => t.chunkId), [otherNode.chunkId])
    assert.ok(await catalog.repairs.release(leased[0]!, { retryAfterMs: 0, error: 'test' }))
    const again = await catalog.repairs.claim(claim)
    assert.deepEqual(again.map((t) => t.objectId), [stripe.objectId])
    assert.equal(again[0]!.attempts, 2)
    const fresh = { objectId: randomUUID(), partNumber: 2, stripeIndex: 0 }
    await catalog.repairs.enqueue([{ ...fresh, reason: 'MISSING' }])
    assert.deepEqual((await catalog.repairs.claim(claim)).map((t) => t.objectId), [fresh.objectId], 'a task queued after an empty poll is taken by the next one')
  })

  test('the failure detector\'s "anyone stale?" opens no transaction while every heartbeat is fresh, and still marks a stale node DOWN', async () => {
    const catalog = await backend.freshCatalog()
    const beat = (id: string) => catalog.nodes.heartbeat({ id, address: `http://127.0.0.1:1/${id}`, rack: 'r1', capacityBytes: 100, usedBytes: 1 })
    await beat('a')
    await beat('b')
    const before = transactions(catalog)
    assert.deepEqual(await catalog.nodes.markStaleDown({ heartbeatWithinMs: 600_000 }), [])
    assert.equal(transactions(catalog), before, 'no stale node: no transaction')
    assert.deepEqual(await catalog.nodes.markStaleDown({ heartbeatWithinMs: 0 }), ['a', 'b'])
    assert.deepEqual((await catalog.nodes.list()).map((n) => n.state), ['DOWN', 'DOWN'])
    const marked = transactions(catalog)
    assert.deepEqual(await catalog.nodes.markStaleDown({ heartbeatWithinMs: 0 }), [], 'DOWN nodes are not marked again')
    assert.equal(transactions(catalog), marked)
    await beat('a')
    assert.deepEqual((await catalog.nodes.list()).map((n) => n.state), ['UP', 'DOWN'], 'a heartbeat brings a node back')
  })
})

forEachBackend((backend) => {
  test('a heartbeat is one statement, no explicit transaction, with the registry\'s rules: DOWN comes back UP, READONLY and DRAINING stay', async () => {
    const catalog = await backend.freshCatalog()
    const beat = (id: string, usedBytes = 1) => catalog.nodes.heartbeat({ id, address: `http://127.0.0.1:1/${id}`, rack: 'r1', capacityBytes: 100, usedBytes })
    const before = transactions(catalog)
    const first = await beat('a')
    assert.equal(first.state, 'UP')
    assert.equal((await beat('a', 7)).usedBytes, 7)
    assert.equal(transactions(catalog), before, 'heartbeats opened no transaction')
    await catalog.nodes.markDown('a')
    assert.equal((await beat('a')).state, 'UP')
    await catalog.nodes.setState('a', 'READONLY')
    assert.equal((await beat('a')).state, 'READONLY')
    await catalog.nodes.setState('a', 'DRAINING')
    assert.equal((await beat('a')).state, 'DRAINING')
    assert.ok((await catalog.nodes.get('a'))!.heartbeatAgeMs < 60_000)
  })
})
