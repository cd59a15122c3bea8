// ListObjectsV2 and ListObjects (V1): prefix, delimiter, max-keys, start-after or
// marker, continuation tokens, encoding-type=url. Paging is the object layer's
// seek-based listing: V2 passes its opaque token through; V1's marker is a key (or a
// common prefix, which the layer skips as a whole) to list after.
import { listPageKeysMax } from '../../limits.ts'
import type { ListedObjectInfo, ListResult } from '../../objects/types.ts'
import { bucketName, sendXml, type Operation, type OperationContext } from '../context.ts'
import type { XmlObject } from '../xml.ts'
import { encodingTypeOf, listingEncoder, parseMaxCount } from './common.ts'

function contents(result: ListResult, encode: (v: string) => string, owner: string | null): XmlObject[] {
  return result.objects.map((o: ListedObjectInfo) => ({
    Key: encode(o.key),
    LastModified: o.lastModified,
    ETag: o.etag,
    Size: o.sizeBytes,
    StorageClass: 'STANDARD',
    Owner: owner === null ? undefined : { ID: owner, DisplayName: owner },
  }))
}

async function list(ctx: OperationContext, options: { startAfter?: string; continuationToken?: string }): Promise<{ result: ListResult; maxKeys: number }> {
  const q = ctx.target.query
  const maxKeys = parseMaxCount(ctx, 'max-keys', listPageKeysMax)
  if (maxKeys === 0) return { result: { objects: [], commonPrefixes: [], isTruncated: false, nextContinuationToken: null }, maxKeys }
  const result = await ctx.objects.listObjects(bucketName(ctx), {
    prefix: q.get('prefix') || undefined,
    delimiter: q.get('delimiter') || undefined,
    maxKeys,
    ...options,
  })
  return { result, maxKeys }
}

export const listObjectsV2: Operation = {
  name: 'ListObjectsV2',
  access: 'bucket-read',
  async run(ctx) {
    const q = ctx.target.query
    const encode = listingEncoder(ctx)
    const token = q.get('continuation-token') || undefined
    const startAfter = q.get('start-after') || undefined
    const { result, maxKeys } = await list(ctx, token ? { continuationToken: token } : { startAfter })
    const owner = q.get('fetch-owner') === 'true' ? ctx.bucket!.owner : null
    sendXml(ctx, 200, 'ListBucketResult', {
      Name: bucketName(ctx),
      Prefix: encode(q.get('prefix') ?? ''),
      Delimiter: encode(q.get('delimiter') || undefined),
      MaxKeys: maxKeys,
      KeyCount: result.objects.length + result.commonPrefixes.length,
      IsTruncated: result.isTruncated,
      ContinuationToken: token,
      NextContinuationToken: result.isTruncated ? (result.nextContinuationToken ?? undefined) : undefined,
      StartAfter: encode(startAfter),
      EncodingType: encodingTypeOf(ctx) ?? undefined,
      Contents: contents(result, encode, owner),
      CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
    })
  },
}

export const listObjectsV1: Operation = {
  name: 'ListObjects',
  access: 'bucket-read',
  async run(ctx) {
    const q = ctx.target.query
    const encode = listingEncoder(ctx)
    const marker = q.get('marker') || undefined
    const { result, maxKeys } = await list(ctx, { startAfter: marker })
    // NextMarker: the last key or common prefix returned, whichever sorts last.
    const lastKey = result.objects.at(-1)?.key
    const lastPrefix = result.commonPrefixes.at(-1)
    const nextMarker =
      lastKey === undefined ? lastPrefix : lastPrefix === undefined ? lastKey : Buffer.compare(Buffer.from(lastKey), Buffer.from(lastPrefix)) > 0 ? lastKey : lastPrefix
    sendXml(ctx, 200, 'ListBucketResult', {
      Name: bucketName(ctx),
      Prefix: encode(q.get('prefix') ?? ''),
      Marker: encode(marker ?? ''),
      NextMarker: result.isTruncated ? encode(nextMarker) : undefined,
      MaxKeys: maxKeys,
      Delimiter: encode(q.get('delimiter') || undefined),
      IsTruncated: result.isTruncated,
      EncodingType: encodingTypeOf(ctx) ?? undefined,
      Contents: contents(result, encode, ctx.bucket!.owner),
      CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
    })
  },
}
