// PutObject: the body streams from the socket, through aws-chunked decoding and
// signature/trailer checks (body.ts), into the object layer, which verifies
// Content-MD5, the declared length and any x-amz-checksum-* header and commits only
// when all hold. Nothing is buffered whole and nothing failed is ever visible.
import { BlobfsError } from '../../errors.ts'
import { singlePutSizeBytesMax } from '../../limits.ts'
import { checksumFromHeaders, contentMd5 } from '../checksums.ts'
import { bucketName, header, objectKey, sendEmpty, type Operation } from '../context.ts'
import { refuseUnsupportedWriteHeaders, writeMetadataFrom } from '../headers.ts'
import { checksumEcho } from './common.ts'

export const putObject: Operation = {
  name: 'PutObject',
  access: 'object-write',
  async run(ctx) {
    const headers = ctx.req.headers
    refuseUnsupportedWriteHeaders(headers)
    if (header(ctx, 'if-match') !== undefined) throw new BlobfsError('NotSupported', 'conditional overwrite (If-Match on PUT) is not supported')
    const ifNoneMatch = header(ctx, 'if-none-match')
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw new BlobfsError('NotSupported', 'If-None-Match on PUT supports only *')
    const checksum = checksumFromHeaders(headers)
    const info = await ctx.objects.putObject(bucketName(ctx), objectKey(ctx), ctx.body.stream(singlePutSizeBytesMax), {
      ...writeMetadataFrom(headers),
      expectedMd5: contentMd5(headers),
      expectedLengthBytes: ctx.body.declaredBytes ?? undefined,
      checksum: checksum ?? undefined,
      ifNoneMatch: ifNoneMatch === undefined ? undefined : '*',
      signal: ctx.signal,
    })
    sendEmpty(ctx, 200, { etag: info.etag, ...checksumEcho(checksum, ctx.body.trailerChecksum) })
  },
}
