// mount/mount.fuse.blobfs: the argument translation mount(8) and fstab rely on, and a
// real mount through it (the `blobfs` it runs is pointed at the test daemon, which is
// the real mount command over the in-memory object layer).
import assert from 'node:assert/strict'
import { chmod, writeFile } from 'node:fs/promises'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isMounted, ok, requireFuse, sh, withTempDirs } from './helpers/mount.ts'

const helper = fileURLToPath(new URL('../../mount/mount.fuse.blobfs', import.meta.url))
const daemonScript = fileURLToPath(new URL('./helpers/mount-daemon.ts', import.meta.url))

test('mount.fuse.blobfs turns -o options into blobfs mount flags and ignores mount(8)-only ones', async () => {
  await withTempDirs(async ({ work }) => {
    const printArgs = `${work}/print-args`
    await writeFile(printArgs, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    await chmod(printArgs, 0o755)
    const out = await ok(`BLOBFS='${printArgs}' '${helper}' photos/2024 /mnt/p -o rw,_netdev,noauto,x-systemd.automount,catalog=postgres://u@db:26257/blobfs?sslmode=disable,allow_other -o cache_ttl_ms=250,uid=1000,gid=100,file_mode=640,dir_mode=750`)
    assert.deepEqual(out.trim().split('\n'), [
      'mount', 'photos/2024', '/mnt/p',
      '--catalog', 'postgres://u@db:26257/blobfs?sslmode=disable',
      '--allow-other',
      '--cache-ttl-ms', '250',
      '--uid', '1000', '--gid', '100',
      '--file-mode', '640', '--dir-mode', '750',
    ])
    const unknown = await sh(`BLOBFS='${printArgs}' '${helper}' b /mnt/p -o bogus=1`)
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /unknown option bogus=1/)
    const readOnly = await sh(`BLOBFS='${printArgs}' '${helper}' b /mnt/p -o ro`)
    assert.equal(readOnly.code, 1)
    assert.match(readOnly.stderr, /read-only/)
    assert.equal((await sh(`'${helper}' onlyone`)).code, 1)
  })
})

test('a real mount through mount.fuse.blobfs, as mount -t fuse.blobfs would run it', { timeout: 120_000 }, async () => {
  await requireFuse()
  await withTempDirs(async ({ mnt, data, work }) => {
    const blobfs = `${work}/blobfs`
    await writeFile(blobfs, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(daemonScript)} "$@"\n`)
    await chmod(blobfs, 0o755)
    await ok(`BLOBFS='${blobfs}' '${helper}' b '${mnt}' -o data='${data}',cache_ttl_ms=0,log_level=warn,log_file='${work}/mount.log',_netdev`, { timeoutMs: 60_000 })
    try {
      assert.equal(await isMounted(mnt), true)
      assert.equal(await ok(`echo through-the-helper > '${mnt}/f' && cat '${mnt}/f'`), 'through-the-helper\n')
      assert.match(await ok(`grep ' ${mnt} ' /proc/mounts`), /^blobfs:b \S+ fuse\.blobfs /)
    } finally {
      await sh(`fusermount -u '${mnt}'`)
    }
    assert.equal(await isMounted(mnt), false)
    // The daemon exits once its mount is gone (bounded wait).
    const gone = await sh(`for i in $(seq 1 100); do pgrep -f -- '[m]ount-daemon.ts mount b ${mnt} ' >/dev/null || exit 0; sleep 0.1; done; exit 1`)
    assert.equal(gone.code, 0)
  })
})
