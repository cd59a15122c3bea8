// The wire protocol between storage nodes and their clients (src/cluster/
// http-store.ts), in one place so both ends read the same table. Plain HTTP/1.1
// with keep-alive; chunk bytes travel raw, their checksum tree in headers.
//
//   PUT    /v1/chunks/{uuid}   body = chunk bytes; x-blobfs-page-crcs (base64 of the
//                              little-endian page CRC32Cs), x-blobfs-root (8 hex);
//                              201 stored, 200 already stored with the same bytes
//   GET    /v1/chunks/{uuid}   optional Range: bytes=a-b | a- | -n (one range);
//                              200/206 with exactly the bytes asked, plus
//                              x-blobfs-length, x-blobfs-root, x-blobfs-first-page
//                              and x-blobfs-page-crcs for the pages the bytes touch,
//                              so a client that asks for whole pages verifies them
//   HEAD   /v1/chunks/{uuid}   x-blobfs-length, x-blobfs-root, x-blobfs-age-ms
//   DELETE /v1/chunks/{uuid}   204 (absent chunks too)
//   GET    /v1/inventory       NDJSON, one {"chunkId","lengthBytes","ageMs"} a line
//   POST   /v1/scrub           202: start a scrub pass now
//   GET    /health             JSON status; 200 writable, 200 with "read-only" too
//   GET    /metrics            Prometheus text
//
// Errors: the status below and `x-blobfs-error: <BlobfsError code>` with a JSON body
// {code, message}. A failed checksum is 422 ChunkCorrupt — never 404, never bytes.
import { pageCrcsFromBuffer, pageCrcsToBuffer } from '../codec/checksum.ts'
import { BlobfsError, errorCodes, type ErrorCode } from '../errors.ts'

export const chunkPathPrefix = '/v1/chunks/'
export const inventoryPath = '/v1/inventory'
export const scrubPath = '/v1/scrub'
export const healthPath = '/health'
export const metricsPath = '/metrics'

export const wireHeaders = {
  error: 'x-blobfs-error',
  pageCrcs: 'x-blobfs-page-crcs',
  firstPage: 'x-blobfs-first-page',
  root: 'x-blobfs-root',
  length: 'x-blobfs-length',
  pageSize: 'x-blobfs-page-size',
  ageMs: 'x-blobfs-age-ms',
} as const

/** HTTP status for each error code a node answers with; anything else is 500. */
export const statusByCode: Partial<Record<ErrorCode, number>> = {
  InvalidArgument: 400,
  BadDigest: 400,
  IncompleteBody: 400,
  ChunkNotFound: 404,
  ChunkConflict: 409,
  EntityTooLarge: 413,
  InvalidRange: 416,
  ChunkCorrupt: 422,
  Internal: 500,
  NodeUnavailable: 503,
  SlowDown: 503,
  InsufficientStorage: 507,
}

export function statusOf(code: ErrorCode): number {
  return statusByCode[code] ?? 500
}

/** The code a client should raise for a response, from its header or its status. */
export function codeOfResponse(status: number, headerCode: string | undefined): ErrorCode {
  if (headerCode !== undefined && headerCode in errorCodes) return headerCode as ErrorCode
  for (const [code, s] of Object.entries(statusByCode)) if (s === status) return code as ErrorCode
  return status >= 500 ? 'NodeUnavailable' : 'Internal'
}

export function encodeRoot(root: number): string {
  return (root >>> 0).toString(16).padStart(8, '0')
}

export function decodeRoot(value: string | undefined): number {
  if (value === undefined || !/^[0-9a-f]{8}$/i.test(value)) throw new BlobfsError('InvalidArgument', `${wireHeaders.root} must be 8 hex digits`)
  return Number.parseInt(value, 16) >>> 0
}

export function encodePageCrcs(pageCrcs: Uint32Array): string {
  return pageCrcsToBuffer(pageCrcs).toString('base64')
}

export function decodePageCrcs(value: string | undefined): Uint32Array {
  if (value === undefined) throw new BlobfsError('InvalidArgument', `${wireHeaders.pageCrcs} is missing`)
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new BlobfsError('InvalidArgument', `${wireHeaders.pageCrcs} is not base64`)
  return pageCrcsFromBuffer(Buffer.from(value, 'base64'))
}

export type ParsedRange = { offsetBytes: number; lengthBytes: number } | 'unsatisfiable' | null

/** One `bytes=` range against a chunk of `lengthBytes` (RFC 9110 14.1.2); null = whole. */
export function parseRange(header: string | undefined, lengthBytes: number): ParsedRange {
  if (header === undefined) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return 'unsatisfiable'
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || lengthBytes === 0) return 'unsatisfiable'
    const take = Math.min(suffix, lengthBytes)
    return { offsetBytes: lengthBytes - take, lengthBytes: take }
  }
  const first = Number(m[1])
  const last = m[2] === '' ? lengthBytes - 1 : Math.min(Number(m[2]), lengthBytes - 1)
  if (first >= lengthBytes || last < first) return 'unsatisfiable'
  return { offsetBytes: first, lengthBytes: last - first + 1 }
}
