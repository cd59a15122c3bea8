// Multipart uploads. A session reserves the object id the finished object will
// have; every part is striped and its chunk rows are written under that id (part
// index = part number) as the part is recorded, so completion moves no chunk rows:
// it checks the client's part list, writes the object row and the parts' offsets,
// queues the chunks of parts the client left out, and drops the session — in one
// transaction, so the object appears with all its parts or not at all.
//
// Recording a part never writes the session row, so parts uploaded in parallel do
// not conflict with each other; "idle" is measured from the newest part (or the
// session's start when it has none).
import { createHash, randomUUID } from 'node:crypto'
import { BlobfsError } from '../errors.ts'
import type { Row } from 'postgres'
import {
  catalogRowsPerInsertMax,
  chunkDeletionDelayMsDefault,
  multipartListPartsMax,
  multipartListUploadsMax,
  multipartPartSizeBytesMax,
  multipartPartSizeBytesMin,
  multipartPartsMax,
} from '../limits.ts'
import { insertChunkRows, queueChunksOf, queueDegradedStripes, retireObject } from './chunk-map.ts'
import { toNumber, type Db, type TxSql } from './db.ts'
import { checkBucketName, decodeKey, encodeKey, encodeText, prefixEnd } from './keys.ts'
import { batches, objectColumns, objectFromRow } from './rows.ts'
import type { ObjectRecord, PartInput, ReplacedVersion, SchemeName } from './types.ts'
import { checkAttributes, checkCount, checkCrc, checkName, checkParts, checkUuid, invalid, parseScheme } from './validate.ts'

export interface UploadRecord {
  uploadId: string
  bucket: string
  key: string
  /** The id the completed object will have; the parts' chunk rows carry it already. */
  objectId: string
  scheme: SchemeName
  contentType: string
  userMetadata: Record<string, string>
  /** Stored standard HTTP headers the completed object will carry. */
  httpHeaders: Record<string, string>
  initiatedAt: Date
}

export interface PartRecord {
  partNumber: number
  sizeBytes: number
  stripeSizeBytes: number
  etag: string
  checksumCrc32c: number | null
  uploadedAt: Date
}

export interface CreateUploadInput {
  bucket: string
  key: string
  scheme?: SchemeName
  contentType?: string
  userMetadata?: Record<string, string>
  httpHeaders?: Record<string, string>
}

export interface CompleteUploadInput {
  uploadId: string
  /** The bucket and key the client names; a mismatch with the session is NoSuchUpload. */
  bucket: string
  key: string
  /** The client's list, ascending part numbers, with the etags it was given. */
  parts: readonly { partNumber: number; etag: string }[]
  /** Every part but the last must be at least this big (S3: 5 MiB). */
  partSizeBytesMin?: number
  /** Defaults to the S3 multipart etag: "md5(concatenated part md5s)-N". */
  etag?: string
  checksumCrc32c?: number | null
  ifNoneMatch?: boolean
}

export interface CompleteUploadResult {
  object: ObjectRecord
  replaced: ReplacedVersion | null
  /** Chunks of uploaded parts that the client's list left out, now queued for deletion. */
  unusedChunksQueued: number
}

const uploadColumns = 'u.upload_id, u.object_id, u.bucket_name, u.object_key, u.erasure_coding_scheme, u.content_type, u.user_metadata, u.http_headers, u.initiated_at'

function uploadFromRow(row: Row): UploadRecord {
  return {
    uploadId: row.upload_id,
    bucket: row.bucket_name,
    key: decodeKey(row.object_key),
    objectId: row.object_id,
    scheme: row.erasure_coding_scheme,
    contentType: row.content_type,
    userMetadata: row.user_metadata ?? {},
    httpHeaders: row.http_headers ?? {},
    initiatedAt: row.initiated_at,
  }
}

function partFromRow(row: Row): PartRecord {
  return {
    partNumber: row.part_number,
    sizeBytes: toNumber(row.size_bytes),
    stripeSizeBytes: toNumber(row.stripe_size_bytes),
    etag: row.etag,
    checksumCrc32c: row.checksum_crc32c === null ? null : toNumber(row.checksum_crc32c),
    uploadedAt: row.uploaded_at,
  }
}

