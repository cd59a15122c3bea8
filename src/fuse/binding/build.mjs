// Builds fuse-native from its own npm sources with a few patches, into
// node_modules/.blobfs/fuse-native (run by `npm ci` through package.json's install
// script, or by hand: `node src/fuse/binding/build.mjs`).
//
// Why: fuse-native 2.2.6's C glue hands JavaScript the access time twice in
// utimens, so the modification time that utimensat(2) sets never reaches the
// filesystem — `touch -d`, `cp -p`, `tar x` and `rsync -a` lose every mtime, and a
// second `rsync -a` copies everything again. The headers it compiles against ship
// inside fuse-shared-library-linux, so no Debian -dev package is needed; the
// result still loads the system libfuse.so.2. Each patch must match exactly once,
// so a different fuse-native version fails here, loudly, rather than at mount time.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const source = dirname(require.resolve('fuse-native/package.json'))
const target = join(dirname(source), '.blobfs', 'fuse-native')
const expectedVersion = '2.2.6'

// Sentinels for UTIME_OMIT / UTIME_NOW, in milliseconds: exact in a JS number (< 2^53)
// and far past any real date. src/fuse/adapter.ts holds the same two numbers.
const utimeOmitMs = '4503599627370497ULL' // 2^52 + 1
const utimeNowMs = '4503599627370498ULL' // 2^52 + 2
// Set in the handle an open answers: that open gets direct I/O. src/fuse/adapter.ts holds the same number.
const directIoFlag = '0x40000000'
// Set in the handle an open answers: the kernel keeps the file's page cache. src/fuse/adapter.ts holds the same number.
const keepCacheFlag = '0x20000000'

const patches = [
  {
    why: 'utimens passed atime in the mtime slot',
    from: 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)',
    to: 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)',
  },
  {
    // libfuse 2.9 drops a change of one time only (touch -m, tar x: atime UTIME_OMIT)
    // unless the filesystem says it understands UTIME_OMIT and UTIME_NOW.
    why: 'mtime-only changes never reached the filesystem',
    from: 'struct fuse_operations ops = { };',
    to: 'struct fuse_operations ops = { };\n  ops.flag_utime_omit_ok = 1;',
  },
  {
    why: 'UTIME_OMIT and UTIME_NOW must reach JavaScript as themselves',
    from: '  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);',
    to: '  l->atime = blobfs_utime_ms(&tv[0]);\n  l->mtime = blobfs_utime_ms(&tv[1]);',
  },
  {
    why: 'helper for the above',
    from: 'static uint64_t timespec_to_uint64 (const struct timespec* ts) {',
    to: [
      'static uint64_t timespec_to_uint64 (const struct timespec* ts);',
      'static uint64_t blobfs_utime_ms (const struct timespec* ts) {',
      `  if (ts->tv_nsec == UTIME_OMIT) return ${utimeOmitMs};`,
      `  if (ts->tv_nsec == UTIME_NOW) return ${utimeNowMs};`,
      '  return timespec_to_uint64(ts);',
      '}',
      'static uint64_t timespec_to_uint64 (const struct timespec* ts) {',
    ].join('\n'),
  },
  {
    // With attributes cached in the kernel, a file committed elsewhere may still have
    // its old size there; an open whose reads must not stop at that size asks for
    // direct I/O (src/fuse/adapter.ts, directIoFlag) in a high bit of the handle.
    why: 'open can ask for direct I/O',
    from: '  NAPI_ARGV_INT32(fd, 2)\n  if (fd != 0) {\n    l->info->fh = fd;\n  }\n})\n\nFUSE_METHOD(opendir',
    to: `  NAPI_ARGV_INT32(fd, 2)\n  if (fd & ${directIoFlag}) {\n    l->info->direct_io = 1;\n    fd &= ~${directIoFlag};\n  }\n  if (fd != 0) {\n    l->info->fh = fd;\n  }\n})\n\nFUSE_METHOD(opendir`,
  },
  {
    // Without keep_cache libfuse tells the kernel to drop the file's pages at every
    // open; an open that finds the very version the kernel holds pages of keeps them
    // (src/fuse/fs.ts, kernelVersions; src/fuse/adapter.ts, keepCacheFlag).
    why: 'open can keep the page cache',
    from: `    fd &= ~${directIoFlag};\n  }\n  if (fd != 0) {`,
    to: `    fd &= ~${directIoFlag};\n  }\n  if (fd & ${keepCacheFlag}) {\n    l->info->keep_cache = 1;\n    fd &= ~${keepCacheFlag};\n  }\n  if (fd != 0) {`,
  },
]

const version = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')).version
assert.equal(version, expectedVersion, `fuse-native ${version} found; these patches are for ${expectedVersion}`)

rmSync(target, { recursive: true, force: true })
cpSync(source, target, {
  recursive: true,
  filter: (path) => !path.startsWith(join(source, 'prebuilds')) && !path.startsWith(join(source, 'build')),
})

const cFile = join(target, 'fuse-native.c')
let code = readFileSync(cFile, 'utf8')
for (const patch of patches) {
  const count = code.split(patch.from).length - 1
  assert.equal(count, 1, `patch "${patch.why}": expected one match of ${patch.from}, found ${count}`)
  code = code.replace(patch.from, patch.to)
}
code += '\n// blobfs: patched by src/fuse/binding/build.mjs\n'
writeFileSync(cFile, code)

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean)
  for (const candidate of candidates) if (existsSync(candidate)) return [process.execPath, candidate]
  return ['node-gyp']
}

// Under npm, npm_config_nodedir reaches node-gyp through the environment; run by
// hand, use the headers installed beside this node when there are some (no network).
const nodePrefix = join(dirname(process.execPath), '..')
const nodedir = !process.env.npm_config_nodedir && existsSync(join(nodePrefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodePrefix}`] : []
const [command, ...args] = nodeGyp()
const result = spawnSync(command, [...args, 'rebuild', ...nodedir, `--directory=${target}`], { stdio: 'inherit' })
if (result.status !== 0) {
  console.error('blobfs: building the patched fuse-native failed (needs make, g++ and python3: .ci/install-deps)')
  process.exit(result.status ?? 1)
}
assert.ok(existsSync(join(target, 'build', 'Release', 'fuse.node')), 'fuse.node was not built')
console.log(`blobfs: patched fuse-native ${version} built in ${target}`)
