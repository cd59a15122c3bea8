import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checksumTree } from '../../src/codec/checksum.ts'
import { recordAlignmentBytes } from '../../src/limits.ts'
import {
  chunkIdFromBytes,
  chunkIdToBytes,
  decodeHeader,
  encodeHeader,
  recordBytes,
  recordHeaderBytes,
  type RecordHeader,
} from '../../src/node/format.ts'
import { chunkBytes, seededRandom } from './helpers.ts'

function sampleHeader(length: number): RecordHeader {
  const tree = checksumTree(chunkBytes(length, length))
  return {
    kind: 'put',
    chunkId: chunkIdToBytes('0f0e0d0c-0b0a-4908-8706-050403020100'),
    lengthBytes: length,
    pageCrcs: tree.pageCrcs,
    root: tree.root,
    epoch: 7,
    createdMs: 1_700_000_000_123,
    synced: { block: 3, offsetUnits: 41 },
    origin: null,
  }
}

test('a header round-trips through encode and decode', () => {
  for (const length of [0, 1, 65536, 65537, 2 * 1024 * 1024]) {
    const header = sampleHeader(length)
    const bytes = encodeHeader(header)
    assert.equal(bytes.length, recordHeaderBytes(header.pageCrcs.length))
    const decoded = decodeHeader(bytes)
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.header, header)
    assert.equal(decoded.headerBytes, bytes.length)
  }
  const move: RecordHeader = { ...sampleHeader(10), kind: 'move', origin: { block: 2, offsetUnits: 9 } }
  const decoded = decodeHeader(encodeHeader(move))
  assert.ok(decoded.ok)
  assert.deepEqual(decoded.header.origin, { block: 2, offsetUnits: 9 })
})

test('every single-bit flip in a header is caught', () => {
  const bytes = encodeHeader(sampleHeader(200_000))
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const copy = Buffer.from(bytes)
    copy[bit >> 3]! ^= 1 << (bit & 7)
    assert.equal(decodeHeader(copy).ok, false, `bit ${bit} flipped went unnoticed`)
  }
})

test('random bytes and zeros never decode as a header', () => {
  const random = seededRandom(42)
  assert.equal(decodeHeader(Buffer.alloc(4096)).ok, false)
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: 512 }, () => (random() * 256) | 0))
    assert.equal(decodeHeader(junk).ok, false)
  }
  const short = encodeHeader(sampleHeader(100)).subarray(0, 50)
  assert.deepEqual(decodeHeader(short), { ok: false, reason: 'short' })
})

test('invariants are asserted before a header can be written', () => {
  const header = sampleHeader(100)
  assert.throws(() => encodeHeader({ ...header, root: header.root ^ 1 }))
  assert.throws(() => encodeHeader({ ...header, lengthBytes: 70_000 }))
  assert.throws(() => encodeHeader({ ...header, kind: 'tombstone' }))
  assert.throws(() => encodeHeader({ ...header, kind: 'move' }))
  assert.throws(() => encodeHeader({ ...header, epoch: 0 }))
})

test('records are aligned and chunk ids convert both ways', () => {
  for (const length of [0, 1, 4095, 4096, 65536, 2 * 1024 * 1024]) {
    assert.equal(recordBytes(length) % recordAlignmentBytes, 0)
    assert.ok(recordBytes(length) >= recordHeaderBytes(Math.ceil(length / 65536)) + length)
  }
  const id = '0f0e0d0c-0b0a-4908-8706-050403020100'
  assert.equal(chunkIdFromBytes(chunkIdToBytes(id)), id)
  assert.equal(chunkIdFromBytes(chunkIdToBytes(id.toUpperCase())), id)
  assert.throws(() => chunkIdToBytes('not-a-uuid'), { code: 'InvalidArgument' })
})
