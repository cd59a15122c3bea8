// The node view placement draws from: UP nodes with fresh heartbeats first; every
// UP node when too few are fresh (a stalled catalog ages all heartbeats at once).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Membership, type NodeView } from '../../src/cluster/membership.ts'

function view(i: number, heartbeatAgeMs: number, state: NodeView['state'] = 'UP'): NodeView {
  return { id: `n${i}`, address: `http://127.0.0.1:${9000 + i}`, rack: `r${i % 4}`, state, capacityBytes: 100, usedBytes: 10, heartbeatAgeMs }
}

async function membership(views: NodeView[], wanted = 12): Promise<Membership> {
  const m = new Membership({ load: async () => views, refreshIntervalMs: 60_000, heartbeatStaleMs: 15_000, ...(wanted > 0 ? { placementNodesWanted: wanted } : {}) })
  await m.refresh()
  return m
}

const ids = (m: Membership) => m.candidates().map((c) => c.id).sort()

test('enough fresh UP nodes: only they are offered; DOWN, READONLY and DRAINING never', async () => {
  const views = [...Array.from({ length: 12 }, (_, i) => view(i, 1_000)), view(12, 20_000), view(13, 0, 'DOWN'), view(14, 0, 'READONLY'), view(15, 0, 'DRAINING')]
  const m = await membership(views)
  assert.deepEqual(ids(m), Array.from({ length: 12 }, (_, i) => `n${i}`).sort())
  assert.deepEqual(m.candidates()[0], { id: 'n0', rack: 'r0', freeBytes: 90 })
})

test('too few fresh heartbeats (a stalled catalog): every UP node is offered, still never a DOWN one', async () => {
  const views = [...Array.from({ length: 3 }, (_, i) => view(i, 500)), ...Array.from({ length: 9 }, (_, i) => view(3 + i, 40_000)), view(12, 0, 'DOWN')]
  const m = await membership(views)
  assert.deepEqual(ids(m), Array.from({ length: 12 }, (_, i) => `n${i}`).sort())
})

test('the fallback follows the number a stripe needs', async () => {
  const views = [...Array.from({ length: 6 }, (_, i) => view(i, 500)), ...Array.from({ length: 6 }, (_, i) => view(6 + i, 40_000))]
  assert.equal((await membership(views, 6)).candidates().length, 6)
  assert.equal((await membership(views, 7)).candidates().length, 12)
})

test('without placementNodesWanted only fresh UP nodes are ever offered', async () => {
  const views = [...Array.from({ length: 3 }, (_, i) => view(i, 500)), ...Array.from({ length: 9 }, (_, i) => view(3 + i, 40_000))]
  assert.deepEqual(ids(await membership(views, 0)), ['n0', 'n1', 'n2'])
})
