// Data-path semantics of src/fuse/fs.ts against the in-memory object layer (no
// mount): write spooling (memory, then disk), opening for write with and without
// O_TRUNC, truncate, fsync, the block cache and readahead, attribute and directory
// caches with their TTLs, close-to-open revalidation, concurrent writers.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { BlobFs, fsConfig } from '../../src/fuse/fs.ts'
import { Spool, SpoolBudget } from '../../src/fuse/spool.ts'
import { BlobfsError } from '../../src/errors.ts'
import { msToNs, nsToMs } from '../../src/objects/object-store.ts'
import type { PosixAttributes } from '../../src/objects/types.ts'
import { errnoOf, harness, list, put, readFile, silent, writeFile } from './helpers/fs-harness.ts'
import { MemoryObjectLayer } from './helpers/memory-objects.ts'

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC } = constants
const KiB = 1024
const MiB = 1024 * KiB

test('a spool past its memory bound moves to disk; memory stays bounded and the bytes survive', async () => {
  const { fs, objects } = await harness({ spoolMemoryBytesPerFile: 64 * KiB, spoolMemoryBytesTotal: 128 * KiB })
  const data = randomBytes(3 * MiB + 123)
  const fh = await fs.create('/big', 0o644)
  let peak = 0
  for (let at = 0; at < data.length; at += 128 * KiB) {
    await fs.write(fh, data.subarray(at, at + 128 * KiB), at)
    peak = Math.max(peak, fs.gauges.spoolMemoryBytes)
  }
  assert.ok(peak <= 64 * KiB, `spool memory peaked at ${peak} bytes`)
  assert.equal(fs.gauges.spoolMemoryBytes, 0, 'the file spool holds no memory once on disk')
  assert.deepEqual(await fs.read(fh, 1000, 2 * MiB), data.subarray(2 * MiB, 2 * MiB + 1000), 'reads of an open file come from its spool')
  await fs.release(fh)
  assert.ok(objects.peek('b', 'big')!.equals(data))
})

test('all spools together share one memory budget: the file that would pass it goes to disk', async () => {
  const { fs, objects } = await harness({ spoolMemoryBytesPerFile: 96 * KiB, spoolMemoryBytesTotal: 128 * KiB })
  const a = await fs.create('/a', 0o644)
  const b = await fs.create('/b', 0o644)
  const dataA = randomBytes(90 * KiB)
  const dataB = randomBytes(90 * KiB)
  await fs.write(a, dataA, 0)
  await fs.write(b, dataB, 0)
  assert.ok(fs.gauges.spoolMemoryBytes <= 128 * KiB)
  await fs.release(a)
  await fs.release(b)
  assert.ok(objects.peek('b', 'a')!.equals(dataA))
  assert.ok(objects.peek('b', 'b')!.equals(dataB))
  assert.equal(fs.gauges.spoolMemoryBytes, 0)
})

test('a small file takes the memory pages it needs from the budget, growing by doubling; the bytes and the holes read back', async () => {
  const budget = new SpoolBudget(1024 * KiB)
  const spool = new Spool({ budget, memoryBytesMax: 256 * KiB, dir: tmpdir() })
  try {
    await spool.write(Buffer.alloc(3071, 1), 0) // tar's first write of a 3 KiB file
    assert.equal(budget.memoryBytesUsed, 4 * KiB)
    await spool.write(Buffer.alloc(1426, 2), 3071)
    assert.equal(budget.memoryBytesUsed, 8 * KiB)
    await spool.write(Buffer.alloc(10, 3), 20 * KiB) // a hole up to here
    assert.equal(budget.memoryBytesUsed, 24 * KiB)
    const back = await spool.read(0, spool.sizeBytes)
    assert.ok(back.equals(Buffer.concat([Buffer.alloc(3071, 1), Buffer.alloc(1426, 2), Buffer.alloc(20 * KiB - 4497), Buffer.alloc(10, 3)])))
    assert.equal(spool.onDisk, false)
  } finally {
    await spool.close()
  }
  assert.equal(budget.memoryBytesUsed, 0)
})

