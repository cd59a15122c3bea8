// Repair benchmark (issue 8): time to restore full redundancy after one node that
// holds data dies, with 6, 9 and 12 peers doing the repair; and scrub throughput at
// its default rate cap and unthrottled.
//
// RS(8,4) needs 12 distinct nodes per stripe, and a rebuilt chunk needs a 13th that
// holds none of its stripe, so a cluster of 6 or 9 nodes cannot keep the rule at
// all. The suite therefore runs one cluster of 13+ real `blobfs node` processes
// (4 racks, PostgreSQL catalog, 2 MiB chunks, fdatasync) and varies how many of the
// survivors run repair workers (`--repair-concurrency 2` on 6, 9, then 12 of them,
// 0 on the rest): the decentralized rebuild rate as the number of repairing nodes
// grows. Each round adds an empty spare node (so every stripe has a node to go to),
// SIGKILLs the non-repairing node holding the most chunk bytes, and times
//   detect  = kill -> first repair task queued (down-timeout 5 s, grace 0),
//   rebuild = first task queued -> queue empty (every stripe back to 12 chunks),
// with rebuild MB/s = bytes of chunks the dead node held / rebuild seconds.
// Every process shares this machine's cores, so the figures say how the rate moves
// with repairing peers here, not what separate machines would reach.
//
// Scrub: a block store in this process filled with 2 MiB chunks, verified by the
// node's Scrubber at the default cap (32 MiB/s) and with no cap.
//
// npm run bench -- repair [--quick] [--json]
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { checksumTree } from '../../../src/codec/checksum.ts'
import { scrubRateBytesPerSecMaxDefault, units } from '../../../src/limits.ts'
import { BlockStore } from '../../../src/node/block-store.ts'
import { chunkIdToBytes } from '../../../src/node/format.ts'
import { Scrubber } from '../../../src/node/scrubber.ts'
import { startTestCluster, type TestNode } from '../../support/cluster.ts'
import { emitJson, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const MiB = units.MiB
const GiB = units.GiB
/** Bytes of chunks the dying node holds, roughly: total written = 13 x this x 12/8 ... spread over 13 nodes. */
const victimBytes = options.quick ? 128 * MiB : 1 * GiB
const objectBytes = 64 * MiB
const peersRounds = [6, 9, 12]
const scrubBytes = options.quick ? 256 * MiB : 1 * GiB
const quiet = pino({ level: 'silent' })
const figures: Figures = { date: new Date().toISOString().slice(0, 10), victim_target_mib: victimBytes / MiB }

async function repairRounds(): Promise<(string | number)[][]> {
  const cluster = await startTestCluster({
    nodes: 13,
    racks: 4,
    blockSize: '256MiB',
    startTimeoutMs: 600_000,
    nodeArgs: ['--down-timeout', '5s', '--repair-grace', '0s', '--repair-concurrency', '0', '--scrub-rate', '1'],
  })
  const rows: (string | number)[][] = []
  try {
    const client = await cluster.open({ putTimeoutMs: 120_000, getTimeoutMs: 120_000 })
    await client.objects.createBucket('bench', 'bench')
    // user bytes such that one of 13 nodes holds about victimBytes: 13 * victim * 8 / 12
    const userBytes = Math.ceil((13 * victimBytes * 8) / 12 / objectBytes) * objectBytes
    const body = randomBytes(objectBytes)
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

    const repairing = new Set<TestNode>()
    const sql = client.catalog.db.sql
    for (const peers of peersRounds) {
      await cluster.addNode(`rack-${cluster.nodes.length % 4}`) // the spare
      const running = () => cluster.nodes.filter((n) => n.process !== null)
      const held = new Map((await sql`SELECT storage_node_id, sum(length_bytes)::int8 AS bytes, count(*)::int AS chunks
        FROM object_chunks_allocation GROUP BY storage_node_id`).map((r) => [r.storage_node_id as string, { bytes: Number(r.bytes), chunks: r.chunks as number }]))
      const victim = running().filter((n) => !repairing.has(n)).sort((a, b) => (held.get(b.id)?.bytes ?? 0) - (held.get(a.id)?.bytes ?? 0))[0]!
      const lostBytes = held.get(victim.id)!.bytes
      // Grow the repairing set to `peers` among the survivors (a restart with the flag).
      const added = running().filter((n) => n !== victim && !repairing.has(n)).slice(0, peers - repairing.size)
      assert.equal(repairing.size + added.length, peers, `${peers} survivors to repair`)
      await Promise.all(added.map(async (n) => {
        await n.kill('SIGTERM')
        n.extraArgs = ['--repair-concurrency', '2']
        await n.start()
        repairing.add(n)
      }))
      await sleep(2000) // heartbeats of the restarted nodes settle (nothing is DOWN)
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
      const rebuildS = (doneAt - queuedAt) / 1000
      const rate = lostBytes / 1e6 / rebuildS
      figures[`peers_${peers}_lost_mib`] = lostBytes / MiB
      figures[`peers_${peers}_detect_s`] = (queuedAt - killedAt) / 1000
      figures[`peers_${peers}_rebuild_s`] = rebuildS
      figures[`peers_${peers}_rebuild_mb_s`] = rate
      rows.push([peers, held.get(victim.id)!.chunks, lostBytes / MiB, (queuedAt - killedAt) / 1000, rebuildS, (doneAt - killedAt) / 1000, rate, (rate * 8) / 1])
    }
  } finally {
    await cluster.stop()
  }
  return rows
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

const repairRows = await repairRounds()
printTable(
  `Restoring full redundancy after one node dies (13+ nodes, 4 racks, RS(8,4), 2 MiB chunks, ${options.quick ? 'quick' : 'full'} run)`,
  ['repairing peers', 'chunks lost', 'MiB lost', 'detect s', 'rebuild s', 'kill -> full redundancy s', 'rebuild MB/s', 'read MB/s (8x)'],
  repairRows,
)
const scrubRows = await scrubRates()
printTable(`Scrub throughput, one node's block store (${String(figures.scrub_page_cache)})`, ['rate', 'MiB verified', 's', 'MiB/s'], scrubRows)
emitJson(options, figures)
