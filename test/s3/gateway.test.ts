// The gateway around the operations: per-key rate limits, Prometheus metrics, the
// error table (anything unmapped is InternalError, logged with its cause),
// virtual-hosted-style addressing, and Expect: 100-continue refusals that never
// read the body.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { pino } from 'pino'
import { errorCodes, type ErrorCode } from '../../src/errors.ts'
import { s3ErrorFor, s3ErrorTable } from '../../src/s3/errors.ts'
import { BlobfsError } from '../../src/errors.ts'
import { alice, bob, collect, loopbackAgent, startHarness } from './harness.ts'
import { MemoryObjectLayer } from './memory-objects.ts'
import { objectPath, signed } from './raw.ts'

test('rate limit per access key: a spent bucket answers 503 SlowDown with Retry-After; other keys are unaffected; tokens come back', async () => {
  let nowMs = Date.now()
  const h = await startHarness({ rateLimit: { requestsPerSecond: 1, burst: 3 }, now: () => nowMs })
  try {
    const a = h.client(alice)
    for (let i = 0; i < 3; i++) await a.send(new ListBucketsCommand({}))
    await assert.rejects(a.send(new ListBucketsCommand({})), (e: Error & { $metadata?: { httpStatusCode?: number }; $response?: { headers: Record<string, string> } }) => {
      assert.equal(e.name, 'SlowDown')
      assert.equal(e.$metadata?.httpStatusCode, 503)
      assert.equal(e.$response?.headers['retry-after'], '1')
      return true
    })
    await h.client(bob).send(new ListBucketsCommand({}))
    nowMs += 1000
    await a.send(new ListBucketsCommand({}))
    await assert.rejects(a.send(new ListBucketsCommand({})), { name: 'SlowDown' })
    const metrics = await h.gateway.metrics.registry.getSingleMetricAsString('blobfs_s3_rate_limited_total')
    assert.match(metrics, /blobfs_s3_rate_limited_total 2/)
  } finally {
    await h.close()
  }
})

test('/metrics: requests by operation and status, latency histogram, bytes in and out', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'metered' }))
    await s3.send(new PutObjectCommand({ Bucket: 'metered', Key: 'k', Body: Buffer.alloc(50_000, 1) }))
    await collect((await s3.send(new GetObjectCommand({ Bucket: 'metered', Key: 'k' }))).Body as AsyncIterable<Uint8Array>)
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'metered', Key: 'missing' })))
    const res = await fetch(`${h.endpoint}/metrics`)
    assert.equal(res.status, 200)
    const text = await res.text()
    assert.match(text, /blobfs_s3_requests_total\{operation="PutObject",status="200"\} 1/)
    assert.match(text, /blobfs_s3_requests_total\{operation="GetObject",status="200"\} 1/)
    assert.match(text, /blobfs_s3_requests_total\{operation="GetObject",status="404"\} 1/)
    assert.match(text, /blobfs_s3_request_duration_seconds_count\{operation="PutObject"\} 1/)
    const bytesIn = Number(/blobfs_s3_received_bytes_total\{operation="PutObject"\} (\d+)/.exec(text)?.[1])
    const bytesOut = Number(/blobfs_s3_sent_bytes_total\{operation="GetObject"\} (\d+)/.exec(text)?.[1])
    assert.ok(bytesIn >= 50_000, `PutObject received ${bytesIn} bytes`)
    assert.ok(bytesOut >= 50_000, `GetObject sent ${bytesOut} bytes`)
  } finally {
    await h.close()
  }
})