test('a write the spool disk has no room for: EIO from then on through that open file, and nothing of it is committed', async () => {
  // The spool lives on a tmpfs of 64 KiB: a 128 KiB write gets part of its bytes in, then ENOSPC.
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-spool-full-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir])
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`this test gives the spool a full tmpfs; it needs root (mount -t tmpfs): ${(error as Error).message}`)
  }
  try {
    const { fs, objects } = await harness({ spoolMemoryBytesPerFile: 0, spoolMemoryBytesTotal: 0, spoolDir: dir })
    await writeFile(fs, '/kept', 'the stored version')
    const fh = await fs.open('/kept', O_WRONLY)
    const reader = await fs.open('/kept', O_RDONLY)
    await fs.write(fh, Buffer.from('THE'), 0) // acknowledged, not yet committed
    assert.equal(await errnoOf(fs.write(fh, Buffer.alloc(128 * KiB, 0x61), 8 * KiB)), 'ENOSPC')
    // The spool now holds part of a write that failed: nobody may see it or commit it.
    assert.equal(await errnoOf(fs.read(reader, 100, 0)), 'EIO')
    assert.equal(await errnoOf(fs.write(fh, Buffer.from('more'), 3)), 'EIO')
    assert.equal(await errnoOf(fs.fsync(fh)), 'EIO')
    assert.equal(await errnoOf(fs.flush(fh)), 'EIO')
    await fs.release(fh).catch(() => {})
    await fs.release(reader).catch(() => {})
    assert.equal(objects.peek('b', 'kept')!.toString(), 'the stored version', 'the stored version stays, whole')
    assert.equal((await readFile(fs, '/kept')).toString(), 'the stored version')
    // A new open starts afresh, and the spool disk has its room back.
    await writeFile(fs, '/kept', 'written again')
    assert.equal(objects.peek('b', 'kept')!.toString(), 'written again')

    // A new file whose first write fails: close says so (it would skip an empty new file's
    // upload), another open of it while that descriptor lives gets EIO, even with O_TRUNC,
    // and it can be renamed and removed (libfuse renames an open file to .fuse_hiddenNNNN
    // at unlink) though nothing of it is stored.
    const fresh = await fs.create('/fresh', 0o644)
    assert.equal(await errnoOf(fs.write(fresh, Buffer.alloc(128 * KiB, 0x62), 0)), 'ENOSPC')
    assert.equal(await errnoOf(fs.open('/fresh', O_RDWR | O_TRUNC)), 'EIO')
    assert.equal(await errnoOf(fs.rename('/fresh', '/kept')), 'EIO', 'nothing stored to replace /kept with')
    assert.equal(await errnoOf(fs.rename('/fresh', '/.fuse_hidden0001')), 'OK')
    assert.equal(await errnoOf(fs.flush(fresh)), 'EIO')
    await fs.release(fresh).catch(() => {})
    assert.equal(await errnoOf(fs.unlink('/.fuse_hidden0001')), 'ENOENT', 'gone with its last descriptor, never stored')
    assert.equal(objects.peek('b', '.fuse_hidden0001'), null)
    assert.equal(objects.peek('b', 'kept')!.toString(), 'written again')
    assert.deepEqual((await list(fs, '/')).sort(), ['kept'])
  } finally {
    execFileSync('umount', ['-l', dir])
    await rm(dir, { recursive: true, force: true })
  }
})

test('a spool on disk is written and read without the thread pool: FUSE writes never queue behind other file I/O', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-spool-test-'))
  const spool = new Spool({ budget: new SpoolBudget(0), memoryBytesMax: 0, dir })
  const fifos: string[] = []
  const blocked: Promise<unknown>[] = []
  const writers: number[] = []
  try {
    await spool.write(Buffer.from('on disk from the start'), 0)
    assert.equal(spool.onDisk, true)
    // Every thread of libuv's pool is stuck in open() of a FIFO nobody writes to.
    for (let i = 0; i < 64; i++) {
      fifos.push(join(dir, `fifo-${i}`))
      execFileSync('mkfifo', [fifos[i]!])
      blocked.push(open(fifos[i]!, 'r').then((handle) => handle.close()))
    }
    const settledFirst = <T>(promise: Promise<T>): Promise<T | 'still waiting'> =>
      Promise.race([promise, new Promise<'still waiting'>((resolve) => setImmediate(() => setImmediate(() => resolve('still waiting'))))])
    assert.equal(await settledFirst(spool.write(Buffer.from('more'), 22).then(() => 'written')), 'written')
    assert.equal((await settledFirst(spool.read(0, 100))).toString(), 'on disk from the start' + 'more')
  } finally {
    // O_RDWR on a FIFO never blocks on Linux and lets every reader's open() through.
    for (const fifo of fifos) writers.push(openSync(fifo, constants.O_RDWR))
    await Promise.all(blocked)
    for (const fd of writers) closeSync(fd)
    await spool.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('sparse writes read back zeros in the holes', async () => {
  const { fs, objects } = await harness({ spoolMemoryBytesPerFile: 64 * KiB, spoolMemoryBytesTotal: 64 * KiB })
  const fh = await fs.create('/sparse', 0o644)
  await fs.write(fh, Buffer.from('end'), 200 * KiB)
  await fs.write(fh, Buffer.from('start'), 0)
  await fs.release(fh)
  const stored = objects.peek('b', 'sparse')!
  assert.equal(stored.length, 200 * KiB + 3)
  assert.equal(stored.subarray(0, 5).toString(), 'start')
  assert.ok(stored.subarray(5, 200 * KiB).equals(Buffer.alloc(200 * KiB - 5)))
})

test('opening an existing file for writing without O_TRUNC starts from its contents', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'f', 'hello world')
  const fh = await fs.open('/f', O_RDWR)
  await fs.write(fh, Buffer.from('WORLD'), 6)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'f')!.toString(), 'hello WORLD')
})

test('O_TRUNC, or a truncate to zero first, never downloads the old bytes', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'f', Buffer.alloc(5 * MiB, 1))
  objects.resetCounters()
  const fh = await fs.open('/f', O_WRONLY | O_TRUNC)
  await fs.write(fh, Buffer.from('new'), 0)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'f')!.toString(), 'new')
  await put(objects, 'g', Buffer.alloc(5 * MiB, 1))
  const gh = await fs.open('/g', O_WRONLY)
  await fs.ftruncate(gh, 0)
  await fs.write(gh, Buffer.from('gg'), 0)
  await fs.release(gh)
  assert.equal(objects.peek('b', 'g')!.toString(), 'gg')
  assert.equal(objects.counters.calls.getObject, 0)
  assert.equal(objects.counters.getBytes, 0)
})

test('a file opened for writing but not changed is not uploaded again', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', 'same')
  const puts = objects.counters.calls.putObject
  const fh = await fs.open('/f', O_RDWR)
  assert.equal((await fs.read(fh, 10, 0)).toString(), 'same')
  await fs.flush(fh)
  await fs.release(fh)
  assert.equal(objects.counters.calls.putObject, puts)
})

