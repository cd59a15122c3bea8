import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rackCapFor, rankNodes, StripePlacement, type NodeCandidate } from '../../src/cluster/placement.ts'

const GiB = 2 ** 30

function cluster(nodeCount: number, rackCount: number, freeBytes = 100 * GiB): NodeCandidate[] {
  return Array.from({ length: nodeCount }, (_, i) => ({ id: `node-${i}`, rack: `rack-${i % rackCount}`, freeBytes }))
}

function rackHistogram(nodes: (NodeCandidate | undefined)[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const node of nodes) if (node) counts.set(node.rack, (counts.get(node.rack) ?? 0) + 1)
  return counts
}

test('12 nodes in 4 racks: 12 distinct nodes, 3 per rack (never more than m=4)', () => {
  const nodes = cluster(12, 4)
  for (let stripe = 0; stripe < 200; stripe++) {
    const placement = new StripePlacement(`stripe-${stripe}`, nodes, 12, 4)
    assert.equal(placement.placedCount, 12)
    assert.equal(new Set(placement.nodes.map((n) => n!.id)).size, 12)
    assert.ok(placement.rackSafe)
    for (const count of rackHistogram(placement.nodes).values()) assert.equal(count, 3)
  }
})

test('with at least k+m racks every chunk of a stripe lands in its own rack', () => {
  const nodes = cluster(36, 12)
  for (let stripe = 0; stripe < 100; stripe++) {
    const placement = new StripePlacement(`s${stripe}`, nodes, 12, 4)
    assert.equal(placement.placedCount, 12)
    assert.equal(rackHistogram(placement.nodes).size, 12)
  }
})

test('losing any one rack never loses more than m chunks of any stripe', () => {
  const nodes = cluster(20, 5)
  for (let stripe = 0; stripe < 200; stripe++) {
    const placement = new StripePlacement(`x${stripe}`, nodes, 12, 4)
    for (const count of rackHistogram(placement.nodes).values()) assert.ok(count <= 4, `rack holds ${count} chunks`)
  }
})

test('the ranking is deterministic and independent of the input order', () => {
  const nodes = cluster(12, 4)
  const a = rankNodes('stripe-42', nodes).map((n) => n.id)
  const b = rankNodes('stripe-42', [...nodes].reverse()).map((n) => n.id)
  assert.deepEqual(a, b)
  assert.notDeepEqual(a, rankNodes('stripe-43', nodes).map((n) => n.id))
})

test('adding a node changes a stripe only by the new node taking one place', () => {
  const before = cluster(24, 12)
  const after = [...before, { id: 'node-new', rack: 'rack-new', freeBytes: 100 * GiB }]
  let moved = 0
  for (let stripe = 0; stripe < 500; stripe++) {
    const old = new Set(new StripePlacement(`m${stripe}`, before, 12, 4).nodes.map((n) => n!.id))
    const now = new StripePlacement(`m${stripe}`, after, 12, 4).nodes.map((n) => n!.id)
    const changed = now.filter((id) => !old.has(id))
    assert.ok(changed.length === 0 || (changed.length === 1 && changed[0] === 'node-new'), `stripe ${stripe} moved ${changed}`)
    moved += changed.length
  }
  // The new node should win about 12/25 of the stripes' places overall: far from 0, far from all.
  assert.ok(moved > 100 && moved < 400, `new node took ${moved} of 500 stripes`)
})

test('nodes with more free space receive proportionally more chunks', () => {
  const nodes: NodeCandidate[] = [
    ...Array.from({ length: 20 }, (_, i) => ({ id: `small-${i}`, rack: `r${i}`, freeBytes: 10 * GiB })),
    ...Array.from({ length: 20 }, (_, i) => ({ id: `big-${i}`, rack: `r${20 + i}`, freeBytes: 40 * GiB })),
  ]
  let small = 0
  let big = 0
  for (let stripe = 0; stripe < 2000; stripe++) {
    // one chunk per stripe isolates the weighting from the k+m fill
    const top = rankNodes(`w${stripe}`, nodes)[0]!
    if (top.id.startsWith('big')) big++
    else small++
  }
  const ratio = big / small
  assert.ok(ratio > 3 && ratio < 5.5, `big/small ratio ${ratio} should be near 4`)
})

test('replace() picks an unused node that keeps the rack cap and never retries the failed one', () => {
  const nodes = cluster(16, 4)
  const placement = new StripePlacement('r1', nodes, 12, 4)
  const failed = placement.nodes[5]!
  const replacement = placement.replace(5)!
  assert.ok(replacement)
  assert.notEqual(replacement.id, failed.id)
  assert.equal(new Set(placement.nodes.map((n) => n!.id)).size, 12)
  for (const count of rackHistogram(placement.nodes).values()) assert.ok(count <= 4)
  // exhaust alternates: 16 nodes, 12 used, 1 failed → 3 more replacements at most
  let replacements = 0
  while (placement.replace(0)) replacements++
  assert.ok(replacements <= 3)
  assert.equal(placement.nodes[0], undefined)
})

test('too few nodes: as many shards as nodes are placed, never a node twice', () => {
  const placement = new StripePlacement('few', cluster(10, 5), 12, 4)
  assert.equal(placement.placedCount, 10)
  assert.equal(new Set(placement.nodes.filter(Boolean).map((n) => n!.id)).size, 10)
})

test('uneven racks: the cap relaxes up to m but never past it', () => {
  const nodes: NodeCandidate[] = [
    ...Array.from({ length: 10 }, (_, i) => ({ id: `a${i}`, rack: 'A', freeBytes: GiB })),
    ...Array.from({ length: 4 }, (_, i) => ({ id: `b${i}`, rack: 'B', freeBytes: GiB })),
    ...Array.from({ length: 4 }, (_, i) => ({ id: `c${i}`, rack: 'C', freeBytes: GiB })),
  ]
  const placement = new StripePlacement('uneven', nodes, 12, 4)
  assert.equal(placement.placedCount, 12)
  for (const count of rackHistogram(placement.nodes).values()) assert.equal(count, 4)
})

test('one rack: not rack-safe, placement still fills every shard', () => {
  assert.deepEqual(rackCapFor(12, 4, 1), { cap: 12, rackSafe: false })
  assert.deepEqual(rackCapFor(12, 4, 3), { cap: 4, rackSafe: true })
  const placement = new StripePlacement('solo', cluster(12, 1), 12, 4)
  assert.equal(placement.placedCount, 12)
  assert.equal(placement.rackSafe, false)
})
