// A body stream becomes stored stripes (DESIGN.md, "Write, read, delete"): bytes
// are cut into stripes as they arrive; stripe n is encoded and sent while stripe
// n+1 is read, with at most `stripesInFlightMax` stripes held, so memory per
// request is bounded by a few stripes whatever the object size. The MD5 (etag),
// the CRC32C of the whole object and any checksum the client declared are computed
// on the way. Nothing here touches the catalog: the caller commits the result, or,
// on any failure, the chunks written so far are deleted (and what a crash leaves
// behind is unreferenced, for the GC sweep).
import assert from 'node:assert/strict'
import { createHash, randomUUID, type Hash } from 'node:crypto'
import { crc32 as zlibCrc32 } from 'node:zlib'
import { crc32c } from '../codec/checksum.ts'
import { BlobfsError, isBlobfsError } from '../errors.ts'
import type { ChunkStore } from '../cluster/chunk-store.ts'
import type { NodeCandidate } from '../cluster/placement.ts'
import { shardSizeFor } from './layout.ts'
import { writeStripe, type StripeCodec, type WrittenStripe } from './stripe-io.ts'
import type { Body, ChecksumAlgorithm, ClientChecksum } from './types.ts'

export interface UploadContext {
  store: ChunkStore
  codec: StripeCodec
  /** Healthy nodes to place on (read once per stripe, so membership changes apply). */
  candidates: () => readonly NodeCandidate[]
  /**
   * Reloads the candidates from the registry. Called once when a stripe cannot be
   * stored on enough nodes (nodes restarted on new addresses, or died since the last
   * refresh); the stripe is then written again on the fresh view.
   */
  refreshCandidates?: () => Promise<void>
  stripeSizeBytes: number
  /** Bodies of at most this many bytes are kept inline (returned, not striped). */
  inlineSizeBytesMax: number
  stripesInFlightMax: number
  putTimeoutMs: number
  sizeBytesMax: number
  signal?: AbortSignal
}

export interface UploadedStripe extends WrittenStripe {
  stripeIndex: number
  stripeId: string
  /** Offset of the stripe's first byte in this body. */
  offsetBytes: number
}

export interface UploadResult {
  sizeBytes: number
  md5: Buffer
  crc32c: number
  /** The client's declared checksum, verified, when one was given. */
  checksum: ClientChecksum | null
  /** Set when the body was small enough to keep in the catalog row. */
  inline: Buffer | null
  stripes: UploadedStripe[]
}

export interface UploadExpectations {
  md5?: Buffer
  lengthBytes?: number
  checksum?: ClientChecksum
}

