// The catalog driver carries blobfs's fixes for crashes on a server restart
// (src/catalog/driver-patch.mjs; exercised end to end by
// test/faults/catalog-restart.test.ts). Without them, any blobfs process can die when
// the catalog restarts under traffic.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import postgres from 'postgres'
import { driverFiles, patchDriver, patchMarker, typesMarker } from '../../src/catalog/driver-patch.mjs'
import { startPostgres, type PostgresServer } from '../support/postgres-server.ts'

test('the postgres.js driver is patched (ESM and CommonJS builds), and patching again changes nothing', () => {
  for (const file of driverFiles()) {
    const text = readFileSync(file, 'utf8')
    for (const marker of [patchMarker, typesMarker]) {
      assert.ok(text.includes(marker), `${file} lacks ${marker}: run \`npm run patch:driver\` (npm install does it)`)
    }
  }
  assert.deepEqual(patchDriver(), [])
})

let server: PostgresServer
before(async () => {
  server = await startPostgres()
})
after(async () => {
  await server?.stop()
})

/** A PostgreSQL ErrorResponse message, as a server shutting down (`pg_ctl stop -m fast`) sends every backend. */
function fatal(code: string, message: string): Buffer {
  const fields = Buffer.concat([
    ...[['S', 'FATAL'], ['V', 'FATAL'], ['C', code], ['M', message]].map(([type, value]) => Buffer.from(`${type}${value}\0`)),
    Buffer.from([0]),
  ])
  const header = Buffer.alloc(5)
  header.write('E', 0)
  header.writeInt32BE(fields.length + 4, 1)
  return Buffer.concat([header, fields])
}

test('the server shuts down during a new connection\'s array-types query: the waiting query fails cleanly, no rejection escapes the driver', { timeout: 60_000 }, async () => {
  const target = new URL(server.url())
  // A proxy that passes the start-up through; when the client sends the driver's
  // array-types query (the first query on every new connection), it answers as a server
  // shutting down would — FATAL 57P01 — and closes.
  let cut = 0
  const sockets = new Set<Socket>()
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    client.on('data', (bytes) => {
      if (bytes.includes('typarray')) {
        cut++
        upstream.destroy()
        client.end(fatal('57P01', 'terminating connection due to administrator command'))
        return
      }
      upstream.write(bytes)
    })
    upstream.on('data', (bytes) => client.writable && client.write(bytes))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const port = (proxy.address() as { port: number }).port
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  const sql = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    await assert.rejects(sql`SELECT 1 AS one`, (error: { code?: string }) => error.code === '57P01')
    await new Promise((resolve) => setTimeout(resolve, 200)) // let a dropped promise's rejection surface
    assert.equal(cut, 1, 'the proxy answered the array-types query')
    assert.deepEqual(unhandled.map(String), [], 'no rejection escaped the driver')
  } finally {
    process.off('unhandledRejection', onUnhandled)
    await sql.end({ timeout: 1 }).catch(() => {})
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => proxy.close(resolve))
  }
})
