// Input checks done in JavaScript before a statement is sent. Callers are other
// blobfs layers, so most failures here are bugs upstream (InvalidArgument); the
// ones a client can cause (KeyTooLong, InvalidBucketName, EntityTooLarge) carry
// their S3 codes. Nothing reaches SQL unless the whole input is valid, which is
// what makes "no partial writes" hold for bad input.
import { BlobfsError } from '../errors.ts'
import {
  httpHeadersBytesMax,
  inlineObjectSizeBytesMax,
  multipartPartsMax,
  objectSizeBytesMax,
  shardsTotalMax,
  symlinkTargetBytesMax,
  userMetadataBytesMax,
} from '../limits.ts'
import type { ObjectAttributes, PartInput, PosixRecord } from './types.ts'

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function invalid(message: string): BlobfsError {
  return new BlobfsError('InvalidArgument', message)
}

export function checkUuid(value: string, what: string): string {
  if (typeof value !== 'string' || !uuidPattern.test(value)) throw invalid(`${what} must be a UUID, got ${JSON.stringify(value)}`)
  return value.toLowerCase()
}

export function checkName(value: string, what: string, lengthMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > lengthMax) {
    throw invalid(`${what} must be a non-empty string of at most ${lengthMax} bytes`)
  }
  return value
}

export function checkCount(value: number, what: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalid(`${what} must be an integer in [${min}, ${max}], got ${value}`)
  return value
}

export function checkCrc(value: number | null | undefined, what: string): number | null {
  if (value === null || value === undefined) return null
  return checkCount(value, what, 0, 0xffffffff)
}

export interface ErasureScheme {
  dataShards: number
  parityShards: number
}

/** RS_<k>_<m> → {k, m}; 'INLINE' → null. */
export function parseScheme(name: string): ErasureScheme | null {
  if (name === 'INLINE') return null
  const match = /^RS_([1-9]\d{0,2})_(0|[1-9]\d{0,2})$/.exec(name)
  if (!match) throw invalid(`erasure coding scheme ${JSON.stringify(name)} is neither INLINE nor RS_<k>_<m>`)
  const scheme = { dataShards: Number(match[1]), parityShards: Number(match[2]) }
  if (scheme.dataShards + scheme.parityShards > shardsTotalMax) throw invalid(`${name} has more than ${shardsTotalMax} shards`)
  return scheme
}

export function checkSize(sizeBytes: number, what = 'object size'): number {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw invalid(`${what} must be a non-negative integer`)
  if (sizeBytes > objectSizeBytesMax) throw new BlobfsError('EntityTooLarge', `${what} ${sizeBytes} is over ${objectSizeBytesMax} bytes`)
  return sizeBytes
}

export function checkInline(data: Buffer, sizeBytes: number): Buffer {
  if (!Buffer.isBuffer(data)) throw invalid('inline content must be a Buffer')
  if (data.length !== sizeBytes) throw invalid(`inline content is ${data.length} bytes, the object ${sizeBytes}`)
  if (data.length > inlineObjectSizeBytesMax) throw invalid(`inline content is over ${inlineObjectSizeBytesMax} bytes`)
  return data
}

export function checkPosix(posix: PosixRecord | null | undefined): PosixRecord | null {
  if (posix === null || posix === undefined) return null
  checkCount(posix.mode, 'posix.mode', 0, 0xffffffff)
  checkCount(posix.uid, 'posix.uid', 0, 0xffffffff)
  checkCount(posix.gid, 'posix.gid', 0, 0xffffffff)
  for (const field of ['mtimeNs', 'ctimeNs'] as const) {
    if (typeof posix[field] !== 'bigint') throw invalid(`posix.${field} must be a bigint (nanoseconds)`)
  }
  return posix
}

export interface CheckedAttributes {
  contentType: string
  userMetadata: Record<string, string>
  httpHeaders: Record<string, string>
  posix: PosixRecord | null
  symlinkTarget: string | null
}

export function checkAttributes(attributes: ObjectAttributes): CheckedAttributes {
  const contentType = attributes.contentType ?? 'application/octet-stream'
  checkName(contentType, 'content type', 256)
  const userMetadata = attributes.userMetadata ?? {}
  if (typeof userMetadata !== 'object' || userMetadata === null || Array.isArray(userMetadata)) throw invalid('user metadata must be an object')
  let metadataBytes = 0
  for (const [name, value] of Object.entries(userMetadata)) {
    if (typeof value !== 'string') throw invalid(`user metadata ${name} must be a string`)
    metadataBytes += Buffer.byteLength(name) + Buffer.byteLength(value)
  }
  if (metadataBytes > userMetadataBytesMax) {
    throw new BlobfsError('InvalidArgument', `user metadata is ${metadataBytes} bytes; the limit is ${userMetadataBytesMax}`)
  }
  const symlinkTarget = attributes.symlinkTarget ?? null
  if (symlinkTarget !== null) checkName(symlinkTarget, 'symlink target', symlinkTargetBytesMax)
  return { contentType, userMetadata, httpHeaders: checkHttpHeaders(attributes.httpHeaders), posix: checkPosix(attributes.posix), symlinkTarget }
}

