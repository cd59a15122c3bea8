// Repair benchmark (issue 8): time to restore full redundancy after one node that
// holds data dies, with 6, 9 and 12 peers doing the repair; and scrub throughput at
// its default rate cap and unthrottled.
//
// RS(8,4) needs 12 distinct nodes per stripe, and a rebuilt chunk needs a 13th that
// holds none of its stripe, so a cluster of 6 or 9 nodes cannot keep the rule at
// all. The suite therefore runs one cluster of 13+ real `blobfs node` processes
// (4 racks, PostgreSQL catalog, 2 MiB chunks, fdatasync) and varies how many of the
// survivors run repair workers (`--repair-concurrency 2` on 6, 9 or 12 of them, 0
// on the rest). Each round adds an empty spare node (so every stripe has a node to
// go to), SIGKILLs the node holding the most chunk bytes, and times
//   detect  = kill -> first repair task queued (down-timeout 5 s + repair grace 30 s:
//             the grace keeps the restarts between rounds, and nodes the loaded machine
//             stalls for a few seconds, from queueing repairs; it is not part of rebuild),
//   rebuild = first task queued -> queue empty (every stripe back to 12 chunks),
// with rebuild MB/s = bytes of chunks the dead node held / rebuild seconds.
//
// Every process shares this machine's 2 cores, so repair with no cap is bound by
// the machine, not by the design: adding peers on one machine adds no CPU. In a
// deployment each node's repair is bounded by its own disk and NIC, which
// `--repair-rate` (read + write bytes per second, per node) stands for. So:
//   1. the ceiling: 12 peers with no cap (`--repair-rate` 10^6 MiB/s) measure what
//      this machine can rebuild at all;
//   2. the scaling: 6, 9 and 12 peers, each capped at the same `--repair-rate`,
//      chosen so 12 capped peers need at most half the ceiling (the machine is not
//      the limit), show whether the cluster rate is the sum of the per-node caps —
//      i.e. whether the work really spreads over the peers — and whether rebuild
//      time falls as peers are added. Each repairing node's own read + write bytes
//      (from its /metrics) are checked against its cap.
// `--repair-rate=X` fixes the cap (MiB/s) instead of deriving it from the ceiling;
// `--victim-mib=N` sets how much the dying node holds.
//
// Scrub: a block store in this process filled with 2 MiB chunks, verified by the
// node's Scrubber at the default cap (32 MiB/s) and with no cap.
//
// npm run bench -- repair [--quick] [--json] [--victim-mib=N] [--repair-rate=MiBps]
// (docs/benchmarks.md, "Durability (issue 8)", has the last run and how to read it)
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import type { Cluster } from '../../../src/cli/cluster.ts'
import { checksumTree } from '../../../src/codec/checksum.ts'
import { scrubRateBytesPerSecMaxDefault, units } from '../../../src/limits.ts'
import { BlockStore } from '../../../src/node/block-store.ts'
import { chunkIdToBytes } from '../../../src/node/format.ts'
import { Scrubber } from '../../../src/node/scrubber.ts'
import { startTestCluster, type TestCluster, type TestNode } from '../../support/cluster.ts'
import { emitJson, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const flag = (name: string): number | undefined => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (arg === undefined) return undefined
  const value = Number(arg.slice(name.length + 3))
  assert.ok(value > 0, `--${name} takes a positive number`)
  return value
}
const MiB = units.MiB
const GiB = units.GiB
/** Bytes of chunks the dying node holds, roughly. */
const victimBytes = (flag('victim-mib') ?? (options.quick ? 128 : 1024)) * MiB
const fixedCapMiBps = flag('repair-rate')
const objectBytes = 64 * MiB
const peersRounds = [6, 9, 12]
/** Share of the measured ceiling 12 capped peers may use together. */
const ceilingShare = 0.5
const unthrottledMiBps = 1_000_000
const k = 8
const scrubBytes = options.quick ? 256 * MiB : 1 * GiB
const quiet = pino({ level: 'silent' })
const progress = (message: string): void => {
  process.stderr.write(`[repair bench ${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]!.toFixed(1)}] ${message}\n`)
}
const figures: Figures = {
  date: new Date().toISOString().slice(0, 10),
  quick: options.quick,
  victim_target_mib: victimBytes / MiB,
  loadavg_1m_start: Number(loadavg()[0]!.toFixed(2)),
}

