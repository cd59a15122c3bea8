import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import type { NodeCandidate } from '../../src/cluster/placement.ts'
import { HedgePolicy } from '../../src/objects/hedge.ts'
import { registerObjectLayerMetrics } from '../../src/objects/metrics.ts'
import { readStripeRange, stripeCodec, writeStripe, type ReadStripeContext } from '../../src/objects/stripe-io.ts'

const codec = stripeCodec(8, 4)
const nodeIds = Array.from({ length: 12 }, (_, i) => `n${i}`)
const candidates: NodeCandidate[] = nodeIds.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e12 }))

test('the hedge delay is the recent p95 of reads of the same size class, between its floor and the fixed delay', () => {
  const policy = new HedgePolicy({ maxDelayMs: 2000, minDelayMs: 2, minSamples: 50, windowSize: 100 })
  assert.equal(policy.delayMs(128 * 1024), 2000, 'no samples yet: the fixed delay')
  for (let i = 0; i < 49; i++) policy.record(128 * 1024, 10)
  assert.equal(policy.delayMs(128 * 1024), 2000, 'fewer than minSamples: still the fixed delay')
  for (let i = 0; i < 51; i++) policy.record(128 * 1024, i < 46 ? 10 : 80) // 100 samples, exactly 5 slow
  assert.equal(policy.delayMs(128 * 1024), 10, 'p95 of 95 x 10 ms and 5 x 80 ms: the 95th of 100')
  for (let i = 0; i < 16; i++) policy.record(128 * 1024, 80) // the window now holds 79 x 10 and 21 x 80
  assert.equal(policy.delayMs(128 * 1024), 80)
  assert.equal(policy.delayMs(100 * 1024), 80, 'the same size class (64-256 KiB)')
  assert.equal(policy.delayMs(4096), 2000, 'another size class has its own samples')
  for (let i = 0; i < 100; i++) policy.record(4096, 0.1)
  assert.equal(policy.delayMs(4096), 2, 'never below the floor')
  for (let i = 0; i < 100; i++) policy.record(1024 * 1024, 5000)
  assert.equal(policy.delayMs(1024 * 1024), 2000, 'never past the fixed delay')
  // The window forgets: 100 fresh fast reads replace the slow ones.
  for (let i = 0; i < 100; i++) policy.record(128 * 1024, 3)
  assert.equal(policy.delayMs(128 * 1024), 3)
})

test('hedges are paid in chunk reads from a budget earned by direct piece reads; at the fixed delay a read is always hedged', () => {
  const policy = new HedgePolicy({ maxDelayMs: 1000, budgetBurst: 8, budgetPerRead: 0.5 })
  assert.equal(policy.mayHedge(5), true)
  assert.equal(policy.mayHedge(5, 8), false, 'a ranged rebuild of 8 reads does not fit the 7 left')
  assert.equal(policy.mayHedge(5, 7), true)
  assert.equal(policy.mayHedge(5), false, 'the burst is spent')
  assert.equal(policy.mayHedge(1000, 8), true, 'the fixed delay hedges regardless of the budget')
  for (let i = 0; i < 10; i++) policy.record(4096, 1)
  assert.equal(policy.mayHedge(5), false, 'recording times earns nothing: a rebuild\'s own reads must not pay for more hedges')
  policy.earn()
  assert.equal(policy.mayHedge(5), false, 'half a read')
  policy.earn()
  assert.equal(policy.mayHedge(5), true, 'two direct piece reads earned one')
  assert.deepEqual(policy.stats(), { hedged: 4, overBudget: 4 })
})

async function slowChunkSetup() {
  const store = new FaultInjectingChunkStore(new MemoryChunkStore(nodeIds))
  const data = randomBytes(64_000)
  const stripe = await writeStripe({ store, codec, candidates, stripeKey: 'hedge', putTimeoutMs: 5000 }, data)
  return { store, data, stripe, slow: stripe.chunks.find((c) => c.chunkIndex === 2)! }
}

