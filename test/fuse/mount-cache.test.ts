// Real mounts on /dev/fuse: what the kernel caches and what it asks the daemon. The
// kernel keeps names and attributes for the TTL (entry_timeout, attr_timeout), so
// tools that stat every path they touch (tar x, ls -lR, rsync) are answered by the
// kernel; open still revalidates, so a version committed elsewhere is read whole
// at the next open (close-to-open) even while the kernel holds the old size. An
// open that finds the very version the kernel holds pages of keeps them (keep_cache),
// and this mount's own commit of a file is such a version when nothing but the
// file's writes went into its pages.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { bindingTakesKeepCache } from '../../src/fuse/binding.ts'
import { freePort } from '../support/ports.ts'
import { fuseOpsCounts, ok, sh, withMount, type Mount } from './helpers/mount.ts'

const timeout = 120_000
/** Prints file f through a shared read-only mapping (which needs the page cache). */
const mapShared = `python3 -c "import mmap; f = open('f', 'rb'); print(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:].decode(), end='')"`

/**
 * A mount whose kernel keeps names and attributes for 60 s and whose daemon serves its
 * metrics on `port` (the reads that reach it are counted); its binding must take keep_cache.
 */
async function withPageCacheMount(fn: (mount: Mount, dirs: Parameters<Parameters<typeof withMount>[0]>[1], port: number) => Promise<void>): Promise<void> {
  assert.ok(bindingTakesKeepCache(), 'the FUSE binding built here predates the keep_cache patch: run `npm run build:fuse`')
  const port = await freePort()
  await withMount((mount, dirs) => fn(mount, dirs, port), ['--cache-ttl-ms', '60000', '--metrics', `127.0.0.1:${port}`])
}

test('mount: the kernel caches attributes for the TTL: stat of the same paths again asks the daemon nothing', { timeout }, async () => {
  const port = await freePort()
  await withMount(
    async (_mount, { mnt }) => {
      await ok('mkdir -p a/b && for i in 1 2 3 4 5; do echo $i > a/b/f$i; done', { cwd: mnt })
      await ok('stat a/b/f1 a/b/f2 a/b/f3 a/b/f4 a/b/f5 > /dev/null', { cwd: mnt })
      const before = await fuseOpsCounts(port)
      // Within the TTL (60 s here): the names, the directories walked and the files are the kernel's.
      await ok('for i in 1 2 3; do stat a/b/f1 a/b/f2 a/b/f3 a/b/f4 a/b/f5 > /dev/null; done', { cwd: mnt })
      const after = await fuseOpsCounts(port)
      assert.equal((after.getattr ?? 0) - (before.getattr ?? 0), 0, 'no getattr reached the daemon')
    },
    ['--cache-ttl-ms', '60000', '--metrics', `127.0.0.1:${port}`],
  )
})

test('mount: close-to-open through the kernel: a version committed elsewhere is read whole at the next open, bigger or smaller', { timeout }, async () => {
  await withMount(
    async (mount, { mnt }) => {
      await ok('printf short > f && cat f > /dev/null && stat f > /dev/null', { cwd: mnt })
      // The kernel holds size 5 for the next 60 s; the object grows elsewhere.
      const longer = 'a much longer version, committed elsewhere\n'
      await mount.request({ cmd: 'put', key: 'f', base64: Buffer.from(longer).toString('base64') })
      assert.equal(await ok('cat f', { cwd: mnt }), longer)
      assert.equal(await ok('head -c 10 f', { cwd: mnt }), longer.slice(0, 10))
      // Such an open reads with direct I/O: a shared mapping, which needs the page cache, is refused.
      const shared = await sh(mapShared, { cwd: mnt })
      assert.notEqual(shared.code, 0)
      assert.match(shared.stderr, /No such device/)
      // And shrinks again: no stale tail, no zeros.
      await mount.request({ cmd: 'put', key: 'f', base64: Buffer.from('tiny\n').toString('base64') })
      assert.equal(await ok('cat f', { cwd: mnt }), 'tiny\n')
      // The mount's own changes are seen at once, whatever the kernel cached.
      await ok('printf 0123456789 > f', { cwd: mnt })
      assert.equal(await ok('cat f', { cwd: mnt }), '0123456789')
      assert.equal((await ok("stat -c '%s' f", { cwd: mnt })).trim(), '10')
      // ... and read through the page cache (not direct I/O): a shared mapping works.
      assert.equal(await ok(mapShared, { cwd: mnt }), '0123456789')
    },
    ['--cache-ttl-ms', '60000'],
  )
})

