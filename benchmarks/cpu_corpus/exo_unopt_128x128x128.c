// cpu_fidelity corpus: entry gemm_128x128x128 dims 128 128 128
#include "autocomp_exo_gemmini.h"

#include <stdio.h>
#include <stdlib.h>

#include <include/gemmini.h>
#include "gemm_acc_malloc.h"
#include <include/gemmini.h>
#include "gemm_malloc.h"

/* relying on the following instruction..."
config_ld_i8_id1(src_stride)
gemmini_extended3_config_ld({src_stride}, 1.0f, 0, 1);

*/

/* relying on the following instruction..."
config_ld_i8_id2(src_stride)
gemmini_extended3_config_ld({src_stride}, 1.0f, 0, 2);

*/

/* relying on the following instruction..."
config_matmul()
gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);

*/

/* relying on the following instruction..."
config_st_acc_i8(scale,dst_stride,act)
gemmini_extended_config_st({dst_stride}, {act}, {scale}[0]);

*/

/* relying on the following instruction..."
config_zero()
gemmini_extended3_config_ld(0, 1.0f, 0, 0);

*/

/* relying on the following instruction..."
do_ld_i8_block_id1(n,m,src,dst)
gemmini_extended_mvin2( &{src_data}, ((uint64_t) &{dst_data}), 16*{m}, {n} );
*/

/* relying on the following instruction..."
do_ld_i8_block_id2(n,m,src,dst)
gemmini_extended_mvin3( &{src_data}, ((uint64_t) &{dst_data}), 16*{m}, {n} );
*/

/* relying on the following instruction..."
do_matmul_acc_i8(N,M,K,A,B,C)
gemmini_extended_preload((uint32_t)(&{B_data}), (uint32_t)(&{C_data}) | 0x40000000, {M}, {K}, {M}, {N});
gemmini_extended_compute_preloaded((uint32_t)(&{A_data}), ~((uint32_t)0), {K}, {N}, 16, 16);
*/

/* relying on the following instruction..."
do_st_acc_i8(n,m,src,dst)
gemmini_extended_mvout( ((uint64_t) &{dst_data}), (uint32_t) &{src_data}, {m}, {n} );
*/

/* relying on the following instruction..."
do_zero_acc_i32(n,m,dst)
gemmini_extended_mvin( 0, ((uint64_t) &{dst_data}),{m}, {n} );
*/
// gemm_128x128x128(
//     scale : f32 @DRAM,
//     act : bool,
//     A : i8[128, 128] @DRAM,
//     B : i8[128, 128] @DRAM,
//     C : i8[128, 128] @DRAM
// )
void gemm_128x128x128( autocomp_exo_gemmini_Context *ctxt, const float* scale, bool act, const int8_t* A, const int8_t* B, int8_t* C ) {
gemmini_extended_config_st((128), (act), (scale)[0]);

gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);

gemmini_extended3_config_ld((128), 1.0f, 0, 2);

gemmini_extended3_config_ld((128), 1.0f, 0, 1);

gemmini_extended3_config_ld(0, 1.0f, 0, 0);

for (int_fast32_t i = 0; i < 8; i++) {
  int32_t *res = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * 4 * 2 * sizeof(int32_t)));
  for (int_fast32_t j = 0; j < 2; j++) {
    for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
      gemmini_extended_mvin( 0, ((uint64_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16))),(16), (16) );
    }
    int8_t *a = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 4 * 2 * sizeof(int8_t)));
    int8_t *b = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 4 * 4 * 2 * sizeof(int8_t)));
    for (int_fast32_t ko = 0; ko < 2; ko++) {
      gemmini_extended_mvin2( &A[(16 * i) * (128) + 64 * ko], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)a)) + ((ko) * (1024))/16))), 16*(4), (16) );
      for (int_fast32_t k = 0; k < 4; k++) {
        gemmini_extended_mvin3( &B[(16 * k + 64 * ko) * (128) + 64 * j], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)b)) + ((ko) * (4096) + (k) * (1024))/16))), 16*(4), (16) );
      }
      for (int_fast32_t k = 0; k < 4; k++) {
        for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
          gemmini_extended_preload((uint32_t)(&*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)b)) + ((ko) * (4096) + (k) * (1024) + (j_in_o) * (256))/16))), (uint32_t)(&*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16))) | 0x40000000, (16), (16), (16), (16));
gemmini_extended_compute_preloaded((uint32_t)(&*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)a)) + ((ko) * (1024) + (k) * (256))/16))), ~((uint32_t)0), (16), (16), 16, 16);
        }
      }
    }
    gemm_free((uint64_t)(b));
    gemm_free((uint64_t)(a));
    for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {
      gemmini_extended_mvout( ((uint64_t) &C[(16 * i) * (128) + 16 * j_in_o + 64 * j]), (uint32_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16)), (16), (16) );
    }
  }
  gemm_acc_free((uint32_t)(res));
}
}