interface Round {
  label: string
  peers: number
  capMiBps: number | null
  chunks: number
  lostBytes: number
  detectS: number
  rebuildS: number
  /** Highest read + write rate of one repairing node over the rebuild, and the lowest share of the work one did. */
  nodeTrafficMaxMiBps: number
  nodeShareMin: number
  nodeShareMax: number
  /** Chunks the repairing nodes wrote: the chunks lost, plus any rebuilt for another reason meanwhile. */
  chunksWritten: number
}

/** The repair counters of a node's /metrics: bytes it read and bytes it wrote for repair. */
async function repairBytes(node: TestNode): Promise<{ read: number; written: number }> {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text()
  const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.slice(name.length + 1) ?? 0)
  return { read: value('blobfs_repair_bytes_read_total'), written: value('blobfs_repair_bytes_rebuilt_total') }
}

async function repairRound(cluster: TestCluster, client: Cluster, label: string, peers: number, capMiBps: number | null): Promise<Round> {
  const sql = client.catalog.db.sql
  await cluster.addNode(`rack-${cluster.nodes.length % 4}`) // the spare
  const running = () => cluster.nodes.filter((n) => n.process !== null)
  const held = new Map((await sql`SELECT storage_node_id, sum(length_bytes)::int8 AS bytes, count(*)::int AS chunks
    FROM object_chunks_allocation GROUP BY storage_node_id`).map((r) => [r.storage_node_id as string, { bytes: Number(r.bytes), chunks: r.chunks as number }]))
  const victim = running().sort((a, b) => (held.get(b.id)?.bytes ?? 0) - (held.get(a.id)?.bytes ?? 0))[0]!
  const lost = held.get(victim.id)!
  // The repairing set: `peers` survivors with the round's flags (a restart where they change), the rest with none.
  const wanted = ['--repair-concurrency', '2', '--repair-rate', String(capMiBps ?? unthrottledMiBps)]
  const same = (n: TestNode) => n.extraArgs.join(' ') === wanted.join(' ')
  const survivors = running().filter((n) => n !== victim).sort((a, b) => Number(same(b)) - Number(same(a)) || a.index - b.index)
  assert.ok(survivors.length >= peers, `${peers} survivors to repair`)
  const repairing = survivors.slice(0, peers)
  await Promise.all(survivors.map(async (n, i) => {
    const args = i < peers ? wanted : []
    if (n.extraArgs.join(' ') === args.join(' ')) return
    await n.kill('SIGTERM')
    n.extraArgs = args
    await n.start()
  }))
  // Restarts may have looked like failures: start timing only once every node is UP and nothing is queued.
  for (const started = performance.now(); ; await sleep(250)) {
    const s = await client.catalog.repairs.stats()
    const down = (await client.catalog.nodes.list()).filter((n) => n.state !== 'UP' && cluster.nodes.some((c) => c.id === n.id && c.process !== null))
    if (s.ready + s.leased + s.delayed === 0 && down.length === 0) break
    assert.ok(performance.now() - started < 600_000, 'the cluster settled after the restarts')
  }
  const before = await Promise.all(repairing.map(repairBytes))
  progress(`${label}, ${peers} repairing peers: killing a node holding ${(lost.bytes / MiB).toFixed(0)} MiB in ${lost.chunks} chunks`)
  const killedAt = performance.now()
  await victim.kill('SIGKILL')
  let queuedAt = 0
  for (;;) {
    const s = await client.catalog.repairs.stats()
    if (queuedAt === 0 && s.ready + s.leased + s.delayed > 0) queuedAt = performance.now()
    const onVictim = await sql`SELECT count(*)::int AS n FROM object_chunks_allocation WHERE storage_node_id = ${victim.id}`
    if (queuedAt > 0 && s.ready + s.leased + s.delayed === 0 && onVictim[0]!.n === 0) break
    assert.ok(performance.now() - killedAt < 3_600_000, 'repair finished within an hour')
    await sleep(queuedAt === 0 ? 50 : 250)
  }
  const doneAt = performance.now()
  const left = await sql`SELECT count(*)::int AS n FROM object_chunks_allocation WHERE storage_node_id = ${victim.id}`
  assert.equal(left[0]!.n, 0, 'no chunk row is left on the dead node')
  const after = await Promise.all(repairing.map(repairBytes))
  const rebuildS = (doneAt - queuedAt) / 1000
  const traffic = after.map((a, i) => a.read - before[i]!.read + a.written - before[i]!.written)
  const written = after.map((a, i) => a.written - before[i]!.written)
  const writtenTotal = written.reduce((x, y) => x + y, 0)
  progress(`  detect ${((queuedAt - killedAt) / 1000).toFixed(1)} s, rebuilt in ${rebuildS.toFixed(1)} s (${(lost.bytes / 1e6 / rebuildS).toFixed(2)} MB/s); busiest node ${(Math.max(...traffic) / MiB / rebuildS).toFixed(2)} MiB/s read + write; shares ${written.map((w) => (w / writtenTotal).toFixed(3)).join(' ')}`)
  return {
    label,
    peers,
    capMiBps,
    chunks: lost.chunks,
    lostBytes: lost.bytes,
    detectS: (queuedAt - killedAt) / 1000,
    rebuildS,
    nodeTrafficMaxMiBps: Math.max(...traffic) / MiB / rebuildS,
    nodeShareMin: Math.min(...written) / writtenTotal,
    nodeShareMax: Math.max(...written) / writtenTotal,
    chunksWritten: Math.round(writtenTotal / (2 * MiB)),
  }
}

