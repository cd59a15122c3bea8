// The checksum tree every chunk carries (DESIGN.md, "Objects, stripes, chunks"):
// CRC32C over each 64 KiB page, and a root CRC32C over the page CRCs (stored in
// the catalog as `checksum_crc32c`). A range read verifies just the pages it touches,
// so a 4 KiB read of a 2 MiB chunk checks 64 KiB, not 2 MiB.
import assert from 'node:assert/strict'
import crc32cModule from 'fast-crc32c'
import { BlobfsError } from '../errors.ts'
import { checksumPageSizeBytes } from '../limits.ts'

const crc32cImpl = crc32cModule as { calculate(data: Buffer | string, initial?: number): number }

/** CRC32C (Castagnoli) of `data`, continuing from `initial` when given. */
export function crc32c(data: Buffer, initial = 0): number {
  return crc32cImpl.calculate(data, initial) >>> 0
}

export interface ChecksumTree {
  readonly lengthBytes: number
  readonly pageSizeBytes: number
  /** One CRC32C per page; the last page may be short. Empty for a 0-byte chunk. */
  readonly pageCrcs: Uint32Array
  /** CRC32C over the little-endian bytes of pageCrcs. */
  readonly root: number
}

export function pageCount(lengthBytes: number, pageSizeBytes = checksumPageSizeBytes): number {
  return Math.ceil(lengthBytes / pageSizeBytes)
}

export function checksumTree(data: Buffer, pageSizeBytes = checksumPageSizeBytes): ChecksumTree {
  assert.ok(pageSizeBytes > 0 && Number.isInteger(pageSizeBytes))
  const pages = pageCount(data.length, pageSizeBytes)
  const pageCrcs = new Uint32Array(pages)
  for (let page = 0; page < pages; page++) {
    const start = page * pageSizeBytes
    pageCrcs[page] = crc32c(data.subarray(start, Math.min(start + pageSizeBytes, data.length)))
  }
  return { lengthBytes: data.length, pageSizeBytes, pageCrcs, root: rootOf(pageCrcs) }
}

export function rootOf(pageCrcs: Uint32Array): number {
  return crc32c(pageCrcsToBuffer(pageCrcs))
}

/** Page CRCs as little-endian bytes: the form they take on disk and on the wire. */
export function pageCrcsToBuffer(pageCrcs: Uint32Array): Buffer {
  const out = Buffer.allocUnsafe(pageCrcs.length * 4)
  for (let i = 0; i < pageCrcs.length; i++) out.writeUInt32LE(pageCrcs[i]!, i * 4)
  return out
}

export function pageCrcsFromBuffer(bytes: Buffer): Uint32Array {
  if (bytes.length % 4 !== 0) throw new BlobfsError('InvalidArgument', `page CRC list of ${bytes.length} bytes is not a multiple of 4`)
  const out = new Uint32Array(bytes.length / 4)
  for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt32LE(i * 4)
  return out
}

export interface PageSpan {
  firstPage: number
  /** Exclusive. */
  endPage: number
  /** Byte offset of firstPage in the chunk. */
  startBytes: number
  /** Exclusive byte end, clipped to the chunk length. */
  endBytes: number
}

/** The whole pages a byte range touches: what must be read to verify the range. */
export function pagesCovering(
  offsetBytes: number,
  lengthBytes: number,
  chunkLengthBytes: number,
  pageSizeBytes = checksumPageSizeBytes,
): PageSpan {
  if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > chunkLengthBytes) {
    throw new BlobfsError('InvalidRange', `range ${offsetBytes}+${lengthBytes} is outside a chunk of ${chunkLengthBytes} bytes`)
  }
  if (lengthBytes === 0) {
    const page = Math.floor(offsetBytes / pageSizeBytes)
    return { firstPage: page, endPage: page, startBytes: offsetBytes, endBytes: offsetBytes }
  }
  const firstPage = Math.floor(offsetBytes / pageSizeBytes)
  const endPage = Math.ceil((offsetBytes + lengthBytes) / pageSizeBytes)
  return {
    firstPage,
    endPage,
    startBytes: firstPage * pageSizeBytes,
    endBytes: Math.min(endPage * pageSizeBytes, chunkLengthBytes),
  }
}

/**
 * Verifies whole pages `bytes` (starting at page `firstPage` of the chunk) against
 * the page CRCs. Throws ChunkCorrupt naming the first bad page; never returns on a
 * mismatch, so callers cannot hand out bytes that failed.
 */
export function verifyPages(bytes: Buffer, firstPage: number, pageCrcs: Uint32Array, pageSizeBytes = checksumPageSizeBytes): void {
  const pages = pageCount(bytes.length, pageSizeBytes)
  if (firstPage + pages > pageCrcs.length) {
    throw new BlobfsError('ChunkCorrupt', `pages ${firstPage}..${firstPage + pages} exceed the ${pageCrcs.length} page CRCs`)
  }
  for (let i = 0; i < pages; i++) {
    const start = i * pageSizeBytes
    const actual = crc32c(bytes.subarray(start, Math.min(start + pageSizeBytes, bytes.length)))
    if (actual !== pageCrcs[firstPage + i]) {
      throw new BlobfsError('ChunkCorrupt', `page ${firstPage + i} failed CRC32C (expected ${pageCrcs[firstPage + i]!.toString(16)}, got ${actual.toString(16)})`)
    }
  }
}

/** Checks a tree is self-consistent: page count fits the length and the root matches. */
export function verifyTree(tree: ChecksumTree): void {
  if (tree.pageCrcs.length !== pageCount(tree.lengthBytes, tree.pageSizeBytes)) {
    throw new BlobfsError('BadDigest', `${tree.pageCrcs.length} page CRCs for ${tree.lengthBytes} bytes`)
  }
  if (rootOf(tree.pageCrcs) !== tree.root) throw new BlobfsError('BadDigest', 'checksum root does not match the page CRCs')
}
