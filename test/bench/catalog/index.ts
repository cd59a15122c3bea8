// Catalog benchmark (issue 3), on a throwaway PostgreSQL server and on the embedded
// PGlite catalog, in one run:
//   - object commits per second, 8 concurrent writers, 16 MiB objects (one RS(8,4)
//     stripe: 12 chunk rows each), each to a new key;
//   - point lookups per second (object row + its 12 chunk rows for a range), 8 readers;
//   - one 1,000-entry page with a delimiter from a bucket of 1,000,000 keys (100,000
//     with --quick): the first page (1,000 common prefixes, each hiding 500 keys) and
//     the last page (1,000 keys), median of several runs each.
// The bucket is bulk-loaded with INSERT ... SELECT generate_series (benchmark-only SQL).
//
//   npm run bench -- catalog [--quick] [--json]
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { PGlite } from '@electric-sql/pglite'
import { openCatalog, type Catalog } from '../../../src/catalog/catalog.ts'
import { startEmbeddedCatalog } from '../../../src/catalog/embedded.ts'
import type { CommitObjectInput } from '../../../src/catalog/types.ts'
import { startPostgres } from '../../support/postgres-server.ts'
import { emitJson, median, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const MiB = 1024 * 1024
const writers = 8
const readers = 8
const commitsPerWriter = options.quick ? 60 : 250
const lookupsPerReader = options.quick ? 300 : 1500
const bucketKeys = options.quick ? 100_000 : 1_000_000
const childrenPerDirectory = 500
const directories = options.quick ? 100 : 1000
const files = bucketKeys - directories * childrenPerDirectory
const pageRuns = options.quick ? 7 : 15
assert.ok(files > 1000)

function object16MiB(bucket: string, key: string): CommitObjectInput {
  const shard = 2 * MiB
  return {
    bucket,
    key,
    objectId: randomUUID(),
    sizeBytes: 16 * MiB,
    etag: `"${randomUUID().replaceAll('-', '')}"`,
    content: {
      scheme: 'RS_8_4',
      parts: [
        {
          partNumber: 1,
          sizeBytes: 16 * MiB,
          stripeSizeBytes: 16 * MiB,
          etag: '"p1"',
          stripes: [{ stripeIndex: 0, chunks: Array.from({ length: 12 }, (_, i) => ({ chunkIndex: i, chunkId: randomUUID(), nodeId: `node-${i}`, lengthBytes: shard, root: i })) }],
        },
      ],
    },
  }
}

async function commitsPerSecond(catalog: Catalog, bucket: string): Promise<number> {
  const started = performance.now()
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < commitsPerWriter; i++) await catalog.objects.commit(object16MiB(bucket, `commits/${w}/${i}`))
    }),
  )
  return (writers * commitsPerWriter) / ((performance.now() - started) / 1000)
}

async function lookupsPerSecond(catalog: Catalog, bucket: string): Promise<number> {
  const started = performance.now()
  await Promise.all(
    Array.from({ length: readers }, async (_, r) => {
      for (let i = 0; i < lookupsPerReader; i++) {
        const found = await catalog.objects.lookup(bucket, `commits/${(r + i) % writers}/${i % commitsPerWriter}`, { offsetBytes: 0, lengthBytes: MiB })
        assert.equal(found!.stripes[0]!.chunks.length, 12)
      }
    }),
  )
  return (readers * lookupsPerReader) / ((performance.now() - started) / 1000)
}

/** data/d00000/0000 .. (directories x 500 keys) and data/f0000000 .. (files): bulk, in SQL. */
async function loadListingBucket(catalog: Catalog, bucket: string): Promise<number> {
  const sql = catalog.db.sql
  const started = performance.now()
  const insert = (from: number, count: number, keyExpression: string) =>
    sql.unsafe(
      `INSERT INTO bucket_objects (object_id, bucket_name, object_key, size_bytes, etag, erasure_coding_scheme, inline_data)
       SELECT gen_random_uuid(), $1, convert_to(${keyExpression}, 'UTF8'), 1, '"x"', 'INLINE', '\\x78'::bytea
       FROM generate_series($2::int, $3::int) AS i`,
      [bucket, from, from + count - 1],
    )
  const batch = 100_000
  for (let i = 0; i < directories * childrenPerDirectory; i += batch) {
    await insert(i, Math.min(batch, directories * childrenPerDirectory - i), `'data/d' || lpad((i / ${childrenPerDirectory})::text, 5, '0') || '/' || lpad((i % ${childrenPerDirectory})::text, 4, '0')`)
  }
  for (let i = 0; i < files; i += batch) await insert(i, Math.min(batch, files - i), `'data/f' || lpad(i::text, 7, '0')`)
  await sql.unsafe('VACUUM ANALYZE bucket_objects') // the steady state: visibility map set, statistics current
  return (performance.now() - started) / 1000
}

