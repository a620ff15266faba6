// The 12544x256x64 FireSim anchor of ../shared/BENCHMARKS.md (3,435,455 cycles measured), written
// from its description in the short dialect: per (i, j) zero four 16x16 accumulator tiles, load the
// 16x64 A strip and the 64x64 B block (four 16x64 mvin3), 16 preload/compute pairs, four 16x16
// mvouts. Nothing is reused across (i, j).
#include "gemmini.h"

void solution(int8_t A[12544][64], int8_t B[64][256], int8_t C[12544][256]) {
  config_st(256);
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(256, 1.0f, 16, 2);  // B (mvin3)
  config_ld(64, 1.0f, 16, 1);   // A (mvin2)
  config_ld(0, 1.0f, 16, 0);    // zeroing mvin
  uint32_t a_base = 0;          // A at scratchpad row 0
  uint32_t b_base = 1024;       // B at scratchpad row 1024
  uint32_t c_base = 1 << 31;    // the output tile at accumulator row 0
  for (int_fast32_t i = 0; i < 784; i++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
        mvin(0, c_base + 16 * j_in_o, 16, 16);
      }
      mvin2(&A[16 * i][0], a_base, 64, 16);
      for (int_fast32_t k = 0; k < 4; k++) {
        mvin3(&B[16 * k][64 * j], b_base + 64 * k, 64, 16);
      }
      for (int_fast32_t k = 0; k < 4; k++) {
        for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
          preload(b_base + 64 * k + 16 * j_in_o, (c_base + 16 * j_in_o) | (k == 0 ? 0 : 0x40000000),
                  16, 16, 16, 16);
          compute_preloaded(a_base + 16 * k, ~((uint32_t)0), 16, 16, 16, 16);
        }
      }
      for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
        mvout(&C[16 * i][64 * j + 16 * j_in_o], c_base + 16 * j_in_o, 16, 16);
      }
    }
  }
  fence();
}