test('truncate shrinks and extends with zeros, with or without an open handle', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', '0123456789')
  await fs.truncate('/f', 4)
  assert.equal(objects.peek('b', 'f')!.toString(), '0123')
  await fs.truncate('/f', 6)
  assert.deepEqual(objects.peek('b', 'f'), Buffer.from('0123\0\0'))
  assert.equal((await fs.getattr('/f')).sizeBytes, 6)
  const fh = await fs.open('/f', O_RDWR)
  await fs.ftruncate(fh, 2)
  assert.equal((await fs.getattr('/f')).sizeBytes, 2)
  await fs.truncate('/f', 3) // by path while a handle is open: goes to the same spool
  await fs.release(fh)
  assert.deepEqual(objects.peek('b', 'f'), Buffer.from('01\0'))
})

test('two descriptors on one path share one spool: a reader sees a writer at once, before close', async () => {
  const { fs, objects } = await harness()
  const writer = await fs.create('/shared', 0o644)
  await fs.write(writer, Buffer.from('first'), 0)
  const reader = await fs.open('/shared', O_RDONLY)
  assert.equal((await fs.read(reader, 100, 0)).toString(), 'first')
  await fs.write(writer, Buffer.from(' and more'), 5)
  assert.equal((await fs.read(reader, 100, 0)).toString(), 'first and more')
  assert.equal(objects.peek('b', 'shared'), null, 'nothing stored yet')
  await fs.release(writer)
  assert.equal((await fs.read(reader, 100, 0)).toString(), 'first and more')
  await fs.release(reader)
  assert.equal(objects.peek('b', 'shared')!.toString(), 'first and more')
})

test('fsync returns only once the object is committed', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/f', 0o644)
  await fs.write(fh, Buffer.from('durable'), 0)
  assert.equal(objects.peek('b', 'f'), null)
  await fs.fsync(fh)
  assert.equal(objects.peek('b', 'f')!.toString(), 'durable')
  await fs.write(fh, Buffer.from('!'), 7)
  await fs.fsync(fh)
  assert.equal(objects.peek('b', 'f')!.toString(), 'durable!')
  await fs.release(fh)
})

test('attributes set while a file is being written travel with its upload', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/f', 0o600)
  await fs.write(fh, Buffer.from('x'), 0)
  await fs.chmod('/f', 0o755)
  await fs.utimens('/f', 0, 1_000_000_000_000)
  assert.equal(objects.counters.calls.updateAttributes, 0)
  await fs.release(fh)
  const info = await objects.headObject('b', 'f')
  assert.equal(info.posix!.mode & 0o7777, 0o755)
  assert.equal(info.posix!.mtimeMs, 1_000_000_000_000)
})

test('concurrent writers on two mounts: the last close wins', async () => {
  const first = await harness()
  const second = await harness({}, first.objects)
  await writeFile(first.fs, '/f', 'original')
  const a = await first.fs.open('/f', O_WRONLY | O_TRUNC)
  const b = await second.fs.open('/f', O_WRONLY | O_TRUNC)
  await first.fs.write(a, Buffer.from('from A'), 0)
  await second.fs.write(b, Buffer.from('from B'), 0)
  await second.fs.release(b)
  await first.fs.release(a)
  assert.equal(first.objects.peek('b', 'f')!.toString(), 'from A')
})

test('opens of one file that look it up at the same time share one open file: no write is lost to a second spool', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'f', Buffer.from('xxxx'))
  // Both opens are in their lookup before either has made the open file.
  const [a, b, reader] = await Promise.all([fs.open('/f', O_WRONLY), fs.open('/f', O_RDWR), fs.open('/f', O_RDONLY)])
  assert.equal(fs.gauges.openFiles, 1)
  await fs.write(a, Buffer.from('A'), 0)
  await fs.write(b, Buffer.from('B'), 1)
  assert.equal((await fs.read(reader, 4, 0)).toString(), 'ABxx', 'the reader that opened with them reads the open file')
  await fs.release(a)
  await fs.release(b)
  await fs.release(reader)
  assert.equal(objects.peek('b', 'f')!.toString(), 'ABxx')
})

test('block cache: a second read of the same range does not fetch again; a new version does', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, readaheadBytes: 0 })
  const data = randomBytes(300 * KiB)
  await put(objects, 'f', data)
  objects.resetCounters()
  const fh = await fs.open('/f', O_RDONLY)
  assert.deepEqual(await fs.read(fh, 4 * KiB, 100 * KiB), data.subarray(100 * KiB, 104 * KiB))
  assert.deepEqual(await fs.read(fh, 4 * KiB, 70 * KiB), data.subarray(70 * KiB, 74 * KiB))
  assert.equal(objects.counters.calls.getObject, 1, 'one block, fetched once')
  assert.equal(objects.counters.getBytes, 64 * KiB)
  await fs.release(fh)
  const changed = randomBytes(300 * KiB)
  await put(objects, 'f', changed)
  const again = await fs.open('/f', O_RDONLY)
  assert.deepEqual(await fs.read(again, 4 * KiB, 100 * KiB), changed.subarray(100 * KiB, 104 * KiB))
  assert.equal(objects.counters.calls.getObject, 2)
  await fs.release(again)
})

