// Memory per request is bounded by a few stripes, never the object size (DESIGN.md,
// "Write, read, delete"): a 2 GiB object generated on the fly is PUT and then read
// back through the object layer (catalog on PostgreSQL, its own process), and this
// process's peak RSS may grow by less than 256 MiB over its value before the PUT.
// The chunks go to files (FileChunkStore): 3 GiB of chunks held in memory would be
// the very growth under test, and 12 HTTP nodes on this machine would take minutes.
// Own test file, own process: the baseline is not another test's leftovers.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { crc32c } from '../../src/codec/checksum.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import { FileChunkStore } from '../support/file-chunk-store.ts'
import { startPostgres } from '../support/postgres-server.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** Peak RSS since the last reset: the kernel's high-water mark (VmHWM) and a 10 ms sampler. */
function rssPeak(): { reset(): void; peakBytes(): number; stop(): void } {
  const hwmBytes = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024
  let sampled = 0
  let kernel = true
  const timer = setInterval(() => (sampled = Math.max(sampled, process.memoryUsage.rss())), 10)
  return {
    reset() {
      sampled = process.memoryUsage.rss()
      try {
        writeFileSync('/proc/self/clear_refs', '5') // sets VmHWM to the current RSS
      } catch {
        kernel = false // the sampler alone then
      }
    },
    peakBytes: () => Math.max(sampled, process.memoryUsage.rss(), kernel ? hwmBytes() : 0),
    stop: () => clearInterval(timer),
  }
}

function crcBase64(crc: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(crc >>> 0)
  return bytes.toString('base64')
}

test('PUT and GET of a 2 GiB object keep this process\'s RSS growth under 256 MiB', { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-memory-'))
  const postgres = await startPostgres()
  const catalog = await openCatalog(await postgres.createDatabase())
  const rss = rssPeak()
  try {
    const nodeIds = Array.from({ length: 12 }, (_, i) => `node-${i}`)
    const config = objectStoreConfig()
    const objects = new ObjectStore({
      catalog,
      store: new FileChunkStore(root, nodeIds),
      candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
      config,
    })
    await objects.createBucket('memory', 'tester')
    const sizeBytes = 2 * GiB
    // What the pipeline holds: on the way in, stripesInFlightMax stripes of 16 MiB data +
    // 8 MiB parity; on the way out, stripesAheadMax prefetched 16 MiB stripes and their
    // chunk reads. Far below 256 MiB; the rest of the budget is allocator and GC slack.
    assert.ok((config.stripesInFlightMax + 1) * 1.5 * config.stripeSizeBytes + 2 * config.stripesAheadMax * config.stripeSizeBytes < 256 * MiB)
    const growthBytesMax = 256 * MiB

    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    gc()
    const baseline = process.memoryUsage.rss()
    rss.reset()
    // CRC32C (native, fast) of what went in and what came out: the test's time goes to the object layer.
    let sent = 0
    async function* generated(): AsyncGenerator<Buffer> {
      for (let offset = 0; offset < sizeBytes; offset += MiB) {
        const piece = randomBytes(Math.min(MiB, sizeBytes - offset))
        sent = crc32c(piece, sent)
        yield piece
      }
    }
    let started = performance.now()
    const info = await objects.putObject('memory', 'big', generated(), { expectedLengthBytes: sizeBytes })
    const putSeconds = (performance.now() - started) / 1000
    const putGrowth = rss.peakBytes() - baseline
    assert.equal(info.sizeBytes, sizeBytes)

    // The GET's growth is counted from where the PUT left the process: what the
    // allocator kept of the PUT's buffers (RSS it does not give back) is not the GET's.
    gc()
    const getBaseline = process.memoryUsage.rss()
    rss.reset()
    started = performance.now()
    let received = 0
    let receivedBytes = 0
    for await (const piece of (await objects.getObject('memory', 'big')).body) {
      received = crc32c(piece as Buffer, received)
      receivedBytes += (piece as Buffer).length
    }
    const getSeconds = (performance.now() - started) / 1000
    const getGrowth = rss.peakBytes() - getBaseline
    assert.equal(receivedBytes, sizeBytes)
    assert.equal(received, sent, 'the 2 GiB read back are the bytes written')
    assert.equal(info.checksumCrc32c, crcBase64(sent), 'the object layer computed the same CRC32C on the way in')

    const report = `RSS growth: PUT ${(putGrowth / MiB).toFixed(0)} MiB over ${(baseline / MiB).toFixed(0)} MiB (${putSeconds.toFixed(0)} s), GET ${(getGrowth / MiB).toFixed(0)} MiB over ${(getBaseline / MiB).toFixed(0)} MiB (${getSeconds.toFixed(0)} s)`
    console.log(report)
    assert.ok(putGrowth < growthBytesMax, report)
    assert.ok(getGrowth < growthBytesMax, report)
  } finally {
    rss.stop()
    await catalog.close()
    await postgres.stop()
    rmSync(root, { recursive: true, force: true })
  }
})
