import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { dataPieces, parseScheme, schemeName, shardSizeFor, stripeCount } from '../../src/objects/layout.ts'

test('stripe counts and shard sizes', () => {
  assert.equal(stripeCount(0, 16), 0)
  assert.equal(stripeCount(1, 16), 1)
  assert.equal(stripeCount(16, 16), 1)
  assert.equal(stripeCount(17, 16), 2)
  assert.equal(shardSizeFor(1, 8), 1)
  assert.equal(shardSizeFor(16 * 2 ** 20, 8), 2 * 2 ** 20)
  assert.equal(shardSizeFor(17, 8), 3)
  assert.deepEqual(parseScheme(schemeName({ dataShards: 10, parityShards: 4 })), { dataShards: 10, parityShards: 4 })
  assert.equal(parseScheme('INLINE'), 'INLINE')
})

test('data pieces reassemble exactly the requested range of the stripe', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 1, max: 16 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (length, k, a, b) => {
        const stripe = Buffer.from(Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff))
        const shardSize = shardSizeFor(length, k)
        const padded = Buffer.concat([stripe, Buffer.alloc(shardSize * k - length)])
        const shards = Array.from({ length: k }, (_, i) => padded.subarray(i * shardSize, (i + 1) * shardSize))
        const offset = Math.floor(a * length)
        const rangeLength = Math.floor(b * (length - offset))
        const out = Buffer.alloc(rangeLength)
        let covered = 0
        for (const piece of dataPieces(length, k, offset, rangeLength)) {
          assert.ok(piece.shard < k && piece.offsetBytes + piece.lengthBytes <= shardSize)
          shards[piece.shard]!.copy(out, piece.outputOffsetBytes, piece.offsetBytes, piece.offsetBytes + piece.lengthBytes)
          covered += piece.lengthBytes
        }
        assert.equal(covered, rangeLength)
        assert.deepEqual(out, stripe.subarray(offset, offset + rangeLength))
      },
    ),
    { numRuns: 500 },
  )
})
