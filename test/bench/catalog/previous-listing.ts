// The delimited listing as it was before the batched walk (commit 69c279c), frozen
// here so the benchmark measures old and new side by side in one run: a recursive
// CTE with one index seek per entry, then one lookup per key for every column of
// its row (20 columns), and the bucket's existence checked by a second statement on
// another connection. Benchmark-only code: nothing in src/ uses it.
import { BlobfsError } from '../../../src/errors.ts'
import type { Db } from '../../../src/catalog/db.ts'
import { bytes, decodeKey, encodeText, encodeToken, maxBytes, prefixEnd } from '../../../src/catalog/keys.ts'
import { commonPrefixOf, seekAfter } from '../../../src/catalog/listing.ts'
import { objectColumns, objectFrom } from '../../../src/catalog/rows.ts'

const columnNames = objectColumns.split(', ').map((c) => c.slice(2))
const columnIndex = Object.fromEntries(columnNames.map((name, i) => [name, i])) as Record<string, number>

function objectFromValues(values: readonly unknown[], at = 0) {
  return objectFrom((name) => values[at + columnIndex[name]!])
}

/** A delimited page the way the previous listing produced it (prefix, delimiter and startAfter only). */
export async function previousDelimitedList(db: Db, bucket: string, options: { prefix: string; delimiter: string; startAfter?: string; maxKeys: number }) {
  const prefix = encodeText(options.prefix, 'prefix')
  const delimiter = encodeText(options.delimiter, 'delimiter')
  const maxKeys = options.maxKeys
  const from = options.startAfter ? maxBytes(prefix, seekAfter(encodeText(options.startAfter, 'startAfter'), prefix, delimiter)) : prefix
  const end = prefixEnd(prefix)
  const [exists, rows] = await Promise.all([
    db.read((q) => q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${bucket}`),
    db.read(
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
        SELECT w.object_key AS walked_key, ${q.unsafe(objectColumns)} FROM walk w
        LEFT JOIN bucket_objects o ON o.bucket_name = ${bucket}
          AND o.object_key = CASE WHEN position(${delimiter} IN substring(w.object_key FROM ${prefix.length + 1})) = 0 THEN w.object_key END
        WHERE w.object_key IS NOT NULL
        ORDER BY w.depth`.values(),
    ),
  ])
  if (exists.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${bucket} does not exist`)
  const objects: ReturnType<typeof objectFromValues>[] = []
  const commonPrefixes: string[] = []
  let last: Buffer | null = null
  let entries = 0
  for (const row of rows) {
    if (entries === maxKeys) break
    const key = row[0] as Buffer
    const common = commonPrefixOf(key, prefix, delimiter)
    if (common !== null) {
      commonPrefixes.push(decodeKey(common))
      last = common
    } else {
      objects.push(objectFromValues(row, 1))
      last = key
    }
    entries++
  }
  const isTruncated = rows.length > entries
  return { objects, commonPrefixes, isTruncated, nextContinuationToken: isTruncated ? encodeToken(seekAfter(last!, prefix, delimiter)) : null }
}
