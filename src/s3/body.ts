// The request body as operations see it: the payload bytes, decoded and verified on
// the way through, streamed (never held whole). Whatever the client promised about
// the body — x-amz-content-sha256, chunk signatures, a trailing checksum, a declared
// length — is checked before the stream reports its end, so a consumer that commits
// only at the end (the object layer does) never commits a body that failed a check.
// A body that stalls for `idleTimeoutMs` fails with RequestTimeout.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BlobfsError } from '../errors.ts'
import type { ClientChecksum } from '../objects/types.ts'
import { AwsChunkedDecoder, type AwsChunkedOptions } from './chunked.ts'
import { algorithmOfHeader, Checksummer, validateChecksumValue } from './checksums.ts'
import { headerValue } from './headers.ts'
import { payloadModes, type VerifiedSignature } from './sigv4.ts'

interface BodyPlan {
  /** aws-chunked framing to decode, or null for a plain body. */
  chunked: AwsChunkedOptions | null
  /** Hex SHA-256 the raw body must hash to (a signed payload), or null. */
  sha256Hex: string | null
  /** Payload bytes the client declared (decoded length for aws-chunked), or null if unknown. */
  declaredBytes: number | null
  /** Wire bytes the client declared (Content-Length), or null. */
  wireBytes: number | null
}

function parseLength(value: string | undefined, name: string): number | null {
  if (value === undefined) return null
  if (!/^\d{1,16}$/.test(value)) throw new BlobfsError('InvalidArgument', `${name} '${value}' is not a length`)
  return Number(value)
}

function planBody(req: IncomingMessage, auth: VerifiedSignature | null): BodyPlan {
  const wireBytes = parseLength(req.headers['content-length'], 'Content-Length')
  const payload = auth?.payloadHash ?? headerValue(req.headers, 'x-amz-content-sha256') ?? payloadModes.unsigned
  const encodings = (req.headers['content-encoding'] ?? '').split(',').map((e) => e.trim().toLowerCase())
  const trailerNames = (headerValue(req.headers, 'x-amz-trailer') ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '')
  for (const name of trailerNames) algorithmOfHeader(name)
  if (trailerNames.length > 1) throw new BlobfsError('InvalidRequest', 'only one trailing checksum is supported')
  const decoded = () => parseLength(headerValue(req.headers, 'x-amz-decoded-content-length'), 'x-amz-decoded-content-length')

  if (payload.startsWith('STREAMING-')) {
    const signed = payload === payloadModes.streamingSigned || payload === payloadModes.streamingSignedTrailer
    if (!signed && payload !== payloadModes.streamingUnsignedTrailer) throw new BlobfsError('NotSupported', `x-amz-content-sha256 '${payload}' is not supported`)
    if (signed && (!auth || auth.presigned)) throw new BlobfsError('InvalidRequest', `${payload} needs a signed Authorization header`)
    const withTrailer = payload !== payloadModes.streamingSigned
    if (withTrailer && trailerNames.length === 0) throw new BlobfsError('InvalidRequest', `${payload} needs an x-amz-trailer header`)
    if (!withTrailer && trailerNames.length > 0) throw new BlobfsError('InvalidRequest', `x-amz-trailer needs a -TRAILER payload mode, not ${payload}`)
    return {
      chunked: {
        chain: signed ? { signingKey: auth!.signingKey, amzDate: auth!.amzDate, scope: auth!.scope, seedSignature: auth!.signature } : null,
        trailerNames,
        signedTrailer: signed && withTrailer,
      },
      sha256Hex: null,
      declaredBytes: decoded(),
      wireBytes,
    }
  }
  const sha256Hex = /^[0-9a-f]{64}$/.test(payload) ? payload : null
  if (!sha256Hex && payload !== payloadModes.unsigned) throw new BlobfsError('InvalidArgument', `x-amz-content-sha256 '${payload}' is neither a SHA-256 nor a known payload mode`)
  if (encodings.includes('aws-chunked')) {
    // aws-chunked framing without a streaming mode: decode it, verify the trailer if any.
    return { chunked: { chain: null, trailerNames, signedTrailer: false }, sha256Hex, declaredBytes: decoded(), wireBytes }
  }
  if (trailerNames.length > 0) throw new BlobfsError('InvalidRequest', 'x-amz-trailer needs an aws-chunked body')
  return { chunked: null, sha256Hex, declaredBytes: wireBytes, wireBytes }
}

export interface RequestBodyOptions {
  idleTimeoutMs: number
  /** The client sent Expect: 100-continue and has not been told to go on yet. */
  expectContinue: boolean
}

