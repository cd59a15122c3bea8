// AWS Signature Version 4, server side: the canonical request, the signing key and
// the two ways a request carries a signature (the Authorization header and the
// presigned query). Pure functions over the request as it arrived on the wire, so
// AWS's published test vectors can be checked without a socket. The aws-chunked
// body signatures that continue the chain live in chunked.ts.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { BlobfsError } from '../errors.ts'
import { clockSkewMsMax, presignedExpirySecondsMax, signingKeyCacheEntriesMax } from '../limits.ts'
import type { AccessKey } from '../objects/types.ts'

export const algorithm = 'AWS4-HMAC-SHA256'
export const emptySha256Hex = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

/** x-amz-content-sha256 values that are not a hex digest of the body. */
export const payloadModes = {
  unsigned: 'UNSIGNED-PAYLOAD',
  streamingSigned: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  streamingSignedTrailer: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  streamingUnsignedTrailer: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
} as const

export interface SignableRequest {
  method: string
  /** The path exactly as received, still percent-encoded. */
  rawPath: string
  /** The query exactly as received, without '?'. */
  rawQuery: string
  /** Header name/value pairs in arrival order (IncomingMessage.rawHeaders). */
  headers: ReadonlyArray<readonly [string, string]>
}

export interface Credential {
  accessKeyId: string
  date: string
  region: string
  service: string
}

export interface VerifiedSignature {
  accessKey: AccessKey
  /** The request's signature: the seed of an aws-chunked signature chain. */
  signature: string
  signingKey: Buffer
  amzDate: string
  scope: string
  /** x-amz-content-sha256 (or UNSIGNED-PAYLOAD for a presigned URL without it). */
  payloadHash: string
  presigned: boolean
}

export type AccessKeyLookup = (accessKeyId: string) => Promise<AccessKey | null>

// ---------------------------------------------------------------------------------
// canonical forms

const unreserved = /[!'()*]/g

/** AWS's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX (and '/' kept when asked). */
export function uriEncode(input: string, encodeSlash = true): string {
  const encoded = encodeURIComponent(input).replace(unreserved, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return encodeSlash ? encoded : encoded.replace(/%2F/g, '/')
}

/** Percent-decoding that refuses malformed escapes and invalid UTF-8 (InvalidArgument). */
export function percentDecode(input: string, plusIsSpace = false): string {
  const text = plusIsSpace ? input.replace(/\+/g, ' ') : input
  if (!text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    throw new BlobfsError('InvalidArgument', `malformed percent-encoding in '${input.slice(0, 200)}'`)
  }
}

/** S3 canonical URI: each segment decoded once and encoded once (S3 does not double-encode). */
export function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map((segment) => uriEncode(percentDecode(segment), true))
    .join('/')
}

/** Query pairs decoded ('+' as space, as S3 reads them). */
export function parseQuery(rawQuery: string, plusIsSpace = true): [string, string][] {
  if (rawQuery === '') return []
  return rawQuery
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      const value = eq < 0 ? '' : pair.slice(eq + 1)
      return [percentDecode(name, plusIsSpace), percentDecode(value, plusIsSpace)]
    })
}

export function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>, exclude?: string): string {
  return pairs
    .filter(([name]) => name !== exclude)
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
}

export function canonicalHeaders(headers: SignableRequest['headers'], signedHeaders: readonly string[]): string {
  const values = new Map<string, string[]>()
  for (const name of signedHeaders) values.set(name, [])
  for (const [name, value] of headers) {
    const list = values.get(name.toLowerCase())
    if (list) list.push(value.trim().replace(/\s+/g, ' '))
  }
  return signedHeaders.map((name) => `${name}:${values.get(name)!.join(',')}\n`).join('')
}

export function canonicalRequest(parts: {
  method: string
  uri: string
  query: string
  headers: string
  signedHeaders: readonly string[]
  payloadHash: string
}): string {
  return [parts.method, parts.uri, parts.query, parts.headers, parts.signedHeaders.join(';'), parts.payloadHash].join('\n')
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex')
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${algorithm}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`
}

export function credentialScope(credential: Omit<Credential, 'accessKeyId'>): string {
  return `${credential.date}/${credential.region}/${credential.service}/aws4_request`
}

const signingKeys = new Map<string, Buffer>()

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secretAccessKey}\0${date}\0${region}\0${service}`
  const cached = signingKeys.get(cacheKey)
  if (cached) return cached
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest()
  const key = hmac(hmac(hmac(hmac('AWS4' + secretAccessKey, date), region), service), 'aws4_request')
  if (signingKeys.size >= signingKeyCacheEntriesMax) signingKeys.delete(signingKeys.keys().next().value!)
  signingKeys.set(cacheKey, key)
  return key
}

