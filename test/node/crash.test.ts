// Crash safety of a real node process: a stream of puts and deletes from several
// writers, SIGKILL at a random moment, restart, check — many times over one
// directory. Acknowledged puts must read back byte-identical, acknowledged deletes
// must stay deleted, and an operation whose answer was lost may have happened or
// not — but nothing is ever served corrupt, and what recovery settled stays settled.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { checksumTree } from '../../src/codec/checksum.ts'
import { HttpChunkStore } from '../../src/cluster/http-store.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { newChunk, randomInt, seededRandom, withTempDir } from './helpers.ts'
import { startNodeProcess, type NodeProcess } from './processes.ts'

const rounds = 7
const writers = 6

async function inParallel<T>(items: T[], fn: (item: T) => Promise<void>, width = 8): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

interface Spec {
  data: Buffer
}

test('kill -9 at random moments: acknowledged chunks survive byte-identical, nothing is served corrupt', { timeout: 300_000 }, async (t) => {
  const seed = Number(process.env.BLOBFS_CRASH_SEED ?? Math.floor(Math.random() * 1e9))
  t.diagnostic(`seed ${seed} (BLOBFS_CRASH_SEED=${seed} replays the same workload)`)
  const random = seededRandom(seed)
  await withTempDir(async (dir) => {
    const present = new Map<string, Spec>() // must read back identical
    const absent = new Set<string>() // must be absent
    const maybePut = new Map<string, Spec>() // put sent, no answer
    const maybeDeleted = new Set<string>() // delete sent, no answer
    let node: NodeProcess | null = null
    const store = new HttpChunkStore({ resolve: () => node!.url, retriesMax: 0 })
    let killedWithAcks = 0
    try {
      const args = ['--block-size', '1MiB', '--snapshot-interval-records', '40', '--compaction-dead-ratio', '0.3']
      const check = async (): Promise<void> => {
        await inParallel([...present], async ([id, spec]) => {
          if (maybeDeleted.has(id)) return // settled below
          const got = await store.get('n', id)
          assert.ok(got.equals(spec.data), `acknowledged chunk ${id} came back different`)
        })
        await inParallel([...absent], async (id) => assert.equal(await store.head('n', id), null, `deleted or lost chunk ${id} came back`))
        // Unanswered operations: whatever recovery decided is final from now on.
        for (const [id, spec] of maybePut) {
          try {
            const got = await store.get('n', id)
            assert.ok(got.equals(spec.data), `unacknowledged chunk ${id} came back different`)
            if (!maybeDeleted.has(id)) present.set(id, spec)
          } catch (error) {
            if (!isBlobfsError(error, 'ChunkNotFound')) throw error
            absent.add(id)
          }
        }
        maybePut.clear()
        for (const id of maybeDeleted) {
          const spec = present.get(id)!
          try {
            assert.ok((await store.get('n', id)).equals(spec.data), `chunk ${id} came back different`)
          } catch (error) {
            if (!isBlobfsError(error, 'ChunkNotFound')) throw error
            present.delete(id)
            absent.add(id)
          }
        }
        maybeDeleted.clear()
      }

      for (let round = 0; round < rounds; round++) {
        node = await startNodeProcess(dir, args)
        try {
          await check()
        } catch (error) {
          t.diagnostic(node.logs.join('\n')) // the recovery report of the failing start
          throw error
        }
        let stop = false
        let acks = 0
        const writer = async (w: number): Promise<void> => {
          const r = seededRandom(seed + round * 100 + w)
          while (!stop) {
            const ids = [...present.keys()]
            if (ids.length > 10 && r() < 0.25) {
              const id = ids[randomInt(r, 0, ids.length)]!
              if (maybeDeleted.has(id)) continue
              maybeDeleted.add(id)
              try {
                await store.delete('n', id)
              } catch {
                return // the node is gone: leave it unanswered
              }
              maybeDeleted.delete(id)
              present.delete(id)
              absent.add(id)
            } else {
              const lengths = [0, 1, 65537, randomInt(r, 2, 200_000)]
              const c = newChunk(randomInt(r, 1, 2 ** 30), lengths[randomInt(r, 0, lengths.length)]!)
              const spec = { data: c.data }
              maybePut.set(c.id, spec)
              try {
                await store.put('n', c.id, c.data, checksumTree(c.data))
              } catch {
                return
              }
              maybePut.delete(c.id)
              present.set(c.id, spec)
            }
            acks++
          }
        }
        const running = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)))
        // Kill at a random moment once acknowledgements are flowing.
        let ended = false
        void running.then(() => (ended = true))
        while (acks === 0 && !ended) await sleep(2)
        const acksBeforeKill = acks
        await sleep(randomInt(random, 0, 600))
        await node.kill('SIGKILL')
        stop = true
        await running
        if (acksBeforeKill > 0) killedWithAcks++
      }
      // Once more after the last crash, then a clean stop and a start from the snapshot.
      node = await startNodeProcess(dir, args)
      await check()
      await node.kill('SIGTERM')
      node = await startNodeProcess(dir, args)
      await check()
      assert.ok(present.size > 50, `only ${present.size} chunks were acknowledged`)
      assert.ok(killedWithAcks === rounds, 'every round was killed while writes were being acknowledged')
      t.diagnostic(`${present.size} chunks present, ${absent.size} absent after ${rounds} kills`)
    } finally {
      await store.close()
      await node?.kill()
    }
  })
})
