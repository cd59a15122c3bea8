// Loads the FUSE binding: fuse-native's own JavaScript over the patched native
// module that src/fuse/binding/build.mjs builds at install time (see there for
// why). Only adapter.ts and daemon.ts use it; fs.ts never does.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { BlobfsError } from '../errors.ts'

const require = createRequire(import.meta.url)

/** The part of fuse-native's Fuse class blobfs uses. */
export interface FuseInstance {
  mount(cb: (error: Error | null) => void): void
  unmount(cb: (error: Error | null) => void): void
  _fuseOptions(): string
}

export interface FuseClass {
  new (mountpoint: string, ops: Record<string, unknown>, options: Record<string, unknown>): FuseInstance
  unmount(mountpoint: string, cb: (error: Error | null) => void): void
  ETIMEDOUT: number
}

export function patchedBindingDir(): string {
  return join(dirname(dirname(require.resolve('fuse-native/package.json'))), '.blobfs', 'fuse-native')
}

/**
 * Whether the built binding takes the direct I/O flag in the handle an open answers
 * (src/fuse/binding/build.mjs). A binding built before that patch would take the flag
 * as part of the handle: the daemon then sets neither the flag nor kernel attribute caching.
 */
export function bindingTakesDirectIo(dir = patchedBindingDir()): boolean {
  return bindingSourceHas(dir, 'l->info->direct_io = 1;')
}

/**
 * Whether the built binding takes the keep-cache flag in the handle an open answers
 * (src/fuse/binding/build.mjs). Without it the daemon never sets the flag, and the
 * kernel drops a file's pages at every open, as before the patch.
 */
export function bindingTakesKeepCache(dir = patchedBindingDir()): boolean {
  return bindingSourceHas(dir, 'l->info->keep_cache = 1;')
}

/**
 * Whether the built binding answers libfuse's getattr right after a create, mkdir,
 * chmod, chown, truncate, ftruncate or utimens from the attributes that operation replied
 * with (src/fuse/binding/build.mjs, attrMemoPatches). Without it those replies carry
 * no attributes and each such getattr is a call into JavaScript, as before the patch.
 */
export function bindingAnswersFollowUpGetattr(dir = patchedBindingDir()): boolean {
  return bindingSourceHas(dir, 'if (blobfs_memo_answers(l)) return 0;')
}

function bindingSourceHas(dir: string, line: string): boolean {
  try {
    return readFileSync(join(dir, 'fuse-native.c'), 'utf8').includes(line)
  } catch {
    return false
  }
}

let loaded: FuseClass | null = null

export function loadFuse(): FuseClass {
  if (loaded) return loaded
  const dir = patchedBindingDir()
  if (!existsSync(join(dir, 'build', 'Release', 'fuse.node'))) {
    throw new BlobfsError('NotSupported', `the patched fuse-native binding is not built in ${dir}: run \`npm run build:fuse\` (npm ci runs it)`)
  }
  loaded = require(dir) as FuseClass
  return loaded
}
