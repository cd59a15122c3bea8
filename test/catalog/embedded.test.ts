// The embedded catalog: PGlite in <data-dir>/catalog, served over pglite-socket to
// many clients at once. Its scheduler must keep each client's unit of work whole
// (no interleaved protocol messages), roll back what a departed client left open,
// cut off a client that holds the session too long, and free the prepared
// statements of clients that leave. The data must survive a restart.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { Db } from '../../src/catalog/db.ts'
import { catalogUrlFile, runningCatalogUrl, startEmbeddedCatalog } from '../../src/catalog/embedded.ts'
import { syncFailedExitCode } from '../../src/catalog/pglite-durable.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { inlineObject, MiB, stripedObject } from './fixtures.ts'

const dirs: string[] = []
let template: PGlite
before(async () => {
  template = await PGlite.create()
})
after(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  await template.close()
})
/** An in-memory database to serve, cloned from a template (faster than creating one). */
const fresh = async () => (await template.clone()) as PGlite
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'blobfs-embedded-'))
  dirs.push(dir)
  return dir
}

test('the catalog lives in <data-dir>/catalog, survives a restart, and one process owns it', async () => {
  const dataDir = tempDir()
  const first = await startEmbeddedCatalog({ dataDir })
  try {
    assert.match(first.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/)
    assert.equal(readFileSync(catalogUrlFile(dataDir), 'utf8').trim(), first.url)
    assert.equal(runningCatalogUrl(dataDir), first.url)
    assert.ok(existsSync(join(dataDir, 'catalog')))
    await assert.rejects(startEmbeddedCatalog({ dataDir }), (e) => isBlobfsError(e, 'AlreadyExists'))
    const catalog = await openCatalog(first.url)
    await catalog.buckets.create({ name: 'kept', owner: 'o' })
    await catalog.objects.commit(stripedObject('kept', 'big', 20 * MiB))
    await catalog.objects.commit(inlineObject('kept', 'small', Buffer.from('tiny')))
    await catalog.close()
  } finally {
    await first.stop()
  }
  assert.equal(runningCatalogUrl(dataDir), null)
  assert.ok(!existsSync(catalogUrlFile(dataDir)))

  const second = await startEmbeddedCatalog({ dataDir })
  try {
    const catalog = await openCatalog(second.url)
    const listing = await catalog.objects.list('kept')
    assert.deepEqual(listing.objects.map((o) => [o.key, o.sizeBytes]), [['big', 20 * MiB], ['small', 4]])
    const found = await catalog.objects.lookup('kept', 'small')
    assert.deepEqual(found!.inlineData, Buffer.from('tiny'))
    await catalog.close()
  } finally {
    await second.stop()
  }
})

test('on disk, a commit is answered after an fsync of the WAL: PostgreSQL runs with fsync on, and the file system under it syncs', async () => {
  const dataDir = tempDir()
  const server = await startEmbeddedCatalog({ dataDir, migrate: false })
  const db = new Db({ url: server.url, connectionsMax: 1 })
  try {
    assert.deepEqual((await db.sql`SHOW fsync`).map((r) => r.fsync), ['on'])
    assert.deepEqual((await db.sql`SHOW wal_sync_method`).map((r) => r.wal_sync_method), ['fsync'])
    await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
    const before = server.stats().fileSyncs
    await db.sql`INSERT INTO t (id) VALUES (${1})`
    assert.equal(server.stats().fileSyncs - before, 1, 'the commit of one insert syncs the WAL once')
    await db.alone((sql) => sql`INSERT INTO t (id) VALUES (${2}) ON CONFLICT (id) DO NOTHING RETURNING id`)
    await db.tx(async (q) => q`INSERT INTO t (id) VALUES (${3})`)
    assert.equal(server.stats().fileSyncs - before, 3, 'and so does every other commit that wrote')
    await db.sql`SELECT id FROM t`
    await db.tx(async (q) => q`SELECT id FROM t`)
    assert.equal(server.stats().fileSyncs - before, 3, 'a read commits nothing to sync')
  } finally {
    await db.close()
    await server.stop()
  }
  // In memory there is nothing to sync.
  const memory = await startEmbeddedCatalog({ migrate: false })
  try {
    const inMemory = new Db({ url: memory.url, connectionsMax: 1 })
    await inMemory.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
    await inMemory.sql`INSERT INTO t (id) VALUES (${1})`
    await inMemory.close()
    assert.equal(memory.stats().fileSyncs, 0)
  } finally {
    await memory.stop()
  }
})

