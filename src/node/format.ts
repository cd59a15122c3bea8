// The record of a block log, byte for byte (DESIGN.md, "Storage node internals").
// A block log is a pre-allocated file of records laid end to end, each starting on
// a 4 KiB boundary. The header is checked before it is written and again after it
// is read back (STYLE.md item 4): a torn, stale or rotten header fails its CRC, and
// the payload is covered by the page CRCs the header carries.
//
// Layout (little-endian), offsets in bytes:
//    0 u32  magic                      36 u32  epoch (bumped at every start)
//    4 u16  format version             40 f64  createdMs (first write of the chunk)
//    6 u16  kind (put/tombstone/move)  48 u32  synced block  \ every record before this
//    8 16B  chunk id (UUID bytes)      52 u32  synced offset / position was fdatasync'ed
//   24 u32  payload length             56 u32  origin block  \ move records only: where
//   28 u32  page count                 60 u32  origin offset / compaction copied it from
//   32 u32  checksum root              64 ...  page CRC32Cs, 4 bytes each
//   then u32 header CRC32C over everything before it, then the payload, then zero
//   padding up to the next alignment boundary.
//
// The synced position lets recovery trust records before it without reading their
// payloads (they were fdatasync'ed before this header was written); only records
// after it — the last group commit — have their pages verified at start-up. The
// epoch lets recovery refuse stale records of an earlier run that lie beyond the
// end of the log and happen to line up after newer records.
import assert from 'node:assert/strict'
import { crc32c, pageCount, rootOf } from '../codec/checksum.ts'
import { BlobfsError } from '../errors.ts'
import { blockSizeBytesMax, checksumPageSizeBytes, chunkSizeBytesMax, recordAlignmentBytes } from '../limits.ts'

export const recordMagic = 0x4c424642 // "BFBL" in file order
export const recordFormatVersion = 1
export const recordFixedHeaderBytes = 64
export const recordPageCountMax = pageCount(chunkSizeBytesMax, checksumPageSizeBytes)
export const recordHeaderBytesMax = recordFixedHeaderBytes + 4 * recordPageCountMax + 4
export const chunkIdBytes = 16

export type RecordKind = 'put' | 'tombstone' | 'move'
const kindCodes: Record<RecordKind, number> = { put: 1, tombstone: 2, move: 3 }
const kindsByCode: (RecordKind | undefined)[] = [undefined, 'put', 'tombstone', 'move']

/** A place in the log: block number (from 1) and offset in alignment units. */
export interface Position {
  block: number
  offsetUnits: number
}

export const positionZero: Position = Object.freeze({ block: 0, offsetUnits: 0 })

export function comparePositions(a: Position, b: Position): number {
  return a.block !== b.block ? a.block - b.block : a.offsetUnits - b.offsetUnits
}

export interface RecordHeader {
  kind: RecordKind
  chunkId: Buffer
  lengthBytes: number
  pageCrcs: Uint32Array
  root: number
  epoch: number
  createdMs: number
  synced: Position
  /** Move records only: the location the copy came from. */
  origin: Position | null
}

export function alignUp(bytes: number): number {
  return Math.ceil(bytes / recordAlignmentBytes) * recordAlignmentBytes
}

export function recordHeaderBytes(pages: number): number {
  return recordFixedHeaderBytes + 4 * pages + 4
}

/** Bytes a record of `lengthBytes` payload takes in a block, padding included. */
export function recordBytes(lengthBytes: number): number {
  return alignUp(recordHeaderBytes(pageCount(lengthBytes, checksumPageSizeBytes)) + lengthBytes)
}