async function repairRounds(): Promise<Round[]> {
  const cluster = await startTestCluster({
    nodes: 13,
    racks: 4,
    blockSize: '256MiB',
    startTimeoutMs: 600_000,
    nodeArgs: ['--down-timeout', '5s', '--repair-grace', '30s', '--repair-concurrency', '0', '--scrub-rate', '1'],
  })
  const rounds: Round[] = []
  try {
    const client = await cluster.open({ putTimeoutMs: 120_000, getTimeoutMs: 120_000 })
    await client.objects.createBucket('bench', 'bench')
    // user bytes such that one of 13 nodes holds about victimBytes: 13 * victim * 8 / 12
    const userBytes = Math.ceil((13 * victimBytes * 8) / 12 / objectBytes) * objectBytes
    const body = randomBytes(objectBytes)
    progress(`writing ${(userBytes / MiB).toFixed(0)} MiB of objects to 13 nodes`)
    const writeStarted = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: 2 }, async () => {
        while (next * objectBytes < userBytes) {
          const key = `o-${next++}`
          await client.objects.putObject('bench', key, Readable.from([body.subarray(0, objectBytes / 2), body.subarray(objectBytes / 2)]))
        }
      }),
    )
    figures.write_user_mib = userBytes / MiB
    figures.write_mib_s = userBytes / MiB / ((performance.now() - writeStarted) / 1000)

    // 1. What this machine can rebuild at all: 12 peers, no cap.
    const ceiling = await repairRound(cluster, client, 'no cap (machine ceiling)', 12, null)
    rounds.push(ceiling)
    const ceilingMBps = ceiling.lostBytes / 1e6 / ceiling.rebuildS
    // 2. A per-node cap such that 12 capped peers rebuild at `ceilingShare` of it: rebuilding
    //    one byte costs k bytes read + 1 written, so a node's rebuild rate is cap / (k + 1).
    const derived = (ceilingMBps * ceilingShare * (k + 1) * 1e6) / 12 / MiB
    const capMiBps = fixedCapMiBps ?? Number(derived.toPrecision(2))
    figures.cap_mib_s = capMiBps
    progress(`ceiling ${ceilingMBps.toFixed(2)} MB/s rebuilt; per-node cap ${capMiBps} MiB/s read + write`)
    figures.cap_source = fixedCapMiBps === undefined ? `${ceilingShare} x ceiling / 12 peers` : '--repair-rate'
    for (const peers of peersRounds) rounds.push(await repairRound(cluster, client, `--repair-rate ${capMiBps}`, peers, capMiBps))
  } finally {
    await cluster.stop()
  }
  return rounds
}

