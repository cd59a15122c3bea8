import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Db } from '../../src/catalog/db.ts'
import { appliedVersions, latestSchemaVersion, migrate, migrations } from '../../src/catalog/migrations.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { forEachBackend } from './harness.ts'

const tables = [
  'storage_buckets',
  'bucket_objects',
  'object_parts',
  'object_chunks_allocation',
  'multipart_uploads',
  'multipart_parts',
  'storage_nodes',
  'access_keys',
  'repair_tasks',
  'chunk_deletions',
]

async function tablesIn(db: Db): Promise<string[]> {
  const rows = await db.sql<{ table_name: string }[]>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
  return rows.map((r) => r.table_name)
}

forEachBackend((backend) => {
  test('an empty database is migrated to the latest version, every table present', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      assert.deepEqual(await appliedVersions(db), [])
      const result = await migrate(db)
      assert.deepEqual(result.applied, migrations.map((m) => m.version))
      assert.equal(result.current, latestSchemaVersion)
      assert.deepEqual(await appliedVersions(db), migrations.map((m) => m.version))
      const present = await tablesIn(db)
      for (const table of tables) assert.ok(present.includes(table), `table ${table} exists`)
    } finally {
      await db.close()
    }
  })

  test('several processes migrating one empty database at once all succeed, each version recorded once', async () => {
    const url = await backend.freshUrl()
    const dbs = Array.from({ length: 6 }, () => new Db({ url, connectionsMax: 2 }))
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)))
      const appliedAll = results.flatMap((r) => r.applied).sort((a, b) => a - b)
      assert.deepEqual(appliedAll, migrations.map((m) => m.version), 'every version applied by exactly one process')
      for (const result of results) assert.equal(result.current, latestSchemaVersion)
      const counts = await dbs[0]!.sql<{ version: number; n: bigint }[]>`
        SELECT version, count(*) AS n FROM blobfs_schema_migrations GROUP BY version ORDER BY version`
      assert.deepEqual(counts.map((r) => [r.version, Number(r.n)]), migrations.map((m) => [m.version, 1]))
    } finally {
      await Promise.all(dbs.map((db) => db.close()))
    }
  })

  test('migrating again changes nothing and keeps existing rows', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      await migrate(db)
      await db.sql`INSERT INTO storage_buckets (bucket_name, owner_id) VALUES ('kept', 'alice')`
      const again = await migrate(db)
      assert.deepEqual(again.applied, [])
      const rows = await db.sql`SELECT owner_id FROM storage_buckets WHERE bucket_name = 'kept'`
      assert.equal(rows[0]!.owner_id, 'alice')
    } finally {
      await db.close()
    }
  })

  test('a database an older blobfs left (schema 4, with rows) is brought to the latest version, every row kept', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      const old = migrations.filter((m) => m.version <= 4)
      assert.deepEqual((await migrate(db, old)).applied, [1, 2, 3, 4])
      // Rows as the older blobfs writes them: it does not know the newer columns.
      await db.sql`INSERT INTO storage_buckets (bucket_name, owner_id) VALUES ('old-bucket', 'alice')`
      await db.sql`INSERT INTO bucket_objects (object_id, bucket_name, object_key, size_bytes, etag, erasure_coding_scheme, inline_data, user_metadata)
        VALUES (gen_random_uuid(), 'old-bucket', ${Buffer.from('k')}, 1, '"e"', 'INLINE', ${Buffer.from('x')}, '{"a":"b"}')`
      await db.sql`INSERT INTO multipart_uploads (object_id, bucket_name, object_key, erasure_coding_scheme) VALUES (gen_random_uuid(), 'old-bucket', ${Buffer.from('m')}, 'RS_8_4')`
      const result = await migrate(db)
      assert.deepEqual(result.applied, migrations.filter((m) => m.version > 4).map((m) => m.version))
      assert.equal(result.current, latestSchemaVersion)
      const [object] = await db.sql`SELECT user_metadata, http_headers, inline_data FROM bucket_objects WHERE bucket_name = 'old-bucket'`
      assert.deepEqual([object!.user_metadata, object!.http_headers, Buffer.from(object!.inline_data).toString()], [{ a: 'b' }, {}, 'x'])
      const [upload] = await db.sql`SELECT http_headers FROM multipart_uploads WHERE bucket_name = 'old-bucket'`
      assert.deepEqual(upload!.http_headers, {})
      // An older process still running during a rolling upgrade keeps writing without the new column.
      await db.sql`INSERT INTO bucket_objects (object_id, bucket_name, object_key, size_bytes, etag, erasure_coding_scheme, inline_data)
        VALUES (gen_random_uuid(), 'old-bucket', ${Buffer.from('k2')}, 1, '"e"', 'INLINE', ${Buffer.from('y')})`
    } finally {
      await db.close()
    }
  })

  test('a migration edited after it was applied is refused', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      await migrate(db)
      await db.sql`UPDATE blobfs_schema_migrations SET checksum = 'edited' WHERE version = 1`
      await assert.rejects(migrate(db), (error) => isBlobfsError(error, 'Internal') && /differs/.test(error.message))
    } finally {
      await db.close()
    }
  })

  test('versions written by a newer blobfs are reported, not undone', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      await migrate(db)
      await db.sql`INSERT INTO blobfs_schema_migrations (version, name, checksum) VALUES (9999, 'from the future', 'x')`
      const result = await migrate(db)
      assert.deepEqual(result.unknown, [9999])
      assert.equal(result.current, 9999)
    } finally {
      await db.close()
    }
  })
})
