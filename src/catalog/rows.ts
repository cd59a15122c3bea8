// Column lists and row mappers shared by the catalog modules: one place decides how
// a bucket_objects row becomes an ObjectRecord.
import type { Row } from 'postgres'
import { decodeKey } from './keys.ts'
import { toNumber } from './db.ts'
import type { BucketPolicy, BucketRecord, ListedObject, ObjectRecord, PosixRecord } from './types.ts'

const objectColumnNames = [
  'object_id', 'bucket_name', 'object_key', 'size_bytes', 'etag', 'content_type', 'erasure_coding_scheme', 'lifecycle_state',
  'parts_count', 'checksum_crc32c', 'user_metadata', 'http_headers', 'posix_mode', 'posix_uid', 'posix_gid', 'mtime_ns',
  'ctime_ns', 'symlink_target', 'created_at', 'updated_at',
] as const
type ObjectColumn = (typeof objectColumnNames)[number]

/** Every bucket_objects column but inline_data, from alias `o`. */
export const objectColumns = objectColumnNames.map((name) => `o.${name}`).join(', ')

/** An ObjectRecord from a column getter (by name, or by position through a name table). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function objectFrom(column: (name: ObjectColumn) => any): ObjectRecord {
  const posixMode = column('posix_mode')
  const posix: PosixRecord | null =
    posixMode === null || posixMode === undefined
      ? null
      : {
          mode: toNumber(posixMode),
          uid: toNumber(column('posix_uid')),
          gid: toNumber(column('posix_gid')),
          mtimeNs: column('mtime_ns') as bigint,
          ctimeNs: column('ctime_ns') as bigint,
        }
  const crc = column('checksum_crc32c')
  return {
    bucket: column('bucket_name'),
    key: decodeKey(column('object_key')),
    objectId: column('object_id'),
    sizeBytes: toNumber(column('size_bytes')),
    etag: column('etag'),
    contentType: column('content_type'),
    userMetadata: column('user_metadata') ?? {},
    httpHeaders: column('http_headers') ?? {},
    scheme: column('erasure_coding_scheme'),
    lifecycleState: column('lifecycle_state'),
    checksumCrc32c: crc === null ? null : toNumber(crc),
    partsCount: column('parts_count'),
    posix,
    symlinkTarget: column('symlink_target'),
    lastModified: column('created_at'),
    updatedAt: column('updated_at'),
  }
}

/** A row fetched by name (objectColumns among its columns). */
export function objectFromRow(row: Row): ObjectRecord {
  return objectFrom((name) => row[name])
}

/**
 * The columns a listing returns for each key (see ListedObject), with their SQL types:
 * the listing carries them through a recursive CTE whose first row holds typed NULLs.
 */
export const listedColumnTypes = Object.freeze({
  object_id: 'UUID',
  size_bytes: 'INT8',
  etag: 'VARCHAR',
  created_at: 'TIMESTAMPTZ',
  posix_mode: 'INT8',
  posix_uid: 'INT8',
  posix_gid: 'INT8',
  mtime_ns: 'INT8',
  ctime_ns: 'INT8',
  symlink_target: 'VARCHAR',
} satisfies Partial<Record<ObjectColumn, string>>)
type ListedColumn = keyof typeof listedColumnTypes
export const listedColumnNames = Object.freeze(Object.keys(listedColumnTypes) as ListedColumn[])
const listedColumnIndex = Object.freeze(Object.fromEntries(listedColumnNames.map((name, i) => [name, i])) as Record<ListedColumn, number>)

/** A listed key's row fetched with `.values()`: listedColumnNames starting at index `at`. */
export function listedObjectFromValues(key: string, values: readonly unknown[], at: number): ListedObject {
  // Indices, not a column-lookup closure: this runs for every key of every page.
  const posixMode = values[at + listedColumnIndex.posix_mode] as bigint | null
  return {
    key,
    objectId: values[at + listedColumnIndex.object_id] as string,
    sizeBytes: toNumber(values[at + listedColumnIndex.size_bytes] as bigint),
    etag: values[at + listedColumnIndex.etag] as string,
    lastModified: values[at + listedColumnIndex.created_at] as Date,
    posix:
      posixMode === null
        ? null
        : {
            mode: toNumber(posixMode),
            uid: toNumber(values[at + listedColumnIndex.posix_uid] as bigint),
            gid: toNumber(values[at + listedColumnIndex.posix_gid] as bigint),
            mtimeNs: values[at + listedColumnIndex.mtime_ns] as bigint,
            ctimeNs: values[at + listedColumnIndex.ctime_ns] as bigint,
          },
    symlinkTarget: values[at + listedColumnIndex.symlink_target] as string | null,
  }
}

export const bucketColumns = 'bucket_name, owner_id, access_control_policy, created_at'

export function bucketFromRow(row: Row): BucketRecord {
  return { name: row.bucket_name, owner: row.owner_id, policy: row.access_control_policy as BucketPolicy, createdAt: row.created_at }
}

/** Splits rows into batches so one INSERT stays under the bound-parameter limit. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