/** Constant-time comparison of two lowercase hex signatures. */
export function signaturesEqual(expected: string, given: string): boolean {
  if (expected.length !== given.length) return false
  return timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(given, 'latin1'))
}

// ---------------------------------------------------------------------------------
// parsing what the client sent

export interface AuthorizationHeader {
  credential: Credential
  signedHeaders: string[]
  signature: string
}

export function parseCredential(value: string): Credential {
  const parts = value.split('/')
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || parts.some((p) => p === '')) {
    throw new BlobfsError('AuthorizationMalformed', `the Credential '${value}' is not KEY/DATE/REGION/SERVICE/aws4_request`)
  }
  const [accessKeyId, date, region, service] = parts as [string, string, string, string]
  if (!/^\d{8}$/.test(date)) throw new BlobfsError('AuthorizationMalformed', `the credential date '${date}' is not YYYYMMDD`)
  if (service !== 's3') throw new BlobfsError('AuthorizationMalformed', `the credential service is '${service}', expected 's3'`)
  return { accessKeyId, date, region, service }
}

function parseSignedHeaders(value: string): string[] {
  const names = value.split(';')
  if (names.some((n) => n === '' || n !== n.toLowerCase())) throw new BlobfsError('AuthorizationMalformed', `SignedHeaders '${value}' is malformed`)
  if (!names.includes('host')) throw new BlobfsError('AuthorizationMalformed', 'SignedHeaders must include host')
  return names
}

function parseSignature(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new BlobfsError('AuthorizationMalformed', 'the Signature is not 64 lowercase hex digits')
  return value
}

export function parseAuthorizationHeader(value: string): AuthorizationHeader {
  if (value.startsWith('AWS ')) throw new BlobfsError('AuthorizationMalformed', 'Signature Version 2 is not supported; sign requests with AWS4-HMAC-SHA256')
  if (!value.startsWith(algorithm + ' ')) throw new BlobfsError('AuthorizationMalformed', `unsupported authorization scheme '${value.split(' ')[0]}'`)
  const fields = new Map<string, string>()
  for (const part of value.slice(algorithm.length + 1).split(',')) {
    const trimmed = part.trim()
    if (trimmed === '') continue
    const eq = trimmed.indexOf('=')
    if (eq < 0) throw new BlobfsError('AuthorizationMalformed', `'${trimmed}' is not NAME=VALUE`)
    fields.set(trimmed.slice(0, eq), trimmed.slice(eq + 1))
  }
  const credential = fields.get('Credential')
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (!credential || !signedHeaders || !signature) {
    throw new BlobfsError('AuthorizationMalformed', 'the Authorization header needs Credential, SignedHeaders and Signature')
  }
  return { credential: parseCredential(credential), signedHeaders: parseSignedHeaders(signedHeaders), signature: parseSignature(signature) }
}

/** YYYYMMDDTHHMMSSZ -> epoch ms. */
export function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)
  if (!m) throw new BlobfsError('AuthorizationMalformed', `'${value}' is not an ISO 8601 basic date (YYYYMMDDTHHMMSSZ)`)
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)
  if (Number.isNaN(ms)) throw new BlobfsError('AuthorizationMalformed', `'${value}' is not a date`)
  return ms
}

export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

function header(request: SignableRequest, name: string): string | undefined {
  for (const [n, v] of request.headers) if (n.toLowerCase() === name) return v
  return undefined
}

/** Whether the request carries a signature at all (else it is anonymous). */
export function isSigned(request: SignableRequest, query: ReadonlyArray<readonly [string, string]>): boolean {
  return header(request, 'authorization') !== undefined || query.some(([name]) => name === 'X-Amz-Signature' || name === 'X-Amz-Credential')
}

// ---------------------------------------------------------------------------------
// verification

/**
 * Verifies the request's signature (header or presigned). Returns null for an
 * anonymous request. Throws AuthorizationMalformed, InvalidAccessKeyId,
 * RequestTimeTooSkewed, AccessDenied (expired URL) or SignatureDoesNotMatch.
 */
export async function verifyRequest(request: SignableRequest, lookup: AccessKeyLookup, nowMs: number): Promise<VerifiedSignature | null> {
  const query = parseQuery(request.rawQuery)
  if (!isSigned(request, query)) return null
  const authorization = header(request, 'authorization')
  if (authorization !== undefined) return verifyHeaderAuth(request, authorization, query, lookup, nowMs)
  return verifyPresigned(request, query, lookup, nowMs)
}

