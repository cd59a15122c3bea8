// Known-answer vectors for test/codec/known-answer.test.ts, computed by an
// independent implementation: Intel ISA-L (Debian libisal-dev), whose
// gf_gen_cauchy1_matrix + ec_encode_data use the same generator and field as
// blobfs. Not part of the build; rerun by hand to regenerate:
//   apt-get install libisal-dev
//   cc -O2 native/tools/isal-vectors.c -lisal -lcrypto -o /tmp/isal-vectors && /tmp/isal-vectors
// Data bytes come from the LCG below (the test has the same one); each vector
// prints the parity as hex (short shards) or its SHA-256 (long ones).
#include <isa-l/erasure_code.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void vector(int k, int m, int len, uint32_t seed, int full_hex) {
  int n = k + m;
  unsigned char *matrix = malloc((size_t)n * k);
  unsigned char *tables = malloc((size_t)32 * k * m);
  unsigned char **shards = malloc(sizeof(unsigned char *) * n);
  uint32_t state = seed;
  for (int i = 0; i < n; i++) shards[i] = malloc(len ? len : 1);
  for (int j = 0; j < k; j++) {
    for (int i = 0; i < len; i++) {
      state = state * 1103515245u + 12345u;
      shards[j][i] = (state >> 16) & 0xff;
    }
  }
  gf_gen_cauchy1_matrix(matrix, n, k);
  ec_init_tables(k, m, matrix + k * k, tables);
  ec_encode_data(len, k, m, tables, shards, shards + k);
  printf("  { k: %d, m: %d, length: %d, seed: %u, %s: [", k, m, len, seed, full_hex ? "parityHex" : "paritySha256");
  for (int p = 0; p < m; p++) {
    printf("%s'", p ? ", " : "");
    if (full_hex) {
      for (int i = 0; i < len; i++) printf("%02x", shards[k + p][i]);
    } else {
      unsigned char digest[32];
      SHA256(shards[k + p], len, digest);
      for (int i = 0; i < 32; i++) printf("%02x", digest[i]);
    }
    printf("'");
  }
  printf("] },\n");
}

int main(void) {
  unsigned char matrix[12 * 8];
  gf_gen_cauchy1_matrix(matrix, 12, 8);
  printf("generator 12x8: ");
  for (int i = 0; i < 12 * 8; i++) printf("%02x", matrix[i]);
  printf("\n");
  vector(1, 1, 16, 1, 1);
  vector(2, 1, 16, 2, 1);
  vector(4, 2, 33, 3, 1);
  vector(8, 4, 37, 4, 1);
  vector(10, 4, 1000, 5, 0);
  vector(12, 4, 4099, 6, 0);
  vector(8, 4, 65536 + 7, 7, 0);
  vector(32, 32, 333, 8, 0);
  vector(200, 55, 129, 9, 0);
  return 0;
}
