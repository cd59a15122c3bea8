// GF(2^8) multiply-accumulate kernels: a portable scalar path (also the tail of
// the SSSE3/AVX2 calls), SSSE3 and AVX2 paths with the split-nibble technique,
// and an AVX-512 path with GFNI, chosen per call by kernel id.
//
// Why it is fast (the ISA-L way): all outputs are computed in one pass over the
// inputs. For each 64-byte column block, each input's bytes are loaded once and
// multiplied into up to 4 (AVX2) or 8 (AVX-512) register accumulators, one per
// output: with AVX2, split into nibbles and looked up with two vpshufb,
// c*x = T_lo[x & 15] ^ T_hi[x >> 4]; with GFNI, one affine transform by the
// coefficient's bit matrix. The accumulators are stored once, so every input
// byte is read once and every output byte written once. With more outputs than
// registers allow, outputs go in groups over column tiles small enough that
// the inputs stay in L1/L2 between groups; when the shards alias in the caches,
// inputs go in groups too (see streams_alias).
#include "kernels.h"

#include <stdlib.h>

#include "gf.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(RS_PORTABLE_ONLY)
// (RS_PORTABLE_ONLY builds the scalar kernel alone, as on other architectures.)
#define RS_X86 1
#include <immintrin.h>
#endif

// Column tiles keep every input's slice in L1/L2 while several output groups
// (or, for scalar, several outputs) pass over it.
#define TILE_BYTES_MAX 16384
#define TILE_BYTES_MIN 1024
#define TILE_INPUT_BYTES 131072

static size_t tile_bytes(int nin) {
  size_t tile = TILE_INPUT_BYTES / (size_t)nin;
  if (tile > TILE_BYTES_MAX) tile = TILE_BYTES_MAX;
  if (tile < TILE_BYTES_MIN) tile = TILE_BYTES_MIN;
  return tile & ~(size_t)63;
}

static void scalar_range(const rs_matrix *matrix, size_t start, size_t end, const uint8_t *const *in, uint8_t *const *out) {
  const int nin = matrix->nin;
  for (int p = 0; p < matrix->nout; p++) {
    uint8_t *restrict dst = out[p];
    const uint8_t *restrict row = bfs_gf_mul_table[matrix->coeffs[p * nin]];
    const uint8_t *restrict src = in[0];
    for (size_t i = start; i < end; i++) dst[i] = row[src[i]];
    for (int j = 1; j < nin; j++) {
      row = bfs_gf_mul_table[matrix->coeffs[p * nin + j]];
      src = in[j];
      for (size_t i = start; i < end; i++) dst[i] ^= row[src[i]];
    }
  }
}

static void scalar_apply(const rs_matrix *matrix, size_t start, size_t len, const uint8_t *const *in, uint8_t *const *out) {
  const size_t tile = tile_bytes(matrix->nin);
  for (size_t pos = start; pos < len; pos += tile) {
    size_t end = len - pos < tile ? len : pos + tile;
    scalar_range(matrix, pos, end, in, out);
  }
}

#ifdef RS_X86

// Most outputs per pass: with a 64-byte step, 2 accumulators per output + the
// nibble mask + four index vectors + a table vector fill the 16 registers at 4.
#define RS_GROUP_MAX 4
// Inputs per pass when the shards alias in the caches (see streams_alias).
#define RS_INPUT_GROUP 4
// Column tile over which output groups and input groups take turns: the inputs
// (or the partial outputs) of a tile are still in L1/L2 when the next group
// comes back to them.
#define RS_SIMD_TILE_BYTES 16384

