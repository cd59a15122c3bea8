// What an operation handler gets: the request, the resolved target, who is asking,
// the bucket (already authorized), the body pipeline and the response helpers. One
// handler per file under ops/ (Garage style); they meet the world only through this.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log.ts'
import type { BucketInfo, ObjectLayer } from '../objects/types.ts'
import type { RequestBody } from './body.ts'
import type { GatewayConfig } from './config.ts'
import { headerValue } from './headers.ts'
import type { Target } from './router.ts'
import type { VerifiedSignature } from './sigv4.ts'
import { buildXml, type XmlObject } from './xml.ts'

/** Who is asking: an access key's owner, or null for an anonymous request. */
export type Principal = { accessKeyId: string; owner: string } | null

/**
 * What an operation needs before it runs: `service` (any key), `bucket-read` /
 * `object-read` (the owner, or anyone on a PUBLIC_READ bucket), `bucket-write` /
 * `object-write` (the owner only), `none` (nothing: answers that need no bucket).
 */
export type Access = 'none' | 'service' | 'bucket-read' | 'bucket-write' | 'object-read' | 'object-write'

export interface OperationContext {
  readonly id: string
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly target: Target
  readonly principal: Principal
  readonly auth: VerifiedSignature | null
  /** The target bucket, authorized; null for service operations and NotImplemented answers. */
  readonly bucket: BucketInfo | null
  readonly objects: ObjectLayer
  readonly config: GatewayConfig
  readonly body: RequestBody
  /** Aborted when the client goes away before the response is complete. */
  readonly signal: AbortSignal
  readonly log: Logger
}

export interface Operation {
  readonly name: string
  readonly access: Access
  run(ctx: OperationContext): Promise<void>
}

export function header(ctx: { req: IncomingMessage }, name: string): string | undefined {
  return headerValue(ctx.req.headers, name)
}

export function bucketName(ctx: OperationContext): string {
  return ctx.target.bucket!
}

export function objectKey(ctx: OperationContext): string {
  return ctx.target.key!
}

export function sendXml(ctx: OperationContext, status: number, root: string, body: XmlObject, headers: Record<string, string> = {}): void {
  const text = buildXml(root, body)
  ctx.res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text) })
  ctx.res.end(text)
}

export function sendEmpty(ctx: OperationContext, status: number, headers: Record<string, string | number> = {}): void {
  ctx.res.writeHead(status, { ...headers, 'content-length': 0 })
  ctx.res.end()
}

export function sendJson(ctx: OperationContext, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  ctx.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  ctx.res.end(text)
}
