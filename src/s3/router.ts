// Which resource a request names and which operation it asks for. S3 addresses a
// bucket in the path (/bucket/key) or in the host (bucket.DOMAIN/key); the method and
// the query's sub-resource (?uploads, ?acl, ...) pick the operation. Every
// sub-resource S3 defines is named here, so one we do not implement answers
// NotImplemented under its own name instead of falling through to a wrong success.
import { BlobfsError } from '../errors.ts'
import { parseQuery, percentDecode } from './sigv4.ts'

export interface Target {
  style: 'path' | 'virtual'
  bucket: string | null
  /** null for service and bucket requests. */
  key: string | null
  rawPath: string
  rawQuery: string
  /** Decoded query; the first value of each name. */
  query: ReadonlyMap<string, string>
}

export type Endpoint = { kind: 's3'; target: Target } | { kind: 'api'; target: Target } | { kind: 'metrics' }

export const apiPrefix = '/api/v1/buckets/'

function hostname(host: string | undefined): string {
  if (!host) return ''
  const h = host.toLowerCase()
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1)
  const colon = h.lastIndexOf(':')
  return colon < 0 ? h : h.slice(0, colon)
}

/** Splits the request URL into endpoint and target. */
export function resolveEndpoint(method: string, url: string, host: string | undefined, domain: string | null, metricsPath: string | null): Endpoint {
  const q = url.indexOf('?')
  const rawPath = q < 0 ? url : url.slice(0, q)
  const rawQuery = q < 0 ? '' : url.slice(q + 1)
  if (!rawPath.startsWith('/')) throw new BlobfsError('InvalidArgument', 'the request path must start with /')
  const query = new Map<string, string>()
  for (const [name, value] of parseQuery(rawQuery)) if (!query.has(name)) query.set(name, value)

  const name = hostname(host)
  if (domain && name.endsWith('.' + domain)) {
    const bucket = name.slice(0, -(domain.length + 1))
    const key = percentDecode(rawPath.slice(1))
    return { kind: 's3', target: { style: 'virtual', bucket, key: key === '' ? null : key, rawPath, rawQuery, query } }
  }
  if (metricsPath && method === 'GET' && rawPath === metricsPath && rawQuery === '') return { kind: 'metrics' }
  if (rawPath.startsWith(apiPrefix)) {
    // /api/v1/buckets/{bucket}/objects/{key}
    const rest = rawPath.slice(apiPrefix.length)
    const slash = rest.indexOf('/')
    const bucket = percentDecode(slash < 0 ? rest : rest.slice(0, slash))
    const tail = slash < 0 ? '' : rest.slice(slash)
    if (!tail.startsWith('/objects/') || tail.length === '/objects/'.length) {
      throw new BlobfsError('InvalidRequest', 'the JSON API serves /api/v1/buckets/{bucket}/objects/{key}')
    }
    const key = percentDecode(tail.slice('/objects/'.length))
    return { kind: 'api', target: { style: 'path', bucket, key, rawPath, rawQuery, query } }
  }
  const slash = rawPath.indexOf('/', 1)
  const bucket = percentDecode(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash))
  const key = slash < 0 ? '' : percentDecode(rawPath.slice(slash + 1))
  return { kind: 's3', target: { style: 'path', bucket: bucket === '' ? null : bucket, key: key === '' ? null : key, rawPath, rawQuery, query } }
}

