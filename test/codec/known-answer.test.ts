// Known-answer tests: parity from every kernel, and from the TypeScript oracle,
// equals what ISA-L computes for the same data (test/codec/vectors.ts).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { kernels, ReedSolomon } from '../../src/codec/index.ts'
import { makeShards } from './helpers.ts'
import { gfInv, gfMul, generatorMatrix, referenceEncode } from './reference.ts'
import { isalGenerator12x8, isalVectors, type KnownAnswer } from './vectors.ts'

function checkParity(vector: KnownAnswer, parity: readonly Buffer[], who: string): void {
  const label = `${who} RS(${vector.k},${vector.m}) ${vector.length} bytes`
  if (vector.parityHex) assert.deepEqual(parity.map((p) => p.toString('hex')), vector.parityHex, label)
  if (vector.paritySha256) {
    assert.deepEqual(parity.map((p) => createHash('sha256').update(p).digest('hex')), vector.paritySha256, label)
  }
}

test('the oracle field: x * x^7 wraps by the polynomial 0x11d, and inverses are known', () => {
  assert.equal(gfMul(2, 0x80), 0x1d)
  assert.equal(gfInv(2), 0x8e)
  assert.equal(gfInv(3), 0xf4)
  for (let a = 1; a < 256; a++) assert.equal(gfMul(a, gfInv(a)), 1)
})

test('the generator is ISA-L gf_gen_cauchy1_matrix: identity over 1/(i xor j)', () => {
  const native = new ReedSolomon(8, 4).generatorMatrix()
  assert.equal(native.toString('hex'), isalGenerator12x8)
  assert.equal(Buffer.from(generatorMatrix(8, 4).flat()).toString('hex'), isalGenerator12x8)
  assert.deepEqual([...new ReedSolomon(2, 1).generatorMatrix()], [1, 0, 0, 1, 0x8e, 0xf4])
})

for (const kernel of kernels.available) {
  test(`${kernel} kernel: parity equals ISA-L's for every known-answer vector`, () => {
    for (const vector of isalVectors) {
      const shards = makeShards(vector.k, vector.m, vector.length, vector.seed)
      new ReedSolomon(vector.k, vector.m, { kernel }).encode(shards)
      checkParity(vector, shards.slice(vector.k), kernel)
    }
  })
}

test('the TypeScript oracle: parity equals ISA-L\'s for every known-answer vector', () => {
  for (const vector of isalVectors) {
    const shards = makeShards(vector.k, vector.m, vector.length, vector.seed)
    checkParity(vector, referenceEncode(vector.k, vector.m, shards.slice(0, vector.k)), 'oracle')
  }
})
