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
  ...attrMemoPatches(),
]

// libfuse 2.9's high-level API follows a successful create, mkdir, chmod, chown,
// truncate, ftruncate or utimens with a getattr of the same path, on the same thread,
// to fill its reply to the kernel (fuse_lib_create and fuse_lib_mkdir -> lookup_path;
// fuse_lib_setattr). symlink and link are followed by one too, but fuse-native's
// `path` there is not the new name: not covered. Each
// is a second hop to JavaScript for attributes the operation just had. Those
// operations now hand back, with their status, the attributes getattr would answer
// (src/fuse/adapter.ts, attrsAfter); the binding keeps them per thread and the next
// handler on that thread answers from them, without a hop, only if it is a getattr of
// the same path from the same requesting process. Every handler's entry clears them,
// and only a success sets them, so they never outlive the request that made them.
function attrMemoPatches() {
  /** The op's reply at argv[i] may be a stat array: keep it for the follow-up getattr. */
  const memo = (i) => `  blobfs_memo_set(env, argv[${i}], l, res);`
  /** A FUSE_METHOD_VOID whose reply now carries a stat array (argv[2]). */
  const voidOp = (name, callbackArgs, rest) => ({
    why: `${name} answers its attributes for the follow-up getattr`,
    from: `FUSE_METHOD_VOID(${name}, ${callbackArgs}, 0, ${rest}\n})`,
    to: `FUSE_METHOD(${name}, ${callbackArgs}, 1, ${rest}\n}, {\n${memo(2)}\n})`,
  })
  /** create, whose reply (the handle) now carries a stat array too (argv[3]). */
  const createOp = () => {
    const signature = '(const char *path, mode_t mode, struct fuse_file_info *info), {'
    const body = [
      '  l->path = path;',
      '  l->mode = mode;',
      '  l->info = info;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  napi_create_uint32(env, l->mode, &(argv[3]));',
      '}, {',
      '  NAPI_ARGV_INT32(fd, 2)',
      '  if (fd != 0) {',
      '    l->info->fh = fd;',
      '  }',
    ]
    return {
      why: 'create answers its attributes for the follow-up getattr',
      from: [`FUSE_METHOD(create, 2, 1, ${signature}`, ...body, '})'].join('\n'),
      to: [`FUSE_METHOD(create, 2, 2, ${signature}`, ...body, memo(3), '})'].join('\n'),
    }
  }
  return [
    {
      why: 'per-thread memo of the attributes an operation answered',
      from: '  uv_async_t async;\n\n} fuse_thread_locals_t;',
      to: [
        '  uv_async_t async;',
        '',
        '  // blobfs: attributes the last operation on this thread answered, for the',
        '  // getattr libfuse makes next for the same request (src/fuse/binding/build.mjs).',
        '  int blobfs_memo_valid;',
        '  pid_t blobfs_req_pid;',
        '  uid_t blobfs_req_uid;',
        '  pid_t blobfs_memo_pid;',
        '  uid_t blobfs_memo_uid;',
        '  struct stat blobfs_memo_stat;',
        '  char blobfs_memo_path[4096];',
        '} fuse_thread_locals_t;',
      ].join('\n'),
    },
    {
      why: 'helpers: keep an answered stat, answer a getattr from it',
      from: 'static void populate_statvfs (uint32_t *ints, struct statvfs* statvfs) {',
      to: [
        '// blobfs: on the JavaScript thread, while the operation\'s thread waits for this',
        '// reply. Kept only for a success with a whole stat array and a path that fits.',
        'static void blobfs_memo_set (napi_env env, napi_value value, fuse_thread_locals_t *l, int32_t res) {',
        '  l->blobfs_memo_valid = 0;',
        '  if (res != 0 || l->path == NULL) return;',
        '  bool is_typedarray = false;',
        '  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return;',
        '  napi_typedarray_type type;',
        '  size_t length;',
        '  void *data = NULL;',
        '  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return;',
        '  if (type != napi_uint32_array || length != 18 || data == NULL) return;',
        '  size_t path_len = strlen(l->path);',
        '  if (path_len >= sizeof(l->blobfs_memo_path)) return;',
        '  memcpy(l->blobfs_memo_path, l->path, path_len + 1);',
        '  memset(&l->blobfs_memo_stat, 0, sizeof(l->blobfs_memo_stat));',
        '  populate_stat((uint32_t *) data, &l->blobfs_memo_stat);',
        '  l->blobfs_memo_pid = l->blobfs_req_pid;',
        '  l->blobfs_memo_uid = l->blobfs_req_uid;',
        '  l->blobfs_memo_valid = 1;',
        '}',
        '',
        '// blobfs: at the entry of every handler, on its libfuse thread. Clears the memo;',
        '// answers (returns 1) only a getattr of the memo\'s path for the same requester.',
        'static int blobfs_memo_answers (fuse_thread_locals_t *l) {',
        '  struct fuse_context *ctx = fuse_get_context();',
        '  int valid = l->blobfs_memo_valid;',
        '  l->blobfs_memo_valid = 0;',
        '  if (valid && (l->op == op_getattr || l->op == op_fgetattr) && l->path != NULL && l->stat != NULL &&',
        '      ctx->pid == l->blobfs_memo_pid && ctx->uid == l->blobfs_memo_uid &&',
        '      strcmp(l->path, l->blobfs_memo_path) == 0) {',
        '    *(l->stat) = l->blobfs_memo_stat;',
        '    return 1;',
        '  }',
        '  l->blobfs_req_pid = ctx->pid;',
        '  l->blobfs_req_uid = ctx->uid;',
        '  return 0;',
        '}',
        '',
        'static void populate_statvfs (uint32_t *ints, struct statvfs* statvfs) {',
      ].join('\n'),
    },
    {
      why: 'every handler clears the memo; a getattr may be answered from it',
      from: '  blk\\\n  uv_async_send(&(l->async));\\\n',
      to: '  blk\\\n  if (blobfs_memo_answers(l)) return 0;\\\n  uv_async_send(&(l->async));\\\n',
    },
    createOp(),
    voidOp('utimens', 5, [
      '(const char *path, const struct timespec tv[2]), {',
      '  l->path = path;',
      '  l->atime = blobfs_utime_ms(&tv[0]);',
      '  l->mtime = blobfs_utime_ms(&tv[1]);',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)',
      '  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)',
    ].join('\n')),
    voidOp('truncate', 3, [
      '(const char *path, off_t size), {',
      '  l->path = path;',
      '  l->offset = size;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  FUSE_UINT64_TO_INTS_ARGV(l->offset, 3)',
    ].join('\n')),
    voidOp('ftruncate', 4, [
      '(const char *path, off_t size, struct fuse_file_info *info), {',
      '  l->path = path;',
      '  l->offset = size;',
      '  l->info = info;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  if (l->info != NULL) {',
      '    napi_create_uint32(env, l->info->fh, &(argv[3]));',
      '  } else {',
      '    napi_create_uint32(env, 0, &(argv[3]));',
      '  }',
      '  FUSE_UINT64_TO_INTS_ARGV(l->offset, 4)',
    ].join('\n')),
    voidOp('chown', 3, [
      '(const char *path, uid_t uid, gid_t gid), {',
      '  l->path = path;',
      '  l->uid = uid;',
      '  l->gid = gid;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  napi_create_uint32(env, l->uid, &(argv[3]));',
      '  napi_create_uint32(env, l->gid, &(argv[4]));',
    ].join('\n')),
    voidOp('mkdir', 2, [
      '(const char *path, mode_t mode), {',
      '  l->path = path;',
      '  l->mode = mode;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  napi_create_uint32(env, l->mode, &(argv[3]));',
    ].join('\n')),
    voidOp('chmod', 2, [
      '(const char *path, mode_t mode), {',
      '  l->path = path;',
      '  l->mode = mode;',
      '}, {',
      '  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));',
      '  napi_create_uint32(env, l->mode, &(argv[3]));',
    ].join('\n')),
  ]
}

