// src/fuse/adapter.ts without a mount: every handler replies exactly once — with the
// answer, with the mapped errno, or with ETIMEDOUT at its own deadline — never
// throws into the binding, and never touches the kernel's buffer after replying.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { BlobfsError } from '../../src/errors.ts'
import { directIoFlag, fuseOperations, keepCacheFlag, utimeNowMs, utimeOmitMs } from '../../src/fuse/adapter.ts'
import { bindingAnswersFollowUpGetattr, bindingTakesDirectIo, bindingTakesKeepCache } from '../../src/fuse/binding.ts'
import { fileHandleMax } from '../../src/fuse/fs.ts'
import { fuseMaxWriteBytes } from '../../src/limits.ts'
import { errno } from '../../src/fuse/errno.ts'
import type { BlobFs } from '../../src/fuse/fs.ts'
import { silent } from './helpers/fs-harness.ts'

type Handler = (...args: unknown[]) => void

function adapter(fs: Partial<Record<keyof BlobFs, unknown>>, opTimeoutMs = 50, directIo = false, keepCache = false, followUpAttrs = false) {
  const registry = new Registry()
  const ops = fuseOperations({ fs: fs as unknown as BlobFs, log: silent, registry, opTimeoutMs, transferTimeoutMs: opTimeoutMs, directIo, keepCache, followUpAttrs })
  return { ops: ops as Record<string, Handler>, registry }
}

/** Calls a handler and collects every reply it makes until `settleMs` after the first. */
async function call(handler: Handler, args: unknown[], settleMs = 120): Promise<unknown[][]> {
  const replies: unknown[][] = []
  let first!: () => void
  const replied = new Promise<void>((resolve) => (first = resolve))
  handler(...args, (...reply: unknown[]) => {
    replies.push(reply)
    first()
  })
  await replied
  await new Promise((resolve) => setTimeout(resolve, settleMs))
  return replies
}

