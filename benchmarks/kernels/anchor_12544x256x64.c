// The FireSim anchor of BENCHMARKS.md: a 12544x256x64 GEMM in the Exo style,
// written from its description. Per (i, j): zero four 16x16 accumulator tiles,
// load the 16x64 A strip and the 64x64 B block (four 16x64 mvin3s), 16
// preload/compute pairs, four 16x16 mvouts. Nothing is reused across (i, j).
// Measured on FireSim: 3,435,455 cycles.
#include "gemmini.h"

void solution(int8_t A[12544][64], int8_t B[64][256], int8_t C[12544][256]) {
  config_st(256);
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(256, 1.0f, 16, 2);
  config_ld(64, 1.0f, 16, 1);
  config_ld(0, 1.0f, 16, 0);
  uint32_t a = 0;
  uint32_t b = 1024;
  uint32_t res = 1 << 31;
  for (int_fast32_t i = 0; i < 784; i++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      for (int_fast32_t z = 0; z < 4; z++) {
        mvin(0, res + z * 16, 16, 16);
      }
      mvin2(&A[16 * i][0], a, 64, 16);
      for (int_fast32_t k = 0; k < 4; k++) {
        mvin3(&B[16 * k][64 * j], b + 64 * k, 64, 16);
      }
      for (int_fast32_t k = 0; k < 4; k++) {
        for (int_fast32_t jo = 0; jo < 4; jo++) {
          uint32_t c = res + jo * 16;
          if (k > 0) {
            c = c | 0x40000000;
          }
          preload(b + 64 * k + 16 * jo, c, 16, 16, 16, 16);
          compute_preloaded(a + 16 * k, ~((uint32_t)0), 16, 16, 16, 16);
        }
      }
      for (int_fast32_t jo = 0; jo < 4; jo++) {
        mvout(&C[16 * i][64 * j + 16 * jo], res + 16 * jo, 16, 16);
      }
    }
  }
  fence();
}
