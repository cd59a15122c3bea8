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

// FUSE daemon (src/fuse): caches, spooling, readahead, deadlines
export const fuseAttrTtlMsDefault = 1000
export const fuseAttrCacheEntriesMax = 100_000
export const fuseDirCacheDirsMax = 1000
export const fuseDirCacheNamesMax = 10_000 // larger directories are listed afresh every time
export const fuseBlockSizeBytesDefault = 128 * KiB // read-cache unit (two checksum pages, the largest FUSE read): a random read fetches one block
export const fuseBlockCacheBytesDefault = 256 * MiB
export const fuseReadaheadBytesDefault = stripeSizeBytesDefault // sequential readers fetch whole stripes ahead
export const fuseReadaheadInFlightBytesMax = 4 * stripeSizeBytesDefault // all readers together
export const fuseSpoolMemoryBytesPerFileDefault = 8 * MiB // past this a file's spool moves to disk
export const fuseSpoolMemoryBytesTotalDefault = 64 * MiB // all spools together
export const fuseUploadPieceBytes = 1 * MiB // spool -> putObject body pieces
export const fuseOpTimeoutMsDefault = 30_000 // metadata ops and reads
export const fuseTransferTimeoutMsDefault = 10 * 60_000 // ops that upload or load a whole file
export const fuseBindingTimeoutMarginMs = 5_000 // fuse-native's own timeout is ours plus this
export const fuseMaxReadBytes = 128 * KiB // libfuse 2 caps requests at 32 pages
export const fuseMaxWriteBytes = 128 * KiB
export const fuseNameBytesMax = 255
export const fuseMountWatchIntervalMs = 1000 // how soon an unmount from outside ends the daemon

assert.equal(stripeSizeBytesDefault % fuseBlockSizeBytesDefault, 0)
assert.equal(fuseBlockSizeBytesDefault % checksumPageSizeBytes, 0)
assert.equal(fuseReadaheadBytesDefault % fuseBlockSizeBytesDefault, 0)
assert.ok(fuseBlockCacheBytesDefault >= 2 * fuseReadaheadBytesDefault)
assert.ok(fuseSpoolMemoryBytesPerFileDefault <= fuseSpoolMemoryBytesTotalDefault)
assert.ok(fuseMaxReadBytes <= fuseBlockSizeBytesDefault)
assert.ok(fuseOpTimeoutMsDefault < fuseTransferTimeoutMsDefault)
