// Hand-built, hand-signed HTTP requests for what no SDK sends on demand: signed
// streaming bodies, tampered chunks, wrong payload hashes, stalled and cut bodies.
import { createHash } from 'node:crypto'
import { request, type IncomingHttpHeaders } from 'node:http'
import type { AccessKey } from '../../src/objects/types.ts'
import { encodeAwsChunked } from '../../src/s3/chunked.ts'
import { formatAmzDate, signHeaders, uriEncode } from '../../src/s3/sigv4.ts'

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export function send(port: number, method: string, path: string, headers: Record<string, string | number>, body?: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (p: Buffer) => parts.push(p))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

export function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${uriEncode(key, false)}`
}

export interface SignedOptions {
  key: AccessKey
  port: number
  method: string
  path: string
  query?: [string, string][]
  headers?: Record<string, string>
  payloadHash: string
  amzDate?: string
}

export function signed(options: SignedOptions): { path: string; headers: Record<string, string>; signature: string; signingKey: Buffer; amzDate: string; scope: string } {
  const amzDate = options.amzDate ?? formatAmzDate(Date.now())
  const headers: Record<string, string> = {
    host: `127.0.0.1:${options.port}`,
    'x-amz-date': amzDate,
    'x-amz-content-sha256': options.payloadHash,
    ...(options.headers ?? {}),
  }
  const result = signHeaders({
    method: options.method,
    path: options.path,
    query: options.query,
    headers,
    payloadHash: options.payloadHash,
    accessKeyId: options.key.accessKeyId,
    secretAccessKey: options.key.secretAccessKey,
    region: 'us-east-1',
    amzDate,
  })
  const query = (options.query ?? []).map(([n, v]) => `${uriEncode(n)}=${uriEncode(v)}`).join('&')
  return {
    path: options.path + (query ? '?' + query : ''),
    headers: { ...headers, authorization: result.authorization },
    signature: result.signature,
    signingKey: result.signingKey,
    amzDate,
    scope: result.scope,
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A signed-streaming PUT (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) of `chunks`. */
export function streamingPut(options: {
  key: AccessKey
  port: number
  path: string
  chunks: Buffer[]
  trailer?: [string, string]
  tamper?: (wire: Buffer) => void
}): Promise<RawResponse> {
  const decoded = options.chunks.reduce((n, c) => n + c.length, 0)
  const mode = options.trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
  // The wire length is signed, so frame once with a placeholder chain to learn it.
  const headers: Record<string, string> = {
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(decoded),
    ...(options.trailer ? { 'x-amz-trailer': options.trailer[0] } : {}),
  }
  const placeholder = { signingKey: Buffer.alloc(32), amzDate: '', scope: '', seedSignature: '' }
  const length = encodeAwsChunked(options.chunks, { chain: placeholder, trailers: options.trailer ? [options.trailer] : [], signedTrailer: !!options.trailer }).length
  headers['content-length'] = String(length)
  const s = signed({ key: options.key, port: options.port, method: 'PUT', path: options.path, headers, payloadHash: mode })
  const wire = encodeAwsChunked(options.chunks, {
    chain: { signingKey: s.signingKey, amzDate: s.amzDate, scope: s.scope, seedSignature: s.signature },
    trailers: options.trailer ? [options.trailer] : [],
    signedTrailer: !!options.trailer,
  })
  options.tamper?.(wire)
  return send(options.port, 'PUT', s.path, s.headers, wire)
}
