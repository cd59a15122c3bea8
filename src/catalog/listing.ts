// Bucket listings (ListObjectsV2/V1, FUSE readdir): seek-based pages, never OFFSET.
//
// A listing is the sorted sequence of entries under a prefix, where an entry is a
// key, or — with a delimiter — the common prefix that rolls up every key whose
// remainder after the prefix contains the delimiter. A page starts at a seek
// position (an inclusive lower bound on keys) and ends after maxKeys entries.
//
// Without a delimiter a page is one index range scan. With one, a recursive CTE
// walks the key index in batches. Each step is one index range scan of a few keys
// from the current position, cut at the first key under a common prefix: the keys
// before it are entries, and so is its common prefix, and the next step starts at
// the prefix followed by 0xFF, past every key it holds (keys are UTF-8, which never
// contains 0xFF). A step that found no common prefix continues right after its last
// key, with a longer batch: runs of plain keys cost one scan per batch, and a prefix
// hiding a million keys still costs one seek. The first page costs what the last
// does, whatever lies before it.
//
// Why batches: on PostgreSQL (before 17) a B-tree seek checks every remaining key on
// the leaf page it lands on, so a seek costs half a page of key comparisons (about as
// much as reading the 2-16 keys after it). Seeking once per key, as this walk first
// did, paid that for every key; now a key in a run costs a fraction of one seek.
// The batch after a common prefix is short (the next prefix may follow at once, and a
// key read past it is read for nothing); while plain keys keep coming it is longer.
//
// The step also fetches the listed columns (ListedObject) of the keys it returns, so
// a key costs no second lookup, and the first row of the walk exists only when the
// bucket does: one statement answers both, from one snapshot.
import { BlobfsError } from '../errors.ts'
import { listPageKeysMax, listWalkBatchKeysAfterPrefix, listWalkBatchKeysInRun } from '../limits.ts'
import { type Db, type Sql } from './db.ts'
import {
  bytes,
  checkBucketName,
  decodeKey,
  decodeToken,
  encodeText,
  encodeToken,
  keySuccessor,
  maxBytes,
  prefixEnd,
  startsWith,
} from './keys.ts'
import { listedColumnNames, listedColumnTypes, listedObjectFromValues } from './rows.ts'
import type { ListedObject, ListOptions, ListResult } from './types.ts'
import { checkCount } from './validate.ts'

/** The common prefix `key` rolls up into, or null when its remainder holds no delimiter. */
export function commonPrefixOf(key: Buffer, prefix: Buffer, delimiter: Buffer | null): Buffer | null {
  if (delimiter === null || !startsWith(key, prefix)) return null
  const at = key.indexOf(delimiter, prefix.length)
  return at < 0 ? null : key.subarray(0, at + delimiter.length)
}

/** Where the page after entry `entry` starts: past a common prefix's keys, or right after a key. */
export function seekAfter(entry: Buffer, prefix: Buffer, delimiter: Buffer | null): Buffer {
  const common = commonPrefixOf(entry, prefix, delimiter)
  return common !== null ? Buffer.concat([common, bytes.ff]) : keySuccessor(entry)
}

const emptyResult: ListResult = { objects: [], commonPrefixes: [], isTruncated: false, nextContinuationToken: null, nextMarker: null }

// Column lists of the statements below, fixed text (no input in them).
const listed = (alias: string) => listedColumnNames.map((name) => `${alias}.${name}`).join(', ')
const listedNulls = listedColumnNames.map((name) => `NULL::${listedColumnTypes[name]}`).join(', ')
/** The walk's rows of common prefixes carry their first key's columns; a page shows none. */
const listedUnlessPrefix = listedColumnNames.map((name) => `CASE WHEN w.delimited THEN NULL ELSE w.${name} END`).join(', ')

interface Walk {
  bucket: string
  prefix: Buffer
  delimiter: Buffer
  from: Buffer
  end: Buffer
  maxKeys: number
}

/**
 * One step's batch: up to `batchKeys` keys from the walk's position `w.next`, cut
 * after the first one under a common prefix; each with `dpos`, the 1-based position
 * of the delimiter in its remainder after the prefix (0: a plain key), `rn`, its
 * 1-based place in the batch, and `entry`, the key or its common prefix.
 * It runs only when `w.wide` equals `wide` (one of the two batches runs per step).
 *
 * The upper bound `end` is checked after the LIMIT, not in the index condition: the
 * seek still starts at the same place, and every key the B-tree reads from that leaf
 * page is checked against two conditions instead of three.
 */
function batch(q: Sql, walk: Walk, batchKeys: number, wide: boolean) {
  const skip = walk.prefix.length // bytes of the prefix; the remainder starts after them
  return q`SELECT CASE WHEN t.dpos > 0 THEN substring(t.object_key FROM 1 FOR ${skip + walk.delimiter.length - 1} + t.dpos)
                       ELSE t.object_key END AS entry,
                  t.dpos, t.rn, ${q.unsafe(String(batchKeys))} AS batch_keys, ${q.unsafe(listed('t'))}
    FROM (SELECT s.*, row_number() OVER (ORDER BY s.object_key) AS rn,
                 sum(CASE WHEN s.dpos > 0 THEN 1 ELSE 0 END) OVER (ORDER BY s.object_key) AS prefixes_so_far
          FROM (SELECT k.object_key, position(${walk.delimiter} IN substring(k.object_key FROM ${skip + 1})) AS dpos,
                       ${q.unsafe(listed('k'))}
                FROM bucket_objects k
                WHERE k.bucket_name = ${walk.bucket} AND k.object_key >= w.next AND ${wide ? q`w.wide` : q`NOT w.wide`}
                ORDER BY k.object_key LIMIT ${q.unsafe(String(batchKeys))}) s
          WHERE s.object_key < ${walk.end}) t
    WHERE t.prefixes_so_far = CASE WHEN t.dpos > 0 THEN 1 ELSE 0 END`
}

