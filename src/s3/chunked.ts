// aws-chunked bodies (Content-Encoding: aws-chunked): the framing current AWS SDKs
// use to send a checksum after the data, and older signed-streaming clients use to
// sign every chunk. A push-style state machine — bytes in, data slices out — so it
// streams (nothing is buffered beyond one framing line) and can be fed any split of
// the input. Every chunk signature is checked when its chunk ends, and the trailer
// when the body ends: the consumer never sees the end of a body that failed.
//
//   signed:    SIZE;chunk-signature=SIG\r\n DATA\r\n ... 0;chunk-signature=SIG\r\n [trailers] \r\n
//   unsigned:  SIZE\r\n DATA\r\n ... 0\r\n x-amz-checksum-crc32:VALUE\r\n \r\n
import { createHash, type Hash } from 'node:crypto'
import { BlobfsError } from '../errors.ts'
import { awsChunkLineBytesMax } from '../limits.ts'
import { emptySha256Hex, hmacHex, sha256Hex, signaturesEqual } from './sigv4.ts'

/** The signature chain of a signed streaming body, seeded by the request signature. */
export interface ChunkChain {
  signingKey: Buffer
  amzDate: string
  scope: string
  seedSignature: string
}

export interface AwsChunkedOptions {
  /** Present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk is signed. */
  chain: ChunkChain | null
  /** Trailer names announced in x-amz-trailer (lowercase); exactly these must arrive. */
  trailerNames: readonly string[]
  /** The trailer is signed (x-amz-trailer-signature), as in STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER. */
  signedTrailer: boolean
}

export function chunkStringToSign(amzDate: string, scope: string, previousSignature: string, dataSha256Hex: string): string {
  return `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previousSignature}\n${emptySha256Hex}\n${dataSha256Hex}`
}

export function trailerStringToSign(amzDate: string, scope: string, previousSignature: string, trailer: string): string {
  return `AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${previousSignature}\n${sha256Hex(trailer)}`
}

/** The trailer as it is signed: `name:value\n` per header, in order. */
export function canonicalTrailer(trailers: ReadonlyArray<readonly [string, string]>): string {
  return trailers.map(([name, value]) => `${name}:${value}\n`).join('')
}

type State = 'size' | 'data' | 'data-end' | 'trailer' | 'done'

const lf = 0x0a
const cr = 0x0d

export class AwsChunkedDecoder {
  private state: State = 'size'
  private line: Buffer[] = []
  private lineBytes = 0
  private remaining = 0
  private sawCr = false
  private chunkHash: Hash | null = null
  private chunkSignature = ''
  private previousSignature: string
  private readonly trailers: [string, string][] = []
  private trailerSignature: string | null = null
  private decoded = 0

  constructor(private readonly options: AwsChunkedOptions) {
    this.previousSignature = options.chain?.seedSignature ?? ''
    if (options.signedTrailer && !options.chain) throw new Error('a signed trailer needs a signature chain')
  }

  get decodedBytes(): number {
    return this.decoded
  }

