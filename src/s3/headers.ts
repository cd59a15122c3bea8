// Object metadata as HTTP headers, both ways: x-amz-meta-* and the stored standard
// headers (Content-Type, Cache-Control, ...) from a write request into WriteOptions,
// and from ObjectInfo back onto GET/HEAD responses. Headers that ask for something
// blobfs does not do (encryption, tags, object lock, ACL grants, other storage
// classes) are refused with NotImplemented rather than silently dropped.
import type { IncomingHttpHeaders } from 'node:http'
import { BlobfsError } from '../errors.ts'
import { userMetadataBytesMax } from '../limits.ts'
import type { ObjectInfo, WriteOptions } from '../objects/types.ts'

/** Standard headers S3 stores with an object and returns on GET/HEAD. */
export const storedHttpHeaders = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const

const metaPrefix = 'x-amz-meta-'

/** One header as text (repeated headers joined with ','), or undefined. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

// Header values are kept exactly as they arrived (one character per byte, as Node
// reads them) and sent back the same way, so every client gets its own bytes back
// whatever charset it used. S3 only promises US-ASCII metadata; so does blobfs.

export function userMetadataFrom(headers: IncomingHttpHeaders): Record<string, string> {
  const metadata: Record<string, string> = {}
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(metaPrefix) || value === undefined) continue
    const key = name.slice(metaPrefix.length)
    const text = Array.isArray(value) ? value.join(',') : value
    bytes += Buffer.byteLength(key, 'latin1') + Buffer.byteLength(text, 'latin1')
    metadata[key] = text
  }
  if (bytes > userMetadataBytesMax) throw new BlobfsError('MetadataTooLarge', `user metadata is ${bytes} bytes, over the ${userMetadataBytesMax}-byte limit`)
  return metadata
}

export function httpHeadersFrom(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of storedHttpHeaders) {
    let value = headers[name]
    if (typeof value !== 'string') continue
    if (name === 'content-encoding') {
      // aws-chunked is framing of this request, not an encoding of the object
      value = value
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '' && v.toLowerCase() !== 'aws-chunked')
        .join(',')
      if (value === '') continue
    }
    out[name] = value
  }
  return out
}

/** Content-Type, metadata and stored headers of a write (PutObject, CreateMultipartUpload, CopyObject REPLACE). */
export function writeMetadataFrom(headers: IncomingHttpHeaders): Pick<WriteOptions, 'contentType' | 'userMetadata' | 'httpHeaders'> {
  const contentType = headers['content-type']
  return { contentType: contentType || undefined, userMetadata: userMetadataFrom(headers), httpHeaders: httpHeadersFrom(headers) }
}

const refused: [string, string][] = [
  ['x-amz-server-side-encryption', 'server-side encryption'],
  ['x-amz-server-side-encryption-customer-algorithm', 'server-side encryption with customer keys'],
  ['x-amz-server-side-encryption-aws-kms-key-id', 'server-side encryption with KMS'],
  ['x-amz-tagging', 'object tagging'],
  ['x-amz-object-lock-mode', 'object lock'],
  ['x-amz-object-lock-retain-until-date', 'object lock'],
  ['x-amz-object-lock-legal-hold', 'object lock'],
  ['x-amz-website-redirect-location', 'website redirects'],
  ['x-amz-grant-read', 'ACL grants'],
  ['x-amz-grant-read-acp', 'ACL grants'],
  ['x-amz-grant-write', 'ACL grants'],
  ['x-amz-grant-write-acp', 'ACL grants'],
  ['x-amz-grant-full-control', 'ACL grants'],
]

/** Canned ACLs that change nothing for an object in blobfs (only the bucket owner has access). */
const harmlessObjectAcls = new Set(['private', 'bucket-owner-full-control', 'bucket-owner-read'])

/** Refuses a write whose headers ask for a feature blobfs does not implement. */
export function refuseUnsupportedWriteHeaders(headers: IncomingHttpHeaders): void {
  for (const [name, feature] of refused) {
    if (headers[name] !== undefined) throw new BlobfsError('NotSupported', `${feature} (${name}) is not supported`)
  }
  const acl = headerValue(headers, 'x-amz-acl')
  if (acl !== undefined && !harmlessObjectAcls.has(acl)) {
    throw new BlobfsError('NotSupported', `the object ACL '${acl}' is not supported: access follows the bucket policy`)
  }
  const storageClass = headerValue(headers, 'x-amz-storage-class')
  if (storageClass !== undefined && storageClass !== 'STANDARD') {
    throw new BlobfsError('NotSupported', `storage class '${storageClass}' is not supported (STANDARD only)`)
  }
}

export function httpDate(date: Date): string {
  return date.toUTCString()
}

/** The headers GET and HEAD answer with for an object. */
export function objectResponseHeaders(info: ObjectInfo): Record<string, string> {
  const headers: Record<string, string> = {
    etag: info.etag,
    'last-modified': httpDate(info.lastModified),
    'content-type': info.contentType,
    'accept-ranges': 'bytes',
  }
  for (const [name, value] of Object.entries(info.httpHeaders ?? {})) headers[name] = value
  for (const [name, value] of Object.entries(info.userMetadata)) headers[metaPrefix + name] = value
  if (info.partsCount !== null) headers['x-amz-mp-parts-count'] = String(info.partsCount)
  return headers
}