async function pageMs(catalog: Catalog, bucket: string, startAfter: string | undefined, expect: { prefixes: number; objects: number }): Promise<number[]> {
  const samples: number[] = []
  for (let run = 0; run < pageRuns; run++) {
    const started = performance.now()
    const page = await catalog.objects.list(bucket, { prefix: 'data/', delimiter: '/', maxKeys: 1000, ...(startAfter ? { startAfter } : {}) })
    samples.push(performance.now() - started)
    assert.equal(page.commonPrefixes.length, expect.prefixes)
    assert.equal(page.objects.length, expect.objects)
  }
  return samples
}

interface Result {
  commitsPerSecond: number
  lookupsPerSecond: number
  loadSeconds: number
  firstPageMs: number
  lastPageMs: number
  pageMs: number
  flatPageMs: number
}

async function run(url: string): Promise<Result> {
  const catalog = await openCatalog(url, { connectionsMax: writers })
  try {
    const bucket = `bench-${randomUUID().slice(0, 8)}`
    await catalog.buckets.create({ name: bucket, owner: 'bench' })
    // Warm up connections and plans.
    for (let i = 0; i < 20; i++) await catalog.objects.commit(object16MiB(bucket, `warm/${i}`))
    const commits = await commitsPerSecond(catalog, bucket)
    const lookups = await lookupsPerSecond(catalog, bucket)

    const listed = `list-${randomUUID().slice(0, 8)}`
    await catalog.buckets.create({ name: listed, owner: 'bench' })
    const loadSeconds = await loadListingBucket(catalog, listed)
    const prefixesOnFirst = Math.min(directories, 1000)
    await pageMs(catalog, listed, undefined, { prefixes: prefixesOnFirst, objects: 1000 - prefixesOnFirst }) // warm-up
    const first = await pageMs(catalog, listed, undefined, { prefixes: prefixesOnFirst, objects: 1000 - prefixesOnFirst })
    const lastStart = `data/f${String(files - 1001).padStart(7, '0')}`
    const last = await pageMs(catalog, listed, lastStart, { prefixes: 0, objects: 1000 })
    const flat: number[] = []
    for (let i = 0; i < pageRuns; i++) {
      const started = performance.now()
      const page = await catalog.objects.list(listed, { prefix: 'data/f', maxKeys: 1000, startAfter: `data/f${String(files >> 1).padStart(7, '0')}` })
      flat.push(performance.now() - started)
      assert.equal(page.objects.length, 1000)
    }
    return {
      commitsPerSecond: commits,
      lookupsPerSecond: lookups,
      loadSeconds,
      firstPageMs: median(first),
      lastPageMs: median(last),
      pageMs: median([...first, ...last]),
      flatPageMs: median(flat),
    }
  } finally {
    await catalog.close()
  }
}

const postgresServer = await startPostgres()
let postgresResult: Result
try {
  postgresResult = await run(await postgresServer.createDatabase())
} finally {
  await postgresServer.stop()
}
const embedded = await startEmbeddedCatalog({ database: await PGlite.create() })
let pgliteResult: Result
try {
  pgliteResult = await run(embedded.url)
} finally {
  await embedded.stop()
}

const rows: [string, keyof Result][] = [
  ['object commits/s (8 writers, 12 chunk rows each)', 'commitsPerSecond'],
  ['point lookups/s (8 readers, object + 12 chunk rows)', 'lookupsPerSecond'],
  [`list: first page, delimiter (ms, median of ${pageRuns})`, 'firstPageMs'],
  [`list: last page, delimiter (ms, median of ${pageRuns})`, 'lastPageMs'],
  ['list: page with a delimiter, first and last together (ms, median)', 'pageMs'],
  ['list: mid-bucket page, no delimiter (ms, median)', 'flatPageMs'],
  [`bulk load of ${bucketKeys.toLocaleString('en')} keys (s)`, 'loadSeconds'],
]
printTable(`Catalog (${bucketKeys.toLocaleString('en')}-key bucket${options.quick ? ', --quick' : ''})`, ['measure', 'PostgreSQL 15', 'PGlite (embedded)'], rows.map(([label, field]) => [label, postgresResult[field], pgliteResult[field]]))

const figures: Figures = { bucket_keys: bucketKeys, writers, readers }
for (const [name, result] of [['postgres', postgresResult], ['pglite', pgliteResult]] as const) {
  figures[`commits_per_s_${name}`] = Math.round(result.commitsPerSecond)
  figures[`lookups_per_s_${name}`] = Math.round(result.lookupsPerSecond)
  figures[`list_page_ms_${name}`] = Number(result.pageMs.toFixed(2))
  figures[`list_first_page_ms_${name}`] = Number(result.firstPageMs.toFixed(2))
  figures[`list_last_page_ms_${name}`] = Number(result.lastPageMs.toFixed(2))
  figures[`list_flat_page_ms_${name}`] = Number(result.flatPageMs.toFixed(2))
  figures[`bulk_load_s_${name}`] = Number(result.loadSeconds.toFixed(1))
}
emitJson(options, figures)
