// Small pieces the GC workers and the drain share: a sliding-window rate (what
// `blobfs status` shows as "per second"), bounded-concurrency mapping, and the
// retry backoff of a queue task that keeps failing.
import assert from 'node:assert/strict'

/** Events per second over the last `windowMs`, counted in one-second buckets. */
export class RateMeter {
  private readonly buckets: number[]
  private readonly bucketMs = 1000
  private headSecond = 0

  constructor(
    readonly windowMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    assert.ok(windowMs >= this.bucketMs, 'a rate window spans at least one second')
    this.buckets = new Array(Math.ceil(windowMs / this.bucketMs)).fill(0)
    this.headSecond = Math.floor(this.now() / this.bucketMs)
  }

  add(count: number): void {
    this.advance()
    this.buckets[this.headSecond % this.buckets.length]! += count
  }

  /** The average over the window (events per second). */
  perSec(): number {
    this.advance()
    return this.buckets.reduce((sum, n) => sum + n, 0) / (this.buckets.length * (this.bucketMs / 1000))
  }

  private advance(): void {
    const second = Math.floor(this.now() / this.bucketMs)
    const steps = Math.min(second - this.headSecond, this.buckets.length)
    for (let i = 1; i <= steps; i++) this.buckets[(this.headSecond + i) % this.buckets.length] = 0
    this.headSecond = Math.max(this.headSecond, second)
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once; settles every item (errors are fn's to handle). */
export async function forEachLimit<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  assert.ok(concurrency >= 1)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane))
}

/** Exponential backoff for the n-th failed attempt of a task: 1 s, 2 s, 4 s ... capped. */
export function retryBackoffMs(attempts: number, capMs: number): number {
  return Math.min(capMs, 1000 * 2 ** Math.max(0, Math.min(attempts - 1, 30)))
}
