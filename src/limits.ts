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
// Codec calls reading at most this many bytes run inline even when asked for
// asynchronously: a threadpool round trip (~20-50 us) costs more than the work
// (256 KiB takes ~20 us with AVX2), as for the small columns of degraded reads.
export const codecInlineBytesMax = 256 * KiB

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