// One pass of N outputs over inputs [0, nin), bytes [start, end) (a multiple of
// 32). The table of input j, output p is at tables + j * stride + p * 64. With
// `accumulate` the outputs' current bytes are added to (a later input group),
// else overwritten. 64 bytes (a cache line of every stream) per step, so each
// line is finished in one visit even when the streams evict each other.
__attribute__((target("avx2"), always_inline)) static inline void avx2_pass(const int N, size_t start, size_t end, int nin,
                                                                             const uint8_t *tables, size_t stride,
                                                                             const uint8_t *const *in, uint8_t *const *out,
                                                                             int accumulate) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t pos = start;
  for (; pos + 64 <= end; pos += 64) {
    __m256i acc0[RS_GROUP_MAX];
    __m256i acc1[RS_GROUP_MAX];
    for (int p = 0; p < N; p++) {
      acc0[p] = accumulate ? _mm256_loadu_si256((const __m256i *)(out[p] + pos)) : _mm256_setzero_si256();
      acc1[p] = accumulate ? _mm256_loadu_si256((const __m256i *)(out[p] + pos + 32)) : _mm256_setzero_si256();
    }
    const uint8_t *t = tables;
    for (int j = 0; j < nin; j++, t += stride) {
      const __m256i x0 = _mm256_loadu_si256((const __m256i *)(in[j] + pos));
      const __m256i x1 = _mm256_loadu_si256((const __m256i *)(in[j] + pos + 32));
      const __m256i lo0 = _mm256_and_si256(x0, mask);
      const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi64(x0, 4), mask);
      const __m256i lo1 = _mm256_and_si256(x1, mask);
      const __m256i hi1 = _mm256_and_si256(_mm256_srli_epi64(x1, 4), mask);
      for (int p = 0; p < N; p++) {
        const __m256i tlo = _mm256_load_si256((const __m256i *)(t + p * GF_TABLE_BYTES));
        acc0[p] = _mm256_xor_si256(acc0[p], _mm256_shuffle_epi8(tlo, lo0));
        acc1[p] = _mm256_xor_si256(acc1[p], _mm256_shuffle_epi8(tlo, lo1));
        const __m256i thi = _mm256_load_si256((const __m256i *)(t + p * GF_TABLE_BYTES + 32));
        acc0[p] = _mm256_xor_si256(acc0[p], _mm256_shuffle_epi8(thi, hi0));
        acc1[p] = _mm256_xor_si256(acc1[p], _mm256_shuffle_epi8(thi, hi1));
      }
    }
    for (int p = 0; p < N; p++) {
      _mm256_storeu_si256((__m256i *)(out[p] + pos), acc0[p]);
      _mm256_storeu_si256((__m256i *)(out[p] + pos + 32), acc1[p]);
    }
  }
  if (pos < end) {  // one 32-byte block left
    __m256i acc[RS_GROUP_MAX];
    for (int p = 0; p < N; p++) acc[p] = accumulate ? _mm256_loadu_si256((const __m256i *)(out[p] + pos)) : _mm256_setzero_si256();
    const uint8_t *t = tables;
    for (int j = 0; j < nin; j++, t += stride) {
      const __m256i x = _mm256_loadu_si256((const __m256i *)(in[j] + pos));
      const __m256i lo = _mm256_and_si256(x, mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), mask);
      for (int p = 0; p < N; p++) {
        const __m256i tlo = _mm256_load_si256((const __m256i *)(t + p * GF_TABLE_BYTES));
        const __m256i thi = _mm256_load_si256((const __m256i *)(t + p * GF_TABLE_BYTES + 32));
        acc[p] = _mm256_xor_si256(acc[p], _mm256_xor_si256(_mm256_shuffle_epi8(tlo, lo), _mm256_shuffle_epi8(thi, hi)));
      }
    }
    for (int p = 0; p < N; p++) _mm256_storeu_si256((__m256i *)(out[p] + pos), acc[p]);
  }
}

