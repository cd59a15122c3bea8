// The gateway's HTTP server: the S3 REST side-port and the /api/v1 JSON API on one
// port (DESIGN.md, "The S3 side-port and /api/v1"). Every request takes the same
// path: resolve the target and operation, verify the signature, take a rate-limit
// token, authorize against the bucket, run the operation; any error becomes one S3
// error (or JSON error for /api/v1) through the table in errors.ts, and every
// request is counted, timed and logged with its request id.
//
// The object layer is injected (createS3Server({ objects })): the gateway reaches
// data, buckets and access keys only through it.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { BlobfsError } from '../errors.ts'
import { keyLengthBytesMax, undrainedBodyBytesMax } from '../limits.ts'
import { registerObjectLayerMetrics } from '../objects/metrics.ts'
import type { AccessKey } from '../objects/types.ts'
import { authorize } from './access.ts'
import { apiOperation } from './api/objects.ts'
import { RequestBody } from './body.ts'
import { parseGatewayOptions, type GatewayConfig, type S3GatewayOptions } from './config.ts'
import type { Operation, OperationContext, Principal } from './context.ts'
import { clientMessage, errorXml, s3ErrorFor } from './errors.ts'
import { GatewayMetrics } from './metrics.ts'
import { s3Operation } from './ops/index.ts'
import { RateLimiter } from './rate-limit.ts'
import { operationName, resolveEndpoint, type Target } from './router.ts'
import { verifyRequest, type SignableRequest, type VerifiedSignature } from './sigv4.ts'

export interface S3Gateway {
  readonly server: Server
  readonly config: GatewayConfig
  readonly metrics: GatewayMetrics
  /** Starts listening; port 0 picks a free one. Resolves to the endpoint URL. */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; endpoint: string }>
  /** Stops accepting, closes idle and active connections, resolves when closed. */
  close(): Promise<void>
}

export function createS3Server(options: S3GatewayOptions): S3Gateway {
  const config = parseGatewayOptions(options)
  const metrics = new GatewayMetrics({ registry: config.metricsRegistry, processMetrics: config.processMetrics })
  registerObjectLayerMetrics(metrics.registry, config.objects)
  const handler = new RequestHandler(config, metrics)
  const server = createServer({ requestTimeout: 0, headersTimeout: config.headersTimeoutMs, keepAliveTimeout: config.keepAliveTimeoutMs })
  server.on('request', (req, res) => void handler.handle(req, res, false))
  // Answer Expect: 100-continue only once the request is authorized: a refused
  // upload is refused before the client sends its body.
  server.on('checkContinue', (req, res) => void handler.handle(req, res, true))
  return {
    server,
    config,
    metrics,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const address = server.address() as AddressInfo
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
          resolve({ host: address.address, port: address.port, endpoint: `http://${shown}:${address.port}` })
        })
      })
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

function requestId(): string {
  return randomBytes(8).toString('hex').toUpperCase()
}

function signable(req: IncomingMessage): SignableRequest {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const headers: [string, string][] = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!])
  return { method: req.method ?? 'GET', rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers }
}

class RequestHandler {
  private readonly limiter: RateLimiter | null
  private readonly keyCache = new Map<string, { key: AccessKey; expiresMs: number }>()
  private readonly keyCacheMax = 10_000

