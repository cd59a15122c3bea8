// An in-memory ObjectLayer for the gateway's tests and benchmark: it honours the
// contract in src/objects/types.ts (S3 etags, multipart rules, seek-based listing
// with delimiter and opaque continuation tokens, BlobfsError codes, verify-then-commit
// writes) without catalog or nodes, so the S3 port can be driven by real clients
// before the real object layer exists. Bytes are kept as the received buffers.
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { checkBucketName } from '../../src/catalog/keys.ts'
import { crc32c } from '../../src/codec/checksum.ts'
import { BlobfsError } from '../../src/errors.ts'
import { listPageKeysMax, multipartPartSizeBytesMin, multipartPartsMax, objectSizeBytesMax } from '../../src/limits.ts'
import type {
  AccessKey,
  Body,
  BucketInfo,
  BucketPolicy,
  ByteRangeRequest,
  ListOptions,
  ListResult,
  MultipartUpload,
  ObjectInfo,
  ObjectLayer,
  PartInfo,
  PosixAttributes,
  ReadResult,
  WriteOptions,
} from '../../src/objects/types.ts'
import { Checksummer } from '../../src/s3/checksums.ts'

/** UTF-8 byte order (S3's listing order) without encoding: code point order. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys) return xs ? 1 : -1
    return x - y
  }
  return a.length - b.length
}

interface StoredObject {
  info: ObjectInfo
  data: Buffer[]
}

interface StoredPart {
  info: PartInfo
  data: Buffer[]
  md5: Buffer
}

interface Upload {
  upload: MultipartUpload
  options: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders'>
  parts: Map<number, StoredPart>
}

interface Bucket {
  info: BucketInfo
  objects: Map<string, StoredObject>
  /** Keys in listing order. */
  keys: string[]
}

function crcBase64(crc: number): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc >>> 0)
  return out.toString('base64')
}

function lowerBound(keys: string[], key: string, strict: boolean): number {
  // first index with keys[i] >= key (or > key when strict)
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const c = compareKeys(keys[mid]!, key)
    if (c < 0 || (strict && c === 0)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** First index after every key that starts with `prefix`. */
function afterPrefix(keys: string[], prefix: string): number {
  let i = lowerBound(keys, prefix, false)
  // keys starting with prefix are contiguous from i; binary search their end
  let hi = keys.length
  while (i < hi) {
    const mid = (i + hi) >> 1
    if (keys[mid]!.startsWith(prefix)) i = mid + 1
    else hi = mid
  }
  return i
}

interface Cursor {
  after: string
  /** `after` is a common prefix: skip every key under it. */
  skip: boolean
}

function encodeToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.after, cursor.skip ? 1 : 0])).toString('base64url')
}

function decodeToken(token: string): Cursor {
  try {
    const [after, skip] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [unknown, unknown]
    if (typeof after !== 'string') throw new Error('bad token')
    return { after, skip: skip === 1 }
  } catch {
    throw new BlobfsError('InvalidArgument', 'the continuation token is not valid')
  }
}

export class MemoryObjectLayer implements ObjectLayer {
  private readonly buckets = new Map<string, Bucket>()
  private readonly uploads = new Map<string, Upload>()
  private readonly keys = new Map<string, AccessKey>()
  /** Counts of calls, for tests that check what reached the object layer. */
  readonly calls = { putObject: 0, uploadPart: 0, getObject: 0 }
  /** Emits 'settled' ({ op, bucket, key, error }) when a putObject or uploadPart ends either way. */
  readonly writes = new EventEmitter()

  addAccessKey(key: AccessKey): void {
    this.keys.set(key.accessKeyId, key)
  }

  // ---------------------------------------------------------------- buckets

  async createBucket(name: string, owner: string, policy: BucketPolicy = 'PRIVATE'): Promise<BucketInfo> {
    checkBucketName(name) // the catalog's own rule, so the fake refuses exactly what the catalog does
    if (this.buckets.has(name)) throw new BlobfsError('BucketAlreadyExists', `bucket '${name}' exists`)
    const info: BucketInfo = { name, owner, policy, createdAt: new Date() }
    this.buckets.set(name, { info, objects: new Map(), keys: [] })
    return { ...info }
  }