test('a read slower than recent reads is hedged long before the fixed delay, and the policy learns from every read', { timeout: 120_000 }, async () => {
  const { store, data, stripe, slow } = await slowChunkSetup()
  // A 200 ms floor keeps the fast in-memory reads unhedged however busy the machine is.
  const hedge = new HedgePolicy({ maxDelayMs: 600_000, minDelayMs: 200, minSamples: 50 })
  const controller = new AbortController()
  // The fixed delay is 10 minutes: without the adaptive policy the slow read below would
  // wait for it, past this test's 2-minute timeout.
  const reads: ReadStripeContext = { store, codec, getTimeoutMs: 900_000, hedgeAfterMs: 600_000, hedge, signal: controller.signal }
  try {
    for (let i = 0; i < 8; i++) assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data) // 64 fast piece reads
    assert.ok(hedge.delayMs(8000) < 600_000, 'the policy has learnt a delay from the fast reads')
    assert.deepEqual(hedge.stats(), { hedged: 0, overBudget: 0 }, 'fast reads are never hedged')
    store.setNodeFaults(slow.nodeId, { delayMs: 600_000 })
    const getsBefore = store.counters.calls.get
    assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data)
    assert.deepEqual(hedge.stats(), { hedged: 1, overBudget: 0 })
    assert.equal(store.counters.calls.get - getsBefore, 9, '8 data pieces and one parity piece: the other data pieces were reused')
  } finally {
    controller.abort()
  }
})

test('a rebuild that wins a hedge stops the direct read it raced', { timeout: 120_000 }, async () => {
  const { store, data, stripe, slow } = await slowChunkSetup()
  const hedge = new HedgePolicy({ maxDelayMs: 600_000, minDelayMs: 200, minSamples: 50 })
  const controller = new AbortController()
  const reads: ReadStripeContext = { store, codec, getTimeoutMs: 900_000, hedgeAfterMs: 600_000, hedge, signal: controller.signal }
  // The signals the slow node's reads were given.
  const slowReads: AbortSignal[] = []
  const get = store.get.bind(store)
  store.get = (node, chunkId, range, signal) => {
    if (node === slow.nodeId && signal) slowReads.push(signal)
    return get(node, chunkId, range, signal)
  }
  try {
    for (let i = 0; i < 8; i++) await readStripeRange(reads, stripe, 0, data.length)
    slowReads.length = 0
    store.setNodeFaults(slow.nodeId, { delayMs: 600_000 })
    assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data)
    assert.deepEqual(hedge.stats(), { hedged: 1, overBudget: 0 })
    assert.equal(slowReads.length, 1)
    assert.equal(slowReads[0]!.aborted, true, 'the stalled read was stopped once the rebuild answered, not left to its 15-minute timeout')
    assert.equal(controller.signal.aborted, false, 'by the read itself, not by the caller')
  } finally {
    controller.abort()
  }
})

test('past the budget a slow read waits for the fixed delay before it is hedged', { timeout: 120_000 }, async () => {
  const { store, data, stripe, slow } = await slowChunkSetup()
  // The fixed delay (2 s) far above the floor (100 ms): the in-memory reads' p95 lies under it however busy the machine.
  const hedge = new HedgePolicy({ maxDelayMs: 2000, minDelayMs: 100, minSamples: 50, budgetBurst: 1, budgetPerRead: 0 })
  const controller = new AbortController()
  const reads: ReadStripeContext = { store, codec, getTimeoutMs: 900_000, hedgeAfterMs: 2000, hedge, signal: controller.signal }
  try {
    for (let i = 0; i < 8; i++) await readStripeRange(reads, stripe, 0, data.length)
    store.setNodeFaults(slow.nodeId, { delayMs: 600_000 })
    assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data)
    assert.deepEqual(hedge.stats(), { hedged: 1, overBudget: 0 }, 'the one budgeted hedge')
    assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data)
    assert.deepEqual(hedge.stats(), { hedged: 2, overBudget: 1 }, 'out of budget: not hedged at the adaptive delay, hedged at the fixed one')
  } finally {
    controller.abort()
  }
})

test('a front end exposes the object layer hedges as metrics; a layer without hedge stats adds none', async () => {
  const registry = new Registry()
  const stats = { hedged: 3, overBudget: 1 }
  registerObjectLayerMetrics(registry, { hedgeStats: () => stats })
  let text = await registry.metrics()
  assert.match(text, /# TYPE blobfs_object_read_hedges_total counter/)
  assert.match(text, /blobfs_object_read_hedges_total\{result="hedged"\} 3/)
  assert.match(text, /blobfs_object_read_hedges_total\{result="over_budget"\} 1/)
  stats.hedged = 5
  text = await registry.metrics()
  assert.match(text, /blobfs_object_read_hedges_total\{result="hedged"\} 5/, 'scraped again: the running total')
  assert.match(text, /blobfs_object_read_hedges_total\{result="over_budget"\} 1/)
  const bare = new Registry()
  registerObjectLayerMetrics(bare, {})
  assert.equal((await bare.getMetricsAsJSON()).length, 0)
})