  constructor(
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {
    this.limiter = config.rateLimit ? new RateLimiter(config.rateLimit) : null
  }

  private lookupKey = async (accessKeyId: string): Promise<AccessKey | null> => {
    const ttl = this.config.accessKeyCacheTtlMs
    const now = this.config.now()
    const cached = this.keyCache.get(accessKeyId)
    if (cached && cached.expiresMs > now) return cached.key
    const key = await this.config.objects.getAccessKey(accessKeyId)
    if (key && ttl > 0) {
      if (this.keyCache.size >= this.keyCacheMax) this.keyCache.delete(this.keyCache.keys().next().value!)
      this.keyCache.set(accessKeyId, { key, expiresMs: now + ttl })
    } else {
      this.keyCache.delete(accessKeyId)
    }
    return key
  }

  async handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const startedNs = process.hrtime.bigint()
    const id = requestId()
    const log = this.config.logger.child({ reqId: id })
    const socket = req.socket
    const writtenAtStart = socket.bytesWritten
    const abort = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) abort.abort(new BlobfsError('IncompleteBody', 'the client closed the connection'))
    })
    res.setHeader('x-amz-request-id', id)
    res.setHeader('x-amz-id-2', id)
    res.setHeader('server', 'blobfs')
    this.metrics.inFlight.inc()

    let operation = 'Unknown'
    let api = false
    let target: Target | null = null
    let principal: Principal = null
    let body: RequestBody | null = null
    let failure: unknown = null
    try {
      const endpoint = resolveEndpoint(req.method ?? 'GET', req.url ?? '/', req.headers.host, this.config.domain, this.config.metricsPath)
      if (endpoint.kind === 'metrics') {
        operation = 'Metrics'
        const text = await this.metrics.registry.metrics()
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) })
        res.end(text)
        return
      }
      api = endpoint.kind === 'api'
      target = endpoint.target
      const method = req.method ?? 'GET'
      const op: Operation = api ? apiOperation(method, target) : s3Operation(operationName(method, target, req.headers['x-amz-copy-source'] !== undefined))
      operation = op.name
      if (target.key !== null && Buffer.byteLength(target.key) > keyLengthBytesMax) {
        throw new BlobfsError('KeyTooLong', `the key is longer than ${keyLengthBytesMax} bytes`)
      }
      const auth: VerifiedSignature | null = await verifyRequest(signable(req), this.lookupKey, this.config.now())
      principal = auth ? { accessKeyId: auth.accessKey.accessKeyId, owner: auth.accessKey.owner } : null
      this.takeToken(principal, req, res)
      body = new RequestBody(req, res, auth, { idleTimeoutMs: this.config.requestIdleTimeoutMs, expectContinue })
      const bucket = await authorize(this.config.objects, target.bucket, principal, op.access)
      const ctx: OperationContext = {
        id,
        req,
        res,
        target,
        principal,
        auth,
        bucket,
        objects: this.config.objects,
        config: this.config,
        body,
        signal: abort.signal,
        log,
      }
      await op.run(ctx)
    } catch (error) {
      failure = error
      if (abort.signal.aborted) {
        // The client went away mid-request: nothing to answer, nothing wrong here.
        log.debug({ err: error, op: operation }, 'client went away')
        res.destroy()
      } else {
        this.sendError(req, res, error, { id, target, api, body, expectContinue, log, operation })
      }
    } finally {
      this.metrics.inFlight.dec()
      const durationMs = Number(process.hrtime.bigint() - startedNs) / 1e6
      const status = res.headersSent ? res.statusCode : 0
      const bytesIn = body?.rawBytes ?? 0
      const bytesOut = socket.bytesWritten - writtenAtStart
      this.metrics.requests.inc({ operation, status: String(status) })
      this.metrics.latency.observe({ operation }, durationMs / 1000)
      this.metrics.bytesIn.inc({ operation }, Math.max(0, bytesIn))
      this.metrics.bytesOut.inc({ operation }, Math.max(0, bytesOut))
      log.info(
        {
          op: operation,
          method: req.method,
          bucket: target?.bucket ?? undefined,
          key: target?.key ?? undefined,
          status,
          ms: Math.round(durationMs * 10) / 10,
          bytesIn,
          bytesOut,
          accessKeyId: principal?.accessKeyId,
          error: failure instanceof BlobfsError ? failure.code : failure ? 'Internal' : undefined,
        },
        'request',
      )
    }
  }

  private takeToken(principal: Principal, req: IncomingMessage, res: ServerResponse): void {
    if (!this.limiter) return
    const waitMs = this.limiter.take(principal ? `key:${principal.accessKeyId}` : `anonymous:${req.socket.remoteAddress}`, this.config.now())
    if (waitMs === 0) return
    this.metrics.rateLimited.inc()
    res.setHeader('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))))
    throw new BlobfsError('SlowDown', 'Please reduce your request rate.')
  }

  private sendError(
    req: IncomingMessage,
    res: ServerResponse,
    error: unknown,
    context: { id: string; target: Target | null; api: boolean; body: RequestBody | null; expectContinue: boolean; log: GatewayConfig['logger']; operation: string },
  ): void {
    const spec = s3ErrorFor(error)
    if (!spec.mapped) context.log.error({ err: error, op: context.operation }, 'internal error')
    else if (spec.status >= 500) context.log.warn({ err: error, op: context.operation }, 'request failed')
    if (res.headersSent) {
      // The status is out; the only honest signal left is a cut connection.
      res.destroy(error instanceof Error ? error : undefined)
      return
    }
    const message = clientMessage(error, spec)
    const resource = context.target ? '/' + [context.target.bucket, context.target.key].filter((p) => p !== null).join('/') : (req.url ?? '/')
    const headers: Record<string, string | number> = {}
    // A stalled or broken body leaves the connection unusable; so does a large unread one.
    const bodyBroken = error instanceof BlobfsError && (error.code === 'RequestTimeout' || error.code === 'IncompleteBody')
    if (bodyBroken || this.mustClose(req, context.body, context.expectContinue)) headers.connection = 'close'
    for (const name of ['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges']) res.removeHeader(name)
    if (req.method === 'HEAD') {
      res.writeHead(spec.status, headers)
      res.end()
      return
    }
    const text = context.api
      ? JSON.stringify({ error: { code: spec.code, message, resource, request_id: context.id } })
      : errorXml(spec, message, { resource, requestId: context.id })
    headers['content-type'] = context.api ? 'application/json' : 'application/xml'
    headers['content-length'] = Buffer.byteLength(text)
    res.writeHead(spec.status, headers)
    res.end(text)
  }

  /** An error answered before the body was read: reuse the connection only if the rest is small enough to drain. */
  private mustClose(req: IncomingMessage, body: RequestBody | null, expectContinue: boolean): boolean {
    if (req.complete) return false
    if (body === null) {
      if (expectContinue) return true
      const length = req.headers['content-length']
      return length === undefined ? req.headers['transfer-encoding'] !== undefined : Number(length) > undrainedBodyBytesMax
    }
    const unread = body.unread
    return unread !== null && (unread.bytes === null || unread.bytes > undrainedBodyBytesMax)
  }
}
