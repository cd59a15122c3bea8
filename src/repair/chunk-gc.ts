// Chunk GC: carries out the deletions the catalog queued (DESIGN.md, "Write, read,
// delete"). A delete commits in the catalog first — the object's chunk rows move to
// the `chunk_deletions` queue in the same transaction — and this worker, running
// in every `blobfs node` process, claims its own node's deletions under a lease,
// writes the tombstones, and confirms them. The node's compaction then reclaims
// the space. A worker that dies mid-batch loses its lease; the tasks come back.
//
// Safety: a chunk the chunk map still places on this node is never deleted. Nothing queues
// such a chunk by design (rows leave the map in the transaction that queues them;
// chunk ids are never reused), so finding one is a bug somewhere else: it is
// logged, counted, and the task dropped — losing a tombstone only leaks space,
// which the inventory sweep finds again once the chunk is truly unreferenced.
import type { Catalog } from '../catalog/catalog.ts'
import type { DeletionTask } from '../catalog/queues.ts'
import type { ChunkStore, NodeId } from '../cluster/chunk-store.ts'
import { chunkGcBatchMax, chunkGcConcurrency, chunkGcDeletesPerSecDefault, chunkGcLeaseMs, chunkGcRetryMsMax, gcIdleMsDefault } from '../limits.ts'
import type { Logger } from '../log.ts'
import { Throttle, type StepResult, type Worker, type WorkerDetail } from '../worker.ts'
import { forEachLimit, RateMeter, retryBackoffMs } from './gc-util.ts'

export interface ChunkGcOptions {
  catalog: Pick<Catalog, 'deletions' | 'chunks'>
  store: ChunkStore
  /** The node whose queued deletions this worker carries out (its own). */
  nodeId: NodeId
  /** Lease owner shown in the queue, e.g. "<node id>:<pid>". */
  owner: string
  log: Logger
  deletesPerSecMax?: number
  batchMax?: number
  concurrency?: number
  leaseMs?: number
  idleMs?: number
}

export class ChunkGc implements Worker {
  readonly name = 'chunk-gc'
  private readonly throttle: Throttle
  private readonly rate = new RateMeter()
  private readonly settings: Required<Pick<ChunkGcOptions, 'batchMax' | 'concurrency' | 'leaseMs' | 'idleMs'>>
  private deleted = 0
  private failed = 0
  private referencedSkipped = 0
  private leasesLost = 0

  constructor(private readonly options: ChunkGcOptions) {
    this.throttle = new Throttle(options.deletesPerSecMax ?? chunkGcDeletesPerSecDefault)
    this.settings = {
      batchMax: Math.min(options.batchMax ?? chunkGcBatchMax, chunkGcBatchMax),
      concurrency: options.concurrency ?? chunkGcConcurrency,
      leaseMs: options.leaseMs ?? chunkGcLeaseMs,
      idleMs: options.idleMs ?? gcIdleMsDefault,
    }
  }

  async step(signal: AbortSignal): Promise<StepResult> {
    const { catalog, store, nodeId, log } = this.options
    const tasks = await catalog.deletions.claim({ owner: this.options.owner, leaseMs: this.settings.leaseMs, limit: this.settings.batchMax, nodeId })
    if (tasks.length === 0) return { state: 'idle', delayMs: this.settings.idleMs }
    const referenced = await catalog.chunks.referencedOn(nodeId, tasks.map((t) => t.chunkId))
    const done: DeletionTask[] = []
    await forEachLimit(tasks, this.settings.concurrency, async (task) => {
      if (referenced.has(task.chunkId)) {
        this.referencedSkipped++
        log.error({ nodeId, chunkId: task.chunkId, reason: task.reason }, 'a chunk queued for deletion is still referenced by the chunk map; not deleting it')
        done.push(task)
        return
      }
      try {
        await store.delete(task.nodeId, task.chunkId, signal)
        done.push(task)
      } catch (error) {
        if (signal.aborted) return // the lease runs out; the task comes back
        this.failed++
        const retryAfterMs = retryBackoffMs(task.attempts, chunkGcRetryMsMax)
        log.warn({ err: error, chunkId: task.chunkId, attempts: task.attempts, retryAfterMs }, 'tombstone failed; the deletion is retried')
        await catalog.deletions.release(task, { retryAfterMs, error: (error as Error).message }).catch(() => {})
      }
    })
    const confirmed = await catalog.deletions.completeMany(done)
    const tombstoned = done.filter((t) => confirmed.has(t.chunkId) && !referenced.has(t.chunkId)).length
    this.deleted += tombstoned
    this.leasesLost += done.length - confirmed.size
    this.rate.add(tombstoned)
    const delayMs = this.throttle.delayFor(tasks.length)
    return delayMs >= 1 ? { state: 'throttled', delayMs } : { state: 'busy' }
  }

  status(): WorkerDetail {
    return {
      deleted: this.deleted,
      deletedPerSec: this.rate.perSec(),
      failed: this.failed,
      referencedSkipped: this.referencedSkipped,
      leasesLost: this.leasesLost,
    }
  }
}
