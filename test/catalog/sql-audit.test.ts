// The SQL audit: every statement blobfs sends stays inside the CockroachDB rules.
//
// Statements are recorded from the driver (postgres.js debug hook) while a
// workload calls every public method of every catalog module — the test fails if
// a method exists that the workload did not call, so new queries cannot slip past
// it — on PostgreSQL and on PGlite, from an empty database (so the migrations are
// recorded too). Each recorded statement is checked by src/catalog/sql-rules.ts,
// whose own rules are tested here against known-bad SQL. Finally, no module
// outside src/catalog talks to a database at all.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { openCatalog, type Catalog } from '../../src/catalog/catalog.ts'
import { migrations } from '../../src/catalog/migrations.ts'
import { migrationRules, normalizeSql, sqlRules, sqlViolations } from '../../src/catalog/sql-rules.ts'
import { bucketName, chunkIdsOf, inlineObject, MiB, partInput, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

const modules = ['buckets', 'objects', 'multipart', 'nodes', 'accessKeys', 'repairs', 'deletions', 'chunks'] as const

function publicMethods(object: object): string[] {
  return Object.getOwnPropertyNames(Object.getPrototypeOf(object)).filter(
    (name) => name !== 'constructor' && typeof (object as Record<string, unknown>)[name] === 'function',
  )
}

/** Wraps each module of `catalog` so that every method called is recorded as "module.method". */
function recordCalls(catalog: Catalog): Set<string> {
  const called = new Set<string>()
  for (const name of modules) {
    const target = catalog[name] as object
    const proxy = new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          called.add(`${name}.${String(property)}`)
          return value.apply(object, args)
        }
      },
    })
    Object.defineProperty(catalog, name, { value: proxy })
  }
  return called
}

