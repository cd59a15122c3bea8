// N-API binding of the Reed-Solomon codec. JavaScript validates and C validates
// again (C never trusts its caller): every argument is checked here before a
// single byte is computed, and the kernels then work in the caller's buffers
// without copies. A bad argument throws TypeError/RangeError; nothing crashes.
#define NAPI_VERSION 8
#include <node_api.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf.h"
#include "kernels.h"

// Decode matrices are cached per erasure pattern: repair and degraded reads hit
// the same few patterns over and over, and inverting a 32x32 matrix plus
// expanding its tables costs more than decoding a small range.
#define DECODE_CACHE_ENTRIES 16
#define SHARD_WORDS ((RS_SHARDS_MAX + 63) / 64)

// The shard roles reconstruct() takes, one byte per shard.
enum { ROLE_MISSING = 0, ROLE_PRESENT = 1, ROLE_WANTED = 2 };

// A matrix ready for the kernels: which shards it reads, which it writes.
// Reference-counted, on the JS thread only: the cache holds one reference and
// each asynchronous call in flight holds one.
typedef struct rs_plan {
  int refs;
  uint64_t key[2 * SHARD_WORDS];  // input bitmap, then output bitmap
  uint64_t last_used;
  int nin;
  int nout;
  uint8_t inputs[RS_SHARDS_MAX];
  uint8_t outputs[RS_SHARDS_MAX];
  rs_matrix matrix;
  uint8_t *coeffs;
  uint8_t *tables;
  uint64_t *affine;
} rs_plan;

typedef struct {
  int k;
  int m;
  int n;
  rs_kernel kernel;
  uint8_t *generator;  // n x k
  rs_plan *encode_plan;
  rs_plan *cache[DECODE_CACHE_ENTRIES];
  uint64_t clock;
  double cache_hits;
  double cache_misses;
} rs_codec;

static rs_kernel default_kernel = RS_KERNEL_SCALAR;

// ---- errors ---------------------------------------------------------------

#define NAPI_OK(env, call)                                              \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      throw_pending_or(env, "blobfs codec: N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static void throw_pending_or(napi_env env, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_error(env, NULL, message);
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return NULL;
}

// ---- plans ----------------------------------------------------------------

static rs_plan *plan_new(int nin, int nout) {
  rs_plan *plan = calloc(1, sizeof(rs_plan));
  if (plan == NULL) return NULL;
  plan->coeffs = malloc((size_t)nin * (size_t)nout);
  // The kernels use aligned vector loads on the tables (a multiple of 64 bytes).
  plan->tables = aligned_alloc(64, (size_t)nin * (size_t)nout * GF_TABLE_BYTES);
  plan->affine = malloc((size_t)nin * (size_t)nout * sizeof(uint64_t));
  if (plan->coeffs == NULL || plan->tables == NULL || plan->affine == NULL) {
    free(plan->coeffs);
    free(plan->tables);
    free(plan->affine);
    free(plan);
    return NULL;
  }
  plan->refs = 1;
  plan->nin = nin;
  plan->nout = nout;
  return plan;
}

static void plan_finish(rs_plan *plan) {
  bfs_gf_expand_tables(plan->coeffs, plan->nout, plan->nin, plan->tables);
  bfs_gf_expand_affine(plan->coeffs, plan->nout, plan->nin, plan->affine);
  plan->matrix.nin = plan->nin;
  plan->matrix.nout = plan->nout;
  plan->matrix.coeffs = plan->coeffs;
  plan->matrix.tables = plan->tables;
  plan->matrix.affine = plan->affine;
}

static void plan_release(rs_plan *plan) {
  if (plan == NULL) return;
  if (--plan->refs > 0) return;
  free(plan->coeffs);
  free(plan->tables);
  free(plan->affine);
  free(plan);
}

static void codec_free(rs_codec *codec) {
  if (codec == NULL) return;
  plan_release(codec->encode_plan);
  for (int i = 0; i < DECODE_CACHE_ENTRIES; i++) plan_release(codec->cache[i]);
  free(codec->generator);
  free(codec);
}

static void codec_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  codec_free((rs_codec *)data);
}

