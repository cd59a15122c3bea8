// Fault injection on real processes, one cluster of 13 nodes, three failures in turn.
// 1. A repair worker dies mid-task: the node process holding a task's lease is
//    frozen (SIGSTOP, so it is certainly mid-task) and SIGKILLed. The lease runs
//    out, another node's worker completes the task, nothing rotten is left.
// 2. Random bytes flip in random block files on several nodes. Reads never return
//    wrong bytes; scrub + repair heal everything; afterwards every chunk passes its
//    check and a further scrub pass finds nothing to repair.
// 3. A seeded random schedule of the faults above (kills, restarts, bit flips) with
//    writes and reads in between, for a bounded time. It prints its seed; set
//    BLOBFS_FAULT_SEED to replay the same schedule (BLOBFS_FAULT_SECONDS sets its
//    length). At most m = 4 nodes are ever bad at once (2 down + 2 with flips), so
//    every acknowledged object must read back byte-identical at every moment, and
//    after it all stops the cluster must be fully redundant again.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomInt, seededRandom } from '../../src/random.ts'
import { startTestCluster, type TestCluster, type TestNode } from '../support/cluster.ts'
import {
  assertAllReadBack,
  assertEveryChunkChecks,
  chunkRows,
  clientConfig,
  fastRepairArgs,
  faultSeed,
  flipRandomBytes,
  putAll,
  queueEmpty,
  scrubEverywhere,
  seededBytes,
  waitFor,
  waitForFullRedundancy,
} from './support.ts'

const MiB = 1024 * 1024
const scrubArgs = ['--scrub-pass-days', '0.00002'] // a pass every ~2 s, so rot is found within the test

