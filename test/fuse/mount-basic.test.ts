// Real mounts on /dev/fuse: the daemon (the real `blobfs mount` command over the
// in-memory object layer) in a child process, driven by ordinary tools in others.
// Basic operations, errors as the tools print them, attributes, statfs, the object
// layer's view of what was written, and a clean unmount on SIGTERM.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Counters } from './helpers/memory-objects.ts'
import { freePort } from '../support/ports.ts'
import { fuseOpsCounts, isMounted, ok, requireFuse, sh, startMount, withMount, withTempDirs } from './helpers/mount.ts'

const timeout = 120_000

test('FUSE is usable here (/dev/fuse and fusermount), or the run fails with an install hint', async () => {
  await requireFuse()
})

test('mount: files, directories, symlinks, rename and rm through the shell', { timeout }, async () => {
  await withMount(async (_mount, { mnt }) => {
    const out = await ok(
      [
        'set -e',
        'mkdir -p a/b/c',
        'echo hello > a/b/c/f.txt',
        'cat a/b/c/f.txt',
        'ln -s b/c/f.txt a/link',
        'readlink a/link',
        'cat a/link',
        'echo more >> a/b/c/f.txt',
        'cat a/b/c/f.txt',
        'mv a/b/c/f.txt a/moved.txt',
        'ls a',
        'ls a/b/c | wc -l',
        'rm a/moved.txt a/link',
        'rmdir a/b/c a/b',
        'ls a | wc -l',
      ].join('\n'),
      { cwd: mnt },
    )
    assert.equal(out, 'hello\nb/c/f.txt\nhello\nhello\nmore\nb\nlink\nmoved.txt\n0\n0\n')
  })
})

test('mount: the errors tools print (ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EPERM for hard links)', { timeout }, async () => {
  await withMount(async (_mount, { mnt }) => {
    await ok('mkdir d && echo x > d/f && echo y > file', { cwd: mnt })
    const cases: [string, RegExp][] = [
      ['cat missing', /No such file or directory/],
      ['mkdir d', /File exists/],
      ['rmdir d', /Directory not empty/],
      ['mkdir file/sub', /Not a directory/],
      ['rm d', /Is a directory/],
      ['ln file hardlink', /Operation not permitted/],
      ['mv d file', /Not a directory|cannot overwrite non-directory/],
    ]
    for (const [command, expected] of cases) {
      const result = await sh(command, { cwd: mnt })
      assert.notEqual(result.code, 0, command)
      assert.match(result.stderr, expected, command)
    }
  })
})

test('mount: chmod, chown, utimes (distinct atime and mtime), truncate and stat', { timeout }, async () => {
  await withMount(async (mount, { mnt }) => {
    await ok('echo 0123456789 > f && chmod 600 f && chown 1234:5678 f && truncate -s 4 f', { cwd: mnt })
    // atime 1000.5 s and mtime 2000.25 s: fuse-native 2.2.6 unpatched would deliver the atime for both.
    await ok(`${JSON.stringify(process.execPath)} -e "require('fs').utimesSync('f', 1000.5, 2000.25)"`, { cwd: mnt })
    const stat = await ok("stat -c '%a %u %g %s %Y' f", { cwd: mnt })
    assert.equal(stat.trim(), '600 1234 5678 4 2000')
    const head = await mount.request<{ posix: { mode: number; uid: number; mtimeMs: number }; sizeBytes: number }>({ cmd: 'head', key: 'f' })
    assert.equal(head.posix.mode & 0o7777, 0o600)
    assert.equal(head.posix.uid, 1234)
    assert.equal(head.posix.mtimeMs, 2_000_250, 'the mtime is kept to the millisecond')
    assert.equal(head.sizeBytes, 4)
    // Only one of the two times (atime UTIME_OMIT, as tar x sets them): libfuse 2.9 drops these
    // unless the binding declares flag_utime_omit_ok.
    await ok("touch -m -d '2003-04-05 06:07:08 UTC' f && touch -a -d '2010-01-01 00:00:00 UTC' f", { cwd: mnt })
    assert.equal((await ok("stat -c '%Y' f", { cwd: mnt })).trim(), String(Date.UTC(2003, 3, 5, 6, 7, 8) / 1000))
    const before = Date.now()
    await ok('touch f', { cwd: mnt }) // UTIME_NOW
    assert.ok(Number((await ok("stat -c '%Y' f", { cwd: mnt })).trim()) * 1000 >= before - 1000)
  })
})

