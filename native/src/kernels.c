// GF(2^8) multiply-accumulate kernels: a portable scalar path (also the tail of
// every SIMD call), chosen per call by kernel id.
#include "kernels.h"

#include "gf.h"

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

const char *rs_kernel_name(rs_kernel kernel) {
  switch (kernel) {
    case RS_KERNEL_SCALAR: return "scalar";
    case RS_KERNEL_SSSE3: return "ssse3";
    case RS_KERNEL_AVX2: return "avx2";
    default: return "unknown";
  }
}

int rs_kernel_supported(rs_kernel kernel) {
  return kernel == RS_KERNEL_SCALAR;
}

rs_kernel rs_kernel_best(void) {
  return RS_KERNEL_SCALAR;
}

void rs_apply(rs_kernel kernel, const rs_matrix *matrix, size_t len, const uint8_t *const *in, uint8_t *const *out) {
  (void)kernel;
  if (len == 0 || matrix->nout == 0) return;
  scalar_apply(matrix, 0, len, in, out);
}
