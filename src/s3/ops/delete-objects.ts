// DeleteObjects: up to 1,000 keys in one XML document, which S3 requires to carry
// Content-MD5 or an x-amz-checksum-* (checked here: the document is small and read
// whole). Each key succeeds or fails on its own; Quiet mode reports only failures.
import { createHash } from 'node:crypto'
import { BlobfsError } from '../../errors.ts'
import { deleteObjectsKeysMax, keyLengthBytesMax, xmlBodyBytesMax } from '../../limits.ts'
import { checksumFromHeaders, checksumOf, contentMd5 } from '../checksums.ts'
import { bucketName, sendXml, type Operation } from '../context.ts'
import { s3ErrorFor } from '../errors.ts'
import { parseXml, xmlList, xmlText, type XmlObject } from '../xml.ts'

/** Deletions in flight at once for one request. */
const deletesInFlightMax = 16

export const deleteObjects: Operation = {
  name: 'DeleteObjects',
  access: 'bucket-write',
  async run(ctx) {
    const md5 = contentMd5(ctx.req.headers)
    const checksum = checksumFromHeaders(ctx.req.headers)
    const document = await ctx.body.readAll(xmlBodyBytesMax)
    if (!md5 && !checksum && !ctx.body.trailerChecksum) throw new BlobfsError('InvalidRequest', 'DeleteObjects needs Content-MD5 or an x-amz-checksum-* header')
    if (md5 && !createHash('md5').update(document).digest().equals(md5)) throw new BlobfsError('BadDigest', 'Content-MD5 does not match the body')
    if (checksum && checksumOf(checksum.algorithm, document) !== checksum.value) throw new BlobfsError('BadDigest', `x-amz-checksum-${checksum.algorithm} does not match the body`)

    const root = parseXml(document, 'Delete')
    const quiet = (xmlText(root, 'Quiet') ?? 'false').trim().toLowerCase() === 'true'
    const keys = xmlList(root, 'Object').map((o) => {
      const key = xmlText(o, 'Key')
      if (key === undefined || key === '') throw new BlobfsError('MalformedXML', 'every <Object> needs a <Key>')
      const versionId = xmlText(o, 'VersionId')
      return { key, versionId }
    })
    if (keys.length === 0) throw new BlobfsError('MalformedXML', 'a Delete document needs at least one <Object>')
    if (keys.length > deleteObjectsKeysMax) throw new BlobfsError('MalformedXML', `at most ${deleteObjectsKeysMax} keys per request`)

    const bucket = bucketName(ctx)
    const deleted: XmlObject[] = []
    const errors: XmlObject[] = []
    const results: (XmlObject & { ok: boolean })[] = new Array(keys.length)
    let next = 0
    const worker = async () => {
      while (next < keys.length) {
        const index = next++
        const { key, versionId } = keys[index]!
        try {
          if (versionId !== undefined && versionId !== 'null') throw new BlobfsError('NotSupported', 'object versions are not supported')
          if (Buffer.byteLength(key) > keyLengthBytesMax) throw new BlobfsError('KeyTooLong')
          await ctx.objects.deleteObject(bucket, key)
          results[index] = { ok: true, Key: key }
        } catch (error) {
          const spec = s3ErrorFor(error)
          if (!spec.mapped) ctx.log.error({ err: error, key }, 'internal error deleting a key')
          results[index] = { ok: false, Key: key, Code: spec.code, Message: spec.mapped ? (error as Error).message : 'We encountered an internal error.' }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(deletesInFlightMax, keys.length) }, worker))
    for (const { ok, ...entry } of results) (ok ? deleted : errors).push(entry)
    sendXml(ctx, 200, 'DeleteResult', { Deleted: quiet ? [] : deleted, Error: errors })
  },
}
