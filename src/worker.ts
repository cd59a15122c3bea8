// The one shape of background work (STYLE.md item 9, after Garage's Worker):
// scrubbing, compaction, heartbeats, repair and GC are each a `Worker` with a
// bounded `step`, and one `WorkerRunner` drives any of them — loop, throttle,
// sleep when idle, back off after errors, stop promptly — and reports a status
// for `/metrics` and `blobfs status`. A worker never sleeps inside `step`; it
// says how long to wait, so tests can drive steps directly, without clocks.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from './log.ts'

export type StepResult =
  /** Did work; more is ready now. */
  | { state: 'busy' }
  /** Did work; wait this long before the next step (rate limit). */
  | { state: 'throttled'; delayMs: number }
  /** Nothing to do; look again after this long, or when woken. */
  | { state: 'idle'; delayMs: number }

export type WorkerDetail = Record<string, number | string | boolean | null>

export interface Worker {
  readonly name: string
  /** One bounded unit of work. Throws on failure; the runner backs off and retries. */
  step(signal: AbortSignal): Promise<StepResult>
  /** Progress and counters (numbers become metrics). */
  status(): WorkerDetail
}

export interface WorkerStatus {
  name: string
  state: 'busy' | 'throttled' | 'idle' | 'error' | 'stopped'
  steps: number
  errors: number
  lastError: string | null
  detail: WorkerDetail
}

export const workerErrorBackoffMsMin = 100
export const workerErrorBackoffMsMax = 30_000

export class WorkerRunner {
  private state: WorkerStatus['state'] = 'stopped'
  private steps = 0
  private errors = 0
  private lastError: string | null = null
  private abort: AbortController | null = null
  private wakeSleep: AbortController | null = null
  private loop: Promise<void> | null = null

  constructor(
    readonly worker: Worker,
    private readonly log: Logger,
  ) {}

  start(): void {
    assert.equal(this.loop, null, `worker ${this.worker.name} already started`)
    this.abort = new AbortController()
    this.loop = this.run(this.abort.signal)
  }

  /** Cuts an idle or throttled wait short. */
  wake(): void {
    this.wakeSleep?.abort()
  }

  async stop(): Promise<void> {
    this.abort?.abort()
    this.wake()
    await this.loop
    this.loop = null
    this.state = 'stopped'
  }

  status(): WorkerStatus {
    return { name: this.worker.name, state: this.state, steps: this.steps, errors: this.errors, lastError: this.lastError, detail: this.worker.status() }
  }

  private async run(signal: AbortSignal): Promise<void> {
    let backoffMs = workerErrorBackoffMsMin
    while (!signal.aborted) {
      let delayMs = 0
      try {
        const result = await this.worker.step(signal)
        this.steps++
        this.state = result.state
        backoffMs = workerErrorBackoffMsMin
        if (result.state !== 'busy') delayMs = result.delayMs
      } catch (error) {
        if (signal.aborted) break
        this.errors++
        this.state = 'error'
        this.lastError = (error as Error).message
        this.log.warn({ worker: this.worker.name, err: error, retryMs: backoffMs }, 'background worker step failed')
        delayMs = backoffMs
        backoffMs = Math.min(backoffMs * 2, workerErrorBackoffMsMax)
      }
      if (delayMs > 0) await this.pause(delayMs, signal)
      else await new Promise<void>((resolve) => setImmediate(resolve)) // let requests in between steps
    }
  }

  private async pause(delayMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return // stopped during the step: the listener below would never fire
    const wake = new AbortController()
    this.wakeSleep = wake
    const onAbort = (): void => wake.abort()
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await sleep(delayMs, undefined, { signal: wake.signal })
    } catch {
      // woken or stopped
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.wakeSleep = null
    }
  }
}

/**
 * Paces work to a byte rate: after each piece of work, `delayFor(bytes)` says how
 * long to wait so the average stays at or under `bytesPerSec`.
 */
export class Throttle {
  private nextAtMs = 0

  constructor(
    public bytesPerSec: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    assert.ok(bytesPerSec > 0, 'a throttle needs a positive rate')
  }

  delayFor(bytes: number): number {
    const now = this.now()
    this.nextAtMs = Math.max(this.nextAtMs, now) + (bytes / this.bytesPerSec) * 1000
    return Math.max(0, this.nextAtMs - now)
  }
}
