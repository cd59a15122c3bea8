// GetObject and HeadObject: conditional headers and a single byte range (bounded,
// open or suffix), evaluated on the object the read returned so headers and bytes
// belong to the same version; response-* query overrides for signed requests; the
// stored CRC32C as x-amz-checksum-crc32c when the client asks (checksum mode) for a
// whole object, so SDKs verify end to end.
import { pipeline } from 'node:stream/promises'
import { BlobfsError, isBlobfsError } from '../../errors.ts'
import type { ObjectInfo, ReadResult } from '../../objects/types.ts'
import { evaluatePreconditions, parseRange, readPreconditions, resolveRange, type Preconditions, type RangeSpec } from '../conditions.ts'
import { bucketName, header, objectKey, type Operation, type OperationContext } from '../context.ts'
import { objectResponseHeaders } from '../headers.ts'
import { refuseVersionId } from './common.ts'

const overrides: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
}

/** A suffix range needs the size first; a racing overwrite is caught by comparing versions. */
const suffixRangeAttemptsMax = 3

/**
 * Bodies up to this size are read whole before the status is sent: headers and body
 * leave in one write (time to first byte), and a read that fails still gets a proper
 * error instead of a cut connection. Larger bodies stream.
 */
const bufferedBodyBytesMax = 256 * 1024

function responseOverrides(ctx: OperationContext): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [param, name] of Object.entries(overrides)) {
    const value = ctx.target.query.get(param)
    if (value !== undefined) out[name] = value
  }
  if (Object.keys(out).length > 0 && ctx.principal === null) {
    throw new BlobfsError('InvalidRequest', 'response-* overrides need a signed request')
  }
  return out
}

function refuseUnsupported(ctx: OperationContext): void {
  refuseVersionId(ctx)
  if (ctx.target.query.has('partNumber')) throw new BlobfsError('NotSupported', 'reading one part of an object (partNumber) is not supported')
  if (header(ctx, 'x-amz-server-side-encryption-customer-algorithm') !== undefined) throw new BlobfsError('NotSupported', 'server-side encryption with customer keys is not supported')
}

/** Answers 304 or throws 412 when a condition does not hold; true when the caller should go on. */
function checkConditions(ctx: OperationContext, pre: Preconditions, info: ObjectInfo): boolean {
  const outcome = evaluatePreconditions(pre, info, 'read')
  if (outcome === 'failed') throw new BlobfsError('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')
  if (outcome === 'not-modified') {
    ctx.res.writeHead(304, { etag: info.etag, 'last-modified': info.lastModified.toUTCString() })
    ctx.res.end()
    return false
  }
  return true
}

function contentHeaders(ctx: OperationContext, info: ObjectInfo, span: { start: number; end: number } | null, extra: Record<string, string>): Record<string, string | number> {
  const headers: Record<string, string | number> = { ...objectResponseHeaders(info), ...extra }
  if (span) {
    headers['content-range'] = `bytes ${span.start}-${span.end}/${info.sizeBytes}`
    headers['content-length'] = span.end - span.start + 1
  } else {
    headers['content-length'] = info.sizeBytes
    if (info.checksumCrc32c && header(ctx, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED') headers['x-amz-checksum-crc32c'] = info.checksumCrc32c
  }
  return headers
}

export const headObject: Operation = {
  name: 'HeadObject',
  access: 'object-read',
  async run(ctx) {
    refuseUnsupported(ctx)
    const extra = responseOverrides(ctx)
    const pre = readPreconditions(ctx.req.headers)
    const info = await ctx.objects.headObject(bucketName(ctx), objectKey(ctx))
    if (!checkConditions(ctx, pre, info)) return
    const spec = parseRange(header(ctx, 'range'))
    const span = spec ? rangeOrThrow(ctx, spec, info) : null
    ctx.res.writeHead(span ? 206 : 200, contentHeaders(ctx, info, span, extra))
    ctx.res.end()
  },
}

function rangeOrThrow(ctx: OperationContext, spec: RangeSpec, info: ObjectInfo): { start: number; end: number } {
  try {
    return resolveRange(spec, info.sizeBytes)
  } catch (error) {
    ctx.res.setHeader('content-range', `bytes */${info.sizeBytes}`)
    throw error
  }
}

async function readRange(ctx: OperationContext, spec: RangeSpec | null, pre: Preconditions): Promise<ReadResult | null> {
  const bucket = bucketName(ctx)
  const key = objectKey(ctx)
  if (spec === null) return ctx.objects.getObject(bucket, key, { signal: ctx.signal })
  if (spec.kind === 'from') {
    try {
      return await ctx.objects.getObject(bucket, key, { range: { start: spec.start, end: spec.end ?? Number.MAX_SAFE_INTEGER }, signal: ctx.signal })
    } catch (error) {
      if (!isBlobfsError(error, 'InvalidRange')) throw error
      // Conditions come before the range (RFC 7233 section 3.1), and 416 names the size.
      const info = await ctx.objects.headObject(bucket, key)
      if (!checkConditions(ctx, pre, info)) return null
      rangeOrThrow(ctx, spec, info)
      throw error
    }
  }
  for (let attempt = 1; ; attempt++) {
    const info = await ctx.objects.headObject(bucket, key)
    if (!checkConditions(ctx, pre, info)) return null
    const span = rangeOrThrow(ctx, spec, info)
    const result = await ctx.objects.getObject(bucket, key, { range: span, signal: ctx.signal })
    if (result.info.objectId === info.objectId) return result
    result.body.destroy()
    if (attempt >= suffixRangeAttemptsMax) throw new BlobfsError('SerializationFailure', 'the object kept changing during a suffix range read')
  }
}

export const getObject: Operation = {
  name: 'GetObject',
  access: 'object-read',
  async run(ctx) {
    refuseUnsupported(ctx)
    const extra = responseOverrides(ctx)
    const pre = readPreconditions(ctx.req.headers)
    const spec = parseRange(header(ctx, 'range'))
    const result = await readRange(ctx, spec, pre)
    if (result === null) return
    try {
      if (!checkConditions(ctx, pre, result.info)) {
        result.body.destroy()
        return
      }
    } catch (error) {
      result.body.destroy()
      throw error
    }
    const span = spec ? result.range : null
    const headers = contentHeaders(ctx, result.info, span, extra)
    const length = headers['content-length'] as number
    if (length <= bufferedBodyBytesMax) {
      const parts: Buffer[] = []
      for await (const part of result.body) parts.push(part as Buffer)
      const bytes = Buffer.concat(parts)
      if (bytes.length !== length) throw new BlobfsError('Internal', `the object layer returned ${bytes.length} bytes for a ${length}-byte read`)
      ctx.res.writeHead(span ? 206 : 200, headers)
      ctx.res.end(bytes)
      return
    }
    ctx.res.writeHead(span ? 206 : 200, headers)
    await pipeline(result.body, ctx.res)
  },
}
