// Catalog benchmark (issue 3), on a throwaway PostgreSQL server and on the embedded
// PGlite catalog, in one run:
//   - object commits per second, 8 concurrent writers, 16 MiB objects (one RS(8,4)
//     stripe: 12 chunk rows each), each to a new key;
//   - point lookups per second (object row + its 12 chunk rows for a range), 8 readers;
//   - one 1,000-entry page with a delimiter from a bucket of 1,000,000 keys (100,000
//     with --quick). Under data/ the bucket holds 1,000 directories (999 keys each;
//     99 with --quick) interleaved with 1,000 files, so a delimited listing of data/
//     is exactly two pages of the same make-up: 500 common prefixes and 500 keys.
//     The last page starts past half the bucket (500,000 keys), which OFFSET would
//     read and discard; a seek does not. First and last page alternate, median of
//     several runs each; also a 1,000-key page without a delimiter, a delimited
//     listing of one directory (999 plain keys; 99 with --quick), and — side by
//     side — the same first and last pages by the previous listing (one index seek
//     per entry, every column; frozen in previous-listing.ts).
// The bucket is bulk-loaded with INSERT ... SELECT generate_series (benchmark-only SQL).
// PGlite runs as `blobfs up` runs it: on disk in <data-dir>/catalog (a temporary
// directory), served through pglite-socket. The throwaway PostgreSQL runs with
// fsync off (test/support/postgres-server.ts), so its commit rate is an upper bound.
// Targets (issue 3): a delimited 1,000-key page under 20 ms on PostgreSQL, and the
// last page no slower than the first; the JSON says whether each was met.
//
//   npm run bench -- catalog [--quick] [--json]
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCatalog, type Catalog } from '../../../src/catalog/catalog.ts'
import { startEmbeddedCatalog } from '../../../src/catalog/embedded.ts'
import type { CommitObjectInput } from '../../../src/catalog/types.ts'
import { startPostgres } from '../../support/postgres-server.ts'
import { previousDelimitedList } from './previous-listing.ts'
import { emitJson, median, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const loadAverageAtStart = loadavg()[0]!
const MiB = 1024 * 1024
const writers = 8
const readers = 8
const commitsPerWriter = options.quick ? 60 : 250
const lookupsPerReader = options.quick ? 300 : 1500
const bucketKeys = options.quick ? 100_000 : 1_000_000
const directories = 1000
const files = 1000
const childrenPerDirectory = (bucketKeys - files) / directories
const pageKeys = 1000
const pageRuns = options.quick ? 7 : 15
const listPageMsTarget = 20
/** "No slower": the last page may take at most this much longer than the first, for timer noise. */
const lastPageSlackRatio = 1.25
assert.ok(Number.isInteger(childrenPerDirectory) && childrenPerDirectory < 10_000 && directories + files === 2 * pageKeys)

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

const dir = (i: number) => `data/e${String(i).padStart(5, '0')}/`
const file = (i: number) => `data/e${String(i).padStart(5, '0')}x` // sorts right after dir(i)'s keys ('/' < 'x')

/** dir(i) + 0000.. (childrenPerDirectory keys each) and file(i), for i < 1000: bulk, in SQL. */
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
  const children = directories * childrenPerDirectory
  for (let i = 0; i < children; i += batch) {
    await insert(i, Math.min(batch, children - i), `'data/e' || lpad((i / ${childrenPerDirectory})::text, 5, '0') || '/' || lpad((i % ${childrenPerDirectory})::text, 4, '0')`)
  }
  await insert(0, files, `'data/e' || lpad(i::text, 5, '0') || 'x'`)
  await sql.unsafe('VACUUM ANALYZE bucket_objects') // the steady state: visibility map set, statistics current
  return (performance.now() - started) / 1000
}

/**
 * VACUUM marks a heap page all-visible only when no snapshot older than its rows is
 * open; right after the bulk load one often is (autovacuum's own ANALYZE), and the
 * first VACUUM then leaves the visibility map empty. Vacuums again until it is set
 * (as autovacuum would in a while), bounded; returns the all-visible fraction.
 */
async function settleVisibility(catalog: Catalog): Promise<number> {
  const sql = catalog.db.sql
  const fraction = async () => {
    const [row] = await sql<{ pages: number; visible: number }[]>`SELECT relpages AS pages, relallvisible AS visible FROM pg_class WHERE relname = 'bucket_objects'`
    return row!.pages === 0 ? 1 : row!.visible / row!.pages
  }
  for (let attempt = 0; attempt < 20 && (await fraction()) < 1; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    await sql.unsafe('VACUUM bucket_objects')
  }
  return fraction()
}

