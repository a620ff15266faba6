/* Stand-in gemmini.h for counting the RISC-V instructions a kernel executes
 * (benchmarks/riscv_reference.py).
 *
 * Every Gemmini command is one custom-0 RoCC instruction (`.insn r 0x0b, 3,
 * funct, x0, rs1, rs2`) whose two 64-bit operands are packed exactly as the
 * Gemmini software library's gemmini.h packs them (ADDR_LEN 32, the k_* funct
 * codes, the CONFIG_* sub-opcodes), so the operand arithmetic gcc has to emit
 * is the real one. `gemmini_fence` is `fence`. The reference runner replaces
 * each custom-0 word with a nop before emulating: same instruction count.
 *
 * Both C dialects the simulator reads are covered: Exo 1.0.0's output
 * (gemmini_extended*_*, gemm_malloc / gemm_acc_malloc, the context struct
 * comes from Exo's own header) and the short dialect (config_ex, config_ld,
 * config_st, mvin/mvin2/mvin3, preload, compute_preloaded,
 * compute_accumulated, mvout, fence).
 *
 * gemm_malloc / gemm_acc_malloc / gemm_free / gemm_acc_free are small
 * out-of-line bump allocators (the simulator's allocator is first fit; the
 * kernels here allocate a handful of buffers, so the scan is short either way).
 */
#ifndef RISCV_GEMMINI_H
#define RISCV_GEMMINI_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define DIM 16
#define ADDR_LEN 32
#define BANK_NUM 4
#define BANK_ROWS 4096
#define ACC_ROWS 1024
#define MAX_BYTES 64
#define MAX_BLOCK_LEN (MAX_BYTES / DIM)
#define MAX_BLOCK_LEN_ACC (MAX_BYTES / (DIM * 4))

typedef int8_t elem_t;
typedef int32_t acc_t;
typedef float scale_t;
typedef uint32_t scale_t_bits;
typedef float acc_scale_t;
typedef uint32_t acc_scale_t_bits;

#define MVIN_SCALE_IDENTITY 1.0f
#define ACC_SCALE_IDENTITY 1.0f
#define GARBAGE_ADDR ((uint32_t)(-1))
#define OUTPUT_STATIONARY 0
#define WEIGHT_STATIONARY 1
#define OS 0
#define WS 1
#define NO_ACTIVATION 0
#define RELU 1

#define k_CONFIG 0
#define k_MVIN2 1
#define k_MVIN 2
#define k_MVOUT 3
#define k_COMPUTE_PRELOADED 4
#define k_COMPUTE_ACCUMULATE 5
#define k_PRELOAD 6
#define k_FLUSH 7
#define k_LOOP_WS 8
#define k_LOOP_WS_CONFIG_BOUNDS 9
#define k_LOOP_WS_CONFIG_ADDRS_AB 10
#define k_LOOP_WS_CONFIG_ADDRS_DC 11
#define k_LOOP_WS_CONFIG_STRIDES_AB 12
#define k_LOOP_WS_CONFIG_STRIDES_DC 13
#define k_MVIN3 14

#define CONFIG_EX 0
#define CONFIG_LD 1
#define CONFIG_ST 2

static inline scale_t_bits scale_t_to_scale_t_bits(scale_t x) {
  union { scale_t s; scale_t_bits b; } u;
  u.s = x;
  return u.b;
}
static inline acc_scale_t_bits acc_scale_t_to_acc_scale_t_bits(acc_scale_t x) {
  union { acc_scale_t s; acc_scale_t_bits b; } u;
  u.s = x;
  return u.b;
}

/* one RoCC command: custom-0, xs1 and xs2 set, no rd */
#define ROCC_INSTRUCTION_RS1_RS2(x, rs1, rs2, funct)                                   \
  __asm__ volatile(".insn r 0x0b, 3, %2, x0, %0, %1"                                    \
                   :                                                                    \
                   : "r"((uint64_t)(rs1)), "r"((uint64_t)(rs2)), "i"(funct) : "memory")

