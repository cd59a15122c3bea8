// CreateBucket: the optional CreateBucketConfiguration must be well-formed, and the
// canned ACL picks the policy (private -> PRIVATE, public-read -> PUBLIC_READ; others
// are not supported). The object layer checks the name against S3's rules.
import { BlobfsError, isBlobfsError } from '../../errors.ts'
import { xmlBodyBytesMax } from '../../limits.ts'
import type { BucketPolicy } from '../../objects/types.ts'
import { refuseReservedBucketName } from '../bucket-names.ts'
import { bucketName, header, sendEmpty, type Operation } from '../context.ts'
import { parseXml, xmlText } from '../xml.ts'

const policies: Record<string, BucketPolicy> = { private: 'PRIVATE', 'public-read': 'PUBLIC_READ' }

export const createBucket: Operation = {
  name: 'CreateBucket',
  access: 'service',
  async run(ctx) {
    const name = bucketName(ctx)
    refuseReservedBucketName(name)
    const acl = header(ctx, 'x-amz-acl') ?? 'private'
    const policy = policies[acl]
    if (!policy) throw new BlobfsError('NotSupported', `the bucket ACL '${acl}' is not supported (private or public-read)`)
    if (header(ctx, 'x-amz-bucket-object-lock-enabled') === 'true') throw new BlobfsError('NotSupported', 'object lock is not supported')
    for (const grant of ['x-amz-grant-full-control', 'x-amz-grant-read', 'x-amz-grant-read-acp', 'x-amz-grant-write', 'x-amz-grant-write-acp']) {
      if (header(ctx, grant) !== undefined) throw new BlobfsError('NotSupported', `ACL grants (${grant}) are not supported`)
    }
    const document = await ctx.body.readAll(xmlBodyBytesMax)
    if (document.length > 0) xmlText(parseXml(document, 'CreateBucketConfiguration'), 'LocationConstraint')
    const owner = ctx.principal!.owner
    try {
      await ctx.objects.createBucket(name, owner, policy)
    } catch (error) {
      if (isBlobfsError(error, 'BucketAlreadyExists')) {
        const existing = await ctx.objects.getBucket(name)
        if (existing.owner === owner) throw new BlobfsError('BucketAlreadyOwnedByYou', `you already own the bucket '${name}'`)
      }
      throw error
    }
    sendEmpty(ctx, 200, { location: '/' + name })
  },
}