const unquote = (etag: string) => etag.replace(/^"(.*)"$/, '$1')

/** S3's etag of a multipart object: MD5 over the parts' binary MD5s, then "-<count>", quoted. */
export function multipartEtag(partEtags: readonly string[]): string {
  const hash = createHash('md5')
  for (const etag of partEtags) {
    const hex = unquote(etag)
    hash.update(/^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, 'hex') : Buffer.from(hex))
  }
  return `"${hash.digest('hex')}-${partEtags.length}"`
}

export class Multipart {
  constructor(
    private readonly db: Db,
    private readonly config: { deletionDelayMs: number } = { deletionDelayMs: chunkDeletionDelayMsDefault },
  ) {}

  /** Opens a session; NoSuchBucket if the bucket does not exist. */
  async create(input: CreateUploadInput): Promise<UploadRecord> {
    const bucket = checkBucketName(input.bucket)
    const key = encodeKey(input.key)
    const scheme = input.scheme ?? 'RS_8_4'
    if (parseScheme(scheme) === null) throw invalid('a multipart upload is striped; INLINE is not a multipart scheme')
    const attributes = checkAttributes(input)
    const uploadId = randomUUID()
    const objectId = randomUUID()
    return this.db.tx(async (q) => {
      const buckets = await q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`
      if (buckets.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
      const rows = await q`INSERT INTO multipart_uploads AS u (upload_id, object_id, bucket_name, object_key, erasure_coding_scheme, content_type, user_metadata, http_headers)
        VALUES (${uploadId}, ${objectId}, ${bucket}, ${key}, ${scheme}, ${attributes.contentType}, ${q.json(attributes.userMetadata)}, ${q.json(attributes.httpHeaders)})
        RETURNING ${q.unsafe(uploadColumns)}`
      return uploadFromRow(rows[0]!)
    })
  }

  async get(uploadId: string): Promise<UploadRecord | null> {
    const id = checkUuid(uploadId, 'upload id')
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(uploadColumns)} FROM multipart_uploads u WHERE u.upload_id = ${id}`)
    return rows.length === 0 ? null : uploadFromRow(rows[0]!)
  }

  async #lockUpload(q: TxSql, uploadId: string, expect?: { bucket: string; key: Buffer }): Promise<UploadRecord> {
    const rows = await q`SELECT ${q.unsafe(uploadColumns)} FROM multipart_uploads u WHERE u.upload_id = ${uploadId} FOR UPDATE`
    const upload = rows.length === 0 ? null : rows[0]!
    if (upload === null || (expect && (upload.bucket_name !== expect.bucket || !Buffer.from(upload.object_key).equals(expect.key)))) {
      throw new BlobfsError('NoSuchUpload', `upload ${uploadId} does not exist`)
    }
    return uploadFromRow(upload)
  }

