// When a chunk read is slow enough to hedge.
//
// A GET's first byte waits for one chunk read; on a busy cluster one node among the
// eight of a stripe is now and then descheduled or stalled for tens of milliseconds,
// and that node sets the GET's tail. A fixed hedge delay cannot fit both a loaded
// cluster (where a 2 s delay never fires) and an idle one (where a short delay would
// fire on every read). So the delay follows what reads of the same size have
// recently taken: a read is hedged — its piece rebuilt from the other chunks of the
// stripe, with one parity read and a decode — once it takes longer than the recent
// p95 of its size class ("The Tail at Scale", Dean and Barroso, 2013), never later
// than the configured `hedgeAfterMs`, and only while a budget allows: the chunk reads
// a hedge starts are paid from tokens earned by direct piece reads (5 % of them), so a
// cluster that turns slow all at once reads at most about 5 % more; past the budget a
// read waits the full delay.
import assert from 'node:assert/strict'

export interface HedgePolicyOptions {
  /** The longest a read waits before it is hedged (also the delay until a size class has enough samples). */
  maxDelayMs: number
  /** Never hedge sooner: below this a slow read is noise, not a stall. */
  minDelayMs?: number
  /** The quantile of recent read times, per size class, after which a read is hedged. */
  quantile?: number
  /** Reads remembered per size class. */
  windowSize?: number
  /** Samples a size class needs before its own delay is used. */
  minSamples?: number
  /** Chunk reads a hedge may start, earned per direct piece read. */
  budgetPerRead?: number
  /** Chunk reads hedges may start at once (at least k, a ranged piece's rebuild). */
  budgetBurst?: number
}

export interface HedgeStats {
  /** Reads that took longer than their delay and were hedged. */
  hedged: number
  /** Reads past their adaptive delay when the budget was spent: not hedged then (they waited on, up to the fixed delay). */
  overBudget: number
}

const sizeClasses = 12

/** Size class of a read: one per factor of 4 from 4 KiB (class 0) up. */
function sizeClass(lengthBytes: number): number {
  const log2 = Math.ceil(Math.log2(Math.max(lengthBytes, 1)))
  return Math.min(sizeClasses - 1, Math.max(0, (log2 - 12 + 1) >> 1))
}

class LatencyWindow {
  private readonly samples: Float64Array
  private count = 0
  private next = 0
  private sinceComputed = 0
  private delay: number | undefined

  constructor(size: number) {
    this.samples = new Float64Array(size)
  }

  record(ms: number): void {
    this.samples[this.next] = ms
    this.next = (this.next + 1) % this.samples.length
    this.count = Math.min(this.count + 1, this.samples.length)
    this.sinceComputed++
  }

  /** The quantile of the window, recomputed every 16 samples (a sort of a few hundred numbers). */
  quantile(q: number, minSamples: number): number | undefined {
    if (this.count < minSamples) return undefined
    if (this.delay === undefined || this.sinceComputed >= 16) {
      const sorted = this.samples.slice(0, this.count).sort()
      this.delay = sorted[Math.max(0, Math.ceil(q * this.count) - 1)]!
      this.sinceComputed = 0
    }
    return this.delay
  }
}

export class HedgePolicy {
  readonly maxDelayMs: number
  private readonly minDelayMs: number
  private readonly q: number
  private readonly minSamples: number
  private readonly budgetPerRead: number
  private readonly budgetBurst: number
  private readonly windows: LatencyWindow[]
  private tokens: number
  private readonly counts: HedgeStats = { hedged: 0, overBudget: 0 }

  constructor(options: HedgePolicyOptions) {
    this.maxDelayMs = options.maxDelayMs
    this.minDelayMs = Math.min(options.minDelayMs ?? 2, options.maxDelayMs)
    this.q = options.quantile ?? 0.95
    this.minSamples = options.minSamples ?? 50
    this.budgetPerRead = options.budgetPerRead ?? 0.05
    this.budgetBurst = options.budgetBurst ?? 16
    const windowSize = options.windowSize ?? 400
    assert.ok(this.maxDelayMs > 0 && this.q > 0 && this.q < 1 && windowSize >= this.minSamples && this.minSamples >= 1)
    assert.ok(this.budgetPerRead >= 0 && this.budgetBurst >= 1)
    this.windows = Array.from({ length: sizeClasses }, () => new LatencyWindow(windowSize))
    this.tokens = this.budgetBurst
  }

  /** How long a direct read of this many bytes may take before it is hedged. */
  delayMs(lengthBytes: number): number {
    const recent = this.windows[sizeClass(lengthBytes)]!.quantile(this.q, this.minSamples)
    if (recent === undefined) return this.maxDelayMs
    return Math.min(this.maxDelayMs, Math.max(this.minDelayMs, recent))
  }

  /** A chunk read of this many bytes succeeded after `ms` (any read: direct, or for a rebuild). */
  record(lengthBytes: number, ms: number): void {
    this.windows[sizeClass(lengthBytes)]!.record(ms)
  }

  /** A piece is being read directly from its own chunk: it earns its share of the budget. */
  earn(): void {
    this.tokens = Math.min(this.budgetBurst, this.tokens + this.budgetPerRead)
  }

  /**
   * A read outlived its delay: may it be hedged now, at the price of `reads` more chunk
   * reads (1 when the other pieces of the column range are in flight, up to k)? Spends
   * them from the budget when it may; a read at the maximum delay is always hedged
   * (the fixed hedge, as without a policy).
   */
  mayHedge(waitedMs: number, reads = 1): boolean {
    if (waitedMs >= this.maxDelayMs || this.tokens >= reads) {
      if (waitedMs < this.maxDelayMs) this.tokens -= reads
      this.counts.hedged++
      return true
    }
    this.counts.overBudget++
    return false
  }

  stats(): HedgeStats {
    return { ...this.counts }
  }
}