export async function uploadBody(context: UploadContext, body: Body, expect: UploadExpectations = {}): Promise<UploadResult> {
  assert.ok(context.stripeSizeBytes > 0 && context.stripesInFlightMax >= 1)
  assert.ok(context.inlineSizeBytesMax < context.stripeSizeBytes)
  if (expect.lengthBytes !== undefined && expect.lengthBytes > context.sizeBytesMax) {
    throw new BlobfsError('EntityTooLarge', `${expect.lengthBytes} bytes is over the ${context.sizeBytesMax}-byte limit`)
  }
  const md5 = createHash('md5')
  // A declared CRC32C is the object's own CRC32C, computed below anyway: not twice.
  const extra = expect.checksum && expect.checksum.algorithm !== 'crc32c' ? new ChecksumAccumulator(expect.checksum.algorithm) : null
  let crc = 0
  let sizeBytes = 0
  const stripes: UploadedStripe[] = []
  const inFlight: { pending: Promise<UploadedStripe>; data: Buffer; parity: Buffer[] }[] = []
  const written: UploadedStripe[] = []
  // Stripe and parity buffers whose stripe is stored, for the next stripes: a PUT
  // allocates stripesInFlightMax sets in all, not one per stripe for the GC to find
  // (each fresh buffer costs page faults, and its churn as external memory forces
  // full garbage collections).
  const spare: Buffer[] = []
  const spareParity: Buffer[][] = []
  const parityShardBytes = shardSizeFor(context.stripeSizeBytes, context.codec.dataShards)
  let failed: unknown

  let stripedBytes = 0
  let buffer: Buffer = Buffer.allocUnsafe(Math.min(context.stripeSizeBytes, Math.max(expect.lengthBytes ?? 0, 64 * 1024)))
  let filled = 0

  const launch = (data: Buffer) => {
    const stripeIndex = stripes.length + inFlight.length
    const offsetBytes = stripedBytes
    stripedBytes += data.length
    const stripeId = randomUUID()
    const parity = data.length === context.stripeSizeBytes ? (spareParity.pop() ?? Array.from({ length: context.codec.parityShards }, () => Buffer.allocUnsafe(parityShardBytes))) : []
    // A retry encodes the same parity into the same buffers: bytes a late reader of the first try sees do not change.
    const attempt = () =>
      writeStripe(
        {
          store: context.store,
          codec: context.codec,
          candidates: context.candidates(),
          stripeKey: stripeId,
          putTimeoutMs: context.putTimeoutMs,
          signal: context.signal,
          parityBuffers: parity,
        },
        data,
      )
    const pending = attempt()
      .catch(async (error: unknown) => {
        // A failed stripe deleted what it stored and left `data` untouched: try once more on a fresh view.
        if (!isBlobfsError(error, 'NotEnoughNodes') || !context.refreshCandidates || context.signal?.aborted) throw error
        await context.refreshCandidates()
        return attempt()
      })
      .then((stripe) => {
      const uploaded = { ...stripe, stripeIndex, stripeId, offsetBytes }
      written.push(uploaded)
      return uploaded
    })
    pending.catch((error) => {
      failed ??= error
    })
    inFlight.push({ pending, data, parity })
  }
  // The chunk store keeps no reference to a chunk once its put has settled (ChunkStore.put).
  const settleOldest = async (): Promise<UploadedStripe> => {
    const { pending, data, parity } = inFlight.shift()!
    const stripe = await pending
    if (data.length === context.stripeSizeBytes) spare.push(data)
    if (parity.length > 0) spareParity.push(parity)
    return stripe
  }

  try {
    for await (const piece of body as AsyncIterable<Buffer | Uint8Array | string>) {
      if (failed) throw failed
      const bytes = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
      md5.update(bytes)
      crc = crc32c(bytes, crc)
      extra?.update(bytes)
      sizeBytes += bytes.length
      if (sizeBytes > context.sizeBytesMax || (expect.lengthBytes !== undefined && sizeBytes > expect.lengthBytes)) {
        throw new BlobfsError(sizeBytes > context.sizeBytesMax ? 'EntityTooLarge' : 'InvalidArgument', `body is longer than ${expect.lengthBytes ?? context.sizeBytesMax} bytes`)
      }
      let offset = 0
      while (offset < bytes.length) {
        if (filled === buffer.length && buffer.length < context.stripeSizeBytes) {
          // Grow geometrically up to one stripe: small bodies never allocate 16 MiB.
          const grown = Buffer.allocUnsafe(Math.min(context.stripeSizeBytes, buffer.length * 2))
          buffer.copy(grown, 0, 0, filled)
          buffer = grown
        }
        const take = Math.min(bytes.length - offset, buffer.length - filled)
        bytes.copy(buffer, filled, offset, offset + take)
        filled += take
        offset += take
        if (filled === context.stripeSizeBytes) {
          launch(buffer)
          while (inFlight.length >= context.stripesInFlightMax) stripes.push(await settleOldest())
          buffer = spare.pop() ?? Buffer.allocUnsafe(context.stripeSizeBytes)
          filled = 0
        }
      }
    }
    if (context.signal?.aborted) throw new BlobfsError('IncompleteBody', 'the upload was aborted', { cause: context.signal.reason })
    if (expect.lengthBytes !== undefined && sizeBytes !== expect.lengthBytes) {
      throw new BlobfsError('IncompleteBody', `body ended after ${sizeBytes} of ${expect.lengthBytes} bytes`)
    }
    const digest = md5.digest()
    if (expect.md5 && !digest.equals(expect.md5)) throw new BlobfsError('BadDigest', 'Content-MD5 does not match the body')
    const checksum = !expect.checksum ? null : extra ? extra.verify(expect.checksum) : verifyCrc32c(crc, expect.checksum)

    if (stripes.length + inFlight.length === 0 && sizeBytes <= context.inlineSizeBytesMax) {
      return { sizeBytes, md5: digest, crc32c: crc >>> 0, checksum, inline: Buffer.from(buffer.subarray(0, filled)), stripes: [] }
    }
    if (filled > 0) launch(buffer.subarray(0, filled))
    while (inFlight.length > 0) stripes.push(await settleOldest())
    return { sizeBytes, md5: digest, crc32c: crc >>> 0, checksum, inline: null, stripes }
  } catch (error) {
    await Promise.allSettled(inFlight.map((f) => f.pending))
    await discardStripes(context.store, written)
    if (error instanceof BlobfsError) throw error
    throw new BlobfsError('IncompleteBody', `reading the body failed: ${(error as Error)?.message ?? error}`, { cause: error })
  }
}

/** Deletes the chunks of stripes that will not be committed (best effort; GC covers the rest). */
export async function discardStripes(store: ChunkStore, stripes: readonly WrittenStripe[]): Promise<void> {
  await Promise.allSettled(stripes.flatMap((s) => s.chunks.map((c) => store.delete(c.nodeId, c.chunkId))))
}

/** A CRC32C as S3 writes it: 4 big-endian bytes, base64. */
function crcBase64(crc: number): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc >>> 0)
  return out.toString('base64')
}

function verifyCrc32c(crc: number, expected: ClientChecksum): ClientChecksum {
  const actual = crcBase64(crc)
  if (actual !== expected.value) {
    throw new BlobfsError('BadDigest', `x-amz-checksum-crc32c does not match the body (expected ${expected.value}, computed ${actual})`)
  }
  return { algorithm: 'crc32c', value: actual }
}

class ChecksumAccumulator {
  private hash: Hash | null = null
  private crc = 0

  constructor(private readonly algorithm: ChecksumAlgorithm) {
    if (algorithm === 'sha1' || algorithm === 'sha256') this.hash = createHash(algorithm)
  }

  update(bytes: Buffer): void {
    if (this.hash) this.hash.update(bytes)
    else if (this.algorithm === 'crc32c') this.crc = crc32c(bytes, this.crc)
    else this.crc = zlibCrc32(bytes, this.crc)
  }

  verify(expected: ClientChecksum): ClientChecksum {
    const actual = this.hash ? this.hash.digest('base64') : crcBase64(this.crc)
    if (actual !== expected.value) {
      throw new BlobfsError('BadDigest', `x-amz-checksum-${this.algorithm} does not match the body (expected ${expected.value}, computed ${actual})`)
    }
    return { algorithm: this.algorithm, value: actual }
  }
}