  /**
   * Records an uploaded part: its row and its chunk rows. A part uploaded again
   * under the same number replaces the earlier one, whose chunks are queued for
   * deletion. NoSuchUpload if the session is gone (the caller owns the chunks then).
   */
  async recordPart(uploadId: string, part: PartInput): Promise<{ replaced: boolean; chunksQueued: number; repairsQueued: number }> {
    const id = checkUuid(uploadId, 'upload id')
    checkCount(part.partNumber, 'part number', 1, multipartPartsMax)
    if (part.sizeBytes > multipartPartSizeBytesMax) {
      throw new BlobfsError('EntityTooLarge', `part ${part.partNumber} is ${part.sizeBytes} bytes; the limit is ${multipartPartSizeBytesMax}`)
    }
    return this.db.tx(async (q) => {
      // The part row is inserted first and a re-upload found by its conflict: reading
      // the (upload, part) key first would take a predicate lock on the index page
      // every concurrent part of the same upload writes, and SERIALIZABLE would abort
      // parallel part uploads against each other (see ObjectsRepo.commit).
      const uploads = q`SELECT object_id, erasure_coding_scheme FROM multipart_uploads WHERE upload_id = ${id}`.execute()
      const insertPart = (onConflict: 'nothing' | 'fail') =>
        q`INSERT INTO multipart_parts (upload_id, part_number, size_bytes, stripe_size_bytes, etag, checksum_crc32c)
          VALUES (${id}, ${part.partNumber}, ${part.sizeBytes}, ${part.stripeSizeBytes}, ${part.etag}, ${part.checksumCrc32c ?? null})
          ${onConflict === 'nothing' ? q`ON CONFLICT (upload_id, part_number) DO NOTHING` : q``}
          RETURNING part_number`.execute()
      const inserted = insertPart('nothing')
      inserted.catch(() => {}) // a missing upload fails it (foreign key); awaited below otherwise
      const upload = await uploads
      if (upload.length === 0) throw new BlobfsError('NoSuchUpload', `upload ${uploadId} does not exist`)
      const objectId = upload[0]!.object_id as string
      const scheme = parseScheme(upload[0]!.erasure_coding_scheme)!
      const checked = checkParts(scheme, [part], null)
      const replaced = (await inserted).length === 0
      let chunksQueued = 0
      if (replaced) {
        // Uploaded again under the same number: the earlier part's chunks are queued for deletion.
        const [queued] = await Promise.all([
          queueChunksOf(q, objectId, 'PART_REPLACED', this.config.deletionDelayMs, part.partNumber),
          q`DELETE FROM multipart_parts WHERE upload_id = ${id} AND part_number = ${part.partNumber}`.execute(),
          insertPart('fail'),
        ])
        chunksQueued = queued
      }
      await insertChunkRows(q, objectId, checked.rows)
      const repairsQueued = await queueDegradedStripes(q, objectId, checked.degraded)
      return { replaced, chunksQueued, repairsQueued }
    })
  }

  async listParts(
    uploadId: string,
    options: { partNumberMarker?: number; maxParts?: number } = {},
  ): Promise<{ parts: PartRecord[]; isTruncated: boolean; nextPartNumberMarker: number | null }> {
    const id = checkUuid(uploadId, 'upload id')
    const marker = checkCount(options.partNumberMarker ?? 0, 'part number marker', 0, multipartPartsMax)
    const max = checkCount(options.maxParts ?? multipartListPartsMax, 'maxParts', 1, multipartListPartsMax)
    const [uploads, rows] = await Promise.all([
      this.db.read((q) => q`SELECT upload_id FROM multipart_uploads WHERE upload_id = ${id}`),
      this.db.read(
        (q) => q`SELECT part_number, size_bytes, stripe_size_bytes, etag, checksum_crc32c, uploaded_at FROM multipart_parts
          WHERE upload_id = ${id} AND part_number > ${marker} ORDER BY part_number LIMIT ${max + 1}`,
      ),
    ])
    if (uploads.length === 0) throw new BlobfsError('NoSuchUpload', `upload ${uploadId} does not exist`)
    const parts = rows.slice(0, max).map(partFromRow)
    const isTruncated = rows.length > max
    return { parts, isTruncated, nextPartNumberMarker: isTruncated ? parts[parts.length - 1]!.partNumber : null }
  }

