import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import type { NodeCandidate } from '../../src/cluster/placement.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { readStripeRange, stripeCodec, writeStripe, type ReadStripeContext, type StripeRecord } from '../../src/objects/stripe-io.ts'

const codec = stripeCodec(8, 4)
const nodeIds = Array.from({ length: 12 }, (_, i) => `n${i}`)
const candidates: NodeCandidate[] = nodeIds.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e12 }))

function setup(seed = 1) {
  const memory = new MemoryChunkStore(nodeIds)
  const store = new FaultInjectingChunkStore(memory, seed)
  const reads: ReadStripeContext = { store, codec, getTimeoutMs: 5000, hedgeAfterMs: 5000 }
  return { memory, store, reads }
}

async function write(store: FaultInjectingChunkStore, data: Buffer, key = 'stripe') {
  return writeStripe({ store, codec, candidates, stripeKey: key, putTimeoutMs: 5000 }, data)
}

test('a stripe is stored as 12 chunks on 12 distinct nodes and reads back whole and in ranges', async () => {
  const { memory, store, reads } = setup()
  const data = randomBytes(1_000_003)
  const stripe = await write(store, data)
  assert.equal(stripe.chunks.length, 12)
  assert.deepEqual(stripe.missingChunkIndexes, [])
  assert.equal(new Set(stripe.chunks.map((c) => c.nodeId)).size, 12)
  assert.equal(memory.counters.puts, 12)
  assert.deepEqual(await readStripeRange(reads, stripe, 0, data.length), data)
  const getsBefore = memory.counters.gets
  assert.deepEqual(await readStripeRange(reads, stripe, 200_000, 10), data.subarray(200_000, 200_010))
  assert.equal(memory.counters.gets - getsBefore, 1, 'a range inside one data chunk is one chunk read, no decode')
})

test('any 4 lost chunks: every range still reads back right (degraded column decode)', async () => {
  const { store, reads } = setup()
  const data = randomBytes(333_333)
  const stripe = await write(store, data)
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 11 }), { minLength: 0, maxLength: 4 }),
      fc.integer({ min: 0, max: data.length }),
      fc.integer({ min: 0, max: data.length }),
      async (lost, a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a]
        const damaged: StripeRecord = { ...stripe, chunks: stripe.chunks.filter((c) => !lost.includes(c.chunkIndex)) }
        assert.deepEqual(await readStripeRange(reads, damaged, start, end - start), data.subarray(start, end))
      },
    ),
    { numRuns: 150 },
  )
})

test('down and rotten chunks are decoded around; rotten ones are reported for repair', async () => {
  const { memory, store, reads } = setup()
  const data = randomBytes(2 * 1024 * 1024 + 5)
  const stripe = await write(store, data)
  const byIndex = (i: number) => stripe.chunks.find((c) => c.chunkIndex === i)!
  store.setNodeFaults(byIndex(0).nodeId, { down: true })
  store.setNodeFaults(byIndex(9).nodeId, { down: true })
  memory.rawBytes(byIndex(3).nodeId, byIndex(3).chunkId)![100] ^= 1
  const reported: string[] = []
  const context = { ...reads, onBadChunk: (chunk: { chunkId: string }, code: string) => reported.push(`${chunk.chunkId}:${code}`) }
  assert.deepEqual(await readStripeRange(context, stripe, 0, data.length), data)
  assert.deepEqual(reported, [`${byIndex(3).chunkId}:ChunkCorrupt`])
})

test('five chunks unavailable: a clear TooManyErasures, never wrong bytes', async () => {
  const { store, reads } = setup()
  const data = randomBytes(80_000)
  const stripe = await write(store, data)
  for (const chunk of stripe.chunks.slice(0, 5)) store.setNodeFaults(chunk.nodeId, { down: true })
  await assert.rejects(readStripeRange(reads, stripe, 0, data.length), (e) => isBlobfsError(e, 'TooManyErasures'))
})

test('a slow chunk is hedged: the read completes from other chunks without waiting for it', { timeout: 30_000 }, async () => {
  const { store, reads } = setup()
  const data = randomBytes(64_000)
  const stripe = await write(store, data)
  const slow = stripe.chunks.find((c) => c.chunkIndex === 2)!
  store.setNodeFaults(slow.nodeId, { delayMs: 60_000 })
  const controller = new AbortController()
  const context = { ...reads, hedgeAfterMs: 20, getTimeoutMs: 120_000, signal: controller.signal }
  // Without hedging this read would wait 60 s, past this test's timeout.
  assert.deepEqual(await readStripeRange(context, stripe, 0, data.length), data)
  controller.abort()
})

test('failed nodes during a write are replaced by alternates; all 12 chunks still stored', async () => {
  const { store } = setup()
  const nodes16 = Array.from({ length: 16 }, (_, i) => `n${i}`)
  const memory = new MemoryChunkStore(nodes16)
  const faulty = new FaultInjectingChunkStore(memory)
  for (const id of ['n0', 'n5', 'n10']) faulty.setNodeFaults(id, { down: true })
  const wide = nodes16.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e12 }))
  const stripe = await writeStripe({ store: faulty, codec, candidates: wide, stripeKey: 'alt', putTimeoutMs: 5000 }, randomBytes(10_000))
  assert.equal(stripe.chunks.length, 12)
  assert.ok(stripe.chunks.every((c) => !['n0', 'n5', 'n10'].includes(c.nodeId)))
  void store
})

test('too few nodes: k+1 chunks succeed with the rest reported missing; fewer fail and leave nothing', async () => {
  const memory = new MemoryChunkStore(nodeIds)
  const store = new FaultInjectingChunkStore(memory)
  for (const id of nodeIds.slice(0, 3)) store.setNodeFaults(id, { down: true })
  const nine = await writeStripe({ store, codec, candidates, stripeKey: 'nine', putTimeoutMs: 5000 }, randomBytes(9000))
  assert.equal(nine.chunks.length, 9)
  assert.equal(nine.missingChunkIndexes.length, 3)

  store.setNodeFaults('n3', { down: true })
  const before = nodeIds.reduce((n, id) => n + memory.chunkIds(id).length, 0)
  await assert.rejects(
    writeStripe({ store, codec, candidates, stripeKey: 'eight', putTimeoutMs: 5000 }, randomBytes(9000)),
    (e) => isBlobfsError(e, 'NotEnoughNodes'),
  )
  const after = nodeIds.reduce((n, id) => n + memory.chunkIds(id).length, 0)
  assert.equal(after, before, 'the failed write left no chunk behind')
})