test('a sync the disk refuses ends the process before the commit is answered; the next start has what was answered before', async () => {
  const dataDir = tempDir()
  // A child serves the catalog, commits row 1, then has every fdatasync fail (a dying disk) and commits row 2.
  const script = `
    import fs from 'node:fs'
    import { startEmbeddedCatalog } from ${JSON.stringify(new URL('../../src/catalog/embedded.ts', import.meta.url).href)}
    import { Db } from ${JSON.stringify(new URL('../../src/catalog/db.ts', import.meta.url).href)}
    const server = await startEmbeddedCatalog({ dataDir: ${JSON.stringify(dataDir)}, migrate: false })
    const db = new Db({ url: server.url, connectionsMax: 1 })
    await db.sql\`CREATE TABLE t (id INT8 PRIMARY KEY)\`
    await db.sql\`INSERT INTO t (id) VALUES (1)\`
    console.log('answered 1')
    fs.fdatasyncSync = () => { throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }) }
    await db.sql\`INSERT INTO t (id) VALUES (2)\`
    console.log('answered 2')
  `
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(child.status, syncFailedExitCode, child.stderr)
  assert.deepEqual(child.stdout.trim().split('\n'), ['answered 1'], 'the commit whose sync failed was never answered')
  assert.match(child.stderr, /could not sync its files to disk/)
  const again = await startEmbeddedCatalog({ dataDir, migrate: false })
  const db = new Db({ url: again.url, connectionsMax: 1 })
  try {
    const ids = (await db.sql`SELECT id FROM t ORDER BY id`).map((r) => r.id)
    assert.ok(ids[0] === 1n && ids.length <= 2, `after recovery: ${ids.join(', ')}`)
  } finally {
    await db.close()
    await again.stop()
  }
})

