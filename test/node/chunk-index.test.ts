import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { ChunkIndex, type IndexEntry } from '../../src/node/chunk-index.ts'

function entryFor(n: number): IndexEntry {
  return { block: 1 + (n % 7), offsetUnits: n * 3, lengthBytes: n * 11, root: (n * 2654435761) >>> 0, createdMs: 1_000 + n }
}

test('the index agrees with a Map under random inserts, replaces and removes', () => {
  // Ids from a small pool so the same id is hit again and probe runs collide.
  const pool = Array.from({ length: 300 }, () => randomBytes(16))
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(299), fc.boolean(), fc.nat(1_000_000)), { maxLength: 3000 }), (ops) => {
      const index = new ChunkIndex()
      const model = new Map<string, IndexEntry>()
      for (const [which, insert, n] of ops) {
        const id = pool[which]!
        const key = id.toString('hex')
        if (insert) {
          assert.deepEqual(index.set(id, entryFor(n)), model.get(key) ?? null)
          model.set(key, entryFor(n))
        } else {
          assert.deepEqual(index.remove(id), model.get(key) ?? null)
          model.delete(key)
        }
      }
      assert.equal(index.size, model.size)
      for (const id of pool) assert.deepEqual(index.get(id), model.get(id.toString('hex')) ?? null)
      const restored = ChunkIndex.deserialize(index.serialize())
      assert.equal(restored.size, model.size)
      for (const id of pool) assert.deepEqual(restored.get(id), model.get(id.toString('hex')) ?? null)
    }),
    { numRuns: 60 },
  )
})

test('the index grows past its first capacity and finds every entry afterwards', () => {
  const index = new ChunkIndex()
  const ids = Array.from({ length: 50_000 }, () => randomBytes(16))
  ids.forEach((id, n) => index.set(id, entryFor(n)))
  assert.equal(index.size, ids.length)
  ids.forEach((id, n) => assert.deepEqual(index.get(id), entryFor(n)))
  for (let n = 0; n < ids.length; n += 2) index.remove(ids[n]!)
  ids.forEach((id, n) => assert.deepEqual(index.get(id), n % 2 === 0 ? null : entryFor(n)))
  let seen = 0
  for (let slot = 0; slot < index.slots; slot++) if (index.blockAt(slot) !== 0) seen++
  assert.equal(seen, ids.length / 2)
})
