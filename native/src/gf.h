// GF(2^8) arithmetic and the matrices of systematic Reed-Solomon, shared by the
// kernels (kernels.c) and the N-API binding (binding.c). Pure C, no Node headers,
// so the arithmetic can be reasoned about (and compiled) on its own.
#ifndef BLOBFS_GF_H
#define BLOBFS_GF_H

#include <stddef.h>
#include <stdint.h>

// The field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), as in ISA-L, Jerasure
// and most storage systems, so parity is interchangeable with theirs.
#define GF_POLY 0x11d
// GF(2^8) has 255 non-zero elements; a Cauchy matrix needs k + m distinct ones.
#define RS_SHARDS_MAX 255

// Each coefficient expands to 64 bytes: the 16-entry product table of the low
// nibble and of the high nibble, each broadcast to 32 bytes (one AVX2 lane pair),
// so a kernel multiplies 32 bytes by the coefficient with two vpshufb.
#define GF_TABLE_BYTES 64

extern uint8_t bfs_gf_mul_table[256][256];

void bfs_gf_init(void);
uint8_t bfs_gf_mul(uint8_t a, uint8_t b);
uint8_t bfs_gf_inv(uint8_t a);

// rows x k generator: identity on top, then parity row i (k <= i < rows) and
// column j get 1 / (i ^ j). Every k x k submatrix is invertible (Cauchy).
void bfs_gf_generator(uint8_t *matrix, int rows, int k);

// Inverts the n x n matrix `in` (destroyed) into `out`. Returns 0, or -1 when the
// matrix is singular.
int bfs_gf_invert(uint8_t *in, uint8_t *out, int n);

// Expands the rows x cols coefficients into the kernels' table layout: for input
// column j and output row p, GF_TABLE_BYTES at ((j * rows) + p) * GF_TABLE_BYTES.
void bfs_gf_expand_tables(const uint8_t *coeffs, int rows, int cols, uint8_t *tables);

// The same coefficients as GF2P8AFFINEQB bit matrices, one uint64_t each at
// (j * rows) + p: byte 7 - i holds the input bits that make output bit i.
void bfs_gf_expand_affine(const uint8_t *coeffs, int rows, int cols, uint64_t *affine);

#endif