// Builds the plan that rebuilds `outputs` from `inputs` (exactly k present
// shards). Returns NULL when out of memory, or with *singular set when the
// submatrix cannot be inverted (a broken invariant: every k x k submatrix of
// the generator is invertible; the caller throws rather than write bytes).
static rs_plan *plan_decode(const rs_codec *codec, const uint8_t *inputs, const uint8_t *outputs, int nout, int *singular) {
  const int k = codec->k;
  *singular = 0;
  rs_plan *plan = plan_new(k, nout);
  uint8_t *square = malloc((size_t)k * (size_t)k);
  uint8_t *inverse = malloc((size_t)k * (size_t)k);
  if (plan == NULL || square == NULL || inverse == NULL) {
    plan_release(plan);
    free(square);
    free(inverse);
    return NULL;
  }
  for (int r = 0; r < k; r++) memcpy(square + r * k, codec->generator + inputs[r] * k, (size_t)k);
  if (bfs_gf_invert(square, inverse, k) != 0) {
    *singular = 1;
    plan_release(plan);
    free(square);
    free(inverse);
    return NULL;
  }
  memcpy(plan->inputs, inputs, (size_t)k);
  memcpy(plan->outputs, outputs, (size_t)nout);
  for (int p = 0; p < nout; p++) {
    uint8_t *row = plan->coeffs + p * k;
    if (outputs[p] < k) {
      // A data shard: its row of the inverse.
      memcpy(row, inverse + outputs[p] * k, (size_t)k);
    } else {
      // A parity shard: its generator row times the inverse.
      const uint8_t *gen = codec->generator + outputs[p] * k;
      for (int j = 0; j < k; j++) {
        uint8_t sum = 0;
        for (int t = 0; t < k; t++) sum ^= bfs_gf_mul(gen[t], inverse[t * k + j]);
        row[j] = sum;
      }
    }
  }
  free(square);
  free(inverse);
  plan_finish(plan);
  return plan;
}

static void key_of(uint64_t *key, const uint8_t *inputs, int nin, const uint8_t *outputs, int nout) {
  memset(key, 0, sizeof(uint64_t) * 2 * SHARD_WORDS);
  for (int i = 0; i < nin; i++) key[inputs[i] / 64] |= (uint64_t)1 << (inputs[i] % 64);
  for (int i = 0; i < nout; i++) key[SHARD_WORDS + outputs[i] / 64] |= (uint64_t)1 << (outputs[i] % 64);
}

// Returns a plan holding one reference for the caller, from the cache or new.
static rs_plan *plan_lookup(rs_codec *codec, const uint8_t *inputs, const uint8_t *outputs, int nout, int *singular) {
  uint64_t key[2 * SHARD_WORDS];
  key_of(key, inputs, codec->k, outputs, nout);
  *singular = 0;
  codec->clock++;
  int victim = 0;
  for (int i = 0; i < DECODE_CACHE_ENTRIES; i++) {
    rs_plan *entry = codec->cache[i];
    if (entry != NULL && memcmp(entry->key, key, sizeof(key)) == 0) {
      entry->last_used = codec->clock;
      entry->refs++;
      codec->cache_hits++;
      return entry;
    }
    if (entry == NULL) {
      victim = i;
    } else if (codec->cache[victim] != NULL && entry->last_used < codec->cache[victim]->last_used) {
      victim = i;
    }
  }
  codec->cache_misses++;
  rs_plan *plan = plan_decode(codec, inputs, outputs, nout, singular);
  if (plan == NULL) return NULL;
  memcpy(plan->key, key, sizeof(key));
  plan->last_used = codec->clock;
  plan_release(codec->cache[victim]);
  codec->cache[victim] = plan;
  plan->refs++;  // the cache's reference, besides the caller's
  return plan;
}

// ---- argument parsing -----------------------------------------------------

static napi_value get_codec(napi_env env, napi_value value, rs_codec **codec) {
  napi_valuetype type;
  NAPI_OK(env, napi_typeof(env, value, &type));
  if (type != napi_external) return throw_type(env, "codec handle expected (from create())");
  void *data = NULL;
  NAPI_OK(env, napi_get_value_external(env, value, &data));
  if (data == NULL) return throw_type(env, "codec handle expected (from create())");
  *codec = (rs_codec *)data;
  return value;
}

