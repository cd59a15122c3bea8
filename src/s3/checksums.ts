// The integrity headers S3 clients send with a body: Content-MD5 and the
// x-amz-checksum-* family (as a header, or announced in x-amz-trailer and sent after
// the data). Parsing and validating their form lives here; the bytes are checked by
// the object layer (header values, via WriteOptions) or by the body pipeline
// (trailers, which arrive after the object layer was called).
import { createHash, type Hash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { crc32 as zlibCrc32 } from 'node:zlib'
import { crc32c } from '../codec/checksum.ts'
import { BlobfsError } from '../errors.ts'
import type { ChecksumAlgorithm, ClientChecksum } from '../objects/types.ts'
import { headerValue } from './headers.ts'

export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ['crc32', 'crc32c', 'sha1', 'sha256']

/** Raw digest lengths, to reject a malformed value before any byte is read. */
const digestBytes: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, sha1: 20, sha256: 32 }

export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm}`
}

/** x-amz-checksum-ALG (or a trailer name) -> ALG; unknown algorithms are NotImplemented. */
export function algorithmOfHeader(name: string): ChecksumAlgorithm {
  const algorithm = name.toLowerCase().slice('x-amz-checksum-'.length)
  if (!name.toLowerCase().startsWith('x-amz-checksum-') || !(checksumAlgorithms as string[]).includes(algorithm)) {
    throw new BlobfsError('NotSupported', `checksum '${name}' is not supported (use CRC32, CRC32C, SHA1 or SHA256)`)
  }
  return algorithm as ChecksumAlgorithm
}

export function validateChecksumValue(algorithm: ChecksumAlgorithm, value: string): ClientChecksum {
  const raw = Buffer.from(value, 'base64')
  if (raw.length !== digestBytes[algorithm] || raw.toString('base64') !== value) {
    throw new BlobfsError('InvalidDigest', `x-amz-checksum-${algorithm} '${value}' is not base64 of ${digestBytes[algorithm]} bytes`)
  }
  return { algorithm, value }
}

/** The one x-amz-checksum-* header of the request, if any (more than one is InvalidRequest). */
export function checksumFromHeaders(headers: IncomingHttpHeaders): ClientChecksum | null {
  const names = Object.keys(headers).filter(
    (n) => n.startsWith('x-amz-checksum-') && n !== 'x-amz-checksum-algorithm' && n !== 'x-amz-checksum-mode' && n !== 'x-amz-checksum-type',
  )
  if (names.length === 0) return null
  if (names.length > 1) throw new BlobfsError('InvalidRequest', `more than one checksum header: ${names.join(', ')}`)
  const name = names[0]!
  return validateChecksumValue(algorithmOfHeader(name), headerValue(headers, name)!)
}

/** Content-MD5 as 16 raw bytes, or undefined; a malformed value is InvalidDigest. */
export function contentMd5(headers: IncomingHttpHeaders): Buffer | undefined {
  const value = headerValue(headers, 'content-md5')
  if (value === undefined) return undefined
  const raw = Buffer.from(value, 'base64')
  if (raw.length !== 16 || raw.toString('base64') !== value.trim()) throw new BlobfsError('InvalidDigest', 'Content-MD5 is not base64 of 16 bytes')
  return raw
}

/** Incremental digest for one algorithm (CRCs big-endian, base64 like the headers). */
export class Checksummer {
  private hash: Hash | null = null
  private crc = 0

  constructor(readonly algorithm: ChecksumAlgorithm) {
    if (algorithm === 'sha1' || algorithm === 'sha256') this.hash = createHash(algorithm)
  }

  update(bytes: Buffer): void {
    if (this.hash) this.hash.update(bytes)
    else if (this.algorithm === 'crc32c') this.crc = crc32c(bytes, this.crc)
    else this.crc = zlibCrc32(bytes, this.crc)
  }

  digestBase64(): string {
    if (this.hash) return this.hash.digest('base64')
    const out = Buffer.alloc(4)
    out.writeUInt32BE(this.crc >>> 0)
    return out.toString('base64')
  }
}

export function checksumOf(algorithm: ChecksumAlgorithm, data: Buffer): string {
  const summer = new Checksummer(algorithm)
  summer.update(data)
  return summer.digestBase64()
}
