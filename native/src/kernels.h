// The multiply-accumulate kernels: out[p] = sum over j of coeffs[p][j] * in[j],
// over GF(2^8), for every byte position. Encoding and reconstruction are both this
// one operation with different matrices, so all the speed lives here.
#ifndef BLOBFS_KERNELS_H
#define BLOBFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  RS_KERNEL_SCALAR = 0,
  RS_KERNEL_SSSE3 = 1,
  RS_KERNEL_AVX2 = 2,
  RS_KERNEL_AVX512 = 3,
  RS_KERNEL_COUNT = 4,
} rs_kernel;

// nout x nin coefficients (row-major) and their expansions by
// bfs_gf_expand_tables (64-byte aligned) and bfs_gf_expand_affine.
typedef struct {
  int nin;
  int nout;
  const uint8_t *coeffs;
  const uint8_t *tables;
  const uint64_t *affine;
} rs_matrix;

const char *rs_kernel_name(rs_kernel kernel);
// 1 when this build has the kernel and this CPU can run it.
int rs_kernel_supported(rs_kernel kernel);
// The fastest supported kernel.
rs_kernel rs_kernel_best(void);

// Writes (not accumulates) every out[p][0..len). Outputs must not overlap any
// input or each other; the binding checks that before calling.
void rs_apply(rs_kernel kernel, const rs_matrix *matrix, size_t len, const uint8_t *const *in, uint8_t *const *out);

#endif
