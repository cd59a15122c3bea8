// `blobfs gateway`: flags parse into a running gateway over the object layer the
// factory opens (the in-memory one), --help shows examples, stop() closes both; and
// the registered command as a process over a real catalog.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import yargs from 'yargs'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { gatewayCommand, runGateway, type GatewayArgs } from '../../src/cli/commands/gateway.ts'
import { startPostgres } from '../support/postgres-server.ts'
import { alice, collect } from './harness.ts'
import { MemoryObjectLayer } from './memory-objects.ts'

test('blobfs gateway: flags, --help examples, a factory-opened object layer, clean stop', async () => {
  const objects = new MemoryObjectLayer()
  objects.addAccessKey(alice)
  await objects.createBucket('from-factory', 'alice')
  let opened: string | null = null
  let closed = false
  const factory = async ({ catalogUrl }: { catalogUrl: string }) => {
    opened = catalogUrl
    return {
      objects,
      async close() {
        closed = true
      },
    }
  }
  let help = ''
  await yargs()
    .command(gatewayCommand(factory))
    .help()
    .exitProcess(false)
    .parseAsync(['gateway', '--help'], {}, (_err: unknown, _argv: unknown, output: string) => {
      help = output
    })
  assert.match(help, /--catalog/)
  assert.match(help, /--domain/)
  assert.match(help, /Examples:/)

  let parsed: GatewayArgs | null = null
  await yargs()
    .command({
      ...gatewayCommand(factory),
      handler: (argv) => {
        parsed = argv
      },
    })
    .parseAsync(['gateway', '--listen', '127.0.0.1:0', '--catalog', 'postgres://catalog.test/blobfs', '--rate-limit', '0'])
  assert.ok(parsed)
  const running = await runGateway(parsed, factory)
  try {
    assert.equal(opened, 'postgres://catalog.test/blobfs')
    assert.equal(running.gateway.config.rateLimit, null)
    const s3 = new S3Client({ endpoint: running.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: alice })
    const listed = await s3.send(new ListBucketsCommand({}))
    assert.deepEqual(listed.Buckets?.map((b) => b.Name), ['from-factory'])
    s3.destroy()
  } finally {
    await running.stop()
  }
  assert.ok(closed, 'stop() closes the object layer')
})

test('blobfs gateway as a process over a real catalog (no storage nodes): small objects live in the catalog, large ones fail cleanly', async () => {
  const postgres = await startPostgres()
  let child: ChildProcess | undefined
  try {
    const url = await postgres.createDatabase()
    const catalog = await openCatalog(url)
    const key = await catalog.accessKeys.create({ owner: 'erin' })
    await catalog.close()
    child = spawn(process.execPath, ['src/cli/bin.mjs', 'gateway', '--catalog', url, '--listen', '127.0.0.1:0', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const line: string = await new Promise((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (l) => l.startsWith('blobfs gateway listening on ') && resolve(l))
      child!.once('exit', (code) => reject(new Error(`blobfs gateway exited with ${code}`)))
    })
    const endpoint = line.slice('blobfs gateway listening on '.length)
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: key, maxAttempts: 1 })
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'erins' }))
      await s3.send(new PutObjectCommand({ Bucket: 'erins', Key: 'tiny.txt', Body: 'kept inline in the catalog' }))
      const got = await s3.send(new GetObjectCommand({ Bucket: 'erins', Key: 'tiny.txt' }))
      assert.equal((await collect(got.Body as AsyncIterable<Uint8Array>)).toString(), 'kept inline in the catalog')
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'erins', Key: 'large.bin', Body: Buffer.alloc(100_000) })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(e.$metadata?.httpStatusCode, 503, `${e.name}: ${e.message}`)
        return true
      })
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'erins', Key: 'large.bin' })), { name: 'NotFound' })
    } finally {
      s3.destroy()
    }
    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number | null]
    assert.equal(code, 0, 'SIGTERM stops the gateway cleanly')
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await postgres.stop()
  }
})
