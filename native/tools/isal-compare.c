// Side-by-side speed of Intel ISA-L (Debian libisal-dev: its AVX-512 and AVX2
// encoders, called directly) and the blobfs kernels, in one process on the same buffers: RS(8,4) encode and rebuild of 2 and 4 lost
// data shards, one thread. Not part of the build; a yardstick for the kernels:
//   apt-get install libisal-dev
//   cc -O3 -std=c11 -Inative/src native/tools/isal-compare.c native/src/gf.c native/src/kernels.c -lisal -o /tmp/isal-compare
//   /tmp/isal-compare [shard bytes, default 1 MiB]
// Buffers are separate malloc()s, like Node's large Buffers (the same offset
// modulo 4 KiB). Each figure is the median of 15 rounds of ~2 ms batches' best.
#define _POSIX_C_SOURCE 200809L
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gf.h"
#include "kernels.h"

#define K 8
#define M 4

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef void (*op_fn)(void *ctx);

// GB/s of user data: median over rounds of the rate of ~2 ms batches.
static double rate(op_fn op, void *ctx, size_t user_bytes) {
  double rates[15];
  op(ctx);
  for (int r = 0; r < 15; r++) {
    int ops = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < 0.002 || ops == 0) {
      op(ctx);
      ops++;
      elapsed = now_s() - start;
    }
    rates[r] = (double)ops * (double)user_bytes / elapsed / 1e9;
  }
  qsort(rates, 15, sizeof(double), compare);
  return rates[7];
}

typedef struct {
  size_t len;
  int nout;
  unsigned char *isal_tables;
  rs_matrix matrix;
  rs_kernel kernel;
  unsigned char **in;
  unsigned char **out;
} job;

void ec_encode_data_avx512(int len, int k, int rows, unsigned char *gftbls, unsigned char **data, unsigned char **coding);

static void isal_op(void *p) {
  job *j = p;
  ec_encode_data_avx512((int)j->len, K, j->nout, j->isal_tables, j->in, j->out);
}

static void isal_avx2_op(void *p) {
  job *j = p;
  ec_encode_data_avx2((int)j->len, K, j->nout, j->isal_tables, j->in, j->out);
}

static void blobfs_op(void *p) {
  job *j = p;
  rs_apply(j->kernel, &j->matrix, j->len, (const uint8_t *const *)j->in, (uint8_t *const *)j->out);
}

int main(int argc, char **argv) {
  size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) : (size_t)1 << 20;
  unsigned char generator[(K + M) * K];
  gf_gen_cauchy1_matrix(generator, K + M, K);
  unsigned char *shards[K + M];
  for (int i = 0; i < K + M; i++) {
    shards[i] = malloc(len);
    for (size_t b = 0; b < len; b++) shards[i][b] = (unsigned char)rand();
  }
  printf("RS(8,4), %zu-byte shards, one thread, GB/s of user data (8 x shard bytes per op)\n", len);
  printf("%-13s %8s %8s %8s\n", "", "encode", "2 lost", "4 lost");
  const char *names[] = {"isa-l avx512", "isa-l avx2", "avx2", "avx512"};
  for (int who = 0; who < 4; who++) {
    if (who == 0 && !rs_kernel_supported(RS_KERNEL_AVX512)) continue;
    if (who == 3 && !rs_kernel_supported(RS_KERNEL_AVX512)) continue;
    double figures[3];
    for (int c = 0; c < 3; c++) {
      int lost = c == 0 ? 0 : c == 1 ? 2 : 4;
      int nout = c == 0 ? M : lost;
      // Rows: parity rows for encode; for a rebuild, the inverse of the
      // generator rows of the first 8 present shards, rows of the lost ones.
      unsigned char rows[M * K], square[K * K], inverse[K * K];
      unsigned char *in[K], *out[M];
      if (lost == 0) {
        memcpy(rows, generator + K * K, M * K);
        for (int i = 0; i < K; i++) in[i] = shards[i];
        for (int p = 0; p < M; p++) out[p] = shards[K + p];
      } else {
        for (int r = 0; r < K; r++) {
          memcpy(square + r * K, generator + (r + lost) * K, K);
          in[r] = shards[r + lost];
        }
        gf_invert_matrix(square, inverse, K);
        for (int p = 0; p < lost; p++) {
          memcpy(rows + p * K, inverse + p * K, K);
          out[p] = malloc(len);
        }
      }
      unsigned char *isal_tables = malloc(32 * K * nout);
      ec_init_tables(K, nout, rows, isal_tables);
      uint8_t *tables = aligned_alloc(64, 64 * K * nout);
      uint64_t *affine = malloc(8 * K * nout);
      bfs_gf_expand_tables(rows, nout, K, tables);
      bfs_gf_expand_affine(rows, nout, K, affine);
      job j = {len, nout, isal_tables, {K, nout, rows, tables, affine}, who == 3 ? RS_KERNEL_AVX512 : RS_KERNEL_AVX2, in, out};
      figures[c] = rate(who == 0 ? isal_op : who == 1 ? isal_avx2_op : blobfs_op, &j, K * len);
      free(isal_tables);
      free(tables);
      free(affine);
      if (lost > 0) for (int p = 0; p < lost; p++) free(out[p]);
    }
    printf("%-13s %8.2f %8.2f %8.2f\n", names[who], figures[0], figures[1], figures[2]);
  }
  return 0;
}