// A shard: a Uint8Array (Buffer). Writes its pointer and length.
static napi_value get_shard(napi_env env, napi_value shards, uint32_t index, napi_value *value, uint8_t **data, size_t *length) {
  char message[128];
  NAPI_OK(env, napi_get_element(env, shards, index, value));
  bool is_typed = false;
  NAPI_OK(env, napi_is_typedarray(env, *value, &is_typed));
  if (!is_typed) {
    snprintf(message, sizeof(message), "shard %u is not a Buffer", index);
    return throw_type(env, message);
  }
  napi_typedarray_type type;
  void *pointer = NULL;
  NAPI_OK(env, napi_get_typedarray_info(env, *value, &type, length, &pointer, NULL, NULL));
  if (type != napi_uint8_array) {
    snprintf(message, sizeof(message), "shard %u is not a Buffer (a typed array of another kind)", index);
    return throw_type(env, message);
  }
  *data = (uint8_t *)pointer;
  return *value;
}

static int overlaps(const uint8_t *a, const uint8_t *b, size_t length) {
  if (length == 0) return 0;
  uintptr_t x = (uintptr_t)a;
  uintptr_t y = (uintptr_t)b;
  return x < y + length && y < x + length;
}

// Everything one call needs, gathered and checked on the JS thread.
typedef struct {
  rs_codec *codec;
  rs_plan *plan;  // one reference held
  size_t length;
  const uint8_t *in[RS_SHARDS_MAX];
  uint8_t *out[RS_SHARDS_MAX];
  napi_value keep[RS_SHARDS_MAX];  // the Buffer objects used, for async calls
  int kept;
} rs_call;

// Reads shards[] for the plan's inputs and outputs, checks lengths and overlaps.
static napi_value gather(napi_env env, napi_value shards_value, rs_call *call, const uint8_t *used, int used_count) {
  char message[160];
  uint8_t *pointers[RS_SHARDS_MAX];
  size_t first_length = 0;
  int first = -1;
  call->kept = 0;
  for (int u = 0; u < used_count; u++) {
    int index = used[u];
    napi_value value;
    size_t length = 0;
    if (get_shard(env, shards_value, (uint32_t)index, &value, &pointers[index], &length) == NULL) return NULL;
    if (first < 0) {
      first = index;
      first_length = length;
    } else if (length != first_length) {
      snprintf(message, sizeof(message), "shards differ in length: shard %d is %zu bytes, shard %d is %zu bytes", index, length,
               first, first_length);
      return throw_range(env, message);
    }
    call->keep[call->kept++] = value;
  }
  call->length = first_length;
  rs_plan *plan = call->plan;
  for (int j = 0; j < plan->nin; j++) call->in[j] = pointers[plan->inputs[j]];
  for (int p = 0; p < plan->nout; p++) call->out[p] = pointers[plan->outputs[p]];
  // An output sharing memory with any other shard would be read after it was
  // written: the result would be wrong bytes, so it is refused.
  for (int p = 0; p < plan->nout; p++) {
    for (int u = 0; u < used_count; u++) {
      int other = used[u];
      if (other == plan->outputs[p]) continue;
      if (overlaps(call->out[p], pointers[other], call->length)) {
        snprintf(message, sizeof(message), "shard %d shares memory with shard %d; output shards must not overlap other shards",
                 plan->outputs[p], other);
        return throw_range(env, message);
      }
    }
  }
  return shards_value;
}

static napi_value check_shard_array(napi_env env, napi_value shards, const rs_codec *codec) {
  char message[128];
  bool is_array = false;
  NAPI_OK(env, napi_is_array(env, shards, &is_array));
  if (!is_array) return throw_type(env, "shards must be an array of Buffers");
  uint32_t count = 0;
  NAPI_OK(env, napi_get_array_length(env, shards, &count));
  if (count != (uint32_t)codec->n) {
    snprintf(message, sizeof(message), "expected %d shards (%d data + %d parity), got %u", codec->n, codec->k, codec->m, count);
    return throw_range(env, message);
  }
  return shards;
}

