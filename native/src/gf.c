// GF(2^8) tables and matrix algebra: built once when the addon is loaded, read-only
// afterwards, so every thread may use them without locks.
#include "gf.h"

#include <string.h>

uint8_t bfs_gf_mul_table[256][256];
static uint8_t bfs_gf_log[256];
static uint8_t bfs_gf_exp[510];
static uint8_t bfs_gf_inverse[256];

// Runs when the shared object is loaded (before any N-API call and any worker
// thread), so the tables are complete before anything reads them.
__attribute__((constructor)) void bfs_gf_init(void) {
  unsigned x = 1;
  for (int i = 0; i < 255; i++) {
    bfs_gf_exp[i] = (uint8_t)x;
    bfs_gf_exp[i + 255] = (uint8_t)x;
    bfs_gf_log[x] = (uint8_t)i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  for (int a = 0; a < 256; a++) {
    for (int b = 0; b < 256; b++) {
      bfs_gf_mul_table[a][b] = (a == 0 || b == 0) ? 0 : bfs_gf_exp[bfs_gf_log[a] + bfs_gf_log[b]];
    }
  }
  bfs_gf_inverse[0] = 0;
  for (int a = 1; a < 256; a++) bfs_gf_inverse[a] = bfs_gf_exp[255 - bfs_gf_log[a]];
}

uint8_t bfs_gf_mul(uint8_t a, uint8_t b) { return bfs_gf_mul_table[a][b]; }

uint8_t bfs_gf_inv(uint8_t a) { return bfs_gf_inverse[a]; }

void bfs_gf_generator(uint8_t *matrix, int rows, int k) {
  memset(matrix, 0, (size_t)rows * (size_t)k);
  for (int i = 0; i < k; i++) matrix[i * k + i] = 1;
  for (int i = k; i < rows; i++) {
    for (int j = 0; j < k; j++) matrix[i * k + j] = bfs_gf_inv((uint8_t)(i ^ j));
  }
}

int bfs_gf_invert(uint8_t *in, uint8_t *out, int n) {
  memset(out, 0, (size_t)n * (size_t)n);
  for (int i = 0; i < n; i++) out[i * n + i] = 1;
  for (int col = 0; col < n; col++) {
    int pivot = col;
    while (pivot < n && in[pivot * n + col] == 0) pivot++;
    if (pivot == n) return -1;
    if (pivot != col) {
      for (int j = 0; j < n; j++) {
        uint8_t t = in[col * n + j];
        in[col * n + j] = in[pivot * n + j];
        in[pivot * n + j] = t;
        t = out[col * n + j];
        out[col * n + j] = out[pivot * n + j];
        out[pivot * n + j] = t;
      }
    }
    uint8_t scale = bfs_gf_inv(in[col * n + col]);
    for (int j = 0; j < n; j++) {
      in[col * n + j] = bfs_gf_mul(in[col * n + j], scale);
      out[col * n + j] = bfs_gf_mul(out[col * n + j], scale);
    }
    for (int row = 0; row < n; row++) {
      if (row == col) continue;
      uint8_t factor = in[row * n + col];
      if (factor == 0) continue;
      const uint8_t *mul = bfs_gf_mul_table[factor];
      for (int j = 0; j < n; j++) {
        in[row * n + j] ^= mul[in[col * n + j]];
        out[row * n + j] ^= mul[out[col * n + j]];
      }
    }
  }
  return 0;
}

void bfs_gf_expand_tables(const uint8_t *coeffs, int rows, int cols, uint8_t *tables) {
  for (int j = 0; j < cols; j++) {
    for (int p = 0; p < rows; p++) {
      const uint8_t *mul = bfs_gf_mul_table[coeffs[p * cols + j]];
      uint8_t *t = tables + ((size_t)j * (size_t)rows + (size_t)p) * GF_TABLE_BYTES;
      for (int x = 0; x < 16; x++) {
        t[x] = t[x + 16] = mul[x];
        t[x + 32] = t[x + 48] = mul[x << 4];
      }
    }
  }
}

void bfs_gf_expand_affine(const uint8_t *coeffs, int rows, int cols, uint64_t *affine) {
  for (int j = 0; j < cols; j++) {
    for (int p = 0; p < rows; p++) {
      const uint8_t *mul = bfs_gf_mul_table[coeffs[p * cols + j]];
      uint64_t matrix = 0;
      for (int i = 0; i < 8; i++) {
        // Row of output bit i: bit k set when c * x^k has bit i set.
        uint64_t row = 0;
        for (int k = 0; k < 8; k++) row |= (uint64_t)((mul[1 << k] >> i) & 1) << k;
        matrix |= row << (8 * (7 - i));
      }
      affine[(size_t)j * (size_t)rows + (size_t)p] = matrix;
    }
  }
}
