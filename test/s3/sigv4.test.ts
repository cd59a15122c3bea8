// SigV4 against AWS's published vectors: the IAM SigV4 test suite (get-vanilla and
// friends), the S3 developer guide's header-auth, list and presigned examples, and
// the S3 streaming (aws-chunked) example with its chunk signatures; the trailer
// signature vector is the one the AWS Common Runtime tests with.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AwsChunkedDecoder, canonicalTrailer, trailerStringToSign } from '../../src/s3/chunked.ts'
import {
  emptySha256Hex,
  hmacHex,
  presignQuery,
  signHeaders,
  signingKey,
  verifyRequest,
  type AccessKeyLookup,
  type SignableRequest,
} from '../../src/s3/sigv4.ts'

const suite = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'us-east-1', service: 'service', amzDate: '20150830T123600Z' }
const suiteHeaders = { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' }

test('IAM SigV4 test suite: get-vanilla, get-vanilla-query-order-key-case, post-vanilla, get-utf8', () => {
  const sign = (method: string, path: string, query: [string, string][] = []) =>
    signHeaders({ ...suite, method, path, query, headers: suiteHeaders, payloadHash: emptySha256Hex }).signature
  assert.equal(sign('GET', '/'), '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31')
  assert.equal(sign('GET', '/', [['Param2', 'value2'], ['Param1', 'value1']]), 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500')
  assert.equal(sign('POST', '/'), '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b')
  assert.equal(sign('GET', '/%E1%88%B4'), '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85')
})

const s3Example = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', owner: 'example' }
const exampleNow = Date.UTC(2013, 4, 24, 0, 5, 0)
const lookup: AccessKeyLookup = async (id) => (id === s3Example.accessKeyId ? s3Example : null)

function exampleGet(signature: string): SignableRequest {
  return {
    method: 'GET',
    rawPath: '/test.txt',
    rawQuery: '',
    headers: [
      ['Host', 'examplebucket.s3.amazonaws.com'],
      ['Authorization', `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${signature}`],
      ['Range', 'bytes=0-9'],
      ['x-amz-content-sha256', emptySha256Hex],
      ['x-amz-date', '20130524T000000Z'],
    ],
  }
}

test('S3 guide "GET Object" example: the published signature verifies; anything else is refused', async () => {
  const published = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'
  const verified = await verifyRequest(exampleGet(published), lookup, exampleNow)
  assert.equal(verified?.accessKey.owner, 'example')
  assert.equal(verified?.signature, published)

  const tampered = published.slice(0, -1) + (published.endsWith('1') ? '2' : '1')
  await assert.rejects(verifyRequest(exampleGet(tampered), lookup, exampleNow), { code: 'SignatureDoesNotMatch' })
  const otherPath = { ...exampleGet(published), rawPath: '/test2.txt' }
  await assert.rejects(verifyRequest(otherPath, lookup, exampleNow), { code: 'SignatureDoesNotMatch' })
  await assert.rejects(verifyRequest(exampleGet(published), async () => null, exampleNow), { code: 'InvalidAccessKeyId' })
  await assert.rejects(verifyRequest(exampleGet(published), lookup, exampleNow + 16 * 60_000), { code: 'RequestTimeTooSkewed' })
  const wrongSecret: AccessKeyLookup = async () => ({ ...s3Example, secretAccessKey: 'not-the-secret' })
  await assert.rejects(verifyRequest(exampleGet(published), wrongSecret, exampleNow), { code: 'SignatureDoesNotMatch' })
  const v2 = { ...exampleGet(published), headers: [['Host', 'x'], ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:abc']] as [string, string][] }
  await assert.rejects(verifyRequest(v2, lookup, exampleNow), { code: 'AuthorizationMalformed' })
})

test('S3 guide "GET Bucket (List Objects)" example signs the sorted query', () => {
  const { signature } = signHeaders({
    ...s3Example,
    region: 'us-east-1',
    amzDate: '20130524T000000Z',
    method: 'GET',
    path: '/',
    query: [['max-keys', '2'], ['prefix', 'J']],
    headers: { host: 'examplebucket.s3.amazonaws.com', 'x-amz-content-sha256': emptySha256Hex, 'x-amz-date': '20130524T000000Z' },
    payloadHash: emptySha256Hex,
  })
  assert.equal(signature, '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7')
})

test('S3 guide presigned URL example: verifies until it expires; expiry over 7 days is malformed', async () => {
  const query = presignQuery({
    ...s3Example,
    region: 'us-east-1',
    amzDate: '20130524T000000Z',
    method: 'GET',
    path: '/test.txt',
    headers: { host: 'examplebucket.s3.amazonaws.com' },
    expiresSeconds: 86400,
  })
  assert.match(query, /X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404$/)
  const request = (q: string): SignableRequest => ({ method: 'GET', rawPath: '/test.txt', rawQuery: q, headers: [['Host', 'examplebucket.s3.amazonaws.com']] })
  assert.equal((await verifyRequest(request(query), lookup, Date.UTC(2013, 4, 24, 23, 0, 0)))?.presigned, true)
  await assert.rejects(verifyRequest(request(query), lookup, Date.UTC(2013, 4, 25, 0, 0, 1)), { code: 'AccessDenied', message: 'Request has expired' })
  const longer = query.replace('X-Amz-Expires=86400', 'X-Amz-Expires=604801')
  await assert.rejects(verifyRequest(request(longer), lookup, exampleNow), { code: 'AuthorizationMalformed' })
  const otherMethod = { ...request(query), method: 'PUT' }
  await assert.rejects(verifyRequest(otherMethod, lookup, exampleNow), { code: 'SignatureDoesNotMatch' })
})

const streamingHeaders: [string, string][] = [
  ['Host', 's3.amazonaws.com'],
  ['x-amz-date', '20130524T000000Z'],
  ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
  ['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
  ['Content-Encoding', 'aws-chunked'],
  ['x-amz-decoded-content-length', '66560'],
  ['Content-Length', '66824'],
]
const seed = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
const chunkSignatures = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
]

function publishedStreamingBody(): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${chunkSignatures[0]}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${chunkSignatures[1]}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${chunkSignatures[2]}\r\n\r\n`),
  ])
}

async function verifiedStreamingSeed() {
  const authorization = `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${seed}`
  const verified = await verifyRequest(
    { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers: [...streamingHeaders, ['Authorization', authorization]] },
    lookup,
    exampleNow,
  )
  assert.ok(verified)
  return verified
}

test('S3 guide streaming upload example: the seed verifies and the published chunks decode', async () => {
  const verified = await verifiedStreamingSeed()
  assert.equal(verified.payloadHash, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD')
  const body = publishedStreamingBody()
  assert.equal(body.length, 66824, 'the framed length is the published Content-Length')
  for (const slice of [1, 7, 8192, 100000]) {
    const decoder = new AwsChunkedDecoder({
      chain: { signingKey: verified.signingKey, amzDate: verified.amzDate, scope: verified.scope, seedSignature: verified.signature },
      trailerNames: [],
      signedTrailer: false,
    })
    const out: Buffer[] = []
    for (let i = 0; i < body.length; i += slice) decoder.push(body.subarray(i, i + slice), out)
    decoder.finish()
    const data = Buffer.concat(out)
    assert.equal(data.length, 66560)
    assert.ok(data.every((b) => b === 0x61))
  }
})

test('S3 guide streaming upload example: one changed data byte breaks the chain', async () => {
  const verified = await verifiedStreamingSeed()
  const body = publishedStreamingBody()
  body[body.indexOf('a') + 4000] = 0x62 // inside the first chunk
  const decoder = new AwsChunkedDecoder({
    chain: { signingKey: verified.signingKey, amzDate: verified.amzDate, scope: verified.scope, seedSignature: verified.signature },
    trailerNames: [],
    signedTrailer: false,
  })
  assert.throws(() => decoder.push(body, []), { code: 'SignatureDoesNotMatch' })
})

test('trailer signature: the AWS Common Runtime vector (first/second/third after the final chunk)', () => {
  const key = signingKey(s3Example.secretAccessKey, '20130524', 'us-east-1', 's3')
  const trailer = canonicalTrailer([
    ['first', '1st'],
    ['second', '2nd'],
    ['third', '3rd'],
  ])
  assert.equal(
    hmacHex(key, trailerStringToSign('20130524T000000Z', '20130524/us-east-1/s3/aws4_request', chunkSignatures[2]!, trailer)),
    'df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c',
  )
})