async function verifyHeaderAuth(
  request: SignableRequest,
  authorization: string,
  query: [string, string][],
  lookup: AccessKeyLookup,
  nowMs: number,
): Promise<VerifiedSignature> {
  const parsed = parseAuthorizationHeader(authorization)
  const amzDate = header(request, 'x-amz-date')
  if (!amzDate) throw new BlobfsError('AuthorizationMalformed', 'a signed request needs the x-amz-date header')
  const dateMs = parseAmzDate(amzDate)
  if (amzDate.slice(0, 8) !== parsed.credential.date) throw new BlobfsError('AuthorizationMalformed', `the credential date ${parsed.credential.date} is not the date of x-amz-date ${amzDate}`)
  if (Math.abs(nowMs - dateMs) > clockSkewMsMax) {
    throw new BlobfsError('RequestTimeTooSkewed', `the request time ${amzDate} is more than ${clockSkewMsMax / 60000} minutes from the server time ${formatAmzDate(nowMs)}`)
  }
  const payloadHash = header(request, 'x-amz-content-sha256')
  if (payloadHash === undefined) throw new BlobfsError('InvalidRequest', 'missing required header for this request: x-amz-content-sha256')
  const accessKey = await lookupKey(lookup, parsed.credential.accessKeyId)
  const key = signingKey(accessKey.secretAccessKey, parsed.credential.date, parsed.credential.region, parsed.credential.service)
  const scope = credentialScope(parsed.credential)
  checkSignature(request, query, undefined, parsed.signedHeaders, payloadHash, amzDate, scope, key, parsed.signature)
  return { accessKey, signature: parsed.signature, signingKey: key, amzDate, scope, payloadHash, presigned: false }
}

async function verifyPresigned(request: SignableRequest, query: [string, string][], lookup: AccessKeyLookup, nowMs: number): Promise<VerifiedSignature> {
  const get = (name: string) => {
    const found = query.filter(([n]) => n === name)
    if (found.length !== 1) throw new BlobfsError('AuthorizationMalformed', `a presigned URL needs exactly one ${name} query parameter`)
    return found[0]![1]
  }
  if (get('X-Amz-Algorithm') !== algorithm) throw new BlobfsError('AuthorizationMalformed', `X-Amz-Algorithm must be ${algorithm}`)
  if (query.some(([n]) => n === 'X-Amz-Security-Token')) throw new BlobfsError('NotSupported', 'temporary credentials (X-Amz-Security-Token) are not supported')
  const credential = parseCredential(get('X-Amz-Credential'))
  const amzDate = get('X-Amz-Date')
  const dateMs = parseAmzDate(amzDate)
  if (amzDate.slice(0, 8) !== credential.date) throw new BlobfsError('AuthorizationMalformed', `the credential date ${credential.date} is not the date of X-Amz-Date ${amzDate}`)
  const expiresText = get('X-Amz-Expires')
  const expiresSeconds = /^\d{1,7}$/.test(expiresText) ? Number(expiresText) : NaN
  if (!(expiresSeconds >= 1 && expiresSeconds <= presignedExpirySecondsMax)) {
    throw new BlobfsError('AuthorizationMalformed', `X-Amz-Expires must be between 1 and ${presignedExpirySecondsMax} seconds (7 days), got '${expiresText}'`)
  }
  if (dateMs - nowMs > clockSkewMsMax) throw new BlobfsError('RequestTimeTooSkewed', `the presigned URL is dated ${amzDate}, in the future`)
  if (nowMs > dateMs + expiresSeconds * 1000) throw new BlobfsError('AccessDenied', 'Request has expired')
  const signedHeaders = parseSignedHeaders(get('X-Amz-SignedHeaders'))
  const signature = parseSignature(get('X-Amz-Signature'))
  const payloadHash = header(request, 'x-amz-content-sha256') ?? payloadModes.unsigned
  const accessKey = await lookupKey(lookup, credential.accessKeyId)
  const key = signingKey(accessKey.secretAccessKey, credential.date, credential.region, credential.service)
  const scope = credentialScope(credential)
  // A presigned URL signs "UNSIGNED-PAYLOAD" unless it names a hash.
  const signedPayload = query.find(([n]) => n === 'X-Amz-Content-Sha256')?.[1] ?? payloadModes.unsigned
  checkSignature(request, query, 'X-Amz-Signature', signedHeaders, signedPayload, amzDate, scope, key, signature)
  return { accessKey, signature, signingKey: key, amzDate, scope, payloadHash, presigned: true }
}