// The machine is shared, so wall-clock page times mostly measure waiting for a
// core. CPU time spent per page is far less sensitive to that: the bench process's
// own (process.cpuUsage; for PGlite this includes the embedded server, which runs
// in this process) and, for PostgreSQL, that of the database's backends (utime +
// stime from /proc/<pid>/stat, 10 ms ticks, exact over the sum of all runs).
const clockTicksPerSecond = 100 // getconf CLK_TCK on Linux

async function backendCpuMs(catalog: Catalog, external: boolean): Promise<number> {
  if (!external) return 0
  const pids = await catalog.db.sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`
  let ticks = 0
  for (const { pid } of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from the 3rd on
    ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
  }
  return (ticks * 1000) / clockTicksPerSecond
}

interface PageCost {
  wallMs: number
  /** This process (for PGlite: client and embedded server). */
  clientCpuMs: number
  /** The PostgreSQL backends (0 for PGlite). */
  serverCpuMs: number
}

async function costOf(catalog: Catalog, external: boolean, call: () => Promise<void>): Promise<PageCost> {
  const serverBefore = await backendCpuMs(catalog, external)
  const clientBefore = process.cpuUsage()
  const started = performance.now()
  await call()
  const wallMs = performance.now() - started
  const client = process.cpuUsage(clientBefore)
  const serverMs = (await backendCpuMs(catalog, external)) - serverBefore
  return { wallMs, clientCpuMs: (client.user + client.system) / 1000, serverCpuMs: serverMs }
}

/** One delimited page of data/; checks it holds 500 prefixes and 500 keys, alternating. */
async function delimitedPage(catalog: Catalog, bucket: string, firstIndex: number, previous = false): Promise<void> {
  const options = { prefix: 'data/', delimiter: '/', maxKeys: pageKeys, ...(firstIndex > 0 ? { startAfter: file(firstIndex - 1) } : {}) }
  const page = previous ? await previousDelimitedList(catalog.db, bucket, options) : await catalog.objects.list(bucket, options)
  assert.equal(page.commonPrefixes.length, pageKeys / 2)
  assert.equal(page.objects.length, pageKeys / 2)
  assert.equal(page.commonPrefixes[0], dir(firstIndex))
  assert.equal(page.objects[page.objects.length - 1]!.key, file(firstIndex + pageKeys / 2 - 1))
  assert.equal(page.isTruncated, firstIndex === 0)
}

interface Result {
  serverVersion: string
  commitsPerSecond: number
  lookupsPerSecond: number
  loadSeconds: number
  firstPageMs: number
  lastPageMs: number
  /** CPU ms per delimited page, client + server, mean over first and last pages. */
  pageCpuMs: number
  pageClientCpuMs: number
  pageServerCpuMs: number
  flatPageCpuMs: number
  pageMs: number
  flatPageMs: number
  dirPageMs: number
  dirPageCpuMs: number
  /** The previous listing (previous-listing.ts), same pages, same run. */
  previousPageMs: number
  previousPageCpuMs: number
  previousPageServerCpuMs: number
  allVisible: number
}

async function run(url: string, external: boolean): Promise<Result> {
  const catalog = await openCatalog(url, { connectionsMax: writers })
  try {
    const [{ server_version: serverVersion }] = await catalog.db.sql`SHOW server_version`
    const bucket = `bench-${randomUUID().slice(0, 8)}`
    await catalog.buckets.create({ name: bucket, owner: 'bench' })
    // Warm up connections and plans.
    for (let i = 0; i < 20; i++) await catalog.objects.commit(object16MiB(bucket, `warm/${i}`))
    const commits = await commitsPerSecond(catalog, bucket)
    const lookups = await lookupsPerSecond(catalog, bucket)

    const listed = `list-${randomUUID().slice(0, 8)}`
    await catalog.buckets.create({ name: listed, owner: 'bench' })
    const loadSeconds = await loadListingBucket(catalog, listed)
    const allVisible = await settleVisibility(catalog)
    const first: PageCost[] = []
    const last: PageCost[] = []
    const flat: PageCost[] = []
    const inDir: PageCost[] = []
    const previous: PageCost[] = []
    for (let run = -(writers + 1); run < pageRuns; run++) {
      // Runs below 0 warm caches, and plans on every pooled connection (PostgreSQL
      // plans a prepared statement anew on its first five runs); then the pages take turns.
      const firstCost = await costOf(catalog, external, () => delimitedPage(catalog, listed, 0))
      const lastCost = await costOf(catalog, external, () => delimitedPage(catalog, listed, pageKeys / 2))
      const flatCost = await costOf(catalog, external, async () => {
        const page = await catalog.objects.list(listed, { prefix: 'data/', maxKeys: pageKeys, startAfter: dir(directories / 2) })
        assert.equal(page.objects.length, pageKeys)
      })
      const dirCost = await costOf(catalog, external, async () => {
        const page = await catalog.objects.list(listed, { prefix: dir(directories / 2), delimiter: '/', maxKeys: pageKeys })
        assert.equal(page.objects.length, childrenPerDirectory)
        assert.equal(page.commonPrefixes.length, 0)
      })
      const previousFirstCost = await costOf(catalog, external, () => delimitedPage(catalog, listed, 0, true))
      const previousLastCost = await costOf(catalog, external, () => delimitedPage(catalog, listed, pageKeys / 2, true))
      if (run < 0) continue
      first.push(firstCost)
      last.push(lastCost)
      flat.push(flatCost)
      inDir.push(dirCost)
      previous.push(previousFirstCost, previousLastCost)
    }
    const wall = (costs: PageCost[]) => costs.map((c) => c.wallMs)
    const mean = (costs: PageCost[], of: (c: PageCost) => number) => costs.reduce((sum, c) => sum + of(c), 0) / costs.length
    const meanCpu = (costs: PageCost[]) => mean(costs, (c) => c.clientCpuMs + c.serverCpuMs)
    return {
      serverVersion: String(serverVersion).split(' ')[0]!,
      commitsPerSecond: commits,
      lookupsPerSecond: lookups,
      loadSeconds,
      firstPageMs: median(wall(first)),
      lastPageMs: median(wall(last)),
      pageMs: median(wall([...first, ...last])),
      flatPageMs: median(wall(flat)),
      pageCpuMs: meanCpu([...first, ...last]),
      pageClientCpuMs: mean([...first, ...last], (c) => c.clientCpuMs),
      pageServerCpuMs: mean([...first, ...last], (c) => c.serverCpuMs),
      flatPageCpuMs: meanCpu(flat),
      dirPageMs: median(wall(inDir)),
      dirPageCpuMs: meanCpu(inDir),
      previousPageMs: median(wall(previous)),
      previousPageCpuMs: meanCpu(previous),
      previousPageServerCpuMs: mean(previous, (c) => c.serverCpuMs),
      allVisible,
    }
  } finally {
    await catalog.close()
  }
}

const postgresServer = await startPostgres()
let postgresResult: Result
try {
  postgresResult = await run(await postgresServer.createDatabase(), true)
} finally {
  await postgresServer.stop()
}
const dataDir = mkdtempSync(join(tmpdir(), 'blobfs-bench-catalog-'))
let pgliteResult: Result
try {
  const embedded = await startEmbeddedCatalog({ dataDir })
  try {
    pgliteResult = await run(embedded.url, false)
  } finally {
    await embedded.stop()
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}

const rows: [string, Exclude<keyof Result, 'serverVersion'>][] = [
  ['object commits/s (8 writers, 12 chunk rows each)', 'commitsPerSecond'],
  ['point lookups/s (8 readers, object + 12 chunk rows)', 'lookupsPerSecond'],
  [`list, delimiter: first page, 500 prefixes + 500 keys (ms, median of ${pageRuns})`, 'firstPageMs'],
  [`list, delimiter: last page, same make-up (ms, median of ${pageRuns})`, 'lastPageMs'],
  ['list, delimiter: any page, first and last together (ms, median)', 'pageMs'],
  ['list, no delimiter: 1,000 keys mid-bucket (ms, median)', 'flatPageMs'],
  ['list, delimiter: CPU per page, client + server (ms, mean)', 'pageCpuMs'],
  ['  of which this process (PGlite: client and server) (ms)', 'pageClientCpuMs'],
  ['  of which PostgreSQL backends (ms)', 'pageServerCpuMs'],
  ['list, no delimiter: CPU per page, client + server (ms, mean)', 'flatPageCpuMs'],
  [`list, delimiter: one directory, ${childrenPerDirectory} plain keys (ms, median)`, 'dirPageMs'],
  ['  its CPU per page, client + server (ms, mean)', 'dirPageCpuMs'],
  ['previous listing (one seek per entry), first and last pages (ms, median)', 'previousPageMs'],
  ['  its CPU per page, client + server (ms, mean)', 'previousPageCpuMs'],
  ['  of which PostgreSQL backends (ms)', 'previousPageServerCpuMs'],
  ['heap pages all-visible after the load (fraction)', 'allVisible'],
  [`bulk load of ${bucketKeys.toLocaleString('en')} keys (s)`, 'loadSeconds'],
]
printTable(`Catalog (${bucketKeys.toLocaleString('en')}-key bucket${options.quick ? ', --quick' : ''})`, ['measure', `PostgreSQL ${postgresResult.serverVersion}`, `PGlite ${pgliteResult.serverVersion} (embedded, on disk)`], rows.map(([label, field]) => [label, postgresResult[field], pgliteResult[field]]))

const figures: Figures = { bucket_keys: bucketKeys, writers, readers }
for (const [name, result] of [['postgres', postgresResult], ['pglite', pgliteResult]] as const) {
  figures[`commits_per_s_${name}`] = Math.round(result.commitsPerSecond)
  figures[`lookups_per_s_${name}`] = Math.round(result.lookupsPerSecond)
  figures[`list_page_ms_${name}`] = Number(result.pageMs.toFixed(2))
  figures[`list_first_page_ms_${name}`] = Number(result.firstPageMs.toFixed(2))
  figures[`list_last_page_ms_${name}`] = Number(result.lastPageMs.toFixed(2))
  figures[`list_flat_page_ms_${name}`] = Number(result.flatPageMs.toFixed(2))
  figures[`list_page_cpu_ms_${name}`] = Number(result.pageCpuMs.toFixed(2))
  figures[`list_page_client_cpu_ms_${name}`] = Number(result.pageClientCpuMs.toFixed(2))
  figures[`list_page_server_cpu_ms_${name}`] = Number(result.pageServerCpuMs.toFixed(2))
  figures[`list_flat_page_cpu_ms_${name}`] = Number(result.flatPageCpuMs.toFixed(2))
  figures[`bulk_load_s_${name}`] = Number(result.loadSeconds.toFixed(1))
  figures[`list_dir_page_ms_${name}`] = Number(result.dirPageMs.toFixed(2))
  figures[`list_dir_page_cpu_ms_${name}`] = Number(result.dirPageCpuMs.toFixed(2))
  figures[`list_page_ms_previous_${name}`] = Number(result.previousPageMs.toFixed(2))
  figures[`list_page_cpu_ms_previous_${name}`] = Number(result.previousPageCpuMs.toFixed(2))
  figures[`list_page_cpu_ratio_new_to_previous_${name}`] = Number((result.pageCpuMs / result.previousPageCpuMs).toFixed(2))
  figures[`list_page_ms_ratio_new_to_previous_${name}`] = Number((result.pageMs / result.previousPageMs).toFixed(2))
  figures[`heap_all_visible_${name}`] = Number(result.allVisible.toFixed(2))
}
const pageUnderTarget = postgresResult.pageMs < listPageMsTarget
const lastNoSlower = postgresResult.lastPageMs <= postgresResult.firstPageMs * lastPageSlackRatio
figures.list_page_ms_target = listPageMsTarget
figures.list_page_target_met_postgres = pageUnderTarget ? 'yes' : 'no'
figures.list_page_cpu_under_target_postgres = postgresResult.pageCpuMs < listPageMsTarget ? 'yes' : 'no'
figures.load_average_1m_start = Number(loadAverageAtStart.toFixed(1))
figures.load_average_1m = Number(loadavg()[0]!.toFixed(1))
figures.list_last_page_no_slower_postgres = lastNoSlower ? 'yes' : 'no'
figures.list_last_page_no_slower_pglite = pgliteResult.lastPageMs <= pgliteResult.firstPageMs * lastPageSlackRatio ? 'yes' : 'no'
console.log(
  `\ntargets (PostgreSQL): page < ${listPageMsTarget} ms: ${pageUnderTarget ? 'met' : 'NOT met'} (${postgresResult.pageMs.toFixed(2)} ms); ` +
    `last page no slower than the first (within ${lastPageSlackRatio}x): ${lastNoSlower ? 'met' : 'NOT met'} ` +
    `(${postgresResult.lastPageMs.toFixed(2)} vs ${postgresResult.firstPageMs.toFixed(2)} ms)`,
)
emitJson(options, figures)
