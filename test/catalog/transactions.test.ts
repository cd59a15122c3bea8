// The transaction helper: SERIALIZABLE, retried on 40001 with a bound, and a typed
// error when the database cannot be reached. Conflicts are produced
// deterministically by interleaving two transactions by hand.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { ChunkMap } from '../../src/catalog/chunks.ts'
import { Db } from '../../src/catalog/db.ts'
import { BlobfsError, isBlobfsError } from '../../src/errors.ts'
import { startPostgres } from '../support/postgres-server.ts'
import { forEachBackend } from './harness.ts'

forEachBackend((backend) => {
  test('every transaction runs SERIALIZABLE', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      const level = await db.tx(async (tx) => (await tx`SHOW transaction_isolation`)[0]!.transaction_isolation)
      assert.equal(level, 'serializable')
    } finally {
      await db.close()
    }
  })

  test('an error thrown inside a transaction rolls it back and is not retried', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
      let runs = 0
      await assert.rejects(
        db.tx(async (tx) => {
          runs++
          await tx`INSERT INTO t (id) VALUES (1)`
          throw new Error('boom')
        }),
        (error) => isBlobfsError(error, 'Internal') && /boom/.test(error.message),
      )
      assert.equal(runs, 1)
      assert.equal((await db.sql`SELECT id FROM t`).length, 0)
    } finally {
      await db.close()
    }
  })

  test('alone sends one statement, committed on its own: no BEGIN or COMMIT, errors mapped like tx', async () => {
    const statements: string[] = []
    const db = new Db({ url: await backend.freshUrl(), onStatement: (text) => statements.push(text) })
    try {
      await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
      statements.length = 0
      const rows = await db.alone((sql) => sql`INSERT INTO t (id) VALUES (${1}) ON CONFLICT (id) DO NOTHING RETURNING id`)
      assert.deepEqual(rows.map((r) => r.id), [1n])
      assert.deepEqual(statements, ['INSERT INTO t (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING id'])
      // Committed: another connection sees it (the pool's second one, inside a transaction).
      assert.deepEqual(await db.tx(async (q) => (await q`SELECT id FROM t`).map((r) => r.id)), [1n])
      assert.equal((await db.alone((sql) => sql`INSERT INTO t (id) VALUES (${1}) ON CONFLICT (id) DO NOTHING RETURNING id`)).length, 0)
      await assert.rejects(db.alone((sql) => sql`INSERT INTO t (id) VALUES (${1})`), (e) => isBlobfsError(e, 'Internal') && /23505/.test(e.message))
      await assert.rejects(
        db.alone((sql) => sql`INSERT INTO t (id) VALUES (${1})`.catch(() => Promise.reject(new BlobfsError('PreconditionFailed', 'mapped by the caller')))),
        (e) => isBlobfsError(e, 'PreconditionFailed'),
      )
    } finally {
      await db.close()
    }
  })
})

// Serialization failures need two live sessions; PGlite has one, so these run on
// PostgreSQL only.
test('a transaction that hits 40001 is retried and then commits', async () => {
  const server = await startPostgres()
  const url = await server.createDatabase()
  const db = new Db({ url })
  const other = new Db({ url })
  try {
    await db.sql`CREATE TABLE counter (id INT8 PRIMARY KEY, n INT8 NOT NULL)`
    await db.sql`INSERT INTO counter VALUES (1, 0)`
    let attempts = 0
    await db.tx(async (tx) => {
      attempts++
      const [row] = await tx`SELECT n FROM counter WHERE id = 1`
      if (attempts === 1) {
        // Another transaction changes the row after we read it: our update must fail.
        await other.tx(async (o) => o`UPDATE counter SET n = n + 100 WHERE id = 1`)
      }
      await tx`UPDATE counter SET n = ${(row!.n as bigint) + 1n} WHERE id = 1`
    })
    assert.equal(attempts, 2)
    assert.equal(db.stats.retries, 1)
    const [final] = await db.sql`SELECT n FROM counter WHERE id = 1`
    assert.equal(final!.n, 101n, 'the retry saw the other transaction and lost no update')
  } finally {
    await db.close()
    await other.close()
    await server.stop()
  }
})

test('a transaction that conflicts on every try ends with SerializationFailure after the bound', async () => {
  const server = await startPostgres()
  const url = await server.createDatabase()
  const db = new Db({ url, txTriesMax: 3 })
  const other = new Db({ url })
  try {
    await db.sql`CREATE TABLE counter (id INT8 PRIMARY KEY, n INT8 NOT NULL)`
    await db.sql`INSERT INTO counter VALUES (1, 0)`
    let attempts = 0
    await assert.rejects(
      db.tx(async (tx) => {
        attempts++
        await tx`SELECT n FROM counter WHERE id = 1`
        await other.tx(async (o) => o`UPDATE counter SET n = n + 1 WHERE id = 1`)
        await tx`UPDATE counter SET n = 0 WHERE id = 1`
      }),
      (error) => isBlobfsError(error, 'SerializationFailure') && (error.cause as { code?: string }).code === '40001',
    )
    assert.equal(attempts, 3)
    const [final] = await db.sql`SELECT n FROM counter WHERE id = 1`
    assert.equal(final!.n, 3n, 'none of the failed attempts wrote anything')
  } finally {
    await db.close()
    await other.close()
    await server.stop()
  }
})

test('an unreachable catalog is CatalogUnavailable with the cause attached', async () => {
  // A port that was free a moment ago: nothing listens there.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 1))
    })
  })
  const db = new Db({ url: `postgres://blobfs@127.0.0.1:${port}/blobfs`, connectTimeoutMs: 2000 })
  try {
    await assert.rejects(
      db.tx(async (tx) => tx`SELECT 1`),
      (error) => isBlobfsError(error, 'CatalogUnavailable') && error.cause !== undefined && /unreachable/.test(error.message),
    )
    await assert.rejects(db.read((sql) => sql`SELECT 1`), (error) => isBlobfsError(error, 'CatalogUnavailable'))
    // Reads outside a transaction too (the repair worker's stripe read once let the driver's error through).
    const chunks = new ChunkMap(db)
    await assert.rejects(
      chunks.stripe({ objectId: '00000000-0000-4000-8000-000000000000', partNumber: 1, stripeIndex: 0 }),
      (error) => isBlobfsError(error, 'CatalogUnavailable'),
    )
  } finally {
    await db.close()
  }
})
