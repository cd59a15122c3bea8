// The seed's JSON API, /api/v1/buckets/{bucket}/objects/{key}, on the S3 port with
// the same authentication (SigV4 header or presigned URL) and the same object layer:
//
//   POST   ?uploads                    -> 200 {bucket, key, upload_id, chunk_size_bytes, initiated_at}
//   PUT    ?uploadId=U&partNumber=N    -> 200 {upload_id, part_number, etag, checksum_crc32c, bytes_written}
//   POST   ?complete[&uploadId=U]      -> 201 {bucket, key, etag, size_bytes, parts_count}
//            body {"upload_id"?, "parts"?: [{"part_number", "etag"}]}; no parts = every uploaded part
//   DELETE ?uploadId=U                 -> 204 (abort)
//   GET / HEAD                         -> the object's bytes (Range and conditionals as in S3)
//   PUT                                -> 201 {bucket, key, etag, size_bytes, checksum_crc32c, last_modified}
//   DELETE                             -> 204
//
// Etags are the S3 etags without quotes; checksum_crc32c is 8 hex digits as in the seed.
import { BlobfsError } from '../../errors.ts'
import { jsonBodyBytesMax, listPageKeysMax } from '../../limits.ts'
import type { PartInfo } from '../../objects/types.ts'
import { bucketName, objectKey, sendEmpty, sendJson, type Operation, type OperationContext } from '../context.ts'
import { refuseUnsupportedWriteHeaders, writeMetadataFrom } from '../headers.ts'
import { getObject, headObject } from '../ops/get-object.ts'
import { uploadIdOf } from '../ops/common.ts'
import { putFromRequest, uploadPartFromRequest } from '../ops/put-object.ts'
import type { Target } from '../router.ts'

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '')
}

function crc32cHex(base64: string | null): string | null {
  if (!base64) return null
  return Buffer.from(base64, 'base64').toString('hex').padStart(8, '0')
}

/** ISO 8601 to the second, as the seed prints it (2026-06-01T11:06:00Z). */
function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

const createUpload: Operation = {
  name: 'ApiCreateMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    refuseUnsupportedWriteHeaders(ctx.req.headers)
    const upload = await ctx.objects.createMultipartUpload(bucketName(ctx), objectKey(ctx), writeMetadataFrom(ctx.req.headers))
    sendJson(ctx, 200, {
      bucket: upload.bucket,
      key: upload.key,
      upload_id: upload.uploadId,
      chunk_size_bytes: ctx.config.apiChunkSizeBytes,
      initiated_at: isoSeconds(upload.initiatedAt),
    })
  },
}

const uploadPart: Operation = {
  name: 'ApiUploadPart',
  access: 'object-write',
  async run(ctx) {
    const { part, uploadId } = await uploadPartFromRequest(ctx)
    sendJson(ctx, 200, {
      upload_id: uploadId,
      part_number: part.partNumber,
      etag: unquote(part.etag),
      checksum_crc32c: crc32cHex(part.checksumCrc32c),
      bytes_written: part.sizeBytes,
    })
  },
}

interface CompleteRequest {
  upload_id?: unknown
  parts?: unknown
}

async function allParts(ctx: OperationContext, uploadId: string): Promise<PartInfo[]> {
  const parts: PartInfo[] = []
  let marker = 0
  for (;;) {
    const page = await ctx.objects.listParts(bucketName(ctx), objectKey(ctx), uploadId, { partNumberMarker: marker, maxParts: listPageKeysMax })
    parts.push(...page.parts)
    if (!page.isTruncated || page.nextPartNumberMarker === null) return parts
    marker = page.nextPartNumberMarker
  }
}

const completeUpload: Operation = {
  name: 'ApiCompleteMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    const text = (await ctx.body.readAll(jsonBodyBytesMax)).toString('utf8')
    let request: CompleteRequest = {}
    if (text.trim() !== '') {
      try {
        request = JSON.parse(text) as CompleteRequest
      } catch {
        throw new BlobfsError('InvalidRequest', 'the body is not JSON')
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new BlobfsError('InvalidRequest', 'the body must be a JSON object')
    }
    const uploadId = ctx.target.query.get('uploadId') || (typeof request.upload_id === 'string' ? request.upload_id : '')
    if (!uploadId) throw new BlobfsError('InvalidArgument', 'name the upload: ?uploadId= or "upload_id"')
    let parts: { partNumber: number; etag: string }[]
    if (request.parts === undefined) {
      parts = (await allParts(ctx, uploadId)).map((p) => ({ partNumber: p.partNumber, etag: p.etag }))
    } else {
      if (!Array.isArray(request.parts)) throw new BlobfsError('InvalidRequest', '"parts" must be a list')
      parts = request.parts.map((p: unknown) => {
        const part = p as { part_number?: unknown; etag?: unknown }
        if (!Number.isInteger(part?.part_number) || typeof part?.etag !== 'string') throw new BlobfsError('InvalidRequest', 'each part needs "part_number" and "etag"')
        return { partNumber: part.part_number as number, etag: `"${unquote(part.etag)}"` }
      })
    }
    if (parts.length === 0) throw new BlobfsError('InvalidPart', 'the upload has no parts')
    const info = await ctx.objects.completeMultipartUpload(bucketName(ctx), objectKey(ctx), uploadId, parts)
    sendJson(ctx, 201, { bucket: info.bucket, key: info.key, etag: unquote(info.etag), size_bytes: info.sizeBytes, parts_count: info.partsCount ?? parts.length })
  },
}

const abortUpload: Operation = {
  name: 'ApiAbortMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    await ctx.objects.abortMultipartUpload(bucketName(ctx), objectKey(ctx), uploadIdOf(ctx))
    sendEmpty(ctx, 204)
  },
}

const putObject: Operation = {
  name: 'ApiPutObject',
  access: 'object-write',
  async run(ctx) {
    const { info } = await putFromRequest(ctx)
    sendJson(ctx, 201, {
      bucket: info.bucket,
      key: info.key,
      etag: unquote(info.etag),
      size_bytes: info.sizeBytes,
      checksum_crc32c: crc32cHex(info.checksumCrc32c),
      last_modified: isoSeconds(info.lastModified),
    })
  },
}

const deleteObject: Operation = {
  name: 'ApiDeleteObject',
  access: 'object-write',
  async run(ctx) {
    await ctx.objects.deleteObject(bucketName(ctx), objectKey(ctx))
    sendEmpty(ctx, 204)
  },
}

const getApiObject: Operation = { name: 'ApiGetObject', access: 'object-read', run: getObject.run }
const headApiObject: Operation = { name: 'ApiHeadObject', access: 'object-read', run: headObject.run }

export function apiOperation(method: string, target: Target): Operation {
  const q = target.query
  switch (method) {
    case 'POST':
      if (q.has('uploads')) return createUpload
      if (q.has('complete')) return completeUpload
      break
    case 'PUT':
      if (q.has('uploadId') || q.has('partNumber')) return uploadPart
      return putObject
    case 'GET':
      return getApiObject
    case 'HEAD':
      return headApiObject
    case 'DELETE':
      return q.has('uploadId') ? abortUpload : deleteObject
  }
  throw new BlobfsError('MethodNotAllowed', `${method} ${target.rawPath}${target.rawQuery ? '?' + target.rawQuery : ''} is not part of /api/v1`)
}
