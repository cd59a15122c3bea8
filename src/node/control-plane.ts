// What a storage node tells the cluster: it registers, heartbeats, reports corrupt
// chunks for repair and flags itself read-only when its disk is full. The catalog
// implements this (wired by the catalog layer); the node knows only this interface,
// so src/node depends on nothing above it and runs standalone with the in-memory
// implementation below (tests, or `blobfs node` without --catalog).

/** Same as the cluster's NodeId / ChunkId (UUID strings); not imported, to keep node/ below cluster/. */
type NodeId = string
type ChunkId = string

export interface NodeRegistration {
  nodeId: NodeId
  /** Base URL clients use, e.g. http://10.0.0.7:9101 */
  address: string
  rack: string
  capacityBytes: number
  usedBytes: number
  readOnly: boolean
}

export interface ScrubProgress {
  passes: number
  /** 0..1 through the current pass (1 when idle between passes). */
  progressRatio: number
  lastPassCompletedMs: number | null
  corruptChunksLastPass: number
}

export interface NodeHeartbeat {
  nodeId: NodeId
  capacityBytes: number
  usedBytes: number
  freeBytes: number
  chunks: number
  readOnly: boolean
  scrub: ScrubProgress
}

export interface NodeControlPlane {
  /** Upserts the node's row (id, address, rack, capacity). Called at start-up. */
  register(node: NodeRegistration): Promise<void>
  /** Every few seconds: liveness, capacity, used, scrub progress. */
  heartbeat(beat: NodeHeartbeat): Promise<void>
  /** Chunks that failed their checksum here (scrubber or a read): repair them. */
  reportCorrupt(nodeId: NodeId, chunkIds: ChunkId[]): Promise<void>
  /** The node stops (or resumes) taking new chunks: placement must skip it. */
  setReadOnly(nodeId: NodeId, readOnly: boolean): Promise<void>
}

/** Keeps everything in memory: the standalone mode and the tests' window into a node. */
export class MemoryControlPlane implements NodeControlPlane {
  readonly registrations = new Map<NodeId, NodeRegistration>()
  readonly lastHeartbeat = new Map<NodeId, NodeHeartbeat>()
  readonly corrupt = new Map<NodeId, Set<ChunkId>>()
  readonly readOnly = new Map<NodeId, boolean>()
  heartbeats = 0

  async register(node: NodeRegistration): Promise<void> {
    this.registrations.set(node.nodeId, { ...node })
    this.readOnly.set(node.nodeId, node.readOnly)
  }

  async heartbeat(beat: NodeHeartbeat): Promise<void> {
    this.heartbeats++
    this.lastHeartbeat.set(beat.nodeId, structuredClone(beat))
  }

  async reportCorrupt(nodeId: NodeId, chunkIds: ChunkId[]): Promise<void> {
    const set = this.corrupt.get(nodeId) ?? new Set()
    for (const id of chunkIds) set.add(id)
    this.corrupt.set(nodeId, set)
  }

  async setReadOnly(nodeId: NodeId, readOnly: boolean): Promise<void> {
    this.readOnly.set(nodeId, readOnly)
  }
}