/* ---- gemmini.h (operand packing as in the Gemmini software library) ---- */
#define gemmini_extended_mvin(dram_addr, spad_addr, cols, rows)                        \
  ROCC_INSTRUCTION_RS1_RS2(0, dram_addr,                                               \
    ((uint64_t)(rows) << (ADDR_LEN + 16)) | ((uint64_t)(cols) << ADDR_LEN) | (spad_addr), k_MVIN)
#define gemmini_extended_mvin2(dram_addr, spad_addr, cols, rows)                       \
  ROCC_INSTRUCTION_RS1_RS2(0, dram_addr,                                               \
    ((uint64_t)(rows) << (ADDR_LEN + 16)) | ((uint64_t)(cols) << ADDR_LEN) | (spad_addr), k_MVIN2)
#define gemmini_extended_mvin3(dram_addr, spad_addr, cols, rows)                       \
  ROCC_INSTRUCTION_RS1_RS2(0, dram_addr,                                               \
    ((uint64_t)(rows) << (ADDR_LEN + 16)) | ((uint64_t)(cols) << ADDR_LEN) | (spad_addr), k_MVIN3)
#define gemmini_block_mvin(dram_addr, spad_addr, len) \
  gemmini_extended_mvin(dram_addr, spad_addr, (len) * DIM, DIM)
#define gemmini_mvin(dram_addr, spad_addr) gemmini_extended_mvin(dram_addr, spad_addr, DIM, DIM)

#define gemmini_extended_mvout(dram_addr, spad_addr, cols, rows)                       \
  ROCC_INSTRUCTION_RS1_RS2(0, dram_addr,                                               \
    ((uint64_t)(rows) << (ADDR_LEN + 16)) | ((uint64_t)(cols) << ADDR_LEN) | (uint64_t)(spad_addr), k_MVOUT)
#define gemmini_mvout(dram_addr, spad_addr) gemmini_extended_mvout(dram_addr, spad_addr, DIM, DIM)

#define gemmini_extended_compute_preloaded(A, BD, A_cols, A_rows, BD_cols, BD_rows)   \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)(A_rows) << (ADDR_LEN + 16)) | ((uint64_t)(A_cols) << ADDR_LEN) | (uint64_t)(A), \
    ((uint64_t)(BD_rows) << (ADDR_LEN + 16)) | ((uint64_t)(BD_cols) << ADDR_LEN) | (uint64_t)(BD), \
    k_COMPUTE_PRELOADED)
#define gemmini_extended_compute_accumulated(A, BD, A_cols, A_rows, BD_cols, BD_rows) \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)(A_rows) << (ADDR_LEN + 16)) | ((uint64_t)(A_cols) << ADDR_LEN) | (uint64_t)(A), \
    ((uint64_t)(BD_rows) << (ADDR_LEN + 16)) | ((uint64_t)(BD_cols) << ADDR_LEN) | (uint64_t)(BD), \
    k_COMPUTE_ACCUMULATE)
#define gemmini_compute_preloaded(A, BD) gemmini_extended_compute_preloaded(A, BD, DIM, DIM, DIM, DIM)
#define gemmini_compute_accumulated(A, BD) gemmini_extended_compute_accumulated(A, BD, DIM, DIM, DIM, DIM)

#define gemmini_extended_preload(BD, C, BD_cols, BD_rows, C_cols, C_rows)            \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)(BD_rows) << (ADDR_LEN + 16)) | ((uint64_t)(BD_cols) << ADDR_LEN) | (uint64_t)(BD), \
    ((uint64_t)(C_rows) << (ADDR_LEN + 16)) | ((uint64_t)(C_cols) << ADDR_LEN) | (uint64_t)(C), \
    k_PRELOAD)
#define gemmini_preload(BD, C) gemmini_extended_preload(BD, C, DIM, DIM, DIM, DIM)
#define gemmini_preload_zeros(C) gemmini_preload(GARBAGE_ADDR, C)

