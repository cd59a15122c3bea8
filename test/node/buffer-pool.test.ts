// The node's pool of body buffers: exact lengths, reuse of given-back buffers,
// a bound on what it keeps, and no double lending of one buffer.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BufferPool } from '../../src/node/buffer-pool.ts'

test('take gives exactly the length asked; a given-back buffer is lent again', () => {
  const pool = new BufferPool(1024, 2)
  const a = pool.take(1000)
  assert.equal(a.length, 1000)
  assert.equal(a.buffer.byteLength, 1024)
  pool.give(a)
  const b = pool.take(10)
  assert.equal(b.length, 10)
  assert.equal(b.buffer, a.buffer, 'the same backing store came back')
  assert.deepEqual(pool.stats(), { free: 0, allocated: 1, taken: 2 })
})

test('a buffer is never lent twice at once, even when given back twice', () => {
  const pool = new BufferPool(64, 4)
  const a = pool.take(64)
  pool.give(a)
  pool.give(a) // ignored: already back
  const b = pool.take(64)
  const c = pool.take(64)
  assert.notEqual(b.buffer, c.buffer)
  assert.deepEqual(pool.stats(), { free: 0, allocated: 2, taken: 3 })
})

test('longer requests and empty ones get buffers of their own; the pool keeps at most freeMax', () => {
  const pool = new BufferPool(64, 1)
  const big = pool.take(65)
  assert.equal(big.length, 65)
  pool.give(big) // not pooled: left to the GC
  assert.deepEqual(pool.stats(), { free: 0, allocated: 0, taken: 0 })
  assert.equal(pool.take(0).length, 0)
  const x = pool.take(64)
  const y = pool.take(64)
  pool.give(x)
  pool.give(y)
  assert.deepEqual(pool.stats(), { free: 1, allocated: 2, taken: 2 })
  pool.give(Buffer.alloc(64)) // a stranger: ignored
  assert.deepEqual(pool.stats(), { free: 1, allocated: 2, taken: 2 })
})