export function recordUnits(lengthBytes: number): number {
  return recordBytes(lengthBytes) / recordAlignmentBytes
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Parses a UUID string into its 16 bytes; InvalidArgument when it is not one. */
export function chunkIdToBytes(chunkId: string): Buffer {
  if (!uuidPattern.test(chunkId)) throw new BlobfsError('InvalidArgument', `chunk id '${chunkId}' is not a UUID`)
  return Buffer.from(chunkId.replaceAll('-', ''), 'hex')
}

export function chunkIdFromBytes(bytes: Buffer): string {
  assert.equal(bytes.length, chunkIdBytes)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function assertPosition(position: Position): void {
  assert.ok(Number.isInteger(position.block) && position.block >= 0 && position.block <= 0xffffffff, 'Number.isInteger(position.block) && position.block >= 0 && position.block <= 0xffffffff')
  assert.ok(Number.isInteger(position.offsetUnits) && position.offsetUnits >= 0, 'Number.isInteger(position.offsetUnits) && position.offsetUnits >= 0')
  assert.ok(position.offsetUnits * recordAlignmentBytes <= blockSizeBytesMax, 'position.offsetUnits * recordAlignmentBytes <= blockSizeBytesMax')
}

/** Encodes a header; every field is checked before it can reach the disk. */
export function encodeHeader(header: RecordHeader): Buffer {
  const pages = header.pageCrcs.length
  assert.equal(header.chunkId.length, chunkIdBytes)
  assert.ok(Number.isInteger(header.lengthBytes) && header.lengthBytes >= 0, 'Number.isInteger(header.lengthBytes) && header.lengthBytes >= 0')
  assert.ok(header.lengthBytes <= chunkSizeBytesMax, 'header.lengthBytes <= chunkSizeBytesMax')
  assert.equal(pages, pageCount(header.lengthBytes, checksumPageSizeBytes))
  assert.equal(header.root, rootOf(header.pageCrcs))
  assert.ok(header.kind !== 'tombstone' || header.lengthBytes === 0, 'header.kind !== \'tombstone\' || header.lengthBytes === 0')
  assert.equal(header.origin !== null, header.kind === 'move')
  assert.ok(Number.isInteger(header.epoch) && header.epoch > 0 && header.epoch <= 0xffffffff, 'Number.isInteger(header.epoch) && header.epoch > 0 && header.epoch <= 0xffffffff')
  assert.ok(Number.isFinite(header.createdMs) && header.createdMs >= 0, 'Number.isFinite(header.createdMs) && header.createdMs >= 0')
  assertPosition(header.synced)
  if (header.origin) assertPosition(header.origin)

  const bytes = Buffer.alloc(recordHeaderBytes(pages))
  bytes.writeUInt32LE(recordMagic, 0)
  bytes.writeUInt16LE(recordFormatVersion, 4)
  bytes.writeUInt16LE(kindCodes[header.kind], 6)
  header.chunkId.copy(bytes, 8)
  bytes.writeUInt32LE(header.lengthBytes, 24)
  bytes.writeUInt32LE(pages, 28)
  bytes.writeUInt32LE(header.root >>> 0, 32)
  bytes.writeUInt32LE(header.epoch, 36)
  bytes.writeDoubleLE(header.createdMs, 40)
  bytes.writeUInt32LE(header.synced.block, 48)
  bytes.writeUInt32LE(header.synced.offsetUnits, 52)
  bytes.writeUInt32LE(header.origin?.block ?? 0, 56)
  bytes.writeUInt32LE(header.origin?.offsetUnits ?? 0, 60)
  for (let i = 0; i < pages; i++) bytes.writeUInt32LE(header.pageCrcs[i]!, recordFixedHeaderBytes + 4 * i)
  const crcAt = recordFixedHeaderBytes + 4 * pages
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, crcAt)), crcAt)
  return bytes
}

export type DecodeResult = { ok: true; header: RecordHeader; headerBytes: number } | { ok: false; reason: string }

/**
 * Decodes the header at `offset` of `bytes`. Never throws on bad input: recovery
 * treats a bad header as the end of the log or a damaged record to skip, a read
 * treats it as ChunkCorrupt.
 * When `bytes` holds too little to judge, the reason is 'short'.
 */
export function decodeHeader(bytes: Buffer, offset = 0): DecodeResult {
  if (bytes.length - offset < recordFixedHeaderBytes + 4) return { ok: false, reason: 'short' }
  if (bytes.readUInt32LE(offset) !== recordMagic) return { ok: false, reason: 'bad magic' }
  const pages = bytes.readUInt32LE(offset + 28)
  if (pages > recordPageCountMax) return { ok: false, reason: `page count ${pages} exceeds the maximum` }
  const crcAt = offset + recordFixedHeaderBytes + 4 * pages
  if (bytes.length < crcAt + 4) return { ok: false, reason: 'short' }
  if (crc32c(bytes.subarray(offset, crcAt)) !== bytes.readUInt32LE(crcAt)) return { ok: false, reason: 'header CRC mismatch' }
  // From here the bytes are what some writer encoded; a mismatch below is a bug or
  // a record of another format, never a torn write.
  const version = bytes.readUInt16LE(offset + 4)
  if (version !== recordFormatVersion) return { ok: false, reason: `format version ${version} is not ${recordFormatVersion}` }
  const kind = kindsByCode[bytes.readUInt16LE(offset + 6)]
  if (kind === undefined) return { ok: false, reason: 'unknown record kind' }
  const lengthBytes = bytes.readUInt32LE(offset + 24)
  if (lengthBytes > chunkSizeBytesMax || pages !== pageCount(lengthBytes, checksumPageSizeBytes)) {
    return { ok: false, reason: `page count ${pages} does not fit length ${lengthBytes}` }
  }
  const pageCrcs = new Uint32Array(pages)
  for (let i = 0; i < pages; i++) pageCrcs[i] = bytes.readUInt32LE(offset + recordFixedHeaderBytes + 4 * i)
  const root = bytes.readUInt32LE(offset + 32)
  if (root !== rootOf(pageCrcs)) return { ok: false, reason: 'root does not match the page CRCs' }
  const originBlock = bytes.readUInt32LE(offset + 56)
  const originOffsetUnits = bytes.readUInt32LE(offset + 60)
  if (kind === 'tombstone' && lengthBytes !== 0) return { ok: false, reason: 'tombstone with a payload' }
  if (kind !== 'move' && (originBlock !== 0 || originOffsetUnits !== 0)) return { ok: false, reason: 'origin on a record that is not a move' }
  const header: RecordHeader = {
    kind,
    chunkId: Buffer.from(bytes.subarray(offset + 8, offset + 24)),
    lengthBytes,
    pageCrcs,
    root,
    epoch: bytes.readUInt32LE(offset + 36),
    createdMs: bytes.readDoubleLE(offset + 40),
    synced: { block: bytes.readUInt32LE(offset + 48), offsetUnits: bytes.readUInt32LE(offset + 52) },
    origin: kind === 'move' ? { block: originBlock, offsetUnits: originOffsetUnits } : null,
  }
  return { ok: true, header, headerBytes: crcAt + 4 - offset }
}