// The same with 16-byte vectors, bytes [start, end) a multiple of 16.
__attribute__((target("ssse3"), always_inline)) static inline void ssse3_pass(const int N, size_t start, size_t end, int nin,
                                                                               const uint8_t *tables, size_t stride,
                                                                               const uint8_t *const *in, uint8_t *const *out,
                                                                               int accumulate) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  for (size_t pos = start; pos < end; pos += 16) {
    __m128i acc[RS_GROUP_MAX];
    for (int p = 0; p < N; p++) acc[p] = accumulate ? _mm_loadu_si128((const __m128i *)(out[p] + pos)) : _mm_setzero_si128();
    const uint8_t *t = tables;
    for (int j = 0; j < nin; j++, t += stride) {
      const __m128i x = _mm_loadu_si128((const __m128i *)(in[j] + pos));
      const __m128i lo = _mm_and_si128(x, mask);
      const __m128i hi = _mm_and_si128(_mm_srli_epi64(x, 4), mask);
      for (int p = 0; p < N; p++) {
        const __m128i tlo = _mm_load_si128((const __m128i *)(t + p * GF_TABLE_BYTES));
        const __m128i thi = _mm_load_si128((const __m128i *)(t + p * GF_TABLE_BYTES + 32));
        acc[p] = _mm_xor_si128(acc[p], _mm_xor_si128(_mm_shuffle_epi8(tlo, lo), _mm_shuffle_epi8(thi, hi)));
      }
    }
    for (int p = 0; p < N; p++) _mm_storeu_si128((__m128i *)(out[p] + pos), acc[p]);
  }
}

// A pass over [start, end) of outputs [first_out, first_out + N) from inputs
// [first_in, first_in + nin); each kernel finds its own tables in the matrix.
typedef void (*pass_fn)(size_t start, size_t end, const rs_matrix *matrix, int first_in, int nin, int first_out,
                        const uint8_t *const *in, uint8_t *const *out, int accumulate);

static inline const uint8_t *nibble_tables(const rs_matrix *matrix, int first_in, int first_out) {
  return matrix->tables + ((size_t)first_in * (size_t)matrix->nout + (size_t)first_out) * GF_TABLE_BYTES;
}

// One function per group size, so each N is a constant and the accumulators are
// registers.
#define DEFINE_PASSES(N)                                                                                            \
  __attribute__((target("avx2"))) static void avx2_pass_##N(size_t start, size_t end, const rs_matrix *matrix,      \
                                                            int first_in, int nin, int first_out,                   \
                                                            const uint8_t *const *in, uint8_t *const *out,          \
                                                            int accumulate) {                                       \
    avx2_pass(N, start, end, nin, nibble_tables(matrix, first_in, first_out),                                       \
              (size_t)matrix->nout * GF_TABLE_BYTES, in + first_in, out + first_out, accumulate);                  \
  }                                                                                                                  \
  __attribute__((target("ssse3"))) static void ssse3_pass_##N(size_t start, size_t end, const rs_matrix *matrix,    \
                                                              int first_in, int nin, int first_out,                 \
                                                              const uint8_t *const *in, uint8_t *const *out,        \
                                                              int accumulate) {                                     \
    ssse3_pass(N, start, end, nin, nibble_tables(matrix, first_in, first_out),                                      \
               (size_t)matrix->nout * GF_TABLE_BYTES, in + first_in, out + first_out, accumulate);                 \
  }
DEFINE_PASSES(1)
DEFINE_PASSES(2)
DEFINE_PASSES(3)
DEFINE_PASSES(4)

static const pass_fn avx2_passes[] = {NULL, avx2_pass_1, avx2_pass_2, avx2_pass_3, avx2_pass_4};
static const pass_fn ssse3_passes[] = {NULL, ssse3_pass_1, ssse3_pass_2, ssse3_pass_3, ssse3_pass_4};

// AVX-512 with GFNI: one GF2P8AFFINEQB multiplies 64 bytes by a coefficient
// (its 8x8 bit matrix broadcast from memory), where AVX2 needs two shuffles,
// two masks and a shift per 32 bytes. Masked loads and stores take the tail,
// so this kernel needs no scalar help.
#define RS_AVX512_GROUP_MAX 8
#define AVX512_TARGET "avx512f,avx512bw,avx512vl,gfni"

