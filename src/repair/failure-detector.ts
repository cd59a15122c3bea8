// Failure detection (DESIGN.md, "Durability: repair and GC"). A node whose heartbeat
// is older than the down-timeout is marked DOWN; once it has stayed silent for the
// repair grace on top, every stripe with a chunk on it becomes a repair task. A node
// that heartbeats again is UP at once (the registry does that), and the NODE_DOWN
// tasks it no longer needs are dropped.
//
// Every node process runs this worker. Marking DOWN is one idempotent UPDATE, so
// all of them may do it; queueing a dead node's stripes is a scan of its chunk rows,
// so only one process does it: the live node with the lowest id (every process
// computes the same answer from the registry; two leaders for a moment only queue
// the same stripes twice, which the queue folds into one task). A new leader scans
// again from the start, and a node that stays DOWN is scanned again now and then, so
// chunks committed onto it late are not missed.
import assert from 'node:assert/strict'
import type { NodeRecord } from '../catalog/nodes.ts'
import { downRescanIntervalMsMax, downRescanIntervalMsMin, failureDetectIntervalMsMax, repairScanBatchChunks } from '../limits.ts'
import type { Logger } from '../log.ts'
import type { StepResult, Worker, WorkerDetail } from '../worker.ts'

export interface DetectorConfig {
  /** Heartbeat older than this: DOWN. */
  downTimeoutMs: number
  /** DOWN this much longer: its stripes are queued for repair. */
  repairGraceMs: number
}

/** The slice of the catalog the detector uses (Catalog.nodes and Catalog.repairs fit). */
export interface DetectorCatalog {
  nodes: {
    markStaleDown(options: { heartbeatWithinMs: number }): Promise<string[]>
    list(): Promise<NodeRecord[]>
  }
  repairs: {
    enqueueNode(nodeId: string, options: { afterChunkId?: string; limit: number }): Promise<{ stripes: number; nextAfterChunkId: string | null }>
    dropUnneeded(options: { limit: number }): Promise<number>
  }
}

export interface DetectorOptions {
  catalog: DetectorCatalog
  config: DetectorConfig
  /** This process's node id: it leads the scans when it is the lowest live id. Undefined: always lead. */
  selfId?: string
  log: Logger
  now?: () => number
}

interface Scan {
  /** Which DOWN spell: the node's last heartbeat when it went silent. */
  lastHeartbeatMs: number
  cursor: string | undefined
  done: boolean
  finishedAtMs: number
}

export function detectIntervalMs(config: DetectorConfig): number {
  return Math.max(100, Math.min(failureDetectIntervalMsMax, Math.floor(config.downTimeoutMs / 4)))
}

export function rescanIntervalMs(config: DetectorConfig): number {
  return Math.min(downRescanIntervalMsMax, Math.max(downRescanIntervalMsMin, 5 * (config.downTimeoutMs + config.repairGraceMs)))
}

export class FailureDetector implements Worker {
  readonly name = 'failure-detector'
  private readonly now: () => number
  private readonly scans = new Map<string, Scan>()
  /** Nodes seen DOWN at the last look (to notice one coming back). */
  private down = new Set<string>()
  private leading = false
  private dropPending = false
  // totals
  private markedDown = 0
  private nodesQueued = 0
  private stripesQueued = 0
  private tasksDropped = 0
  private nodesDown = 0

  constructor(private readonly options: DetectorOptions) {
    assert.ok(options.config.downTimeoutMs > 0, 'the down-timeout is positive')
    assert.ok(options.config.repairGraceMs >= 0, 'the repair grace is not negative')
    this.now = options.now ?? Date.now
  }

  async step(): Promise<StepResult> {
    const { catalog, config, log } = this.options
    const marked = await catalog.nodes.markStaleDown({ heartbeatWithinMs: config.downTimeoutMs })
    if (marked.length > 0) {
      this.markedDown += marked.length
      log.warn({ nodes: marked, downTimeoutMs: config.downTimeoutMs }, 'nodes marked DOWN: no heartbeat within the down-timeout')
    }
    const nodes = await catalog.nodes.list()
    const downNow = new Set(nodes.filter((n) => n.state === 'DOWN').map((n) => n.id))
    this.nodesDown = downNow.size
    const returned = [...this.down].filter((id) => !downNow.has(id) && nodes.some((n) => n.id === id))
    this.down = downNow
    if (returned.length > 0) {
      log.info({ nodes: returned }, 'nodes are back before (or during) their repair; dropping the repair tasks they no longer need')
      this.dropPending = true
      for (const id of returned) this.scans.delete(id)
    }

    const wasLeading = this.leading
    this.leading = this.isLeader(nodes)
    if (!this.leading) {
      this.scans.clear()
      return this.idle()
    }
    if (!wasLeading) this.dropPending = true // a new leader does not know what happened before it

    if (this.dropPending) {
      const dropped = await catalog.repairs.dropUnneeded({ limit: repairScanBatchChunks })
      this.tasksDropped += dropped
      if (dropped === repairScanBatchChunks) return { state: 'busy' }
      this.dropPending = false
    }

    // One batch of one dead node's chunk rows per step.
    const graceEndsAtAgeMs = config.downTimeoutMs + config.repairGraceMs
    const now = this.now()
    for (const node of nodes) {
      if (node.state !== 'DOWN' || node.heartbeatAgeMs < graceEndsAtAgeMs) continue
      const spell = node.lastHeartbeat.getTime()
      let scan = this.scans.get(node.id)
      if (scan && scan.lastHeartbeatMs === spell && scan.done) {
        if (now - scan.finishedAtMs < rescanIntervalMs(config)) continue
        scan = undefined // scan again: rows committed onto it late
      }
      if (!scan || scan.lastHeartbeatMs !== spell) {
        scan = { lastHeartbeatMs: spell, cursor: undefined, done: false, finishedAtMs: 0 }
        this.scans.set(node.id, scan)
        log.warn({ nodeId: node.id, rack: node.rack, silentMs: node.heartbeatAgeMs }, 'node DOWN past the repair grace: queueing its stripes for repair')
      }
      const batch = await catalog.repairs.enqueueNode(node.id, { ...(scan.cursor ? { afterChunkId: scan.cursor } : {}), limit: repairScanBatchChunks })
      this.stripesQueued += batch.stripes
      if (batch.nextAfterChunkId === null) {
        scan.done = true
        scan.finishedAtMs = now
        this.nodesQueued++
        log.info({ nodeId: node.id }, 'every stripe of the DOWN node is queued for repair')
      } else {
        scan.cursor = batch.nextAfterChunkId
      }
      return { state: 'busy' }
    }
    return this.idle()
  }

  private isLeader(nodes: readonly NodeRecord[]): boolean {
    const selfId = this.options.selfId
    if (selfId === undefined) return true
    const live = nodes.filter((n) => n.state !== 'DOWN' && n.heartbeatAgeMs < this.options.config.downTimeoutMs).map((n) => n.id).sort()
    return live[0] === selfId
  }

  private idle(): StepResult {
    return { state: 'idle', delayMs: detectIntervalMs(this.options.config) }
  }

  status(): WorkerDetail {
    return {
      leading: this.leading,
      nodesDown: this.nodesDown,
      nodesMarkedDown: this.markedDown,
      nodesQueued: this.nodesQueued,
      stripesQueued: this.stripesQueued,
      tasksDropped: this.tasksDropped,
      downTimeoutMs: this.options.config.downTimeoutMs,
      repairGraceMs: this.options.config.repairGraceMs,
    }
  }
}
