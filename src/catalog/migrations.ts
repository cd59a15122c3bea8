// The catalog schema, as an ordered list of versioned migrations, and the runner
// that applies the missing ones at start-up (and for `blobfs catalog migrate`).
//
// Several processes may start at once against an empty database, and CockroachDB
// has no advisory locks to elect one of them. So every statement is idempotent on
// its own (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS), each runs in its own
// implicit transaction, and a version is recorded with INSERT ... ON CONFLICT DO
// NOTHING only after all its statements succeeded: processes racing through the
// same migration all end in the same schema. PostgreSQL may still reject one of two
// simultaneous CREATE ... IF NOT EXISTS with a duplicate error; the runner retries
// that statement, and the second time IF NOT EXISTS sees the winner's object.
//
// Migrations are append-only and never destructive: no DROP, no TRUNCATE, no
// DELETE, no type changes (the SQL audit test checks this list). A changed
// migration that was already applied somewhere is refused by its checksum.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { BlobfsError } from '../errors.ts'
import { httpHeadersBytesMax, keyLengthBytesMax, multipartPartsMax, shardsTotalMax, symlinkTargetBytesMax } from '../limits.ts'
import { sqlStateOf, toBlobfsError, type Db } from './db.ts'

export interface Migration {
  version: number
  name: string
  statements: readonly string[]
}

