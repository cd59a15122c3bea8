// Namespace semantics of src/fuse/fs.ts against the in-memory object layer (no
// mount): paths and keys, directories, unlink, rename, symlinks, attributes, errors.
// Each test is named in docs/posix-semantics.md.
import assert from 'node:assert/strict'
import { constants } from 'node:fs'
import { test } from 'node:test'
import { BlobfsError } from '../../src/errors.ts'
import { errno, errnoByCode, toFsError } from '../../src/fuse/errno.ts'
import { errnoOf, harness, list, put, readFile, writeFile } from './helpers/fs-harness.ts'

const { S_IFDIR, S_IFREG, S_IFLNK } = constants

test('errno table: every BlobfsError code maps; data-plane failures are EIO; unknown errors are EIO', () => {
  assert.equal(errnoByCode.NoSuchKey, errno.ENOENT)
  assert.equal(errnoByCode.DirectoryNotEmpty, errno.ENOTEMPTY)
  assert.equal(errnoByCode.CrossDevice, errno.EXDEV)
  assert.equal(errnoByCode.TooManyErasures, errno.EIO)
  assert.equal(errnoByCode.NotEnoughNodes, errno.EIO)
  assert.equal(errnoByCode.ChunkCorrupt, errno.EIO)
  const unknown = toFsError(new TypeError('bug'), 'read /x')
  assert.equal(unknown.errno, errno.EIO)
  assert.equal(unknown.unmapped, true)
  assert.ok(unknown.cause instanceof TypeError)
  const mapped = toFsError(new BlobfsError('InsufficientStorage'), 'write /x')
  assert.equal(mapped.errnoName, 'ENOSPC')
  assert.equal(mapped.code, 'InsufficientStorage')
})

test('create + write + flush: one object with POSIX attributes; visible before it is uploaded', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/a.txt', 0o640)
  await fs.write(fh, Buffer.from('hello'), 0)
  assert.equal(objects.peek('b', 'a.txt'), null, 'nothing is uploaded before flush')
  assert.deepEqual(await list(fs, '/'), ['a.txt'])
  assert.equal((await fs.getattr('/a.txt')).sizeBytes, 5)
  await fs.flush(fh)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'a.txt')!.toString(), 'hello')
  const info = await objects.headObject('b', 'a.txt')
  assert.equal(info.posix!.mode, S_IFREG | 0o640)
  const stat = await fs.getattr('/a.txt')
  assert.equal(stat.mode, S_IFREG | 0o640)
  assert.equal(stat.sizeBytes, 5)
  assert.equal((await readFile(fs, '/a.txt')).toString(), 'hello')
})

test('an empty file created and closed is an empty object', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/empty', 0o644)
  await fs.release(fh)
  assert.deepEqual(objects.peek('b', 'empty'), Buffer.alloc(0))
  assert.equal((await fs.getattr('/empty')).sizeBytes, 0)
  assert.equal((await readFile(fs, '/empty')).length, 0)
})

test('mkdir writes a dir/ marker so an empty directory persists; rmdir removes it', async () => {
  const { fs, objects } = await harness()
  await fs.mkdir('/d', 0o750)
  assert.deepEqual(objects.keys('b'), ['d/'])
  assert.equal((await objects.headObject('b', 'd/')).posix!.mode, S_IFDIR | 0o750)
  const stat = await fs.getattr('/d')
  assert.equal(stat.kind, 'dir')
  assert.equal(stat.mode, S_IFDIR | 0o750)
  assert.deepEqual(await list(fs, '/'), ['d'])
  assert.deepEqual(await list(fs, '/d'), [])
  await fs.rmdir('/d')
  assert.deepEqual(objects.keys('b'), [])
  assert.equal(await errnoOf(fs.getattr('/d')), 'ENOENT')
})

test('directories implied by keys written over S3 (no markers)', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'x/y/z.txt', 'zz')
  await put(objects, 'x/w.txt', 'w')
  assert.equal((await fs.getattr('/x')).kind, 'dir')
  assert.equal((await fs.getattr('/x/y')).kind, 'dir')
  assert.deepEqual(await list(fs, '/'), ['x'])
  assert.deepEqual(await list(fs, '/x'), ['w.txt', 'y'])
  assert.equal((await readFile(fs, '/x/y/z.txt')).toString(), 'zz')
  const stat = await fs.getattr('/x/w.txt')
  assert.equal(stat.mode, S_IFREG | 0o644, 'objects without POSIX attributes get the default mode')
})

