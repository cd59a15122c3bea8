// Property tests of encode + reconstruct: for random shapes and lengths, every
// erasure pattern of up to m shards (a random sample where there are too many)
// gives back the original bytes, and more than m missing is a clear error.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ReedSolomon } from '../../src/codec/index.ts'
import { copyShards, erasurePatterns, makeShards, seededRandom } from './helpers.ts'
import { referenceEncode } from './reference.ts'

const namedShapes: [number, number][] = [[8, 4], [10, 4], [12, 4], [4, 2], [1, 1], [32, 32]]
const patternsSampled = 300
const sentinel = 0xa5

function checkEveryPattern(rs: ReedSolomon, original: readonly Buffer[], seed: number, patternsMax = patternsSampled): void {
  const n = rs.totalShards
  for (const missing of erasurePatterns(n, rs.parityShards, patternsMax, seededRandom(seed))) {
    const shards = copyShards(original)
    for (const i of missing) shards[i]!.fill(sentinel)
    const present = shards.map((_, i) => !missing.includes(i))
    rs.reconstruct(shards, present)
    for (let i = 0; i < n; i++) {
      if (!shards[i]!.equals(original[i]!)) {
        assert.fail(`RS(${rs.dataShards},${rs.parityShards}) ${original[0]!.length} bytes, missing [${missing}]: shard ${i} differs`)
      }
    }
  }
}

const lengthArbitrary = fc.oneof(fc.constantFrom(0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65), fc.integer({ min: 0, max: 700 }))

test('named shapes up to 12+4: every one of the erasure patterns up to m is rebuilt', () => {
  for (const [k, m] of namedShapes.filter(([k, m]) => k + m <= 16)) {
    for (const lengthBytes of [0, 1, 77]) {
      const rs = new ReedSolomon(k, m)
      const shards = makeShards(k, m, lengthBytes, k * 1000 + lengthBytes)
      rs.encode(shards)
      checkEveryPattern(rs, shards, 0, Infinity)
    }
  }
})

test('named shapes, random lengths: parity matches the oracle and erasure patterns (sampled) are rebuilt', () => {
  fc.assert(
    fc.property(fc.constantFrom(...namedShapes), lengthArbitrary, fc.integer(), ([k, m], lengthBytes, seed) => {
      const rs = new ReedSolomon(k, m)
      const shards = makeShards(k, m, lengthBytes, seed)
      rs.encode(shards)
      const expected = referenceEncode(k, m, shards.slice(0, k))
      for (let p = 0; p < m; p++) assert.ok(shards[k + p]!.equals(expected[p]!), `parity ${p} differs from the oracle`)
      checkEveryPattern(rs, shards, seed)
    }),
    { numRuns: 24 },
  )
})

test('random shapes up to 32+32: every erasure pattern up to m (sampled) is rebuilt', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 32 }),
      fc.integer({ min: 1, max: 32 }),
      fc.integer({ min: 0, max: 2000 }),
      fc.integer(),
      (k, m, lengthBytes, seed) => {
        const rs = new ReedSolomon(k, m)
        const shards = makeShards(k, m, lengthBytes, seed)
        rs.encode(shards)
        checkEveryPattern(rs, shards, seed)
      },
    ),
    { numRuns: 30 },
  )
})

test('the largest code, RS(200,55), rebuilds 55 lost shards', () => {
  const rs = new ReedSolomon(200, 55)
  const original = makeShards(200, 55, 97, 11)
  rs.encode(original)
  const random = seededRandom(3)
  for (let round = 0; round < 4; round++) {
    const missing = new Set<number>()
    while (missing.size < 55) missing.add(Math.floor(random() * 255))
    const shards = copyShards(original)
    for (const i of missing) shards[i]!.fill(sentinel)
    rs.reconstruct(shards, shards.map((_, i) => !missing.has(i)))
    shards.forEach((s, i) => assert.ok(s.equals(original[i]!), `shard ${i}`))
  }
})