// fuse-native's JavaScript drops every argument of an operation's callback after the
// status (and create's handle): these pass on a stat the adapter answers with, as
// the stat array getattr's reply carries (attrMemoPatches above).
const jsPatches = [
  ['create', 'this.ops.create(path, mode, (err, fd) => {\n      return signal(err, fd)', 'this.ops.create(path, mode, (err, fd, stat) => {\n      return signal(err, fd, stat ? getStatArray(stat) : undefined)'],
  ['utimens', 'this.ops.utimens(path, atime, mtime, err => {\n      return signal(err)', 'this.ops.utimens(path, atime, mtime, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
  ['truncate', 'this.ops.truncate(path, size, err => {\n      return signal(err)', 'this.ops.truncate(path, size, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
  ['ftruncate', 'this.ops.ftruncate(path, fd, size, err => {\n      return signal(err)', 'this.ops.ftruncate(path, fd, size, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
  ['chown', 'this.ops.chown(path, uid, gid, err => {\n      return signal(err)', 'this.ops.chown(path, uid, gid, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
  ['mkdir', 'this.ops.mkdir(path, mode, err => {\n      return signal(err)', 'this.ops.mkdir(path, mode, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
  ['chmod', 'this.ops.chmod(path, mode, err => {\n      return signal(err)', 'this.ops.chmod(path, mode, (err, stat) => {\n      return signal(err, stat ? getStatArray(stat) : undefined)'],
].map(([name, from, to]) => ({ why: `${name}'s callback passes on a stat`, from, to }))

const version = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')).version
assert.equal(version, expectedVersion, `fuse-native ${version} found; these patches are for ${expectedVersion}`)

rmSync(target, { recursive: true, force: true })
cpSync(source, target, {
  recursive: true,
  filter: (path) => !path.startsWith(join(source, 'prebuilds')) && !path.startsWith(join(source, 'build')),
})

function patchFile(file, filePatches, trailer) {
  let code = readFileSync(file, 'utf8')
  for (const patch of filePatches) {
    const count = code.split(patch.from).length - 1
    assert.equal(count, 1, `patch "${patch.why}": expected one match of ${patch.from}, found ${count}`)
    code = code.replace(patch.from, () => patch.to)
  }
  writeFileSync(file, code + trailer)
}
patchFile(join(target, 'fuse-native.c'), patches, '\n// blobfs: patched by src/fuse/binding/build.mjs\n')
patchFile(join(target, 'index.js'), jsPatches, '\n// blobfs: patched by src/fuse/binding/build.mjs\n')

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