test('the block cache is bounded in bytes', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, blockCacheBytes: 256 * KiB, readaheadBytes: 0 })
  await put(objects, 'f', randomBytes(2 * MiB))
  const fh = await fs.open('/f', O_RDONLY)
  for (let at = 0; at < 2 * MiB; at += 64 * KiB) await fs.read(fh, 64 * KiB, at)
  assert.ok(fs.gauges.blockCacheBytes <= 256 * KiB, `${fs.gauges.blockCacheBytes}`)
  await fs.release(fh)
})

test('blocks of a whole fetched buffer are kept as views of it, uncopied, and leave the cache together', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, blockCacheBytes: 2 * MiB, readaheadBytes: 0 })
  // 11 objects of 3 blocks: 33 blocks for a cache of 32, so one object loses one block to eviction.
  const files = Array.from({ length: 11 }, (_, i) => ({ path: `/f${i}`, data: randomBytes(192 * KiB) }))
  for (const { path, data } of files) await put(objects, path.slice(1), data)
  for (const { path, data } of files) {
    const fh = await fs.open(path, O_RDONLY)
    // One read of the whole object: one fetch whose piece is the layer's whole buffer.
    assert.ok((await fs.read(fh, 192 * KiB, 0)).equals(data))
    await fs.release(fh)
  }
  assert.equal(fs.reader.stats.copiedBytes, 0)
  assert.equal(fs.reader.stats.viewedBytes, 11 * 192 * KiB)
  assert.ok(fs.gauges.blockCacheBytes <= 2 * MiB)
  // Evicting a view took its siblings with it: no buffer is held by part of its blocks.
  assert.equal(fs.reader.retainedBytes, fs.gauges.blockCacheBytes)
  assert.equal(fs.gauges.blockCacheBytes, 10 * 192 * KiB)
  objects.resetCounters()
  for (const { path, data } of files) {
    const fh = await fs.open(path, O_RDONLY)
    assert.ok((await fs.read(fh, 192 * KiB, 0)).equals(data))
    await fs.release(fh)
  }
})

test('blocks are copied out of buffers larger than the fetch, not in whole blocks, or over an eighth of the cache', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, blockCacheBytes: 1 * MiB, readaheadBytes: 0 })
  const small = randomBytes(128 * KiB)
  const large = randomBytes(256 * KiB)
  // A tail stripe's chunk: one buffer that ends short of a block (under an eighth of this cache).
  const odd = randomBytes(3 * 64 * KiB - 1)
  const tail = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, blockCacheBytes: 2 * MiB, readaheadBytes: 0 })
  await put(tail.objects, 'odd', odd)
  const oddHandle = await tail.fs.open('/odd', O_RDONLY)
  assert.ok((await tail.fs.read(oddHandle, odd.length, 0)).equals(odd))
  await tail.fs.release(oddHandle)
  assert.equal(tail.fs.reader.stats.copiedBytes, odd.length)
  assert.equal(tail.fs.reader.retainedBytes, tail.fs.gauges.blockCacheBytes, 'views of it would hold bytes the cache does not count')
  await put(objects, 'small', small)
  await put(objects, 'large', large)
  let fh = await fs.open('/small', O_RDONLY)
  assert.ok((await fs.read(fh, 64 * KiB, 0)).equals(small.subarray(0, 64 * KiB)), 'half of the buffer fetched')
  await fs.release(fh)
  fh = await fs.open('/large', O_RDONLY)
  assert.ok((await fs.read(fh, 128 * KiB, 0)).equals(large.subarray(0, 128 * KiB)))
  assert.ok((await fs.read(fh, 128 * KiB, 128 * KiB)).equals(large.subarray(128 * KiB)))
  await fs.release(fh)
  assert.equal(fs.reader.stats.viewedBytes, 0)
  assert.equal(fs.reader.stats.copiedBytes, 64 * KiB + 256 * KiB)
  assert.equal(fs.reader.retainedBytes, fs.gauges.blockCacheBytes)
})

test('sequential readers get whole stripes ahead; random readers fetch single blocks', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 512 * KiB, readaheadBytes: 512 * KiB })
  const data = randomBytes(4 * 512 * KiB + 1000)
  await put(objects, 'seq', data)
  objects.resetCounters()
  const got = await readFile(fs, '/seq', 128 * KiB)
  assert.ok(got.equals(data))
  const reads = Math.ceil(data.length / (128 * KiB))
  assert.ok(objects.counters.calls.getObject <= 7, `${objects.counters.calls.getObject} range reads for ${reads} reads`)
  assert.equal(objects.counters.getBytes, data.length, 'every byte fetched exactly once')
  assert.ok(fs.reader.stats.readaheadFetches >= 3)
  // Each read looks only at what the window adds: every block is checked once in all, not once per read.
  const blocks = Math.ceil(data.length / (64 * KiB))
  assert.ok(fs.reader.stats.readaheadBlocksChecked <= blocks, `${fs.reader.stats.readaheadBlocksChecked} block checks for ${blocks} blocks`)

  await put(objects, 'rand', data)
  objects.resetCounters()
  const fh = await fs.open('/rand', O_RDONLY)
  for (const at of [1_500_000, 300_000, 900_000]) assert.deepEqual(await fs.read(fh, 4 * KiB, at), data.subarray(at, at + 4 * KiB))
  assert.equal(objects.counters.calls.getObject, 3)
  assert.equal(objects.counters.getBytes, 3 * 64 * KiB)
  await fs.release(fh)
})

