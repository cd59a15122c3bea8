// The failure detector over a real catalog and the database's clock: a silent node
// is DOWN after the down-timeout, its stripes are queued only after the repair
// grace, only by the leading process, and a node that comes back has the tasks it
// no longer needs dropped.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Catalog } from '../../src/catalog/catalog.ts'
import { FailureDetector } from '../../src/repair/failure-detector.ts'
import { bucketName, MiB, stripedObject } from '../catalog/fixtures.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { silent } from './helpers.ts'

const nodes = ['n0', 'n1', 'n2', 'n3']

async function beat(catalog: Catalog, ids: readonly string[]): Promise<void> {
  for (const id of ids) await catalog.nodes.heartbeat({ id, address: `http://${id}`, rack: `r-${id}`, capacityBytes: 1, usedBytes: 0 })
}

forEachBackend((backend) => {
  test('silent node: DOWN after the timeout, stripes queued after the grace, tasks dropped when it returns', async () => {
    const catalog = await backend.freshCatalog()
    await beat(catalog, nodes)
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    await catalog.objects.commit(stripedObject(bucket, 'k', 48 * MiB, { shape: { nodes } })) // 3 stripes, n3 holds chunks 3, 7, 11
    const config = { downTimeoutMs: 600, repairGraceMs: 900 }
    const leader = new FailureDetector({ catalog, config, selfId: 'n0', log: silent })
    const follower = new FailureDetector({ catalog, config, selfId: 'n1', log: silent })
    let downAt: number | null = null
    const started = Date.now()
    while ((await catalog.repairs.stats()).ready === 0) {
      assert.ok(Date.now() - started < 20_000, 'stripes were queued')
      await beat(catalog, ['n0', 'n1', 'n2'])
      await follower.step()
      await leader.step()
      const n3 = (await catalog.nodes.get('n3'))!
      if (n3.state === 'DOWN' && downAt === null) {
        downAt = Date.now()
        assert.ok(n3.heartbeatAgeMs >= config.downTimeoutMs)
      }
      if ((await catalog.repairs.stats()).ready > 0) {
        assert.ok(n3.heartbeatAgeMs >= config.downTimeoutMs + config.repairGraceMs, `queued only after the grace (silent ${n3.heartbeatAgeMs} ms)`)
      }
      await sleep(100)
    }
    assert.ok(downAt !== null, 'n3 was marked DOWN first')
    // Every step after the scan started may have queued more; let the leader finish its scan.
    for (let i = 0; i < 5; i++) await leader.step()
    assert.equal((await catalog.repairs.stats()).ready, 3, 'one task per stripe with a chunk on n3')
    assert.equal(follower.status().stripesQueued, 0, 'only the leader scans')
    assert.equal(leader.status().leading, true)
    for (const id of ['n0', 'n1', 'n2']) assert.equal((await catalog.nodes.get(id))!.state, 'UP')

    await beat(catalog, nodes) // n3 is back before any worker repaired it
    await leader.step()
    assert.equal((await catalog.nodes.get('n3'))!.state, 'UP')
    assert.equal((await catalog.repairs.stats()).ready, 0, 'the tasks it no longer needs are dropped')
    assert.equal(leader.status().tasksDropped, 3)
  })

  test('when the leader goes silent, the next live node leads and scans', async () => {
    const catalog = await backend.freshCatalog()
    await beat(catalog, nodes)
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    await catalog.objects.commit(stripedObject(bucket, 'k', 16 * MiB, { shape: { nodes } }))
    const config = { downTimeoutMs: 500, repairGraceMs: 0 }
    const next = new FailureDetector({ catalog, config, selfId: 'n1', log: silent })
    const started = Date.now()
    const bothDown = async () => (await catalog.nodes.list()).filter((n) => n.state === 'DOWN').length === 2
    while ((await catalog.repairs.stats()).ready === 0 || !(await bothDown())) {
      assert.ok(Date.now() - started < 20_000, 'the follower took over')
      await beat(catalog, ['n1', 'n2'])
      await next.step()
      await sleep(100)
    }
    assert.equal(next.status().leading, true)
    assert.deepEqual((await catalog.nodes.list()).filter((n) => n.state === 'DOWN').map((n) => n.id), ['n0', 'n3'])
    for (let i = 0; i < 5; i++) await next.step()
    assert.equal((await catalog.repairs.stats()).ready, 1, 'the one stripe, queued once for both nodes')
  })
})
