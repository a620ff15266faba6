// cpu_fidelity corpus: entry swlib_gemm dims 64 64 64
// Gemmini software library: tiled_matmul_auto(64, 64, 64), WS, no bias, CPU-issued inner loop
// (tiled_matmul_outer + sp_tiled_matmul_ws). Tiles in DIM units: tile_I = 4,
// tile_J = 4, tile_K = 4; grid 1 x 1 x 1; last tiles 4, 4, 4.
#include <stdint.h>
#include <stdbool.h>
#include "include/gemmini.h"

void swlib_gemm(const int8_t* A, const int8_t* B, int8_t* C, const float* scale, bool act) {
  // tiled_matmul_outer: configs once
  gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);
  gemmini_extended_config_st(64, act, scale[0]);
  gemmini_extended4_config_ld(64, 1.0f, false, 16, 0);
  gemmini_extended4_config_ld(64, 1.0f, false, 16, 1);
  gemmini_extended4_config_ld(0, 1.0f, false, 16, 2);
  int_fast32_t pad_I = 0;
  int_fast32_t pad_J = 0;
  int_fast32_t pad_K = 0;
  for (int_fast32_t i0 = 0; i0 < 1; i0++) {
    for (int_fast32_t j0 = 0; j0 < 1; j0++) {
      for (int_fast32_t k0 = 0; k0 < 1; k0++) {
        int_fast32_t I = 4;
        int_fast32_t J = 4;
        int_fast32_t K = 4;
        int_fast32_t a_row = i0 * 4;
        int_fast32_t a_col = k0 * 4;
        int_fast32_t b_row = k0 * 4;
        int_fast32_t b_col = j0 * 4;
        // sp_tiled_matmul_ws: A from scratchpad row 0 up, B from the top down, C in the accumulator
        uint32_t A_sp_addr_start = 0;
        uint32_t B_sp_addr_start = 16384 - K * J * 16;
        uint32_t C_sp_addr_start = 1 << 31;
        int_fast32_t A_blocks = K <= 4 ? K : 4;
        int_fast32_t B_blocks = J <= 4 ? J : 4;
        int_fast32_t C_blocks = J <= 4 ? J : 4;
        for (int_fast32_t k = 0; k < K; k++) {
          for (int_fast32_t j = 0; j < J; j++) {
            for (int_fast32_t i = 0; i < I; i++) {
              uint32_t A_sp_addr = A_sp_addr_start + (i * K + k) * 16;
              uint32_t B_sp_addr = B_sp_addr_start + (k * J + j) * 16;
              uint32_t C_sp_addr = C_sp_addr_start + (i * J + j) * 16;
              if (j == 0 && k % A_blocks == 0) {
                int_fast32_t a_blocks = k + A_blocks <= K ? A_blocks : K - k;
                int_fast32_t a_cols = a_blocks * 16 - (k + a_blocks >= K ? pad_K : 0);
                int_fast32_t a_rows = 16 - (i == I - 1 ? pad_I : 0);
                gemmini_extended_mvin(&A[((a_row + i) * 16) * 64 + (a_col + k) * 16], A_sp_addr, a_cols, a_rows);
              }
              if (i == 0 && j % B_blocks == 0) {
                int_fast32_t b_blocks = j + B_blocks <= J ? B_blocks : J - j;
                int_fast32_t b_cols = b_blocks * 16 - (j + b_blocks >= J ? pad_J : 0);
                int_fast32_t b_rows = 16 - (k == K - 1 ? pad_K : 0);
                gemmini_extended_mvin2(&B[((b_row + k) * 16) * 64 + (b_col + j) * 16], B_sp_addr, b_cols, b_rows);
              }
              uint32_t pre_sp_addr = i == 0 ? B_sp_addr : ~((uint32_t)0);
              // accumulate, except on the very first k of the whole K range (no bias: overwrite)
              uint32_t out_sp_addr = C_sp_addr | 0x40000000;
              if (k0 == 0 && k == 0) {
                out_sp_addr = C_sp_addr;
              }
              int_fast32_t A_cols = 16 - (k == K - 1 ? pad_K : 0);
              int_fast32_t A_rows = 16 - (i == I - 1 ? pad_I : 0);
              int_fast32_t B_cols = 16 - (j == J - 1 ? pad_J : 0);
              int_fast32_t B_rows = 16 - (k == K - 1 ? pad_K : 0);
              int_fast32_t C_cols = 16 - (j == J - 1 ? pad_J : 0);
              int_fast32_t C_rows = 16 - (i == I - 1 ? pad_I : 0);
              gemmini_extended_preload(pre_sp_addr, out_sp_addr, B_cols, B_rows, C_cols, C_rows);
              if (i == 0) {
                gemmini_extended_compute_preloaded(A_sp_addr, ~((uint32_t)0), A_cols, A_rows, 16, 16);
              } else {
                gemmini_extended_compute_accumulated(A_sp_addr, ~((uint32_t)0), A_cols, A_rows, 16, 16);
              }
            }
          }
        }
        // move-out C after the tile's last k, on the last k0 tile only
        if (k0 == 0) {
          for (int_fast32_t i = 0; i < I; i++) {
            for (int_fast32_t j = 0; j < J; j += C_blocks) {
              int_fast32_t c_blocks = j + C_blocks <= J ? C_blocks : J - j;
              int_fast32_t c_cols = c_blocks * 16 - (j + c_blocks >= J ? pad_J : 0);
              int_fast32_t c_rows = 16 - (i == I - 1 ? pad_I : 0);
              gemmini_extended_mvout(((uint64_t) &C[((a_row + i) * 16) * 64 + (b_col + j) * 16]), C_sp_addr_start + (i * J + j) * 16, c_cols, c_rows);
            }
          }
        }
      }
    }
  }
  gemmini_fence();
}