test('open asks for direct I/O in the handle only when the binding takes the flag; a binding built before the patch is detected', async () => {
  const fs = { open: async () => 7, directIo: () => true, keepCache: () => false }
  assert.deepEqual(await call(adapter(fs, 50, true).ops.open!, ['/f', 0]), [[0, 7 | directIoFlag]])
  assert.deepEqual(await call(adapter(fs, 50, false).ops.open!, ['/f', 0]), [[0, 7]])
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-binding-test-'))
  try {
    assert.equal(bindingTakesDirectIo(dir), false, 'no binding there')
    await writeFile(join(dir, 'fuse-native.c'), 'NAPI_ARGV_INT32(fd, 2)\n  if (fd != 0) {\n    l->info->fh = fd;\n  }\n')
    assert.equal(bindingTakesDirectIo(dir), false, 'fuse-native as published')
    await writeFile(join(dir, 'fuse-native.c'), '  if (fd & 0x40000000) {\n    l->info->direct_io = 1;\n')
    assert.equal(bindingTakesDirectIo(dir), true)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  assert.equal(bindingTakesDirectIo(), true, 'the binding built here (npm run build:fuse) takes the flag')
})

test('open asks the kernel to keep its page cache in the handle only when the binding takes the flag; a binding without it is detected', async () => {
  assert.equal(fileHandleMax & (keepCacheFlag | directIoFlag), 0, 'handles never carry a flag bit')
  const fs = (keep: boolean, direct = false) => ({ open: async () => fileHandleMax, directIo: () => direct, keepCache: () => keep })
  assert.deepEqual(await call(adapter(fs(true), 50, true, true).ops.open!, ['/f', 0]), [[0, fileHandleMax | keepCacheFlag]])
  assert.deepEqual(await call(adapter(fs(false), 50, true, true).ops.open!, ['/f', 0]), [[0, fileHandleMax]])
  assert.deepEqual(await call(adapter(fs(true), 50, true, false).ops.open!, ['/f', 0]), [[0, fileHandleMax]], 'a binding without the patch gets the bare handle')
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-binding-test-'))
  try {
    assert.equal(bindingTakesKeepCache(dir), false, 'no binding there')
    await writeFile(join(dir, 'fuse-native.c'), '  if (fd & 0x40000000) {\n    l->info->direct_io = 1;\n')
    assert.equal(bindingTakesKeepCache(dir), false, 'built with the direct I/O patch only')
    await writeFile(join(dir, 'fuse-native.c'), '  if (fd & 0x20000000) {\n    l->info->keep_cache = 1;\n')
    assert.equal(bindingTakesKeepCache(dir), true)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  assert.equal(bindingTakesKeepCache(), true, 'the binding built here (npm run build:fuse) takes the flag')
})

test('an operation that never finishes is answered ETIMEDOUT once, at our deadline', async () => {
  const { ops } = adapter({ getattr: () => new Promise(() => {}) })
  const replies = await call(ops.getattr!, ['/slow'])
  assert.deepEqual(replies, [[-errno.ETIMEDOUT]])
})

test('a late answer after the deadline is dropped, and the read buffer is not written', async () => {
  const { ops } = adapter({ read: () => new Promise((resolve) => setTimeout(() => resolve(Buffer.alloc(8, 0xff)), 100)) }, 20)
  const buffer = Buffer.alloc(8)
  const replies = await call(ops.read!, ['/f', 1, buffer, 8, 0], 200)
  assert.deepEqual(replies, [[-errno.ETIMEDOUT]])
  assert.ok(buffer.equals(Buffer.alloc(8)), 'the kernel buffer was written after the reply')
})

test('a handler whose work throws synchronously replies EIO once and throws nothing', async () => {
  const { ops } = adapter({
    getattr: () => {
      throw new TypeError('bug')
    },
  })
  const replies = await call(ops.getattr!, ['/x'])
  assert.deepEqual(replies, [[-errno.EIO]])
})

test('typed errors are mapped, counted and replied once', async () => {
  const { ops, registry } = adapter({ unlink: async () => Promise.reject(new BlobfsError('NoSuchKey')) })
  assert.deepEqual(await call(ops.unlink!, ['/gone']), [[-errno.ENOENT]])
  const errors = await registry.getSingleMetricAsString('blobfs_fuse_errors_total')
  assert.match(errors, /blobfs_fuse_errors_total\{op="unlink",errno="ENOENT"\} 1/)
  const ops_ = await registry.getSingleMetricAsString('blobfs_fuse_ops_total')
  assert.match(ops_, /blobfs_fuse_ops_total\{op="unlink"\} 1/)
})

test('read copies into the kernel buffer and answers the byte count', async () => {
  const { ops } = adapter({ read: async () => Buffer.from('hello') })
  const buffer = Buffer.alloc(16)
  assert.deepEqual(await call(ops.read!, ['/f', 1, buffer, 16, 0], 0), [[5]])
  assert.equal(buffer.subarray(0, 5).toString(), 'hello')
})

test('write takes a copy of the kernel buffer before anything waits', async () => {
  let seen: Buffer | null = null
  const { ops } = adapter({
    write: async (_fh: number, data: Buffer) => {
      await new Promise((resolve) => setTimeout(resolve, 10))
      seen = data
      return data.length
    },
  })
  const buffer = Buffer.from('original')
  const pending = call(ops.write!, ['/f', 1, buffer, 8, 0], 0)
  buffer.fill(0) // the binding reuses its buffer once we reply; here, even before
  assert.deepEqual(await pending, [[8]])
  assert.equal(seen!.toString(), 'original')
})

test('utimens: UTIME_OMIT for the mtime changes nothing; UTIME_NOW is the current time', async () => {
  const calls: number[] = []
  const { ops } = adapter({ utimens: async (_path: string, _atime: number, mtime: number) => void calls.push(mtime) })
  assert.deepEqual(await call(ops.utimens!, ['/f', utimeNowMs, utimeOmitMs], 0), [[0]])
  assert.deepEqual(calls, [])
  const before = Date.now()
  assert.deepEqual(await call(ops.utimens!, ['/f', utimeOmitMs, utimeNowMs], 0), [[0]])
  assert.equal(calls.length, 1)
  assert.ok(calls[0]! >= before && calls[0]! <= Date.now())
  assert.deepEqual(await call(ops.utimens!, ['/f', 1000, 2000], 0), [[0]])
  assert.equal(calls[1], 2000)
})

test('mknod makes regular files only (EPERM for FIFOs and devices)', async () => {
  const { ops } = adapter({ create: async () => 1, release: async () => {} })
  assert.deepEqual(await call(ops.mknod!, ['/fifo', 0o010644, 0], 0), [[-errno.EPERM]])
  assert.deepEqual(await call(ops.mknod!, ['/file', 0o100644, 0], 0), [[0]])
})

test('create, mkdir, chmod, chown, utimens, truncate and ftruncate reply with the attributes getattr would answer, only when the binding takes them; a failed getattr sends none', async () => {
  const stat = { kind: 'file', mode: 0o100640, sizeBytes: 3, uid: 7, gid: 8, mtimeMs: 1000.7, ctimeMs: 2000.2, nlink: 1 }
  const asked: string[] = []
  const fs = {
    getattr: async (path: string) => {
      asked.push(path)
      if (path === '/gone') throw new BlobfsError('NoSuchKey')
      return stat
    },
    create: async () => 5,
    mkdir: async () => {},
    chmod: async () => {},
    chown: async () => {},
    utimens: async () => {},
    truncate: async () => {},
    ftruncate: async () => {},
  }
  const attrs = { mode: 0o100640, size: 3, uid: 7, gid: 8, mtime: 1000, atime: 1000, ctime: 2000, nlink: 1, blocks: 1, blksize: fuseMaxWriteBytes }
  const { ops, registry } = adapter(fs, 50, false, false, true)
  assert.deepEqual(await call(ops.create!, ['/f', 0o640]), [[0, 5, attrs]])
  assert.deepEqual(await call(ops.mkdir!, ['/f', 0o750]), [[0, attrs]])
  assert.deepEqual(await call(ops.chmod!, ['/f', 0o640]), [[0, attrs]])
  assert.deepEqual(await call(ops.chown!, ['/f', 7, 8]), [[0, attrs]])
  assert.deepEqual(await call(ops.utimens!, ['/f', 1, 1000]), [[0, attrs]])
  assert.deepEqual(await call(ops.utimens!, ['/f', 1, utimeOmitMs]), [[0, attrs]], 'nothing changes, but libfuse still asks')
  assert.deepEqual(await call(ops.truncate!, ['/f', 3]), [[0, attrs]])
  assert.deepEqual(await call(ops.ftruncate!, ['/f', 5, 3]), [[0, attrs]])
  assert.deepEqual(await call(ops.chmod!, ['/gone', 0o600]), [[0]], 'the op succeeded; libfuse asks getattr itself')
  assert.deepEqual(asked, ['/f', '/f', '/f', '/f', '/f', '/f', '/f', '/f', '/gone'])
  assert.match(await registry.getSingleMetricAsString('blobfs_fuse_followup_getattr_answered_total'), /\{op="chmod"\} 1$/m)
  // A failed op replies its errno alone, and asks nothing more.
  asked.length = 0
  const failing = adapter({ ...fs, chmod: async () => Promise.reject(new BlobfsError('AccessDenied')) }, 50, false, false, true)
  assert.deepEqual(await call(failing.ops.chmod!, ['/f', 0o600]), [[-errno.EACCES]])
  assert.deepEqual(asked, [])
  // A binding without the patch: replies exactly as before, no getattr asked.
  const old = adapter(fs)
  assert.deepEqual(await call(old.ops.create!, ['/f', 0o640]), [[0, 5]])
  assert.deepEqual(await call(old.ops.chmod!, ['/f', 0o640]), [[0]])
  assert.deepEqual(await call(old.ops.mkdir!, ['/f', 0o750]), [[0]])
  assert.deepEqual(await call(old.ops.ftruncate!, ['/f', 5, 3]), [[0]])
  assert.deepEqual(asked, [])
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-binding-test-'))
  try {
    assert.equal(bindingAnswersFollowUpGetattr(dir), false, 'no binding there')
    await writeFile(join(dir, 'fuse-native.c'), '  blk\\\n  uv_async_send(&(l->async));\\\n')
    assert.equal(bindingAnswersFollowUpGetattr(dir), false, 'fuse-native as published')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
