// Bucket names the gateway keeps for itself, so a path-style URL is never ambiguous:
// /api/v1/... is the JSON API and /metrics the Prometheus endpoint. The S3 naming
// rules themselves are the object layer's to enforce (InvalidBucketName).
import { BlobfsError } from '../errors.ts'

export const reservedBucketNames: ReadonlySet<string> = new Set(['api', 'metrics'])

export function refuseReservedBucketName(name: string): void {
  if (reservedBucketNames.has(name)) throw new BlobfsError('InvalidBucketName', `the bucket name '${name}' is reserved by the gateway`)
}