describe('rot, a dying repair worker, and a random fault schedule', () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({ nodes: 13, racks: 4, nodeArgs: [...fastRepairArgs, ...scrubArgs] })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('a worker SIGKILLed mid-task loses its lease and another node completes the task', async () => {
    const client = await cluster.open(clientConfig)
    await client.objects.createBucket('kill', 'tester')
    const data = seededBytes(seededRandom(13), 16 * MiB) // 16 stripes
    await putAll(client, 'kill', new Map([['k', data]]))
    // Report one chunk of every stripe as rotten, as a read would: every task reads all 12 chunks.
    const rows = await chunkRows(client.catalog)
    const reported = [...new Set(rows.map((r) => r.stripe))].map((stripe) => rows.find((r) => r.stripe === stripe && r.chunkIndex === 1)!.chunkId)
    await client.catalog.repairs.enqueueChunks(reported, 'CORRUPT', 'test report')

    let frozen: { node: TestNode; key: { object_id: string; part_index: number; stripe_index: number }; token: string } | null = null
    await waitFor('a worker frozen while holding a repair lease', async () => {
      const leased = await client.catalog.db.sql`SELECT object_id, part_index, stripe_index, lease_owner, lease_token FROM repair_tasks
        WHERE lease_token IS NOT NULL AND available_at > now()`
      for (const task of leased) {
        const node = cluster.nodes.find((n) => n.process !== null && task.lease_owner.startsWith(`${n.id}/`))
        if (!node) continue
        node.process!.kill('SIGSTOP')
        const still = await client.catalog.db.sql`SELECT lease_token FROM repair_tasks WHERE object_id = ${task.object_id}
          AND part_index = ${task.part_index} AND stripe_index = ${task.stripe_index} AND lease_token = ${task.lease_token}`
        if (still.length === 1) {
          frozen = { node, key: { object_id: task.object_id, part_index: task.part_index, stripe_index: task.stripe_index }, token: task.lease_token }
          return true
        }
        node.process!.kill('SIGCONT') // it finished in between: let it go on, try another
      }
      return false
    }, 60_000, 10)
    const { node: victim, key, token } = frozen!
    await victim.kill('SIGKILL')
    const held = await client.catalog.db.sql`SELECT lease_owner FROM repair_tasks WHERE object_id = ${key.object_id}
      AND part_index = ${key.part_index} AND stripe_index = ${key.stripe_index} AND lease_token = ${token}`
    assert.equal(held.length, 1, 'the dead worker still holds the task')

    await waitFor('the repair queue to empty', () => queueEmpty(client.catalog), 120_000, 300)
    const owners = await client.catalog.db.sql`SELECT count(*)::int AS n FROM repair_tasks`
    assert.equal(owners[0]!.n, 0, 'the dead worker\'s task was completed by another node')
    await victim.start()
    await waitForFullRedundancy(client.catalog, cluster, 60_000)
    await assertEveryChunkChecks(client)
    await assertAllReadBack(client, 'kill', new Map([['k', data]]))
  })

  test('random bytes flipped in block files: reads stay right, scrub + repair heal every chunk', async () => {
    const client = await cluster.open(clientConfig)
    await client.objects.createBucket('rot', 'tester')
    const random = seededRandom(21)
    const bodies = new Map([6 * MiB + 5, 3 * MiB, 1 * MiB - 3, 200_000].map((size, i) => [`rot-${i}`, seededBytes(random, size)]))
    await putAll(client, 'rot', bodies)
    const victims = [2, 7, 9].map((i) => cluster.nodes[i]!)
    let flipped = 0
    for (const node of victims) flipped += flipRandomBytes(node, 12, random)
    assert.equal(flipped, 36)
    await assertAllReadBack(client, 'rot', bodies) // at most 3 bad chunks per stripe: always decodable

    await scrubEverywhere(cluster, 60_000)
    await waitFor('repair of everything the scrub found', () => queueEmpty(client.catalog), 120_000, 300)
    await scrubEverywhere(cluster, 60_000) // anything still rotten and referenced is queued again...
    assert.equal(await queueEmpty(client.catalog), true, '...and nothing was')
    const checked = await assertEveryChunkChecks(client)
    assert.ok(checked > 0)
    await assertAllReadBack(client, 'rot', bodies)
  })

  test('a seeded random schedule of kills, restarts and bit flips, with writes and reads', async () => {
    const { random } = faultSeed('random fault schedule')
    const seconds = Number(process.env.BLOBFS_FAULT_SECONDS ?? 30)
    const client = await cluster.open(clientConfig)
    await client.objects.createBucket('chaos', 'tester')
    const acknowledged = new Map<string, Buffer>()
    let writes = 0
    let failedWrites = 0
    let reads = 0
    const flippedNodes = new Set<TestNode>()
    const log: string[] = []
    const deadline = Date.now() + seconds * 1000
    for (let step = 0; Date.now() < deadline; step++) {
      const running = cluster.nodes.filter((n) => n.process !== null)
      const dead = cluster.nodes.filter((n) => n.process === null)
      const roll = random()
      if (roll < 0.2 && dead.length < 2) {
        const node = running[randomInt(random, 0, running.length)]!
        log.push(`${step}: kill node ${node.index}`)
        await node.kill('SIGKILL')
      } else if (roll < 0.35 && dead.length > 0) {
        const node = dead[randomInt(random, 0, dead.length)]!
        log.push(`${step}: restart node ${node.index}`)
        await node.start()
      } else if (roll < 0.45) {
        // Flips stay on at most 2 nodes: with 2 down, no stripe ever has more than m = 4 bad chunks.
        const pool = flippedNodes.size < 2 ? running : running.filter((n) => flippedNodes.has(n))
        if (pool.length === 0) continue
        const node = pool[randomInt(random, 0, pool.length)]!
        const count = randomInt(random, 1, 8)
        log.push(`${step}: flip ${count} bytes on node ${node.index}`)
        flipRandomBytes(node, count, random)
        flippedNodes.add(node)
      } else if (roll < 0.75) {
        const size = randomInt(random, 1, 3 * MiB)
        const key = `c-${step}`
        const data = seededBytes(random, size)
        log.push(`${step}: write ${key} (${size} bytes)`)
        writes++
        try {
          await putAll(client, 'chaos', new Map([[key, data]]))
          acknowledged.set(key, data)
        } catch (error) {
          failedWrites++ // a clean error is allowed; only acknowledged objects must survive
          log.push(`${step}: write ${key} failed: ${(error as Error).message}`)
        }
      } else if (acknowledged.size > 0) {
        const keys = [...acknowledged.keys()]
        const key = keys[randomInt(random, 0, keys.length)]!
        reads++
        await assertAllReadBack(client, 'chaos', new Map([[key, acknowledged.get(key)!]]))
      }
      await sleep(randomInt(random, 100, 1500))
    }
    console.log(`# schedule: ${log.length} events, ${writes} writes (${failedWrites} failed cleanly), ${reads} reads\n# ${log.join('\n# ')}`)

    // Everything back up; rot found by scrubbing; then the cluster must be whole again.
    await Promise.all(cluster.nodes.filter((n) => n.process === null).map((n) => n.start()))
    await waitForFullRedundancy(client.catalog, cluster, 120_000)
    await scrubEverywhere(cluster, 60_000)
    await waitForFullRedundancy(client.catalog, cluster, 120_000)
    await assertEveryChunkChecks(client)
    await assertAllReadBack(client, 'chaos', acknowledged)
    assert.ok(acknowledged.size > 0, 'some writes were acknowledged')
  })
})
