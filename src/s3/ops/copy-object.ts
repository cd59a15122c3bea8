// CopyObject: a server-side copy (the object layer decides how: blobfs can copy
// without moving bytes). x-amz-metadata-directive COPY keeps the source's metadata,
// REPLACE takes the request's; copying an object onto itself must REPLACE. The
// x-amz-copy-source-if-* conditions are checked on the source version that is then
// copied (ifSourceObjectId), so a concurrent overwrite cannot slip in between.
import { BlobfsError } from '../../errors.ts'
import { bucketName, header, objectKey, sendXml, type Operation } from '../context.ts'
import { readPreconditions, requireCopySourceConditions } from '../conditions.ts'
import { refuseUnsupportedWriteHeaders, writeMetadataFrom } from '../headers.ts'
import { authorizeCopySource, parseCopySource, refuseVersionId } from './common.ts'

export const copyObject: Operation = {
  name: 'CopyObject',
  access: 'object-write',
  async run(ctx) {
    refuseVersionId(ctx)
    refuseUnsupportedWriteHeaders(ctx.req.headers)
    const taggingDirective = header(ctx, 'x-amz-tagging-directive')
    if (taggingDirective !== undefined && taggingDirective !== 'COPY') throw new BlobfsError('NotSupported', 'object tagging is not supported')
    const source = parseCopySource(ctx)
    await authorizeCopySource(ctx.objects, ctx, source)
    const target = { bucket: bucketName(ctx), key: objectKey(ctx) }
    const directive = (header(ctx, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase()
    if (directive !== 'COPY' && directive !== 'REPLACE') throw new BlobfsError('InvalidArgument', `x-amz-metadata-directive must be COPY or REPLACE, not '${directive}'`)
    if (directive === 'COPY' && source.bucket === target.bucket && source.key === target.key) {
      throw new BlobfsError(
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      )
    }
    const pre = readPreconditions(ctx.req.headers, 'x-amz-copy-source-')
    let ifSourceObjectId: string | undefined
    if (Object.values(pre).some((v) => v !== undefined)) {
      const info = await ctx.objects.headObject(source.bucket, source.key)
      requireCopySourceConditions(pre, info, 'the copy source')
      ifSourceObjectId = info.objectId
    }
    const info = await ctx.objects.copyObject(source, target, {
      replaceMetadata: directive === 'REPLACE' ? writeMetadataFrom(ctx.req.headers) : undefined,
      ifSourceObjectId,
    })
    sendXml(ctx, 200, 'CopyObjectResult', { ETag: info.etag, LastModified: info.lastModified })
  },
}
