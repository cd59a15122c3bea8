// Object versions: commit, look up (with only the stripes a byte range needs),
// delete, change attributes, rename one key or a whole prefix.
//
// Layout: an object is an ordered list of parts (object_parts: offset and size of
// each in the object, and the stripe size it was cut with); a part is a run of
// stripes of `stripe_size_bytes` (the last one shorter); a stripe is k+m chunk rows
// (object_chunks_allocation, primary key object_id, part, stripe, chunk). So the
// stripes covering bytes [a, b) are found with index seeks only: the part holding
// `a` is the one with the greatest offset <= a, the stripes inside a part are
// div(a - part offset, stripe size) .. div(b - 1 - part offset, stripe size).
import assert from 'node:assert/strict'
import { BlobfsError } from '../errors.ts'
import { catalogRowsPerInsertMax, chunkDeletionDelayMsDefault, renamePrefixKeysMax } from '../limits.ts'
import { insertChunkRows, queueDegradedStripes, retireObject } from './chunk-map.ts'
import { foreignKeyViolation, sqlStateOf, toNumber, type Db, type Queryable, type TxSql } from './db.ts'
import { checkBucketName, encodeKey, prefixEnd, startsWith } from './keys.ts'
import { listObjects } from './listing.ts'
import { batches, objectColumns, objectFromRow } from './rows.ts'
import type {
  ByteRange,
  CommitObjectInput,
  CommitResult,
  ListOptions,
  ListResult,
  ObjectLookup,
  ObjectRecord,
  PartInput,
  PosixRecord,
  StripeRecord,
} from './types.ts'
import { checkAttributes, checkCrc, checkInline, checkName, checkParts, checkSize, checkUuid, invalid, parseScheme, checkPosix } from './validate.ts'

export interface ObjectsConfig {
  /** How long a replaced or deleted version's chunks stay readable before GC may delete them. */
  deletionDelayMs: number
}

export interface AttributeChanges {
  posix?: PosixRecord
  userMetadata?: Record<string, string>
  httpHeaders?: Record<string, string>
  contentType?: string
}

export interface RenameOptions {
  /** Fail with AlreadyExists instead of replacing an existing target (RENAME_NOREPLACE). */
  noReplace?: boolean
  /** New ctime (ns) to record on the moved objects that carry POSIX attributes. */
  ctimeNs?: bigint
}

export interface RenamePrefixOptions {
  /**
   * false (default, POSIX rename of a directory): the target may hold nothing but
   * its own marker key (`toPrefix` itself), else DirectoryNotEmpty. true: keys that
   * collide are replaced and the others under the target are kept (a merge).
   */
  overwrite?: boolean
  ctimeNs?: bigint
}

export interface RenameResult {
  /** Keys moved. */
  moved: number
  /** Versions that were replaced at the target; their chunks are queued for deletion. */
  replaced: { objectId: string; chunksQueued: number }[]
}

interface LocatedRow {
  part_number: number | null
  part_offset: bigint
  part_size: bigint
  stripe_size_bytes: bigint
  stripe_index: number | null
  chunk_index: number
  chunk_id: string
  storage_node_id: string
  chunk_length: bigint
  chunk_crc: bigint
}

/** Groups located chunk rows (ordered by part, stripe, chunk) into stripes. */
function stripesFromRows(rows: readonly LocatedRow[], dataShards: number): StripeRecord[] {
  const stripes: StripeRecord[] = []
  let current: StripeRecord | undefined
  for (const row of rows) {
    if (row.part_number === null || row.stripe_index === null) continue
    if (!current || current.partNumber !== row.part_number || current.stripeIndex !== row.stripe_index) {
      const partOffset = toNumber(row.part_offset)
      const partSize = toNumber(row.part_size)
      const stripeSize = toNumber(row.stripe_size_bytes)
      const lengthBytes = Math.min(stripeSize, partSize - row.stripe_index * stripeSize)
      assert.ok(lengthBytes > 0, 'a stored stripe lies inside its part')
      current = {
        partNumber: row.part_number,
        stripeIndex: row.stripe_index,
        objectOffsetBytes: partOffset + row.stripe_index * stripeSize,
        lengthBytes,
        shardSizeBytes: Math.ceil(lengthBytes / dataShards),
        chunks: [],
      }
      stripes.push(current)
    }
    current.chunks.push({
      chunkIndex: row.chunk_index,
      chunkId: row.chunk_id,
      nodeId: row.storage_node_id,
      lengthBytes: toNumber(row.chunk_length),
      root: toNumber(row.chunk_crc),
    })
  }
  return stripes
}

