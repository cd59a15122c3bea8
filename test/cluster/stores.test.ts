import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { checksumTree } from '../../src/codec/checksum.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'

const page = 64 * 1024

test('memory store: round trip, ranges, idempotent put, conflict, bad digest', async () => {
  const store = new MemoryChunkStore(['n1'])
  const data = randomBytes(3 * page + 17)
  await store.put('n1', 'c1', data, checksumTree(data))
  await store.put('n1', 'c1', data, checksumTree(data)) // same bytes: fine
  assert.deepEqual(await store.get('n1', 'c1'), data)
  assert.deepEqual(await store.get('n1', 'c1', { offsetBytes: page - 1, lengthBytes: 2 }), data.subarray(page - 1, page + 1))
  assert.deepEqual(await store.head('n1', 'c1'), { lengthBytes: data.length, root: checksumTree(data).root })
  const other = randomBytes(data.length)
  await assert.rejects(store.put('n1', 'c1', other, checksumTree(other)), (e) => isBlobfsError(e, 'ChunkConflict'))
  await assert.rejects(store.put('n1', 'c2', other, checksumTree(data)), (e) => isBlobfsError(e, 'BadDigest'))
  assert.equal(await store.head('n1', 'c2'), null)
  await assert.rejects(store.get('n1', 'nope'), (e) => isBlobfsError(e, 'ChunkNotFound'))
})

test('memory store: rotten bytes fail only the reads whose pages cover them', async () => {
  const store = new MemoryChunkStore(['n1'])
  const data = randomBytes(4 * page)
  await store.put('n1', 'c', data, checksumTree(data))
  store.rawBytes('n1', 'c')![2 * page + 5]! ^= 0x10
  await assert.rejects(store.get('n1', 'c'), (e) => isBlobfsError(e, 'ChunkCorrupt'))
  await assert.rejects(store.get('n1', 'c', { offsetBytes: 2 * page + 100, lengthBytes: 1 }), (e) => isBlobfsError(e, 'ChunkCorrupt'))
  assert.deepEqual(await store.get('n1', 'c', { offsetBytes: 0, lengthBytes: 2 * page }), data.subarray(0, 2 * page))
  assert.deepEqual(await store.get('n1', 'c', { offsetBytes: 3 * page, lengthBytes: page }), data.subarray(3 * page))
})

test('memory store: a full node refuses with InsufficientStorage and keeps its data', async () => {
  const store = new MemoryChunkStore()
  store.addNode('small', 100)
  const a = randomBytes(80)
  await store.put('small', 'a', a, checksumTree(a))
  const b = randomBytes(30)
  await assert.rejects(store.put('small', 'b', b, checksumTree(b)), (e) => isBlobfsError(e, 'InsufficientStorage'))
  assert.deepEqual(await store.get('small', 'a'), a)
})

test('fault store: down nodes, corrupt reads and seeded random failures', async () => {
  const inner = new MemoryChunkStore(['n1', 'n2'])
  const faults = new FaultInjectingChunkStore(inner, 7)
  const data = randomBytes(1000)
  await faults.put('n1', 'c', data, checksumTree(data))
  faults.setNodeFaults('n1', { down: true })
  await assert.rejects(faults.get('n1', 'c'), (e) => isBlobfsError(e, 'NodeUnavailable'))
  faults.setNodeFaults('n1', { corruptReads: true })
  await assert.rejects(faults.get('n1', 'c'), (e) => isBlobfsError(e, 'ChunkCorrupt'))
  faults.clearNodeFaults('n1')
  assert.deepEqual(await faults.get('n1', 'c'), data)

  const outcomes = async (seed: number) => {
    const store = new FaultInjectingChunkStore(inner, seed)
    store.failRandomly(0.5, ['head'])
    const results: boolean[] = []
    for (let i = 0; i < 64; i++) results.push(await store.head('n1', 'c').then(() => true, () => false))
    return results
  }
  const first = await outcomes(99)
  assert.deepEqual(await outcomes(99), first, 'same seed, same schedule')
  const failures = first.filter((ok) => !ok).length
  assert.ok(failures > 16 && failures < 48, `${failures} of 64 failed at fraction 0.5`)
})

test('fault store: a delay honours the abort signal', async () => {
  const faults = new FaultInjectingChunkStore(new MemoryChunkStore(['n1']))
  faults.setNodeFaults('n1', { delayMs: 60_000 })
  const controller = new AbortController()
  const pending = faults.head('n1', 'x', controller.signal)
  controller.abort()
  await assert.rejects(pending, (e) => isBlobfsError(e, 'Timeout'))
})
