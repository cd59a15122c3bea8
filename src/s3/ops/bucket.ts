// The small bucket operations: DeleteBucket, HeadBucket, GetBucketLocation and
// GetBucketVersioning (blobfs never versions, so the answer is "never enabled",
// which is what S3 says of a bucket that was never versioned).
import { bucketName, sendEmpty, sendXml, type Operation } from '../context.ts'

export const deleteBucket: Operation = {
  name: 'DeleteBucket',
  access: 'bucket-write',
  async run(ctx) {
    await ctx.objects.deleteBucket(bucketName(ctx))
    sendEmpty(ctx, 204)
  },
}

export const headBucket: Operation = {
  name: 'HeadBucket',
  access: 'bucket-read',
  async run(ctx) {
    sendEmpty(ctx, 200, { 'x-amz-bucket-region': ctx.config.region })
  },
}

export const getBucketLocation: Operation = {
  name: 'GetBucketLocation',
  access: 'bucket-read',
  async run(ctx) {
    // S3 answers an empty constraint for us-east-1
    sendXml(ctx, 200, 'LocationConstraint', { '#text': ctx.config.region === 'us-east-1' ? '' : ctx.config.region })
  },
}

export const getBucketVersioning: Operation = {
  name: 'GetBucketVersioning',
  access: 'bucket-read',
  async run(ctx) {
    sendXml(ctx, 200, 'VersioningConfiguration', {})
  },
}
