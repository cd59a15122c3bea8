// Prometheus metrics of the gateway (prom-client), one registry per server so
// several gateways in one process (tests) do not collide: requests by operation and
// status, latency by operation, bytes in and out, requests in flight.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export class GatewayMetrics {
  readonly registry: Registry
  readonly requests: Counter<'operation' | 'status'>
  readonly latency: Histogram<'operation'>
  readonly bytesIn: Counter<'operation'>
  readonly bytesOut: Counter<'operation'>
  readonly inFlight: Gauge
  readonly rateLimited: Counter

  constructor(options: { registry?: Registry; processMetrics?: boolean } = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())]
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'blobfs_gateway_' })
    this.requests = new Counter({ name: 'blobfs_s3_requests_total', help: 'Requests by operation and HTTP status', labelNames: ['operation', 'status'], registers })
    this.latency = new Histogram({
      name: 'blobfs_s3_request_duration_seconds',
      help: 'Time from request to the last byte of the response, by operation',
      labelNames: ['operation'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    })
    this.bytesIn = new Counter({ name: 'blobfs_s3_received_bytes_total', help: 'Request body bytes read from clients (aws-chunked framing included)', labelNames: ['operation'], registers })
    this.bytesOut = new Counter({ name: 'blobfs_s3_sent_bytes_total', help: 'Bytes written to clients (headers included)', labelNames: ['operation'], registers })
    this.inFlight = new Gauge({ name: 'blobfs_s3_requests_in_flight', help: 'Requests being served', registers })
    this.rateLimited = new Counter({ name: 'blobfs_s3_rate_limited_total', help: 'Requests refused with SlowDown by the per-key rate limit', registers })
  }
}