test('mount: what is written is byte-equal in the object layer, and a PUT there shows in the mount', { timeout }, async () => {
  await withMount(
    async (mount, { mnt }) => {
      const written = await ok('head -c 3000000 /dev/urandom > data.bin && sha256sum data.bin', { cwd: mnt })
      assert.equal(await mount.request({ cmd: 'sha256', key: 'data.bin' }), written.split(' ')[0])
      const body = Buffer.from('put over the object layer\n')
      await mount.request({ cmd: 'put', key: 'from-s3/hello.txt', base64: body.toString('base64') })
      // With --cache-ttl-ms 0 the TTL has already passed: the very next look sees it.
      assert.equal(await ok('cat from-s3/hello.txt', { cwd: mnt }), body.toString())
      assert.match(await ok('ls', { cwd: mnt }), /from-s3/)
    },
    ['--cache-ttl-ms', '0'],
  )
})

test('mount: df shows the cluster capacity and usage (statfs)', { timeout }, async () => {
  await withMount(async (_mount, { mnt }) => {
    await ok('head -c 5000000 /dev/zero > five-mb', { cwd: mnt })
    const df = await ok(`df -B1 --output=source,size,used '${mnt}' | tail -1`)
    const [source, size, used] = df.trim().split(/\s+/)
    assert.equal(source, 'blobfs:b')
    assert.equal(Number(size), 1024 ** 4)
    assert.ok(Number(used) >= 5_000_000 && Number(used) < 5_100_000, `used ${used}`)
  })
})

test('mount: large reads and writes go through in big requests (big_writes, max_read)', { timeout }, async () => {
  const port = await freePort()
  await withMount(
    async (mount, { mnt }) => {
      assert.match(await ok(`grep ' ${mnt} ' /proc/mounts`), /max_read=131072/)
      await mount.request({ cmd: 'reset' })
      const writesBefore = (await fuseOpsCounts(port)).write ?? 0
      // The kernel keeps the pages of a file this mount wrote (keep_cache after its own commit): they are
      // dropped (posix_fadvise DONTNEED, as fio does) so that `cat` reads through the daemon.
      await ok('dd if=/dev/zero of=zeros bs=1M count=8 status=none && dd if=zeros iflag=nocache count=0 status=none && cat zeros > /dev/null', { cwd: mnt })
      // 8 MiB in 128 KiB requests is 64 writes; without big_writes it would be 2,048 of 4 KiB.
      assert.ok(((await fuseOpsCounts(port)).write ?? 0) - writesBefore <= 64, 'writes of 128 KiB')
      // The read cache says where the blocks of those reads were: 64 blocks of 128 KiB, each counted once.
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const blockReads = [...metrics.matchAll(/^blobfs_fuse_block_reads\{result="(hit|wait|miss)"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[2]), 0)
      assert.equal(blockReads, 64)
      assert.match(metrics, /^blobfs_fuse_readahead_in_flight_bytes \d+$/m)
      const counters = await mount.request<Counters>({ cmd: 'counters' })
      assert.equal(counters.calls.putObject, 1)
      assert.equal(counters.putBytes, 8 * 1024 * 1024)
      const sum = createHash('sha256').update(Buffer.alloc(8 * 1024 * 1024)).digest('hex')
      assert.equal(await mount.request({ cmd: 'sha256', key: 'zeros' }), sum)
      // A new file closed empty while a dup of its descriptor stays open (what `cmd > file` does):
      // no empty upload first, one upload at the last close.
      await mount.request({ cmd: 'reset' })
      await ok('exec 3>dup && exec 4>&3 && exec 3>&- && printf hi >&4 && exec 4>&-', { cwd: mnt })
      assert.equal((await mount.request<Counters>({ cmd: 'counters' })).calls.putObject, 1)
      assert.equal(await ok('cat dup', { cwd: mnt }), 'hi')
    },
    ['--metrics', `127.0.0.1:${port}`],
  )
})

test('SIGTERM unmounts cleanly and the daemon exits 0; a stale mount is cleared at the next mount', { timeout }, async () => {
  await requireFuse()
  await withTempDirs(async ({ mnt, data }) => {
    const first = await startMount(mnt, data)
    await ok('echo kept > kept.txt', { cwd: mnt })
    assert.equal(await first.stop('SIGTERM'), 0)
    assert.equal(await isMounted(mnt), false)

    const second = await startMount(mnt, data)
    try {
      assert.equal(await ok('cat kept.txt', { cwd: mnt }), 'kept\n')
      await second.stop('SIGKILL')
      assert.equal(await isMounted(mnt), true, 'a killed daemon leaves its mount behind')
      const third = await startMount(mnt, data)
      assert.equal(await ok('cat kept.txt', { cwd: mnt }), 'kept\n')
      assert.equal(await third.stop('SIGINT'), 0)
      assert.equal(await isMounted(mnt), false)
    } finally {
      await second.stop('SIGKILL')
    }
  })
})

test('without --foreground the command returns once the mount answers; blobfs umount unmounts', { timeout }, async () => {
  await requireFuse()
  await withTempDirs(async ({ mnt, data, work }) => {
    const daemonScript = fileURLToPath(new URL('./helpers/mount-daemon.ts', import.meta.url))
    const started = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', daemonScript, 'mount', 'b', mnt, '--data', data, '--log-level', 'warn', '--log-file', `${work}/mount.log`], { stdio: ['ignore', 'pipe', 'inherit'] })
      let stdout = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.on('close', (code) => resolve({ code, stdout }))
    })
    assert.equal(started.code, 0)
    assert.match(started.stdout, /blobfs mount ready: b on /)
    assert.equal(await isMounted(mnt), true)
    await ok('echo in-background > f && cat f', { cwd: mnt })
    // [m] keeps pgrep from matching the shell that runs it.
    const pids = (await ok(`pgrep -f -- '[m]ount-daemon.ts mount b ${mnt} '`)).trim().split('\n')
    assert.equal(pids.length, 1)
    await ok(`${JSON.stringify(process.execPath)} --import tsx '${daemonScript}' umount '${mnt}'`)
    assert.equal(await isMounted(mnt), false)
    // The daemon sees its mount gone and exits by itself (bounded wait, no timing asserted).
    const exited = await sh(`for i in $(seq 1 100); do kill -0 ${pids[0]} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${pids[0]}; exit 1`)
    assert.equal(exited.code, 0, 'the background daemon did not exit after blobfs umount')
  })
})

