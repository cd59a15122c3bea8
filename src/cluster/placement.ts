// Where the k+m chunks of a stripe go (DESIGN.md, "Placement").
//
// Nodes are ranked per stripe by weighted rendezvous hashing (highest random weight):
// score = -weight / ln(u), u uniform in (0,1) from a hash of (stripe key, node id),
// weight = free bytes. Every node computes the same ranking with no coordination,
// adding a node moves only the stripes it wins, and fuller nodes win less often.
// The ranking is then walked with a per-rack cap so that no rack holds more than
// m chunks of a stripe (losing a whole rack loses no data); with at least k+m racks
// the cap is one chunk per rack. The catalog records the placement actually used,
// so a later membership change moves no data by itself.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { NodeId } from './chunk-store.ts'

export interface NodeCandidate {
  id: NodeId
  rack: string
  freeBytes: number
}

/** A weight floor so that a nearly full node is still ranked (last), never divided by 0. */
const weightBytesMin = 1

function unitHash(stripeKey: string, nodeId: NodeId): number {
  const digest = createHash('sha256').update(stripeKey).update('\0').update(nodeId).digest()
  // 52 random bits → (0, 1): never 0 (ln(0)) and never 1 (ln(1) = 0).
  const high = digest.readUInt32BE(0) >>> 12 // 20 bits
  const low = digest.readUInt32BE(4) // 32 bits
  return (high * 2 ** 32 + low + 1) / (2 ** 52 + 2)
}

/** Nodes ordered best first for this stripe. Deterministic for a given input. */
export function rankNodes(stripeKey: string, nodes: readonly NodeCandidate[]): NodeCandidate[] {
  return nodes
    .map((node) => ({ node, score: -Math.max(node.freeBytes, weightBytesMin) / Math.log(unitHash(stripeKey, node.id)) }))
    .sort((a, b) => b.score - a.score || (a.node.id < b.node.id ? -1 : 1))
    .map((entry) => entry.node)
}

/**
 * The most chunks of one stripe a rack may hold. Balanced over the racks that have
 * nodes (ceil(total / racks)); that is at most `parityShards` — the rack-safe rule —
 * whenever there are at least ceil(total / parityShards) racks. With fewer racks no
 * placement can be rack-safe, and the balanced cap is the best spread there is.
 */
export function rackCapFor(shardsTotal: number, parityShards: number, rackCount: number): { cap: number; rackSafe: boolean } {
  assert.ok(shardsTotal > 0 && rackCount > 0)
  const balanced = Math.ceil(shardsTotal / rackCount)
  return { cap: balanced, rackSafe: balanced <= Math.max(parityShards, 1) }
}

/**
 * The placement of one stripe: a node per shard index, and the alternates to use
 * when a node fails during the write. Alternates keep the rack cap.
 */
export class StripePlacement {
  readonly nodes: (NodeCandidate | undefined)[]
  readonly rackSafe: boolean
  readonly rackCap: number
  private readonly ranked: NodeCandidate[]
  private readonly used = new Set<NodeId>()
  private readonly rackCounts = new Map<string, number>()
  private readonly relaxedCap: number

  constructor(stripeKey: string, candidates: readonly NodeCandidate[], readonly shardsTotal: number, readonly parityShards: number) {
    assert.ok(shardsTotal > parityShards && parityShards >= 0)
    this.ranked = rankNodes(stripeKey, candidates)
    const racks = new Set(candidates.map((n) => n.rack)).size
    const { cap, rackSafe } = rackCapFor(shardsTotal, parityShards, Math.max(racks, 1))
    this.rackCap = cap
    this.rackSafe = rackSafe
    // When uneven racks leave the balanced cap short of nodes, relax up to the
    // rack-safe limit m (never beyond it if the balanced cap was rack-safe).
    this.relaxedCap = rackSafe ? Math.max(cap, parityShards) : cap
    this.nodes = []
    for (let shard = 0; shard < shardsTotal; shard++) this.nodes.push(this.take(this.rackCap) ?? undefined)
    for (let shard = 0; shard < shardsTotal; shard++) {
      if (this.nodes[shard] === undefined) this.nodes[shard] = this.take(this.relaxedCap) ?? undefined
    }
  }

  /** Shards with a node assigned. */
  get placedCount(): number {
    return this.nodes.filter((n) => n !== undefined).length
  }

  /** Replaces the node of `shard` (it failed) with the next alternate, if any. */
  replace(shard: number): NodeCandidate | undefined {
    assert.ok(shard >= 0 && shard < this.shardsTotal)
    const failed = this.nodes[shard]
    if (failed) this.rackCounts.set(failed.rack, this.rackCounts.get(failed.rack)! - 1)
    // the failed node stays in `used`: it is never tried again for this stripe
    const next = this.take(this.rackCap) ?? this.take(this.relaxedCap)
    this.nodes[shard] = next
    return next
  }

  private take(cap: number): NodeCandidate | undefined {
    for (const node of this.ranked) {
      if (this.used.has(node.id)) continue
      if ((this.rackCounts.get(node.rack) ?? 0) >= cap) continue
      this.used.add(node.id)
      this.rackCounts.set(node.rack, (this.rackCounts.get(node.rack) ?? 0) + 1)
      return node
    }
    return undefined
  }
}