#define gemmini_extended3_config_ex(dataflow, sys_act, sys_shift, sys_acc_scale, C_stride, A_stride, \
                                    A_transpose, B_transpose, set_only_strides)      \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)acc_scale_t_to_acc_scale_t_bits((acc_scale_t)(sys_acc_scale)) << 32) |  \
    ((uint64_t)(A_stride) << 16) | ((uint64_t)(B_transpose) << 9) |                    \
    ((uint64_t)(A_transpose) << 8) | ((uint64_t)(set_only_strides) << 7) |             \
    ((uint64_t)(sys_act) << 3) | ((uint64_t)(dataflow) << 2) | CONFIG_EX,             \
    ((uint64_t)(C_stride) << 48) | (uint64_t)(sys_shift), k_CONFIG)
#define gemmini_extended2_config_ex(dataflow, sys_act, sys_shift, A_stride, A_transpose, B_transpose) \
  gemmini_extended3_config_ex(dataflow, sys_act, sys_shift, ACC_SCALE_IDENTITY, 1, A_stride, A_transpose, \
                              B_transpose, false)
#define gemmini_extended_config_ex(dataflow, sys_act, sys_shift, A_stride, A_transpose, B_transpose) \
  gemmini_extended2_config_ex(dataflow, sys_act, sys_shift, A_stride, A_transpose, B_transpose)
#define gemmini_config_ex(dataflow, sys_act, sys_shift) \
  gemmini_extended_config_ex(dataflow, sys_act, sys_shift, 1, 0, 0)

#define gemmini_extended5_config_ld(stride, scale, shrunk, block_mvin_stride, pixel_repeats, id) \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)scale_t_to_scale_t_bits(scale) << 32) | ((uint64_t)(block_mvin_stride) << 16) | \
    ((uint64_t)(pixel_repeats) << 8) | ((uint64_t)(id) << 3) | ((uint64_t)(shrunk) << 2) | CONFIG_LD, \
    stride, k_CONFIG)
#define gemmini_extended4_config_ld(stride, scale, shrunk, block_mvin_stride, id) \
  gemmini_extended5_config_ld(stride, scale, shrunk, block_mvin_stride, 1, id)
#define gemmini_extended3_config_ld(stride, scale, shrunk, id) \
  gemmini_extended4_config_ld(stride, scale, shrunk, DIM, id)
#define gemmini_extended2_config_ld(stride, scale, shrunk) gemmini_extended3_config_ld(stride, scale, shrunk, 0)
#define gemmini_extended_config_ld(stride, scale) gemmini_extended2_config_ld(stride, scale, false)
#define gemmini_config_ld(stride) gemmini_extended_config_ld(stride, MVIN_SCALE_IDENTITY)

#define gemmini_extended2_config_st(stride, acc_act, acc_scale, pool_stride, pool_size, pool_out_dim, \
                                    porows, pocols, orows, ocols, upad, lpad)         \
  ROCC_INSTRUCTION_RS1_RS2(0,                                                          \
    ((uint64_t)(ocols) << 56) | ((uint64_t)(orows) << 48) | ((uint64_t)(pocols) << 40) | \
    ((uint64_t)(porows) << 32) | ((uint64_t)(pool_out_dim) << 24) | ((uint64_t)(lpad) << 10) | \
    ((uint64_t)(upad) << 8) | ((uint64_t)(pool_size) << 6) | ((uint64_t)(pool_stride) << 4) | \
    ((uint64_t)(acc_act) << 2) | CONFIG_ST,                                            \
    ((uint64_t)acc_scale_t_to_acc_scale_t_bits((acc_scale_t)(acc_scale)) << 32) | ((uint32_t)(stride)), \
    k_CONFIG)
#define gemmini_extended_config_st(stride, acc_act, acc_scale) \
  gemmini_extended2_config_st(stride, acc_act, acc_scale, 0, 0, 0, 0, 0, 0, 0, 0, 0)
