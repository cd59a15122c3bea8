// The object layer's public contract: the one library both front ends call
// (s3/ and fuse/ never reach the catalog or the nodes any other way). Everything a
// front end needs is here; how it is done (stripes, placement, catalog rows) is not.
import type { Readable } from 'node:stream'

export type BucketPolicy = 'PRIVATE' | 'PUBLIC_READ'

export interface BucketInfo {
  name: string
  owner: string
  policy: BucketPolicy
  createdAt: Date
}

/** POSIX attributes kept for the FUSE mount; absent for objects written over S3. */
export interface PosixAttributes {
  mode: number
  uid: number
  gid: number
  mtimeMs: number
  ctimeMs: number
}

export type ChecksumAlgorithm = 'crc32c' | 'crc32' | 'sha1' | 'sha256'

export interface ObjectInfo {
  bucket: string
  key: string
  /** Identifies this version of the key; a new PUT gives a new id. */
  objectId: string
  sizeBytes: number
  /** Quoted like S3: "hex-md5" for a plain PUT, "hex-md5-of-md5s-N" after multipart. */
  etag: string
  contentType: string
  userMetadata: Record<string, string>
  /**
   * Standard HTTP headers stored with the object and returned on GET/HEAD (S3's
   * "system metadata"): cache-control, content-disposition, content-encoding,
   * content-language, expires. Lower-case names; absent or {} when there are none.
   */
  httpHeaders?: Record<string, string>
  lastModified: Date
  /** CRC32C of the whole object, base64 (as S3's x-amz-checksum-crc32c) — plain PUTs only. */
  checksumCrc32c: string | null
  /** Number of parts for a multipart object, else null. */
  partsCount: number | null
  posix: PosixAttributes | null
  symlinkTarget: string | null
}

export interface ClientChecksum {
  algorithm: ChecksumAlgorithm
  /** base64, as in x-amz-checksum-* headers. */
  value: string
}

export interface WriteOptions {
  contentType?: string
  userMetadata?: Record<string, string>
  /** Stored standard headers (see ObjectInfo.httpHeaders). */
  httpHeaders?: Record<string, string>
  posix?: PosixAttributes
  symlinkTarget?: string
  /** Content-MD5 the client sent (raw 16 bytes): mismatch → BadDigest, nothing stored. */
  expectedMd5?: Buffer
  /** Declared length: a shorter body → IncompleteBody, nothing stored. */
  expectedLengthBytes?: number
  /** x-amz-checksum-*: verified, mismatch → BadDigest, nothing stored. */
  checksum?: ClientChecksum
  /** Only write if the key does not exist (If-None-Match: *) → PreconditionFailed. */
  ifNoneMatch?: '*'
  signal?: AbortSignal
}

export type Body = AsyncIterable<Buffer> | Readable

export interface ByteRangeRequest {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive (HTTP semantics); clipped to the object's size. */
  end: number
}

export interface ReadResult {
  info: ObjectInfo
  /** The bytes served: the whole object or the satisfiable part of the range. */
  range: { start: number; end: number } | null
  body: Readable
}

export interface ListOptions {
  prefix?: string
  delimiter?: string
  /**
   * List keys after this one. With a delimiter, a startAfter that is itself a common
   * prefix (prefix + ... + delimiter) skips every key under it, as S3 does for a
   * ListObjects marker, so paging by NextMarker never repeats a common prefix.
   */
  startAfter?: string
  continuationToken?: string
  maxKeys?: number
}

/**
 * A key as a listing shows it: what S3 ListObjects and FUSE readdir need. The rest of
 * ObjectInfo (metadata, headers, checksum) comes from headObject; a listing page leaves
 * it out because decoding it for 1,000 keys was most of a page's cost.
 */
export type ListedObjectInfo = Pick<ObjectInfo, 'key' | 'objectId' | 'sizeBytes' | 'etag' | 'lastModified' | 'posix' | 'symlinkTarget'>

export interface ListResult {
  objects: ListedObjectInfo[]
  commonPrefixes: string[]
  isTruncated: boolean
  nextContinuationToken: string | null
}

export interface MultipartUpload {
  uploadId: string
  bucket: string
  key: string
  initiatedAt: Date
}

export interface PartInfo {
  partNumber: number
  etag: string
  sizeBytes: number
  /** CRC32C of the part, base64 (as ObjectInfo.checksumCrc32c). */
  checksumCrc32c: string
  lastModified: Date
}

export interface AccessKey {
  accessKeyId: string
  secretAccessKey: string
  owner: string
}

export interface ObjectLayer {
  // buckets
  createBucket(name: string, owner: string, policy?: BucketPolicy): Promise<BucketInfo>
  deleteBucket(name: string): Promise<void>
  getBucket(name: string): Promise<BucketInfo>
  listBuckets(owner?: string): Promise<BucketInfo[]>

  // objects
  putObject(bucket: string, key: string, body: Body, options?: WriteOptions): Promise<ObjectInfo>
  getObject(bucket: string, key: string, options?: { range?: ByteRangeRequest; signal?: AbortSignal }): Promise<ReadResult>
  headObject(bucket: string, key: string): Promise<ObjectInfo>
  /** Deleting a key that does not exist succeeds (S3 semantics). */
  deleteObject(bucket: string, key: string): Promise<void>
  copyObject(
    source: { bucket: string; key: string },
    target: { bucket: string; key: string },
    options?: {
      replaceMetadata?: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders' | 'posix'>
      /** Copy only if the source is still this version (ObjectInfo.objectId), else PreconditionFailed. */
      ifSourceObjectId?: string
    },
  ): Promise<ObjectInfo>
  listObjects(bucket: string, options?: ListOptions): Promise<ListResult>
  /** Catalog-only rename, replacing the target like POSIX rename(2). */
  renameObject(bucket: string, fromKey: string, toKey: string): Promise<void>
  /** Renames every key under `fromPrefix` (a directory) in one transaction. */
  renamePrefix(bucket: string, fromPrefix: string, toPrefix: string): Promise<number>
  /** Updates POSIX attributes / metadata in the catalog without touching the bytes. */
  updateAttributes(bucket: string, key: string, posix: PosixAttributes): Promise<ObjectInfo>

  // multipart
  createMultipartUpload(bucket: string, key: string, options?: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders'>): Promise<MultipartUpload>
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options?: WriteOptions): Promise<PartInfo>
  completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<ObjectInfo>
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>
  listParts(bucket: string, key: string, uploadId: string, options?: { partNumberMarker?: number; maxParts?: number }): Promise<{ parts: PartInfo[]; isTruncated: boolean; nextPartNumberMarker: number | null }>
  listMultipartUploads(bucket: string, options?: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number }): Promise<{ uploads: MultipartUpload[]; isTruncated: boolean; nextKeyMarker: string | null; nextUploadIdMarker: string | null }>

  // tenants
  getAccessKey(accessKeyId: string): Promise<AccessKey | null>

  // capacity (statfs)
  clusterUsage(): Promise<{ capacityBytes: number; usedBytes: number; objects: number }>
}