test('mount: what the kernel sees or is refused: directory nlink, atime, FIFOs, xattrs, flock, mmap, inode numbers, owner of new files', { timeout }, async () => {
  await withMount(async (_mount, { mnt }) => {
    await ok('mkdir -p d/sub1 d/sub2 && echo hello > d/f && touch -d "2005-06-07 08:09:10 UTC" d/f', { cwd: mnt })
    // st_nlink of a directory is always 2: subdirectories are not counted.
    assert.equal((await ok("stat -c '%h' d", { cwd: mnt })).trim(), '2')
    // A directory's mtime does not change when entries are added or removed (not tracked).
    await ok('touch -d "2001-02-03 04:05:06 UTC" d && echo new > d/added && rm d/added && echo kept > d/kept', { cwd: mnt })
    assert.equal((await ok("stat -c '%Y' d", { cwd: mnt })).trim(), String(Date.UTC(2001, 1, 3, 4, 5, 6) / 1000))
    // atime is not kept: it shows the mtime.
    assert.equal((await ok("stat -c '%X %Y' d/f", { cwd: mnt })).trim(), `${Date.UTC(2005, 5, 7, 8, 9, 10) / 1000} ${Date.UTC(2005, 5, 7, 8, 9, 10) / 1000}`)
    // FIFOs and devices: EPERM.
    const fifo = await sh('mkfifo pipe', { cwd: mnt })
    assert.notEqual(fifo.code, 0)
    assert.match(fifo.stderr, /Operation not permitted/)
    // Extended attributes: ENOTSUP, and nothing is stored.
    const xattr = await sh(`python3 -c "import os; os.setxattr('d/f', 'user.k', b'v')"`, { cwd: mnt })
    assert.notEqual(xattr.code, 0)
    assert.match(xattr.stderr, /Operation not supported/)
    // Advisory locks: local to this machine, kept by the kernel: a second exclusive flock fails while the first holds.
    const lock = await ok('flock -x d/f -c "flock -xn d/f -c true && echo second-got-it || echo second-refused"', { cwd: mnt })
    assert.equal(lock.trim(), 'second-refused')
    // mmap reads go through read().
    assert.equal(await ok(`python3 -c "import mmap; f = open('d/f', 'rb'); print(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:].decode(), end='')"`, { cwd: mnt }), 'hello\n')
    // Inode numbers: distinct per entry within a mount session.
    const inodes = (await ok("stat -c '%i' d d/f d/sub1 d/sub2", { cwd: mnt })).trim().split('\n')
    assert.equal(new Set(inodes).size, 4)
    // New files belong to the mounting user.
    assert.equal((await ok("stat -c '%u %g' d/f", { cwd: mnt })).trim(), `${process.getuid!()} ${process.getgid!()}`)
  })
})

