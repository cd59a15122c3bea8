// The inventory sweep (DESIGN.md, "Durability: repair and GC"): what a crashed
// writer leaves behind. A PUT stores its chunks before the catalog commit makes
// them visible, so a writer that dies in between — or a stripe write that timed
// out on one node and went to an alternate — leaves chunks that nothing
// references. Each node's sweep streams its own inventory (chunk id, length, age),
// asks the catalog which of the old ones it places on this node, and queues the
// rest for the chunk GC.
//
// The race this must not lose: a chunk being written right now is not referenced
// yet. The grace period protects it, under one invariant —
//
//   graceMs > the longest a writer may take between storing a chunk and
//   committing it (writeDurationMsMax: the object layer refuses a commit of a PUT
//   or part upload older than that).
//
// Multipart parts are referenced from the moment each part is recorded (its chunk
// rows are written then), so a session may stay open for days; only a part still
// uploading is unreferenced, and it is bounded like any PUT. Repair and drain
// write a chunk and record it within one stripe's work. Ages are the node's own
// clock (now minus the chunk's first write), so clock skew between machines does
// not matter; a node clock jumping forward does, as it would for any TTL.
import assert from 'node:assert/strict'
import type { Catalog } from '../catalog/catalog.ts'
import type { ChunkStore, InventoryEntry, NodeId } from '../cluster/chunk-store.ts'
import { inventorySweepBatchChunks, inventorySweepChunksPerSecDefault, inventorySweepIntervalMsDefault, orphanGraceMsDefault, writeDurationMsMax } from '../limits.ts'
import type { Logger } from '../log.ts'
import { Throttle, type StepResult, type Worker, type WorkerDetail } from '../worker.ts'

export interface InventorySweepOptions {
  catalog: Pick<Catalog, 'chunks' | 'deletions'>
  store: ChunkStore
  nodeId: NodeId
  log: Logger
  /** Unreferenced chunks younger than this are left alone (see the invariant above). */
  graceMs?: number
  /** Pause between the end of one pass and the start of the next. */
  intervalMs?: number
  chunksPerSecMax?: number
  batchChunks?: number
  /** Wall clock for pass bookkeeping (tests). */
  now?: () => number
}

interface Pass {
  entries: AsyncIterator<InventoryEntry>
  startedMs: number
  examined: number
  old: number
  queued: number
}

export class InventorySweep implements Worker {
  readonly name = 'inventory-sweep'
  readonly graceMs: number
  private readonly intervalMs: number
  private readonly batchChunks: number
  private readonly throttle: Throttle
  private readonly now: () => number
  private pass: Pass | null = null
  private nextPassAtMs = 0
  private passes = 0
  private orphansQueued = 0
  private lastPass: { examined: number; orphans: number; durationMs: number; endedMs: number } | null = null

  constructor(private readonly options: InventorySweepOptions) {
    this.graceMs = options.graceMs ?? orphanGraceMsDefault
    this.intervalMs = options.intervalMs ?? inventorySweepIntervalMsDefault
    this.batchChunks = Math.min(options.batchChunks ?? inventorySweepBatchChunks, inventorySweepBatchChunks)
    this.throttle = new Throttle(options.chunksPerSecMax ?? inventorySweepChunksPerSecDefault)
    this.now = options.now ?? Date.now
    assert.ok(this.graceMs > 0 && this.intervalMs > 0 && this.batchChunks > 0)
    if (this.graceMs <= writeDurationMsMax) {
      options.log.warn(
        { graceMs: this.graceMs, writeDurationMsMax },
        'the orphan grace is shorter than the longest write the object layer allows: a chunk of a write still in progress could be deleted (fine for tests, never in production)',
      )
    }
  }

  /** Starts a pass at the next step, whatever the interval says (tests, operators). */
  sweepNow(): void {
    this.nextPassAtMs = 0
  }

  async step(signal: AbortSignal): Promise<StepResult> {
    if (this.pass === null) {
      const waitMs = this.nextPassAtMs - this.now()
      if (waitMs > 0) return { state: 'idle', delayMs: waitMs }
      const entries = this.options.store.inventory(this.options.nodeId, signal)[Symbol.asyncIterator]()
      this.pass = { entries, startedMs: this.now(), examined: 0, old: 0, queued: 0 }
    }
    const pass = this.pass
    try {
      const old: InventoryEntry[] = []
      let examined = 0
      let finished = false
      while (examined < this.batchChunks) {
        const next = await pass.entries.next()
        if (next.done) {
          finished = true
          break
        }
        examined++
        if (next.value.ageMs >= this.graceMs) old.push(next.value)
      }
      pass.examined += examined
      pass.old += old.length
      if (old.length > 0) pass.queued += await this.queueOrphans(old)
      if (finished) return this.endPass(pass)
      const delayMs = this.throttle.delayFor(examined)
      return delayMs >= 1 ? { state: 'throttled', delayMs } : { state: 'busy' }
    } catch (error) {
      // The stream or the catalog failed: the pass starts over (after the runner's backoff).
      this.pass = null
      await pass.entries.return?.().catch(() => {})
      throw error
    }
  }

  private async queueOrphans(old: InventoryEntry[]): Promise<number> {
    const { catalog, nodeId, log } = this.options
    const referenced = await catalog.chunks.referencedOn(nodeId, old.map((e) => e.chunkId))
    const orphans = old.filter((e) => !referenced.has(e.chunkId))
    if (orphans.length === 0) return 0
    // Claimable at once: the grace has passed. A chunk already queued (a replaced
    // version waiting out the deletion delay) keeps its own schedule.
    const queued = await catalog.deletions.enqueue(
      orphans.map((e) => ({ nodeId, chunkId: e.chunkId })),
      { reason: 'ORPHANED', delayMs: 0 },
    )
    this.orphansQueued += queued
    if (queued > 0) log.info({ nodeId, orphans: queued, bytes: orphans.reduce((sum, e) => sum + e.lengthBytes, 0) }, 'unreferenced chunks queued for deletion')
    return queued
  }

  private endPass(pass: Pass): StepResult {
    const endedMs = this.now()
    this.pass = null
    this.passes++
    this.lastPass = { examined: pass.examined, orphans: pass.queued, durationMs: endedMs - pass.startedMs, endedMs }
    this.nextPassAtMs = endedMs + this.intervalMs
    return { state: 'idle', delayMs: this.intervalMs }
  }

  status(): WorkerDetail {
    return {
      graceMs: this.graceMs,
      passes: this.passes,
      inPass: this.pass !== null,
      examined: this.pass?.examined ?? this.lastPass?.examined ?? 0,
      orphansQueued: this.orphansQueued,
      lastPassOrphans: this.lastPass?.orphans ?? null,
      lastPassDurationMs: this.lastPass?.durationMs ?? null,
      lastPassEndedMs: this.lastPass?.endedMs ?? null,
    }
  }
}
