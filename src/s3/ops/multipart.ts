// The multipart upload set: CreateMultipartUpload, UploadPart, UploadPartCopy,
// CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
// Parts stream like PutObject bodies; a copied part streams from a ranged read of
// the source into the part, so no copy is held in memory either.
import { BlobfsError } from '../../errors.ts'
import { copyPartSizeBytesMax, listPageKeysMax, xmlBodyBytesMax } from '../../limits.ts'
import { algorithmOfHeader } from '../checksums.ts'
import { parseRange, readPreconditions, requireCopySourceConditions } from '../conditions.ts'
import { bucketName, header, objectKey, sendEmpty, sendXml, type Operation } from '../context.ts'
import { refuseUnsupportedWriteHeaders, writeMetadataFrom } from '../headers.ts'
import { uriEncode } from '../sigv4.ts'
import { parseXml, xmlList, xmlText } from '../xml.ts'
import { authorizeCopySource, encodingTypeOf, listingEncoder, parseCopySource, parseMaxCount, partNumberOf, uploadIdOf } from './common.ts'
import { uploadPartFromRequest } from './put-object.ts'

export const createMultipartUpload: Operation = {
  name: 'CreateMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    refuseUnsupportedWriteHeaders(ctx.req.headers)
    const algorithm = header(ctx, 'x-amz-checksum-algorithm')
    if (algorithm !== undefined) algorithmOfHeader('x-amz-checksum-' + algorithm.toLowerCase())
    const upload = await ctx.objects.createMultipartUpload(bucketName(ctx), objectKey(ctx), writeMetadataFrom(ctx.req.headers))
    sendXml(
      ctx,
      200,
      'InitiateMultipartUploadResult',
      { Bucket: upload.bucket, Key: upload.key, UploadId: upload.uploadId },
      algorithm === undefined ? {} : { 'x-amz-checksum-algorithm': algorithm.toUpperCase() },
    )
  },
}

export const uploadPart: Operation = {
  name: 'UploadPart',
  access: 'object-write',
  async run(ctx) {
    const { part, echo } = await uploadPartFromRequest(ctx)
    sendEmpty(ctx, 200, { etag: part.etag, ...echo })
  },
}

export const uploadPartCopy: Operation = {
  name: 'UploadPartCopy',
  access: 'object-write',
  async run(ctx) {
    const partNumber = partNumberOf(ctx)
    const uploadId = uploadIdOf(ctx)
    const source = parseCopySource(ctx)
    await authorizeCopySource(ctx.objects, ctx, source)
    const rangeHeader = header(ctx, 'x-amz-copy-source-range')
    const spec = rangeHeader === undefined ? null : parseRange(rangeHeader)
    if (rangeHeader !== undefined && (spec === null || spec.kind !== 'from' || spec.end === null)) {
      throw new BlobfsError('InvalidArgument', `x-amz-copy-source-range must be bytes=FIRST-LAST, not '${rangeHeader}'`)
    }
    const range = spec && spec.kind === 'from' ? { start: spec.start, end: spec.end! } : undefined
    if (range && range.end - range.start + 1 > copyPartSizeBytesMax) throw new BlobfsError('InvalidArgument', `a copied part may be at most ${copyPartSizeBytesMax} bytes`)
    const read = await ctx.objects.getObject(source.bucket, source.key, { range, signal: ctx.signal })
    try {
      const info = read.info
      if (range && range.end >= info.sizeBytes) throw new BlobfsError('InvalidRange', `the range ${rangeHeader} is outside the ${info.sizeBytes}-byte source`)
      if (!range && info.sizeBytes > copyPartSizeBytesMax) throw new BlobfsError('InvalidRequest', `a source over ${copyPartSizeBytesMax} bytes must be copied by ranges`)
      requireCopySourceConditions(readPreconditions(ctx.req.headers, 'x-amz-copy-source-'), info, 'the copy source')
      const lengthBytes = read.range ? read.range.end - read.range.start + 1 : info.sizeBytes
      const part = await ctx.objects.uploadPart(bucketName(ctx), objectKey(ctx), uploadId, partNumber, read.body, { expectedLengthBytes: lengthBytes, signal: ctx.signal })
      sendXml(ctx, 200, 'CopyPartResult', { ETag: part.etag, LastModified: part.lastModified })
    } finally {
      read.body.destroy()
    }
  },
}

