// The catalog's records as the rest of blobfs sees them: plain typed objects, no
// SQL types leaking out. Sizes and offsets are numbers (exact below 2^53, asserted
// when read); nanosecond timestamps are bigints; keys are strings (stored as UTF-8
// bytes, see keys.ts).

export type BucketPolicy = 'PRIVATE' | 'PUBLIC_READ'
export const bucketPolicies: readonly BucketPolicy[] = ['PRIVATE', 'PUBLIC_READ']

export interface BucketRecord {
  name: string
  owner: string
  policy: BucketPolicy
  createdAt: Date
}

/** POSIX attributes kept for the FUSE mount; null for objects written over S3. */
export interface PosixRecord {
  /** st_mode: file type and permission bits. */
  mode: number
  uid: number
  gid: number
  /** Nanoseconds since the epoch (bigint: a double cannot hold them exactly). */
  mtimeNs: bigint
  ctimeNs: bigint
}

/** 'INLINE' (bytes in the catalog row) or 'RS_<k>_<m>'. */
export type SchemeName = string

export interface ObjectRecord {
  bucket: string
  key: string
  /** The version's id: a new commit to the key gets a new one; a rename keeps it. */
  objectId: string
  sizeBytes: number
  etag: string
  contentType: string
  userMetadata: Record<string, string>
  /** Stored standard HTTP headers (S3 system metadata), lower-case names; {} when none. */
  httpHeaders: Record<string, string>
  scheme: SchemeName
  lifecycleState: string
  /** CRC32C of the whole object (uint32), when the writer computed one. */
  checksumCrc32c: number | null
  /** Number of parts of a multipart object; null for a plain PUT. */
  partsCount: number | null
  posix: PosixRecord | null
  symlinkTarget: string | null
  /** When this version was committed (S3 Last-Modified). */
  lastModified: Date
  /** Last catalog change: attributes, rename. */
  updatedAt: Date
}

/** One stored chunk of a stripe. Field names match src/objects/stripe-io.ts. */
export interface ChunkRecord {
  /** 0..k-1 data shards, k..k+m-1 parity. */
  chunkIndex: number
  chunkId: string
  nodeId: string
  lengthBytes: number
  /** Root of the chunk's CRC32C checksum tree (column checksum_crc32c). */
  root: number
}

/** A stripe located in its object, with the chunks that exist (maybe fewer than k+m). */
export interface StripeRecord {
  partNumber: number
  stripeIndex: number
  /** Offset of the stripe's first byte in the object. */
  objectOffsetBytes: number
  /** Object bytes held by the stripe (the last stripe of a part is shorter). */
  lengthBytes: number
  /** ceil(lengthBytes / k): the length of each of its chunks. */
  shardSizeBytes: number
  /** Sorted by chunkIndex. */
  chunks: ChunkRecord[]
}

export interface StripeInput {
  stripeIndex: number
  chunks: readonly ChunkRecord[]
}

export interface PartInput {
  /** 1 for a plain PUT; the client's part number for multipart. */
  partNumber: number
  sizeBytes: number
  /** Every stripe of the part holds this many bytes except the last. */
  stripeSizeBytes: number
  etag: string
  checksumCrc32c?: number | null
  /** Exactly ceil(sizeBytes / stripeSizeBytes) stripes, indexes 0..n-1. */
  stripes: readonly StripeInput[]
}

export interface ObjectAttributes {
  contentType?: string
  userMetadata?: Record<string, string>
  /** e.g. { 'cache-control': 'max-age=60' }: lower-case header names, values without control characters. */
  httpHeaders?: Record<string, string>
  posix?: PosixRecord | null
  symlinkTarget?: string | null
}

export type ObjectContent =
  | { inline: Buffer }
  | { scheme: SchemeName; parts: readonly PartInput[] }

export interface CommitObjectInput extends ObjectAttributes {
  bucket: string
  key: string
  /** The new version's id (a UUID chosen by the writer; committing the same id twice is a no-op). */
  objectId: string
  sizeBytes: number
  /** As it will be served (S3 quotes etags: '"<hex md5>"'). */
  etag: string
  checksumCrc32c?: number | null
  content: ObjectContent
  /** Commit only if the key has no version (If-None-Match: *, O_EXCL): else PreconditionFailed. */
  ifNoneMatch?: boolean
  /** Commit only if the key's current version is this one: else PreconditionFailed. */
  ifMatchObjectId?: string
}

export interface ReplacedVersion {
  objectId: string
  /** Chunks of the replaced version now in the deletion queue. */
  chunksQueued: number
}

export interface CommitResult {
  object: ObjectRecord
  replaced: ReplacedVersion | null
  /** Stripes written with fewer than k+m chunks, queued for repair in the same transaction. */
  repairsQueued: number
}

export interface ByteRange {
  offsetBytes: number
  lengthBytes: number
}

export interface ObjectLookup {
  object: ObjectRecord
  /** The bytes of an INLINE object; null otherwise. */
  inlineData: Buffer | null
  /** The stripes covering the requested range, in object order (empty without a range). */
  stripes: StripeRecord[]
}

export interface ListOptions {
  prefix?: string
  /** Keys whose remainder after the prefix contains it are rolled up into common prefixes. */
  delimiter?: string
  /** Return only entries (keys and common prefixes) after this one (S3 StartAfter / Marker). */
  startAfter?: string
  continuationToken?: string
  /** Keys plus common prefixes per page: 0..listPageKeysMax (default the maximum). */
  maxKeys?: number
}

/**
 * A key as a listing returns it: what S3 ListObjects (key, size, ETag, Last-Modified)
 * and FUSE readdir (the version id, POSIX attributes, symlink target) show. The rest
 * of the row (metadata, headers, scheme, checksum) is for GET and HEAD; leaving it out
 * of a 1,000-key page is most of what a page costs the client to decode.
 */
export type ListedObject = Pick<ObjectRecord, 'key' | 'objectId' | 'sizeBytes' | 'etag' | 'lastModified' | 'posix' | 'symlinkTarget'>

export interface ListResult {
  objects: ListedObject[]
  commonPrefixes: string[]
  isTruncated: boolean
  nextContinuationToken: string | null
  /** The last entry returned when truncated (S3 V1 NextMarker). */
  nextMarker: string | null
}
