// Compaction gives back the space of deleted chunks: once a block's dead ratio
// passes the threshold, its live records are copied to the active block (as move
// records, which apply only if the chunk still lives where it was copied from),
// and the block is retired; its file goes once a snapshot without it is durable and
// no reader holds it. One record per step, paced, so reads and writes carry on.
import assert from 'node:assert/strict'
import { Throttle, type StepResult, type Worker, type WorkerDetail } from '../worker.ts'
import type { BlockStore } from './block-store.ts'

export interface CompactorOptions {
  deadRatioMin: number
  rateBytesPerSecMax: number
}

/** How often an idle compactor looks for a block to compact. */
export const compactionIdleMs = 10_000

interface Job {
  block: number
  capacityBytes: number
  records: { chunkId: Buffer; offsetUnits: number; lengthBytes: number }[]
  next: number
}

export class Compactor implements Worker {
  readonly name = 'compaction'
  private readonly throttle: Throttle
  private job: Job | null = null
  private blocksCompacted = 0
  private bytesMoved = 0
  private fileBytesRemoved = 0
  private recordsMoved = 0
  private corruptDropped = 0

  constructor(
    private readonly store: BlockStore,
    private readonly options: CompactorOptions,
  ) {
    assert.ok(options.deadRatioMin > 0, 'dead ratio threshold is above 0')
    assert.ok(options.deadRatioMin <= 1, 'dead ratio threshold is at most 1')
    this.throttle = new Throttle(options.rateBytesPerSecMax)
  }

  async step(): Promise<StepResult> {
    if (this.job === null) {
      const candidate = this.store.compactionCandidates(this.options.deadRatioMin)[0]
      if (!candidate) return { state: 'idle', delayMs: compactionIdleMs }
      this.job = { block: candidate.block, capacityBytes: candidate.capacityBytes, records: this.store.liveInBlock(candidate.block), next: 0 }
    }
    const job = this.job
    if (job.next < job.records.length) {
      const record = job.records[job.next]!
      const moved = await this.store.moveRecord(record.chunkId, { block: job.block, offsetUnits: record.offsetUnits })
      job.next++ // only after the move: a failed step retries the same record
      if (moved.state === 'moved') {
        this.recordsMoved++
        this.bytesMoved += moved.bytes
      }
      if (moved.state === 'corrupt') this.corruptDropped++
      const delayMs = this.throttle.delayFor(moved.bytes)
      return delayMs >= 1 ? { state: 'throttled', delayMs } : { state: 'busy' }
    }
    if (await this.store.retireBlock(job.block)) {
      this.blocksCompacted++
      this.fileBytesRemoved += job.capacityBytes
      this.job = null
    } else {
      // Records it still holds (none should appear; be safe): copy them too.
      job.records = this.store.liveInBlock(job.block)
      job.next = 0
    }
    return { state: 'busy' }
  }

  status(): WorkerDetail {
    return {
      block: this.job?.block ?? null,
      progressRatio: this.job === null ? 1 : this.job.records.length === 0 ? 1 : this.job.next / this.job.records.length,
      blocksCompacted: this.blocksCompacted,
      recordsMoved: this.recordsMoved,
      bytesMoved: this.bytesMoved,
      fileBytesRemoved: this.fileBytesRemoved,
      corruptDropped: this.corruptDropped,
    }
  }
}