function checkRange(range: ByteRange): { from: number; to: number } {
  if (!Number.isSafeInteger(range.offsetBytes) || !Number.isSafeInteger(range.lengthBytes) || range.offsetBytes < 0 || range.lengthBytes < 0) {
    throw invalid('a byte range needs a non-negative integer offset and length')
  }
  return { from: range.offsetBytes, to: range.offsetBytes + range.lengthBytes }
}

function dataShardsOf(scheme: string): number {
  return parseScheme(scheme)?.dataShards ?? 1
}

export class Objects {
  constructor(
    private readonly db: Db,
    private readonly config: ObjectsConfig = { deletionDelayMs: chunkDeletionDelayMsDefault },
  ) {}

  /**
   * Commits a new version of `bucket/key` atomically: the object row, its parts and
   * chunk rows, repair tasks for stripes written degraded, and — if the key had a
   * version — that version's chunks moved to the deletion queue. Committing an
   * objectId that is already the key's current version returns it unchanged (a
   * retry after a lost COMMIT reply is safe).
   */
  async commit(input: CommitObjectInput): Promise<CommitResult> {
    const bucket = checkBucketName(input.bucket)
    const key = encodeKey(input.key)
    const objectId = checkUuid(input.objectId, 'object id')
    const sizeBytes = checkSize(input.sizeBytes)
    const etag = checkName(input.etag, 'etag', 64)
    const crc = checkCrc(input.checksumCrc32c, 'object checksum')
    const attributes = checkAttributes(input)
    const ifMatch = input.ifMatchObjectId === undefined ? undefined : checkUuid(input.ifMatchObjectId, 'ifMatchObjectId')
    let scheme: string
    let inline: Buffer | null = null
    const parts = input.content
    let checked: ReturnType<typeof checkParts> = { rows: [], degraded: [] }
    if ('inline' in parts) {
      scheme = 'INLINE'
      inline = checkInline(parts.inline, sizeBytes)
    } else {
      scheme = parts.scheme
      const rs = parseScheme(scheme)
      if (rs === null) throw invalid('an INLINE object is committed with content.inline')
      checked = checkParts(rs, parts.parts, sizeBytes)
    }
    const partsCount = 'parts' in parts && parts.parts.length > 1 ? parts.parts.length : null
    const posix = attributes.posix
    const insertRow = (q: Queryable, onConflict: 'nothing' | 'fail') =>
      q`INSERT INTO bucket_objects AS o (object_id, bucket_name, object_key, size_bytes, etag, content_type, erasure_coding_scheme,
            inline_data, parts_count, checksum_crc32c, user_metadata, http_headers, posix_mode, posix_uid, posix_gid, mtime_ns, ctime_ns, symlink_target)
          VALUES (${objectId}, ${bucket}, ${key}, ${sizeBytes}, ${etag}, ${attributes.contentType}, ${scheme},
            ${inline}, ${partsCount}, ${crc}, ${q.json(attributes.userMetadata)}, ${q.json(attributes.httpHeaders)}, ${posix?.mode ?? null}, ${posix?.uid ?? null},
            ${posix?.gid ?? null}, ${posix?.mtimeNs ?? null}, ${posix?.ctimeNs ?? null}, ${attributes.symlinkTarget})
          ${onConflict === 'nothing' ? q`ON CONFLICT (bucket_name, object_key) DO NOTHING` : q``}
          RETURNING ${q.unsafe(objectColumns)}`

    // A new key whose bytes are inline (small files: tar x, cp, rsync) has nothing to
    // write but its row, and the insert is the existence check (see below): it is the
    // whole commit, one statement on its own (Db.alone), its foreign key the bucket
    // check. A key that exists inserts nothing there, so that statement changed nothing
    // and the transaction below replaces it.
    if (ifMatch === undefined && inline !== null) {
      const inserted = await this.db.alone((sql) =>
        insertRow(sql, 'nothing').catch((error: unknown) => {
          if (sqlStateOf(error) === foreignKeyViolation) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
          throw error
        }),
      )
      if (inserted.length === 1) return { object: objectFromRow(inserted[0]!), replaced: null, repairsQueued: 0 }
    }

    return this.db.tx(async (q) => {
      const insertContent = async () => {
        await Promise.all([
          'parts' in parts ? this.#insertParts(q, objectId, parts.parts) : Promise.resolve(),
          insertChunkRows(q, objectId, checked.rows),
        ])
        return queueDegradedStripes(q, objectId, checked.degraded)
      }

      // A key that does not exist yet: the insert is the existence check. Reading the
      // key first (SELECT ... FOR UPDATE of a row that is not there) would take a
      // predicate lock on the index page where the key would be; every concurrent
      // commit of a new key near it writes that page, and PostgreSQL's SERIALIZABLE
      // aborts one of each such pair (measured: 14-32 retries for 16 parallel commits
      // of distinct keys in one bucket). INSERT ... ON CONFLICT DO NOTHING reads the
      // index without a predicate lock.
      if (ifMatch === undefined && inline === null) {
        const buckets = q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`.execute()
        const inserted = insertRow(q, 'nothing').execute()
        inserted.catch(() => {}) // a missing bucket fails it (foreign key); awaited below otherwise
        if ((await buckets).length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
        const rows = await inserted
        if (rows.length === 1) return { object: objectFromRow(rows[0]!), replaced: null, repairsQueued: await insertContent() }
      }

      // The key exists (or the caller names the version it replaces): lock it.
      const current = await this.#lockCurrent(q, bucket, key)
      if (current === objectId) {
        return { object: (await this.#getIn(q, bucket, key))!, replaced: null, repairsQueued: 0 }
      }
      if (input.ifNoneMatch && current !== null) throw new BlobfsError('PreconditionFailed', `${input.key} already exists`)
      if (ifMatch !== undefined && current !== ifMatch) throw new BlobfsError('PreconditionFailed', `${input.key} is not at version ${ifMatch}`)
      const replaced = current === null ? null : { objectId: current, chunksQueued: await retireObject(q, current, 'REPLACED', this.config.deletionDelayMs) }
      // The object row first: parts reference it (see the pipelining note in chunk-map.ts).
      const [rows, repairsQueued] = await Promise.all([insertRow(q, 'fail').execute(), insertContent()])
      return { object: objectFromRow(rows[0]!), replaced, repairsQueued }
    })
  }

  async #insertParts(q: TxSql, objectId: string, parts: readonly PartInput[]): Promise<void> {
    let offset = 0
    const rows = parts.map((p) => {
      const row = {
        object_id: objectId,
        part_number: p.partNumber,
        offset_bytes: offset,
        size_bytes: p.sizeBytes,
        stripe_size_bytes: p.stripeSizeBytes,
        etag: p.etag,
        checksum_crc32c: p.checksumCrc32c ?? null,
      }
      offset += p.sizeBytes
      return row
    })
    await Promise.all(
      batches(rows, catalogRowsPerInsertMax).map(
        (batch) => q`INSERT INTO object_parts ${q(batch, 'object_id', 'part_number', 'offset_bytes', 'size_bytes', 'stripe_size_bytes', 'etag', 'checksum_crc32c')}`.execute(),
      ),
    )
  }

  /** The key's current version id (row-locked), or null; NoSuchBucket if the bucket is missing. */
  async #lockCurrent(q: TxSql, bucket: string, key: Buffer): Promise<string | null> {
    const [buckets, current] = await Promise.all([
      q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`,
      q`SELECT object_id FROM bucket_objects WHERE bucket_name = ${bucket} AND object_key = ${key} FOR UPDATE`,
    ])
    if (buckets.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
    return current.length === 0 ? null : (current[0]!.object_id as string)
  }

  async #getIn(q: Queryable, bucket: string, key: Buffer): Promise<ObjectRecord | null> {
    const rows = await q`SELECT ${q.unsafe(objectColumns)} FROM bucket_objects o WHERE o.bucket_name = ${bucket} AND o.object_key = ${key}`
    return rows.length === 0 ? null : objectFromRow(rows[0]!)
  }

  /** The current version's metadata, or null. NoSuchBucket if the bucket is missing. */
  async get(bucket: string, key: string): Promise<ObjectRecord | null> {
    return (await this.lookup(bucket, key))?.object ?? null
  }

  /**
   * One statement: the current version of `bucket/key`, its inline bytes, and the
   * stripes (with their chunk rows) covering `range` — only those. Null if the key
   * does not exist; NoSuchBucket if the bucket does not.
   */
  async lookup(bucket: string, key: string, range?: ByteRange): Promise<ObjectLookup | null> {
    checkBucketName(bucket)
    const keyBytes = encodeKey(key)
    const { from, to } = range ? checkRange(range) : { from: 0, to: 0 }
    const rows = await this.db.read(
      (q) => q`SELECT b.bucket_name AS found_bucket, ${q.unsafe(objectColumns)}, o.inline_data,
          s.part_number, s.part_offset, s.part_size, s.stripe_size_bytes, s.stripe_index, s.chunk_index, s.chunk_id,
          s.storage_node_id, s.chunk_length, s.chunk_crc
        FROM storage_buckets b
        LEFT JOIN bucket_objects o ON o.bucket_name = b.bucket_name AND o.object_key = ${keyBytes}
        LEFT JOIN LATERAL (
          SELECT p.part_number, p.offset_bytes AS part_offset, p.size_bytes AS part_size, p.stripe_size_bytes,
            c.stripe_index, c.chunk_index, c.chunk_id, c.storage_node_id, c.length_bytes AS chunk_length, c.checksum_crc32c AS chunk_crc
          FROM object_parts p
          JOIN object_chunks_allocation c ON c.object_id = p.object_id AND c.part_index = p.part_number
            AND c.stripe_index >= CAST(div(greatest(${from} - p.offset_bytes, 0), p.stripe_size_bytes) AS INT4)
            AND c.stripe_index <= CAST(div(least(${to}, p.offset_bytes + p.size_bytes) - 1 - p.offset_bytes, p.stripe_size_bytes) AS INT4)
          WHERE p.object_id = o.object_id AND p.offset_bytes < ${to} AND p.offset_bytes + p.size_bytes > ${from}
            AND p.offset_bytes >= coalesce((SELECT max(pp.offset_bytes) FROM object_parts pp WHERE pp.object_id = o.object_id AND pp.offset_bytes <= ${from}), 0)
        ) s ON true
        WHERE b.bucket_name = ${bucket}
        ORDER BY s.part_number, s.stripe_index, s.chunk_index`,
    )
    if (rows.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
    if (rows[0]!.object_id === null) return null
    const object = objectFromRow(rows[0]!)
    return {
      object,
      inlineData: rows[0]!.inline_data ?? null,
      stripes: stripesFromRows(rows as unknown as LocatedRow[], dataShardsOf(object.scheme)),
    }
  }

  /**
   * The stripes of version `objectId` covering `range` (object order, only those).
   * Empty once the version is replaced or deleted: a reader that must outlive a
   * replacement loads its stripes up front (the chunks themselves stay readable for
   * `deletionDelayMs`).
   */
  async stripes(objectId: string, range: ByteRange): Promise<StripeRecord[]> {
    const id = checkUuid(objectId, 'object id')
    const { from, to } = checkRange(range)
    const rows = await this.db.read(
      (q) => q`SELECT o.erasure_coding_scheme, p.part_number, p.offset_bytes AS part_offset, p.size_bytes AS part_size, p.stripe_size_bytes,
          c.stripe_index, c.chunk_index, c.chunk_id, c.storage_node_id, c.length_bytes AS chunk_length, c.checksum_crc32c AS chunk_crc
        FROM bucket_objects o
        JOIN object_parts p ON p.object_id = o.object_id
        JOIN object_chunks_allocation c ON c.object_id = p.object_id AND c.part_index = p.part_number
          AND c.stripe_index >= CAST(div(greatest(${from} - p.offset_bytes, 0), p.stripe_size_bytes) AS INT4)
          AND c.stripe_index <= CAST(div(least(${to}, p.offset_bytes + p.size_bytes) - 1 - p.offset_bytes, p.stripe_size_bytes) AS INT4)
        WHERE o.object_id = ${id} AND p.offset_bytes < ${to} AND p.offset_bytes + p.size_bytes > ${from}
          AND p.offset_bytes >= coalesce((SELECT max(pp.offset_bytes) FROM object_parts pp WHERE pp.object_id = ${id} AND pp.offset_bytes <= ${from}), 0)
        ORDER BY p.part_number, c.stripe_index, c.chunk_index`,
    )
    if (rows.length === 0) return []
    return stripesFromRows(rows as unknown as LocatedRow[], dataShardsOf(rows[0]!.erasure_coding_scheme))
  }

  /**
   * Deletes the current version of `bucket/key` (its chunks queued for deletion).
   * Null if there was none (S3: deleting a missing key succeeds).
   */
  async delete(bucket: string, key: string, options: { ifObjectId?: string } = {}): Promise<{ object: ObjectRecord; chunksQueued: number } | null> {
    checkBucketName(bucket)
    const keyBytes = encodeKey(key)
    const ifObjectId = options.ifObjectId === undefined ? undefined : checkUuid(options.ifObjectId, 'ifObjectId')
    return this.db.tx(async (q) => {
      const current = await this.#lockCurrent(q, bucket, keyBytes)
      if (ifObjectId !== undefined && current !== ifObjectId) throw new BlobfsError('PreconditionFailed', `${key} is not at version ${ifObjectId}`)
      if (current === null) return null
      const object = (await this.#getIn(q, bucket, keyBytes))!
      const chunksQueued = await retireObject(q, current, 'DELETED', this.config.deletionDelayMs)
      return { object, chunksQueued }
    })
  }

  /** Changes POSIX attributes, user metadata, stored HTTP headers or content type without a new version. */
  async setAttributes(bucket: string, key: string, changes: AttributeChanges, options: { ifObjectId?: string } = {}): Promise<ObjectRecord> {
    checkBucketName(bucket)
    const keyBytes = encodeKey(key)
    const posix = changes.posix === undefined ? undefined : checkPosix(changes.posix)
    const checked = checkAttributes({ contentType: changes.contentType, userMetadata: changes.userMetadata, httpHeaders: changes.httpHeaders })
    const ifObjectId = options.ifObjectId === undefined ? undefined : checkUuid(options.ifObjectId, 'ifObjectId')
    return this.db.tx(async (q) => {
      const rows = await q`UPDATE bucket_objects AS o SET updated_at = now()
          ${posix ? q`, posix_mode = ${posix.mode}, posix_uid = ${posix.uid}, posix_gid = ${posix.gid}, mtime_ns = ${posix.mtimeNs}, ctime_ns = ${posix.ctimeNs}` : q``}
          ${changes.userMetadata !== undefined ? q`, user_metadata = ${q.json(checked.userMetadata)}` : q``}
          ${changes.httpHeaders !== undefined ? q`, http_headers = ${q.json(checked.httpHeaders)}` : q``}
          ${changes.contentType !== undefined ? q`, content_type = ${checked.contentType}` : q``}
        WHERE o.bucket_name = ${bucket} AND o.object_key = ${keyBytes} ${ifObjectId ? q`AND o.object_id = ${ifObjectId}` : q``}
        RETURNING ${q.unsafe(objectColumns)}`
      if (rows.length === 1) return objectFromRow(rows[0]!)
      await this.#lockCurrent(q, bucket, keyBytes) // NoSuchBucket when that is the reason
      if (ifObjectId !== undefined && (await this.#getIn(q, bucket, keyBytes)) !== null) {
        throw new BlobfsError('PreconditionFailed', `${key} is not at version ${ifObjectId}`)
      }
      throw new BlobfsError('NoSuchKey', `${key} does not exist`)
    })
  }

  /**
   * Renames one key in one transaction; the object keeps its id and chunks (no data
   * moves). A version already at `toKey` is replaced and its chunks queued for
   * deletion, unless `noReplace` (then AlreadyExists).
   */
  async rename(bucket: string, fromKey: string, toKey: string, options: RenameOptions = {}): Promise<RenameResult> {
    checkBucketName(bucket)
    const from = encodeKey(fromKey, 'source key')
    const to = encodeKey(toKey, 'target key')
    if (from.equals(to)) {
      if ((await this.get(bucket, fromKey)) === null) throw new BlobfsError('NoSuchKey', `${fromKey} does not exist`)
      return { moved: 0, replaced: [] }
    }
    return this.db.tx(async (q) => {
      const source = await this.#lockCurrent(q, bucket, from)
      if (source === null) throw new BlobfsError('NoSuchKey', `${fromKey} does not exist`)
      const target = await this.#lockCurrent(q, bucket, to)
      const replaced: RenameResult['replaced'] = []
      if (target !== null) {
        if (options.noReplace) throw new BlobfsError('AlreadyExists', `${toKey} exists`)
        replaced.push({ objectId: target, chunksQueued: await retireObject(q, target, 'REPLACED', this.config.deletionDelayMs) })
      }
      await q`UPDATE bucket_objects SET object_key = ${to}, updated_at = now()
          ${options.ctimeNs !== undefined ? q`, ctime_ns = CASE WHEN posix_mode IS NULL THEN NULL ELSE CAST(${options.ctimeNs} AS INT8) END` : q``}
        WHERE object_id = ${source}`
      return { moved: 1, replaced }
    })
  }

  /**
   * Renames every key under `fromPrefix` to the same remainder under `toPrefix`, in
   * one transaction (a directory rename). Neither prefix may contain the other.
   * Targets that collide are replaced (chunks queued for deletion); see
   * RenamePrefixOptions.overwrite for what else may exist under the target.
   */
  async renamePrefix(bucket: string, fromPrefix: string, toPrefix: string, options: RenamePrefixOptions = {}): Promise<RenameResult> {
    checkBucketName(bucket)
    const from = encodeKey(fromPrefix, 'source prefix')
    const to = encodeKey(toPrefix, 'target prefix')
    if (startsWith(from, to) || startsWith(to, from)) {
      throw invalid(`cannot rename ${JSON.stringify(fromPrefix)} to ${JSON.stringify(toPrefix)}: one contains the other`)
    }
    const fromEnd = prefixEnd(from)
    const toEnd = prefixEnd(to)
    return this.db.tx(async (q) => {
      const [buckets, counted] = await Promise.all([
        q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`,
        q`SELECT count(*) AS n FROM (SELECT 1 FROM bucket_objects
            WHERE bucket_name = ${bucket} AND object_key >= ${from} AND object_key < ${fromEnd} LIMIT ${renamePrefixKeysMax + 1}) AS s`,
      ])
      if (buckets.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
      const count = toNumber(counted[0]!.n)
      if (count === 0) throw new BlobfsError('NoSuchKey', `nothing exists under ${fromPrefix}`)
      if (count > renamePrefixKeysMax) {
        throw new BlobfsError('NotSupported', `${fromPrefix} holds more than ${renamePrefixKeysMax} keys; one rename moves at most that many`)
      }
      // Where a moved key would land on an existing key, that target is replaced.
      const collisions = await q`SELECT t.object_id, t.object_key FROM bucket_objects t
          JOIN bucket_objects s ON s.bucket_name = t.bucket_name
            AND s.object_key = ${from} || substring(t.object_key FROM ${to.length + 1})
          WHERE t.bucket_name = ${bucket} AND t.object_key >= ${to} AND t.object_key < ${toEnd}`
      if (!options.overwrite) {
        const others = await q`SELECT object_key FROM bucket_objects
            WHERE bucket_name = ${bucket} AND object_key > ${to} AND object_key < ${toEnd} LIMIT 1`
        if (others.length > 0) throw new BlobfsError('DirectoryNotEmpty', `${toPrefix} is not empty`)
      }
      const replaced: RenameResult['replaced'] = []
      for (const row of collisions) {
        replaced.push({ objectId: row.object_id, chunksQueued: await retireObject(q, row.object_id, 'REPLACED', this.config.deletionDelayMs) })
      }
      const moved = await q`UPDATE bucket_objects SET object_key = ${to} || substring(object_key FROM ${from.length + 1}), updated_at = now()
          ${options.ctimeNs !== undefined ? q`, ctime_ns = CASE WHEN posix_mode IS NULL THEN NULL ELSE CAST(${options.ctimeNs} AS INT8) END` : q``}
        WHERE bucket_name = ${bucket} AND object_key >= ${from} AND object_key < ${fromEnd}`
      assert.equal(moved.count, count)
      return { moved: moved.count, replaced }
    })
  }

  /** One page of a bucket listing (see listing.ts). */
  list(bucket: string, options: ListOptions = {}): Promise<ListResult> {
    return listObjects(this.db, bucket, options)
  }

  /** Object count and logical bytes of one bucket or all (a full scan: for status, not the data path). */
  async usage(bucket?: string): Promise<{ objects: number; bytes: number }> {
    if (bucket !== undefined) checkBucketName(bucket)
    const rows = await this.db.read(
      (q) => q`SELECT count(*) AS n, CAST(coalesce(sum(size_bytes), 0) AS INT8) AS bytes FROM bucket_objects
        ${bucket !== undefined ? q`WHERE bucket_name = ${bucket}` : q``}`,
    )
    return { objects: toNumber(rows[0]!.n), bytes: toNumber(rows[0]!.bytes) }
  }
}