// Migration text is frozen once released (its checksum is recorded), so the bounds
// below are literals; these assertions tie them to the named limits they encode.
assert.equal(keyLengthBytesMax, 1024)
assert.equal(multipartPartsMax, 10000)
assert.equal(shardsTotalMax, 255)
assert.equal(symlinkTargetBytesMax, 4096)
assert.ok(httpHeadersBytesMax <= 64 * 1024) // a JSONB column, read with every object row

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'buckets, objects, parts and the chunk map',
    statements: [
      `CREATE TABLE IF NOT EXISTS storage_buckets (
        bucket_name VARCHAR(63) PRIMARY KEY,
        owner_id VARCHAR(128) NOT NULL,
        access_control_policy VARCHAR(32) NOT NULL DEFAULT 'PRIVATE' CHECK (access_control_policy IN ('PRIVATE', 'PUBLIC_READ')),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS storage_buckets_owner_idx ON storage_buckets (owner_id, bucket_name)`,
      `CREATE TABLE IF NOT EXISTS bucket_objects (
        object_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        bucket_name VARCHAR(63) NOT NULL REFERENCES storage_buckets (bucket_name),
        object_key BYTEA NOT NULL CHECK (octet_length(object_key) BETWEEN 1 AND 1024),
        size_bytes INT8 NOT NULL CHECK (size_bytes >= 0),
        etag VARCHAR(64) NOT NULL,
        content_type VARCHAR(256) NOT NULL DEFAULT 'application/octet-stream',
        erasure_coding_scheme VARCHAR(16) NOT NULL DEFAULT 'RS_8_4',
        lifecycle_state VARCHAR(16) NOT NULL DEFAULT 'STANDARD',
        inline_data BYTEA,
        parts_count INT4 CHECK (parts_count BETWEEN 1 AND 10000),
        checksum_crc32c INT8 CHECK (checksum_crc32c BETWEEN 0 AND 4294967295),
        user_metadata JSONB NOT NULL DEFAULT '{}',
        posix_mode INT8,
        posix_uid INT8,
        posix_gid INT8,
        mtime_ns INT8,
        ctime_ns INT8,
        symlink_target VARCHAR(4096),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        CONSTRAINT bucket_objects_key_unique UNIQUE (bucket_name, object_key),
        CONSTRAINT bucket_objects_inline_check CHECK ((erasure_coding_scheme = 'INLINE') = (inline_data IS NOT NULL)),
        CONSTRAINT bucket_objects_posix_check CHECK (
          (posix_mode IS NULL AND posix_uid IS NULL AND posix_gid IS NULL AND mtime_ns IS NULL AND ctime_ns IS NULL)
          OR (posix_mode IS NOT NULL AND posix_uid IS NOT NULL AND posix_gid IS NOT NULL AND mtime_ns IS NOT NULL AND ctime_ns IS NOT NULL))
      )`,
      `CREATE TABLE IF NOT EXISTS object_parts (
        object_id UUID NOT NULL REFERENCES bucket_objects (object_id),
        part_number INT4 NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
        offset_bytes INT8 NOT NULL CHECK (offset_bytes >= 0),
        size_bytes INT8 NOT NULL CHECK (size_bytes >= 0),
        stripe_size_bytes INT8 NOT NULL CHECK (stripe_size_bytes > 0),
        etag VARCHAR(64) NOT NULL,
        checksum_crc32c INT8 CHECK (checksum_crc32c BETWEEN 0 AND 4294967295),
        PRIMARY KEY (object_id, part_number)
      )`,
      `CREATE INDEX IF NOT EXISTS object_parts_offset_idx ON object_parts (object_id, offset_bytes)`,
      `CREATE TABLE IF NOT EXISTS object_chunks_allocation (
        object_id UUID NOT NULL,
        part_index INT4 NOT NULL CHECK (part_index BETWEEN 1 AND 10000),
        stripe_index INT4 NOT NULL CHECK (stripe_index >= 0),
        chunk_index INT4 NOT NULL CHECK (chunk_index >= 0 AND chunk_index < 255),
        chunk_id UUID NOT NULL,
        storage_node_id VARCHAR(64) NOT NULL,
        length_bytes INT8 NOT NULL CHECK (length_bytes >= 0),
        checksum_crc32c INT8 NOT NULL CHECK (checksum_crc32c BETWEEN 0 AND 4294967295),
        is_parity BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (object_id, part_index, stripe_index, chunk_index)
      )`,
      `CREATE UNIQUE INDEX IF NOT EXISTS object_chunks_allocation_chunk_id_key ON object_chunks_allocation (chunk_id)`,
      `CREATE INDEX IF NOT EXISTS object_chunks_allocation_node_idx ON object_chunks_allocation (storage_node_id, chunk_id)`,
    ],
  },
  {
    version: 2,
    name: 'multipart uploads',
    statements: [
      `CREATE TABLE IF NOT EXISTS multipart_uploads (
        upload_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        object_id UUID NOT NULL UNIQUE,
        bucket_name VARCHAR(63) NOT NULL REFERENCES storage_buckets (bucket_name),
        object_key BYTEA NOT NULL CHECK (octet_length(object_key) BETWEEN 1 AND 1024),
        erasure_coding_scheme VARCHAR(16) NOT NULL,
        content_type VARCHAR(256) NOT NULL DEFAULT 'application/octet-stream',
        user_metadata JSONB NOT NULL DEFAULT '{}',
        initiated_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS multipart_uploads_key_idx ON multipart_uploads (bucket_name, object_key, initiated_at, upload_id)`,
      `CREATE INDEX IF NOT EXISTS multipart_uploads_initiated_idx ON multipart_uploads (initiated_at)`,
      `CREATE TABLE IF NOT EXISTS multipart_parts (
        upload_id UUID NOT NULL REFERENCES multipart_uploads (upload_id),
        part_number INT4 NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
        size_bytes INT8 NOT NULL CHECK (size_bytes >= 0),
        stripe_size_bytes INT8 NOT NULL CHECK (stripe_size_bytes > 0),
        etag VARCHAR(64) NOT NULL,
        checksum_crc32c INT8 CHECK (checksum_crc32c BETWEEN 0 AND 4294967295),
        uploaded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (upload_id, part_number)
      )`,
    ],
  },
  {
    version: 3,
    name: 'storage nodes and access keys',
    statements: [
      `CREATE TABLE IF NOT EXISTS storage_nodes (
        node_id VARCHAR(64) PRIMARY KEY,
        address VARCHAR(256) NOT NULL,
        rack VARCHAR(64) NOT NULL,
        capacity_bytes INT8 NOT NULL CHECK (capacity_bytes >= 0),
        used_bytes INT8 NOT NULL CHECK (used_bytes >= 0),
        state VARCHAR(16) NOT NULL DEFAULT 'UP' CHECK (state IN ('UP', 'DOWN', 'READONLY', 'DRAINING')),
        last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
        registered_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE IF NOT EXISTS access_keys (
        access_key_id VARCHAR(128) PRIMARY KEY,
        secret_key VARCHAR(256) NOT NULL,
        owner_id VARCHAR(128) NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS access_keys_owner_idx ON access_keys (owner_id, access_key_id)`,
    ],
  },
  {
    version: 4,
    name: 'work queues: stripe repairs and chunk deletions',
    statements: [
      `CREATE TABLE IF NOT EXISTS repair_tasks (
        object_id UUID NOT NULL,
        part_index INT4 NOT NULL,
        stripe_index INT4 NOT NULL,
        reason VARCHAR(32) NOT NULL,
        detail VARCHAR(1024) NOT NULL DEFAULT '',
        generation INT8 NOT NULL DEFAULT 1,
        attempts INT4 NOT NULL DEFAULT 0,
        available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        lease_owner VARCHAR(128),
        lease_token UUID,
        last_error VARCHAR(1024),
        enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (object_id, part_index, stripe_index)
      )`,
      `CREATE INDEX IF NOT EXISTS repair_tasks_available_idx ON repair_tasks (available_at)`,
      `CREATE TABLE IF NOT EXISTS chunk_deletions (
        storage_node_id VARCHAR(64) NOT NULL,
        chunk_id UUID NOT NULL,
        object_id UUID,
        reason VARCHAR(32) NOT NULL,
        attempts INT4 NOT NULL DEFAULT 0,
        available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        lease_owner VARCHAR(128),
        lease_token UUID,
        last_error VARCHAR(1024),
        enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (storage_node_id, chunk_id)
      )`,
      `CREATE INDEX IF NOT EXISTS chunk_deletions_available_idx ON chunk_deletions (available_at)`,
      `CREATE INDEX IF NOT EXISTS chunk_deletions_node_available_idx ON chunk_deletions (storage_node_id, available_at)`,
    ],
  },
  {
    // S3 "system metadata" (Cache-Control, Content-Disposition, Content-Encoding,
    // Content-Language, Expires): stored with the object, returned on GET/HEAD. A
    // multipart session keeps them until completion. The constant default needs no
    // table rewrite on PostgreSQL 11+ or CockroachDB, and rows written by an older
    // blobfs (which does not name the column) get {}.
    version: 5,
    name: 'stored standard HTTP headers of objects and multipart uploads',
    statements: [
      `ALTER TABLE bucket_objects ADD COLUMN IF NOT EXISTS http_headers JSONB NOT NULL DEFAULT '{}'`,
      `ALTER TABLE multipart_uploads ADD COLUMN IF NOT EXISTS http_headers JSONB NOT NULL DEFAULT '{}'`,
    ],
  },
]