test('a handle reading a version replaced behind its back gets ESTALE, never mixed bytes', async () => {
  const { fs, objects } = await harness({ blockSizeBytes: 64 * KiB, stripeSizeBytes: 256 * KiB, readaheadBytes: 0 })
  await put(objects, 'f', Buffer.alloc(200 * KiB, 1))
  const fh = await fs.open('/f', O_RDONLY)
  await fs.read(fh, 10, 0)
  await put(objects, 'f', Buffer.alloc(200 * KiB, 2))
  assert.equal(await errnoOf(fs.read(fh, 10, 150 * KiB)), 'ESTALE')
  await fs.release(fh)
})

test('attribute cache: a change made elsewhere shows after the TTL, not before', async () => {
  const { fs, objects, advance } = await harness({ attrTtlMs: 1000, dirTtlMs: 1000 })
  assert.equal(await errnoOf(fs.getattr('/late')), 'ENOENT')
  assert.deepEqual(await list(fs, '/'), [])
  await put(objects, 'late', 'arrived')
  advance(999)
  assert.equal(await errnoOf(fs.getattr('/late')), 'ENOENT', 'negative entry still cached')
  assert.deepEqual(await list(fs, '/'), [], 'listing still cached')
  advance(2)
  assert.equal((await fs.getattr('/late')).sizeBytes, 7)
  assert.deepEqual(await list(fs, '/'), ['late'])
})

test('the daemon\'s own changes invalidate its caches at once', async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  assert.deepEqual(await list(fs, '/'), [])
  assert.equal(await errnoOf(fs.getattr('/f')), 'ENOENT')
  await writeFile(fs, '/f', 'v1')
  assert.deepEqual(await list(fs, '/'), ['f'])
  assert.equal((await fs.getattr('/f')).sizeBytes, 2)
  await writeFile(fs, '/f', 'version 2')
  assert.equal((await fs.getattr('/f')).sizeBytes, 9)
  await fs.rename('/f', '/g')
  assert.deepEqual(await list(fs, '/'), ['g'])
  await fs.unlink('/g')
  assert.deepEqual(await list(fs, '/'), [])
  assert.equal(objects.keys('b').length, 0)
})

test('open revalidates: close-to-open consistency with other writers', async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  await put(objects, 'f', 'short')
  assert.equal((await fs.getattr('/f')).sizeBytes, 5)
  await put(objects, 'f', 'a longer version')
  assert.equal((await fs.getattr('/f')).sizeBytes, 5, 'within the TTL the cache answers')
  assert.equal((await readFile(fs, '/f')).toString(), 'a longer version', 'but open asks again')
  assert.equal((await fs.getattr('/f')).sizeBytes, 16)
})

test('direct I/O only for an open that finds a size the kernel does not hold (changed elsewhere); own writes, truncates and renames keep the page cache', async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  const opened = async (path: string, flags = constants.O_RDONLY): Promise<boolean> => {
    const fh = await fs.open(path, flags)
    const direct = fs.directIo(fh)
    await fs.release(fh)
    return direct
  }
  await put(objects, 'f', 'short')
  await fs.getattr('/f') // what the kernel now holds: 5 bytes
  assert.equal(await opened('/f'), false)
  await put(objects, 'f', 'a longer version')
  assert.equal(await opened('/f'), true, 'the kernel still holds 5 bytes: reads must not stop there')
  assert.equal(await opened('/f', constants.O_WRONLY | constants.O_TRUNC), false, 'O_TRUNC: the kernel sets the size itself')
  await fs.getattr('/f')
  assert.equal(await opened('/f'), false, 'the kernel asked again')
  // This mount's own writes, truncates and renames: the kernel knows the sizes they make.
  await writeFile(fs, '/g', 'written here')
  assert.equal(await opened('/g'), false)
  const fh = await fs.open('/g', constants.O_WRONLY)
  await fs.ftruncate(fh, 3)
  await fs.release(fh)
  assert.equal(await opened('/g'), false)
  await fs.rename('/g', '/h')
  assert.equal(await opened('/h'), false)
  await fs.mkdir('/d', 0o755)
  await writeFile(fs, '/d/in', 'inside')
  await fs.rename('/d', '/e')
  assert.equal(await opened('/e/in'), false)
  // Nothing known of a path (never asked by the kernel here): direct I/O, to be safe.
  await put(objects, 'never-seen', 'x')
  assert.equal(await opened('/never-seen'), true)
})

/** The in-memory object layer, keeping times as the real one does: in nanoseconds (src/objects/object-store.ts). */
class NanosecondTimes extends MemoryObjectLayer {
  private static stored(posix: PosixAttributes): PosixAttributes {
    return { ...posix, mtimeMs: nsToMs(msToNs(posix.mtimeMs)), ctimeMs: nsToMs(msToNs(posix.ctimeMs)) }
  }

  override putObject(...[bucket, key, body, options]: Parameters<MemoryObjectLayer['putObject']>): ReturnType<MemoryObjectLayer['putObject']> {
    return super.putObject(bucket, key, body, options?.posix ? { ...options, posix: NanosecondTimes.stored(options.posix) } : options)
  }

  override updateAttributes(bucket: string, key: string, posix: PosixAttributes): ReturnType<MemoryObjectLayer['updateAttributes']> {
    return super.updateAttributes(bucket, key, NanosecondTimes.stored(posix))
  }
}

