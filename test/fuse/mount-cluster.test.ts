// The real `blobfs mount` executable over a real cluster: PostgreSQL catalog and 12
// `blobfs node` processes in 4 racks (test/support/cluster.ts), RS(8,4) so every
// stripe has a chunk on every node. What only real nodes can show: statfs from the
// catalog's node rows, a 1 GiB file through cp and back, renames that write no chunk
// on any node (node /metrics before and after), tools on a mixed tree, a daemon
// SIGKILLed during an upload, and EIO (never wrong bytes, never a hang) once more
// than M=4 nodes of a stripe are down.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { isBlobfsError } from '../../src/errors.ts'
import type { ObjectStore } from '../../src/objects/object-store.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'
import { isMounted, ok, requireFuse, sh, startClusterMount, type Mount } from './helpers/mount.ts'

const MiB = 1024 * 1024
const bucket = 'fuse-test'
/** Bounds for commands that move the 1 GiB file on a slow shared machine. */
const bigCommandMs = 600_000

interface NodeCounters {
  chunkPuts: number
  chunkDeletes: number
  appendedRecords: number
  chunks: number
}

/**
 * Sums the chunk-write counters of every running node's /metrics. The tests that
 * compare them delete nothing beforehand, so no chunk deletion (GC) can fall in the window.
 */
async function nodeCounters(cluster: TestCluster): Promise<NodeCounters> {
  const sum: NodeCounters = { chunkPuts: 0, chunkDeletes: 0, appendedRecords: 0, chunks: 0 }
  for (const node of cluster.nodes) {
    assert.ok(node.process, `node ${node.index} is running`)
    const text = await (await fetch(`${node.url}/metrics`)).text()
    for (const line of text.split('\n')) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1))
      if (/^blobfs_node_http_requests_total\{[^}]*method="PUT"[^}]*route="chunk"/.test(line)) sum.chunkPuts += value
      if (/^blobfs_node_http_requests_total\{[^}]*method="DELETE"[^}]*route="chunk"/.test(line)) sum.chunkDeletes += value
      if (line.startsWith('blobfs_node_appended_records_total ')) sum.appendedRecords += value
      if (line.startsWith('blobfs_node_chunks ')) sum.chunks += value
    }
  }
  return sum
}

async function sha256Of(objects: ObjectStore, key: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of (await objects.getObject(bucket, key)).body) hash.update(piece as Buffer)
  return hash.digest('hex')
}

/** Runs `jobs` with at most `width` in flight. */
async function inParallel(count: number, width: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await job(next++)
  }))
}

