// The scrubber reads every live record at a bounded rate and checks it against
// its page CRCs, so rot is found while the other chunks of its stripe still exist
// to rebuild it from. A pass walks the blocks in order and each block's records
// in file order (sequential reads); it is paced so a full pass takes `passMs`
// (7 days by default) but never reads faster than `rateBytesPerSecMax`.
// Corrupt chunks are reported at once (to the catalog's repair queue).
import assert from 'node:assert/strict'
import { Throttle, type StepResult, type Worker, type WorkerDetail } from '../worker.ts'
import type { BlockStore } from './block-store.ts'
import { chunkIdFromBytes } from './format.ts'

export interface ScrubberOptions {
  passMs: number
  rateBytesPerSecMax: number
  onCorrupt(chunkIds: string[]): void
  now?: () => number
}

/** Longest idle wait between looking at the clock again. */
const scrubIdleMsMax = 60_000

export class Scrubber implements Worker {
  readonly name = 'scrub'
  private readonly now: () => number
  private readonly throttle: Throttle
  private passStartedMs: number | null = null
  private nextPassAtMs: number
  private requested = false
  private blocks: number[] = []
  private pending: { chunkId: Buffer }[] = []
  private passBytesTarget = 0
  private passBytesDone = 0
  private passCorrupt: string[] = []
  // totals
  private passes = 0
  private bytesScrubbed = 0
  private recordsScrubbed = 0
  private corruptFound = 0
  private lastPassCompletedMs: number | null = null
  private lastPassCorrupt: string[] = []

  constructor(
    private readonly store: BlockStore,
    private readonly options: ScrubberOptions,
  ) {
    assert.ok(options.passMs > 0, 'a scrub pass takes some time')
    assert.ok(options.rateBytesPerSecMax > 0, 'the scrub rate is positive')
    this.now = options.now ?? Date.now
    this.throttle = new Throttle(options.rateBytesPerSecMax, options.now)
    this.nextPassAtMs = this.now() // first pass starts right away, paced over passMs
  }

  /** Starts a pass at the next step instead of waiting for the schedule. */
  startPassNow(): void {
    this.requested = true
  }

  async step(): Promise<StepResult> {
    if (this.passStartedMs === null) {
      const now = this.now()
      if (!this.requested && now < this.nextPassAtMs) return { state: 'idle', delayMs: Math.min(this.nextPassAtMs - now, scrubIdleMsMax) }
      this.beginPass(now)
    }
    while (this.pending.length === 0) {
      const block = this.blocks.shift()
      if (block === undefined) return this.endPass()
      this.pending = this.store.liveInBlock(block)
    }
    const { chunkId } = this.pending.shift()!
    const result = await this.store.verify(chunkId)
    if (result.state === 'corrupt') {
      const id = chunkIdFromBytes(chunkId)
      this.passCorrupt.push(id)
      this.corruptFound++
      this.options.onCorrupt([id])
    }
    if (result.state !== 'gone') this.recordsScrubbed++
    this.passBytesDone += result.bytes
    this.bytesScrubbed += result.bytes
    const delayMs = this.throttle.delayFor(result.bytes)
    return delayMs >= 1 ? { state: 'throttled', delayMs } : { state: 'busy' }
  }

  private beginPass(now: number): void {
    this.requested = false
    this.passStartedMs = now
    this.blocks = this.store.blockStats().map((b) => b.block)
    this.pending = []
    this.passBytesTarget = this.store.stats().liveRecordBytes
    this.passBytesDone = 0
    this.passCorrupt = []
    // Spread the pass over passMs, within the cap.
    this.throttle.bytesPerSec = Math.max(1, Math.min(this.options.rateBytesPerSecMax, (this.passBytesTarget * 1000) / this.options.passMs))
  }

  private endPass(): StepResult {
    const now = this.now()
    this.passes++
    this.lastPassCompletedMs = now
    this.lastPassCorrupt = this.passCorrupt
    this.nextPassAtMs = this.passStartedMs! + this.options.passMs
    this.passStartedMs = null
    return { state: 'idle', delayMs: Math.max(0, Math.min(this.nextPassAtMs - now, scrubIdleMsMax)) }
  }

  /** Chunk ids found corrupt by the last completed pass. */
  get corruptInLastPass(): readonly string[] {
    return this.lastPassCorrupt
  }

  status(): WorkerDetail {
    return {
      passes: this.passes,
      passInProgress: this.passStartedMs !== null,
      progressRatio: this.passStartedMs === null ? 1 : this.passBytesTarget === 0 ? 0 : Math.min(1, this.passBytesDone / this.passBytesTarget),
      bytesScrubbed: this.bytesScrubbed,
      recordsScrubbed: this.recordsScrubbed,
      corruptFound: this.corruptFound,
      corruptLastPass: this.lastPassCorrupt.length,
      lastPassCompletedMs: this.lastPassCompletedMs,
      rateBytesPerSec: Math.round(this.throttle.bytesPerSec),
    }
  }
}
