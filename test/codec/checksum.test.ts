// The checksum tree (src/codec/checksum.ts): a single flipped bit anywhere is
// caught by verifying any range that covers it, and verifying a range reads
// exactly the pages that range touches. The page reads are observed by spying on
// the CRC32C implementation checksum.ts calls, so "reads" means "bytes hashed".
import assert from 'node:assert/strict'
import { mock, test } from 'node:test'
import fc from 'fast-check'
import crc32cModule from 'fast-crc32c'
import { isBlobfsError } from '../../src/errors.ts'
import { checksumPageSizeBytes } from '../../src/limits.ts'
import { checksumTree, crc32c, pageCount, pagesCovering, verifyPages, verifyTree, type ChecksumTree } from '../../src/codec/checksum.ts'
import { lcgBytes } from './helpers.ts'

type Calculate = (data: Buffer | string, initial?: number) => number

/** Verifies [offset, offset + length) of `chunk` the way a range read does. */
function verifyRange(chunk: Buffer, tree: ChecksumTree, offsetBytes: number, lengthBytes: number): void {
  const span = pagesCovering(offsetBytes, lengthBytes, chunk.length, tree.pageSizeBytes)
  verifyPages(chunk.subarray(span.startBytes, span.endBytes), span.firstPage, tree.pageCrcs, tree.pageSizeBytes)
}

/** A random chunk, page size and a range inside it. */
const chunkCase = fc
  .record({
    pageSizeBytes: fc.constantFrom(3, 64, 512, 4096),
    lengthBytes: fc.integer({ min: 1, max: 40_000 }),
    seed: fc.integer(),
  })
  .chain((c) =>
    fc.record({
      c: fc.constant(c),
      bit: fc.integer({ min: 0, max: c.lengthBytes * 8 - 1 }),
      a: fc.integer({ min: 0, max: c.lengthBytes }),
      b: fc.integer({ min: 0, max: c.lengthBytes }),
    }),
  )

test('CRC32C: the standard check value, and continuation from an initial CRC', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  const data = lcgBytes(1000, { value: 1 })
  assert.equal(crc32c(data.subarray(300), crc32c(data.subarray(0, 300))), crc32c(data))
})

test('tree shape: one CRC per page, the last page short, none for an empty chunk', () => {
  const data = lcgBytes(2 * checksumPageSizeBytes + 5, { value: 2 })
  const tree = checksumTree(data)
  assert.equal(tree.pageCrcs.length, 3)
  assert.equal(tree.pageCrcs[2], crc32c(data.subarray(2 * checksumPageSizeBytes)))
  verifyTree(tree)
  assert.equal(checksumTree(Buffer.alloc(0)).pageCrcs.length, 0)
  assert.throws(() => verifyTree({ ...tree, root: tree.root ^ 1 }), (e: unknown) => isBlobfsError(e, 'BadDigest'))
})

test('a flipped bit is caught by every range that covers it, and by no range that does not touch its page', () => {
  fc.assert(
    fc.property(chunkCase, ({ c, bit, a, b }) => {
      const chunk = lcgBytes(c.lengthBytes, { value: c.seed })
      const tree = checksumTree(chunk, c.pageSizeBytes)
      const badPage = Math.floor(bit / 8 / c.pageSizeBytes)
      chunk[bit >> 3]! ^= 1 << (bit & 7)
      // A range that covers the bit: from min(a, byte) to max(b, byte + 1).
      const start = Math.min(a, bit >> 3)
      const end = Math.max(b, (bit >> 3) + 1)
      assert.throws(
        () => verifyRange(chunk, tree, start, end - start),
        (e: unknown) => isBlobfsError(e, 'ChunkCorrupt') && new RegExp(`page ${badPage} failed`).test((e as Error).message),
      )
      // Any range whose pages avoid the bad one still verifies.
      const lo = Math.min(a, b)
      const hi = Math.max(a, b)
      const span = pagesCovering(lo, hi - lo, c.lengthBytes, c.pageSizeBytes)
      if (badPage < span.firstPage || badPage >= span.endPage) verifyRange(chunk, tree, lo, hi - lo)
    }),
    { numRuns: 300 },
  )
})

test('verifying a range hashes exactly the pages it touches, each once, and nothing else', (t) => {
  const calculate = crc32cModule.calculate as Calculate
  fc.assert(
    fc.property(chunkCase, ({ c, a, b }) => {
      const chunk = lcgBytes(c.lengthBytes, { value: c.seed })
      const tree = checksumTree(chunk, c.pageSizeBytes)
      const lo = Math.min(a, b)
      const hi = Math.max(a, b)
      const span = pagesCovering(lo, hi - lo, c.lengthBytes, c.pageSizeBytes)
      const hashed: [number, number][] = []
      const spy = t.mock.method(crc32cModule, 'calculate', (data: Buffer, initial?: number) => {
        hashed.push([data.byteOffset - chunk.byteOffset, data.byteOffset - chunk.byteOffset + data.length])
        return calculate(data, initial)
      })
      try {
        verifyRange(chunk, tree, lo, hi - lo)
      } finally {
        spy.mock.restore()
      }
      // The pages the range touches, in order: [page start, page end clipped to the chunk).
      const expected: [number, number][] = []
      for (let page = span.firstPage; page < span.endPage; page++) {
        expected.push([page * c.pageSizeBytes, Math.min((page + 1) * c.pageSizeBytes, c.lengthBytes)])
      }
      assert.deepEqual(hashed, expected)
      if (hi > lo) {
        assert.ok(span.startBytes <= lo && hi <= span.endBytes, 'the pages cover the range')
        assert.equal(span.endPage - span.firstPage, Math.ceil(hi / c.pageSizeBytes) - Math.floor(lo / c.pageSizeBytes))
      }
    }),
    { numRuns: 200 },
  )
  mock.restoreAll()
})

test('bytes outside the touched pages do not matter: a range verifies with every other page garbage', () => {
  const pageSizeBytes = checksumPageSizeBytes
  const chunk = lcgBytes(2 * 1024 * 1024, { value: 9 })
  const tree = checksumTree(chunk)
  assert.equal(pageCount(chunk.length), 32)
  const offsetBytes = 5 * pageSizeBytes + 100
  const lengthBytes = 4096
  const span = pagesCovering(offsetBytes, lengthBytes, chunk.length)
  assert.deepEqual([span.firstPage, span.endPage], [5, 6])
  const damaged = Buffer.from(chunk)
  damaged.fill(0xee, 0, span.startBytes)
  damaged.fill(0xee, span.endBytes)
  verifyRange(damaged, tree, offsetBytes, lengthBytes)
  // The same damage inside the touched page is caught.
  damaged[span.startBytes] = damaged[span.startBytes]! ^ 0x80
  assert.throws(() => verifyRange(damaged, tree, offsetBytes, lengthBytes), (e: unknown) => isBlobfsError(e, 'ChunkCorrupt'))
})

test('pagesCovering: ranges outside the chunk are InvalidRange; an empty range touches no page', () => {
  assert.throws(() => pagesCovering(10, 1, 10), (e: unknown) => isBlobfsError(e, 'InvalidRange'))
  assert.throws(() => pagesCovering(-1, 1, 10), (e: unknown) => isBlobfsError(e, 'InvalidRange'))
  const span = pagesCovering(7, 0, 100, 8)
  assert.equal(span.endPage - span.firstPage, 0)
})