// Prepares an encode: all k + m shards are used, parity is written.
static napi_value prepare_encode(napi_env env, napi_value *argv, rs_call *call) {
  rs_codec *codec = NULL;
  if (get_codec(env, argv[0], &codec) == NULL) return NULL;
  if (check_shard_array(env, argv[1], codec) == NULL) return NULL;
  uint8_t used[RS_SHARDS_MAX];
  for (int i = 0; i < codec->n; i++) used[i] = (uint8_t)i;
  call->codec = codec;
  call->plan = codec->encode_plan;
  if (gather(env, argv[1], call, used, codec->n) == NULL) return NULL;
  call->plan->refs++;
  return argv[1];
}

// Prepares a reconstruct: roles[i] says present, wanted, or neither.
static napi_value prepare_reconstruct(napi_env env, napi_value *argv, rs_call *call) {
  char message[160];
  rs_codec *codec = NULL;
  if (get_codec(env, argv[0], &codec) == NULL) return NULL;
  if (check_shard_array(env, argv[1], codec) == NULL) return NULL;
  bool is_typed = false;
  NAPI_OK(env, napi_is_typedarray(env, argv[2], &is_typed));
  if (!is_typed) return throw_type(env, "roles must be a Uint8Array");
  napi_typedarray_type type;
  size_t role_count = 0;
  void *role_data = NULL;
  NAPI_OK(env, napi_get_typedarray_info(env, argv[2], &type, &role_count, &role_data, NULL, NULL));
  if (type != napi_uint8_array) return throw_type(env, "roles must be a Uint8Array");
  if (role_count != (size_t)codec->n) {
    snprintf(message, sizeof(message), "expected %d shard roles, got %zu", codec->n, role_count);
    return throw_range(env, message);
  }
  uint8_t roles[RS_SHARDS_MAX];
  memcpy(roles, role_data, (size_t)codec->n);
  uint8_t inputs[RS_SHARDS_MAX];
  uint8_t outputs[RS_SHARDS_MAX];
  uint8_t used[RS_SHARDS_MAX];
  int present = 0;
  int nout = 0;
  int used_count = 0;
  for (int i = 0; i < codec->n; i++) {
    if (roles[i] > ROLE_WANTED) {
      snprintf(message, sizeof(message), "role of shard %d is %u; expected 0 (missing), 1 (present) or 2 (wanted)", i, roles[i]);
      return throw_range(env, message);
    }
    if (roles[i] == ROLE_PRESENT) {
      // The first k present shards are read; data shards come first, and rows
      // of the identity make the cheapest inverse.
      if (present < codec->k) {
        inputs[present] = (uint8_t)i;
        used[used_count++] = (uint8_t)i;
      }
      present++;
    } else if (roles[i] == ROLE_WANTED) {
      outputs[nout++] = (uint8_t)i;
      used[used_count++] = (uint8_t)i;
    }
  }
  if (present < codec->k) {
    snprintf(message, sizeof(message), "too many shards missing: %d of %d present, RS(%d,%d) needs at least %d", present, codec->n,
             codec->k, codec->m, codec->k);
    napi_throw_range_error(env, "TooManyErasures", message);
    return NULL;
  }
  call->codec = codec;
  if (nout == 0) {
    // Nothing to rebuild; still check the shards that were named.
    rs_plan empty = {0};
    call->plan = &empty;
    napi_value ok = gather(env, argv[1], call, used, used_count);
    call->plan = NULL;
    return ok;
  }
  int singular = 0;
  rs_plan *plan = plan_lookup(codec, inputs, outputs, nout, &singular);
  if (plan == NULL) {
    if (singular) napi_throw_error(env, NULL, "blobfs codec: decode matrix is singular (broken invariant)");
    else napi_throw_error(env, NULL, "blobfs codec: out of memory");
    return NULL;
  }
  call->plan = plan;
  if (gather(env, argv[1], call, used, used_count) == NULL) {
    plan_release(plan);
    call->plan = NULL;
    return NULL;
  }
  return argv[1];
}

static void run_call(rs_call *call) {
  if (call->plan == NULL) return;
  rs_apply(call->codec->kernel, &call->plan->matrix, call->length, call->in, call->out);
}

static napi_value get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  napi_value this_arg;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, &this_arg, NULL));
  if (argc < expected) {
    char message[64];
    snprintf(message, sizeof(message), "expected %zu arguments, got %zu", expected, argc);
    return throw_type(env, message);
  }
  return this_arg;
}

static napi_value undefined_value(napi_env env) {
  napi_value result;
  NAPI_OK(env, napi_get_undefined(env, &result));
  return result;
}

