// Real mounts driven by the tools people use on them: cp -r, rsync -a (twice, and
// --checksum), tar x / tar c, dd + sha256sum, mv of a big file and of a directory
// with many entries (catalog only: no bytes written), and a daemon killed with
// SIGKILL in the middle of a write. The daemon runs in a child process over the
// in-memory object layer; each tool runs in a child process of its own.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import type { Counters } from './helpers/memory-objects.ts'
import { isMounted, ok, requireFuse, sh, startMount, withMount, withTempDirs } from './helpers/mount.ts'

const timeout = 300_000
const bigMiB = 64

/** A tree of mixed files: empty, tiny, one large, deep directories, spaces and unicode in names, an empty directory. */
async function makeTree(dir: string): Promise<void> {
  await ok(
    [
      'set -e',
      `mkdir -p '${dir}'`,
      `cd '${dir}'`,
      ': > empty',
      'printf x > one-byte',
      'echo tiny > tiny.txt',
      `head -c ${bigMiB * 1024 * 1024} /dev/urandom > large.bin`,
      'mkdir -p "deep/a/b/c/d/e/f/g/h/i/j"',
      'echo bottom > "deep/a/b/c/d/e/f/g/h/i/j/leaf"',
      'mkdir "with spaces" "ünïcödé 日本語 🚀"',
      'echo spaced > "with spaces/a file with spaces.txt"',
      'echo unicode > "ünïcödé 日本語 🚀/fïlé ✓.txt"',
      'mkdir empty-dir',
      'for i in $(seq 1 40); do head -c $((i * 37)) /dev/urandom > "deep/a/small-$i"; done',
      'chmod 600 tiny.txt',
      'chmod 750 deep/a',
      'touch -d "2001-02-03 04:05:06" one-byte',
    ].join('\n'),
  )
}

test('cp -r of a mixed tree into the mount and back out: diff -r finds nothing', { timeout }, async () => {
  await withMount(async (_mount, { mnt, work }) => {
    await makeTree(`${work}/src`)
    await ok(`cp -r '${work}/src' '${mnt}/tree'`, { timeoutMs: 120_000 })
    await ok(`diff -r '${work}/src' '${mnt}/tree'`, { timeoutMs: 120_000 })
    await ok(`cp -r '${mnt}/tree' '${work}/out'`, { timeoutMs: 120_000 })
    await ok(`diff -r '${work}/src' '${work}/out'`)
    assert.equal(await ok(`find '${mnt}/tree' | wc -l`), await ok(`find '${work}/src' | sed 's/x/x/' | wc -l`))
    assert.equal((await ok(`ls -A '${mnt}/tree/empty-dir' | wc -l`)).trim(), '0')
  })
})

test('rsync -a twice: the second run transfers nothing; rsync --checksum agrees', { timeout }, async () => {
  await withMount(async (_mount, { mnt, work }) => {
    await makeTree(`${work}/src`)
    await ok(`rsync -a '${work}/src/' '${mnt}/tree/'`, { timeoutMs: 120_000 })
    const second = await ok(`rsync -a --stats --itemize-changes '${work}/src/' '${mnt}/tree/'`, { timeoutMs: 120_000 })
    assert.match(second, /Number of regular files transferred: 0\n/, second)
    const itemized = second.split('\n').filter((line) => /^[<>ch.*][fdLDS]/.test(line) && !/^\.d\.\.t\.\.\.\.\.\. \.\/$/.test(line))
    assert.deepEqual(itemized, [], 'nothing itemized: sizes, mtimes and modes all kept')
    const checksum = await ok(`rsync -a --checksum --dry-run --itemize-changes '${work}/src/' '${mnt}/tree/'`, { timeoutMs: 120_000 })
    assert.deepEqual(checksum.split('\n').filter((line) => line.startsWith('>f')), [], checksum)
    await ok(`diff -r '${work}/src' '${mnt}/tree'`, { timeoutMs: 120_000 })
  })
})