// An HTTP token (RFC 9110), lower case: stored names are compared as given.
const headerNamePattern = /^[a-z0-9!#$%&'*+.^_`|~-]+$/
// Values go back out as header values: no control characters but tab (no CR/LF
// to split a response, no NUL, which JSONB cannot hold either).
const headerValueProblem = /[\u0000-\u0008\u000a-\u001f\u007f]/

/** Stored standard HTTP headers: lower-case token names, printable values, bounded in total. */
export function checkHttpHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  if (headers === undefined) return {}
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw invalid('HTTP headers must be an object')
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    if (!headerNamePattern.test(name)) throw invalid(`HTTP header name ${JSON.stringify(name)} is not a lower-case header token`)
    if (typeof value !== 'string' || headerValueProblem.test(value)) throw invalid(`HTTP header ${name} must be a string without control characters`)
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value)
  }
  if (bytes > httpHeadersBytesMax) throw invalid(`stored HTTP headers are ${bytes} bytes; the limit is ${httpHeadersBytesMax}`)
  return headers
}

export interface CheckedChunkRow {
  partNumber: number
  stripeIndex: number
  chunkIndex: number
  chunkId: string
  nodeId: string
  lengthBytes: number
  root: number
  isParity: boolean
}

export interface CheckedParts {
  rows: CheckedChunkRow[]
  /** Stripes stored with fewer than k+m chunks: they need repair. */
  degraded: { partNumber: number; stripeIndex: number; missing: number[] }[]
}

/**
 * Checks that `parts` describe exactly `sizeBytes` bytes in whole stripes: every
 * stripe present once, each with at least k distinct chunks of the right length.
 */
export function checkParts(scheme: ErasureScheme, parts: readonly PartInput[], sizeBytes: number | null): CheckedParts {
  const k = scheme.dataShards
  const total = k + scheme.parityShards
  if (!Array.isArray(parts) || parts.length === 0) throw invalid('a striped object needs at least one part')
  if (parts.length > multipartPartsMax) throw invalid(`more than ${multipartPartsMax} parts`)
  const rows: CheckedChunkRow[] = []
  const degraded: CheckedParts['degraded'] = []
  const chunkIds = new Set<string>()
  let sum = 0
  let previousPart = 0
  for (const part of parts) {
    checkCount(part.partNumber, 'part number', 1, multipartPartsMax)
    if (part.partNumber <= previousPart) throw invalid('parts must be in ascending part-number order without repeats')
    previousPart = part.partNumber
    checkSize(part.sizeBytes, `part ${part.partNumber} size`)
    checkCount(part.stripeSizeBytes, 'stripe size', 1, objectSizeBytesMax)
    checkName(part.etag, 'part etag', 64)
    checkCrc(part.checksumCrc32c, 'part checksum')
    sum += part.sizeBytes
    const stripeCount = Math.ceil(part.sizeBytes / part.stripeSizeBytes)
    if (part.stripes.length !== stripeCount) {
      throw invalid(`part ${part.partNumber} of ${part.sizeBytes} bytes in ${part.stripeSizeBytes}-byte stripes needs ${stripeCount} stripes, got ${part.stripes.length}`)
    }
    const seenStripes = new Set<number>()
    for (const stripe of part.stripes) {
      checkCount(stripe.stripeIndex, 'stripe index', 0, stripeCount - 1)
      if (seenStripes.has(stripe.stripeIndex)) throw invalid(`stripe ${stripe.stripeIndex} of part ${part.partNumber} appears twice`)
      seenStripes.add(stripe.stripeIndex)
      const stripeLength = Math.min(part.stripeSizeBytes, part.sizeBytes - stripe.stripeIndex * part.stripeSizeBytes)
      const shardSize = Math.ceil(stripeLength / k)
      const present = new Set<number>()
      for (const chunk of stripe.chunks) {
        checkCount(chunk.chunkIndex, 'chunk index', 0, total - 1)
        if (present.has(chunk.chunkIndex)) throw invalid(`chunk index ${chunk.chunkIndex} appears twice in a stripe`)
        present.add(chunk.chunkIndex)
        const chunkId = checkUuid(chunk.chunkId, 'chunk id')
        if (chunkIds.has(chunkId)) throw invalid(`chunk id ${chunkId} is used twice`)
        chunkIds.add(chunkId)
        checkName(chunk.nodeId, 'node id', 64)
        if (chunk.lengthBytes !== shardSize) {
          throw invalid(`chunk ${chunkId} is ${chunk.lengthBytes} bytes; a ${stripeLength}-byte stripe has ${shardSize}-byte shards`)
        }
        checkCrc(chunk.root, 'chunk checksum root')
        rows.push({
          partNumber: part.partNumber,
          stripeIndex: stripe.stripeIndex,
          chunkIndex: chunk.chunkIndex,
          chunkId,
          nodeId: chunk.nodeId,
          lengthBytes: chunk.lengthBytes,
          root: chunk.root,
          isParity: chunk.chunkIndex >= k,
        })
      }
      if (present.size < k) throw invalid(`stripe ${stripe.stripeIndex} of part ${part.partNumber} has ${present.size} chunks; at least ${k} are needed to read it`)
      if (present.size < total) {
        const missing: number[] = []
        for (let i = 0; i < total; i++) if (!present.has(i)) missing.push(i)
        degraded.push({ partNumber: part.partNumber, stripeIndex: stripe.stripeIndex, missing })
      }
    }
  }
  if (sizeBytes !== null && sum !== sizeBytes) throw invalid(`parts hold ${sum} bytes, the object ${sizeBytes}`)
  return { rows, degraded }
}
