// A 64x64x64 int8 GEMM in the short dialect of the Autocomp paper:
// B resident in the scratchpad, A tiles double-buffered, one fence at the end.
#include "gemmini.h"

void solution(int8_t A[64][64], int8_t B[64][64], int8_t C[64][64]) {
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(64);
  config_ld(64, 1.0f, 16, 0);   // A: DRAM stride 64 B, block stride 16 rows
  config_ld(64, 1.0f, 16, 1);   // B
  uint32_t b_base = 4096;       // B lives at rows 4096.. (4 k-blocks x 4 j-blocks x 16 rows)
  for (int_fast32_t k = 0; k < 4; k++) {
    mvin2(&B[k * 16][0], b_base + k * 64, 64, 16);
  }
  for (int_fast32_t i = 0; i < 4; i++) {
    uint32_t a_base = (i % 2) * 64;          // double-buffered A tile
    mvin(&A[i * 16][0], a_base, 64, 16);
    uint32_t res = 1 << 31;
    for (int_fast32_t j = 0; j < 4; j++) {
      for (int_fast32_t k = 0; k < 4; k++) {
        uint32_t c = res + j * 16;
        if (k > 0) {
          c = c | 0x40000000;
        }
        preload(b_base + k * 64 + j * 16, c, 16, 16, 16, 16);
        compute_preloaded(a_base + k * 16, ~((uint32_t)0), 16, 16, 16, 16);
      }
    }
    for (int_fast32_t j = 0; j < 4; j++) {
      mvout((uint64_t)&C[i * 16][j * 16], res + j * 16, 16, 16);
    }
  }
  fence();
}