test('keep_cache only for an open that finds the version whose pages the kernel holds: not after a change elsewhere, or while another version is open', async () => {
  const { fs, objects, advance } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  const kept = async (path: string): Promise<boolean> => {
    const fh = await fs.open(path, O_RDONLY)
    const keep = fs.keepCache(fh)
    await fs.release(fh)
    return keep
  }
  await put(objects, 'f', 'version one')
  await fs.getattr('/f') // the kernel's lookup
  assert.equal(await kept('/f'), false, 'the first open: the kernel holds nothing of it yet')
  assert.equal(await kept('/f'), true, 'the same version again: the kernel keeps the pages it read')
  assert.equal(await kept('/f'), true)
  // Replaced by another writer with the same size (no direct I/O): its pages must go.
  await put(objects, 'f', 'version two')
  assert.equal(await kept('/f'), false)
  assert.equal((await readFile(fs, '/f')).toString(), 'version two')
  assert.equal(await kept('/f'), true)
  // Written through this mount, with no other handle on it: the kernel's pages are what was committed.
  await writeFile(fs, '/f', 'version six')
  assert.equal(await kept('/f'), true)
  // Opened for writing here, even unchanged: its spool is no stored version.
  await fs.release(await fs.open('/f', O_RDWR))
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true)
  // A reader still on the old version while a new one is opened: neither version is kept after.
  const old = await fs.open('/f', O_RDONLY)
  await put(objects, 'f', 'version ten')
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), false, 'the old reader may still fill pages with its version')
  await fs.release(old)
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true)
  // Truncate and unlink forget what the kernel held; rename moves it with the name (the
  // kernel's inode and the object's id go along).
  await fs.truncate('/f', 4)
  await fs.getattr('/f') // libfuse answers a truncate with the attributes after it
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true)
  await fs.rename('/f', '/g')
  assert.equal(await kept('/g'), true)
  await fs.unlink('/g')
  await put(objects, 'g', 'vers')
  advance(60_000) // the daemon's negative entry for /g expires
  await fs.getattr('/g')
  assert.equal(await kept('/g'), false)
  // An open with direct I/O (a size the kernel does not hold) reads past the page cache: not kept after it.
  await put(objects, 'g', 'a longer version')
  assert.equal(fs.directIo(await fs.open('/g', O_RDONLY)), true)
  await fs.getattr('/g')
  assert.equal(await kept('/g'), false)
  assert.equal(await kept('/g'), true)
})

test("this mount's own commit keeps the kernel's pages only when nothing but the spool went into them: not with another handle on the path, direct I/O, another open while written, or a later change", async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  const kept = async (path: string): Promise<boolean> => {
    const fh = await fs.open(path, O_RDONLY)
    const keep = fs.keepCache(fh)
    await fs.release(fh)
    return keep
  }
  /** Opens with `flags`, runs `change` on the handle, closes (flush, release). */
  const written = async (path: string, flags: number, change: (fh: number) => Promise<unknown>): Promise<void> => {
    const fh = await fs.open(path, flags)
    await change(fh)
    await fs.flush(fh)
    await fs.release(fh)
  }
  const content = async (path: string): Promise<string> => (await readFile(fs, path)).toString()
  await put(objects, 'f', 'the first version')
  await fs.getattr('/f')
  // A change in the middle, without O_TRUNC: the kernel reads what it has no page of; what it holds is the spool.
  await written('/f', O_RDWR, (fh) => fs.write(fh, Buffer.from('FIRST'), 4))
  assert.equal(await kept('/f'), true)
  assert.equal(await content('/f'), 'the FIRST version')
  // O_TRUNC, then a truncate of the open file (the kernel truncates its pages with it): the same.
  await written('/f', O_WRONLY | O_TRUNC, async (fh) => {
    await fs.write(fh, Buffer.from('a third version'), 0)
    await fs.ftruncate(fh, 7)
  })
  assert.equal(await kept('/f'), true)
  assert.equal(await content('/f'), 'a third')
  // A reader already open on the old version may fill pages with it while the file is written: not kept.
  const old = await fs.open('/f', O_RDONLY)
  await written('/f', O_WRONLY | O_TRUNC, (fh) => fs.write(fh, Buffer.from('4th one'), 0))
  await fs.release(old)
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true, 'that open read the new version through the page cache')
  // Another open of the file while it is written lets the kernel drop pages under writes in flight: not kept.
  const writer = await fs.open('/f', O_WRONLY | O_TRUNC)
  await fs.write(writer, Buffer.from('5th one'), 0)
  const reader = await fs.open('/f', O_RDONLY)
  assert.equal(fs.keepCache(reader), false, 'its spool is no stored version')
  await fs.release(reader)
  await fs.flush(writer)
  await fs.release(writer)
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true)
  // Committed while still open (fsync, or close of one descriptor of two): a reader opening then keeps the
  // pages; a write after that forgets the version until the next commit, which is kept in turn.
  const open = await fs.open('/f', O_RDWR)
  await fs.write(open, Buffer.from('6'), 0)
  await fs.fsync(open)
  const during = await fs.open('/f', O_RDONLY)
  assert.equal(fs.keepCache(during), true)
  await fs.release(during)
  await fs.write(open, Buffer.from('7'), 0)
  const afterWrite = await fs.open('/f', O_RDONLY)
  assert.equal(fs.keepCache(afterWrite), false, 'the pages hold a write that is not committed yet')
  await fs.release(afterWrite)
  await fs.release(open)
  assert.equal(await kept('/f'), false, 'the open while written let the kernel drop the pages')
  assert.equal(await content('/f'), '7th one')
  // O_DIRECT, and an open with direct I/O (a size the kernel does not hold), go past the page cache: not kept.
  await written('/f', O_WRONLY | O_TRUNC | constants.O_DIRECT, (fh) => fs.write(fh, Buffer.from('8th'), 0))
  assert.equal(await kept('/f'), false)
  await put(objects, 'f', 'a longer version, put elsewhere')
  const direct = await fs.open('/f', O_RDWR)
  assert.equal(fs.directIo(direct), true)
  await fs.write(direct, Buffer.from('A'), 0)
  await fs.release(direct)
  await fs.getattr('/f')
  assert.equal(await kept('/f'), false)
  assert.equal(await kept('/f'), true)
  // A version committed elsewhere after this mount's own: read anew.
  await written('/f', O_WRONLY | O_TRUNC, (fh) => fs.write(fh, Buffer.from('9th'), 0))
  await put(objects, 'f', '10t')
  assert.equal(await kept('/f'), false)
  assert.equal(await content('/f'), '10t')
})

