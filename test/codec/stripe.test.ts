// splitStripe / joinStripe: K equal, zero-padded shards and back, with the full
// shards as views of the stripe (no copy) and the end of the stripe padded.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { joinStripe, ReedSolomon, shardSizeFor, splitStripe } from '../../src/codec/index.ts'

test('split then join gives the stripe back; shards are ceil(length / k) bytes, zero-padded', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.integer({ min: 1, max: 40 }), (bytes, k) => {
      const data = Buffer.from(bytes)
      const shards = splitStripe(data, k)
      const shardSizeBytes = Math.ceil(data.length / k)
      assert.equal(shards.length, k)
      assert.equal(shardSizeFor(data.length, k), shardSizeBytes)
      for (const shard of shards) assert.equal(shard.length, shardSizeBytes)
      const padded = Buffer.concat(shards)
      assert.ok(padded.subarray(0, data.length).equals(data))
      assert.ok(padded.subarray(data.length).every((b) => b === 0), 'padding is zero')
      assert.ok(joinStripe(shards, data.length).equals(data))
    }),
    { numRuns: 300 },
  )
})

test('shards wholly inside the stripe are views of it; the padded ones are not', () => {
  const data = Buffer.alloc(100, 7)
  const shards = splitStripe(data, 8) // 13-byte shards: 7 full, the 8th holds 9 bytes + 4 padding
  for (let i = 0; i < 7; i++) assert.equal(shards[i]!.buffer, data.buffer, `shard ${i} is a view`)
  assert.notEqual(shards[7]!.buffer, data.buffer)
  data[0] = 9
  assert.equal(shards[0]![0], 9)
})

test('a stripe round-trips through encode, loss of m shards and reconstruct', () => {
  const data = Buffer.from('a stripe that is not a multiple of eight bytes long!')
  const rs = new ReedSolomon(8, 4)
  const shards = [...splitStripe(data, 8), ...Array.from({ length: 4 }, () => Buffer.alloc(shardSizeFor(data.length, 8)))]
  rs.encode(shards)
  const lost = [1, 4, 7, 10]
  const survivors = shards.map((s, i) => (lost.includes(i) ? Buffer.alloc(s.length) : Buffer.from(s)))
  rs.reconstruct(survivors, survivors.map((_, i) => !lost.includes(i)))
  assert.ok(joinStripe(survivors, data.length).equals(data))
})

test('bad arguments', () => {
  assert.throws(() => splitStripe('text' as unknown as Buffer, 2), TypeError)
  assert.throws(() => splitStripe(Buffer.alloc(4), 0), RangeError)
  assert.throws(() => joinStripe([Buffer.alloc(2), Buffer.alloc(2)], 5), /hold 4 bytes, fewer than the 5/)
  assert.throws(() => joinStripe([Buffer.alloc(2), Buffer.alloc(3)], 4), /differ in length/)
  assert.throws(() => joinStripe([Buffer.alloc(2)], -1), RangeError)
  assert.throws(() => shardSizeFor(1.5, 2), RangeError)
})
