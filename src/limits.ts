// Every bound of the system, named in one place with its unit, and the relations
// between them asserted at load time (STYLE.md items 5 and 6). A module that needs
// a limit imports it from here; configuration may lower some of them, never raise
// them past what is asserted below.
import assert from 'node:assert/strict'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB

export const units = { KiB, MiB, GiB, TiB } as const

// Erasure coding
export const dataShardsDefault = 8
export const parityShardsDefault = 4
export const shardsTotalMax = 255 // GF(2^8) has 255 non-zero elements
export const chunkSizeBytesDefault = 2 * MiB
export const stripeSizeBytesDefault = dataShardsDefault * chunkSizeBytesDefault // 16 MiB

// Checksums: CRC32C per page, then a CRC32C over the page CRCs (the root).
export const checksumPageSizeBytes = 64 * KiB

// Objects
export const objectSizeBytesMax = 5 * TiB
export const keyLengthBytesMax = 1024
export const inlineObjectSizeBytesDefault = 4 * KiB
export const inlineObjectSizeBytesMax = 64 * KiB
export const multipartPartSizeBytesMin = 5 * MiB
export const multipartPartSizeBytesMax = 5 * GiB
export const multipartPartsMax = 10_000
export const multipartIdleDaysDefault = 7

// Listings
export const listPageKeysMax = 1000

// Gateway (S3 side-port and /api/v1): what one request may carry and how long it may take.
export const singlePutSizeBytesMax = 5 * GiB // S3's limit for one PutObject; bigger objects go multipart
export const xmlBodyBytesMax = 4 * MiB // CompleteMultipartUpload of 10,000 parts, DeleteObjects of 1,000 keys
export const jsonBodyBytesMax = 4 * MiB
export const userMetadataBytesMax = 2 * KiB // x-amz-meta-* names and values together, as S3
export const deleteObjectsKeysMax = 1000
export const presignedExpirySecondsMax = 7 * 24 * 3600
export const clockSkewMsMax = 15 * 60 * 1000
export const awsChunkLineBytesMax = 4 * KiB // one aws-chunked size line or trailer line
export const undrainedBodyBytesMax = 1 * MiB // an error answered before the body was read closes the connection above this
export const requestIdleTimeoutMsDefault = 60_000 // no body bytes for this long -> 400 RequestTimeout
export const requestHeadersTimeoutMsDefault = 30_000
export const keepAliveTimeoutMsDefault = 5_000
export const rateLimitRequestsPerSecondDefault = 5_000 // per access key (token bucket refill)
export const rateLimitBurstDefault = 10_000 // per access key (token bucket size)
export const rateLimitKeysMax = 100_000 // buckets kept; idle full ones are dropped first
export const signingKeyCacheEntriesMax = 1024
export const copyPartSizeBytesMax = 5 * GiB

// Storage nodes
export const blockSizeBytesDefault = 1 * GiB
export const chunkSizeBytesMax = 64 * MiB // largest chunk a node accepts
export const scrubPassDaysDefault = 7

assert.ok(dataShardsDefault + parityShardsDefault <= shardsTotalMax)
assert.equal(stripeSizeBytesDefault % checksumPageSizeBytes, 0)
assert.equal(chunkSizeBytesDefault % checksumPageSizeBytes, 0)
assert.ok(chunkSizeBytesDefault <= chunkSizeBytesMax)
assert.ok(inlineObjectSizeBytesDefault <= inlineObjectSizeBytesMax)
assert.ok(multipartPartSizeBytesMin <= multipartPartSizeBytesMax)
assert.ok(chunkSizeBytesMax < blockSizeBytesDefault)
assert.ok(multipartPartSizeBytesMax * multipartPartsMax >= objectSizeBytesMax)
assert.ok(singlePutSizeBytesMax <= objectSizeBytesMax)
assert.ok(copyPartSizeBytesMax <= multipartPartSizeBytesMax)
assert.ok(deleteObjectsKeysMax * (keyLengthBytesMax + 64) <= xmlBodyBytesMax)
assert.ok(multipartPartsMax * 128 <= xmlBodyBytesMax)
assert.ok(rateLimitBurstDefault >= rateLimitRequestsPerSecondDefault)