test('tar x into the mount and tar c out of it round-trip (contents, modes, mtimes)', { timeout }, async () => {
  await withMount(async (_mount, { mnt, work }) => {
    await makeTree(`${work}/src`)
    await ok(`tar -C '${work}' -cf '${work}/in.tar' src`)
    await ok(`tar -C '${mnt}' -xf '${work}/in.tar'`, { timeoutMs: 120_000 })
    await ok(`tar -C '${mnt}' -cf '${work}/out.tar' src`, { timeoutMs: 120_000 })
    // Same members with the same mode, owner, size, mtime and name (directories' own mtimes aside).
    const listing = async (tarball: string) => (await ok(`tar -tvf '${tarball}' --full-time | grep -v '^d' | sort`)).trim()
    assert.equal(await listing(`${work}/out.tar`), await listing(`${work}/in.tar`))
    await ok(`mkdir '${work}/x' && tar -C '${work}/x' -xf '${work}/out.tar' && diff -r '${work}/src' '${work}/x/src'`)
  })
})

test('sha256sum of a file written with dd and read back', { timeout }, async () => {
  await withMount(async (mount, { mnt, work }) => {
    const [local] = (await ok(`head -c ${96 * 1024 * 1024} /dev/urandom > '${work}/r' && sha256sum '${work}/r'`)).split(' ')
    await ok(`dd if='${work}/r' of='${mnt}/written' bs=1M status=none`, { timeoutMs: 120_000 })
    const [mounted] = (await ok(`sha256sum '${mnt}/written'`, { timeoutMs: 120_000 })).split(' ')
    assert.equal(mounted, local)
    assert.equal(await mount.request({ cmd: 'sha256', key: 'written' }), local)
  })
})

test('mv of a big file and of a directory with 2,000 entries: catalog only, no bytes written', { timeout }, async () => {
  await withMount(async (mount, { mnt }) => {
    await ok(`dd if=/dev/urandom of='${mnt}/big' bs=1M count=${bigMiB} status=none`, { timeoutMs: 120_000 })
    const [before] = (await ok(`sha256sum '${mnt}/big'`)).split(' ')
    await ok(`mkdir '${mnt}/dir'`)
    await mount.request({ cmd: 'putMany', prefix: 'dir/entry-', count: 2000 })
    await mount.request({ cmd: 'reset' })
    await ok(`mv '${mnt}/big' '${mnt}/big-renamed' && mv '${mnt}/dir' '${mnt}/dir-renamed'`)
    const counters = await mount.request<Counters>({ cmd: 'counters' })
    assert.equal(counters.calls.putObject, 0)
    assert.equal(counters.putBytes, 0)
    assert.equal(counters.calls.renameObject, 1)
    assert.equal(counters.calls.renamePrefix, 1, 'the directory moved in one renamePrefix (one transaction)')
    assert.equal(counters.getBytes, 0, 'and nothing was read to do it')
    assert.equal((await ok(`ls '${mnt}/dir-renamed' | wc -l`)).trim(), '2000')
    assert.equal((await sh(`ls '${mnt}/dir'`)).code, 2)
    const [after] = (await ok(`sha256sum '${mnt}/big-renamed'`)).split(' ')
    assert.equal(after, before)
  })
})

test('the daemon SIGKILLed during a write: no partial object is visible, and a remount works', { timeout }, async () => {
  await requireFuse()
  await withTempDirs(async ({ mnt, data }) => {
    const first = await startMount(mnt, data)
    await ok(`echo committed > '${mnt}/committed.txt'`)
    // A writer that has written 1 MiB and keeps the file open (no close, so nothing is committed).
    const writer = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(`${mnt}/partial.bin`)}, 'w'); fs.writeSync(fd, Buffer.alloc(1 << 20, 7)); console.log('wrote'); setTimeout(() => {}, 120000)`], { stdio: ['ignore', 'pipe', 'ignore'] })
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.on('data', (d: Buffer) => d.toString().includes('wrote') && resolve())
        writer.once('exit', () => reject(new Error('the writer exited before writing')))
      })
      assert.deepEqual(await first.request({ cmd: 'keys' }), ['committed.txt'])
      await first.stop('SIGKILL')
    } finally {
      writer.kill('SIGKILL')
      await first.stop('SIGKILL')
    }
    assert.equal(await isMounted(mnt), true, 'the killed daemon left its mount')
    const second = await startMount(mnt, data)
    try {
      assert.deepEqual(await second.request({ cmd: 'keys' }), ['committed.txt'])
      assert.equal(await ok(`ls '${mnt}'`), 'committed.txt\n')
      assert.equal(await ok(`cat '${mnt}/committed.txt'`), 'committed\n')
      await ok(`echo after > '${mnt}/after.txt' && cat '${mnt}/after.txt'`)
    } finally {
      assert.equal(await second.stop('SIGTERM'), 0)
    }
  })
})