describe('blobfs mount over a real cluster (PostgreSQL + 12 blobfs node processes, RS(8,4))', { timeout: 1_500_000 }, () => {
  let cluster: TestCluster
  let objects: ObjectStore
  let root: string
  let mnt: string
  let work: string
  let mount: Mount | null = null

  before(async () => {
    await requireFuse()
    root = await mkdtemp(join(tmpdir(), 'blobfs-fuse-cluster-'))
    mnt = join(root, 'mnt')
    work = join(root, 'work')
    await Promise.all([mkdir(mnt), mkdir(work)])
    cluster = await startTestCluster({ nodes: 12, racks: 4 })
    objects = (await cluster.open({ hedgeAfterMs: 500, getTimeoutMs: 5000 })).objects
    await objects.createBucket(bucket, 'tester')
    mount = await startClusterMount(mnt, cluster.catalogUrl, [], bucket)
  })

  after(async () => {
    try {
      await mount?.stop('SIGTERM')
      if (mnt && (await isMounted(mnt))) await sh(`fusermount -uz '${mnt}'`)
    } finally {
      await cluster?.stop()
      if (root) await rm(root, { recursive: true, force: true })
    }
  })

  test('df (statfs) shows the capacity and usage of the nodes as the catalog has them', async () => {
    const { catalog } = await cluster.open()
    // The nodes' heartbeats update their rows; retry until a df falls between two equal catalog reads.
    for (let attempt = 0; ; attempt++) {
      const totals = async () => {
        const nodes = (await catalog.nodes.list()).filter((n) => n.state !== 'DOWN')
        return { capacity: nodes.reduce((s, n) => s + n.capacityBytes, 0), used: nodes.reduce((s, n) => s + n.usedBytes, 0), count: nodes.length }
      }
      const before = await totals()
      const [size, avail] = (await ok(`df -B1 --output=size,avail '${mnt}' | tail -1`)).trim().split(/\s+/).map(Number)
      const afterwards = await totals()
      if (JSON.stringify(before) !== JSON.stringify(afterwards) && attempt < 10) continue
      assert.equal(before.count, 12)
      assert.ok(before.capacity > 0)
      // statfs counts in blocks (4 KiB, grown until the count fits 32 bits): equal to the block.
      const blockBytes = Number((await ok(`stat -f -c '%S' '${mnt}'`)).trim())
      assert.equal(size, Math.floor(before.capacity / blockBytes) * blockBytes)
      assert.equal(avail, Math.floor(Math.max(0, before.capacity - before.used) / blockBytes) * blockBytes)
      return
    }
  })

  test('a 1 GiB file written by cp reads back byte-identical (sha256); its rename writes no chunk on any node', { timeout: 1_200_000 }, async () => {
    const local = join(work, 'one-gib')
    const [localSum] = (await ok(`head -c 1G /dev/urandom > '${local}' && sha256sum '${local}'`, { timeoutMs: 120_000 })).split(' ')
    await ok(`cp '${local}' '${mnt}/one-gib'`, { timeoutMs: bigCommandMs })
    const stored = await objects.headObject(bucket, 'one-gib')
    assert.equal(stored.sizeBytes, 1024 * MiB, 'committed whole when cp closed the file')
    await rm(local)
    // A fresh open: the kernel drops its page cache, and the daemon's 256 MiB block cache cannot hold it.
    const [mountSum] = (await ok(`sha256sum '${mnt}/one-gib'`, { timeoutMs: bigCommandMs })).split(' ')
    assert.equal(mountSum, localSum)

    const before = await nodeCounters(cluster)
    await ok(`mv '${mnt}/one-gib' '${mnt}/renamed-gib'`, { timeoutMs: 60_000 })
    assert.deepEqual(await nodeCounters(cluster), before, 'no chunk written, appended or deleted on any node')
    await assert.rejects(objects.headObject(bucket, 'one-gib'), (e) => isBlobfsError(e, 'NoSuchKey'))
    const renamed = await objects.headObject(bucket, 'renamed-gib')
    assert.equal(renamed.etag, stored.etag)
    assert.equal(renamed.sizeBytes, stored.sizeBytes)
    // The last MiB through the mount under the new name: the same bytes as the first read saw.
    const tail = (await ok(`tail -c ${MiB} '${mnt}/renamed-gib' | sha256sum`)).split(' ')[0]
    const direct = createHash('sha256')
    for await (const piece of (await objects.getObject(bucket, 'renamed-gib', { range: { start: 1023 * MiB, end: 1024 * MiB - 1 } })).body) direct.update(piece as Buffer)
    assert.equal(tail, direct.digest('hex'))
  })

  test('rename of a directory with 10,000 entries: atomic, and no chunk written on any node', { timeout: 600_000 }, async () => {
    // 9,950 small entries (kept inline in the catalog) and 50 striped ones (a chunk on every node).
    const striped = new Map<number, Buffer>()
    await inParallel(10_000, 48, async (i) => {
      const body = i % 200 === 0 ? randomBytes(64 * 1024 + i) : Buffer.from(`entry ${i}\n`)
      if (i % 200 === 0) striped.set(i, body)
      await objects.putObject(bucket, `many/e${i}`, Readable.from([body]))
    })
    assert.equal((await ok(`ls '${mnt}/many' | wc -l`, { timeoutMs: 120_000 })).trim(), '10000')
    const before = await nodeCounters(cluster)
    await ok(`mv '${mnt}/many' '${mnt}/moved'`, { timeoutMs: 120_000 })
    assert.deepEqual(await nodeCounters(cluster), before, 'no chunk written, appended or deleted on any node')
    assert.equal((await sh(`ls '${mnt}/many'`)).code, 2, 'the old directory is gone')
    assert.equal((await ok(`ls '${mnt}/moved' | wc -l`, { timeoutMs: 120_000 })).trim(), '10000')
    const listed = await objects.listObjects(bucket, { prefix: 'many/', maxKeys: 1 })
    assert.equal(listed.objects.length, 0, 'no key left under the old name')
    for (const [i, body] of [...striped].slice(0, 5)) {
      const sum = (await ok(`sha256sum '${mnt}/moved/e${i}'`)).split(' ')[0]
      assert.equal(sum, createHash('sha256').update(body).digest('hex'), `moved/e${i}`)
    }
    assert.equal(await ok(`cat '${mnt}/moved/e9999'`), 'entry 9999\n')
  })

  test('cp -r, rsync -a (twice) and tar round trips of a mixed tree; the object layer holds the same bytes', { timeout: 600_000 }, async () => {
    const src = join(work, 'src')
    await ok(
      [
        'set -e',
        `mkdir -p '${src}' && cd '${src}'`,
        ': > empty',
        'echo tiny > tiny.txt',
        'head -c 40000000 /dev/urandom > large.bin',
        'mkdir -p "deep/a/b/c/d/e" "with spaces" "ünïcödé 日本語" empty-dir',
        'echo bottom > deep/a/b/c/d/e/leaf',
        'echo spaced > "with spaces/a file.txt"',
        'echo unicode > "ünïcödé 日本語/fïlé ✓.txt"',
        'for i in $(seq 1 30); do head -c $((i * 997)) /dev/urandom > "deep/a/f-$i"; done',
        'chmod 600 tiny.txt',
        'touch -d "2001-02-03 04:05:06" tiny.txt',
      ].join('\n'),
    )
    await ok(`cp -r '${src}' '${mnt}/cp' && diff -r '${src}' '${mnt}/cp'`, { timeoutMs: 300_000 })
    const [localSum] = (await ok(`sha256sum '${src}/large.bin'`)).split(' ')
    assert.equal(await sha256Of(objects, 'cp/large.bin'), localSum, 'written through the mount, read through the object layer')

    await ok(`rsync -a '${src}/' '${mnt}/rsync/'`, { timeoutMs: 300_000 })
    const second = await ok(`rsync -a --stats '${src}/' '${mnt}/rsync/'`, { timeoutMs: 300_000 })
    assert.match(second, /Number of regular files transferred: 0\n/, second)
    const checksum = await ok(`rsync -a --checksum --dry-run --itemize-changes '${src}/' '${mnt}/rsync/'`, { timeoutMs: 300_000 })
    assert.deepEqual(checksum.split('\n').filter((line) => line.startsWith('>f')), [], checksum)

    await ok(`tar -C '${work}' -cf '${work}/in.tar' src && mkdir '${mnt}/tar' && tar -C '${mnt}/tar' -xf '${work}/in.tar'`, { timeoutMs: 300_000 })
    await ok(`tar -C '${mnt}/tar' -cf '${work}/out.tar' src`, { timeoutMs: 300_000 })
    const listing = async (tarball: string) => (await ok(`tar -tvf '${tarball}' --full-time | grep -v '^d' | sort`)).trim()
    assert.equal(await listing(`${work}/out.tar`), await listing(`${work}/in.tar`))
    await ok(`mkdir '${work}/x' && tar -C '${work}/x' -xf '${work}/out.tar' && diff -r '${src}' '${work}/x/src'`)
    await ok(`rm -r '${mnt}/cp' '${mnt}/rsync' '${mnt}/tar'`, { timeoutMs: 120_000 })
  })

  test('the daemon SIGKILLed during an upload: no partial object is visible; a remount works', { timeout: 600_000 }, async () => {
    await ok(`echo committed > '${mnt}/committed.txt'`)
    const local = join(work, 'victim')
    await writeFile(local, randomBytes(256 * MiB))
    const base = (await nodeCounters(cluster)).chunkPuts
    // cp closes the file at the end: that close uploads it (chunks go to the nodes) and commits last.
    const copy = sh(`cp '${local}' '${mnt}/victim'`, { timeoutMs: bigCommandMs })
    let seen = base
    for (let i = 0; i < 6000 && seen === base; i++) {
      await new Promise((r) => setTimeout(r, 50))
      seen = (await nodeCounters(cluster)).chunkPuts
    }
    assert.ok(seen > base, 'the upload started')
    await mount!.stop('SIGKILL')
    const result = await copy
    assert.notEqual(result.code, 0, 'cp reports the failed close')
    await assert.rejects(objects.headObject(bucket, 'victim'), (e) => isBlobfsError(e, 'NoSuchKey'), 'nothing committed')
    assert.equal(await isMounted(mnt), true, 'a killed daemon leaves its mount behind')
    mount = await startClusterMount(mnt, cluster.catalogUrl, [], bucket)
    assert.equal((await sh(`ls '${mnt}/victim'`)).code, 2, 'no partial file in the mount')
    assert.equal(await ok(`cat '${mnt}/committed.txt'`), 'committed\n')
    await rm(local)
  })

  test('reads with 4 of 12 nodes down return the right bytes; with 5 down they fail with EIO, never wrong bytes, never a hang', { timeout: 600_000 }, async () => {
    // Written through the object layer, so the mount has cached none of it.
    const bodies = new Map<string, Buffer>()
    for (const name of ['four-down', 'five-down']) {
      const body = randomBytes(40 * MiB + 123)
      bodies.set(name, body)
      await objects.putObject(bucket, name, Readable.from([body]))
    }
    await ok(`echo small > '${mnt}/inline.txt'`) // kept in the catalog row: readable whatever the nodes
    const victims = [0, 5, 6, 11, 2].map((i) => cluster.nodes[i]!)
    try {
      await Promise.all(victims.slice(0, 4).map((n) => n.kill('SIGKILL')))
      const out = join(work, 'four-down.out')
      await ok(`cp '${mnt}/four-down' '${out}'`, { timeoutMs: 300_000 })
      assert.ok((await readFile(out)).equals(bodies.get('four-down')!), 'every byte right with 4 nodes down')
      await rm(out)

      await victims[4]!.kill('SIGKILL')
      const partial = join(work, 'five-down.out')
      const read = await sh(`dd if='${mnt}/five-down' of='${partial}' bs=1M`, { timeoutMs: 300_000 })
      assert.notEqual(read.code, 0, 'the read fails')
      assert.match(read.stderr, /Input\/output error/)
      const got = await readFile(partial)
      assert.ok(bodies.get('five-down')!.subarray(0, got.length).equals(got), `the ${got.length} bytes delivered before the error are right`)
      assert.ok(got.length < bodies.get('five-down')!.length)
      // The namespace lives in the catalog: listing, stat and inline files still work.
      assert.match(await ok(`ls -l '${mnt}'`), /five-down/)
      assert.equal(await ok(`cat '${mnt}/inline.txt'`), 'small\n')
    } finally {
      await Promise.all(victims.map((n) => (n.process ? null : n.start())))
    }
  })
})