test('mount --allow-other: other users get in, and the kernel enforces the modes kept in the catalog', { timeout }, async () => {
  assert.equal(process.getuid!(), 0, 'this test switches to the user nobody with runuser: run the suite as root (as CI does)')
  await withMount(
    async (_mount, { root, mnt }) => {
      await ok(`chmod 711 '${root}'`)
      await ok('echo open > public && echo secret > private && chmod 644 public && chmod 600 private', { cwd: mnt })
      assert.equal(await ok(`runuser -u nobody -- cat '${mnt}/public'`), 'open\n')
      const denied = await sh(`runuser -u nobody -- cat '${mnt}/private'`)
      assert.notEqual(denied.code, 0)
      assert.match(denied.stderr, /Permission denied/)
      const write = await sh(`runuser -u nobody -- sh -c "echo x > '${mnt}/public'"`)
      assert.match(write.stderr, /Permission denied/, 'nobody cannot write a 644 file of root')
      assert.equal(await ok(`cat '${mnt}/public'`), 'open\n')
    },
    ['--allow-other'],
  )
})

test('blobfs umount refuses while a file is open there (EBUSY); umount -z detaches at once', { timeout }, async () => {
  await requireFuse()
  await withTempDirs(async ({ mnt, data }) => {
    const mount = await startMount(mnt, data)
    await ok(`echo held > '${mnt}/held'`)
    const holder = spawn('sh', ['-c', `exec 3<'${mnt}/held'; echo open; sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] })
    try {
      const daemonScript = fileURLToPath(new URL('./helpers/mount-daemon.ts', import.meta.url))
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))
      const busy = await sh(`${JSON.stringify(process.execPath)} --import tsx '${daemonScript}' umount '${mnt}'`)
      assert.notEqual(busy.code, 0)
      assert.match(busy.stderr, /busy/i)
      assert.equal(await isMounted(mnt), true)
      await ok(`${JSON.stringify(process.execPath)} --import tsx '${daemonScript}' umount -z '${mnt}'`)
      assert.equal(await isMounted(mnt), false)
    } finally {
      holder.kill('SIGKILL')
      await mount.stop('SIGTERM')
    }
  })
})

test('mount: a file removed while open is read on through its descriptor, kept under a hidden name until the last close, then gone', { timeout }, async () => {
  await withMount(async (mount, { mnt }) => {
    await ok('printf "still here\\n" > f', { cwd: mnt })
    // Holds f open on descriptor 3, removes it, and reads it after the test has looked.
    const child = spawn('sh', ['-c', 'exec 3< f; rm f; echo removed; read _; cat <&3'], { cwd: mnt, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (piece: Buffer) => (out += piece.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    try {
      while (!out.includes('removed')) await new Promise((resolve) => setTimeout(resolve, 20))
      // libfuse 2 turns the unlink of an open file into a rename (no bytes move).
      const hidden = (await mount.request<string[]>({ cmd: 'keys' })).filter((key) => key !== 'f')
      assert.equal((await mount.request<string[]>({ cmd: 'keys' })).includes('f'), false, 'the name is gone at once')
      assert.equal(hidden.length, 1)
      assert.match(hidden[0]!, /^\.fuse_hidden/)
      assert.equal(await ok('ls', { cwd: mnt }), '', 'ls shows nothing')
      assert.equal(await ok('ls -A', { cwd: mnt }), `${hidden[0]}\n`, 'a dot file')
      child.stdin.end('\n')
      assert.equal(await exited, 0)
      assert.equal(out, 'removed\nstill here\n', 'the open descriptor read the whole file')
      // The kernel sends the release after close(2) has returned: the hidden name goes with it.
      let keys = await mount.request<string[]>({ cmd: 'keys' })
      for (let tries = 0; keys.length > 0 && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        keys = await mount.request<string[]>({ cmd: 'keys' })
      }
      assert.deepEqual(keys, [], 'after the last close nothing is left')
    } finally {
      child.kill()
    }
  })
})