test('wanted limits the rebuild: unwanted missing shards may be absent and are not touched', () => {
  const rs = new ReedSolomon(8, 4)
  const original = makeShards(8, 4, 1000, 5)
  rs.encode(original)
  const shards: (Buffer | null)[] = copyShards(original)
  // Lost: data 2 and 6, parity 9 and 11. A degraded read wants only the data.
  const missing = [2, 6, 9, 11]
  for (const i of missing) shards[i]!.fill(sentinel)
  shards[11] = null
  const present = shards.map((_, i) => !missing.includes(i))
  const wanted = shards.map((_, i) => i < 8 && missing.includes(i))
  rs.reconstruct(shards, present, wanted)
  assert.ok(shards[2]!.equals(original[2]!))
  assert.ok(shards[6]!.equals(original[6]!))
  assert.ok(shards[9]!.every((b) => b === sentinel), 'parity 9 was not wanted and must be untouched')
  // Then only parity 9, reading parity 10 in place of nothing else missing.
  rs.reconstruct(shards, shards.map((_, i) => i !== 9 && i !== 11), shards.map((_, i) => i === 9))
  assert.ok(shards[9]!.equals(original[9]!))
})

test('a wanted flag on a present shard changes nothing; nothing missing is a no-op', () => {
  const rs = new ReedSolomon(4, 2)
  const original = makeShards(4, 2, 64, 8)
  rs.encode(original)
  const shards = copyShards(original)
  rs.reconstruct(shards, shards.map(() => true), shards.map(() => true))
  shards.forEach((s, i) => assert.ok(s.equals(original[i]!)))
})

test('more than m missing: RangeError with code TooManyErasures, shards untouched', () => {
  fc.assert(
    fc.property(fc.constantFrom(...namedShapes), fc.integer(), ([k, m], seed) => {
      const rs = new ReedSolomon(k, m)
      const shards = makeShards(k, m, 40, seed)
      rs.encode(shards)
      const random = seededRandom(seed)
      const missing = new Set<number>()
      const count = m + 1 + Math.floor(random() * (k - 1 + 1))
      while (missing.size < Math.min(count, k + m)) missing.add(Math.floor(random() * (k + m)))
      for (const i of missing) shards[i]!.fill(sentinel)
      const before = copyShards(shards)
      assert.throws(
        () => rs.reconstruct(shards, shards.map((_, i) => !missing.has(i))),
        (error: unknown) =>
          error instanceof RangeError &&
          (error as RangeError & { code?: string }).code === 'TooManyErasures' &&
          /too many shards missing/.test(error.message),
      )
      shards.forEach((s, i) => assert.ok(s.equals(before[i]!)))
    }),
    { numRuns: 30 },
  )
})

test('shards at any byte offset (unaligned views into one buffer) encode and rebuild', () => {
  for (const offset of [1, 3, 7, 13, 31]) {
    const k = 8
    const m = 4
    const lengthBytes = 4096 + 37
    const arena = Buffer.alloc(offset + (k + m) * lengthBytes + 64)
    const shards = Array.from({ length: k + m }, (_, i) => arena.subarray(offset + i * lengthBytes, offset + (i + 1) * lengthBytes))
    makeShards(k, m, lengthBytes, offset).forEach((s, i) => s.copy(shards[i]!))
    const rs = new ReedSolomon(k, m)
    rs.encode(shards)
    const expected = referenceEncode(k, m, shards.slice(0, k))
    for (let p = 0; p < m; p++) assert.ok(shards[k + p]!.equals(expected[p]!), `offset ${offset}: parity ${p}`)
    const original = copyShards(shards)
    for (const i of [0, 3, 5, 10]) shards[i]!.fill(0)
    rs.reconstruct(shards, shards.map((_, i) => ![0, 3, 5, 10].includes(i)))
    shards.forEach((s, i) => assert.ok(s.equals(original[i]!), `offset ${offset}: shard ${i}`))
  }
})
