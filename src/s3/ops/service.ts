// ListBuckets: the caller's own buckets.
import { sendXml, type Operation } from '../context.ts'

export const listBuckets: Operation = {
  name: 'ListBuckets',
  access: 'service',
  async run(ctx) {
    const owner = ctx.principal!.owner
    const buckets = await ctx.objects.listBuckets(owner)
    sendXml(ctx, 200, 'ListAllMyBucketsResult', {
      Owner: { ID: owner, DisplayName: owner },
      Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: b.createdAt })) },
    })
  },
}
