// Object keys as the catalog stores them, and the input rules the catalog enforces
// before it sends a statement (bad input never reaches SQL, so it never half-writes).
//
// Keys are stored as BYTEA holding their UTF-8 bytes. S3 lists keys in UTF-8 binary
// order, and bytes compare the same way on PostgreSQL, PGlite and CockroachDB with
// no collation involved: text columns would sort by the database's locale unless
// every column and comparison said COLLATE "C", and CockroachDB's collated strings
// are a different type with a collation key per value. Because a valid UTF-8 string
// never contains the byte 0xFF, `prefix || 0xFF` is greater than every key that
// starts with `prefix` and smaller than every greater key that does not: it is the
// exclusive upper bound of a prefix, and the seek target that skips a whole common
// prefix in one index probe. `key || 0x00` is the smallest key after `key`.
import { BlobfsError } from '../errors.ts'
import { keyLengthBytesMax } from '../limits.ts'

const byteFF = Buffer.from([0xff])
// A UTF-16 surrogate without its pair cannot be encoded as UTF-8 (Buffer.from would
// silently write U+FFFD, so two different keys would collide).
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const byte00 = Buffer.from([0x00])

/** The UTF-8 bytes of a key, after checking it is a well-formed, non-empty key of at most 1024 bytes. */
export function encodeKey(key: string, what = 'key'): Buffer {
  if (typeof key !== 'string' || key.length === 0) throw new BlobfsError('InvalidArgument', `${what} must be a non-empty string`)
  const bytes = encodeText(key, what)
  if (bytes.length > keyLengthBytesMax) {
    throw new BlobfsError('KeyTooLong', `${what} is ${bytes.length} bytes of UTF-8; the limit is ${keyLengthBytesMax}`)
  }
  return bytes
}

/** UTF-8 bytes of any string (a prefix, a delimiter) that must be well-formed; may be empty. */
export function encodeText(text: string, what: string): Buffer {
  if (typeof text !== 'string') throw new BlobfsError('InvalidArgument', `${what} must be a string`)
  if (loneSurrogate.test(text)) throw new BlobfsError('InvalidArgument', `${what} is not valid Unicode (lone surrogate)`)
  return Buffer.from(text, 'utf8')
}

export function decodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}

/** Exclusive upper bound of every key that starts with `prefix` (an empty prefix bounds all keys). */
export function prefixEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, byteFF])
}

/** The smallest possible key strictly after `key`. */
export function keySuccessor(key: Buffer): Buffer {
  return Buffer.concat([key, byte00])
}

export function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix)
}

export function maxBytes(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b
}

export const bytes = { ff: byteFF, zero: byte00 } as const

// Continuation tokens are opaque to clients: base64url of a version byte and the
// inclusive seek position where the next page starts (a key's successor, or a
// common prefix followed by 0xFF). Seeking there repeats nothing and skips nothing.
const tokenVersion = 1

export function encodeToken(seekFrom: Buffer): string {
  return Buffer.concat([Buffer.from([tokenVersion]), seekFrom]).toString('base64url')
}

export function decodeToken(token: string): Buffer {
  const raw = typeof token === 'string' && /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.alloc(0)
  if (raw.length < 2 || raw[0] !== tokenVersion || raw.length > keyLengthBytesMax + 2) {
    throw new BlobfsError('InvalidArgument', 'the continuation token is not one this catalog issued')
  }
  return raw.subarray(1)
}

// S3 bucket naming rules (general purpose buckets), checked in full so that any
// name the catalog accepts is one every S3 client can address.
const bucketNamePattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
const ipAddressPattern = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/
const reservedPrefixes = ['xn--', 'sthree-', 'amzn-s3-demo-']
const reservedSuffixes = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3']

export function bucketNameProblem(name: string): string | null {
  if (typeof name !== 'string') return 'must be a string'
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long'
  if (!bucketNamePattern.test(name)) {
    return 'may hold only lowercase letters, digits, dots and hyphens, and must begin and end with a letter or digit'
  }
  if (name.includes('..')) return 'must not contain two adjacent dots'
  if (ipAddressPattern.test(name)) return 'must not be formatted as an IP address'
  for (const prefix of reservedPrefixes) if (name.startsWith(prefix)) return `must not start with ${prefix}`
  for (const suffix of reservedSuffixes) if (name.endsWith(suffix)) return `must not end with ${suffix}`
  return null
}

export function checkBucketName(name: string): string {
  const problem = bucketNameProblem(name)
  if (problem !== null) throw new BlobfsError('InvalidBucketName', `bucket name ${JSON.stringify(name)} ${problem}`)
  return name
}