async function scrubRates(): Promise<(string | number)[][]> {
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-bench-scrub-'))
  const rows: (string | number)[][] = []
  try {
    const { store } = await BlockStore.open({ dir, blockSizeBytes: 256 * MiB, sync: 'none', log: quiet })
    const chunk = randomBytes(2 * MiB)
    const tree = checksumTree(chunk)
    for (let i = 0; i < scrubBytes / chunk.length; i++) await store.put(chunkIdToBytes(randomUUID()), chunk, tree)
    let pageCache = 'warm (written just before)'
    for (const [label, cap] of [['default cap (32 MiB/s)', scrubRateBytesPerSecMaxDefault], ['unthrottled', Number.MAX_SAFE_INTEGER]] as const) {
      try {
        writeFileSync('/proc/sys/vm/drop_caches', '1')
        pageCache = 'dropped before each run'
      } catch {
        // not allowed here: the page cache stays warm
      }
      const scrubber = new Scrubber(store, { passMs: 1, rateBytesPerSecMax: cap, onCorrupt: () => assert.fail('no chunk is corrupt') })
      scrubber.startPassNow()
      const started = performance.now()
      const windowMs = options.quick ? 6_000 : 15_000
      let bytes = 0
      for (;;) {
        const before = Number(scrubber.status().bytesScrubbed)
        const result = await scrubber.step()
        bytes += Number(scrubber.status().bytesScrubbed) - before
        if (Number(scrubber.status().passes) >= 1 || performance.now() - started > windowMs) break
        if (result.state !== 'busy') await sleep(result.delayMs)
      }
      const seconds = (performance.now() - started) / 1000
      const rate = bytes / MiB / seconds
      figures[`scrub_${cap === scrubRateBytesPerSecMaxDefault ? 'default' : 'unthrottled'}_mib_s`] = rate
      rows.push([label, bytes / MiB, seconds, rate])
    }
    figures.scrub_page_cache = pageCache
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return rows
}

const rounds = await repairRounds()
const rows: (string | number)[][] = []
for (const r of rounds) {
  const rate = r.lostBytes / 1e6 / r.rebuildS
  const key = r.capMiBps === null ? `unthrottled_${r.peers}` : `peers_${r.peers}`
  const expected = r.capMiBps === null ? null : (r.peers * r.capMiBps * MiB) / (k + 1) / 1e6
  figures[`${key}_lost_mib`] = r.lostBytes / MiB
  figures[`${key}_detect_s`] = r.detectS
  figures[`${key}_rebuild_s`] = r.rebuildS
  figures[`${key}_rebuild_s_per_gib`] = r.rebuildS / (r.lostBytes / GiB)
  figures[`${key}_rebuild_mb_s`] = rate
  figures[`${key}_node_traffic_max_mib_s`] = r.nodeTrafficMaxMiBps
  figures[`${key}_node_share_min`] = r.nodeShareMin
  figures[`${key}_node_share_max`] = r.nodeShareMax
  figures[`${key}_chunks_written`] = r.chunksWritten
  if (expected !== null) figures[`${key}_rebuild_mb_s_of_caps`] = rate / expected
  rows.push([r.label, String(r.peers), `${r.chunks} / ${r.chunksWritten}`, r.lostBytes / MiB, r.detectS, r.rebuildS, (r.rebuildS / (r.lostBytes / GiB)), rate, expected ?? '—', expected === null ? '—' : `${((rate / expected) * 100).toFixed(0)} %`, r.nodeTrafficMaxMiBps, `${(r.nodeShareMin * 100).toFixed(1)}-${(r.nodeShareMax * 100).toFixed(1)} %`])
}
const capped = rounds.filter((r) => r.capMiBps !== null)
const perGib = capped.map((r) => r.rebuildS / (r.lostBytes / GiB))
figures.ceiling_mb_s = rounds[0]!.lostBytes / 1e6 / rounds[0]!.rebuildS
figures.rebuild_time_falls_as_nodes_added = perGib.every((s, i) => i === 0 || s < perGib[i - 1]!)
figures.node_traffic_within_cap = capped.every((r) => r.nodeTrafficMaxMiBps <= r.capMiBps! * 1.02)
figures.loadavg_1m_end = Number(loadavg()[0]!.toFixed(2))
printTable(
  `Restoring full redundancy after one node dies (13+ nodes, 4 racks, RS(8,4), 2 MiB chunks, ${options.quick ? 'quick' : 'full'} run; load ${figures.loadavg_1m_start} -> ${figures.loadavg_1m_end})`,
  ['per-node cap', 'repairing peers', 'chunks lost / rebuilt', 'MiB lost', 'detect s', 'rebuild s', 'rebuild s per GiB', 'rebuild MB/s', 'sum of caps / 9, MB/s', 'of the caps', 'busiest node read+write MiB/s', 'share of chunks per node'],
  rows,
)
console.log(`\nrebuild time per GiB falls as peers are added (capped rounds): ${String(figures.rebuild_time_falls_as_nodes_added)}; every node within its cap: ${String(figures.node_traffic_within_cap)}`)
const scrubRows = await scrubRates()
printTable(`Scrub throughput, one node's block store (${String(figures.scrub_page_cache)})`, ['rate', 'MiB verified', 's', 'MiB/s'], scrubRows)
emitJson(options, figures)