export const completeMultipartUpload: Operation = {
  name: 'CompleteMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    if (header(ctx, 'if-none-match') !== undefined || header(ctx, 'if-match') !== undefined) {
      throw new BlobfsError('NotSupported', 'conditional writes on CompleteMultipartUpload are not supported')
    }
    const uploadId = uploadIdOf(ctx)
    const root = parseXml(await ctx.body.readAll(xmlBodyBytesMax), 'CompleteMultipartUpload')
    const parts = xmlList(root, 'Part').map((p) => {
      const number = xmlText(p, 'PartNumber')?.trim() ?? ''
      const etag = xmlText(p, 'ETag')?.trim()
      if (!/^\d{1,5}$/.test(number) || !etag) throw new BlobfsError('MalformedXML', 'every <Part> needs a <PartNumber> and an <ETag>')
      return { partNumber: Number(number), etag: etag.startsWith('"') ? etag : `"${etag}"` }
    })
    if (parts.length === 0) throw new BlobfsError('MalformedXML', 'a CompleteMultipartUpload document needs at least one <Part>')
    const info = await ctx.objects.completeMultipartUpload(bucketName(ctx), objectKey(ctx), uploadId, parts)
    sendXml(ctx, 200, 'CompleteMultipartUploadResult', {
      Location: `/${info.bucket}/${uriEncode(info.key, false)}`,
      Bucket: info.bucket,
      Key: info.key,
      ETag: info.etag,
    })
  },
}

export const abortMultipartUpload: Operation = {
  name: 'AbortMultipartUpload',
  access: 'object-write',
  async run(ctx) {
    await ctx.objects.abortMultipartUpload(bucketName(ctx), objectKey(ctx), uploadIdOf(ctx))
    sendEmpty(ctx, 204)
  },
}

export const listParts: Operation = {
  name: 'ListParts',
  access: 'object-write',
  async run(ctx) {
    const uploadId = uploadIdOf(ctx)
    const markerText = ctx.target.query.get('part-number-marker') ?? '0'
    if (!/^\d{1,5}$/.test(markerText)) throw new BlobfsError('InvalidArgument', 'part-number-marker must be an integer')
    const maxParts = parseMaxCount(ctx, 'max-parts', listPageKeysMax)
    const owner = ctx.bucket!.owner
    const page = await ctx.objects.listParts(bucketName(ctx), objectKey(ctx), uploadId, { partNumberMarker: Number(markerText), maxParts })
    sendXml(ctx, 200, 'ListPartsResult', {
      Bucket: bucketName(ctx),
      Key: objectKey(ctx),
      UploadId: uploadId,
      Initiator: { ID: owner, DisplayName: owner },
      Owner: { ID: owner, DisplayName: owner },
      StorageClass: 'STANDARD',
      PartNumberMarker: Number(markerText),
      NextPartNumberMarker: page.nextPartNumberMarker ?? undefined,
      MaxParts: maxParts,
      IsTruncated: page.isTruncated,
      Part: page.parts.map((p) => ({ PartNumber: p.partNumber, LastModified: p.lastModified, ETag: p.etag, Size: p.sizeBytes })),
    })
  },
}

export const listMultipartUploads: Operation = {
  name: 'ListMultipartUploads',
  access: 'bucket-write',
  async run(ctx) {
    const q = ctx.target.query
    if (q.get('delimiter')) throw new BlobfsError('NotSupported', 'ListMultipartUploads with a delimiter is not supported')
    const encode = listingEncoder(ctx)
    const maxUploads = parseMaxCount(ctx, 'max-uploads', listPageKeysMax)
    const owner = ctx.bucket!.owner
    const page = await ctx.objects.listMultipartUploads(bucketName(ctx), {
      prefix: q.get('prefix') || undefined,
      keyMarker: q.get('key-marker') || undefined,
      uploadIdMarker: q.get('upload-id-marker') || undefined,
      maxUploads,
    })
    sendXml(ctx, 200, 'ListMultipartUploadsResult', {
      Bucket: bucketName(ctx),
      KeyMarker: encode(q.get('key-marker') ?? ''),
      UploadIdMarker: q.get('upload-id-marker') ?? '',
      NextKeyMarker: encode(page.nextKeyMarker ?? undefined),
      NextUploadIdMarker: page.nextUploadIdMarker ?? undefined,
      Prefix: encode(q.get('prefix') ?? ''),
      MaxUploads: maxUploads,
      IsTruncated: page.isTruncated,
      EncodingType: encodingTypeOf(ctx) ?? undefined,
      Upload: page.uploads.map((u) => ({
        Key: encode(u.key),
        UploadId: u.uploadId,
        Initiator: { ID: owner, DisplayName: owner },
        Owner: { ID: owner, DisplayName: owner },
        StorageClass: 'STANDARD',
        Initiated: u.initiatedAt,
      })),
    })
  },
}
