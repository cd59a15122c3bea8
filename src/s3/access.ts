// Who may do what (DESIGN.md, "Tenants"): a bucket's owner may do everything with
// it; anyone, even anonymous, may read a PUBLIC_READ bucket (list, get, head); nobody
// else gets anything. Buckets are read through the object layer like everything else.
import { BlobfsError } from '../errors.ts'
import type { BucketInfo, ObjectLayer } from '../objects/types.ts'
import type { Access, Principal } from './context.ts'

export function mayAccess(bucket: BucketInfo, principal: Principal, access: Access): boolean {
  if (principal !== null && principal.owner === bucket.owner) return true
  return (access === 'bucket-read' || access === 'object-read') && bucket.policy === 'PUBLIC_READ'
}

/** Checks `access` to `bucketName` (null for service operations); returns the bucket. */
export async function authorize(objects: ObjectLayer, bucketName: string | null, principal: Principal, access: Access): Promise<BucketInfo | null> {
  if (access === 'none') return null
  if (access === 'service' || bucketName === null) {
    if (principal === null) throw new BlobfsError('AccessDenied', 'anonymous requests may only read public buckets')
    return null
  }
  const bucket = await objects.getBucket(bucketName)
  if (!mayAccess(bucket, principal, access)) {
    throw new BlobfsError('AccessDenied', principal === null ? 'anonymous requests may only read public buckets' : `access to bucket '${bucketName}' is denied`)
  }
  return bucket
}