test('error table: every mapped code has an S3 code and a 3xx-5xx status; anything else is InternalError 500, logged with its cause', async () => {
  for (const [code, spec] of Object.entries(s3ErrorTable())) {
    assert.ok(code in errorCodes, code)
    assert.match(spec!.code, /^[A-Z][A-Za-z0-9]+$/)
    assert.ok(spec!.status >= 300 && spec!.status < 600, code)
  }
  for (const code of Object.keys(errorCodes) as ErrorCode[]) {
    const spec = s3ErrorFor(new BlobfsError(code))
    assert.equal(spec.mapped, code in s3ErrorTable(), code)
  }
  assert.deepEqual(s3ErrorFor(new Error('boom')), { code: 'InternalError', status: 500, mapped: false })

  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString())
      done()
    },
  })
  const broken = new MemoryObjectLayer()
  broken.listBuckets = async () => {
    throw new TypeError('catalog row had no name', { cause: new Error('root cause') })
  }
  const h = await startHarness({ objects: broken, logger: pino({ level: 'info' }, sink) })
  try {
    await assert.rejects(h.client().send(new ListBucketsCommand({})), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'InternalError')
      assert.equal(e.$metadata?.httpStatusCode, 500)
      assert.ok(!e.message.includes('catalog row'), 'the cause stays in the log')
      return true
    })
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'internal error')
    assert.ok(logged, 'an internal error is logged')
    assert.match(logged.err.message, /catalog row had no name/)
    assert.equal(logged.op, 'ListBuckets')
    assert.ok(logged.reqId)
    const requestLine = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request')
    assert.equal(requestLine.status, 500)
    assert.equal(requestLine.reqId, logged.reqId)
  } finally {
    await h.close()
  }
})

test('virtual-hosted-style requests (bucket.DOMAIN) reach the same buckets as path-style ones', async () => {
  const h = await startHarness({ domain: 's3.blobfs.test' })
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'vhost' }))
    const virtual = h.client(alice, { endpoint: `http://s3.blobfs.test:${h.port}`, forcePathStyle: false, requestHandler: { httpAgent: loopbackAgent() } as never })
    const seenHosts: string[] = []
    virtual.middlewareStack.add(
      (next) => async (args) => {
        seenHosts.push((args as { request: { hostname: string } }).request.hostname)
        return next(args)
      },
      { step: 'finalizeRequest', name: 'hosts' },
    )
    await virtual.send(new PutObjectCommand({ Bucket: 'vhost', Key: 'dir/file.txt', Body: 'virtual' }))
    assert.equal(seenHosts[0], 'vhost.s3.blobfs.test')
    const listed = await virtual.send(new ListObjectsV2Command({ Bucket: 'vhost' }))
    assert.deepEqual(listed.Contents?.map((c) => c.Key), ['dir/file.txt'])
    const viaPath = await h.client().send(new GetObjectCommand({ Bucket: 'vhost', Key: 'dir/file.txt' }))
    assert.equal((await collect(viaPath.Body as AsyncIterable<Uint8Array>)).toString(), 'virtual')
  } finally {
    await h.close()
  }
})

function expectContinuePut(port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; sentBody: boolean }> {
  return new Promise((resolve, reject) => {
    let sentBody = false
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { ...headers, expect: '100-continue', 'content-length': String(body.length) } })
    req.on('continue', () => {
      sentBody = true
      req.end(body)
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => {
        if (!sentBody) req.destroy()
        resolve({ status: res.statusCode ?? 0, sentBody })
      })
    })
    req.on('error', (error) => (sentBody ? reject(error) : undefined))
    req.flushHeaders()
  })
}

test('Expect: 100-continue: an unauthorized upload is refused before its body is sent; an authorized one proceeds', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'continue' }))
    const body = Buffer.alloc(2 * 1024 * 1024, 7)
    const good = signed({ key: alice, port: h.port, method: 'PUT', path: objectPath('continue', 'ok.bin'), payloadHash: 'UNSIGNED-PAYLOAD' })
    const accepted = await expectContinuePut(h.port, good.path, good.headers, body)
    assert.deepEqual(accepted, { status: 200, sentBody: true })
    assert.equal((await h.objects.headObject('continue', 'ok.bin')).sizeBytes, body.length)

    const denied = signed({ key: bob, port: h.port, method: 'PUT', path: objectPath('continue', 'no.bin'), payloadHash: 'UNSIGNED-PAYLOAD' })
    const refused = await expectContinuePut(h.port, denied.path, denied.headers, body)
    assert.deepEqual(refused, { status: 403, sentBody: false })
    await assert.rejects(h.objects.headObject('continue', 'no.bin'), { code: 'NoSuchKey' })
  } finally {
    await h.close()
  }
})