const migrationsTable = `CREATE TABLE IF NOT EXISTS blobfs_schema_migrations (
  version INT4 PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  checksum VARCHAR(64) NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

/** Duplicate-object errors PostgreSQL may raise when two sessions create the same thing at once. */
const creationRaceStates = new Set(['23505', '42P07', '42710', 'XX000', '40001'])
const ddlTriesMax = 8

export function migrationChecksum(migration: Migration): string {
  return createHash('sha256').update(migration.statements.join('\n;\n')).digest('hex')
}

export const latestSchemaVersion = migrations[migrations.length - 1]!.version

export interface MigrationResult {
  /** Versions this call applied (others may have been applied concurrently by other processes). */
  applied: number[]
  /** Highest version present in the database now. */
  current: number
  /** Versions recorded in the database that this build does not know (a newer blobfs ran here). */
  unknown: number[]
}

async function runDdl(db: Db, statement: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.sql.unsafe(statement)
      return
    } catch (error) {
      const state = sqlStateOf(error)
      if (state !== undefined && creationRaceStates.has(state) && attempt < ddlTriesMax) {
        await sleep(5 * attempt * Math.random())
        continue
      }
      throw toBlobfsError(error)
    }
  }
}

/**
 * Brings the schema up to the latest version. Safe to call from many processes at
 * once. `list` is for tests that build a database as an older blobfs left it.
 */
export async function migrate(db: Db, list: readonly Migration[] = migrations): Promise<MigrationResult> {
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.version <= list[i - 1]!.version) throw new Error('migration versions must increase')
  }
  await runDdl(db, migrationsTable)
  const recorded = new Map<number, string>()
  const rows = await db.read((sql) => sql<{ version: number; checksum: string }[]>`SELECT version, checksum FROM blobfs_schema_migrations`)
  for (const row of rows) recorded.set(row.version, row.checksum)

  const applied: number[] = []
  for (const migration of list) {
    const checksum = migrationChecksum(migration)
    const seen = recorded.get(migration.version)
    if (seen !== undefined) {
      if (seen !== checksum) {
        throw new BlobfsError('Internal', `catalog migration ${migration.version} (${migration.name}) differs from the one applied to this database; migrations must never be edited once released`)
      }
      continue
    }
    for (const statement of migration.statements) await runDdl(db, statement)
    const inserted = await db.tx(
      (sql) => sql`INSERT INTO blobfs_schema_migrations (version, name, checksum) VALUES (${migration.version}, ${migration.name}, ${checksum})
        ON CONFLICT (version) DO NOTHING RETURNING version`,
    )
    if (inserted.length === 1) applied.push(migration.version)
  }
  const known = new Set(list.map((m) => m.version))
  const unknown = [...recorded.keys()].filter((v) => !known.has(v)).sort((a, b) => a - b)
  const current = Math.max(list[list.length - 1]!.version, ...unknown)
  return { applied, current, unknown }
}

/** The versions recorded in the database (empty when the catalog was never migrated). */
export async function appliedVersions(db: Db): Promise<number[]> {
  try {
    const rows = await db.read((sql) => sql<{ version: number }[]>`SELECT version FROM blobfs_schema_migrations ORDER BY version`)
    return rows.map((r) => r.version)
  } catch (error) {
    if (sqlStateOf((error as BlobfsError).cause) === '42P01') return []
    throw error
  }
}
