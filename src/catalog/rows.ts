// Column lists and row mappers shared by the catalog modules: one place decides how
// a bucket_objects row becomes an ObjectRecord.
import type { Row } from 'postgres'
import { decodeKey } from './keys.ts'
import { toNumber } from './db.ts'
import type { BucketPolicy, BucketRecord, ObjectRecord, PosixRecord } from './types.ts'

/** Every bucket_objects column but inline_data, from alias `o`. */
export const objectColumns = `o.object_id, o.bucket_name, o.object_key, o.size_bytes, o.etag, o.content_type,
  o.erasure_coding_scheme, o.lifecycle_state, o.parts_count, o.checksum_crc32c, o.user_metadata, o.http_headers,
  o.posix_mode, o.posix_uid, o.posix_gid, o.mtime_ns, o.ctime_ns, o.symlink_target, o.created_at, o.updated_at`

function posixOf(row: Row): PosixRecord | null {
  if (row.posix_mode === null || row.posix_mode === undefined) return null
  return {
    mode: toNumber(row.posix_mode),
    uid: toNumber(row.posix_uid),
    gid: toNumber(row.posix_gid),
    mtimeNs: row.mtime_ns as bigint,
    ctimeNs: row.ctime_ns as bigint,
  }
}

export function objectFromRow(row: Row): ObjectRecord {
  return {
    bucket: row.bucket_name,
    key: decodeKey(row.object_key),
    objectId: row.object_id,
    sizeBytes: toNumber(row.size_bytes),
    etag: row.etag,
    contentType: row.content_type,
    userMetadata: row.user_metadata ?? {},
    httpHeaders: row.http_headers ?? {},
    scheme: row.erasure_coding_scheme,
    lifecycleState: row.lifecycle_state,
    checksumCrc32c: row.checksum_crc32c === null ? null : toNumber(row.checksum_crc32c),
    partsCount: row.parts_count,
    posix: posixOf(row),
    symlinkTarget: row.symlink_target,
    lastModified: row.created_at,
    updatedAt: row.updated_at,
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