  /**
   * Completes the upload atomically: the object (with the listed parts, in order)
   * replaces the key's current version, unlisted parts' chunks are queued for
   * deletion, and the session is gone. InvalidPartOrder, InvalidPart,
   * EntityTooSmall and NoSuchUpload refuse without writing.
   */
  async complete(input: CompleteUploadInput): Promise<CompleteUploadResult> {
    const id = checkUuid(input.uploadId, 'upload id')
    const bucket = checkBucketName(input.bucket)
    const key = encodeKey(input.key)
    const sizeMin = checkCount(input.partSizeBytesMin ?? multipartPartSizeBytesMin, 'partSizeBytesMin', 0, multipartPartSizeBytesMax)
    const crc = checkCrc(input.checksumCrc32c, 'object checksum')
    if (!Array.isArray(input.parts) || input.parts.length === 0) throw invalid('a multipart upload is completed with at least one part')
    if (input.parts.length > multipartPartsMax) throw invalid(`more than ${multipartPartsMax} parts`)
    let previous = 0
    for (const part of input.parts) {
      checkCount(part.partNumber, 'part number', 1, multipartPartsMax)
      if (part.partNumber <= previous) throw new BlobfsError('InvalidPartOrder', 'parts must be listed in ascending order without repeats')
      previous = part.partNumber
    }
    if (input.etag !== undefined) checkName(input.etag, 'etag', 64)

    return this.db.tx(async (q) => {
      const upload = await this.#lockUpload(q, id, { bucket, key })
      const stored = await q`SELECT part_number, size_bytes, stripe_size_bytes, etag, checksum_crc32c, uploaded_at
        FROM multipart_parts WHERE upload_id = ${id} ORDER BY part_number`
      const byNumber = new Map(stored.map((row) => [row.part_number as number, partFromRow(row)]))
      const chosen: PartRecord[] = []
      input.parts.forEach((wanted, i) => {
        const part = byNumber.get(wanted.partNumber)
        if (!part || unquote(part.etag) !== unquote(wanted.etag)) {
          throw new BlobfsError('InvalidPart', `part ${wanted.partNumber} was not uploaded or its etag does not match`)
        }
        if (i < input.parts.length - 1 && part.sizeBytes < sizeMin) {
          throw new BlobfsError('EntityTooSmall', `part ${wanted.partNumber} is ${part.sizeBytes} bytes; every part but the last needs ${sizeMin}`)
        }
        chosen.push(part)
      })
      const sizeBytes = chosen.reduce((sum, p) => sum + p.sizeBytes, 0)
      const etag = input.etag ?? multipartEtag(chosen.map((p) => p.etag))
      const insertObject = (onConflict: 'nothing' | 'fail') =>
        q`INSERT INTO bucket_objects AS o (object_id, bucket_name, object_key, size_bytes, etag, content_type, erasure_coding_scheme,
            parts_count, checksum_crc32c, user_metadata, http_headers)
          VALUES (${upload.objectId}, ${bucket}, ${key}, ${sizeBytes}, ${etag}, ${upload.contentType}, ${upload.scheme},
            ${chosen.length}, ${crc}, ${q.json(upload.userMetadata)}, ${q.json(upload.httpHeaders)})
          ${onConflict === 'nothing' ? q`ON CONFLICT (bucket_name, object_key) DO NOTHING` : q``}
          RETURNING ${q.unsafe(objectColumns)}`.execute()
      // A free key is taken by the insert itself; only an existing key is locked and
      // its version retired (no predicate lock on a missing key: see ObjectsRepo.commit).
      let objects = await insertObject('nothing')
      let replaced: CompleteUploadResult['replaced'] = null
      if (objects.length === 0) {
        const current = await this.#currentVersion(q, bucket, key)
        if (input.ifNoneMatch && current !== null) throw new BlobfsError('PreconditionFailed', `${input.key} already exists`)
        replaced = current === null ? null : { objectId: current, chunksQueued: await retireObject(q, current, 'REPLACED', this.config.deletionDelayMs) }
        objects = await insertObject('fail')
      }

      const chosenNumbers = chosen.map((p) => p.partNumber)
      let offset = 0
      const partRows = chosen.map((p) => {
        const row = {
          object_id: upload.objectId,
          part_number: p.partNumber,
          offset_bytes: offset,
          size_bytes: p.sizeBytes,
          stripe_size_bytes: p.stripeSizeBytes,
          etag: p.etag,
          checksum_crc32c: p.checksumCrc32c,
        }
        offset += p.sizeBytes
        return row
      })
      const [unused] = await Promise.all([
        this.#queueUnusedParts(q, upload.objectId, chosenNumbers),
        ...batches(partRows, catalogRowsPerInsertMax).map(
          (batch) => q`INSERT INTO object_parts ${q(batch, 'object_id', 'part_number', 'offset_bytes', 'size_bytes', 'stripe_size_bytes', 'etag', 'checksum_crc32c')}`.execute(),
        ),
        q`DELETE FROM multipart_parts WHERE upload_id = ${id}`.execute(),
        q`DELETE FROM multipart_uploads WHERE upload_id = ${id}`.execute(),
      ])
      return { object: objectFromRow(objects[0]!), replaced, unusedChunksQueued: unused as number }
    })
  }