async function lookupKey(lookup: AccessKeyLookup, accessKeyId: string): Promise<AccessKey> {
  const key = await lookup(accessKeyId)
  if (!key) throw new BlobfsError('InvalidAccessKeyId', `the access key '${accessKeyId}' does not exist`)
  return key
}

/**
 * Clients agree on the canonical form but not always on how they put the path on
 * the wire; the strict re-encoding is tried first, then the path and query exactly
 * as sent ('+' kept literal), so a client that encodes less still verifies.
 */
function checkSignature(
  request: SignableRequest,
  query: [string, string][],
  exclude: string | undefined,
  signedHeaders: string[],
  payloadHash: string,
  amzDate: string,
  scope: string,
  key: Buffer,
  signature: string,
): void {
  const headers = canonicalHeaders(request.headers, signedHeaders)
  const strict = canonicalRequest({
    method: request.method,
    uri: canonicalUri(request.rawPath),
    query: canonicalQuery(query, exclude),
    headers,
    signedHeaders,
    payloadHash,
  })
  if (signaturesEqual(hmacHex(key, stringToSign(amzDate, scope, strict)), signature)) return
  const asSent = canonicalRequest({
    method: request.method,
    uri: request.rawPath,
    query: canonicalQuery(parseQuery(request.rawQuery, false), exclude),
    headers,
    signedHeaders,
    payloadHash,
  })
  if (asSent !== strict && signaturesEqual(hmacHex(key, stringToSign(amzDate, scope, asSent)), signature)) return
  throw new BlobfsError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.')
}

// ---------------------------------------------------------------------------------
// client side (tests, benchmarks, the CLI): the same canonical forms, signing

export interface SigningInput {
  method: string
  /** Path as it will be sent (already encoded), e.g. '/bucket/my%20key'. */
  path: string
  /** Query pairs, unencoded. */
  query?: [string, string][]
  headers: Record<string, string>
  payloadHash: string
  accessKeyId: string
  secretAccessKey: string
  region: string
  service?: string
  amzDate: string
}

/** Signs a request: returns the Authorization header value (headers must include host and x-amz-date). */
export function signHeaders(input: SigningInput): { authorization: string; signature: string; scope: string; signingKey: Buffer } {
  const service = input.service ?? 's3'
  const date = input.amzDate.slice(0, 8)
  const pairs = Object.entries(input.headers).map(([n, v]) => [n.toLowerCase(), v] as const)
  const signedHeaders = [...new Set(pairs.map(([n]) => n))].sort()
  const canonical = canonicalRequest({
    method: input.method,
    uri: canonicalUri(input.path),
    query: canonicalQuery(input.query ?? []),
    headers: canonicalHeaders(pairs, signedHeaders),
    signedHeaders,
    payloadHash: input.payloadHash,
  })
  const scope = credentialScope({ date, region: input.region, service })
  const key = signingKey(input.secretAccessKey, date, input.region, service)
  const signature = hmacHex(key, stringToSign(input.amzDate, scope, canonical))
  return {
    authorization: `${algorithm} Credential=${input.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`,
    signature,
    scope,
    signingKey: key,
  }
}

/** Builds the query of a presigned URL (X-Amz-Signature last) for `host` + path. */
export function presignQuery(input: Omit<SigningInput, 'payloadHash'> & { expiresSeconds: number }): string {
  const service = input.service ?? 's3'
  const date = input.amzDate.slice(0, 8)
  const scope = credentialScope({ date, region: input.region, service })
  const pairs = Object.entries(input.headers).map(([n, v]) => [n.toLowerCase(), v] as const)
  const signedHeaders = [...new Set(pairs.map(([n]) => n))].sort()
  const query: [string, string][] = [
    ...(input.query ?? []),
    ['X-Amz-Algorithm', algorithm],
    ['X-Amz-Credential', `${input.accessKeyId}/${scope}`],
    ['X-Amz-Date', input.amzDate],
    ['X-Amz-Expires', String(input.expiresSeconds)],
    ['X-Amz-SignedHeaders', signedHeaders.join(';')],
  ]
  const canonical = canonicalRequest({
    method: input.method,
    uri: canonicalUri(input.path),
    query: canonicalQuery(query),
    headers: canonicalHeaders(pairs, signedHeaders),
    signedHeaders,
    payloadHash: payloadModes.unsigned,
  })
  const key = signingKey(input.secretAccessKey, date, input.region, service)
  const signature = hmacHex(key, stringToSign(input.amzDate, scope, canonical))
  return canonicalQuery(query) + '&X-Amz-Signature=' + signature
}
