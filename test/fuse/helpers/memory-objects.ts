// An in-memory ObjectLayer that honours the contract in src/objects/types.ts (the
// FUSE semantics are tested against it, as mountpoint-s3 tests against its mock
// client): keys sorted in UTF-8 byte order, seek-based listings with delimiter and
// continuation tokens, catalog-only renames, BlobfsError codes. It counts every call
// (a rename must write no bytes), injects faults on demand, and can persist to a
// directory so a killed daemon's store survives for a remount. Test code only.
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { BlobfsError } from '../../../src/errors.ts'
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
} from '../../../src/objects/types.ts'

const streamPieceBytes = 1024 * 1024

/** UTF-8 byte order without encoding: code-unit order, with surrogates moved above U+E000–U+FFFF. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return rank(x) - rank(y)
  }
  return a.length - b.length
}

function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000
  if (unit >= 0xe000) return unit - 0x800
  return unit
}

interface StoredObject {
  info: ObjectInfo
  data: Buffer
}

interface Bucket {
  info: BucketInfo
  keys: string[] // sorted by compareKeys
  objects: Map<string, StoredObject>
}

export type ObjectOp =
  | 'putObject'
  | 'getObject'
  | 'headObject'
  | 'deleteObject'
  | 'listObjects'
  | 'renameObject'
  | 'renamePrefix'
  | 'updateAttributes'
  | 'copyObject'
  | 'clusterUsage'

export interface Counters {
  calls: Record<ObjectOp, number>
  putBytes: number
  getBytes: number
}

export interface MemoryObjectLayerOptions {
  /** Keep every committed object in this directory too (a remount finds them). */
  persistDir?: string
  capacityBytes?: number
}

function emptyCounters(): Counters {
  return {
    calls: {
      putObject: 0,
      getObject: 0,
      headObject: 0,
      deleteObject: 0,
      listObjects: 0,
      renameObject: 0,
      renamePrefix: 0,
      updateAttributes: 0,
      copyObject: 0,
      clusterUsage: 0,
    },
    putBytes: 0,
    getBytes: 0,
  }
}