test('mount: a file read again, unchanged, comes from the kernel page cache (keep_cache); a version replaced elsewhere is read anew; one written here is read from the kernel at once', { timeout }, async () => {
  await withPageCacheMount(async (mount, { mnt, work }, port) => {
    const hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
    const readsToRead = (expected: Buffer) => readsToReadF(port, mnt, expected)
    const one = randomBytes(1 << 20)
    await mount.request({ cmd: 'put', key: 'f', base64: one.toString('base64') })
    assert.ok((await readsToRead(one)) > 0, 'the first read reaches the daemon')
    // (1) Read again with nothing changed: the second open keeps the pages; no read reaches the daemon.
    assert.equal(await readsToRead(one), 0, 'the second read is the kernel page cache')
    // (2) Replaced by another writer, with the same size (the kernel holds that size for 60 s,
    // so no direct I/O): the pages of the old version must not be read.
    const two = randomBytes(1 << 20)
    await mount.request({ cmd: 'put', key: 'f', base64: two.toString('base64') })
    assert.ok((await readsToRead(two)) > 0, 'the new version is read from the daemon')
    assert.equal(await readsToRead(two), 0, 'and then kept in turn')
    // (3) Written through the mount itself (same size), closed, then read: the kernel's pages are
    // the version just committed, so no read reaches the daemon (it did before this mount kept them).
    const three = await workFile(work, 'three', 1 << 20)
    await ok(`cp '${work}/three' '${mnt}/f'`)
    assert.equal(await readsToRead(three), 0, 'the first read after this mount wrote the file is the kernel page cache')
    assert.equal(await readsToRead(three), 0)
    assert.equal(await mount.request<string>({ cmd: 'sha256', key: 'f' }), hex(three))
  })
})

/** `bytes` random bytes in the file `work/name`, to be copied in by a tool; returned for comparison. */
async function workFile(work: string, name: string, bytes: number): Promise<Buffer> {
  const data = randomBytes(bytes)
  await writeFile(join(work, name), data)
  return data
}

/** Reads `mnt/name` whole, checks it holds `expected`, and says how many reads reached the daemon behind `port`. */
async function readsToReadF(port: number, mnt: string, expected: Buffer, name = 'f'): Promise<number> {
  const reads = async (): Promise<number> => (await fuseOpsCounts(port)).read ?? 0
  const before = await reads()
  assert.equal((await ok(`sha256sum < '${mnt}/${name}'`)).trim(), createHash('sha256').update(expected).digest('hex') + '  -')
  return (await reads()) - before
}

test('mount: a file written here and renamed (a temporary file, then rename over the name, as rsync does) is read from the kernel under its new name', { timeout }, async () => {
  await withPageCacheMount(async (mount, { mnt, work }, port) => {
    const old = randomBytes(1 << 20)
    await mount.request({ cmd: 'put', key: 'f', base64: old.toString('base64') })
    assert.ok((await readsToReadF(port, mnt, old)) > 0, 'the old version is read from the daemon')
    const fresh = await workFile(work, 'fresh', 1 << 20)
    await ok(`cp '${work}/fresh' '${mnt}/.f.tmp' && mv '${mnt}/.f.tmp' '${mnt}/f'`)
    assert.equal(await readsToReadF(port, mnt, fresh), 0, 'the renamed file is the kernel page cache, not the old version')
    // A directory renamed with such a file in it: the same under the new path.
    const inDir = await workFile(work, 'in-dir', 1 << 20)
    await ok(`mkdir '${mnt}/d' && cp '${work}/in-dir' '${mnt}/d/g' && mv '${mnt}/d' '${mnt}/e'`)
    assert.equal(await readsToReadF(port, mnt, inDir, 'e/g'), 0)
    assert.equal(await mount.request<string>({ cmd: 'sha256', key: 'f' }), createHash('sha256').update(fresh).digest('hex'))
  })
})

