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
// A delimited listing walks the key index in batches, each one index range scan
// (src/catalog/listing.ts): a short one after a common prefix, where the next common
// prefix is likely near, and a longer one while a run of plain keys goes on.
export const listWalkBatchKeysAfterPrefix = 2
export const listWalkBatchKeysInRun = 16

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
// Block logs (src/node): records start on an alignment boundary so a header never
// shares a sector with the tail of the previous record; locations are kept in
// alignment units in 32-bit fields, which bounds the block size.
export const recordAlignmentBytes = 4 * KiB
export const blockSizeBytesMin = 256 * KiB // tests use small blocks; production uses the default
export const blockSizeBytesMax = 2 ** 32 * recordAlignmentBytes
export const groupCommitRecordsMax = 256 // records sharing one fdatasync
export const groupCommitBytesMax = 64 * MiB // bytes written before one fdatasync
export const snapshotIntervalRecordsDefault = 65_536 // records appended between index snapshots
export const snapshotIntervalBytesDefault = 1 * GiB // bytes appended between index snapshots
export const compactionDeadRatioDefault = 0.5 // compact a block once half of it is dead
export const compactionRateBytesPerSecDefault = 64 * MiB
export const scrubRateBytesPerSecMaxDefault = 32 * MiB
export const heartbeatIntervalMsDefault = 5_000
export const nodeRequestBytesInFlightMax = 512 * MiB // PUT bodies + GET buffers held at once
export const nodeWireHeaderBytesMax = 8 * KiB // page CRCs travel base64 in one header
export const nodeBodyPoolBuffersMax = 16 // free chunk-sized body buffers a node keeps for reuse (32 MiB)

assert.ok(dataShardsDefault + parityShardsDefault <= shardsTotalMax)
assert.equal(stripeSizeBytesDefault % checksumPageSizeBytes, 0)
assert.equal(chunkSizeBytesDefault % checksumPageSizeBytes, 0)
assert.ok(chunkSizeBytesDefault <= chunkSizeBytesMax)
assert.ok(inlineObjectSizeBytesDefault <= inlineObjectSizeBytesMax)
assert.ok(multipartPartSizeBytesMin <= multipartPartSizeBytesMax)
assert.ok(chunkSizeBytesMax < blockSizeBytesDefault)
assert.equal(checksumPageSizeBytes % recordAlignmentBytes, 0)
assert.equal(blockSizeBytesMin % recordAlignmentBytes, 0)
assert.equal(blockSizeBytesDefault % recordAlignmentBytes, 0)
assert.ok(blockSizeBytesMin <= blockSizeBytesDefault)
assert.ok(blockSizeBytesDefault <= blockSizeBytesMax)
assert.ok(chunkSizeBytesMax <= groupCommitBytesMax) // the largest record fits one group commit
assert.ok(groupCommitBytesMax <= nodeRequestBytesInFlightMax)
assert.ok(compactionDeadRatioDefault > 0)
assert.ok(compactionDeadRatioDefault < 1)
// base64 of every page CRC of the largest chunk fits the header budget
assert.ok(Math.ceil((4 * chunkSizeBytesMax) / checksumPageSizeBytes / 3) * 4 <= nodeWireHeaderBytesMax)
assert.ok(multipartPartSizeBytesMax * multipartPartsMax >= objectSizeBytesMax)

// Catalog (src/catalog): transactions, batches and queues
export const catalogTxTriesMax = 16 // SERIALIZABLE retries on 40001/40P01, then SerializationFailure
export const catalogTxBackoffMsBase = 2
export const catalogTxBackoffMsMax = 250
export const catalogConnectTimeoutMsDefault = 10_000
export const catalogConnectionsPerProcessDefault = 8
export const catalogRowsPerInsertMax = 500 // rows per multi-row INSERT (bound parameters stay < 65534)
export const renamePrefixKeysMax = 100_000 // keys moved by one directory rename (one transaction)
export const queueClaimBatchMax = 100
export const queueLeaseMsMax = 60 * 60_000
export const chunkDeletionDelayMsDefault = 10 * 60_000 // readers of a replaced version finish first
export const multipartListPartsMax = 1000
export const multipartListUploadsMax = 1000
export const symlinkTargetBytesMax = 4096
export const httpHeadersBytesMax = 8 * KiB // stored standard headers (Cache-Control, ...), names and values together
// The embedded catalog (PGlite served over pglite-socket)
export const embeddedConnectionsMax = 512
export const embeddedSessionHoldMsMax = 30_000 // a client holding the single session this long is cut off
export const embeddedCheckpointIntervalMs = 5 * 60_000 // PGlite runs no checkpointer: the embedded catalog checkpoints this often

assert.ok(catalogTxBackoffMsBase > 0 && catalogTxBackoffMsBase <= catalogTxBackoffMsMax)
assert.ok(catalogRowsPerInsertMax * 12 < 65_534) // the widest row we insert has 12 columns
assert.ok(queueClaimBatchMax >= 1 && listPageKeysMax >= 1)
assert.ok(listWalkBatchKeysAfterPrefix >= 1 && listWalkBatchKeysAfterPrefix < listWalkBatchKeysInRun)
assert.ok(listWalkBatchKeysInRun <= listPageKeysMax)