function lowerBound(keys: string[], key: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The smallest string greater than every string that starts with `prefix`. */
function prefixEnd(prefix: string): string {
  assert.ok(prefix.length > 0)
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

export class MemoryObjectLayer implements ObjectLayer {
  readonly counters: Counters = emptyCounters()
  /** Return an error to make the call fail before it does anything. */
  fault: ((op: ObjectOp, key: string) => BlobfsError | null) | null = null
  private readonly buckets = new Map<string, Bucket>()
  private readonly uploads = new Map<string, { upload: MultipartUpload; parts: Map<number, { info: PartInfo; data: Buffer }> }>()
  private readonly persistDir: string | null
  private readonly capacityBytes: number

  constructor(options: MemoryObjectLayerOptions = {}) {
    this.persistDir = options.persistDir ?? null
    this.capacityBytes = options.capacityBytes ?? 1024 ** 4
    if (this.persistDir) this.load(this.persistDir)
  }

  resetCounters(): void {
    Object.assign(this.counters, emptyCounters())
  }

  private check(op: ObjectOp, key: string): void {
    this.counters.calls[op]++
    const error = this.fault?.(op, key)
    if (error) throw error
  }

  private bucket(name: string): Bucket {
    const bucket = this.buckets.get(name)
    if (!bucket) throw new BlobfsError('NoSuchBucket', `bucket ${name} does not exist`)
    return bucket
  }

  private stored(bucket: Bucket, key: string): StoredObject {
    const object = bucket.objects.get(key)
    if (!object) throw new BlobfsError('NoSuchKey', `${bucket.info.name}/${key} does not exist`)
    return object
  }

  private setObject(bucket: Bucket, object: StoredObject): void {
    const key = object.info.key
    if (!bucket.objects.has(key)) bucket.keys.splice(lowerBound(bucket.keys, key), 0, key)
    bucket.objects.set(key, object)
    this.persistObject(bucket.info.name, object)
  }

  private removeObject(bucket: Bucket, key: string): void {
    if (!bucket.objects.delete(key)) return
    const at = lowerBound(bucket.keys, key)
    assert.equal(bucket.keys[at], key)
    bucket.keys.splice(at, 1)
    this.unpersistObject(bucket.info.name, key)
  }

  // persistence (tests of a killed daemon): one data file and one JSON file per key

  private objectPath(bucket: string, key: string): string {
    return join(this.persistDir!, 'objects', createHash('sha256').update(`${bucket}\0${key}`).digest('hex'))
  }

  private persistObject(bucket: string, object: StoredObject): void {
    if (!this.persistDir) return
    const path = this.objectPath(bucket, object.info.key)
    writeFileSync(`${path}.tmp`, object.data)
    renameSync(`${path}.tmp`, `${path}.bin`)
    writeFileSync(`${path}.jtmp`, JSON.stringify({ bucket, info: object.info }))
    renameSync(`${path}.jtmp`, `${path}.json`)
  }

  private unpersistObject(bucket: string, key: string): void {
    if (!this.persistDir) return
    const path = this.objectPath(bucket, key)
    rmSync(`${path}.json`, { force: true })
    rmSync(`${path}.bin`, { force: true })
  }

  private persistBuckets(): void {
    if (!this.persistDir) return
    writeFileSync(join(this.persistDir, 'buckets.json'), JSON.stringify([...this.buckets.values()].map((b) => b.info)))
  }

  private load(dir: string): void {
    mkdirSync(join(dir, 'objects'), { recursive: true })
    const bucketsFile = join(dir, 'buckets.json')
    if (existsSync(bucketsFile)) {
      for (const info of JSON.parse(readFileSync(bucketsFile, 'utf8')) as BucketInfo[]) {
        this.buckets.set(info.name, { info: { ...info, createdAt: new Date(info.createdAt) }, keys: [], objects: new Map() })
      }
    }
    for (const name of readdirSync(join(dir, 'objects'))) {
      if (!name.endsWith('.json')) continue
      const base = join(dir, 'objects', name.slice(0, -'.json'.length))
      const { bucket, info } = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { bucket: string; info: ObjectInfo }
      info.lastModified = new Date(info.lastModified)
      const target = this.buckets.get(bucket)
      if (!target) continue
      target.objects.set(info.key, { info, data: readFileSync(`${base}.bin`) })
      target.keys.push(info.key)
    }
    for (const bucket of this.buckets.values()) bucket.keys.sort(compareKeys)
  }

  /** Direct access for assertions (not part of the contract). */
  peek(bucket: string, key: string): Buffer | null {
    return this.buckets.get(bucket)?.objects.get(key)?.data ?? null
  }

  keys(bucket: string): string[] {
    return [...this.bucket(bucket).keys]
  }

  // buckets

  async createBucket(name: string, owner: string, policy: BucketPolicy = 'PRIVATE'): Promise<BucketInfo> {
    if (this.buckets.has(name)) throw new BlobfsError('BucketAlreadyExists')
    const info: BucketInfo = { name, owner, policy, createdAt: new Date() }
    this.buckets.set(name, { info, keys: [], objects: new Map() })
    this.persistBuckets()
    return info
  }

  async deleteBucket(name: string): Promise<void> {
    const bucket = this.bucket(name)
    if (bucket.keys.length > 0) throw new BlobfsError('BucketNotEmpty')
    this.buckets.delete(name)
    this.persistBuckets()
  }

  async getBucket(name: string): Promise<BucketInfo> {
    return this.bucket(name).info
  }

  async listBuckets(owner?: string): Promise<BucketInfo[]> {
    return [...this.buckets.values()].map((b) => b.info).filter((b) => owner === undefined || b.owner === owner)
  }

  // objects

  private async readBody(body: Body, signal?: AbortSignal): Promise<Buffer> {
    const pieces: Buffer[] = []
    for await (const piece of body as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw new BlobfsError('Timeout', 'aborted', { cause: signal.reason })
      pieces.push(Buffer.from(piece))
    }
    return Buffer.concat(pieces)
  }

  async putObject(bucketName: string, key: string, body: Body, options: WriteOptions = {}): Promise<ObjectInfo> {
    this.check('putObject', key)
    const bucket = this.bucket(bucketName)
    if (Buffer.byteLength(key) > 1024) throw new BlobfsError('KeyTooLong')
    const data = await this.readBody(body, options.signal)
    if (options.expectedLengthBytes !== undefined && data.length !== options.expectedLengthBytes) {
      throw new BlobfsError('IncompleteBody', `got ${data.length} of ${options.expectedLengthBytes} bytes`)
    }
    const md5 = createHash('md5').update(data).digest()
    if (options.expectedMd5 && !options.expectedMd5.equals(md5)) throw new BlobfsError('BadDigest')
    if (options.ifNoneMatch === '*' && bucket.objects.has(key)) throw new BlobfsError('PreconditionFailed')
    this.counters.putBytes += data.length
    const info: ObjectInfo = {
      bucket: bucketName,
      key,
      objectId: randomUUID(),
      sizeBytes: data.length,
      etag: `"${md5.toString('hex')}"`,
      contentType: options.contentType ?? 'application/octet-stream',
      userMetadata: options.userMetadata ?? {},
      lastModified: new Date(),
      checksumCrc32c: null,
      partsCount: null,
      posix: options.posix ? { ...options.posix } : null,
      symlinkTarget: options.symlinkTarget ?? null,
    }
    this.setObject(bucket, { info, data })
    return { ...info }
  }

  async getObject(bucketName: string, key: string, options: { range?: ByteRangeRequest; signal?: AbortSignal } = {}): Promise<ReadResult> {
    this.check('getObject', key)
    const object = this.stored(this.bucket(bucketName), key)
    let start = 0
    let end = object.data.length - 1
    let range: ReadResult['range'] = null
    if (options.range) {
      if (options.range.start >= object.data.length || options.range.start > options.range.end) {
        throw new BlobfsError('InvalidRange', `range ${options.range.start}-${options.range.end} of ${object.data.length} bytes`)
      }
      start = options.range.start
      end = Math.min(options.range.end, object.data.length - 1)
      range = { start, end }
    }
    const data = object.data.subarray(start, end + 1)
    this.counters.getBytes += data.length
    function* pieces(): Generator<Buffer> {
      for (let at = 0; at < data.length; at += streamPieceBytes) yield data.subarray(at, at + streamPieceBytes)
    }
    return { info: { ...object.info }, range, body: Readable.from(pieces(), { objectMode: false }) }
  }

  async headObject(bucketName: string, key: string): Promise<ObjectInfo> {
    this.check('headObject', key)
    return { ...this.stored(this.bucket(bucketName), key).info }
  }

  async deleteObject(bucketName: string, key: string): Promise<void> {
    this.check('deleteObject', key)
    this.removeObject(this.bucket(bucketName), key)
  }

  async copyObject(
    source: { bucket: string; key: string },
    target: { bucket: string; key: string },
    options: { replaceMetadata?: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'posix'> } = {},
  ): Promise<ObjectInfo> {
    this.check('copyObject', source.key)
    const from = this.stored(this.bucket(source.bucket), source.key)
    const to = this.bucket(target.bucket)
    const info: ObjectInfo = {
      ...from.info,
      ...(options.replaceMetadata ?? {}),
      bucket: target.bucket,
      key: target.key,
      objectId: randomUUID(),
      lastModified: new Date(),
    } as ObjectInfo
    this.setObject(to, { info, data: from.data })
    return { ...info }
  }

  async listObjects(bucketName: string, options: ListOptions = {}): Promise<ListResult> {
    this.check('listObjects', options.prefix ?? '')
    const bucket = this.bucket(bucketName)
    const prefix = options.prefix ?? ''
    const delimiter = options.delimiter ?? ''
    const maxKeys = Math.min(options.maxKeys ?? 1000, 1000)
    let at = lowerBound(bucket.keys, prefix)
    if (options.startAfter) at = Math.max(at, lowerBound(bucket.keys, options.startAfter + '\0'))
    if (options.continuationToken) {
      const token = JSON.parse(Buffer.from(options.continuationToken, 'base64url').toString('utf8')) as { after: string; skipPrefix: boolean }
      at = Math.max(at, token.skipPrefix ? lowerBound(bucket.keys, prefixEnd(token.after)) : lowerBound(bucket.keys, token.after + '\0'))
    }
    const objects: ObjectInfo[] = []
    const commonPrefixes: string[] = []
    let last: { after: string; skipPrefix: boolean } | null = null
    while (at < bucket.keys.length && objects.length + commonPrefixes.length < maxKeys) {
      const key = bucket.keys[at]!
      if (!key.startsWith(prefix)) break
      const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1
      if (cut >= 0) {
        const common = key.slice(0, cut + delimiter.length)
        commonPrefixes.push(common)
        last = { after: common, skipPrefix: true }
        at = lowerBound(bucket.keys, prefixEnd(common))
      } else {
        objects.push({ ...bucket.objects.get(key)!.info })
        last = { after: key, skipPrefix: false }
        at++
      }
    }
    const isTruncated = at < bucket.keys.length && bucket.keys[at]!.startsWith(prefix)
    return {
      objects,
      commonPrefixes,
      isTruncated,
      nextContinuationToken: isTruncated && last ? Buffer.from(JSON.stringify(last)).toString('base64url') : null,
    }
  }

  async renameObject(bucketName: string, fromKey: string, toKey: string): Promise<void> {
    this.check('renameObject', fromKey)
    const bucket = this.bucket(bucketName)
    const object = this.stored(bucket, fromKey)
    if (fromKey === toKey) return
    this.removeObject(bucket, fromKey)
    this.removeObject(bucket, toKey)
    this.setObject(bucket, { info: { ...object.info, key: toKey }, data: object.data })
  }

  async renamePrefix(bucketName: string, fromPrefix: string, toPrefix: string): Promise<number> {
    this.check('renamePrefix', fromPrefix)
    const bucket = this.bucket(bucketName)
    assert.ok(fromPrefix.length > 0)
    const start = lowerBound(bucket.keys, fromPrefix)
    const end = lowerBound(bucket.keys, prefixEnd(fromPrefix))
    const moving = bucket.keys.slice(start, end).map((key) => bucket.objects.get(key)!)
    for (const object of moving) this.removeObject(bucket, object.info.key)
    for (const object of moving) {
      const key = toPrefix + object.info.key.slice(fromPrefix.length)
      this.removeObject(bucket, key)
      this.setObject(bucket, { info: { ...object.info, key }, data: object.data })
    }
    return moving.length
  }

  async updateAttributes(bucketName: string, key: string, posix: PosixAttributes): Promise<ObjectInfo> {
    this.check('updateAttributes', key)
    const bucket = this.bucket(bucketName)
    const object = this.stored(bucket, key)
    object.info = { ...object.info, posix: { ...posix } }
    this.persistObject(bucketName, object)
    return { ...object.info }
  }

  // multipart (the daemon does not use it; kept so the fake honours the whole contract)

  async createMultipartUpload(bucket: string, key: string): Promise<MultipartUpload> {
    this.bucket(bucket)
    const upload: MultipartUpload = { uploadId: randomUUID(), bucket, key, initiatedAt: new Date() }
    this.uploads.set(upload.uploadId, { upload, parts: new Map() })
    return upload
  }

  private upload(uploadId: string): { upload: MultipartUpload; parts: Map<number, { info: PartInfo; data: Buffer }> } {
    const upload = this.uploads.get(uploadId)
    if (!upload) throw new BlobfsError('NoSuchUpload')
    return upload
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body): Promise<PartInfo> {
    const upload = this.upload(uploadId)
    const data = await this.readBody(body)
    const info: PartInfo = {
      partNumber,
      etag: `"${createHash('md5').update(data).digest('hex')}"`,
      sizeBytes: data.length,
      checksumCrc32c: '',
      lastModified: new Date(),
    }
    upload.parts.set(partNumber, { info, data })
    return info
  }

  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<ObjectInfo> {
    const upload = this.upload(uploadId)
    const pieces = parts.map((p) => {
      const part = upload.parts.get(p.partNumber)
      if (!part || part.info.etag !== p.etag) throw new BlobfsError('InvalidPart')
      return part.data
    })
    this.uploads.delete(uploadId)
    const info = await this.putObject(bucket, key, Readable.from([Buffer.concat(pieces)]))
    return { ...info, partsCount: parts.length }
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    this.upload(uploadId)
    this.uploads.delete(uploadId)
  }

  async listParts(bucket: string, key: string, uploadId: string): Promise<{ parts: PartInfo[]; isTruncated: boolean; nextPartNumberMarker: number | null }> {
    const parts = [...this.upload(uploadId).parts.values()].map((p) => p.info).sort((a, b) => a.partNumber - b.partNumber)
    return { parts, isTruncated: false, nextPartNumberMarker: null }
  }

  async listMultipartUploads(bucket: string): Promise<{ uploads: MultipartUpload[]; isTruncated: boolean; nextKeyMarker: string | null; nextUploadIdMarker: string | null }> {
    const uploads = [...this.uploads.values()].map((u) => u.upload).filter((u) => u.bucket === bucket)
    return { uploads, isTruncated: false, nextKeyMarker: null, nextUploadIdMarker: null }
  }

  async getAccessKey(): Promise<AccessKey | null> {
    return null
  }

  async clusterUsage(): Promise<{ capacityBytes: number; usedBytes: number; objects: number }> {
    this.check('clusterUsage', '')
    let usedBytes = 0
    let objects = 0
    for (const bucket of this.buckets.values()) {
      for (const object of bucket.objects.values()) {
        usedBytes += object.data.length
        objects++
      }
    }
    return { capacityBytes: this.capacityBytes, usedBytes, objects }
  }
}