// ---- exported functions ---------------------------------------------------

static int kernel_by_name(const char *name, rs_kernel *kernel) {
  for (int i = 0; i < RS_KERNEL_COUNT; i++) {
    if (strcmp(name, rs_kernel_name((rs_kernel)i)) == 0) {
      *kernel = (rs_kernel)i;
      return 1;
    }
  }
  return 0;
}

static napi_value get_int(napi_env env, napi_value value, const char *what, int min, int max, int *out) {
  char message[128];
  napi_valuetype type;
  NAPI_OK(env, napi_typeof(env, value, &type));
  if (type != napi_number) {
    snprintf(message, sizeof(message), "%s must be an integer", what);
    return throw_type(env, message);
  }
  double number = 0;
  NAPI_OK(env, napi_get_value_double(env, value, &number));
  if (!(number >= min && number <= max) || number != (double)(int)number) {
    snprintf(message, sizeof(message), "%s must be an integer from %d to %d, got %g", what, min, max, number);
    return throw_range(env, message);
  }
  *out = (int)number;
  return value;
}

// create(k, m, kernel?: string) -> codec handle
static napi_value js_create(napi_env env, napi_callback_info info) {
  char message[160];
  napi_value argv[3];
  size_t argc = 3;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "create(dataShards, parityShards, kernel?) needs two shard counts");
  int k = 0;
  int m = 0;
  if (get_int(env, argv[0], "dataShards", 1, RS_SHARDS_MAX - 1, &k) == NULL) return NULL;
  if (get_int(env, argv[1], "parityShards", 1, RS_SHARDS_MAX - 1, &m) == NULL) return NULL;
  if (k + m > RS_SHARDS_MAX) {
    snprintf(message, sizeof(message), "dataShards + parityShards must be at most %d, got %d + %d", RS_SHARDS_MAX, k, m);
    return throw_range(env, message);
  }
  rs_kernel kernel = default_kernel;
  if (argc >= 3) {
    napi_valuetype type;
    NAPI_OK(env, napi_typeof(env, argv[2], &type));
    if (type == napi_string) {
      char name[32];
      size_t length = 0;
      NAPI_OK(env, napi_get_value_string_utf8(env, argv[2], name, sizeof(name), &length));
      if (!kernel_by_name(name, &kernel)) {
        snprintf(message, sizeof(message), "unknown kernel '%s'; kernels: scalar, ssse3, avx2, avx512", name);
        return throw_range(env, message);
      }
      if (!rs_kernel_supported(kernel)) {
        snprintf(message, sizeof(message), "kernel '%s' is not supported by this CPU or build", name);
        return throw_range(env, message);
      }
    } else if (type != napi_undefined) {
      return throw_type(env, "kernel must be a string");
    }
  }
  rs_codec *codec = calloc(1, sizeof(rs_codec));
  if (codec == NULL) {
    napi_throw_error(env, NULL, "blobfs codec: out of memory");
    return NULL;
  }
  codec->k = k;
  codec->m = m;
  codec->n = k + m;
  codec->kernel = kernel;
  codec->generator = malloc((size_t)codec->n * (size_t)k);
  codec->encode_plan = plan_new(k, m);
  if (codec->generator == NULL || codec->encode_plan == NULL) {
    codec_free(codec);
    napi_throw_error(env, NULL, "blobfs codec: out of memory");
    return NULL;
  }
  bfs_gf_generator(codec->generator, codec->n, k);
  rs_plan *plan = codec->encode_plan;
  for (int j = 0; j < k; j++) plan->inputs[j] = (uint8_t)j;
  for (int p = 0; p < m; p++) plan->outputs[p] = (uint8_t)(k + p);
  memcpy(plan->coeffs, codec->generator + k * k, (size_t)m * (size_t)k);
  plan_finish(plan);
  napi_value handle;
  if (napi_create_external(env, codec, codec_finalize, NULL, &handle) != napi_ok) {
    codec_free(codec);
    throw_pending_or(env, "blobfs codec: napi_create_external failed");
    return NULL;
  }
  return handle;
}

// encode(codec, shards): writes shards[k..k+m) from shards[0..k).
static napi_value js_encode(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) == NULL) return NULL;
  rs_call call;
  if (prepare_encode(env, argv, &call) == NULL) return NULL;
  run_call(&call);
  plan_release(call.plan);
  return undefined_value(env);
}

