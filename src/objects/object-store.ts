// The object layer (DESIGN.md, "Write, read, delete"): the one implementation of
// ObjectLayer that both front ends call. It puts together the streaming upload
// (upload.ts), the catalog commit, and the streaming, degraded-capable download
// (download.ts). Order of effects is the durability argument: chunks are durable on
// the nodes before the catalog commit makes them visible; a failed PUT deletes
// what it wrote (and a crashed one leaves only unreferenced chunks for the GC).
import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Catalog } from '../catalog/catalog.ts'
import type { ListedObject, ObjectRecord, PartInput, PosixRecord } from '../catalog/types.ts'
import type { ChunkStore } from '../cluster/chunk-store.ts'
import type { NodeCandidate } from '../cluster/placement.ts'
import { BlobfsError, isBlobfsError, type ErrorCode } from '../errors.ts'
import { multipartPartSizeBytesMax, multipartPartsMax, objectSizeBytesMax } from '../limits.ts'
import type { ObjectStoreConfig } from './config.ts'
import { downloadRange, type DownloadSource } from './download.ts'
import { HedgePolicy, type HedgeStats } from './hedge.ts'
import { schemeName } from './layout.ts'
import { stripeCodec, type ChunkRecord, type ReadStripeContext, type StripeCodec } from './stripe-io.ts'
import { discardStripes, uploadBody, type UploadContext, type UploadResult } from './upload.ts'
import type {
  AccessKey,
  Body,
  BucketInfo,
  BucketPolicy,
  ByteRangeRequest,
  ListedObjectInfo,
  ListOptions,
  ListResult,
  MultipartUpload,
  ObjectInfo,
  ObjectLayer,
  PartInfo,
  PosixAttributes,
  ReadResult,
  WriteOptions,
} from './types.ts'

export interface ObjectStoreOptions {
  catalog: Catalog
  store: ChunkStore
  /** Healthy, writable nodes for placement (usually Membership.candidates). */
  candidates: () => readonly NodeCandidate[]
  /** Reloads the candidates (Membership.refresh); a stripe that found too few nodes is retried once after it. */
  refreshCandidates?: () => Promise<void>
  config: Readonly<ObjectStoreConfig>
  /** A chunk found missing or rotten by a read; becomes a repair task. */
  reportBadChunk?: (objectId: string, chunk: ChunkRecord, code: ErrorCode) => void
}

export class ObjectStore implements ObjectLayer {
  protected readonly catalog: Catalog
  protected readonly store: ChunkStore
  protected readonly config: Readonly<ObjectStoreConfig>
  protected readonly codec: StripeCodec
  private readonly candidates: () => readonly NodeCandidate[]
  private readonly refreshCandidates: (() => Promise<void>) | undefined
  private readonly reportBadChunk: ObjectStoreOptions['reportBadChunk']
  /** Shared by every read of this object layer: what chunk reads take decides when one is hedged. */
  private readonly hedge: HedgePolicy | undefined

  constructor(options: ObjectStoreOptions) {
    this.catalog = options.catalog
    this.store = options.store
    this.config = options.config
    this.candidates = options.candidates
    this.refreshCandidates = options.refreshCandidates
    this.reportBadChunk = options.reportBadChunk
    this.codec = stripeCodec(options.config.dataShards, options.config.parityShards)
    this.hedge = options.config.hedgeAdaptive ? new HedgePolicy({ maxDelayMs: options.config.hedgeAfterMs }) : undefined
  }

  /** Chunk reads hedged so far by the adaptive policy (for metrics); zeros with `hedgeAdaptive: false`. */
  hedgeStats(): HedgeStats {
    return this.hedge?.stats() ?? { hedged: 0, overBudget: 0 }
  }

  // ---- buckets

  async createBucket(name: string, owner: string, policy: BucketPolicy = 'PRIVATE'): Promise<BucketInfo> {
    return this.catalog.buckets.create({ name, owner, policy })
  }

  async deleteBucket(name: string): Promise<void> {
    await this.catalog.buckets.delete(name)
  }

  async getBucket(name: string): Promise<BucketInfo> {
    const bucket = await this.catalog.buckets.get(name)
    if (!bucket) throw new BlobfsError('NoSuchBucket', `bucket ${name} does not exist`)
    return bucket
  }