test('errors: ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EBUSY, ENAMETOOLONG', async () => {
  const { fs } = await harness()
  await writeFile(fs, '/f', 'data')
  await fs.mkdir('/d', 0o755)
  await writeFile(fs, '/d/inner', 'x')
  assert.equal(await errnoOf(fs.getattr('/missing')), 'ENOENT')
  assert.equal(await errnoOf(fs.open('/missing', constants.O_RDONLY)), 'ENOENT')
  assert.equal(await errnoOf(fs.unlink('/missing')), 'ENOENT')
  assert.equal(await errnoOf(fs.mkdir('/missing/sub', 0o755)), 'ENOENT')
  assert.equal(await errnoOf(fs.create('/missing/file', 0o644)), 'ENOENT')
  assert.equal(await errnoOf(fs.mkdir('/d', 0o755)), 'EEXIST')
  assert.equal(await errnoOf(fs.mkdir('/f', 0o755)), 'EEXIST')
  assert.equal(await errnoOf(fs.symlink('/x', '/f')), 'EEXIST')
  assert.equal(await errnoOf(fs.rmdir('/d')), 'ENOTEMPTY')
  assert.equal(await errnoOf(fs.rmdir('/f')), 'ENOTDIR')
  assert.equal(await errnoOf(fs.mkdir('/f/sub', 0o755)), 'ENOTDIR')
  assert.equal(await errnoOf(fs.create('/f/sub', 0o644)), 'ENOTDIR')
  assert.equal(await errnoOf(list(fs, '/f')), 'ENOTDIR')
  assert.equal(await errnoOf(fs.unlink('/d')), 'EISDIR')
  assert.equal(await errnoOf(fs.open('/d', constants.O_RDONLY)), 'EISDIR')
  assert.equal(await errnoOf(fs.truncate('/d', 0)), 'EISDIR')
  assert.equal(await errnoOf(fs.rmdir('/')), 'EBUSY')
  assert.equal(await errnoOf(fs.getattr(`/${'n'.repeat(256)}`)), 'ENAMETOOLONG')
  assert.equal(await errnoOf(fs.link('/f', '/g')), 'EPERM', 'hard links are refused')
  assert.equal(await errnoOf(fs.read(999, 10, 0)), 'EBADF')
})

test('unlink deletes the object; an open writer keeps its spool and uploads nothing after', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/gone', 'bytes')
  await fs.unlink('/gone')
  assert.equal(objects.peek('b', 'gone'), null)
  assert.equal(await errnoOf(fs.getattr('/gone')), 'ENOENT')

  const fh = await fs.create('/open', 0o644)
  await fs.write(fh, Buffer.from('abc'), 0)
  await fs.unlink('/open')
  await fs.write(fh, Buffer.from('def'), 3)
  assert.equal((await fs.read(fh, 10, 0)).toString(), 'abcdef', 'the open descriptor still reads its bytes')
  await fs.flush(fh)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'open'), null)
  assert.equal(objects.counters.calls.putObject, 1, 'only /gone was ever uploaded')
})

test('rename of a file: one catalog call, no bytes written, replaces the target', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/src', 'source')
  await writeFile(fs, '/dst', 'old target')
  const puts = objects.counters.calls.putObject
  const putBytes = objects.counters.putBytes
  await fs.rename('/src', '/dst')
  assert.equal(objects.counters.calls.putObject, puts)
  assert.equal(objects.counters.putBytes, putBytes)
  assert.equal(objects.counters.calls.renameObject, 1)
  assert.equal(await errnoOf(fs.getattr('/src')), 'ENOENT')
  assert.equal((await readFile(fs, '/dst')).toString(), 'source')
  assert.deepEqual(objects.keys('b'), ['dst'])
})

test('rename of a directory with many entries: one renamePrefix, no bytes written', async () => {
  const { fs, objects } = await harness()
  await fs.mkdir('/big', 0o755)
  for (let i = 0; i < 300; i++) await put(objects, `big/sub${i % 3}/f${i}`, `${i}`)
  const puts = objects.counters.calls.putObject
  await fs.rename('/big', '/moved')
  assert.equal(objects.counters.calls.putObject, puts)
  assert.equal(objects.counters.calls.renamePrefix, 1)
  assert.equal(objects.counters.calls.renameObject, 0)
  assert.equal(objects.keys('b').length, 301)
  assert.ok(objects.keys('b').every((k) => k.startsWith('moved/')))
  assert.equal(await errnoOf(fs.getattr('/big')), 'ENOENT')
  assert.deepEqual(await list(fs, '/moved'), ['sub0', 'sub1', 'sub2'])
  assert.equal((await readFile(fs, '/moved/sub1/f100')).toString(), '100')
})