  /** Consumes `input`; appends the data bytes it holds to `out` (slices of input, no copies). */
  push(input: Buffer, out: Buffer[]): void {
    let offset = 0
    while (offset < input.length) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const end = input.indexOf(lf, offset)
          const stop = end < 0 ? input.length : end
          this.lineBytes += stop - offset
          if (this.lineBytes > awsChunkLineBytesMax) throw malformed(`a framing line is longer than ${awsChunkLineBytesMax} bytes`)
          if (stop > offset) this.line.push(input.subarray(offset, stop))
          if (end < 0) return
          offset = end + 1
          let text = Buffer.concat(this.line).toString('latin1')
          this.line = []
          this.lineBytes = 0
          if (text.endsWith('\r')) text = text.slice(0, -1)
          if (this.state === 'size') this.sizeLine(text)
          else this.trailerLine(text)
          break
        }
        case 'data': {
          const take = Math.min(this.remaining, input.length - offset)
          const slice = input.subarray(offset, offset + take)
          this.chunkHash?.update(slice)
          out.push(slice)
          this.decoded += take
          this.remaining -= take
          offset += take
          if (this.remaining === 0) {
            this.endChunk()
            this.state = 'data-end'
            this.sawCr = false
          }
          break
        }
        case 'data-end': {
          const byte = input[offset++]
          if (byte === cr && !this.sawCr) this.sawCr = true
          else if (byte === lf) this.state = 'size'
          else throw malformed('chunk data is not followed by CRLF')
          break
        }
        case 'done':
          throw malformed('bytes after the end of the aws-chunked body')
      }
    }
  }

  /** Call at the end of the input: checks the body ended cleanly and returns the trailers. */
  finish(): Map<string, string> {
    const cleanTrailerEnd = this.state === 'trailer' && this.lineBytes === 0
    if (this.state !== 'done' && !cleanTrailerEnd) {
      throw new BlobfsError('IncompleteBody', `the aws-chunked body ended inside a ${this.state === 'data' ? 'chunk' : 'frame'} after ${this.decoded} data bytes`)
    }
    this.state = 'done'
    const names = new Set(this.options.trailerNames)
    for (const [name] of this.trailers) if (!names.has(name)) throw malformed(`trailer '${name}' was not announced in x-amz-trailer`)
    for (const name of names) if (!this.trailers.some(([n]) => n === name)) throw new BlobfsError('IncompleteBody', `the announced trailer '${name}' is missing`)
    if (this.options.signedTrailer) {
      const chain = this.options.chain!
      if (this.trailerSignature === null) throw new BlobfsError('SignatureDoesNotMatch', 'the trailer has no x-amz-trailer-signature')
      const expected = hmacHex(chain.signingKey, trailerStringToSign(chain.amzDate, chain.scope, this.previousSignature, canonicalTrailer(this.trailers)))
      if (!signaturesEqual(expected, this.trailerSignature)) throw new BlobfsError('SignatureDoesNotMatch', 'the trailer signature does not match')
    }
    return new Map(this.trailers)
  }

  private sizeLine(text: string): void {
    const semicolon = text.indexOf(';')
    const sizeText = semicolon < 0 ? text : text.slice(0, semicolon)
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw malformed(`'${text.slice(0, 80)}' is not a chunk size line`)
    const size = parseInt(sizeText, 16)
    if (this.options.chain) {
      const extension = semicolon < 0 ? '' : text.slice(semicolon + 1)
      const m = /^chunk-signature=([0-9a-f]{64})$/.exec(extension)
      if (!m) throw new BlobfsError('SignatureDoesNotMatch', 'a signed chunk has no chunk-signature')
      this.chunkSignature = m[1]!
      this.chunkHash = createHash('sha256')
    }
    if (size === 0) {
      this.endChunk()
      this.state = 'trailer'
      return
    }
    this.remaining = size
    this.state = 'data'
  }

  private endChunk(): void {
    const chain = this.options.chain
    if (!chain) return
    const expected = hmacHex(chain.signingKey, chunkStringToSign(chain.amzDate, chain.scope, this.previousSignature, this.chunkHash!.digest('hex')))
    if (!signaturesEqual(expected, this.chunkSignature)) throw new BlobfsError('SignatureDoesNotMatch', `the signature of the chunk ending at data byte ${this.decoded} does not match`)
    this.previousSignature = this.chunkSignature
    this.chunkHash = null
  }

  private trailerLine(text: string): void {
    if (text === '') {
      this.state = 'done'
      return
    }
    if (this.trailerSignature !== null) throw malformed('a trailer line follows x-amz-trailer-signature')
    const colon = text.indexOf(':')
    if (colon <= 0) throw malformed(`'${text.slice(0, 80)}' is not a trailer header`)
    const name = text.slice(0, colon).trim().toLowerCase()
    const value = text.slice(colon + 1).trim()
    if (name === 'x-amz-trailer-signature') {
      if (!this.options.signedTrailer) throw malformed('x-amz-trailer-signature in an unsigned trailer')
      this.trailerSignature = value
      return
    }
    if (this.trailers.some(([n]) => n === name)) throw malformed(`trailer '${name}' appears twice`)
    this.trailers.push([name, value])
  }
}

function malformed(message: string): BlobfsError {
  return new BlobfsError('InvalidRequest', `aws-chunked body: ${message}`)
}

// ---------------------------------------------------------------------------------
// client side (tests and benchmarks): framing a body the way SDKs do

export interface EncodeOptions {
  chain?: ChunkChain
  trailers?: [string, string][]
  signedTrailer?: boolean
}

/** Frames `chunks` (each becomes one aws-chunked chunk) and returns the wire bytes. */
export function encodeAwsChunked(chunks: readonly Buffer[], options: EncodeOptions = {}): Buffer {
  const out: Buffer[] = []
  let previous = options.chain?.seedSignature ?? ''
  const sign = (data: Buffer) => {
    const chain = options.chain!
    previous = hmacHex(chain.signingKey, chunkStringToSign(chain.amzDate, chain.scope, previous, sha256Hex(data)))
    return previous
  }
  for (const data of [...chunks.filter((c) => c.length > 0), Buffer.alloc(0)]) {
    const size = data.length.toString(16)
    out.push(Buffer.from(options.chain ? `${size};chunk-signature=${sign(data)}\r\n` : `${size}\r\n`, 'latin1'))
    if (data.length > 0) out.push(data, Buffer.from('\r\n'))
  }
  const trailers = options.trailers ?? []
  for (const [name, value] of trailers) out.push(Buffer.from(`${name}:${value}\r\n`, 'latin1'))
  if (options.signedTrailer) {
    const chain = options.chain!
    const signature = hmacHex(chain.signingKey, trailerStringToSign(chain.amzDate, chain.scope, previous, canonicalTrailer(trailers)))
    out.push(Buffer.from(`x-amz-trailer-signature:${signature}\r\n`, 'latin1'))
  }
  out.push(Buffer.from('\r\n'))
  return Buffer.concat(out)
}