/** Calls every public catalog method at least once, with valid input. */
async function workload(catalog: Catalog): Promise<void> {
  const bucket = bucketName('audit')
  await catalog.buckets.create({ name: bucket, owner: 'auditor' })
  await catalog.buckets.get(bucket)
  await catalog.buckets.list({ owner: 'auditor' })
  await catalog.buckets.list()
  await catalog.buckets.setPolicy(bucket, 'PUBLIC_READ')

  const big = stripedObject(bucket, 'dir/big', 40 * MiB, { shape: { missing: [11] } })
  await catalog.objects.commit(big)
  await catalog.objects.commit({ ...inlineObject(bucket, 'dir/small'), httpHeaders: { 'cache-control': 'no-cache' } })
  await catalog.objects.commit({ ...stripedObject(bucket, 'dir/big', 3 * MiB), ifMatchObjectId: big.objectId })
  await catalog.objects.get(bucket, 'dir/small')
  const found = await catalog.objects.lookup(bucket, 'dir/big', { offsetBytes: 0, lengthBytes: MiB })
  await catalog.objects.stripes(found!.object.objectId, { offsetBytes: 0, lengthBytes: MiB })
  await catalog.objects.setAttributes(bucket, 'dir/small', { posix: { mode: 0o100644, uid: 1, gid: 1, mtimeNs: 1n, ctimeNs: 1n }, userMetadata: { a: 'b' }, httpHeaders: {}, contentType: 'text/plain' })
  await catalog.objects.list(bucket, { prefix: 'dir/', delimiter: '/', maxKeys: 1 })
  await catalog.objects.list(bucket, { startAfter: 'a' })
  await catalog.objects.rename(bucket, 'dir/small', 'dir/renamed', { ctimeNs: 2n })
  await catalog.objects.renamePrefix(bucket, 'dir/', 'moved/', { overwrite: true, ctimeNs: 3n })
  await catalog.objects.usage(bucket)
  await catalog.objects.usage()

  const upload = await catalog.multipart.create({ bucket, key: 'mp', userMetadata: { x: 'y' }, httpHeaders: { 'content-language': 'en' } })
  await catalog.multipart.get(upload.uploadId)
  const p1 = partInput(1, 5 * MiB)
  await catalog.multipart.recordPart(upload.uploadId, p1)
  await catalog.multipart.recordPart(upload.uploadId, partInput(1, 5 * MiB)) // a re-upload of part 1
  await catalog.multipart.recordPart(upload.uploadId, partInput(2, MiB))
  await catalog.multipart.recordPart(upload.uploadId, partInput(3, MiB))
  await catalog.multipart.listParts(upload.uploadId, { maxParts: 1 })
  await catalog.multipart.list(bucket, { prefix: 'm', keyMarker: 'a', uploadIdMarker: upload.uploadId })
  await catalog.multipart.list(bucket, { keyMarker: 'a' })
  await catalog.multipart.findIdle({ idleMs: 0, limit: 10 })
  await catalog.multipart.complete({ uploadId: upload.uploadId, bucket, key: 'mp', parts: [{ partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: '"etag-2"' }] })
  const aborted = await catalog.multipart.create({ bucket, key: 'gone' })
  await catalog.multipart.recordPart(aborted.uploadId, partInput(1, MiB))
  await catalog.multipart.abort(aborted.uploadId)
  const idle = await catalog.multipart.create({ bucket, key: 'idle' })
  await catalog.multipart.recordPart(idle.uploadId, partInput(1, MiB))
  await catalog.multipart.abortIdle(idle.uploadId, 0)
  await catalog.multipart.sessionStats({ idleMs: 60_000, countMax: 100 })

  const node = `audit-node-${randomUUID()}`
  await catalog.nodes.heartbeat({ id: node, address: 'http://127.0.0.1:9', rack: 'r1', capacityBytes: 10, usedBytes: 1 })
  await catalog.nodes.get(node)
  await catalog.nodes.list()
  await catalog.nodes.listWritable({ heartbeatWithinMs: 60_000 })
  await catalog.nodes.markStaleDown({ heartbeatWithinMs: 3_600_000 })
  await catalog.nodes.setState(node, 'READONLY')
  await catalog.nodes.markDown(node)

  const key = await catalog.accessKeys.create({ owner: 'auditor' })
  await catalog.accessKeys.get(key.accessKeyId)
  await catalog.accessKeys.list({ owner: 'auditor' })
  await catalog.accessKeys.delete(key.accessKeyId)

  const moved = (await catalog.objects.lookup(bucket, 'mp', { offsetBytes: 0, lengthBytes: 1 }))!
  const stripe = { objectId: moved.object.objectId, partNumber: 1, stripeIndex: 0 }
  await catalog.repairs.enqueue([{ ...stripe, reason: 'CORRUPT' }])
  await catalog.repairs.enqueueChunks([moved.stripes[0]!.chunks[0]!.chunkId], 'CORRUPT')
  await catalog.repairs.enqueueNode('node-3', { limit: 10 })
  const [task] = await catalog.repairs.claim({ owner: 'auditor', leaseMs: 60_000, limit: 100 })
  await catalog.repairs.extend(task!, 60_000)
  await catalog.repairs.release(task!, { retryAfterMs: 0, error: 'audit' })
  const [again] = await catalog.repairs.claim({ owner: 'auditor', leaseMs: 60_000, limit: 1 })
  await catalog.repairs.complete(again!)
  await catalog.repairs.stats()
  await catalog.repairs.failing({ limit: 5 })
  await catalog.repairs.dropUnneeded({ limit: 10 })

  const state = await catalog.chunks.stripe(stripe)
  await catalog.chunks.replace(stripe, [{ chunkIndex: 0, chunkId: randomUUID(), nodeId: 'fresh', lengthBytes: state!.shardSizeBytes, root: 1 }])
  const planned = new Map(state!.chunks.map((c) => [c.chunkIndex, c.chunkId] as const)) // stale now: a conflict
  await catalog.chunks.replace(stripe, [{ chunkIndex: 2, chunkId: randomUUID(), nodeId: 'fresh', lengthBytes: state!.shardSizeBytes, root: 1 }], { ifChunkIds: planned })
  await catalog.chunks.onNode('node-1', { limit: 5 })
  await catalog.chunks.referenced(chunkIdsOf(big))
  await catalog.chunks.referencedOn('node-1', chunkIdsOf(big))
  await catalog.chunks.countOnNode('node-1')
  await catalog.chunks.degradedSummary({ unavailableNodeIds: ['node-2'], rowsScanMax: 100 })
  await catalog.chunks.degradedSummary({ unavailableNodeIds: [], rowsScanMax: 100 })
  const current = (await catalog.chunks.stripe(stripe))!.chunks[1]!
  await catalog.chunks.relocate(stripe, { chunkIndex: 1, fromChunkId: current.chunkId, to: { ...current, chunkId: randomUUID(), nodeId: 'moved' } })
  await catalog.chunks.relocate(stripe, { chunkIndex: 1, fromChunkId: current.chunkId, to: { ...current, chunkId: randomUUID(), nodeId: 'moved' } }) // changed meanwhile

  await catalog.deletions.enqueue([{ nodeId: 'node-1', chunkId: randomUUID() }], { delayMs: 0 })
  const deletions = await catalog.deletions.claim({ owner: 'auditor', leaseMs: 60_000, limit: 3, nodeId: 'node-1' })
  await catalog.deletions.claim({ owner: 'auditor', leaseMs: 60_000, limit: 3 })
  await catalog.deletions.extend(deletions[0]!, 60_000)
  await catalog.deletions.release(deletions[0]!, { retryAfterMs: 0, error: 'audit' })
  const [deletion] = await catalog.deletions.claim({ owner: 'auditor', leaseMs: 60_000, limit: 1, nodeId: 'node-1' })
  await catalog.deletions.complete(deletion!)
  await catalog.deletions.enqueue([{ nodeId: 'node-1', chunkId: randomUUID() }, { nodeId: 'node-1', chunkId: randomUUID() }], { delayMs: 0 })
  await catalog.deletions.completeMany(await catalog.deletions.claim({ owner: 'auditor', leaseMs: 60_000, limit: 5, nodeId: 'node-1' }))
  await catalog.deletions.stats({ nodeId: 'node-1' })
  await catalog.deletions.stats()

  for (const object of (await catalog.objects.list(bucket)).objects) await catalog.objects.delete(bucket, object.key)
  await catalog.buckets.delete(bucket)
}

