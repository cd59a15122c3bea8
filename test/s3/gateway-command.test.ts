// `blobfs gateway`: flags parse into a running gateway over the object layer the
// factory opens (here the in-memory one), --help shows examples, stop() closes both.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3'
import yargs from 'yargs'
import { gatewayCommand, runGateway, type GatewayArgs } from '../../src/cli/commands/gateway.ts'
import { alice } from './harness.ts'
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