test('rename errors: EISDIR, ENOTDIR, ENOTEMPTY, EINVAL, ENOENT; a directory replaces an empty one', async () => {
  const { fs } = await harness()
  await writeFile(fs, '/f', 'f')
  await fs.mkdir('/d', 0o755)
  await fs.mkdir('/full', 0o755)
  await writeFile(fs, '/full/x', 'x')
  await fs.mkdir('/empty', 0o755)
  assert.equal(await errnoOf(fs.rename('/f', '/d')), 'EISDIR')
  assert.equal(await errnoOf(fs.rename('/d', '/f')), 'ENOTDIR')
  assert.equal(await errnoOf(fs.rename('/d', '/full')), 'ENOTEMPTY')
  assert.equal(await errnoOf(fs.rename('/d', '/d/inside')), 'EINVAL')
  assert.equal(await errnoOf(fs.rename('/missing', '/x')), 'ENOENT')
  assert.equal(await errnoOf(fs.rename('/f', '/missing/x')), 'ENOENT')
  await fs.rename('/full', '/empty')
  assert.deepEqual(await list(fs, '/empty'), ['x'])
  assert.deepEqual(await list(fs, '/'), ['d', 'empty', 'f'])
})

test('rename of a file still being written commits it first; its handle follows the new name', async () => {
  const { fs, objects } = await harness()
  const fh = await fs.create('/tmp.part', 0o644)
  await fs.write(fh, Buffer.from('partial'), 0)
  await fs.rename('/tmp.part', '/final')
  await fs.write(fh, Buffer.from('+more'), 7)
  await fs.release(fh)
  assert.equal(objects.peek('b', 'final')!.toString(), 'partial+more')
  assert.equal(objects.peek('b', 'tmp.part'), null)
})

test('EXDEV when the object layer refuses a rename across a boundary', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', 'f')
  objects.fault = (op) => (op === 'renameObject' ? new BlobfsError('CrossDevice') : null)
  assert.equal(await errnoOf(fs.rename('/f', '/g')), 'EXDEV')
})

test('EIO on object-layer failures, never bytes: erasures, too few nodes, catalog down, unmapped errors', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', 'content')
  objects.fault = (op) => (op === 'getObject' ? new BlobfsError('TooManyErasures') : null)
  const fh = await fs.open('/f', constants.O_RDONLY)
  assert.equal(await errnoOf(fs.read(fh, 100, 0)), 'EIO')
  await fs.release(fh)
  objects.fault = (op) => (op === 'putObject' ? new BlobfsError('NotEnoughNodes') : null)
  const wh = await fs.create('/g', 0o644)
  await fs.write(wh, Buffer.from('x'), 0)
  assert.equal(await errnoOf(fs.flush(wh)), 'EIO')
  objects.fault = (op) => (op === 'headObject' ? new BlobfsError('CatalogUnavailable') : null)
  assert.equal(await errnoOf(fs.getattr('/other')), 'EIO')
  objects.fault = (op) => (op === 'listObjects' ? (new TypeError('a bug') as unknown as BlobfsError) : null)
  assert.equal(await errnoOf(list(fs, '/')), 'EIO')
  objects.fault = null
  await fs.release(wh) // the retry at release succeeds
  assert.equal(objects.peek('b', 'g')!.toString(), 'x')
})

test('symlink and readlink keep the target in the catalog', async () => {
  const { fs, objects } = await harness()
  await fs.symlink('../some/where', '/link')
  const info = await objects.headObject('b', 'link')
  assert.equal(info.symlinkTarget, '../some/where')
  const stat = await fs.getattr('/link')
  assert.equal(stat.kind, 'symlink')
  assert.equal(stat.mode & constants.S_IFMT, S_IFLNK)
  assert.equal(stat.sizeBytes, '../some/where'.length)
  assert.equal(await fs.readlink('/link'), '../some/where')
  await writeFile(fs, '/plain', 'p')
  assert.equal(await errnoOf(fs.readlink('/plain')), 'EINVAL')
})