/**
 * The delimited page: row 0 is the bucket (absent: no such bucket), then the
 * entries in order, at most maxKeys + 1 of them (one more tells the page is
 * truncated): the entry's bytes, then the listed columns, all NULL for a common prefix.
 *
 * Each step of the walk emits its batch; only the batch's last row goes on, with
 * `next` set: after a common prefix, the prefix followed by 0xFF; after a full batch
 * of plain keys, the last key followed by 0x00 (and `wide`: the next batch is the
 * long one). A batch that ended at the prefix's end leaves no `next` and the walk stops.
 */
function walkPage(q: Sql, walk: Walk) {
  return q`WITH RECURSIVE walk (entry, delimited, next, wide, n, ${q.unsafe(listedColumnNames.join(', '))}) AS (
      SELECT NULL::BYTEA, false, ${walk.from}::BYTEA, false, 0::INT8, ${q.unsafe(listedNulls)}
      FROM storage_buckets WHERE bucket_name = ${walk.bucket}
      UNION ALL
      SELECT b.entry, b.dpos > 0,
             CASE WHEN b.dpos > 0 THEN b.entry || ${bytes.ff}::BYTEA
                  WHEN b.rn = b.batch_keys THEN b.entry || ${bytes.zero}::BYTEA END,
             b.dpos = 0, w.n + b.rn, ${q.unsafe(listed('b'))}
      FROM walk w, LATERAL (
        ${batch(q, walk, listWalkBatchKeysAfterPrefix, false)}
        UNION ALL
        ${batch(q, walk, listWalkBatchKeysInRun, true)}
      ) b
      WHERE w.next IS NOT NULL AND w.n <= ${walk.maxKeys}
    )
    SELECT w.entry, ${q.unsafe(listedUnlessPrefix)} FROM walk w
    ORDER BY w.n LIMIT ${walk.maxKeys + 2}`.values()
}

/** The page without a delimiter: one range scan; no row when there is no such bucket, one NULL row when nothing matches. */
function rangePage(q: Sql, bucket: string, from: Buffer, end: Buffer, maxKeys: number) {
  return q`SELECT o.object_key, ${q.unsafe(listed('o'))} FROM storage_buckets b
    LEFT JOIN LATERAL (SELECT k.object_key, ${q.unsafe(listed('k'))} FROM bucket_objects k
                       WHERE k.bucket_name = ${bucket} AND k.object_key >= ${from} AND k.object_key < ${end}
                       ORDER BY k.object_key LIMIT ${maxKeys + 1}) o ON true
    WHERE b.bucket_name = ${bucket}
    ORDER BY o.object_key`.values()
}

export async function listObjects(db: Db, bucket: string, options: ListOptions): Promise<ListResult> {
  checkBucketName(bucket)
  const prefix = encodeText(options.prefix ?? '', 'prefix')
  const delimiter = options.delimiter ? encodeText(options.delimiter, 'delimiter') : null
  const maxKeys = checkCount(options.maxKeys ?? listPageKeysMax, 'maxKeys', 0, listPageKeysMax)
  let from = prefix
  if (options.startAfter !== undefined && options.startAfter !== '') {
    from = maxBytes(from, seekAfter(encodeText(options.startAfter, 'startAfter'), prefix, delimiter))
  }
  if (options.continuationToken !== undefined && options.continuationToken !== '') {
    from = maxBytes(from, decodeToken(options.continuationToken))
  }
  const end = prefixEnd(prefix)

  if (maxKeys === 0 || Buffer.compare(from, end) >= 0) {
    const exists = await db.read((q) => q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`)
    if (exists.length === 0) throw noSuchBucket(bucket)
    return emptyResult
  }
  // Rows are arrays: the entry's bytes (a key or a common prefix), then listedColumnNames.
  let rows: unknown[][]
  if (delimiter === null) {
    rows = await db.read((q) => rangePage(q, bucket, from, end, maxKeys))
    if (rows.length === 0) throw noSuchBucket(bucket)
    if (rows[0]![0] === null) return emptyResult
  } else {
    rows = await db.read((q) => walkPage(q, { bucket, prefix, delimiter, from, end, maxKeys }))
    if (rows.length === 0) throw noSuchBucket(bucket)
    rows = rows.slice(1) // the bucket's row
  }

  const objects: ListedObject[] = []
  const commonPrefixes: string[] = []
  const entries = Math.min(rows.length, maxKeys)
  for (let i = 0; i < entries; i++) {
    const row = rows[i]!
    const entry = decodeKey(row[0] as Buffer)
    // object_id is NOT NULL in every key's row: NULL marks a common prefix.
    if (row[1] === null) commonPrefixes.push(entry)
    else objects.push(listedObjectFromValues(entry, row, 1))
  }
  const isTruncated = rows.length > entries
  const last = entries > 0 ? (rows[entries - 1]![0] as Buffer) : null
  return {
    objects,
    commonPrefixes,
    isTruncated,
    nextContinuationToken: isTruncated ? encodeToken(seekAfter(last!, prefix, delimiter)) : null,
    nextMarker: isTruncated ? decodeKey(last!) : null,
  }
}

function noSuchBucket(bucket: string): BlobfsError {
  return new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
}