assert.ok(singlePutSizeBytesMax <= objectSizeBytesMax)
assert.ok(copyPartSizeBytesMax <= multipartPartSizeBytesMax)
assert.ok(deleteObjectsKeysMax * (keyLengthBytesMax + 64) <= xmlBodyBytesMax)
assert.ok(multipartPartsMax * 128 <= xmlBodyBytesMax)
assert.ok(rateLimitBurstDefault >= rateLimitRequestsPerSecondDefault)

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
export const fuseSpoolPageBytes = 4 * KiB // an in-memory spool grows in these, doubling
export const fuseUploadPieceBytes = 1 * MiB // spool -> putObject body pieces
export const fuseStreamUploadStartBytesDefault = stripeSizeBytesDefault // a file written front to back starts uploading once this big, while it is written
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
assert.ok(fuseStreamUploadStartBytesDefault > fuseSpoolMemoryBytesPerFileDefault) // files that stream are spooled on disk, not in memory
assert.ok(fuseOpTimeoutMsDefault < fuseTransferTimeoutMsDefault)

// Garbage collection and drain (src/repair: chunk-gc, multipart-gc, inventory-sweep, drain).
// The sweep's safety rests on one relation: a chunk nothing references is deleted
// only once it is older than the orphan grace, and no writer commits a chunk older
// than writeDurationMsMax (the object layer refuses the commit), so the grace must
// exceed it. Multipart parts are referenced from the moment they are recorded.
const hourMs = 3600_000
export const writeDurationMsMax = 12 * hourMs // a PUT or part upload that takes longer is refused at commit
export const orphanGraceMsDefault = 24 * hourMs // unreferenced chunks younger than this are left alone
export const multipartIdleMsDefault = multipartIdleDaysDefault * 24 * hourMs
export const chunkGcBatchMax = 64 // deletions one GC step claims
export const chunkGcConcurrency = 8 // tombstones one node's GC has in flight
export const chunkGcDeletesPerSecDefault = 500 // per node
export const chunkGcLeaseMs = 60_000
export const chunkGcRetryMsMax = 10 * 60_000 // backoff cap for a deletion that keeps failing
export const gcIdleMsDefault = 5_000 // an idle GC worker looks again after this long
export const multipartGcIntervalMsDefault = 10 * 60_000
export const multipartGcBatchMax = 100 // sessions examined per step
export const inventorySweepIntervalMsDefault = 6 * hourMs // one node's sweep starts this long after the previous one ended
export const inventorySweepBatchChunks = 1000 // chunk ids per catalog lookup
export const inventorySweepChunksPerSecDefault = 20_000
export const drainConcurrencyDefault = 4 // stripes one drain moves at once
export const drainPageChunks = 200 // chunk rows read per catalog page
export const nodeHealthTimeoutMs = 2_000 // `blobfs status` asks every node, each bounded by this

assert.ok(orphanGraceMsDefault > writeDurationMsMax)
assert.ok(chunkGcBatchMax <= queueClaimBatchMax && multipartGcBatchMax <= multipartListUploadsMax)
assert.ok(chunkGcLeaseMs <= queueLeaseMsMax && chunkGcRetryMsMax <= queueLeaseMsMax)
assert.ok(inventorySweepBatchChunks <= catalogRowsPerInsertMax * 10)
assert.ok(drainPageChunks <= catalogRowsPerInsertMax)
// Durability (src/repair): failure detection and stripe repair on every node
export const downTimeoutMsDefault = 60_000 // heartbeat older than this -> DOWN (production: 10 min, docs/operations.md)
export const downTimeoutMsProduction = 10 * 60_000 // the documented production setting: a reboot does not start a repair storm
export const repairGraceMsDefault = 60_000 // DOWN this much longer -> its chunks become repair tasks
export const failureDetectIntervalMsMax = 5_000 // how often the detector looks at heartbeats (at most)
export const downRescanIntervalMsMin = 30_000 // a node still DOWN is scanned again (chunks committed late), at least this far apart
export const downRescanIntervalMsMax = 30 * 60_000
export const repairLeaseMsDefault = 60_000 // a claimed task is held this long, extended while the work goes on
export const repairLeaseMsMin = 1_000
export const repairConcurrencyDefault = 2 // stripes one node repairs at once
export const repairConcurrencyMax = 32
export const repairRateBytesPerSecDefault = 64 * MiB // bytes a node's repair worker reads + writes per second
export const repairIdleMsDefault = 2_000 // an empty queue is looked at again after this long
export const repairRetryMsMin = 1_000 // a failed task waits this long, doubling per attempt...
export const repairRetryMsMax = 60_000 // ...up to this
export const repairScanBatchChunks = 500 // chunk rows of a DOWN node queued per detector step

assert.ok(downTimeoutMsProduction >= downTimeoutMsDefault)
assert.ok(repairLeaseMsMin <= repairLeaseMsDefault && repairLeaseMsDefault <= queueLeaseMsMax)
assert.ok(repairConcurrencyDefault >= 1 && repairConcurrencyDefault <= repairConcurrencyMax && repairConcurrencyMax <= queueClaimBatchMax)
assert.ok(repairRetryMsMin <= repairRetryMsMax && repairRetryMsMax <= queueLeaseMsMax)
assert.ok(repairScanBatchChunks <= catalogRowsPerInsertMax)
assert.ok(downRescanIntervalMsMin <= downRescanIntervalMsMax)
// a repair reads k chunks and writes at least one: the rate must let one chunk through in well under a lease
assert.ok((chunkSizeBytesDefault * (dataShardsDefault + 1)) / repairRateBytesPerSecDefault < repairLeaseMsDefault / 1000 / 3)