  async listBuckets(owner?: string): Promise<BucketInfo[]> {
    return this.catalog.buckets.list(owner === undefined ? {} : { owner })
  }

  // ---- objects

  async putObject(bucket: string, key: string, body: Body, options: WriteOptions = {}): Promise<ObjectInfo> {
    // Fail before a byte goes to the nodes. A body declared small enough to be kept
    // inline sends nothing to them, and its commit answers NoSuchBucket itself: one
    // catalog round trip less for every small file (tar x, rsync of small trees).
    const declaredInline = options.expectedLengthBytes !== undefined && options.expectedLengthBytes <= this.config.inlineSizeBytesMax
    if (!declaredInline) await this.getBucket(bucket)
    if (options.ifNoneMatch === '*' && (await this.catalog.objects.get(bucket, key))) {
      throw new BlobfsError('PreconditionFailed', `${key} exists`)
    }
    const startedMs = performance.now()
    const upload = await uploadBody(this.uploadContext(this.config.inlineSizeBytesMax, objectSizeBytesMax, options.signal), body, {
      ...(options.expectedMd5 ? { md5: options.expectedMd5 } : {}),
      ...(options.expectedLengthBytes !== undefined ? { lengthBytes: options.expectedLengthBytes } : {}),
      ...(options.checksum ? { checksum: options.checksum } : {}),
    })
    await this.refuseIfTooOld(startedMs, upload)
    const etag = `"${upload.md5.toString('hex')}"`
    try {
      const { object } = await this.catalog.objects.commit({
        bucket,
        key,
        objectId: randomUUID(),
        sizeBytes: upload.sizeBytes,
        etag,
        checksumCrc32c: upload.crc32c,
        content: upload.inline ? { inline: upload.inline } : { scheme: this.scheme(), parts: [this.partInput(1, upload, etag)] },
        ...this.attributes(options),
        ...(options.ifNoneMatch === '*' ? { ifNoneMatch: true } : {}),
      })
      return toObjectInfo(object)
    } catch (error) {
      await discardStripes(this.store, upload.stripes)
      throw error
    }
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo> {
    const object = await this.catalog.objects.get(bucket, key)
    if (!object) throw new BlobfsError('NoSuchKey', `${key} does not exist in ${bucket}`)
    return toObjectInfo(object)
  }

  async getObject(bucket: string, key: string, options: { range?: ByteRangeRequest; signal?: AbortSignal } = {}): Promise<ReadResult> {
    // One catalog statement finds the version, its size and the first window of
    // stripes: the window is sized from the requested range (the size is not known
    // yet), and the range is checked against the size that came back.
    const wanted = options.range
    const offset = wanted && Number.isSafeInteger(wanted.start) && wanted.start >= 0 ? wanted.start : 0
    const wantedEnd = wanted && Number.isFinite(wanted.end) ? wanted.end : Number.POSITIVE_INFINITY
    const window = Math.max(0, Math.min(this.config.loadWindowBytes, wantedEnd + 1 - offset, Number.MAX_SAFE_INTEGER - offset))
    const found = await this.catalog.objects.lookup(bucket, key, { offsetBytes: offset, lengthBytes: window })
    if (!found) throw new BlobfsError('NoSuchKey', `${key} does not exist in ${bucket}`)
    const range = wanted ? satisfiable(wanted, found.object.sizeBytes) : null
    const start = range?.start ?? 0
    const endInclusive = range?.end ?? found.object.sizeBytes - 1
    const info = toObjectInfo(found.object)
    if (found.object.sizeBytes === 0 || endInclusive < start) return { info, range, body: Readable.from([]) }
    if (found.inlineData) {
      return { info, range, body: Readable.from([Buffer.from(found.inlineData.subarray(start, endInclusive + 1))]) }
    }
    const objectId = found.object.objectId
    let first: typeof found.stripes | null = found.stripes
    const source: DownloadSource = {
      sizeBytes: found.object.sizeBytes,
      loadStripes: async (from, to) => {
        if (first && from === start) {
          const stripes = first
          first = null
          if (stripes.length > 0) return stripes
        }
        const stripes = await this.catalog.objects.stripes(objectId, { offsetBytes: from, lengthBytes: to - from })
        if (stripes.length === 0) {
          throw new BlobfsError('NoSuchKey', `${key} was replaced or deleted while it was being read`)
        }
        return stripes
      },
    }
    const body = downloadRange(this.readContext(objectId, options.signal), source, start, endInclusive, {
      stripesAheadMax: this.config.stripesAheadMax,
      loadWindowBytes: this.config.loadWindowBytes,
    })
    return { info, range, body }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.catalog.objects.delete(bucket, key)
  }

  async copyObject(
    source: { bucket: string; key: string },
    target: { bucket: string; key: string },
    options: { replaceMetadata?: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'posix' | 'httpHeaders'> } = {},
  ): Promise<ObjectInfo> {
    const read = await this.getObject(source.bucket, source.key)
    const metadata = options.replaceMetadata ?? {
      contentType: read.info.contentType,
      userMetadata: read.info.userMetadata,
      ...(read.info.posix ? { posix: read.info.posix } : {}),
      ...(read.info.httpHeaders ? { httpHeaders: read.info.httpHeaders } : {}),
    }
    return this.putObject(target.bucket, target.key, read.body, {
      ...metadata,
      expectedLengthBytes: read.info.sizeBytes,
      ...(read.info.symlinkTarget !== null ? { symlinkTarget: read.info.symlinkTarget } : {}),
    })
  }

  async listObjects(bucket: string, options: ListOptions = {}): Promise<ListResult> {
    const result = await this.catalog.objects.list(bucket, options)
    return {
      objects: result.objects.map(toListedObjectInfo),
      commonPrefixes: result.commonPrefixes,
      isTruncated: result.isTruncated,
      nextContinuationToken: result.nextContinuationToken,
    }
  }

  async renameObject(bucket: string, fromKey: string, toKey: string): Promise<void> {
    await this.catalog.objects.rename(bucket, fromKey, toKey, { ctimeNs: nowNs() })
  }

  async renamePrefix(bucket: string, fromPrefix: string, toPrefix: string): Promise<number> {
    return (await this.catalog.objects.renamePrefix(bucket, fromPrefix, toPrefix, { ctimeNs: nowNs() })).moved
  }

  async updateAttributes(bucket: string, key: string, posix: PosixAttributes): Promise<ObjectInfo> {
    return toObjectInfo(await this.catalog.objects.setAttributes(bucket, key, { posix: toPosixRecord(posix) }))
  }

  // ---- multipart: each part is striped and its chunk rows recorded as it arrives;
  // completion is one catalog transaction that moves no bytes.

  async createMultipartUpload(
    bucket: string,
    key: string,
    options: Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders'> = {},
  ): Promise<MultipartUpload> {
    const upload = await this.catalog.multipart.create({
      bucket,
      key,
      scheme: this.scheme(),
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.userMetadata !== undefined ? { userMetadata: options.userMetadata } : {}),
      ...(options.httpHeaders !== undefined ? { httpHeaders: options.httpHeaders } : {}),
    })
    return { uploadId: upload.uploadId, bucket: upload.bucket, key: upload.key, initiatedAt: upload.initiatedAt }
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options: WriteOptions = {}): Promise<PartInfo> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > multipartPartsMax) {
      throw new BlobfsError('InvalidArgument', `part number ${partNumber} is not in 1..${multipartPartsMax}`)
    }
    await this.sessionOf(bucket, key, uploadId) // fail before reading a byte of the body
    // Parts are never inline: their chunk rows are what completion stitches together.
    const startedMs = performance.now()
    const upload = await uploadBody(this.uploadContext(-1, multipartPartSizeBytesMax, options.signal), body, {
      ...(options.expectedMd5 ? { md5: options.expectedMd5 } : {}),
      ...(options.expectedLengthBytes !== undefined ? { lengthBytes: options.expectedLengthBytes } : {}),
      ...(options.checksum ? { checksum: options.checksum } : {}),
    })
    await this.refuseIfTooOld(startedMs, upload)
    const etag = `"${upload.md5.toString('hex')}"`
    try {
      await this.catalog.multipart.recordPart(uploadId, this.partInput(partNumber, upload, etag))
    } catch (error) {
      await discardStripes(this.store, upload.stripes)
      throw error
    }
    return { partNumber, etag, sizeBytes: upload.sizeBytes, checksumCrc32c: crcBase64(upload.crc32c), lastModified: new Date() }
  }

  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<ObjectInfo> {
    const { object } = await this.catalog.multipart.complete({ uploadId, bucket, key, parts })
    return toObjectInfo(object)
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.catalog.multipart.abort(uploadId, { bucket, key })
  }

  async listParts(bucket: string, key: string, uploadId: string, options: { partNumberMarker?: number; maxParts?: number } = {}) {
    await this.sessionOf(bucket, key, uploadId)
    const result = await this.catalog.multipart.listParts(uploadId, options)
    return {
      parts: result.parts.map((part) => ({
        partNumber: part.partNumber,
        etag: part.etag,
        sizeBytes: part.sizeBytes,
        checksumCrc32c: part.checksumCrc32c === null ? '' : crcBase64(part.checksumCrc32c),
        lastModified: part.uploadedAt,
      })),
      isTruncated: result.isTruncated,
      nextPartNumberMarker: result.nextPartNumberMarker,
    }
  }

  async listMultipartUploads(bucket: string, options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {}) {
    const result = await this.catalog.multipart.list(bucket, options)
    return {
      uploads: result.uploads.map((u) => ({ uploadId: u.uploadId, bucket: u.bucket, key: u.key, initiatedAt: u.initiatedAt })),
      isTruncated: result.isTruncated,
      nextKeyMarker: result.nextKeyMarker,
      nextUploadIdMarker: result.nextUploadIdMarker,
    }
  }

  private async sessionOf(bucket: string, key: string, uploadId: string) {
    const upload = await this.catalog.multipart.get(uploadId).catch((error) => {
      if (isBlobfsError(error, 'InvalidArgument')) throw new BlobfsError('NoSuchUpload', `upload ${uploadId} does not exist`, { cause: error })
      throw error
    })
    if (!upload || upload.bucket !== bucket || upload.key !== key) {
      throw new BlobfsError('NoSuchUpload', `upload ${uploadId} does not exist for ${bucket}/${key}`)
    }
    return upload
  }

  // ---- tenants and capacity

  async getAccessKey(accessKeyId: string): Promise<AccessKey | null> {
    const key = await this.catalog.accessKeys.get(accessKeyId)
    return key ? { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, owner: key.owner } : null
  }

  async clusterUsage(): Promise<{ capacityBytes: number; usedBytes: number; objects: number }> {
    const [nodes, usage] = await Promise.all([this.catalog.nodes.list(), this.catalog.objects.usage()])
    let capacityBytes = 0
    let usedBytes = 0
    for (const node of nodes) {
      if (node.state === 'DOWN') continue
      capacityBytes += node.capacityBytes
      usedBytes += node.usedBytes
    }
    return { capacityBytes, usedBytes, objects: usage.objects }
  }

  // ---- shared by the operations above

  /**
   * The GC sweep deletes unreferenced chunks older than its grace, which is longer
   * than writeDurationMsMax; a write that took longer than that bound may have lost
   * its first chunks already, so it is refused rather than committed.
   */
  protected async refuseIfTooOld(startedMs: number, upload: UploadResult): Promise<void> {
    const elapsedMs = performance.now() - startedMs
    if (elapsedMs <= this.config.writeDurationMsMax) return
    await discardStripes(this.store, upload.stripes)
    throw new BlobfsError('Timeout', `the upload took ${Math.round(elapsedMs / 1000)} s; writes longer than ${Math.round(this.config.writeDurationMsMax / 1000)} s are refused`)
  }

  protected scheme(): string {
    return schemeName({ dataShards: this.config.dataShards, parityShards: this.config.parityShards })
  }

  protected uploadContext(inlineSizeBytesMax: number, sizeBytesMax: number, signal?: AbortSignal): UploadContext {
    return {
      store: this.store,
      codec: this.codec,
      candidates: this.candidates,
      ...(this.refreshCandidates ? { refreshCandidates: this.refreshCandidates } : {}),
      stripeSizeBytes: this.config.stripeSizeBytes,
      inlineSizeBytesMax,
      stripesInFlightMax: this.config.stripesInFlightMax,
      putTimeoutMs: this.config.putTimeoutMs,
      sizeBytesMax,
      ...(signal ? { signal } : {}),
    }
  }

  protected partInput(partNumber: number, upload: UploadResult, etag: string): PartInput {
    return {
      partNumber,
      sizeBytes: upload.sizeBytes,
      stripeSizeBytes: this.config.stripeSizeBytes,
      etag,
      checksumCrc32c: upload.crc32c,
      stripes: upload.stripes.map((stripe) => ({ stripeIndex: stripe.stripeIndex, chunks: stripe.chunks })),
    }
  }

  protected attributes(options: WriteOptions) {
    return {
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.userMetadata !== undefined ? { userMetadata: options.userMetadata } : {}),
      ...(options.httpHeaders !== undefined ? { httpHeaders: options.httpHeaders } : {}),
      ...(options.posix ? { posix: toPosixRecord(options.posix) } : {}),
      ...(options.symlinkTarget !== undefined ? { symlinkTarget: options.symlinkTarget } : {}),
    }
  }

  private readContext(objectId: string, signal?: AbortSignal): ReadStripeContext {
    return {
      store: this.store,
      codec: this.codec,
      getTimeoutMs: this.config.getTimeoutMs,
      hedgeAfterMs: this.config.hedgeAfterMs,
      ...(this.hedge ? { hedge: this.hedge } : {}),
      ...(signal ? { signal } : {}),
      onBadChunk: (chunk, code) => this.reportBadChunk?.(objectId, chunk, code),
    }
  }
}

