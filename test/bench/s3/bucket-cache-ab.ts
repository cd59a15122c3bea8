// npx tsx test/bench/s3/bucket-cache-ab.ts [--rounds R] (under the bench lock)
//
// What the gateway's bucket cache (src/s3/bucket-cache.ts) does for small requests
// on a real cluster: `blobfs up` (12 node processes, embedded catalog), and two
// gateways over it (serve.ts with cluster-layer.ts, each in its own process), one
// with the cache off (--bucket-cache-ttl-ms 0: the bucket is read from the catalog
// for every request, as before) and one with the default. They take turns: 4 KiB
// GETs/s and PUTs/s with 32 clients (5 s each) and 4 KiB GET time to first byte
// (500 sequential GETs), through @aws-sdk/client-s3; medians over the rounds.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startUp } from '../../support/up.ts'
import { median, percentile, printTable } from '../report.ts'
import { inParallel, s3Target, startServer } from './targets.ts'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const roundsFlag = argv.indexOf('--rounds')
const rounds = roundsFlag >= 0 ? Number(argv[roundsFlag + 1]) : 3
const clients = 32
const keys = 256
const opsMs = 5000
const ttfbSamples = 500

async function opsPerSecond(op: (i: number) => Promise<void>): Promise<number> {
  let ops = 0
  const started = performance.now()
  const deadline = started + opsMs
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await op(c * 7919 + i)
        ops++
      }
    }),
  )
  return ops / ((performance.now() - started) / 1000)
}

const loadStart = loadavg()[0]!
const root = mkdtempSync(join(tmpdir(), 'blobfs-s3-bucket-cache-'))
const up = await startUp(join(root, 'up'))
try {
  process.env.BLOBFS_BENCH_CATALOG_URL = up.cluster.catalogUrl
  process.env.BLOBFS_BENCH_ACCESS_KEY = up.credentials.accessKeyId
  process.env.BLOBFS_BENCH_SECRET_KEY = up.credentials.secretAccessKey
  const layer = join(here, 'cluster-layer.ts')
  const variants = [
    { name: 'bucket cache off (read per request)', ttl: '0' },
    { name: 'bucket cache on (default, 1 s)', ttl: '1000' },
  ]
  const servers = await Promise.all(variants.map((v) => startServer(['--target', 'blobfs', '--object-layer', layer, '--bucket-cache-ttl-ms', v.ttl])))
  const targets = servers.map((s, i) => s3Target(variants[i]!.name, s.info, s.stop))
  try {
    await targets[0]!.createBucket()
    const small = randomBytes(4096)
    await inParallel(keys, clients, (i) => targets[0]!.put(`small/${i}`, small))
    const results = variants.map(() => ({ gets: [] as number[], puts: [] as number[], p50: [] as number[], p99: [] as number[] }))
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const t = targets[i]!
        const gets = await opsPerSecond(async (n) => {
          const { bytes } = await t.get(`small/${n % keys}`)
          if (bytes !== small.length) throw new Error(`read ${bytes} bytes`)
        })
        const puts = await opsPerSecond((n) => t.put(`small/${n % keys}`, small))
        const ttfb: number[] = []
        for (let n = 0; n < ttfbSamples; n++) ttfb.push((await t.get(`small/${n % keys}`)).firstByteMs)
        results[i]!.gets.push(gets)
        results[i]!.puts.push(puts)
        results[i]!.p50.push(percentile(ttfb, 50))
        results[i]!.p99.push(percentile(ttfb, 99))
        process.stderr.write(`[load ${loadavg()[0]!.toFixed(1)}] round ${r + 1}, ${variants[i]!.name}: ${gets.toFixed(0)} GETs/s, ${puts.toFixed(0)} PUTs/s, TTFB p50 ${percentile(ttfb, 50).toFixed(2)} p99 ${percentile(ttfb, 99).toFixed(2)} ms\n`)
      }
    }
    printTable(
      `4 KiB requests through a gateway over blobfs up, ${clients} clients, median of ${rounds} alternating rounds`,
      ['gateway', 'GET (ops/s)', 'PUT (ops/s)', 'GET TTFB p50 (ms)', 'p99 (ms)'],
      variants.map((v, i) => [v.name, median(results[i]!.gets), median(results[i]!.puts), median(results[i]!.p50), median(results[i]!.p99)]),
    )
    console.log(`\nload average (1 min): ${loadStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`)
  } finally {
    for (const t of targets) await t.close()
  }
} finally {
  await up.stop()
  up.kill()
  rmSync(root, { recursive: true, force: true })
}
