// C = A x B for 512x512 int8 matrices (int32 accumulation, saturated to int8),
// written in the short dialect of the Autocomp paper.
//
// Schedule: for each 64-column panel of B (kept in the scratchpad for the
// whole panel), stream 64-row tiles of A through two scratchpad buffers
// (double buffering), accumulate the 64x64 output tile in one of two
// accumulator buffers, and store it with 64-column mvouts. The first k block
// of each output overwrites the accumulator instead of zeroing it first.
#include "gemmini.h"

void solution(int8_t A[512][512], int8_t B[512][512], int8_t C[512][512]) {
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(512);                  // C row stride in bytes
  config_ld(512, 1.0f, 16, 0);     // A: 64-column mvins, block stride 16 rows
  config_ld(512, 1.0f, 16, 1);     // B: 64-column mvins, block stride 16 rows

  uint32_t b_panel = 8192;         // 32 k-blocks x 4 column blocks x 16 rows
  for (int_fast32_t j = 0; j < 8; j++) {
    for (int_fast32_t k = 0; k < 32; k++) {
      mvin2(&B[k * 16][j * 64], b_panel + k * 64, 64, 16);
    }
    for (int_fast32_t i = 0; i < 8; i++) {
      uint32_t a_tile = ((i % 2) * 2048);                   // 4 row blocks x 32 k-blocks x 16 rows
      uint32_t acc_tile = (1 << 31) | ((i % 2) * 256);      // 4 x 4 output blocks of 16 rows
      for (int_fast32_t ii = 0; ii < 4; ii++) {
        for (int_fast32_t kk = 0; kk < 8; kk++) {
          mvin(&A[i * 64 + ii * 16][kk * 64], a_tile + ii * 512 + kk * 64, 64, 16);
        }
      }
      for (int_fast32_t k = 0; k < 32; k++) {
        for (int_fast32_t jj = 0; jj < 4; jj++) {
          for (int_fast32_t ii = 0; ii < 4; ii++) {
            uint32_t out = acc_tile + ii * 64 + jj * 16;
            if (k > 0) {
              out |= 0x40000000;   // accumulate after the first k block
            }
            if (ii == 0) {
              preload(b_panel + k * 64 + jj * 16, out, 16, 16, 16, 16);
              compute_preloaded(a_tile + ii * 512 + k * 16, ~((uint32_t)0), 16, 16, 16, 16);
            } else {
              preload(~((uint32_t)0), out, 16, 16, 16, 16);   // keep the weights
              compute_accumulated(a_tile + ii * 512 + k * 16, ~((uint32_t)0), 16, 16, 16, 16);
            }
          }
        }
      }
      for (int_fast32_t ii = 0; ii < 4; ii++) {
        mvout(&C[i * 64 + ii * 16][j * 64], acc_tile + ii * 64, 64, 16);
      }
    }
  }
  fence();
}