#define gemmini_config_st(stride) gemmini_extended_config_st(stride, NO_ACTIVATION, ACC_SCALE_IDENTITY)

#define gemmini_flush(skip) ROCC_INSTRUCTION_RS1_RS2(0, skip, 0, k_FLUSH)
#define gemmini_fence() __asm__ volatile("fence" ::: "memory")

/* ---- the short dialect (GEMMINI.md section 3) ---- */
#define config_ex(dataflow, act, A_stride, A_transpose, B_transpose) \
  gemmini_extended_config_ex(dataflow, act, 0, A_stride, A_transpose, B_transpose)
#define RG_CONFIG_LD3(stride, scale, id) gemmini_extended3_config_ld(stride, scale, false, id)
#define RG_CONFIG_LD4(stride, scale, block_stride, id) \
  gemmini_extended4_config_ld(stride, scale, false, block_stride, id)
#define RG_PICK5(_1, _2, _3, _4, NAME, ...) NAME
#define config_ld(...) RG_PICK5(__VA_ARGS__, RG_CONFIG_LD4, RG_CONFIG_LD3, , )(__VA_ARGS__)
#define config_st(stride) gemmini_config_st(stride)
#define mvin(dram, local, cols, rows) gemmini_extended_mvin((uint64_t)(dram), local, cols, rows)
#define mvin2(dram, local, cols, rows) gemmini_extended_mvin2((uint64_t)(dram), local, cols, rows)
#define mvin3(dram, local, cols, rows) gemmini_extended_mvin3((uint64_t)(dram), local, cols, rows)
#define mvout(dram, local, cols, rows) gemmini_extended_mvout((uint64_t)(dram), local, cols, rows)
#define preload(b, c, b_cols, b_rows, c_cols, c_rows) gemmini_extended_preload(b, c, b_cols, b_rows, c_cols, c_rows)
#define compute_preloaded(a, d, a_cols, a_rows, d_cols, d_rows) \
  gemmini_extended_compute_preloaded(a, d, a_cols, a_rows, d_cols, d_rows)
#define compute_accumulated(a, d, a_cols, a_rows, d_cols, d_rows) \
  gemmini_extended_compute_accumulated(a, d, a_cols, a_rows, d_cols, d_rows)
#define fence() gemmini_fence()

/* ---- runtime: Exo's local-memory allocators (out of line) ---- */
extern uint64_t rg_sp_next, rg_acc_next;
__attribute__((noinline)) uint64_t gemm_malloc(long unsigned int size);
__attribute__((noinline)) void gemm_free(uint64_t addr);
__attribute__((noinline)) uint32_t gemm_acc_malloc(long unsigned int size);
__attribute__((noinline)) void gemm_acc_free(uint32_t addr);

#ifdef RG_DEFINE_RUNTIME
uint64_t rg_sp_next, rg_acc_next;
__attribute__((noinline)) uint64_t gemm_malloc(long unsigned int size) {
  uint64_t r = rg_sp_next;
  rg_sp_next = r + (size + DIM - 1) / DIM;
  return r;
}
__attribute__((noinline)) void gemm_free(uint64_t addr) { __asm__ volatile("" ::"r"(addr)); }
__attribute__((noinline)) uint32_t gemm_acc_malloc(long unsigned int size) {
  uint64_t r = rg_acc_next;
  rg_acc_next = r + (size + 4 * DIM - 1) / (4 * DIM);
  return (uint32_t)r | 0x80000000u;
}
__attribute__((noinline)) void gemm_acc_free(uint32_t addr) { __asm__ volatile("" ::"r"(addr)); }
#endif

/* ---- CPU-side helpers Exo's C may use ---- */
#define EXO_ASSUME(expr) ((void)(expr))
static inline int32_t ACC_SCALE(int32_t x, float scale) {
  float y = __builtin_nearbyintf((float)x * scale);
  return y > 2147483647.0f ? 2147483647 : (y < -2147483648.0f ? (-2147483647 - 1) : (int32_t)y);
}

#endif
