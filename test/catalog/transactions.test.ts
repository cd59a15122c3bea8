// The transaction helper: SERIALIZABLE, retried on 40001 with a bound, and a typed
// error when the database cannot be reached. Conflicts are produced
// deterministically by interleaving two transactions by hand.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { ChunkMap } from '../../src/catalog/chunks.ts'
import { Db, type TxSql } from '../../src/catalog/db.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { startPostgres } from '../support/postgres-server.ts'
import { forEachBackend } from './harness.ts'
import { replyHoldingProxy } from './reply-hold.ts'

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

  test('pipelinedTx sends BEGIN, its statements and COMMIT in one flight, without waiting on an answer', async () => {
    const proxy = await replyHoldingProxy(await backend.freshUrl())
    const db = new Db({ url: proxy.url, connectionsMax: 1 })
    try {
      await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
      const insert = (q: TxSql, id: number) => q`INSERT INTO t (id) VALUES (${id}) RETURNING id`
      // A statement's first use on a connection waits for its description; later ones do not.
      await db.pipelinedTx((q) => [insert(q, 1)])
      proxy.hold()
      const pending = db.pipelinedTx((q) => [insert(q, 2), q`SELECT count(*)::INT8 AS n FROM t`])
      // The server answered a COMMIT while every answer was held: the client sent it unprompted.
      await proxy.waitForHeld((text) => text.includes('COMMIT\0'))
      proxy.release()
      const [inserted, counted] = await pending
      assert.equal(inserted!.status, 'fulfilled')
      assert.equal(counted!.status === 'fulfilled' && counted!.value[0]!.n, 2n)
      assert.deepEqual((await db.sql`SELECT id FROM t ORDER BY id`).map((r) => r.id), [1n, 2n])
    } finally {
      await db.close()
      await proxy.close()
    }
  })

  test('pipelinedTx: a failing statement rolls the whole transaction back and comes back settled', async () => {
    const db = new Db({ url: await backend.freshUrl() })
    try {
      await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
      const [first, second] = await db.pipelinedTx((q) => [q`INSERT INTO t (id) VALUES (1)`, q`INSERT INTO t (id) VALUES (1)`])
      assert.equal(first!.status, 'fulfilled')
      assert.equal(second!.status, 'rejected')
      assert.equal((await db.sql`SELECT id FROM t`).length, 0, 'the first insert was rolled back with the second')
      const [again] = await db.pipelinedTx((q) => [q`INSERT INTO t (id) VALUES (1) RETURNING id`])
      assert.equal(again!.status === 'fulfilled' && again!.value[0]!.id, 1n, 'the connection is usable after the rollback')
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