  async deleteBucket(name: string): Promise<void> {
    const bucket = this.bucket(name)
    if (bucket.objects.size > 0) throw new BlobfsError('BucketNotEmpty', `bucket '${name}' is not empty`)
    for (const [id, upload] of this.uploads) if (upload.upload.bucket === name) this.uploads.delete(id)
    this.buckets.delete(name)
  }

  async getBucket(name: string): Promise<BucketInfo> {
    return { ...this.bucket(name).info }
  }

  async listBuckets(owner?: string): Promise<BucketInfo[]> {
    return [...this.buckets.values()]
      .map((b) => ({ ...b.info }))
      .filter((b) => owner === undefined || b.owner === owner)
      .sort((a, b) => compareKeys(a.name, b.name))
  }

  private bucket(name: string): Bucket {
    const bucket = this.buckets.get(name)
    if (!bucket) throw new BlobfsError('NoSuchBucket', `bucket '${name}' does not exist`)
    return bucket
  }

  private object(bucket: string, key: string): StoredObject {
    const stored = this.bucket(bucket).objects.get(key)
    if (!stored) throw new BlobfsError('NoSuchKey', `'${key}' does not exist in '${bucket}'`)
    return stored
  }

  private commit(bucketName: string, stored: StoredObject): ObjectInfo {
    const bucket = this.bucket(bucketName)
    const key = stored.info.key
    if (!bucket.objects.has(key)) bucket.keys.splice(lowerBound(bucket.keys, key, false), 0, key)
    bucket.objects.set(key, stored)
    return { ...stored.info }
  }

  // ---------------------------------------------------------------- bodies

