// The gateway's options, settled once (STYLE.md item 8): what the caller passes,
// else the defaults from limits.ts, frozen. Library code below reads only this.
import assert from 'node:assert/strict'
import type { Registry } from 'prom-client'
import { logger as rootLogger, type Logger } from '../log.ts'
import {
  keepAliveTimeoutMsDefault,
  rateLimitBurstDefault,
  rateLimitRequestsPerSecondDefault,
  requestHeadersTimeoutMsDefault,
  requestIdleTimeoutMsDefault,
  stripeSizeBytesDefault,
} from '../limits.ts'
import type { ObjectLayer } from '../objects/types.ts'
import type { RateLimit } from './rate-limit.ts'

export interface S3GatewayOptions {
  /** The object layer every request goes through (the only way to data and keys). */
  objects: ObjectLayer
  /** Base domain for virtual-hosted-style requests (BUCKET.DOMAIN); path style always works. */
  domain?: string | null
  /** Region answered by GetBucketLocation. Requests signed for any region are accepted. */
  region?: string
  logger?: Logger
  /** Clock for signature dates, presigned expiry and rate limits (tests pin it). */
  now?: () => number
  /** Per-access-key token bucket; null turns rate limiting off. */
  rateLimit?: RateLimit | null
  /** No body bytes for this long -> 400 RequestTimeout. */
  requestIdleTimeoutMs?: number
  headersTimeoutMs?: number
  keepAliveTimeoutMs?: number
  /** How long a looked-up access key is trusted before it is read again (0: every request). */
  accessKeyCacheTtlMs?: number
  /** Path of the Prometheus endpoint (path-style only; null turns it off). */
  metricsPath?: string | null
  metricsRegistry?: Registry
  /** Also export process metrics (CPU, memory, event loop) on the registry. */
  processMetrics?: boolean
  /** Part size suggested to /api/v1 clients (chunk_size_bytes): one stripe. */
  apiChunkSizeBytes?: number
}

export interface GatewayConfig {
  readonly objects: ObjectLayer
  readonly domain: string | null
  readonly region: string
  readonly logger: Logger
  readonly now: () => number
  readonly rateLimit: RateLimit | null
  readonly requestIdleTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly accessKeyCacheTtlMs: number
  readonly metricsPath: string | null
  readonly metricsRegistry: Registry | undefined
  readonly processMetrics: boolean
  readonly apiChunkSizeBytes: number
}

export const accessKeyCacheTtlMsDefault = 5_000

export function parseGatewayOptions(options: S3GatewayOptions): GatewayConfig {
  assert.ok(options.objects, 'the gateway needs an object layer')
  const config: GatewayConfig = {
    objects: options.objects,
    domain: options.domain ? options.domain.toLowerCase().replace(/^\.+|\.+$/g, '') : null,
    region: options.region ?? 'us-east-1',
    logger: options.logger ?? rootLogger('s3'),
    now: options.now ?? Date.now,
    rateLimit: options.rateLimit === undefined ? { requestsPerSecond: rateLimitRequestsPerSecondDefault, burst: rateLimitBurstDefault } : options.rateLimit,
    requestIdleTimeoutMs: options.requestIdleTimeoutMs ?? requestIdleTimeoutMsDefault,
    headersTimeoutMs: options.headersTimeoutMs ?? requestHeadersTimeoutMsDefault,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? keepAliveTimeoutMsDefault,
    accessKeyCacheTtlMs: options.accessKeyCacheTtlMs ?? accessKeyCacheTtlMsDefault,
    metricsPath: options.metricsPath === undefined ? '/metrics' : options.metricsPath,
    metricsRegistry: options.metricsRegistry,
    processMetrics: options.processMetrics ?? false,
    apiChunkSizeBytes: options.apiChunkSizeBytes ?? stripeSizeBytesDefault,
  }
  assert.ok(config.requestIdleTimeoutMs > 0)
  assert.ok(config.headersTimeoutMs > 0)
  assert.ok(config.accessKeyCacheTtlMs >= 0)
  assert.ok(config.apiChunkSizeBytes > 0)
  return Object.freeze(config)
}