/** Bucket sub-resources S3 defines, by the name their operations carry. */
const bucketSubresources: Record<string, string> = {
  accelerate: 'BucketAccelerateConfiguration',
  acl: 'BucketAcl',
  analytics: 'BucketAnalyticsConfiguration',
  cors: 'BucketCors',
  encryption: 'BucketEncryption',
  'intelligent-tiering': 'BucketIntelligentTieringConfiguration',
  inventory: 'BucketInventoryConfiguration',
  lifecycle: 'BucketLifecycleConfiguration',
  location: 'BucketLocation',
  logging: 'BucketLogging',
  metadataConfiguration: 'BucketMetadataConfiguration',
  metadataTable: 'BucketMetadataTableConfiguration',
  metrics: 'BucketMetricsConfiguration',
  notification: 'BucketNotificationConfiguration',
  'object-lock': 'ObjectLockConfiguration',
  ownershipControls: 'BucketOwnershipControls',
  policy: 'BucketPolicy',
  policyStatus: 'BucketPolicyStatus',
  publicAccessBlock: 'PublicAccessBlock',
  replication: 'BucketReplication',
  requestPayment: 'BucketRequestPayment',
  session: 'Session',
  tagging: 'BucketTagging',
  versioning: 'BucketVersioning',
  versions: 'ObjectVersions',
  website: 'BucketWebsite',
  uploads: 'MultipartUploads',
  delete: 'Objects',
}

const objectSubresources: Record<string, string> = {
  acl: 'ObjectAcl',
  attributes: 'ObjectAttributes',
  'legal-hold': 'ObjectLegalHold',
  renameObject: 'RenameObject',
  restore: 'RestoreObject',
  retention: 'ObjectRetention',
  select: 'SelectObjectContent',
  tagging: 'ObjectTagging',
  torrent: 'ObjectTorrent',
  uploads: 'MultipartUpload',
  uploadId: 'Upload',
}

const verbs: Record<string, string> = { GET: 'Get', HEAD: 'Head', PUT: 'Put', DELETE: 'Delete', POST: 'Post' }

function subresource(query: ReadonlyMap<string, string>, table: Record<string, string>): string | null {
  for (const name of query.keys()) if (Object.hasOwn(table, name)) return name
  return null
}

/**
 * The S3 operation name for a request. Names of operations blobfs does not serve
 * are still precise (GetBucketCors, PutObjectRetention, ...): they answer
 * NotImplemented and are counted under that name.
 */
export function operationName(method: string, target: Target, hasCopySource: boolean): string {
  const verb = verbs[method]
  if (!verb) throw new BlobfsError('MethodNotAllowed', `${method} is not an S3 method`)
  if (target.bucket === null) {
    if (method === 'GET') return 'ListBuckets'
    throw new BlobfsError('MethodNotAllowed', `${method} / is not allowed`)
  }
  const q = target.query
  if (target.key === null) {
    const sub = subresource(q, bucketSubresources)
    switch (`${method} ${sub ?? ''}`) {
      case 'GET ':
        return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects'
      case 'HEAD ':
        return 'HeadBucket'
      case 'PUT ':
        return 'CreateBucket'
      case 'DELETE ':
        return 'DeleteBucket'
      case 'POST ':
        return 'PostObject'
      case 'GET uploads':
        return 'ListMultipartUploads'
      case 'GET versions':
        return 'ListObjectVersions'
      case 'POST delete':
        return 'DeleteObjects'
      case 'GET session':
        return 'CreateSession'
    }
    return `${verb}${bucketSubresources[sub!]}`
  }
  const sub = subresource(q, objectSubresources)
  if (method === 'PUT' && q.has('partNumber') && q.has('uploadId')) return hasCopySource ? 'UploadPartCopy' : 'UploadPart'
  switch (`${method} ${sub ?? ''}`) {
    case 'GET ':
      return 'GetObject'
    case 'HEAD ':
      return 'HeadObject'
    case 'PUT ':
      return hasCopySource ? 'CopyObject' : 'PutObject'
    case 'DELETE ':
      return 'DeleteObject'
    case 'POST uploads':
      return 'CreateMultipartUpload'
    case 'POST uploadId':
      return 'CompleteMultipartUpload'
    case 'GET uploadId':
      return 'ListParts'
    case 'DELETE uploadId':
      return 'AbortMultipartUpload'
    case 'POST restore':
      return 'RestoreObject'
    case 'POST select':
      return 'SelectObjectContent'
    case 'PUT renameObject':
      return 'RenameObject'
    case 'POST ':
      throw new BlobfsError('MethodNotAllowed', 'POST on an object needs ?uploads or ?uploadId')
  }
  return `${verb}${objectSubresources[sub!]}`
}