test('times are answered as the object layer stores them, fractions of a millisecond included, the same while a file is open and after its commit', async () => {
  const { fs, objects } = await harness({}, new NanosecondTimes())
  // A time with a fraction, set by an object-layer client: answered as stored, not rounded.
  const fraction = 1796581972114.25
  await objects.putObject('b', 'f', Readable.from([Buffer.from('x')]), { posix: { mode: 0o100644, uid: 0, gid: 0, mtimeMs: fraction, ctimeMs: fraction + 0.5 } })
  const stat = await fs.getattr('/f')
  assert.equal(stat.mtimeMs, fraction)
  assert.equal(stat.ctimeMs, fraction + 0.5)
  // Whole milliseconds (what the binding hands the daemon, as tar x sets them) come back exactly
  // after the commit: what getattr answered while the file was open is what it answers after.
  const fh = await fs.create('/g', 0o644)
  await fs.write(fh, Buffer.from('tar member'), 0)
  await fs.utimens('/g', 0, 1796581972114)
  const open = await fs.getattr('/g')
  await fs.release(fh)
  const stored = await fs.getattr('/g')
  assert.equal(stored.mtimeMs, 1796581972114)
  assert.deepEqual({ mtimeMs: stored.mtimeMs, ctimeMs: stored.ctimeMs }, { mtimeMs: open.mtimeMs, ctimeMs: open.ctimeMs })
  assert.equal(objects.peek('b', 'g')!.toString(), 'tar member')
})

test('upload failure: flush reports EIO, the bytes stay, a later flush commits them', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/f', 0o644)
  await fs.write(fh, Buffer.from('keep me'), 0)
  let fail = true
  objects.fault = (op) => (op === 'putObject' && fail ? new (class extends Error {})('boom') as never : null)
  assert.equal(await errnoOf(fs.flush(fh)), 'EIO')
  fail = false
  await fs.flush(fh)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'f')!.toString(), 'keep me')
})

test('shutdown uploads files still open with changes', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/open-at-unmount', 0o644)
  await fs.write(fh, Buffer.from('saved'), 0)
  await fs.shutdown()
  assert.equal(objects.peek('b', 'open-at-unmount')!.toString(), 'saved')
})

test('configuration is checked when built', () => {
  assert.throws(() => fsConfig({ objects: null as never, bucket: 'b', blockSizeBytes: 3 * MiB }))
  const config = fsConfig({ objects: null as never, bucket: 'b', prefix: '/a/b/', log: silent })
  assert.equal(config.prefix, 'a/b/')
  assert.ok(Object.isFrozen(config))
  assert.ok(new BlobFs(config))
})

test('filling a new directory (tar x, cp -r) asks the catalog nothing but the uploads', async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  await fs.mkdir('/d', 0o755)
  objects.resetCounters()
  for (let i = 0; i < 20; i++) {
    assert.equal(await errnoOf(fs.getattr(`/d/f${i}`)), 'ENOENT') // the kernel's lookup before create
    await writeFile(fs, `/d/f${i}`, `file ${i}`)
    assert.equal((await fs.getattr(`/d/f${i}`)).kind, 'file')
  }
  await fs.unlink('/d/f3')
  assert.equal((await list(fs, '/d')).length, 19)
  assert.equal(objects.counters.calls.listObjects, 0)
  assert.equal(objects.counters.calls.putObject, 20)
  assert.ok(objects.counters.calls.headObject <= 20, `${objects.counters.calls.headObject} heads`)
  assert.equal((await readFile(fs, '/d/f7')).toString(), 'file 7')
})

test('past the TTL a small directory is listed again in one call, not asked name by name; changes made elsewhere show', async () => {
  const { fs, objects, advance } = await harness({ attrTtlMs: 1000, dirTtlMs: 1000 })
  await fs.mkdir('/d', 0o755)
  for (let i = 0; i < 10; i++) await writeFile(fs, `/d/f${i}`, `file ${i}`)
  advance(1500)
  await put(objects, 'd/from-s3', 'x')
  objects.resetCounters()
  for (let i = 10; i < 30; i++) {
    assert.equal(await errnoOf(fs.getattr(`/d/f${i}`)), 'ENOENT') // the kernel's lookup before create
    await writeFile(fs, `/d/f${i}`, `file ${i}`)
  }
  assert.equal((await fs.getattr('/d/f3')).sizeBytes, 6)
  assert.equal((await fs.getattr('/d/from-s3')).sizeBytes, 1, 'what another writer added shows after the TTL')
  // /d itself is looked up once (a head and a one-key list), its 30 names in one listing.
  assert.equal(objects.counters.calls.headObject, 1)
  assert.equal(objects.counters.calls.listObjects, 2)
  await put(objects, 'd/later', 'y')
  assert.equal(await errnoOf(fs.getattr('/d/later')), 'ENOENT', 'within the TTL the listing answers')
  advance(1500)
  assert.equal((await fs.getattr('/d/later')).sizeBytes, 1)
  assert.equal(objects.counters.calls.listObjects, 3)
})

