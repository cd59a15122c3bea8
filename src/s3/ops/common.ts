// Pieces several operations share: the copy source header, version ids (blobfs keeps
// one version per key, so only the "null" version exists), part numbers, and the
// checksum echo S3 returns after a write.
import { BlobfsError } from '../../errors.ts'
import { multipartPartsMax } from '../../limits.ts'
import type { ClientChecksum, ObjectLayer } from '../../objects/types.ts'
import { mayAccess } from '../access.ts'
import { checksumHeaderName } from '../checksums.ts'
import { header, type OperationContext } from '../context.ts'
import { percentDecode, uriEncode } from '../sigv4.ts'

export function refuseVersionId(ctx: OperationContext): void {
  const versionId = ctx.target.query.get('versionId')
  if (versionId !== undefined && versionId !== 'null') throw new BlobfsError('NotSupported', 'object versions are not supported')
}

export interface CopySource {
  bucket: string
  key: string
}

/** x-amz-copy-source: [/]bucket/key[?versionId=null], percent-encoded. */
export function parseCopySource(ctx: OperationContext): CopySource {
  const raw = header(ctx, 'x-amz-copy-source') ?? ''
  const q = raw.indexOf('?')
  const path = percentDecode(q < 0 ? raw : raw.slice(0, q)).replace(/^\//, '')
  if (q >= 0) {
    const versionId = new URLSearchParams(raw.slice(q + 1)).get('versionId')
    if (versionId !== null && versionId !== 'null') throw new BlobfsError('NotSupported', 'copying an object version is not supported')
  }
  const slash = path.indexOf('/')
  if (slash <= 0 || slash === path.length - 1) throw new BlobfsError('InvalidArgument', `x-amz-copy-source '${raw.slice(0, 200)}' is not bucket/key`)
  return { bucket: path.slice(0, slash), key: path.slice(slash + 1) }
}

/** The source of a copy must be readable by the caller (its own bucket or a public one). */
export async function authorizeCopySource(objects: ObjectLayer, ctx: OperationContext, source: CopySource): Promise<void> {
  const bucket = await objects.getBucket(source.bucket)
  if (!mayAccess(bucket, ctx.principal, 'object-read')) throw new BlobfsError('AccessDenied', `access to the copy source bucket '${source.bucket}' is denied`)
}

export function partNumberOf(ctx: OperationContext): number {
  const text = ctx.target.query.get('partNumber') ?? ''
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(n >= 1 && n <= multipartPartsMax)) throw new BlobfsError('InvalidArgument', `partNumber must be an integer from 1 to ${multipartPartsMax}`)
  return n
}

export function uploadIdOf(ctx: OperationContext): string {
  const id = ctx.target.query.get('uploadId')
  if (!id) throw new BlobfsError('InvalidArgument', 'uploadId is required')
  return id
}

/** Headers echoing the checksums that were verified on the way in. */
export function checksumEcho(...checksums: (ClientChecksum | null | undefined)[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const c of checksums) if (c) out[checksumHeaderName(c.algorithm)] = c.value
  return out
}

export function parseMaxCount(ctx: OperationContext, name: string, max: number): number {
  const text = ctx.target.query.get(name)
  if (text === undefined || text === '') return max
  if (!/^\d{1,9}$/.test(text)) throw new BlobfsError('InvalidArgument', `${name} must be a non-negative integer`)
  return Math.min(Number(text), max)
}

export function encodingTypeOf(ctx: OperationContext): 'url' | null {
  const value = ctx.target.query.get('encoding-type')
  if (value === undefined) return null
  if (value.toLowerCase() !== 'url') throw new BlobfsError('InvalidArgument', `encoding-type must be 'url'`)
  return 'url'
}

/** How listings write keys and prefixes: as they are, or URL-encoded for encoding-type=url. */
export function listingEncoder(ctx: OperationContext): <T extends string | undefined>(value: T) => T {
  const url = encodingTypeOf(ctx) === 'url'
  return <T extends string | undefined>(value: T) => (value === undefined || !url ? value : (uriEncode(value, false) as T))
}