__attribute__((target(AVX512_TARGET), always_inline)) static inline void avx512_pass(const int N, size_t start, size_t end,
                                                                                      int nin, const uint64_t *affine,
                                                                                      size_t stride,
                                                                                      const uint8_t *const *in,
                                                                                      uint8_t *const *out, int accumulate) {
  for (size_t pos = start; pos < end; pos += 64) {
    const __mmask64 mask = end - pos >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (end - pos)) - 1);
    __m512i acc[RS_AVX512_GROUP_MAX];
    for (int p = 0; p < N; p++) acc[p] = accumulate ? _mm512_maskz_loadu_epi8(mask, out[p] + pos) : _mm512_setzero_si512();
    const uint64_t *a = affine;
    for (int j = 0; j < nin; j++, a += stride) {
      const __m512i x = _mm512_maskz_loadu_epi8(mask, in[j] + pos);
      for (int p = 0; p < N; p++) {
        acc[p] = _mm512_xor_si512(acc[p], _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64((long long)a[p]), 0));
      }
    }
    for (int p = 0; p < N; p++) _mm512_mask_storeu_epi8(out[p] + pos, mask, acc[p]);
  }
}

#define DEFINE_AVX512_PASS(N)                                                                                        \
  __attribute__((target(AVX512_TARGET))) static void avx512_pass_##N(                                                \
      size_t start, size_t end, const rs_matrix *matrix, int first_in, int nin, int first_out,                       \
      const uint8_t *const *in, uint8_t *const *out, int accumulate) {                                               \
    avx512_pass(N, start, end, nin, matrix->affine + (size_t)first_in * (size_t)matrix->nout + (size_t)first_out,   \
                (size_t)matrix->nout, in + first_in, out + first_out, accumulate);                                  \
  }
DEFINE_AVX512_PASS(1)
DEFINE_AVX512_PASS(2)
DEFINE_AVX512_PASS(3)
DEFINE_AVX512_PASS(4)
DEFINE_AVX512_PASS(5)
DEFINE_AVX512_PASS(6)
DEFINE_AVX512_PASS(7)
DEFINE_AVX512_PASS(8)

static const pass_fn avx512_passes[] = {NULL,          avx512_pass_1, avx512_pass_2, avx512_pass_3, avx512_pass_4,
                                        avx512_pass_5, avx512_pass_6, avx512_pass_7, avx512_pass_8};

static int compare_offsets(const void *a, const void *b) {
  unsigned x = *(const unsigned *)a;
  unsigned y = *(const unsigned *)b;
  return (x > y) - (x < y);
}

// Whether more streams than a cache set has ways start close together modulo
// 4 KiB. Then, at every position, their lines fall into the same L1 (and L2)
// sets and evict each other, and the hardware prefetcher's lines with them.
// It is the usual case, not a corner: Node's large Buffers are page-aligned
// mmaps plus the same header, and the shards of one stripe buffer sit at
// multiples of the shard size. Such streams are then read a few inputs at a
// time, accumulating into the outputs, so fewer lines compete per set.
#define CACHE_WAYS 8
#define ALIAS_WINDOW_BYTES 512
static int streams_alias(const uint8_t *const *in, int nin, uint8_t *const *out, int nout) {
  if (nin + nout <= CACHE_WAYS) return 0;
  unsigned offsets[2 * 255];
  int n = 0;
  for (int j = 0; j < nin; j++) offsets[n++] = (unsigned)((uintptr_t)in[j] & 4095);
  for (int p = 0; p < nout; p++) offsets[n++] = (unsigned)((uintptr_t)out[p] & 4095);
  qsort(offsets, (size_t)n, sizeof(unsigned), compare_offsets);
  // The most offsets inside any window of ALIAS_WINDOW_BYTES, going round 4 KiB.
  for (int first = 0, last = 0; first < n; first++) {
    while (last < first + n && (offsets[last % n] + (last >= n ? 4096u : 0u)) - offsets[first] < ALIAS_WINDOW_BYTES) last++;
    if (last - first > CACHE_WAYS) return 1;
  }
  return 0;
}