// reconstruct(codec, shards, roles): writes the shards whose role is wanted.
static napi_value js_reconstruct(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) == NULL) return NULL;
  rs_call call;
  if (prepare_reconstruct(env, argv, &call) == NULL) return NULL;
  run_call(&call);
  plan_release(call.plan);
  return undefined_value(env);
}

// ---- asynchronous calls ---------------------------------------------------
// The same work on the libuv threadpool, so a 16 MiB stripe does not hold the
// event loop. Everything is validated and the plan taken on the JS thread; the
// worker thread only runs the kernel. The Buffers (and the codec) are kept alive
// by a reference until the completion callback, back on the JS thread, drops it.

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  rs_call call;
} rs_job;

static void job_execute(napi_env env, void *data) {
  (void)env;
  run_call(&((rs_job *)data)->call);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  rs_job *job = (rs_job *)data;
  napi_value result = NULL;
  if (status == napi_ok) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message = NULL;
    napi_create_string_utf8(env, "blobfs codec: asynchronous call was cancelled or failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  plan_release(job->call.plan);
  free(job);
}

// Queues a prepared call; returns its promise. On failure releases the plan.
static napi_value queue_job(napi_env env, rs_job *job, napi_value codec_handle, const char *name) {
  napi_value keep, promise, resource_name;
  napi_status status = napi_create_array_with_length(env, (size_t)job->call.kept + 1, &keep);
  if (status == napi_ok) status = napi_set_element(env, keep, 0, codec_handle);
  for (int i = 0; status == napi_ok && i < job->call.kept; i++) status = napi_set_element(env, keep, (uint32_t)i + 1, job->call.keep[i]);
  if (status == napi_ok) status = napi_create_reference(env, keep, 1, &job->keep);
  if (status != napi_ok) {
    plan_release(job->call.plan);
    free(job);
    throw_pending_or(env, "blobfs codec: could not hold the shards for an asynchronous call");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, job_execute, job_complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->keep);
    plan_release(job->call.plan);
    free(job);
    throw_pending_or(env, "blobfs codec: could not create an asynchronous call");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    // The promise is already made; reject it rather than leave it pending.
    napi_value message, error;
    napi_create_string_utf8(env, "blobfs codec: could not queue an asynchronous call", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
    napi_delete_async_work(env, job->work);
    napi_delete_reference(env, job->keep);
    plan_release(job->call.plan);
    free(job);
  }
  return promise;
}

// encodeAsync(codec, shards) -> Promise<void>
static napi_value js_encode_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) == NULL) return NULL;
  rs_job *job = calloc(1, sizeof(rs_job));
  if (job == NULL) {
    napi_throw_error(env, NULL, "blobfs codec: out of memory");
    return NULL;
  }
  if (prepare_encode(env, argv, &job->call) == NULL) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[0], "blobfs.codec.encode");
}

// reconstructAsync(codec, shards, roles) -> Promise<void>
static napi_value js_reconstruct_async(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) == NULL) return NULL;
  rs_job *job = calloc(1, sizeof(rs_job));
  if (job == NULL) {
    napi_throw_error(env, NULL, "blobfs codec: out of memory");
    return NULL;
  }
  if (prepare_reconstruct(env, argv, &job->call) == NULL) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[0], "blobfs.codec.reconstruct");
}

// generator(codec) -> Buffer of the (k + m) x k generator matrix, for tests.
static napi_value js_generator(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  rs_codec *codec = NULL;
  if (get_codec(env, argv[0], &codec) == NULL) return NULL;
  napi_value result;
  NAPI_OK(env, napi_create_buffer_copy(env, (size_t)codec->n * (size_t)codec->k, codec->generator, NULL, &result));
  return result;
}

// kernelOf(codec) -> name of the kernel the codec runs.
static napi_value js_kernel_of(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  rs_codec *codec = NULL;
  if (get_codec(env, argv[0], &codec) == NULL) return NULL;
  napi_value result;
  NAPI_OK(env, napi_create_string_utf8(env, rs_kernel_name(codec->kernel), NAPI_AUTO_LENGTH, &result));
  return result;
}