test("mount: after this mount's own write, a version PUT elsewhere is read anew, and a partial-page write reads back exact", { timeout }, async () => {
  await withPageCacheMount(async (mount, { mnt, work }, port) => {
    // As the benchmark writes and reads (dd, committed at fsync, then closed): read back from the kernel.
    const dd = await workFile(work, 'dd', 4 << 20)
    await ok(`dd if='${work}/dd' of='${mnt}/g' bs=1M conv=fsync status=none`)
    assert.equal(await readsToReadF(port, mnt, dd, 'g'), 0)
    const mine = await workFile(work, 'mine', 1 << 20)
    await ok(`cp '${work}/mine' '${mnt}/f'`)
    assert.equal(await readsToReadF(port, mnt, mine), 0)
    // A same-size version PUT through the object layer (no direct I/O): the kernel's pages of ours must go.
    const theirs = randomBytes(1 << 20)
    await mount.request({ cmd: 'put', key: 'f', base64: theirs.toString('base64') })
    assert.ok((await readsToReadF(port, mnt, theirs)) > 0, 'the version PUT elsewhere is read from the daemon')
    // 100 bytes at 5000, without O_TRUNC: the page they land in is not whole, so the kernel leaves
    // it to be read from the daemon; every other byte is the version before.
    const patch = await workFile(work, 'patch', 100)
    await ok(`dd if='${work}/patch' of='${mnt}/f' bs=100 seek=50 count=1 conv=notrunc status=none`)
    const expected = Buffer.from(theirs)
    patch.copy(expected, 5000)
    await readsToReadF(port, mnt, expected)
    assert.equal(await readsToReadF(port, mnt, expected), 0, 'read again: kept')
    assert.equal(await mount.request<string>({ cmd: 'sha256', key: 'f' }), createHash('sha256').update(expected).digest('hex'))
  })
})

test('mount: a reader of the old version, open while this mount writes the file, may fill the page cache with old bytes: the next open reads from the daemon, and the new bytes', { timeout }, async () => {
  await withPageCacheMount(async (_mount, { mnt, work }, port) => {
    const old = await workFile(work, 'old', 1 << 20)
    await ok(`cp '${work}/old' '${mnt}/f'`)
    const patch = await workFile(work, 'patch', 100)
    // The reader opens first; the writer puts 100 bytes at 5000 (a page the kernel does not hold
    // whole); then the reader reads that page through its own version, the old one, into the cache.
    const script = [
      'import os, sys',
      "r = os.open('f', os.O_RDONLY)",
      "w = os.open('f', os.O_WRONLY)",
      `os.pwrite(w, open('${work}/patch', 'rb').read(), 5000)`,
      'got = os.pread(r, 4096, 4096)',
      'os.close(w)',
      'os.close(r)',
      "sys.stdout.write(got.hex())",
    ].join('\n')
    await writeFile(join(work, 'race.py'), script)
    const got = Buffer.from((await ok(`python3 '${work}/race.py'`, { cwd: mnt })).trim(), 'hex')
    assert.ok(got.equals(old.subarray(4096, 8192)), 'the reader read the old bytes after the write began')
    const expected = Buffer.from(old)
    patch.copy(expected, 5000)
    assert.ok((await readsToReadF(port, mnt, expected)) > 0, 'the next open reads from the daemon')
    assert.equal(await readsToReadF(port, mnt, expected), 0, 'and keeps what it read')
  })
})