  private async consume(body: Body, options: WriteOptions, sizeMax: number): Promise<{ data: Buffer[]; size: number; md5: Buffer; crc: number }> {
    const md5 = createHash('md5')
    const extra = options.checksum ? new Checksummer(options.checksum.algorithm) : null
    let crc = 0
    let size = 0
    const data: Buffer[] = []
    try {
      for await (const piece of body as AsyncIterable<Buffer>) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece)
        md5.update(bytes)
        crc = crc32c(bytes, crc)
        extra?.update(bytes)
        size += bytes.length
        if (size > sizeMax) throw new BlobfsError('EntityTooLarge', `body over ${sizeMax} bytes`)
        if (options.expectedLengthBytes !== undefined && size > options.expectedLengthBytes) {
          throw new BlobfsError('InvalidArgument', `body longer than ${options.expectedLengthBytes} bytes`)
        }
        if (bytes.length > 0) data.push(bytes)
      }
    } catch (error) {
      if (error instanceof BlobfsError) throw error
      throw new BlobfsError('IncompleteBody', `reading the body failed: ${(error as Error)?.message}`, { cause: error })
    }
    if (options.signal?.aborted) throw new BlobfsError('IncompleteBody', 'the upload was aborted')
    if (options.expectedLengthBytes !== undefined && size !== options.expectedLengthBytes) {
      throw new BlobfsError('IncompleteBody', `body ended after ${size} of ${options.expectedLengthBytes} bytes`)
    }
    const digest = md5.digest()
    if (options.expectedMd5 && !digest.equals(options.expectedMd5)) throw new BlobfsError('BadDigest', 'Content-MD5 does not match the body')
    if (extra && extra.digestBase64() !== options.checksum!.value) {
      throw new BlobfsError('BadDigest', `x-amz-checksum-${options.checksum!.algorithm} does not match the body`)
    }
    return { data, size, md5: digest, crc }
  }

  // ---------------------------------------------------------------- objects

  async putObject(bucket: string, key: string, body: Body, options: WriteOptions = {}): Promise<ObjectInfo> {
    this.calls.putObject++
    return this.settle('putObject', bucket, key, this.put(bucket, key, body, options))
  }

  private async settle<T>(op: string, bucket: string, key: string, work: Promise<T>): Promise<T> {
    try {
      const result = await work
      this.writes.emit('settled', { op, bucket, key, error: null })
      return result
    } catch (error) {
      this.writes.emit('settled', { op, bucket, key, error })
      throw error
    }
  }

  private async put(bucket: string, key: string, body: Body, options: WriteOptions): Promise<ObjectInfo> {
    this.bucket(bucket)
    const { data, size, md5, crc } = await this.consume(body, options, objectSizeBytesMax)
    const target = this.bucket(bucket)
    if (options.ifNoneMatch === '*' && target.objects.has(key)) throw new BlobfsError('PreconditionFailed', `'${key}' exists`)
    return this.commit(bucket, {
      info: {
        bucket,
        key,
        objectId: randomUUID(),
        sizeBytes: size,
        etag: `"${md5.toString('hex')}"`,
        contentType: options.contentType ?? 'application/octet-stream',
        userMetadata: { ...(options.userMetadata ?? {}) },
        httpHeaders: { ...(options.httpHeaders ?? {}) },
        lastModified: new Date(),
        checksumCrc32c: crcBase64(crc),
        partsCount: null,
        posix: options.posix ?? null,
        symlinkTarget: options.symlinkTarget ?? null,
      },
      data,
    })
  }

  async getObject(bucket: string, key: string, options: { range?: ByteRangeRequest; signal?: AbortSignal } = {}): Promise<ReadResult> {
    this.calls.getObject++
    const stored = this.object(bucket, key)
    const size = stored.info.sizeBytes
    let start = 0
    let end = size - 1
    let range: ReadResult['range'] = null
    if (options.range) {
      assert.ok(options.range.start >= 0 && options.range.end >= options.range.start)
      if (options.range.start >= size) throw new BlobfsError('InvalidRange', `range starts at ${options.range.start} of ${size} bytes`)
      start = options.range.start
      end = Math.min(options.range.end, size - 1)
      range = { start, end }
    }
    const data = stored.data
    function* slices(): Generator<Buffer> {
      let offset = 0
      for (const piece of data) {
        const pieceEnd = offset + piece.length
        if (pieceEnd > start && offset <= end) yield piece.subarray(Math.max(0, start - offset), Math.min(piece.length, end + 1 - offset))
        offset = pieceEnd
        if (offset > end) return
      }
    }
    return { info: { ...stored.info }, range, body: Readable.from(slices(), { objectMode: false }) }
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo> {
    return { ...this.object(bucket, key).info }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const b = this.bucket(bucket)
    if (!b.objects.delete(key)) return
    b.keys.splice(lowerBound(b.keys, key, false), 1)
  }

  async copyObject(
    source: { bucket: string; key: string },
    target: { bucket: string; key: string },
    options: { replaceMetadata?: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders' | 'posix'>; ifSourceObjectId?: string } = {},
  ): Promise<ObjectInfo> {
    const from = this.object(source.bucket, source.key)
    this.bucket(target.bucket)
    if (options.ifSourceObjectId !== undefined && from.info.objectId !== options.ifSourceObjectId) {
      throw new BlobfsError('PreconditionFailed', 'the copy source changed')
    }
    const replace = options.replaceMetadata
    return this.commit(target.bucket, {
      info: {
        ...from.info,
        bucket: target.bucket,
        key: target.key,
        objectId: randomUUID(),
        lastModified: new Date(),
        contentType: replace ? (replace.contentType ?? 'application/octet-stream') : from.info.contentType,
        userMetadata: replace ? { ...(replace.userMetadata ?? {}) } : { ...from.info.userMetadata },
        httpHeaders: replace ? { ...(replace.httpHeaders ?? {}) } : { ...(from.info.httpHeaders ?? {}) },
        posix: replace ? (replace.posix ?? null) : from.info.posix,
      },
      data: from.data,
    })
  }

  async listObjects(bucketName: string, options: ListOptions = {}): Promise<ListResult> {
    const bucket = this.bucket(bucketName)
    const keys = bucket.keys
    const prefix = options.prefix ?? ''
    const delimiter = options.delimiter || undefined
    const maxKeys = Math.min(options.maxKeys ?? listPageKeysMax, listPageKeysMax)
    let cursor: Cursor | null = null
    if (options.continuationToken) cursor = decodeToken(options.continuationToken)
    else if (options.startAfter !== undefined) {
      const after = options.startAfter
      const rest = after.startsWith(prefix) ? after.slice(prefix.length) : null
      const skip = delimiter !== undefined && rest !== null && rest.endsWith(delimiter) && rest.indexOf(delimiter) === rest.length - delimiter.length
      cursor = { after, skip }
    }
    const seek = (c: Cursor | null): number => {
      let i = lowerBound(keys, prefix, false)
      if (c) i = Math.max(i, c.skip ? afterPrefix(keys, c.after) : lowerBound(keys, c.after, true))
      return i
    }
    const objects: ObjectInfo[] = []
    const commonPrefixes: string[] = []
    let i = seek(cursor)
    let last: Cursor | null = null
    while (i < keys.length && keys[i]!.startsWith(prefix)) {
      if (objects.length + commonPrefixes.length === maxKeys) {
        return { objects, commonPrefixes, isTruncated: true, nextContinuationToken: encodeToken(last!) }
      }
      const key = keys[i]!
      const d = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length)
      if (d >= 0) {
        const common = key.slice(0, d + delimiter!.length)
        commonPrefixes.push(common)
        last = { after: common, skip: true }
        i = afterPrefix(keys, common)
        continue
      }
      objects.push({ ...bucket.objects.get(key)!.info })
      last = { after: key, skip: false }
      i++
    }
    return { objects, commonPrefixes, isTruncated: false, nextContinuationToken: null }
  }

  async renameObject(bucket: string, fromKey: string, toKey: string): Promise<void> {
    const stored = this.object(bucket, fromKey)
    await this.deleteObject(bucket, fromKey)
    this.commit(bucket, { info: { ...stored.info, key: toKey }, data: stored.data })
  }

  async renamePrefix(bucket: string, fromPrefix: string, toPrefix: string): Promise<number> {
    const b = this.bucket(bucket)
    const moving = b.keys.filter((k) => k.startsWith(fromPrefix))
    for (const key of moving) await this.renameObject(bucket, key, toPrefix + key.slice(fromPrefix.length))
    return moving.length
  }

  async updateAttributes(bucket: string, key: string, posix: PosixAttributes): Promise<ObjectInfo> {
    const stored = this.object(bucket, key)
    stored.info = { ...stored.info, posix }
    return { ...stored.info }
  }

  // ---------------------------------------------------------------- multipart

  async createMultipartUpload(bucket: string, key: string, options: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders'> = {}): Promise<MultipartUpload> {
    this.bucket(bucket)
    const upload: MultipartUpload = { uploadId: randomUUID(), bucket, key, initiatedAt: new Date() }
    this.uploads.set(upload.uploadId, { upload, options, parts: new Map() })
    return { ...upload }
  }

  private upload(bucket: string, key: string, uploadId: string): Upload {
    const upload = this.uploads.get(uploadId)
    if (!upload || upload.upload.bucket !== bucket || upload.upload.key !== key) throw new BlobfsError('NoSuchUpload', `upload '${uploadId}' does not exist`)
    return upload
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options: WriteOptions = {}): Promise<PartInfo> {
    this.calls.uploadPart++
    return this.settle('uploadPart', bucket, key, this.part(bucket, key, uploadId, partNumber, body, options))
  }

  private async part(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options: WriteOptions): Promise<PartInfo> {
    this.upload(bucket, key, uploadId)
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > multipartPartsMax) throw new BlobfsError('InvalidArgument', `part number ${partNumber}`)
    const { data, size, md5, crc } = await this.consume(body, options, objectSizeBytesMax)
    const upload = this.upload(bucket, key, uploadId) // it may have been aborted meanwhile
    const info: PartInfo = { partNumber, etag: `"${md5.toString('hex')}"`, sizeBytes: size, checksumCrc32c: crcBase64(crc), lastModified: new Date() }
    upload.parts.set(partNumber, { info, data, md5 })
    return { ...info }
  }

  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<ObjectInfo> {
    const upload = this.upload(bucket, key, uploadId)
    if (parts.length === 0) throw new BlobfsError('InvalidPart', 'no parts')
    const chosen: StoredPart[] = []
    for (let i = 0; i < parts.length; i++) {
      const { partNumber, etag } = parts[i]!
      if (i > 0 && partNumber <= parts[i - 1]!.partNumber) throw new BlobfsError('InvalidPartOrder', 'parts must be in ascending order')
      const part = upload.parts.get(partNumber)
      if (!part || part.info.etag !== etag) throw new BlobfsError('InvalidPart', `part ${partNumber} is missing or its etag does not match`)
      chosen.push(part)
    }
    for (let i = 0; i < chosen.length - 1; i++) {
      if (chosen[i]!.info.sizeBytes < multipartPartSizeBytesMin) throw new BlobfsError('EntityTooSmall', `part ${chosen[i]!.info.partNumber} is smaller than ${multipartPartSizeBytesMin} bytes`)
    }
    const etag = createHash('md5')
      .update(Buffer.concat(chosen.map((p) => p.md5)))
      .digest('hex')
    this.uploads.delete(uploadId)
    return this.commit(bucket, {
      info: {
        bucket,
        key,
        objectId: randomUUID(),
        sizeBytes: chosen.reduce((sum, p) => sum + p.info.sizeBytes, 0),
        etag: `"${etag}-${chosen.length}"`,
        contentType: upload.options.contentType ?? 'application/octet-stream',
        userMetadata: { ...(upload.options.userMetadata ?? {}) },
        httpHeaders: { ...(upload.options.httpHeaders ?? {}) },
        lastModified: new Date(),
        checksumCrc32c: null,
        partsCount: chosen.length,
        posix: null,
        symlinkTarget: null,
      },
      data: chosen.flatMap((p) => p.data),
    })
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    this.upload(bucket, key, uploadId)
    this.uploads.delete(uploadId)
  }

  async listParts(
    bucket: string,
    key: string,
    uploadId: string,
    options: { partNumberMarker?: number; maxParts?: number } = {},
  ): Promise<{ parts: PartInfo[]; isTruncated: boolean; nextPartNumberMarker: number | null }> {
    const upload = this.upload(bucket, key, uploadId)
    const marker = options.partNumberMarker ?? 0
    const max = Math.min(options.maxParts ?? listPageKeysMax, listPageKeysMax)
    const all = [...upload.parts.values()].map((p) => p.info).filter((p) => p.partNumber > marker).sort((a, b) => a.partNumber - b.partNumber)
    const parts = all.slice(0, max).map((p) => ({ ...p }))
    const isTruncated = all.length > max
    return { parts, isTruncated, nextPartNumberMarker: isTruncated ? parts.at(-1)!.partNumber : null }
  }

  async listMultipartUploads(
    bucket: string,
    options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {},
  ): Promise<{ uploads: MultipartUpload[]; isTruncated: boolean; nextKeyMarker: string | null; nextUploadIdMarker: string | null }> {
    this.bucket(bucket)
    const max = Math.min(options.maxUploads ?? listPageKeysMax, listPageKeysMax)
    const order = (a: MultipartUpload, b: MultipartUpload) => compareKeys(a.key, b.key) || a.initiatedAt.getTime() - b.initiatedAt.getTime() || compareKeys(a.uploadId, b.uploadId)
    const all = [...this.uploads.values()]
      .map((u) => u.upload)
      .filter((u) => u.bucket === bucket && u.key.startsWith(options.prefix ?? ''))
      .sort(order)
    let start = 0
    if (options.keyMarker !== undefined) {
      const markerUpload = options.uploadIdMarker ? all.findIndex((u) => u.key === options.keyMarker && u.uploadId === options.uploadIdMarker) : -1
      start = markerUpload >= 0 ? markerUpload + 1 : all.findIndex((u) => compareKeys(u.key, options.keyMarker!) > 0)
      if (start < 0) start = all.length
    }
    const uploads = all.slice(start, start + max).map((u) => ({ ...u }))
    const isTruncated = start + max < all.length
    return {
      uploads,
      isTruncated,
      nextKeyMarker: isTruncated ? uploads.at(-1)!.key : null,
      nextUploadIdMarker: isTruncated ? uploads.at(-1)!.uploadId : null,
    }
  }

  // ---------------------------------------------------------------- tenants and capacity

  async getAccessKey(accessKeyId: string): Promise<AccessKey | null> {
    const key = this.keys.get(accessKeyId)
    return key ? { ...key } : null
  }

  async clusterUsage(): Promise<{ capacityBytes: number; usedBytes: number; objects: number }> {
    let usedBytes = 0
    let objects = 0
    for (const bucket of this.buckets.values()) {
      for (const stored of bucket.objects.values()) {
        usedBytes += stored.info.sizeBytes
        objects++
      }
    }
    return { capacityBytes: Number.MAX_SAFE_INTEGER, usedBytes, objects }
  }
}
