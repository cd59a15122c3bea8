// Fault: uploads that never finish. 100 multipart uploads are aborted by their
// clients, a few more are abandoned (left idle), and writer processes are
// SIGKILLed in the middle of a PUT and of a multipart part. With the GC times made
// short (--multipart-idle 8s, --orphan-grace 12s), what must hold afterwards,
// counted exactly: the nodes hold precisely the chunks the catalog references
// (every node's inventory against every chunk row) — nothing leaked, nothing
// referenced lost — no session is left, the deletion queue is empty, and every
// committed object reads back byte-identical.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { configureLogging } from '../../src/log.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'
import { difference, referencedChunks, storedChunks, waitUntil } from '../support/inventory.ts'

configureLogging({ level: 'error' })
const stripeSizeBytes = 4 * 64 * 1024
const writerScript = new URL('./writer.ts', import.meta.url).pathname
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/** Starts a writer process; resolves once it printed `until` (chunks are on the nodes), with the process. */
function startWriter(catalogUrl: string, key: string, mode: 'put' | 'multipart', until: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, catalogUrl, 'leaks', key, mode, String(stripeSizeBytes)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer ${key} did not print '${until}' in 60 s: ${stderr}`)), 60_000)
    child.once('exit', (code) => reject(new Error(`writer ${key} exited (${code}) early: ${stderr}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === until) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve(child)
      }
    })
  })
}

async function sigkill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

describe('fault: aborted, abandoned and killed uploads leak nothing', { timeout: 240_000 }, () => {
  let cluster: TestCluster
  const writers: ChildProcess[] = []
  before(async () => {
    cluster = await startTestCluster({
      nodes: 6,
      racks: 3,
      nodeArgs: ['--gc-interval-ms', '500', '--multipart-idle', '8s', '--orphan-grace', '12s'],
    })
  })
  after(async () => {
    await Promise.allSettled(writers.map(sigkill))
    await cluster?.stop()
  })

  test('after GC the nodes hold exactly the referenced chunks', async () => {
    // This process's own writes must finish well inside the short grace (the invariant of the sweep).
    const { objects, catalog, store } = await cluster.open({ dataShards: 4, parityShards: 2, stripeSizeBytes, writeDurationMsMax: 8_000 })
    const nodeIds = cluster.nodes.map((n) => n.id)
    await objects.createBucket('leaks', 'tester')

    const kept = new Map<string, string>()
    for (let i = 0; i < 5; i++) {
      const data = randomBytes(stripeSizeBytes * (i + 1) + 7)
      await objects.putObject('leaks', `kept-${i}`, Readable.from([data]))
      kept.set(`kept-${i}`, sha(data))
    }
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(stripeSizeBytes)]
    const done = await objects.createMultipartUpload('leaks', 'kept-multipart')
    const etags = []
    for (const [i, part] of parts.entries()) etags.push((await objects.uploadPart('leaks', 'kept-multipart', done.uploadId, i + 1, Readable.from([part]))).etag)
    await objects.completeMultipartUpload('leaks', 'kept-multipart', done.uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })))
    kept.set('kept-multipart', sha(Buffer.concat(parts)))

    // Writers killed mid-upload: one in a PUT, one in its second multipart part.
    const putWriter = startWriter(cluster.catalogUrl, 'killed-put', 'put', 'stripes 6')
    const mpWriter = startWriter(cluster.catalogUrl, 'killed-multipart', 'multipart', 'stripes 6')
    writers.push(await putWriter, await mpWriter)

    // 100 multipart uploads with a part each, aborted by their clients; 5 abandoned.
    const ids = Array.from({ length: 105 }, (_, i) => i)
    for (let start = 0; start < ids.length; start += 8) {
      await Promise.all(
        ids.slice(start, start + 8).map(async (i) => {
          const upload = await objects.createMultipartUpload('leaks', `mp-${i}`)
          await objects.uploadPart('leaks', `mp-${i}`, upload.uploadId, 1, Readable.from([randomBytes(stripeSizeBytes / 2)]))
          if (i < 100) await objects.abortMultipartUpload('leaks', `mp-${i}`, upload.uploadId)
        }),
      )
    }
    await Promise.all(writers.map(sigkill))
    const stored = await storedChunks(store, nodeIds)
    const referenced = await referencedChunks(catalog)
    assert.ok(difference(stored, referenced).length > 100 * 6, `aborted and killed uploads left chunks behind before GC (${difference(stored, referenced).length})`)

    await waitUntil(
      async () => {
        const [now, refs] = await Promise.all([storedChunks(store, nodeIds), referencedChunks(catalog)])
        const sessions = await catalog.multipart.sessionStats({ idleMs: 1, countMax: 10 })
        return difference(now, refs).length === 0 && difference(refs, now).length === 0 && sessions.open === 0
      },
      120_000,
      async () => {
        const [now, refs] = await Promise.all([storedChunks(store, nodeIds), referencedChunks(catalog)])
        return `${difference(now, refs).length} unreferenced chunks on the nodes, ${difference(refs, now).length} referenced chunks missing, ${JSON.stringify(await catalog.multipart.sessionStats({ idleMs: 1, countMax: 1000 }))} sessions`
      },
      1_000,
    )
    const finalStored = await storedChunks(store, nodeIds)
    const finalReferenced = await referencedChunks(catalog)
    assert.equal(finalStored.size, finalReferenced.size, 'counted exactly: as many chunks on the nodes as chunk rows')
    assert.deepEqual(difference(finalStored, finalReferenced), [])
    assert.deepEqual(await catalog.deletions.stats(), { ready: 0, leased: 0, delayed: 0 })
    const listed = (await objects.listObjects('leaks')).objects.map((o) => o.key).sort()
    assert.deepEqual(listed, [...kept.keys()].sort(), 'only the committed objects exist')
    for (const [key, digest] of kept) {
      const read = await objects.getObject('leaks', key)
      assert.equal(sha(Buffer.concat(await read.body.toArray())), digest, `${key} reads back byte-identical`)
    }
  })
})
