// The repair worker over a real catalog and in-memory nodes: what must hold after a
// repair is that every stripe is back to k+m chunks on distinct live nodes within
// the rack cap, each chunk holding exactly the bytes its row's checksum names, and
// that losing m more nodes afterwards still reads every object back byte-identical.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { ByteRange, ChunkStore } from '../../src/cluster/chunk-store.ts'
import { rankNodes } from '../../src/cluster/placement.ts'
import { checksumTree, type ChecksumTree } from '../../src/codec/checksum.ts'
import { queuedDeletions } from '../catalog/fixtures.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { repairConfig, RepairWorker } from '../../src/repair/repair-worker.ts'
import { assertChunksIntact, candidatesOf, drain, nodeId, repairHarness, silent, stripeSizeBytes } from './helpers.ts'

forEachBackend((backend) => {
  test('4 nodes of 16 lost, one per rack: every stripe back to 12 chunks; then 4 more lost and every object reads back', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 16, 4)
    const bodies = new Map([['a', randomBytes(5 * stripeSizeBytes + 77)], ['b', randomBytes(stripeSizeBytes / 3)], ['c', randomBytes(2 * stripeSizeBytes)]])
    for (const [key, data] of bodies) await h.put(key, data)
    const lost = [0, 5, 10, 15] // racks 0, 1, 2, 3
    for (const i of lost) h.lose(i)
    for (const i of lost) {
      for (let cursor: string | undefined, more = true; more; ) {
        const batch = await catalog.repairs.enqueueNode(nodeId(i), { ...(cursor ? { afterChunkId: cursor } : {}), limit: 3 })
        cursor = batch.nextAfterChunkId ?? undefined
        more = cursor !== undefined
      }
    }
    assert.ok((await catalog.repairs.stats()).ready > 0)
    const worker = h.worker()
    await drain(worker, catalog)
    const lostIds = new Set(lost.map(nodeId))
    const deletions = await queuedDeletions(catalog)
    for (const key of bodies.keys()) {
      for (const stripe of await h.stripes(key)) {
        assert.equal(stripe.chunks.length, 12, `${key} stripe ${stripe.stripeIndex} has every chunk`)
        assert.equal(new Set(stripe.chunks.map((c) => c.nodeId)).size, 12, 'on distinct nodes')
        assert.ok(stripe.chunks.every((c) => !lostIds.has(c.nodeId)), 'none on a lost node')
        const perRack = new Map<string, number>()
        for (const c of stripe.chunks) {
          const rack = h.views.find((v) => v.id === c.nodeId)!.rack
          perRack.set(rack, (perRack.get(rack) ?? 0) + 1)
        }
        assert.ok([...perRack.values()].every((n) => n <= 3), `rack cap: ${[...perRack.values()]}`)
      }
      await assertChunksIntact(h, key)
    }
    assert.ok(worker.status().chunksRebuilt as number > 0)
    const rows = await catalog.db.sql`SELECT count(*)::int AS n FROM chunk_deletions WHERE reason = 'REPAIRED'`
    assert.equal(rows[0]!.n, worker.status().chunksRebuilt, 'every replaced chunk is queued for deletion')
    assert.ok(deletions.size >= (worker.status().chunksRebuilt as number))

    // Full redundancy is back: 4 other nodes may go and nothing is lost.
    for (const i of [1, 6, 11, 12]) h.store.setNodeFaults(nodeId(i), { down: true })
    for (const [key, data] of bodies) assert.ok((await h.read(key)).equals(data), `${key} byte-identical`)
  })

  test('rotten chunks reported by a read are found, rebuilt (on the same node if need be) and pass their check after', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 12, 4)
    const data = randomBytes(3 * stripeSizeBytes)
    await h.put('rot', data)
    const [first, second] = await h.stripes('rot')
    const rotten = [first!.chunks[2]!, first!.chunks[9]!, second!.chunks[0]!]
    for (const chunk of rotten) h.memory.rawBytes(chunk.nodeId, chunk.chunkId)![100] ^= 0xff
    assert.ok((await h.read('rot')).equals(data), 'a read never returns the rotten bytes')
    await catalog.repairs.enqueueChunks(rotten.map((c) => c.chunkId), 'CORRUPT', 'test')
    const worker = h.worker()
    await drain(worker, catalog)
    assert.equal(worker.status().chunksRebuilt, 3)
    const rottenIds = new Set(rotten.map((c) => c.chunkId))
    for (const stripe of await h.stripes('rot')) {
      assert.equal(stripe.chunks.length, 12)
      assert.ok(stripe.chunks.every((c) => !rottenIds.has(c.chunkId)))
    }
    await assertChunksIntact(h, 'rot')
    const deletions = await queuedDeletions(catalog)
    for (const id of rottenIds) assert.ok(deletions.has(id), 'the rotten chunk is queued for deletion')
  })

  test('a node back before repair reached it: the task is dropped without reading a chunk', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 12, 4)
    await h.put('x', randomBytes(stripeSizeBytes))
    await catalog.repairs.enqueueNode(nodeId(3), { limit: 100 })
    // Node 3 was DOWN past the grace when its stripes were queued; it heartbeats again (UP) before a worker gets there.
    assert.equal(h.views.find((v) => v.id === nodeId(3))!.state, 'UP')
    const gets = h.store.counters.calls.get
    const worker = h.worker()
    await drain(worker, catalog)
    assert.equal(h.store.counters.calls.get, gets, 'no chunk was read')
    assert.equal(worker.status().tasksHealthy, 1)
    assert.equal(worker.status().chunksRebuilt, 0)
  })

  test('a node DOWN but within the repair grace: its chunks are neither rebuilt nor used as sources', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 12, 4)
    const data = randomBytes(stripeSizeBytes)
    await h.put('g', data)
    const [stripe] = await h.stripes('g')
    const silentNode = stripe!.chunks[0]!.nodeId
    Object.assign(h.views.find((v) => v.id === silentNode)!, { state: 'DOWN', heartbeatAgeMs: 1_500 })
    h.store.setNodeFaults(silentNode, { down: true })
    const rotten = stripe!.chunks[4]!
    h.memory.rawBytes(rotten.nodeId, rotten.chunkId)![0] ^= 1
    await catalog.repairs.enqueueChunks([rotten.chunkId], 'CORRUPT')
    await drain(h.worker(), catalog)
    const [after] = await h.stripes('g')
    assert.equal(after!.chunks.find((c) => c.chunkIndex === 0)!.nodeId, silentNode, 'the silent node keeps its chunk')
    assert.notEqual(after!.chunks.find((c) => c.chunkIndex === 4)!.chunkId, rotten.chunkId, 'the rotten chunk was rebuilt')
    h.store.clearNodeFaults()
    await assertChunksIntact(h, 'g')
  })

  test('a worker judges nodes on a view reloaded after it claimed, not on one from before the grace ran out', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    const data = randomBytes(2 * stripeSizeBytes)
    await h.put('stale', data)
    let seen = h.views.map((v) => ({ ...v })) // taken while node 4 was still heartbeating
    h.lose(4)
    await catalog.repairs.enqueueNode(nodeId(4), { limit: 100 })
    const worker = new RepairWorker({
      catalog,
      store: h.store,
      nodes: () => seen,
      candidates: () => candidatesOf(seen),
      refreshNodes: async () => {
        seen = h.views.map((v) => ({ ...v }))
      },
      owner: 'stale',
      config: repairConfig({ concurrency: 4, rateBytesPerSec: 1e12, idleMs: 5, retryMsMin: 1, retryMsMax: 5, downTimeoutMs: 1000, repairGraceMs: 1000 }),
      log: silent,
    })
    await drain(worker, catalog)
    assert.equal(worker.status().tasksHealthy, 0, 'no task was dropped as healthy')
    for (const stripe of await h.stripes('stale')) assert.ok(stripe.chunks.every((c) => c.nodeId !== nodeId(4)))
    await assertChunksIntact(h, 'stale')
  })

  test('too few nodes to keep the rule: the task waits; once a node joins it completes', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 12, 4)
    const data = randomBytes(2 * stripeSizeBytes)
    await h.put('few', data)
    h.lose(7)
    await catalog.repairs.enqueueNode(nodeId(7), { limit: 100 })
    const worker = h.worker()
    const signal = new AbortController().signal
    await worker.step(signal)
    assert.equal(worker.status().tasksFailed, 2, 'NotEnoughNodes: 11 live nodes all hold a chunk of each stripe')
    const waiting = await catalog.db.sql`SELECT last_error FROM repair_tasks`
    assert.equal(waiting.length, 2)
    assert.match(waiting[0]!.last_error, /no node that keeps the rack rule/)
    h.addNode(12, 'rack-3') // node 7 was in rack 3
    await new Promise((resolve) => setTimeout(resolve, 20)) // past the retry backoff
    await drain(worker, catalog)
    for (const stripe of await h.stripes('few')) {
      assert.equal(stripe.chunks.length, 12)
      assert.ok(stripe.chunks.some((c) => c.nodeId === nodeId(12)))
    }
    await assertChunksIntact(h, 'few')
    assert.ok((await h.read('few')).equals(data))
  })

  test('two workers on one stripe (a lease ran out mid-task): one repair applies, the other changes nothing', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    const data = randomBytes(stripeSizeBytes)
    await h.put('race', data)
    const [stripe] = await h.stripes('race')
    const victim = stripe!.chunks[3]!.nodeId
    h.lose(Number(victim.slice(-12)))
    await catalog.repairs.enqueueNode(victim, { limit: 100 })
    const slow = h.worker('slow')
    const fast = h.worker('fast')
    const [task] = await catalog.repairs.claim({ owner: 'slow', leaseMs: 10_000, limit: 1 })
    assert.ok(task)
    // The slow worker reads its sources while its lease runs out and the fast one takes the task and finishes.
    h.store.setNodeFaults(stripe!.chunks[0]!.nodeId, { delayMs: 300 })
    const slowRun = slow.run(task, new AbortController().signal)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await catalog.db.sql`UPDATE repair_tasks SET available_at = now() - INTERVAL '1 second'`
    await drain(fast, catalog)
    assert.equal(await slowRun, 'lost')
    h.store.clearNodeFaults(stripe!.chunks[0]!.nodeId)
    const [after] = await h.stripes('race')
    assert.equal(after!.chunks.length, 12)
    assert.equal(new Set(after!.chunks.map((c) => c.nodeId)).size, 12)
    assert.equal(fast.status().chunksRebuilt, 1)
    assert.equal(slow.status().chunksRebuilt, 0)
    await assertChunksIntact(h, 'race')
  })

  test('a stripe with two chunks on one node gets one of them moved to a node of its own', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    const data = randomBytes(stripeSizeBytes)
    await h.put('dup', data)
    const [stripe] = await h.stripes('dup')
    const four = stripe!.chunks.find((c) => c.chunkIndex === 4)!
    const five = stripe!.chunks.find((c) => c.chunkIndex === 5)!
    // Chunk 5's bytes, stored again on chunk 4's node, and the row pointed there.
    const bytes = await h.memory.get(five.nodeId, five.chunkId)
    const moved = { ...five, chunkId: randomUUID(), nodeId: four.nodeId }
    await h.memory.put(moved.nodeId, moved.chunkId, bytes, checksumTree(bytes))
    const objectId = (await catalog.objects.get(h.bucket, 'dup'))!.objectId
    // The catalog no longer records such a stripe (replace and relocate refuse a node that keeps another
    // chunk of it), but a catalog may hold one from before that rule: the row is pointed there directly.
    await catalog.db.sql`UPDATE object_chunks_allocation SET chunk_id = ${moved.chunkId}, storage_node_id = ${moved.nodeId}
      WHERE object_id = ${objectId} AND part_index = 1 AND stripe_index = 0 AND chunk_index = 5`
    assert.deepEqual((await h.stripes('dup'))[0]!.chunks.filter((c) => c.nodeId === four.nodeId).map((c) => c.chunkIndex), [4, 5])
    await catalog.repairs.enqueue([{ objectId, partNumber: 1, stripeIndex: 0, reason: 'NODE_DOWN' }])
    await drain(h.worker(), catalog)
    const [after] = await h.stripes('dup')
    assert.equal(new Set(after!.chunks.map((c) => c.nodeId)).size, 12, 'distinct nodes again')
    await assertChunksIntact(h, 'dup')
    assert.ok((await h.read('dup')).equals(data))
  })

  test('a rebuilt chunk never goes to the node keeping the old copy of another chunk being rebuilt; a swap the catalog refuses is retried', async () => {
    // Two chunks to rebuild: `rot` fails its check on its (healthy) node P, `gone` was on a lost node.
    // The ten other nodes keep their chunks, so the two go to P and to a spare node, which is full at
    // first. Before the reservation, `rot` could be offered the spare and find no node (its rotten
    // row stayed on P) while `gone` was written to P: two chunks of the stripe on P, which the
    // catalog then refused on every retry until the spare took writes again.
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 12, 4)
    const data = randomBytes(stripeSizeBytes)
    await h.put('crowd', data)
    const [stripe] = await h.stripes('crowd')
    const objectId = (await catalog.objects.get(h.bucket, 'crowd'))!.objectId
    const spare = nodeId(12)
    const nodeOf = (index: number) => stripe!.chunks.find((c) => c.chunkIndex === index)!.nodeId
    const offeredFirst = (p: string) => rankNodes(`${objectId}/1/0`, [p, spare].map((id) => ({ id, rack: 'any', freeBytes: 1e12 })))[0]!.id
    const pairs = Array.from({ length: 12 * 12 }, (_, n) => [Math.floor(n / 12), n % 12] as const).filter(([a, b]) => a !== b)
    const [rot, gone] = pairs.find(([a, b]) => (offeredFirst(nodeOf(a)) === spare ? a < b : b < a))!
    const p = nodeOf(rot)
    const q = nodeOf(gone)
    const rotten = stripe!.chunks.find((c) => c.chunkIndex === rot)!
    h.memory.rawBytes(p, rotten.chunkId)![100] ^= 0xff
    h.lose(Number(q.slice(-12)))
    h.addNode(12, h.views.find((v) => v.id === q)!.rack)
    h.store.setNodeFaults(spare, { full: true })
    await catalog.repairs.enqueueChunks([rotten.chunkId], 'CORRUPT', 'test')

    // The catalog's refusal is retried, not dropped. To meet it, the first swap races a writer that
    // moved a kept chunk's row onto the node the rebuilt chunk went to (as a node back under another
    // view could); the row goes back right after, as that writer's own repair would.
    const replace = catalog.chunks.replace.bind(catalog.chunks)
    let refused: { nodeId: string; chunkId: string } | undefined
    catalog.chunks.replace = async (...args: Parameters<typeof replace>) => {
      if (refused) return replace(...args)
      const target = args[1][0]!
      refused = { nodeId: target.nodeId, chunkId: target.chunkId }
      const moved = stripe!.chunks.find((c) => !args[1].some((n) => n.chunkIndex === c.chunkIndex) && c.chunkIndex !== rot)!
      await catalog.db.sql`UPDATE object_chunks_allocation SET storage_node_id = ${target.nodeId} WHERE chunk_id = ${moved.chunkId}`
      try {
        return await replace(...args)
      } finally {
        await catalog.db.sql`UPDATE object_chunks_allocation SET storage_node_id = ${moved.nodeId} WHERE chunk_id = ${moved.chunkId}`
      }
    }

    const worker = h.worker()
    const signal = new AbortController().signal
    await worker.step(signal)
    assert.equal(worker.status().tasksConflict, 1, 'the refused swap counts as a conflict')
    assert.equal(worker.status().chunksRebuilt, 0)
    const [waiting] = await catalog.db.sql`SELECT last_error FROM repair_tasks`
    assert.match(waiting!.last_error, /keeps another chunk of the stripe/, 'the task waits for a retry')
    const queued = await catalog.db.sql`SELECT chunk_id FROM chunk_deletions WHERE storage_node_id = ${refused!.nodeId} AND reason = 'ORPHANED'`
    assert.deepEqual(queued.map((r) => r.chunk_id), [refused!.chunkId], 'the refused chunk is queued for deletion')

    for (let i = 0; i < 200; i++) {
      const stats = await catalog.repairs.stats()
      if (stats.ready + stats.leased + stats.delayed === 0) break
      if ((await worker.step(signal)).state === 'idle') await new Promise((resolve) => setTimeout(resolve, 5))
      const [now] = await h.stripes('crowd')
      assert.equal(new Set(now!.chunks.map((c) => c.nodeId)).size, now!.chunks.length, 'never two chunks of the stripe on one node')
      assert.equal(worker.status().tasksConflict, 1, 'no refusal but the injected one: placement never plans two chunks on one node')
      if (i === 3) h.store.clearNodeFaults(spare)
    }
    assert.deepEqual(await catalog.repairs.stats(), { ready: 0, leased: 0, delayed: 0 }, 'the task completed on a retry')
    const [after] = await h.stripes('crowd')
    assert.equal(after!.chunks.length, 12)
    assert.equal(new Set(after!.chunks.map((c) => c.nodeId)).size, 12, 'every chunk on a node of its own')
    assert.ok(after!.chunks.every((c) => c.nodeId !== q && c.chunkId !== rotten.chunkId && c.chunkId !== refused!.chunkId))
    await assertChunksIntact(h, 'crowd')
    assert.ok((await h.read('crowd')).equals(data))
  })

  test('chunks on a DRAINING node move to other nodes and the bytes stay the same', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    const data = randomBytes(3 * stripeSizeBytes + 5)
    await h.put('drain', data)
    const draining = h.views[2]!
    draining.state = 'DRAINING'
    await catalog.repairs.enqueueNode(draining.id, { limit: 100, reason: 'DRAIN' })
    await drain(h.worker(), catalog)
    for (const stripe of await h.stripes('drain')) {
      assert.equal(stripe.chunks.length, 12)
      assert.ok(stripe.chunks.every((c) => c.nodeId !== draining.id))
    }
    await assertChunksIntact(h, 'drain')
    assert.ok((await h.read('drain')).equals(data))
  })

  test('a worker repairs at most `concurrency` stripes at once even when the queue hands it more; the rest go back at once', async () => {
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    await h.put('greedy', randomBytes(10 * stripeSizeBytes))
    // The node in the most stripes (placement may route around a slow node on a busy machine).
    const held = new Map<string, number>()
    for (const stripe of await h.stripes('greedy')) for (const c of stripe.chunks) held.set(c.nodeId, (held.get(c.nodeId) ?? 0) + 1)
    const victim = [...held.entries()].sort((a, b) => b[1] - a[1])[0]![0]
    const victimIndex = Array.from({ length: 13 }, (_, i) => i).find((i) => nodeId(i) === victim)!
    h.lose(victimIndex)
    await catalog.repairs.enqueueNode(victim, { limit: 100 })
    const queued = Number((await catalog.repairs.stats()).ready)
    assert.ok(queued >= 6, `enough stripes (${queued})`)
    let handedOut = 0
    const repairs = Object.assign(Object.create(catalog.repairs) as typeof catalog.repairs, {
      claim: async (options: Parameters<typeof catalog.repairs.claim>[0]) => {
        const tasks = await catalog.repairs.claim({ ...options, limit: options.limit * 5 }) // a queue that over-delivers
        handedOut += tasks.length
        return tasks
      },
    })
    const worker = new RepairWorker({
      catalog: { repairs, chunks: catalog.chunks },
      store: h.store,
      nodes: () => h.views,
      candidates: () => candidatesOf(h.views),
      owner: 'greedy',
      config: repairConfig({ concurrency: 2, rateBytesPerSec: 1e12, idleMs: 5, retryMsMin: 1, retryMsMax: 5, downTimeoutMs: 1000, repairGraceMs: 1000 }),
      log: silent,
    })
    assert.equal((await worker.step(new AbortController().signal)).state, 'busy')
    assert.ok(handedOut > 2, `the queue handed out ${handedOut}`)
    assert.equal(worker.status().tasksRepaired, 2, 'two stripes repaired in the step')
    assert.deepEqual(await catalog.repairs.stats(), { ready: queued - 2, leased: 0, delayed: 0 }, 'the others are back in the queue, claimable now')
    await drain(worker, catalog)
    assert.equal(worker.status().tasksRepaired, queued)
    for (const stripe of await h.stripes('greedy')) assert.ok(stripe.chunks.every((c) => c.nodeId !== victim))
    await assertChunksIntact(h, 'greedy')
  })

  test('the rate cap bounds each node\'s repair traffic at every moment, all its tasks together', async () => {
    // Two workers (two nodes), each with its own cap and 4 stripes at once, repair one lost node
    // together. Each chunk read or written is logged with the time it left its worker: at every
    // call, the bytes that worker has moved so far are within cap x time since the start (plus
    // one chunk for timer rounding). A cap per task instead of per worker, a burst after a pause,
    // or no cap at all breaks this within the first stripe. The bound holds however slow the
    // machine: waiting longer only leaves more room.
    const catalog = await backend.freshCatalog()
    const h = await repairHarness(catalog, 13, 4)
    await h.put('paced', randomBytes(10 * stripeSizeBytes)) // 10 stripes of 16 KiB chunks
    // The node in the most stripes dies (with 13 nodes, one of a rack's 4 sits out each stripe:
    // a fixed node could be in as few as half of them).
    const stripesOn = new Array<number>(13).fill(0)
    for (const stripe of await h.stripes('paced')) for (const c of stripe.chunks) stripesOn[Number(c.nodeId.slice(-12))]!++
    const victim = stripesOn.indexOf(Math.max(...stripesOn))
    h.lose(victim)
    await catalog.repairs.enqueueNode(nodeId(victim), { limit: 100 })
    assert.ok(Number((await catalog.repairs.stats()).ready) >= 6, 'enough stripes for both workers')
    const rate = 256 * 1024
    const chunkBytes = stripeSizeBytes / 8
    const calls = new Map<string, { atMs: number; bytes: number }[]>()
    const logged = (owner: string): ChunkStore => {
      const log: { atMs: number; bytes: number }[] = []
      calls.set(owner, log)
      return {
        head: (node, chunkId, signal) => h.store.head(node, chunkId, signal),
        delete: (node, chunkId, signal) => h.store.delete(node, chunkId, signal),
        inventory: (node, signal) => h.store.inventory(node, signal),
        get: async (node: string, chunkId: string, range?: ByteRange, signal?: AbortSignal) => {
          log.push({ atMs: performance.now(), bytes: chunkBytes })
          return h.store.get(node, chunkId, range, signal)
        },
        put: async (node: string, chunkId: string, data: Buffer, tree: ChecksumTree, signal?: AbortSignal) => {
          log.push({ atMs: performance.now(), bytes: data.length })
          return h.store.put(node, chunkId, data, tree, signal)
        },
      }
    }
    const workers = ['n1', 'n2'].map(
      (owner) =>
        new RepairWorker({
          catalog,
          store: logged(owner),
          nodes: () => h.views,
          candidates: () => candidatesOf(h.views),
          owner,
          config: repairConfig({ concurrency: 4, rateBytesPerSec: rate, idleMs: 5, retryMsMin: 1, retryMsMax: 5, downTimeoutMs: 1000, repairGraceMs: 1000 }),
          log: silent,
        }),
    )
    const startedMs = performance.now()
    await Promise.all(workers.map((w) => drain(w, catalog)))
    for (const [owner, log] of calls) {
      assert.ok(log.length >= 9, `${owner} repaired at least one stripe (${log.length} chunk reads and writes)`)
      let moved = 0
      for (const call of log) {
        moved += call.bytes
        const allowed = (rate * (call.atMs - startedMs)) / 1000 + chunkBytes
        assert.ok(moved <= allowed, `${owner}: ${moved} bytes moved after ${(call.atMs - startedMs).toFixed(0)} ms, over its cap of ${rate} B/s (${allowed.toFixed(0)} allowed)`)
      }
    }
    for (const stripe of await h.stripes('paced')) assert.ok(stripe.chunks.every((c) => c.nodeId !== nodeId(victim)))
    await assertChunksIntact(h, 'paced')
  })
})