test('a catalog on disk is checkpointed on a timer (PGlite runs no checkpointer): the WAL to replay after a crash stays short', async () => {
  const dataDir = tempDir()
  const server = await startEmbeddedCatalog({ dataDir, migrate: false, checkpointIntervalMs: 100 })
  const db = new Db({ url: server.url, connectionsMax: 1 })
  try {
    const redo = async () => (await db.sql`SELECT redo_lsn::TEXT AS lsn FROM pg_control_checkpoint()`)[0]!.lsn as string
    await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
    const before = await redo()
    const ran = server.stats().checkpoints
    for (let i = 1; i <= 50; i++) await db.sql`INSERT INTO t (id) VALUES (${i})`
    for (let i = 0; server.stats().checkpoints < ran + 2; i++) {
      assert.ok(i < 300, 'no checkpoint ran')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.notEqual(await redo(), before, 'the redo point moved past the inserts')
    assert.equal((await db.sql`SELECT count(*)::INT8 AS n FROM t`)[0]!.n, 50n)
  } finally {
    await db.close()
    await server.stop()
  }
})

test('a first start killed while the new catalog is being made: the next start works', async () => {
  const dataDir = tempDir()
  const catalogDir = join(dataDir, 'catalog')
  const script = `
    import { startEmbeddedCatalog } from ${JSON.stringify(new URL('../../src/catalog/embedded.ts', import.meta.url).href)}
    await startEmbeddedCatalog({ dataDir: ${JSON.stringify(dataDir)} })
    console.log('ready')
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    // Killed as soon as PGlite has written the new database's PG_VERSION (what it takes for a database).
    for (let i = 0; !existsSync(join(catalogDir, 'PG_VERSION')); i++) {
      assert.ok(i < 3000, 'the child never began making the catalog')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  } finally {
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
  }
  const server = await startEmbeddedCatalog({ dataDir })
  try {
    const catalog = await openCatalog(server.url)
    await catalog.buckets.create({ name: 'after-kill', owner: 'o' })
    assert.equal((await catalog.buckets.get('after-kill'))?.name, 'after-kill')
    await catalog.close()
  } finally {
    await server.stop()
  }
})

test('many clients at once: every unit of work stays whole and every answer is right', async () => {
  const server = await startEmbeddedCatalog({ migrate: false, database: await fresh() })
  // 14 processes' worth of pools, as in a 12-node cluster with a gateway and a mount.
  const clients = Array.from({ length: 14 }, () => postgres(server.url, { max: 4, onnotice: () => {} }))
  try {
    await clients[0]!`CREATE TABLE counter (id INT8 PRIMARY KEY, n INT8 NOT NULL)`
    await clients[0]!`INSERT INTO counter VALUES (1, 0)`
    let wrong = 0
    await Promise.all(
      Array.from({ length: 700 }, async (_, i) => {
        const sql = clients[i % clients.length]!
        switch (i % 5) {
          case 0: // a failing statement in its own implicit transaction
            await assert.rejects(sql`SELECT 1 / ${i - i}::int AS boom`)
            break
          case 1: // a transaction that fails halfway and rolls back
            await assert.rejects(
              sql.begin(async (tx) => {
                await tx`UPDATE counter SET n = n + 1000 WHERE id = 1`
                await tx`SELECT 1 / ${0}::int`
              }),
            )
            break
          case 2: // read-modify-write: lost updates would show in the final count
            await sql.begin('isolation level serializable', async (tx) => {
              const [row] = await tx`SELECT n FROM counter WHERE id = 1`
              await tx`UPDATE counter SET n = ${Number(row!.n) + 1} WHERE id = 1`
            })
            break
          default: {
            const [row] = i % 2 ? await sql`SELECT ${i}::int + 1 AS v, ${'s' + i}::text AS s` : await sql`SELECT ${'t' + i}::text AS s, ${i}::int * 2 AS v`
            if (row!.v !== (i % 2 ? i + 1 : i * 2) || row!.s !== (i % 2 ? 's' : 't') + i) wrong++
          }
        }
      }),
    )
    assert.equal(wrong, 0)
    const [final] = await clients[0]!`SELECT n FROM counter WHERE id = 1`
    assert.equal(Number(final!.n), 140, 'every increment applied once, every failed transaction rolled back')
    assert.equal(server.stats().stalledClients, 0)
  } finally {
    await Promise.all(clients.map((c) => c.end()))
    await server.stop()
  }
})

test('a client that leaves mid-transaction is rolled back; one that holds the session too long is cut off', async () => {
  const server = await startEmbeddedCatalog({ migrate: false, sessionHoldMsMax: 300, database: await fresh() })
  const sql = postgres(server.url, { max: 2, onnotice: () => {} })
  try {
    await sql`CREATE TABLE t (id INT8 PRIMARY KEY, v TEXT NOT NULL)`
    await sql`INSERT INTO t VALUES (1, 'original')`

    const leaving = postgres(server.url, { max: 1, onnotice: () => {} })
    let inside!: () => void
    const entered = new Promise<void>((resolve) => (inside = resolve))
    const abandoned = leaving
      .begin(async (tx) => {
        await tx`UPDATE t SET v = 'abandoned' WHERE id = 1`
        inside()
        await new Promise(() => {}) // never commits
      })
      .catch((error: Error) => error)
    await entered
    await leaving.end({ timeout: 0 })
    assert.ok((await abandoned) instanceof Error)
    assert.equal((await sql`SELECT v FROM t WHERE id = 1`)[0]!.v, 'original')

    const holding = postgres(server.url, { max: 1, onnotice: () => {} })
    const held = holding
      .begin(async (tx) => {
        await tx`UPDATE t SET v = 'held' WHERE id = 1`
        await new Promise((resolve) => setTimeout(resolve, 5_000)) // far beyond sessionHoldMsMax
        await tx`SELECT 1`
      })
      .catch((error: Error) => error)
    // This query waits for the holder, which the scheduler cuts off.
    assert.equal((await sql`SELECT v FROM t WHERE id = 1`)[0]!.v, 'original')
    assert.ok((await held) instanceof Error)
    assert.equal(server.stats().stalledClients, 1)
    await holding.end({ timeout: 0 })
  } finally {
    await sql.end()
    await server.stop()
  }
})

test('prepared statements of departed clients are freed', async () => {
  const server = await startEmbeddedCatalog({ migrate: false, database: await fresh() })
  const observer = postgres(server.url, { max: 1, onnotice: () => {} })
  const count = async () => Number((await observer`SELECT count(*) AS n FROM pg_prepared_statements`)[0]!.n)
  try {
    const base = await count()
    const visitors = Array.from({ length: 5 }, () => postgres(server.url, { max: 2, onnotice: () => {} }))
    await Promise.all(visitors.flatMap((v) => [v`SELECT ${1}::int AS a`, v`SELECT ${'x'}::text AS b`, v`SELECT ${2}::int AS a`]))
    assert.ok((await count()) > base)
    await Promise.all(visitors.map((v) => v.end()))
    // Closing happens when the session is next free; the observer's own query is that moment.
    await count()
    assert.equal(await count(), base)
  } finally {
    await observer.end()
    await server.stop()
  }
})

test('replies are written like PostgreSQL flushes them: a statement in one write, a pipelined transaction in one', async () => {
  const server = await startEmbeddedCatalog({ migrate: false, database: await fresh() })
  const db = new Db({ url: server.url, connectionsMax: 1 })
  const write = Socket.prototype.write
  let writes = 0
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (this.localPort === server.port) writes++
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof write
  try {
    await db.sql`CREATE TABLE t (id INT8 PRIMARY KEY)`
    // A client that pipelines a transaction: BEGIN, its statements and COMMIT sent
    // without waiting on an answer, on one connection.
    const pipelined = async (id: number) => {
      const q = await db.sql.reserve()
      try {
        return await Promise.all([q`BEGIN`, q`INSERT INTO t (id) VALUES (${id})`, q`SELECT id FROM t WHERE id = ${1}`, q`COMMIT`])
      } finally {
        q.release()
      }
    }
    // First uses prepare the statements on the one connection (a describe round trip each).
    await pipelined(1)
    writes = 0
    const rows = await db.sql`SELECT id FROM t WHERE id = ${1}`
    assert.deepEqual(rows.map((r) => r.id), [1n])
    assert.equal(writes, 1, 'Bind, Describe, Execute and Sync are answered in one write')
    writes = 0
    const [, inserted, selected, committed] = await pipelined(2)
    assert.equal(inserted.count, 1)
    assert.deepEqual(selected.map((r) => r.id), [1n])
    assert.equal(committed.command, 'COMMIT')
    assert.equal(writes, 1, 'BEGIN, two statements and COMMIT, sent together, are answered together')
    // A transaction that waits on each answer still gets each one.
    assert.deepEqual(await db.tx(async (q) => (await q`SELECT id FROM t ORDER BY id`).map((r) => r.id)), [1n, 2n])
  } finally {
    Socket.prototype.write = write
    await db.close()
    await server.stop()
  }
})