  async #currentVersion(q: TxSql, bucket: string, key: Buffer): Promise<string | null> {
    const rows = await q`SELECT object_id FROM bucket_objects WHERE bucket_name = ${bucket} AND object_key = ${key} FOR UPDATE`
    return rows.length === 0 ? null : (rows[0]!.object_id as string)
  }

  /** Moves the chunk rows of every part not in `keep` to the deletion queue. */
  async #queueUnusedParts(q: TxSql, objectId: string, keep: number[]): Promise<number> {
    const [queued] = await Promise.all([
      q`INSERT INTO chunk_deletions (storage_node_id, chunk_id, object_id, reason, available_at)
        SELECT storage_node_id, chunk_id, object_id, 'PART_UNUSED', now()
        FROM object_chunks_allocation WHERE object_id = ${objectId} AND NOT (part_index = ANY(${keep}))
        ON CONFLICT (storage_node_id, chunk_id) DO NOTHING`.execute(),
      q`DELETE FROM object_chunks_allocation WHERE object_id = ${objectId} AND NOT (part_index = ANY(${keep}))`.execute(),
      q`DELETE FROM repair_tasks WHERE object_id = ${objectId} AND NOT (part_index = ANY(${keep}))`.execute(),
    ])
    return queued!.count
  }

  /** Aborts a session: its parts' chunks are queued for deletion and the session is gone. */
  async abort(uploadId: string, expect?: { bucket: string; key: string }): Promise<{ chunksQueued: number }> {
    const id = checkUuid(uploadId, 'upload id')
    const check = expect ? { bucket: checkBucketName(expect.bucket), key: encodeKey(expect.key) } : undefined
    return this.db.tx(async (q) => {
      const upload = await this.#lockUpload(q, id, check)
      const [chunksQueued] = await Promise.all([
        queueChunksOf(q, upload.objectId, 'UPLOAD_ABORTED', 0),
        q`DELETE FROM multipart_parts WHERE upload_id = ${id}`.execute(),
        q`DELETE FROM multipart_uploads WHERE upload_id = ${id}`.execute(),
      ])
      return { chunksQueued }
    })
  }

  /**
   * Open sessions of a bucket by key, then initiation time (S3 ListMultipartUploads):
   * after (keyMarker) or after (keyMarker, uploadIdMarker); seek-based pages.
   */
  async list(
    bucket: string,
    options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {},
  ): Promise<{ uploads: UploadRecord[]; isTruncated: boolean; nextKeyMarker: string | null; nextUploadIdMarker: string | null }> {
    checkBucketName(bucket)
    const prefix = encodeText(options.prefix ?? '', 'prefix')
    const end = prefixEnd(prefix)
    const max = checkCount(options.maxUploads ?? multipartListUploadsMax, 'maxUploads', 1, multipartListUploadsMax)
    const keyMarker = options.keyMarker ? encodeText(options.keyMarker, 'key marker') : null
    const uploadIdMarker = options.uploadIdMarker && keyMarker ? checkUuid(options.uploadIdMarker, 'upload id marker') : null
    const rows = await this.db.tx(async (q) => {
      const buckets = await q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`
      if (buckets.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
      // The marker's initiation time is compared inside SQL: a JavaScript Date would
      // drop its microseconds and the marker would be listed again.
      const after =
        keyMarker !== null && uploadIdMarker !== null
          ? q`AND (u.object_key, u.initiated_at, u.upload_id) >
                (${keyMarker}, (SELECT m.initiated_at FROM multipart_uploads m WHERE m.upload_id = ${uploadIdMarker}), ${uploadIdMarker})`
          : keyMarker !== null
            ? q`AND u.object_key > ${keyMarker}`
            : q``
      return q`SELECT ${q.unsafe(uploadColumns)} FROM multipart_uploads u
        WHERE u.bucket_name = ${bucket} AND u.object_key >= ${prefix} AND u.object_key < ${end} ${after}
        ORDER BY u.object_key, u.initiated_at, u.upload_id LIMIT ${max + 1}`
    })
    const uploads = rows.slice(0, max).map(uploadFromRow)
    const isTruncated = rows.length > max
    const last = uploads[uploads.length - 1]
    return {
      uploads,
      isTruncated,
      nextKeyMarker: isTruncated ? last!.key : null,
      nextUploadIdMarker: isTruncated ? last!.uploadId : null,
    }
  }

  /** Sessions with no part recorded (and not started) within `idleMs`, oldest first: for the multipart GC. */
  async findIdle(options: { idleMs: number; limit: number }): Promise<UploadRecord[]> {
    const idleMs = checkCount(options.idleMs, 'idleMs', 0, Number.MAX_SAFE_INTEGER)
    const limit = checkCount(options.limit, 'limit', 1, multipartListUploadsMax)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(uploadColumns)} FROM multipart_uploads u
        WHERE u.initiated_at < now() - CAST(${idleMs} AS FLOAT8) * INTERVAL '1 millisecond'
          AND NOT EXISTS (SELECT 1 FROM multipart_parts p WHERE p.upload_id = u.upload_id
                          AND p.uploaded_at >= now() - CAST(${idleMs} AS FLOAT8) * INTERVAL '1 millisecond')
        ORDER BY u.initiated_at LIMIT ${limit}`,
    )
    return rows.map(uploadFromRow)
  }

  /**
   * Aborts a session only if it is still idle — checked under the session's row
   * lock in the same SERIALIZABLE transaction, so a part recorded after findIdle
   * saw the session keeps it alive. Null when the session is gone or not idle.
   */
  async abortIdle(uploadId: string, idleMs: number): Promise<{ chunksQueued: number } | null> {
    const id = checkUuid(uploadId, 'upload id')
    const idle = checkCount(idleMs, 'idleMs', 0, Number.MAX_SAFE_INTEGER)
    return this.db.tx(async (q) => {
      const cutoff = q`now() - CAST(${idle} AS FLOAT8) * INTERVAL '1 millisecond'`
      const sessions = await q`SELECT object_id, initiated_at < ${cutoff} AS old FROM multipart_uploads WHERE upload_id = ${id} FOR UPDATE`
      if (sessions.length === 0 || sessions[0]!.old !== true) return null
      const recent = await q`SELECT part_number FROM multipart_parts WHERE upload_id = ${id} AND uploaded_at >= ${cutoff} LIMIT 1`
      if (recent.length > 0) return null
      const [chunksQueued] = await Promise.all([
        queueChunksOf(q, sessions[0]!.object_id as string, 'UPLOAD_ABORTED', 0),
        q`DELETE FROM multipart_parts WHERE upload_id = ${id}`.execute(),
        q`DELETE FROM multipart_uploads WHERE upload_id = ${id}`.execute(),
      ])
      return { chunksQueued }
    })
  }

  /**
   * Open sessions and idle ones (as findIdle counts them), each counted up to
   * `countMax` (a bounded read for `blobfs status`; `capped` says a count stopped there).
   */
  async sessionStats(options: { idleMs: number; countMax: number }): Promise<{ open: number; idle: number; capped: boolean }> {
    const idleMs = checkCount(options.idleMs, 'idleMs', 0, Number.MAX_SAFE_INTEGER)
    const countMax = checkCount(options.countMax, 'countMax', 1, 1_000_000)
    const [open, idle] = await Promise.all([
      this.db.read((q) => q`SELECT CAST(count(*) AS INT8) AS n FROM (SELECT upload_id FROM multipart_uploads LIMIT ${countMax}) AS s`),
      this.db.read(
        (q) => q`SELECT CAST(count(*) AS INT8) AS n FROM (SELECT u.upload_id FROM multipart_uploads u
            WHERE u.initiated_at < now() - CAST(${idleMs} AS FLOAT8) * INTERVAL '1 millisecond'
              AND NOT EXISTS (SELECT 1 FROM multipart_parts p WHERE p.upload_id = u.upload_id
                              AND p.uploaded_at >= now() - CAST(${idleMs} AS FLOAT8) * INTERVAL '1 millisecond')
            LIMIT ${countMax}) AS s`,
      ),
    ])
    const openCount = toNumber(open[0]!.n)
    const idleCount = toNumber(idle[0]!.n)
    return { open: openCount, idle: idleCount, capped: openCount >= countMax || idleCount >= countMax }
  }
}