/** HTTP range semantics: clip the end to the object; a start past the end is unsatisfiable. */
function satisfiable(range: ByteRangeRequest, sizeBytes: number): { start: number; end: number } {
  if (!Number.isSafeInteger(range.start) || range.start < 0 || range.start >= sizeBytes || !(range.end >= range.start)) {
    throw new BlobfsError('InvalidRange', `bytes ${range.start}-${range.end} of an object of ${sizeBytes} bytes`)
  }
  return { start: range.start, end: Math.min(range.end, sizeBytes - 1) }
}

export function toObjectInfo(object: ObjectRecord): ObjectInfo {
  const checksumCrc32c = object.checksumCrc32c !== null && object.partsCount === null ? crcBase64(object.checksumCrc32c) : null
  return {
    bucket: object.bucket,
    key: object.key,
    objectId: object.objectId,
    sizeBytes: object.sizeBytes,
    etag: object.etag,
    contentType: object.contentType,
    userMetadata: object.userMetadata,
    httpHeaders: object.httpHeaders,
    lastModified: object.lastModified,
    checksumCrc32c,
    partsCount: object.partsCount,
    posix: object.posix ? fromPosixRecord(object.posix) : null,
    symlinkTarget: object.symlinkTarget,
  }
}

export function toListedObjectInfo(object: ListedObject): ListedObjectInfo {
  return {
    key: object.key,
    objectId: object.objectId,
    sizeBytes: object.sizeBytes,
    etag: object.etag,
    lastModified: object.lastModified,
    posix: object.posix ? fromPosixRecord(object.posix) : null,
    symlinkTarget: object.symlinkTarget,
  }
}

/** A CRC32C as S3 writes it in x-amz-checksum-crc32c: 4 big-endian bytes, base64. */
function crcBase64(crc: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(crc >>> 0)
  return bytes.toString('base64')
}

function toPosixRecord(posix: PosixAttributes): PosixRecord {
  return {
    mode: posix.mode,
    uid: posix.uid,
    gid: posix.gid,
    mtimeNs: msToNs(posix.mtimeMs),
    ctimeNs: msToNs(posix.ctimeMs),
  }
}

function fromPosixRecord(posix: PosixRecord): PosixAttributes {
  return { mode: posix.mode, uid: posix.uid, gid: posix.gid, mtimeMs: nsToMs(posix.mtimeNs), ctimeMs: nsToMs(posix.ctimeNs) }
}

// Times of today are ~1.7e18 ns, past the 2^53 a double holds exactly, so the whole
// milliseconds and the fraction go separately: a whole-millisecond time comes back
// exactly (tar and rsync compare them), not as 113.99987.
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms)
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))
}

export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n
}