// ---- uploading while writing (a file written front to back)

/** The in-memory layer, counting the body bytes each upload has pulled so far. */
class PullCountingLayer extends MemoryObjectLayer {
  pulledBytes = 0

  override putObject(...[bucket, key, body, options]: Parameters<MemoryObjectLayer['putObject']>): ReturnType<MemoryObjectLayer['putObject']> {
    const counted = async function* (this: PullCountingLayer): AsyncGenerator<Buffer> {
      for await (const piece of body as AsyncIterable<Buffer>) {
        this.pulledBytes += piece.length
        yield piece
      }
    }.call(this)
    return super.putObject(bucket, key, counted, options)
  }
}

const streaming = { spoolMemoryBytesPerFile: 64 * KiB, spoolMemoryBytesTotal: 128 * KiB, streamUploadStartBytes: 256 * KiB }

/** Lets the upload running in the background pull what is there (spool reads go to disk). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5))
}

/** Waits, bounded, until the background upload has pulled `bytes`. */
async function pulled(objects: PullCountingLayer, bytes: number): Promise<number> {
  for (let i = 0; i < 1000 && objects.pulledBytes < bytes; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  return objects.pulledBytes
}

async function appendPieces(fs: BlobFs, fh: number, data: Buffer, from = 0): Promise<void> {
  for (let at = from; at < data.length; at += 128 * KiB) await fs.write(fh, data.subarray(at, Math.min(data.length, at + 128 * KiB)), at)
}

test('a file written front to back is uploaded while it is written; close commits it once, with its attributes at close', async () => {
  const objects = new PullCountingLayer()
  const { fs, clock } = await harness(streaming, objects)
  const data = randomBytes(MiB + 5)
  const fh = await fs.create('/seq', 0o600)
  await appendPieces(fs, fh, data.subarray(0, 128 * KiB))
  assert.equal(objects.counters.calls.putObject, 0, 'below the start size nothing is uploaded')
  await appendPieces(fs, fh, data, 128 * KiB)
  assert.equal(objects.counters.calls.putObject, 1)
  assert.equal(await pulled(objects, data.length), data.length, 'every byte written so far is sent before close')
  assert.equal(objects.peek('b', 'seq'), null, 'nothing is committed before close')
  await fs.chmod('/seq', 0o640)
  clock.nowMs += 5000
  await fs.utimens('/seq', 0, 1_000_000_000_000)
  await fs.flush(fh)
  assert.ok(objects.peek('b', 'seq')!.equals(data))
  const info = await objects.headObject('b', 'seq')
  assert.equal(info.posix!.mode & 0o7777, 0o640)
  assert.equal(info.posix!.mtimeMs, 1_000_000_000_000)
  assert.equal(objects.counters.calls.putObject, 1, 'the upload while writing is the one committed')
  assert.equal(objects.counters.calls.updateAttributes, 0)
  await fs.release(fh)
  assert.equal(objects.counters.calls.putObject, 1)
  assert.deepEqual(await readFile(fs, '/seq'), data)
})

test('a write that is not an append, or a truncate, aborts the upload while writing; close uploads the whole file', async () => {
  for (const change of ['overwrite', 'truncate'] as const) {
    const objects = new PullCountingLayer()
    const { fs } = await harness(streaming, objects)
    const data = randomBytes(MiB)
    const fh = await fs.create('/f', 0o644)
    await appendPieces(fs, fh, data.subarray(0, 512 * KiB))
    await settle()
    assert.equal(objects.counters.calls.putObject, 1)
    if (change === 'overwrite') {
      data.write('changed', 10)
      await fs.write(fh, data.subarray(10, 17), 10)
    } else {
      await fs.ftruncate(fh, 100 * KiB)
      data.fill(0, 100 * KiB, 512 * KiB)
    }
    await appendPieces(fs, fh, data, 512 * KiB)
    await settle()
    assert.equal(objects.counters.calls.putObject, 1, `${change}: aborted, and not started again`)
    await fs.release(fh)
    assert.equal(objects.counters.calls.putObject, 2)
    assert.ok(objects.peek('b', 'f')!.equals(data), change)
    assert.equal(objects.counters.putBytes, data.length, `${change}: only the final upload stored bytes`)
  }
})

test('an upload while writing that fails is done again whole at close', async () => {
  const objects = new PullCountingLayer()
  const { fs } = await harness(streaming, objects)
  let failures = 1
  objects.fault = (op) => (op === 'putObject' && failures-- > 0 ? new BlobfsError('NotEnoughNodes') : null)
  const data = randomBytes(768 * KiB)
  const fh = await fs.create('/f', 0o644)
  await appendPieces(fs, fh, data)
  await settle()
  await fs.release(fh)
  assert.ok(objects.peek('b', 'f')!.equals(data))
  assert.equal(objects.counters.calls.putObject, 2)
})

test('unlink while a file is uploaded while written aborts the upload: nothing is stored', async () => {
  const objects = new PullCountingLayer()
  const { fs } = await harness(streaming, objects)
  const fh = await fs.create('/f', 0o644)
  await appendPieces(fs, fh, randomBytes(512 * KiB))
  await settle()
  assert.equal(objects.counters.calls.putObject, 1)
  await fs.unlink('/f')
  await fs.write(fh, Buffer.from('more'), 512 * KiB)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'f'), null)
  assert.equal(objects.counters.putBytes, 0)
  assert.deepEqual(await list(fs, '/'), [])
})
