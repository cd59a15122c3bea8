// The aws-chunked decoder: whatever the chunk sizes and however the wire bytes are
// split across reads, it yields the same data; signed chains, trailers and
// truncations are checked (fast-check).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { AwsChunkedDecoder, encodeAwsChunked, type AwsChunkedOptions, type ChunkChain } from '../../src/s3/chunked.ts'
import { checksumOf } from '../../src/s3/checksums.ts'
import { signingKey } from '../../src/s3/sigv4.ts'

const chain: ChunkChain = {
  signingKey: signingKey('secret', '20240101', 'us-east-1', 's3'),
  amzDate: '20240101T000000Z',
  scope: '20240101/us-east-1/s3/aws4_request',
  seedSignature: 'a'.repeat(64),
}

type Mode = 'signed' | 'signed-trailer' | 'unsigned-trailer'

function options(mode: Mode): AwsChunkedOptions {
  return {
    chain: mode === 'unsigned-trailer' ? null : chain,
    trailerNames: mode === 'signed' ? [] : ['x-amz-checksum-crc32'],
    signedTrailer: mode === 'signed-trailer',
  }
}

function encode(mode: Mode, data: Buffer, sizes: number[]): Buffer {
  const chunks: Buffer[] = []
  let offset = 0
  for (const size of sizes) {
    if (offset >= data.length) break
    chunks.push(data.subarray(offset, offset + size))
    offset += size
  }
  if (offset < data.length) chunks.push(data.subarray(offset))
  return encodeAwsChunked(chunks, {
    chain: mode === 'unsigned-trailer' ? undefined : chain,
    trailers: mode === 'signed' ? [] : [['x-amz-checksum-crc32', checksumOf('crc32', data)]],
    signedTrailer: mode === 'signed-trailer',
  })
}

function decode(mode: Mode, wire: Buffer, cuts: number[]): { data: Buffer; trailers: Map<string, string> } {
  const decoder = new AwsChunkedDecoder(options(mode))
  const out: Buffer[] = []
  let previous = 0
  for (const cut of [...cuts.map((c) => Math.floor(c * wire.length)).sort((a, b) => a - b), wire.length]) {
    decoder.push(wire.subarray(previous, cut), out)
    previous = cut
  }
  const trailers = decoder.finish()
  assert.equal(decoder.decodedBytes, Buffer.concat(out).length)
  return { data: Buffer.concat(out), trailers }
}

const modes = fc.constantFrom<Mode>('signed', 'signed-trailer', 'unsigned-trailer')

test('random chunkings and random read splits decode to the same bytes, in every mode', () => {
  fc.assert(
    fc.property(
      modes,
      fc.uint8Array({ minLength: 0, maxLength: 3000 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 12 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }),
      (mode, bytes, sizes, cuts) => {
        const data = Buffer.from(bytes)
        const { data: decoded, trailers } = decode(mode, encode(mode, data, sizes), cuts)
        assert.deepEqual(decoded, data)
        if (mode !== 'signed') assert.equal(trailers.get('x-amz-checksum-crc32'), checksumOf('crc32', data))
      },
    ),
    { numRuns: 300 },
  )
})

test('signed modes: a changed data byte anywhere is refused before the body ends', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Mode>('signed', 'signed-trailer'),
      fc.uint8Array({ minLength: 1, maxLength: 2000 }),
      fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 8 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (mode, bytes, sizes, at, flip) => {
        const data = Buffer.from(bytes)
        const wire = encode(mode, data, sizes)
        // find the wire offset of data byte `at % length`: decode with a marker pass
        const target = at % data.length
        const decoder = new AwsChunkedDecoder(options(mode))
        let seen = 0
        let wireOffset = -1
        for (let i = 0; i < wire.length && wireOffset < 0; i++) {
          const out: Buffer[] = []
          decoder.push(wire.subarray(i, i + 1), out)
          if (out.length > 0) {
            if (seen === target) wireOffset = i
            seen++
          }
        }
        assert.ok(wireOffset >= 0)
        const tampered = Buffer.from(wire)
        tampered[wireOffset] ^= flip
        assert.throws(() => decode(mode, tampered, []), { code: 'SignatureDoesNotMatch' })
      },
    ),
    { numRuns: 150 },
  )
})

test('a body cut short anywhere is never taken as complete', () => {
  fc.assert(
    fc.property(modes, fc.uint8Array({ minLength: 0, maxLength: 1500 }), fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 6 }), fc.double({ min: 0, max: 1, noNaN: true }), (mode, bytes, sizes, where) => {
      const data = Buffer.from(bytes)
      const wire = encode(mode, data, sizes)
      // Cutting only the final CRLF is a clean end (some clients omit it), so cut earlier.
      const cut = Math.min(wire.length - 3, Math.floor(where * wire.length))
      const decoder = new AwsChunkedDecoder(options(mode))
      const out: Buffer[] = []
      let failed = false
      try {
        decoder.push(wire.subarray(0, cut), out)
        decoder.finish()
      } catch {
        failed = true
      }
      assert.ok(failed, `a body cut at ${cut} of ${wire.length} wire bytes was taken as complete`)
    }),
    { numRuns: 300 },
  )
})

test('framing errors: bad size line, missing CRLF, undeclared trailer, missing trailer, bytes after the end', () => {
  const unsigned = options('unsigned-trailer')
  const feed = (text: string, opts = unsigned) => {
    const d = new AwsChunkedDecoder(opts)
    d.push(Buffer.from(text, 'latin1'), [])
    return d.finish()
  }
  assert.throws(() => feed('zz\r\n'), { code: 'InvalidRequest' })
  assert.throws(() => feed('3\r\nabcX'), { code: 'InvalidRequest' })
  assert.throws(() => feed('3\r\nabc\r\n0\r\nx-amz-checksum-sha256:AAAA\r\n\r\n'), { code: 'InvalidRequest' })
  assert.throws(() => feed('3\r\nabc\r\n0\r\n\r\n'), { code: 'IncompleteBody' })
  assert.throws(() => feed('3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\nextra'), { code: 'InvalidRequest' })
  assert.throws(() => feed('3\r\nab'), { code: 'IncompleteBody' })
  assert.throws(() => feed('3\r\nabc\r\n0\r\n', options('signed')), { code: 'SignatureDoesNotMatch' })
  assert.throws(() => feed('f'.repeat(5000)), { code: 'InvalidRequest' })
  assert.equal(feed('3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n').get('x-amz-checksum-crc32'), 'AAAAAA==')
})