// cacheStats(codec) -> { hits, misses, entries }
static napi_value js_cache_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv) == NULL) return NULL;
  rs_codec *codec = NULL;
  if (get_codec(env, argv[0], &codec) == NULL) return NULL;
  int entries = 0;
  for (int i = 0; i < DECODE_CACHE_ENTRIES; i++) entries += codec->cache[i] != NULL;
  napi_value result, hits, misses, count;
  NAPI_OK(env, napi_create_object(env, &result));
  NAPI_OK(env, napi_create_double(env, codec->cache_hits, &hits));
  NAPI_OK(env, napi_create_double(env, codec->cache_misses, &misses));
  NAPI_OK(env, napi_create_int32(env, entries, &count));
  NAPI_OK(env, napi_set_named_property(env, result, "hits", hits));
  NAPI_OK(env, napi_set_named_property(env, result, "misses", misses));
  NAPI_OK(env, napi_set_named_property(env, result, "entries", count));
  return result;
}

static napi_value add_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  NAPI_OK(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn));
  NAPI_OK(env, napi_set_named_property(env, exports, name, fn));
  return fn;
}

// The process-wide default kernel, settled once when the shared object is
// loaded (before any thread can load it again for a worker): the fastest the
// CPU runs, or the one BLOBFS_CODEC_KERNEL names (tests, benchmarks, ruling out
// a SIMD bug in production). A name this build or CPU cannot run fails every
// load with default_kernel_error: silently running another kernel would hide
// exactly what the variable was set to find out.
static char default_kernel_error[160];

__attribute__((constructor)) static void choose_default_kernel(void) {
  default_kernel = rs_kernel_best();
  const char *forced = getenv("BLOBFS_CODEC_KERNEL");
  if (forced == NULL || forced[0] == '\0') return;
  rs_kernel kernel;
  if (!kernel_by_name(forced, &kernel)) {
    snprintf(default_kernel_error, sizeof(default_kernel_error),
             "BLOBFS_CODEC_KERNEL='%.32s' is not a kernel; kernels: scalar, ssse3, avx2, avx512", forced);
  } else if (!rs_kernel_supported(kernel)) {
    snprintf(default_kernel_error, sizeof(default_kernel_error),
             "BLOBFS_CODEC_KERNEL='%.32s' is not supported by this CPU or build", forced);
  } else {
    default_kernel = kernel;
  }
}

static napi_value init(napi_env env, napi_value exports) {
  if (default_kernel_error[0] != '\0') {
    napi_throw_error(env, NULL, default_kernel_error);
    return NULL;
  }
  if (add_function(env, exports, "create", js_create) == NULL) return NULL;
  if (add_function(env, exports, "encode", js_encode) == NULL) return NULL;
  if (add_function(env, exports, "reconstruct", js_reconstruct) == NULL) return NULL;
  if (add_function(env, exports, "encodeAsync", js_encode_async) == NULL) return NULL;
  if (add_function(env, exports, "reconstructAsync", js_reconstruct_async) == NULL) return NULL;
  if (add_function(env, exports, "generator", js_generator) == NULL) return NULL;
  if (add_function(env, exports, "kernelOf", js_kernel_of) == NULL) return NULL;
  if (add_function(env, exports, "cacheStats", js_cache_stats) == NULL) return NULL;

  napi_value available, name;
  NAPI_OK(env, napi_create_array(env, &available));
  uint32_t count = 0;
  for (int i = 0; i < RS_KERNEL_COUNT; i++) {
    if (!rs_kernel_supported((rs_kernel)i)) continue;
    NAPI_OK(env, napi_create_string_utf8(env, rs_kernel_name((rs_kernel)i), NAPI_AUTO_LENGTH, &name));
    NAPI_OK(env, napi_set_element(env, available, count++, name));
  }
  NAPI_OK(env, napi_set_named_property(env, exports, "kernels", available));
  NAPI_OK(env, napi_create_string_utf8(env, rs_kernel_name(default_kernel), NAPI_AUTO_LENGTH, &name));
  NAPI_OK(env, napi_set_named_property(env, exports, "defaultKernel", name));
  napi_value max;
  NAPI_OK(env, napi_create_int32(env, RS_SHARDS_MAX, &max));
  NAPI_OK(env, napi_set_named_property(env, exports, "shardsMax", max));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
