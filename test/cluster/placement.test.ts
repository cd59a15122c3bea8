import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rackCapFor, rankNodes, ReplacementPlacement, StripePlacement, type NodeCandidate } from '../../src/cluster/placement.ts'

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

test('replacements go to nodes holding no chunk of the stripe and keep the rack cap over kept chunks', () => {
  const nodes = cluster(16, 4) // 4 per rack
  for (let stripe = 0; stripe < 100; stripe++) {
    const original = new StripePlacement(`r${stripe}`, nodes.slice(0, 12), 12, 4).nodes.map((n) => n!)
    const lost = new Set([original[0]!.id, original[5]!.id])
    const kept = original.filter((n) => !lost.has(n.id))
    const live = nodes.filter((n) => !lost.has(n.id))
    const placement = new ReplacementPlacement(`r${stripe}`, live, kept, 12, 4)
    const chosen = [placement.next()!, placement.next()!]
    const all = [...kept, ...chosen]
    assert.equal(new Set(all.map((n) => n.id)).size, 12, 'distinct nodes')
    for (const node of chosen) assert.ok(!kept.some((k) => k.id === node.id))
    // The balanced cap (3 for 4 racks) holds whenever the lost chunks' racks have a free node; when both were
    // in one rack, that rack has a single spare left and the relaxed cap m = 4 applies.
    const sameRack = original[0]!.rack === original[5]!.rack
    for (const count of rackHistogram(all).values()) assert.ok(count <= (sameRack ? 4 : 3), `a rack holds ${count} chunks`)
  }
})

test('a replacement may return to the node of a rotten chunk; a failed node is not offered again', () => {
  const nodes = cluster(12, 4)
  const original = new StripePlacement('rot', nodes, 12, 4).nodes.map((n) => n!)
  const kept = original.slice(1) // chunk 0 rotted on original[0]: only that node holds no kept chunk
  const placement = new ReplacementPlacement('rot', nodes, kept, 12, 4)
  const first = placement.next()
  assert.equal(first?.id, original[0]!.id)
  placement.failed(first!)
  assert.equal(placement.next(), undefined, 'no other node keeps the stripe on distinct nodes')
})

test('the old node of a chunk being rebuilt is offered to that chunk first and never to another of the stripe', () => {
  const nodes = cluster(16, 4)
  const original = new StripePlacement('reserve', nodes.slice(0, 12), 12, 4).nodes.map((n) => n!)
  // Chunk 0 rotted on original[0] (still UP); chunk 1 is lost with original[1] (down).
  const kept = original.slice(2)
  const spares = nodes.slice(12)
  const reserved = new Map([[original[0]!.id, 0]])
  for (let trial = 0; trial < 20; trial++) {
    const live = [original[0]!, ...spares]
    // Chunk 1 first: every node it is offered, until none is left, excludes original[0].
    const placement = new ReplacementPlacement(`reserve-${trial}`, live, kept, 12, 4, reserved)
    const forOne: NodeCandidate[] = []
    for (let node = placement.next(1); node; node = placement.next(1)) forOne.push(node)
    assert.ok(forOne.length > 0 && !forOne.some((n) => n.id === original[0]!.id), 'chunk 1 never goes to the node keeping chunk 0')
    assert.equal(placement.next(0)?.id, original[0]!.id, 'chunk 0 may go back to its own node')
    // Chunk 0 first: it takes its own node back whatever the ranking, leaving the others to chunk 1.
    const ownFirst = new ReplacementPlacement(`reserve-${trial}`, live, kept, 12, 4, reserved)
    assert.equal(ownFirst.next(0)?.id, original[0]!.id)
    assert.ok(ownFirst.next(1))
  }
})

test('on exactly 12 nodes, a rotten chunk and a lost one (its node replaced) both find a node', () => {
  const nodes = cluster(12, 4)
  for (let stripe = 0; stripe < 50; stripe++) {
    const original = new StripePlacement(`twelve-${stripe}`, nodes, 12, 4).nodes.map((n) => n!)
    const replacement = { id: 'new-node', rack: original[7]!.rack, freeBytes: 1e12 }
    const live = [...nodes.filter((n) => n.id !== original[7]!.id), replacement]
    const kept = original.filter((_, i) => i !== 6 && i !== 7)
    const placement = new ReplacementPlacement(`twelve-${stripe}`, live, kept, 12, 4, new Map([[original[6]!.id, 6]]))
    const rot = placement.next(6)
    const gone = placement.next(7)
    assert.equal(rot?.id, original[6]!.id, 'the rotten chunk goes back to its node')
    assert.equal(gone?.id, 'new-node', 'the lost chunk goes to the replacement')
  }
})

test('with too few racks the relaxed cap m still bounds a rack', () => {
  const nodes = cluster(15, 3) // 5 per rack: balanced cap 4 = m
  const original = new StripePlacement('few', nodes, 12, 4).nodes.map((n) => n!)
  const kept = original.slice(0, 9)
  const placement = new ReplacementPlacement('few', nodes.filter((n) => !original.slice(9).some((o) => o.id === n.id)), kept, 12, 4)
  const chosen = [placement.next(), placement.next(), placement.next()]
  const all = [...kept, ...chosen.filter((n): n is NodeCandidate => n !== undefined)]
  for (const count of rackHistogram(all).values()) assert.ok(count <= 4)
})
