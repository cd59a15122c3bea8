// A PUT that never finishes, in its own process, for tests that SIGKILL a writer
// mid-upload: it streams random stripes of a body into blobfs://BUCKET/KEY through
// the object layer of the cluster at CATALOG_URL, then stops sending and waits to
// be killed. Printed lines tell the test how far it got.
//   node --import tsx test/support/dying-writer.ts CATALOG_URL BUCKET KEY STRIPE_BYTES STRIPES
import { randomBytes } from 'node:crypto'
import { openCluster } from '../../src/cli/cluster.ts'

const [catalogUrl, bucket, key, stripeBytesText, stripesText] = process.argv.slice(2)
if (!catalogUrl || !bucket || !key || !stripeBytesText || !stripesText) {
  console.error('usage: dying-writer.ts CATALOG_URL BUCKET KEY STRIPE_BYTES STRIPES')
  process.exit(2)
}
const stripeBytes = Number(stripeBytesText)
const stripes = Number(stripesText)

const cluster = await openCluster(catalogUrl, { stripeSizeBytes: stripeBytes })
async function* body(): AsyncGenerator<Buffer> {
  for (let i = 0; i < stripes; i++) yield randomBytes(stripeBytes)
  console.log(`sent ${stripes} stripes`)
  await new Promise(() => {}) // the body never ends: the upload is still open when the kill comes
}
const keepAlive = setInterval(() => {}, 1000) // the pending body alone would not hold the process
await cluster.objects.putObject(bucket, key, body())
clearInterval(keepAlive)
console.log('committed (this must not happen)')
process.exit(1)