test('chmod, chown, utimens: catalog updates only, no bytes rewritten', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', 'content')
  await fs.mkdir('/d', 0o755)
  const puts = objects.counters.calls.putObject
  await fs.chmod('/f', 0o600)
  await fs.chown('/f', 1234, 0xffffffff)
  await fs.utimens('/f', 0, 946_684_800_000)
  await fs.chmod('/d', 0o700)
  assert.equal(objects.counters.calls.putObject, puts)
  assert.equal(objects.counters.calls.updateAttributes, 4)
  const stat = await fs.getattr('/f')
  assert.equal(stat.mode, S_IFREG | 0o600)
  assert.equal(stat.uid, 1234)
  assert.equal(stat.gid, process.getgid!(), 'gid -1 leaves it as it was')
  assert.equal(stat.mtimeMs, 946_684_800_000)
  assert.equal((await objects.headObject('b', 'f')).posix!.mtimeMs, 946_684_800_000)
  assert.equal((await fs.getattr('/d')).mode, S_IFDIR | 0o700)
})

test('chmod of a directory implied by keys writes its marker', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'implied/file', 'x')
  await fs.chmod('/implied', 0o711)
  assert.equal((await objects.headObject('b', 'implied/')).posix!.mode, S_IFDIR | 0o711)
  assert.equal((await fs.getattr('/implied')).mode, S_IFDIR | 0o711)
})

test('statfs answers the cluster capacity and usage', async () => {
  const { fs, objects } = await harness()
  await writeFile(fs, '/f', Buffer.alloc(10_000))
  const s = await fs.statfs()
  const usage = await objects.clusterUsage()
  assert.equal(s.blocks * s.blockSizeBytes <= usage.capacityBytes, true)
  assert.equal(s.blocks - s.blocksFree, Math.ceil(usage.capacityBytes / s.blockSizeBytes) - Math.floor((usage.capacityBytes - 10_000) / s.blockSizeBytes))
  assert.ok(s.blocks < 2 ** 32)
  assert.equal(s.nameBytesMax, 255)
})

test('readdir streams a large directory page by page', async () => {
  const { fs, objects } = await harness()
  for (let i = 0; i < 2500; i++) await put(objects, `many/f${String(i).padStart(5, '0')}`, '')
  objects.resetCounters()
  const pages: number[] = []
  for await (const page of fs.readdir('/many')) pages.push(page.length)
  assert.equal(pages.reduce((a, b) => a + b, 0), 2500)
  assert.ok(pages.length >= 3, `pages: ${pages.join(',')}`)
  assert.ok(Math.max(...pages) <= 1000)
  assert.equal(objects.counters.calls.listObjects, 1 + 3, 'one to find the directory, then one per page')
})

test('a key that is both a file and a directory is shown once, as the directory', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'a', 'file')
  await put(objects, 'a.txt', 't')
  await put(objects, 'a/x', 'inside')
  assert.deepEqual(await list(fs, '/'), ['a', 'a.txt'])
  assert.equal((await fs.getattr('/a')).kind, 'dir')
})

test('a mount of bucket/prefix shows only the keys under the prefix, and writes under it', async () => {
  const { fs, objects } = await harness({ prefix: 'home/alice' })
  await put(objects, 'home/alice/notes.txt', 'n')
  await put(objects, 'home/bob/secret', 's')
  assert.deepEqual(await list(fs, '/'), ['notes.txt'])
  await writeFile(fs, '/new', 'new')
  await fs.mkdir('/dir', 0o755)
  assert.deepEqual(objects.keys('b'), ['home/alice/dir/', 'home/alice/new', 'home/alice/notes.txt', 'home/bob/secret'])
})

test('keys that cannot be file names are skipped in listings', async () => {
  const { fs, objects } = await harness()
  await put(objects, 'ok', '')
  await put(objects, 'dir//double', '')
  await put(objects, `${'n'.repeat(300)}`, '')
  assert.deepEqual(await list(fs, '/'), ['dir', 'ok'])
  assert.deepEqual(await list(fs, '/dir'), [])
})

test('a listing never hides a directory marker\'s attributes (tar c checks a directory twice)', async () => {
  const { fs, objects } = await harness({ attrTtlMs: 60_000, dirTtlMs: 60_000 })
  await objects.putObject('b', 'd/', (async function* () {})(), { posix: { mode: S_IFDIR | 0o700, uid: 7, gid: 8, mtimeMs: 123_000, ctimeMs: 123_000 } })
  await put(objects, 'd/f', 'x')
  assert.deepEqual(await list(fs, '/'), ['d'])
  const stat = await fs.getattr('/d')
  assert.equal(stat.mode, S_IFDIR | 0o700)
  assert.equal(stat.mtimeMs, 123_000)
  assert.equal(stat.uid, 7)
})