/**
 * Where one more chunk of an existing stripe may go (drain moving a chunk, a
 * rebuilt chunk): the candidates ranked for this stripe, best first, keeping out
 * of the nodes that already hold a chunk of it (`holders`, the moving chunk's own
 * node left out) and keeping the rack rule — first the balanced cap, then up to m
 * per rack when that is still rack-safe. Empty when no node fits: the caller must
 * not break the rule (with k+m nodes or fewer left, add a node first).
 */
export function placeAdditional(
  stripeKey: string,
  candidates: readonly NodeCandidate[],
  holders: readonly { id: NodeId; rack: string }[],
  shardsTotal: number,
  parityShards: number,
): NodeCandidate[] {
  assert.ok(shardsTotal > parityShards && parityShards >= 0)
  const held = new Set(holders.map((h) => h.id))
  const rackCounts = new Map<string, number>()
  for (const h of holders) rackCounts.set(h.rack, (rackCounts.get(h.rack) ?? 0) + 1)
  const racks = new Set([...candidates.map((n) => n.rack), ...holders.map((h) => h.rack)]).size
  const { cap, rackSafe } = rackCapFor(shardsTotal, parityShards, Math.max(racks, 1))
  const relaxedCap = rackSafe ? Math.max(cap, parityShards) : cap
  const ranked = rankNodes(stripeKey, candidates).filter((n) => !held.has(n.id))
  const within = (limit: number) => ranked.filter((n) => (rackCounts.get(n.rack) ?? 0) < limit)
  const first = within(cap)
  return [...first, ...within(relaxedCap).filter((n) => !first.includes(n))]
}

/**
 * Where the rebuilt chunks of a damaged stripe go. The chunks the stripe keeps
 * stay where they are; a rebuilt chunk goes to a node that holds none of them, in
 * rank order for the stripe, under the same per-rack cap as a fresh placement
 * (counted over the kept chunks and the racks of the kept and candidate nodes),
 * then under the relaxed cap m. A node whose write failed is never offered again.
 * A node still holding an old copy of a chunk being rebuilt (`reserved`: a rotten
 * chunk, or a node that came back) is offered to that chunk first and to no other:
 * if that chunk's rebuild found no node, its old row would stay, and another chunk
 * placed there would put two chunks of the stripe on one node (which the catalog
 * refuses). A node holding several chunks being rebuilt is reserved for none of them
 * (NaN in `reserved`).
 */
export class ReplacementPlacement {
  readonly rackCap: number
  readonly rackSafe: boolean
  private readonly ranked: NodeCandidate[]
  private readonly used = new Set<NodeId>()
  private readonly rackCounts = new Map<string, number>()
  private readonly relaxedCap: number

  constructor(
    stripeKey: string,
    candidates: readonly NodeCandidate[],
    kept: readonly { id: NodeId; rack: string }[],
    readonly shardsTotal: number,
    readonly parityShards: number,
    private readonly reserved: ReadonlyMap<NodeId, number> = new Map(),
  ) {
    assert.ok(shardsTotal > parityShards && parityShards >= 0)
    assert.ok(kept.length < shardsTotal, 'a stripe that keeps every chunk needs no placement')
    this.ranked = rankNodes(stripeKey, candidates)
    for (const node of kept) {
      this.used.add(node.id)
      this.rackCounts.set(node.rack, (this.rackCounts.get(node.rack) ?? 0) + 1)
    }
    const racks = new Set([...candidates.map((n) => n.rack), ...kept.map((n) => n.rack)]).size
    const { cap, rackSafe } = rackCapFor(shardsTotal, parityShards, Math.max(racks, 1))
    this.rackCap = cap
    this.rackSafe = rackSafe
    this.relaxedCap = rackSafe ? Math.max(cap, parityShards) : cap
  }

  /** The best node for one more chunk (for chunk `chunkIndex`, which may go back to its reserved node), or undefined when none is left under the caps. */
  next(chunkIndex?: number): NodeCandidate | undefined {
    return this.take(this.rackCap, chunkIndex) ?? this.take(this.relaxedCap, chunkIndex)
  }

  /** A write to `node` failed: its rack slot is free again; the node is not offered again. */
  failed(node: NodeCandidate): void {
    assert.ok(this.used.has(node.id))
    this.rackCounts.set(node.rack, this.rackCounts.get(node.rack)! - 1)
  }

  private take(cap: number, chunkIndex: number | undefined): NodeCandidate | undefined {
    // A chunk goes back to its own node first (the stripe's layout unchanged), which
    // leaves every other node to the other chunks being rebuilt.
    const own = chunkIndex === undefined ? undefined : this.ranked.find((n) => this.reserved.get(n.id) === chunkIndex)
    for (const node of own ? [own, ...this.ranked] : this.ranked) {
      if (this.used.has(node.id)) continue
      const reservedFor = this.reserved.get(node.id)
      if (reservedFor !== undefined && reservedFor !== chunkIndex) continue
      if ((this.rackCounts.get(node.rack) ?? 0) >= cap) continue
      this.used.add(node.id)
      this.rackCounts.set(node.rack, (this.rackCounts.get(node.rack) ?? 0) + 1)
      return node
    }
    return undefined
  }
}
