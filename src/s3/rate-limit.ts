// Per-access-key token buckets: each key may spend `burst` requests at once and
// earns `requestsPerSecond` back. A refused request answers 503 SlowDown with
// Retry-After, which every S3 SDK treats as "back off and retry". The table is
// bounded (least recently used keys are dropped first; a dropped key simply starts
// again with a full bucket).
import assert from 'node:assert/strict'
import { rateLimitKeysMax } from '../limits.ts'

export interface RateLimit {
  requestsPerSecond: number
  burst: number
}

interface Bucket {
  tokens: number
  updatedMs: number
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()

  constructor(
    private readonly limit: RateLimit,
    private readonly keysMax = rateLimitKeysMax,
  ) {
    assert.ok(limit.requestsPerSecond > 0)
    assert.ok(limit.burst >= 1)
  }

  /** Takes one token for `key` at `nowMs`: 0 when allowed, else the ms to wait for one. */
  take(key: string, nowMs: number): number {
    const previous = this.buckets.get(key)
    const bucket = previous ?? { tokens: this.limit.burst, updatedMs: nowMs }
    const elapsedMs = Math.max(0, nowMs - bucket.updatedMs)
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + (elapsedMs * this.limit.requestsPerSecond) / 1000)
    bucket.updatedMs = nowMs
    // re-insert: Map order is then least recently used first
    this.buckets.delete(key)
    this.buckets.set(key, bucket)
    if (this.buckets.size > this.keysMax) this.buckets.delete(this.buckets.keys().next().value!)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / this.limit.requestsPerSecond)
  }

  get size(): number {
    return this.buckets.size
  }
}