test('the rule checker catches each construct outside the CockroachDB rules, and only those', () => {
  const bad: [string, string][] = [
    ['CREATE TABLE t (id SERIAL PRIMARY KEY)', 'no SERIAL'],
    ['CREATE TABLE t (id bigserial)', 'no SERIAL'],
    ['CREATE SEQUENCE s', 'no sequences'],
    ["SELECT nextval('s')", 'no sequences'],
    ['CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()', 'no triggers'],
    ['CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql', 'no stored procedures'],
    ['DO $$ BEGIN PERFORM 1; END $$', 'no stored procedures'],
    ['CALL refresh()', 'no stored procedures'],
    ['LISTEN chunk_gc', 'no LISTEN/NOTIFY'],
    ["NOTIFY chunk_gc, 'x'", 'no LISTEN/NOTIFY'],
    ["SELECT pg_notify('c', 'x')", 'no LISTEN/NOTIFY'],
    ['SELECT pg_advisory_lock(42)', 'no advisory locks'],
    ['SELECT pg_try_advisory_xact_lock(1)', 'no advisory locks'],
    ['SELECT * FROM bucket_objects ORDER BY object_key LIMIT 10 OFFSET 1000', 'no OFFSET'],
    ['LOCK TABLE bucket_objects IN EXCLUSIVE MODE', 'no LOCK TABLE'],
    ['begin', 'SERIALIZABLE only'],
    ['BEGIN ISOLATION LEVEL READ COMMITTED', 'SERIALIZABLE only'],
    ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'SERIALIZABLE only'],
    ['SELECT ctid FROM bucket_objects', 'no PostgreSQL system columns'],
    ['CREATE TEMP TABLE scratch (x int)', 'no temporary tables'],
  ]
  for (const [statement, rule] of bad) assert.deepEqual(sqlViolations(statement), [rule], statement)
  const good = [
    'begin isolation level serializable',
    "SELECT offset_bytes, 'LIMIT 1 OFFSET 2' AS s, \"offset\" FROM object_parts -- OFFSET in a comment",
    '/* LISTEN */ SELECT $1::bytea, $2 FROM t WHERE a = $3',
    'SELECT b.oid, b.typarray FROM pg_catalog.pg_type a LEFT JOIN pg_catalog.pg_type b ON b.oid = a.typelem',
    'SELECT object_id FROM bucket_objects WHERE bucket_name = $1 FOR UPDATE',
    'INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING',
    'commit',
  ]
  for (const statement of good) assert.deepEqual(sqlViolations(statement), [], statement)
  assert.equal(normalizeSql(`select 'it''s', "Col" -- x`), "SELECT '', IDENT  ")
  assert.deepEqual(sqlViolations('DROP TABLE storage_buckets', migrationRules), ['migrations are not destructive'])
  assert.deepEqual(sqlViolations('CREATE TABLE t (x int)', migrationRules), ['migrations are idempotent'])
  assert.deepEqual(sqlViolations('CREATE INDEX IF NOT EXISTS i ON t (x)', migrationRules), [])
})

test('every migration statement follows the rules, is idempotent and destroys nothing', () => {
  for (const migration of migrations) {
    for (const statement of migration.statements) {
      assert.deepEqual(sqlViolations(statement, [...sqlRules, ...migrationRules]), [], `migration ${migration.version}: ${statement.slice(0, 80)}`)
    }
  }
})

test('no module outside src/catalog reaches a database directly', () => {
  const root = join(import.meta.dirname, '..', '..', 'src')
  const offenders: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(ts|mjs|js)$/.test(entry) && !relative(root, path).startsWith('catalog')) {
        if (/from ['"](postgres|@electric-sql\/pglite[^'"]*)['"]/.test(readFileSync(path, 'utf8'))) offenders.push(relative(root, path))
      }
    }
  }
  walk(root)
  assert.deepEqual(offenders, [])
})

forEachBackend((backend) => {
  test('every statement sent by every catalog method follows the CockroachDB rules', async () => {
    const statements = new Set<string>()
    const catalog = await openCatalog(await backend.freshUrl(), { onStatement: (s) => statements.add(s) })
    try {
      const called = recordCalls(catalog)
      await workload(catalog)
      const all = modules.flatMap((name) => publicMethods(catalog[name]).map((method) => `${name}.${method}`))
      assert.deepEqual(all.filter((m) => !called.has(m)), [], 'every public catalog method is exercised by the audit workload')
    } finally {
      await catalog.close()
    }
    const violations = [...statements].flatMap((s) => sqlViolations(s).map((rule) => `${rule}: ${s.replace(/\s+/g, ' ').slice(0, 160)}`))
    assert.deepEqual(violations, [])
    assert.ok([...statements].some((s) => /^begin isolation level serializable$/i.test(s.trim())), 'transactions were recorded')
    assert.ok([...statements].some((s) => /CREATE TABLE IF NOT EXISTS bucket_objects/.test(s)), 'migrations were recorded')
    assert.ok(statements.size > 80, `${statements.size} distinct statements recorded`)
  })
})
