// S3's bucket naming rules (the general-purpose bucket rules AWS documents), checked
// where a bucket is created. Names used by the gateway's own endpoints are reserved,
// so a path-style URL is never ambiguous.
import { BlobfsError } from '../errors.ts'

/** path-style /api/v1/... is the JSON API and /metrics the Prometheus endpoint. */
export const reservedBucketNames: ReadonlySet<string> = new Set(['api', 'metrics'])

export function bucketNameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long'
  if (!/^[a-z0-9.-]+$/.test(name)) return 'may hold only lowercase letters, digits, dots and hyphens'
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit'
  if (name.includes('..')) return 'must not hold two adjacent dots'
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'must not look like an IP address'
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'must not begin with xn--, sthree- or amzn-s3-demo-'
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) return 'must not end with -s3alias, --ol-s3, .mrap or --x-s3'
  if (reservedBucketNames.has(name)) return 'is reserved by the gateway'
  return null
}

export function validateBucketName(name: string): void {
  const problem = bucketNameProblem(name)
  if (problem) throw new BlobfsError('InvalidBucketName', `the bucket name '${name.slice(0, 100)}' ${problem}`)
}
