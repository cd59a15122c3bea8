// The operations the S3 port serves, by name. A name the router produces that is not
// in this table (GetBucketCors, PutObjectTagging, ...) answers NotImplemented: never
// a success for something blobfs did not do.
import { BlobfsError } from '../../errors.ts'
import type { Operation } from '../context.ts'
import { getBucketAcl, getObjectAcl, getObjectTagging } from './acl.ts'
import { deleteBucket, getBucketLocation, getBucketVersioning, headBucket } from './bucket.ts'
import { copyObject } from './copy-object.ts'
import { createBucket } from './create-bucket.ts'
import { deleteObject } from './delete-object.ts'
import { deleteObjects } from './delete-objects.ts'
import { getObject, headObject } from './get-object.ts'
import { listObjectsV1, listObjectsV2 } from './list-objects.ts'
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
  uploadPartCopy,
} from './multipart.ts'
import { putObject } from './put-object.ts'
import { listBuckets } from './service.ts'

const supported: readonly Operation[] = [
  listBuckets,
  createBucket,
  deleteBucket,
  headBucket,
  getBucketLocation,
  getBucketVersioning,
  getBucketAcl,
  getObjectAcl,
  getObjectTagging,
  putObject,
  getObject,
  headObject,
  deleteObject,
  deleteObjects,
  copyObject,
  listObjectsV1,
  listObjectsV2,
  createMultipartUpload,
  uploadPart,
  uploadPartCopy,
  completeMultipartUpload,
  abortMultipartUpload,
  listParts,
  listMultipartUploads,
]

export const operations: ReadonlyMap<string, Operation> = new Map(supported.map((op) => [op.name, op]))

const notImplemented = new Map<string, Operation>()

export function s3Operation(name: string): Operation {
  const op = operations.get(name)
  if (op) return op
  let stub = notImplemented.get(name)
  if (!stub) {
    stub = {
      name,
      access: 'none',
      async run() {
        throw new BlobfsError('NotSupported', `${name} is not implemented by blobfs`)
      },
    }
    notImplemented.set(name, stub)
  }
  return stub
}
