// Bucket listings (ListObjectsV2/V1, FUSE readdir): seek-based pages, never OFFSET.
//
// A listing is the sorted sequence of entries under a prefix, where an entry is a
// key, or — with a delimiter — the common prefix that rolls up every key whose
// remainder after the prefix contains the delimiter. A page starts at a seek
// position (an inclusive lower bound on keys) and ends after maxKeys entries.
//
// Without a delimiter a page is one index range scan. With one, a recursive CTE
// walks the index: each step is one seek for the first key at or after the current
// position; a key becomes an entry and the next position is the key followed by
// 0x00, a key under a common prefix makes that prefix the entry and the next
// position is the prefix followed by 0xFF, past every key it holds (keys are UTF-8,
// which never contains 0xFF). A page of n entries therefore costs n + 1 index
// seeks whatever lies below each prefix: a prefix hiding a million keys costs one.
import { BlobfsError } from '../errors.ts'
import { listPageKeysMax } from '../limits.ts'
import { type Db } from './db.ts'
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
import { objectColumns, objectFromValues } from './rows.ts'
import type { ListOptions, ListResult, ObjectRecord } from './types.ts'
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

  const [exists, rows] = await Promise.all([
    db.read((q) => q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`),
    maxKeys === 0 || Buffer.compare(from, end) >= 0
      ? Promise.resolve([])
      : delimiter === null
        ? db.read(
            (q) => q`SELECT o.object_key, ${q.unsafe(objectColumns)} FROM bucket_objects o
              WHERE o.bucket_name = ${bucket} AND o.object_key >= ${from} AND o.object_key < ${end}
              ORDER BY o.object_key LIMIT ${maxKeys + 1}`.values(),
          )
        : db.read(
            (q) => q`WITH RECURSIVE walk (object_key, depth) AS (
                SELECT (SELECT object_key FROM bucket_objects
                        WHERE bucket_name = ${bucket} AND object_key >= ${from} AND object_key < ${end}
                        ORDER BY object_key LIMIT 1), 1
                UNION ALL
                SELECT (SELECT k.object_key FROM bucket_objects k
                        WHERE k.bucket_name = ${bucket} AND k.object_key < ${end}
                          AND k.object_key >= CASE
                            WHEN position(${delimiter} IN substring(w.object_key FROM ${prefix.length + 1})) > 0
                            THEN substring(w.object_key FROM 1
                                   FOR ${prefix.length + delimiter.length - 1} + position(${delimiter} IN substring(w.object_key FROM ${prefix.length + 1})))
                                 || ${bytes.ff}
                            ELSE w.object_key || ${bytes.zero} END
                        ORDER BY k.object_key LIMIT 1),
                       w.depth + 1
                FROM walk w
                WHERE w.object_key IS NOT NULL AND w.depth <= ${maxKeys}
              )
              -- Only keys need their rows; a common prefix is just the walked key's bytes.
              -- The CASE gives the join a NULL key for those, which the index scan skips
              -- without descending (a join filter would look the row up and then drop it).
              SELECT w.object_key AS walked_key, ${q.unsafe(objectColumns)} FROM walk w
              LEFT JOIN bucket_objects o ON o.bucket_name = ${bucket}
                AND o.object_key = CASE WHEN position(${delimiter} IN substring(w.object_key FROM ${prefix.length + 1})) = 0 THEN w.object_key END
              WHERE w.object_key IS NOT NULL
              ORDER BY w.depth`.values(),
          ),
  ])
  if (exists.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
  if (rows.length === 0) return emptyResult

  // Rows are arrays (see objectFromValues): the walked key, then objectColumns (NULL for a common prefix).
  const objects: ObjectRecord[] = []
  const commonPrefixes: string[] = []
  let last: Buffer | null = null
  let entries = 0
  for (const row of rows) {
    if (entries === maxKeys) break
    const key = row[0] as Buffer
    const common = commonPrefixOf(key, prefix, delimiter)
    if (common !== null) {
      if (last !== null && last.equals(common)) continue // only possible in a non-delimited scan; kept for safety
      commonPrefixes.push(decodeKey(common))
      last = common
    } else {
      objects.push(objectFromValues(row, 1))
      last = key
    }
    entries++
  }
  const isTruncated = rows.length > entries
  return {
    objects,
    commonPrefixes,
    isTruncated,
    nextContinuationToken: isTruncated ? encodeToken(seekAfter(last!, prefix, delimiter)) : null,
    nextMarker: isTruncated ? decodeKey(last!) : null,
  }
}
