// PutObject (and the body-carrying half of UploadPart): the body streams from the socket, through aws-chunked decoding and
// signature/trailer checks (body.ts), into the object layer, which verifies
// Content-MD5, the declared length and any x-amz-checksum-* header and commits only
// when all hold. Nothing is buffered whole and nothing failed is ever visible.
import { BlobfsError } from '../../errors.ts'
import { multipartPartSizeBytesMax, singlePutSizeBytesMax } from '../../limits.ts'
import type { ObjectInfo, PartInfo, WriteOptions } from '../../objects/types.ts'
import { checksumFromHeaders, contentMd5 } from '../checksums.ts'
import { bucketName, header, objectKey, sendEmpty, type Operation, type OperationContext } from '../context.ts'
import { refuseUnsupportedWriteHeaders, writeMetadataFrom } from '../headers.ts'
import { checksumEcho, partNumberOf, uploadIdOf } from './common.ts'

/** What the request promises about its body, for the object layer to verify. */
function bodyExpectations(ctx: OperationContext): WriteOptions {
  const checksum = checksumFromHeaders(ctx.req.headers)
  return {
    expectedMd5: contentMd5(ctx.req.headers),
    expectedLengthBytes: ctx.body.declaredBytes ?? undefined,
    checksum: checksum ?? undefined,
    signal: ctx.signal,
  }
}

/** PutObject's work, shared with /api/v1 PUT: returns the stored object and the verified checksums to echo. */
export async function putFromRequest(ctx: OperationContext): Promise<{ info: ObjectInfo; echo: Record<string, string> }> {
  refuseUnsupportedWriteHeaders(ctx.req.headers)
  if (header(ctx, 'if-match') !== undefined) throw new BlobfsError('NotSupported', 'conditional overwrite (If-Match on PUT) is not supported')
  const ifNoneMatch = header(ctx, 'if-none-match')
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw new BlobfsError('NotSupported', 'If-None-Match on PUT supports only *')
  const options = bodyExpectations(ctx)
  const info = await ctx.objects.putObject(bucketName(ctx), objectKey(ctx), ctx.body.stream(singlePutSizeBytesMax), {
    ...writeMetadataFrom(ctx.req.headers),
    ...options,
    ifNoneMatch: ifNoneMatch === undefined ? undefined : '*',
  })
  return { info, echo: checksumEcho(options.checksum, ctx.body.trailerChecksum) }
}

/** UploadPart's work, shared with /api/v1 part uploads. */
export async function uploadPartFromRequest(ctx: OperationContext): Promise<{ part: PartInfo; uploadId: string; echo: Record<string, string> }> {
  const uploadId = uploadIdOf(ctx)
  const partNumber = partNumberOf(ctx)
  const options = bodyExpectations(ctx)
  const part = await ctx.objects.uploadPart(bucketName(ctx), objectKey(ctx), uploadId, partNumber, ctx.body.stream(multipartPartSizeBytesMax), options)
  return { part, uploadId, echo: checksumEcho(options.checksum, ctx.body.trailerChecksum) }
}

export const putObject: Operation = {
  name: 'PutObject',
  access: 'object-write',
  async run(ctx) {
    const { info, echo } = await putFromRequest(ctx)
    sendEmpty(ctx, 200, { etag: info.etag, ...echo })
  },
}