export class RequestBody {
  private readonly plan: BodyPlan
  private started = false
  private finished = false
  private checksum: ClientChecksum | null = null
  /** Bytes read off the socket (framing included). */
  rawBytes = 0

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    auth: VerifiedSignature | null,
    private readonly options: RequestBodyOptions,
  ) {
    this.plan = planBody(req, auth)
  }

  /** Payload length the client declared, or null when it did not say. */
  get declaredBytes(): number | null {
    return this.plan.declaredBytes
  }

  /** The verified trailing checksum, once the body has been read to its end. */
  get trailerChecksum(): ClientChecksum | null {
    return this.checksum
  }

  /** Whether an error answered now leaves unread bytes the connection must not reuse. */
  get unread(): { bytes: number | null } | null {
    if (this.finished || this.req.complete) return null
    if (!this.started && this.options.expectContinue) return { bytes: null }
    if (this.plan.wireBytes === 0) return null
    return { bytes: this.plan.wireBytes === null ? null : this.plan.wireBytes - this.rawBytes }
  }

  /**
   * The payload, decoded and verified. Throws EntityTooLarge past `maxBytes`,
   * IncompleteBody when it ends short, and the verification errors (BadDigest,
   * SignatureDoesNotMatch, XAmzContentSHA256Mismatch) before it ends. Read once.
   */
  async *stream(maxBytes: number): AsyncGenerator<Buffer> {
    assert.ok(!this.started, 'a request body is read once')
    this.started = true
    const plan = this.plan
    if (plan.declaredBytes !== null && plan.declaredBytes > maxBytes) {
      throw new BlobfsError('EntityTooLarge', `the body of ${plan.declaredBytes} bytes is over the ${maxBytes}-byte limit`)
    }
    if (this.options.expectContinue) this.res.writeContinue()
    const decoder = plan.chunked ? new AwsChunkedDecoder(plan.chunked) : null
    const trailerName = plan.chunked?.trailerNames[0]
    const trailerSummer = trailerName ? new Checksummer(algorithmOfHeader(trailerName)) : null
    const payloadHash = plan.sha256Hex ? createHash('sha256') : null
    const pieces: Buffer[] = []
    let payloadBytes = 0
    const count = (piece: Buffer) => {
      payloadBytes += piece.length
      if (payloadBytes > maxBytes) throw new BlobfsError('EntityTooLarge', `the body is over the ${maxBytes}-byte limit`)
      if (plan.declaredBytes !== null && payloadBytes > plan.declaredBytes) {
        throw new BlobfsError('InvalidRequest', `the body is longer than the declared ${plan.declaredBytes} bytes`)
      }
      trailerSummer?.update(piece)
    }
    for await (const raw of this.rawChunks()) {
      payloadHash?.update(raw)
      if (!decoder) {
        count(raw)
        yield raw
        continue
      }
      pieces.length = 0
      decoder.push(raw, pieces)
      for (const piece of pieces) {
        count(piece)
        yield piece
      }
    }
    const trailers = decoder?.finish()
    if (plan.declaredBytes !== null && payloadBytes !== plan.declaredBytes) {
      throw new BlobfsError('IncompleteBody', `the body ended after ${payloadBytes} of ${plan.declaredBytes} bytes`)
    }
    if (payloadHash && payloadHash.digest('hex') !== plan.sha256Hex) {
      throw new BlobfsError('PayloadHashMismatch', 'the body does not hash to the x-amz-content-sha256 it was signed with')
    }
    if (trailerSummer && trailerName) {
      const claimed = validateChecksumValue(trailerSummer.algorithm, trailers!.get(trailerName)!)
      const actual = trailerSummer.digestBase64()
      if (actual !== claimed.value) throw new BlobfsError('BadDigest', `${trailerName} does not match the body (sent ${claimed.value}, computed ${actual})`)
      this.checksum = claimed
    }
    this.finished = true
  }

  /** The whole (small) body: XML and JSON documents. */
  async readAll(maxBytes: number): Promise<Buffer> {
    const parts: Buffer[] = []
    for await (const part of this.stream(maxBytes)) parts.push(part)
    return Buffer.concat(parts)
  }

  /**
   * Socket chunks, failing with RequestTimeout when none comes for idleTimeoutMs.
   * The request stream is never destroyed from here, so an error can still be
   * answered on the connection.
   */
  private async *rawChunks(): AsyncGenerator<Buffer> {
    const iterator = this.req[Symbol.asyncIterator]() as AsyncIterator<Buffer>
    const idleMs = this.options.idleTimeoutMs
    for (;;) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BlobfsError('RequestTimeout', `no body bytes for ${idleMs} ms`)), idleMs)
      })
      const pending = iterator.next()
      pending.catch(() => {}) // when the timeout wins, a later failure of this read is not news
      let next: IteratorResult<Buffer>
      try {
        next = await Promise.race([pending, timeout])
      } catch (error) {
        if (error instanceof BlobfsError) throw error
        throw new BlobfsError('IncompleteBody', `the client went away after ${this.rawBytes} body bytes`, { cause: error })
      } finally {
        clearTimeout(timer)
      }
      if (next.done) return
      this.rawBytes += next.value.length
      yield next.value
    }
  }
}
