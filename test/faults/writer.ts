// A writer process for the fault tests, to be SIGKILLed mid-upload: it streams an
// endless body into a PUT ("put") or, after one recorded part, into a second
// multipart part ("multipart"), printing "stripes N" as the object layer pulls
// each stripe's worth of bytes, so the test knows chunks are on the nodes.
//   node --import tsx test/faults/writer.ts CATALOG_URL BUCKET KEY put|multipart STRIPE_BYTES
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { openCluster } from '../../src/cli/cluster.ts'
import { configureLogging } from '../../src/log.ts'

const [catalogUrl, bucket, key, mode, stripeText] = process.argv.slice(2)
const stripeSizeBytes = Number(stripeText)
if (!catalogUrl || !bucket || !key || (mode !== 'put' && mode !== 'multipart') || !(stripeSizeBytes > 0)) {
  console.error('usage: writer.ts CATALOG_URL BUCKET KEY put|multipart STRIPE_BYTES')
  process.exit(2)
}
configureLogging({ level: 'error' })
const cluster = await openCluster(catalogUrl, { dataShards: 4, parityShards: 2, stripeSizeBytes })

function* endless(): Generator<Buffer> {
  for (let n = 1; ; n++) {
    yield randomBytes(stripeSizeBytes)
    console.log(`stripes ${n}`)
  }
}

if (mode === 'put') {
  await cluster.objects.putObject(bucket, key, Readable.from(endless()))
} else {
  const upload = await cluster.objects.createMultipartUpload(bucket, key)
  await cluster.objects.uploadPart(bucket, key, upload.uploadId, 1, Readable.from([randomBytes(2 * stripeSizeBytes)]))
  console.log(`part 1 recorded ${upload.uploadId}`)
  await cluster.objects.uploadPart(bucket, key, upload.uploadId, 2, Readable.from(endless()))
}