// Runs the SIMD passes over [0, len): outputs in groups of at most group_max
// (equal sizes), inputs all at once or, when the streams alias, RS_INPUT_GROUP
// at a time, over column tiles when there is more than one group.
static void simd_apply(const pass_fn *passes, int group_max, const rs_matrix *matrix, size_t len, const uint8_t *const *in,
                       uint8_t *const *out) {
  const int nin = matrix->nin;
  const int nout = matrix->nout;
  const int out_groups = (nout + group_max - 1) / group_max;
  const int out_size = (nout + out_groups - 1) / out_groups;
  const int in_size = streams_alias(in, nin, out, nout) ? RS_INPUT_GROUP : nin;
  const size_t tile = (out_groups > 1 || in_size < nin) ? RS_SIMD_TILE_BYTES : len;
  for (size_t pos = 0; pos < len; pos += tile) {
    const size_t end = len - pos < tile ? len : pos + tile;
    for (int first_out = 0; first_out < nout; first_out += out_size) {
      const int n_out = nout - first_out < out_size ? nout - first_out : out_size;
      for (int first_in = 0; first_in < nin; first_in += in_size) {
        const int n_in = nin - first_in < in_size ? nin - first_in : in_size;
        passes[n_out](pos, end, matrix, first_in, n_in, first_out, in, out, first_in > 0);
      }
    }
  }
}

#endif  // RS_X86

const char *rs_kernel_name(rs_kernel kernel) {
  switch (kernel) {
    case RS_KERNEL_SCALAR: return "scalar";
    case RS_KERNEL_SSSE3: return "ssse3";
    case RS_KERNEL_AVX2: return "avx2";
    case RS_KERNEL_AVX512: return "avx512";
    default: return "unknown";
  }
}

int rs_kernel_supported(rs_kernel kernel) {
  switch (kernel) {
    case RS_KERNEL_SCALAR: return 1;
#ifdef RS_X86
    case RS_KERNEL_SSSE3: return __builtin_cpu_supports("ssse3");
    case RS_KERNEL_AVX2: return __builtin_cpu_supports("avx2");
    case RS_KERNEL_AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("gfni");
#endif
    default: return 0;
  }
}

rs_kernel rs_kernel_best(void) {
#ifdef RS_X86
  __builtin_cpu_init();
#endif
  for (int kernel = RS_KERNEL_COUNT - 1; kernel > RS_KERNEL_SCALAR; kernel--) {
    if (rs_kernel_supported((rs_kernel)kernel)) return (rs_kernel)kernel;
  }
  return RS_KERNEL_SCALAR;
}

void rs_apply(rs_kernel kernel, const rs_matrix *matrix, size_t len, const uint8_t *const *in, uint8_t *const *out) {
  if (len == 0 || matrix->nout == 0) return;
  size_t simd_len = 0;
#ifdef RS_X86
  if (kernel == RS_KERNEL_AVX512) {
    simd_len = len;
    simd_apply(avx512_passes, RS_AVX512_GROUP_MAX, matrix, simd_len, in, out);
  } else if (kernel == RS_KERNEL_AVX2) {
    simd_len = len & ~(size_t)31;
    if (simd_len > 0) simd_apply(avx2_passes, RS_GROUP_MAX, matrix, simd_len, in, out);
  } else if (kernel == RS_KERNEL_SSSE3) {
    simd_len = len & ~(size_t)15;
    if (simd_len > 0) simd_apply(ssse3_passes, RS_GROUP_MAX, matrix, simd_len, in, out);
  }
#else
  (void)kernel;
#endif
  // The unaligned tail (fewer bytes than one vector) goes through the scalar path.
  if (simd_len < len) scalar_apply(matrix, simd_len, len, in, out);
}
