// DeleteObject: deleting a key that does not exist succeeds, as in S3.
import { bucketName, objectKey, sendEmpty, type Operation } from '../context.ts'
import { refuseVersionId } from './common.ts'

export const deleteObject: Operation = {
  name: 'DeleteObject',
  access: 'object-write',
  async run(ctx) {
    refuseVersionId(ctx)
    await ctx.objects.deleteObject(bucketName(ctx), objectKey(ctx))
    sendEmpty(ctx, 204)
  },
}
