// GetBucketAcl and GetObjectAcl: read-only, derived from the bucket policy (the
// owner has FULL_CONTROL; a PUBLIC_READ bucket also grants READ to AllUsers).
// Setting ACLs is not supported: access follows the bucket policy.
import { bucketName, objectKey, sendXml, type Operation, type OperationContext } from '../context.ts'
import type { XmlObject } from '../xml.ts'

const xsi = 'http://www.w3.org/2001/XMLSchema-instance'

function policyXml(ctx: OperationContext): XmlObject {
  const bucket = ctx.bucket!
  const grants: XmlObject[] = [
    {
      Grantee: { '@_xmlns:xsi': xsi, '@_xsi:type': 'CanonicalUser', ID: bucket.owner, DisplayName: bucket.owner },
      Permission: 'FULL_CONTROL',
    },
  ]
  if (bucket.policy === 'PUBLIC_READ') {
    grants.push({ Grantee: { '@_xmlns:xsi': xsi, '@_xsi:type': 'Group', URI: 'http://acs.amazonaws.com/groups/global/AllUsers' }, Permission: 'READ' })
  }
  return { Owner: { ID: bucket.owner, DisplayName: bucket.owner }, AccessControlList: { Grant: grants } }
}

export const getBucketAcl: Operation = {
  name: 'GetBucketAcl',
  access: 'bucket-read',
  async run(ctx) {
    sendXml(ctx, 200, 'AccessControlPolicy', policyXml(ctx))
  },
}

export const getObjectAcl: Operation = {
  name: 'GetObjectAcl',
  access: 'object-read',
  async run(ctx) {
    await ctx.objects.headObject(bucketName(ctx), objectKey(ctx))
    sendXml(ctx, 200, 'AccessControlPolicy', policyXml(ctx))
  },
}

export const getObjectTagging: Operation = {
  name: 'GetObjectTagging',
  access: 'object-read',
  async run(ctx) {
    // blobfs keeps no tags (PutObjectTagging is not supported), so every object's set is empty
    await ctx.objects.headObject(bucketName(ctx), objectKey(ctx))
    sendXml(ctx, 200, 'Tagging', { TagSet: {} })
  },
}
