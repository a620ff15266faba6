
#pragma once
#ifndef AUTOCOMP_EXO_GEMMINI_H
#define AUTOCOMP_EXO_GEMMINI_H

#ifdef __cplusplus
extern "C" {
#endif


#include <stdint.h>
#include <stdbool.h>

// Compiler feature macros adapted from Hedley (public domain)
// https://github.com/nemequ/hedley

#if defined(__has_builtin)
#  define EXO_HAS_BUILTIN(builtin) __has_builtin(builtin)
#else
#  define EXO_HAS_BUILTIN(builtin) (0)
#endif

#if EXO_HAS_BUILTIN(__builtin_assume)
#  define EXO_ASSUME(expr) __builtin_assume(expr)
#elif EXO_HAS_BUILTIN(__builtin_unreachable)
#  define EXO_ASSUME(expr) \
      ((void)((expr) ? 1 : (__builtin_unreachable(), 1)))
#else
#  define EXO_ASSUME(expr) ((void)(expr))
#endif

typedef struct autocomp_exo_gemmini_Context { 

    struct ConfigLoad {
        int_fast32_t src_stride;
    } ConfigLoad;

    struct ConfigLoad_id1 {
        int_fast32_t src_stride;
    } ConfigLoad_id1;

    struct ConfigLoad_id2 {
        int_fast32_t src_stride;
    } ConfigLoad_id2;

    struct ConfigMatmul {
        bool done;
    } ConfigMatmul;

    struct ConfigStore {
        float scale;
        int_fast32_t dst_stride;
        bool act;
    } ConfigStore;

} autocomp_exo_gemmini_Context;
#ifndef EXO_WIN_2I32
#define EXO_WIN_2I32
struct exo_win_2i32{
    int32_t * const data;
    const int_fast32_t strides[2];
};
#endif
#ifndef EXO_WIN_2I32C
#define EXO_WIN_2I32C
struct exo_win_2i32c{
    const int32_t * const data;
    const int_fast32_t strides[2];
};
#endif
#ifndef EXO_WIN_2I8
#define EXO_WIN_2I8
struct exo_win_2i8{
    int8_t * const data;
    const int_fast32_t strides[2];
};
#endif
#ifndef EXO_WIN_2I8C
#define EXO_WIN_2I8C
struct exo_win_2i8c{
    const int8_t * const data;
    const int_fast32_t strides[2];
};
#endif
#ifndef EXO_WIN_3I8
#define EXO_WIN_3I8
struct exo_win_3i8{
    int8_t * const data;
    const int_fast32_t strides[3];
};
#endif
// gemm_256x64x128(
//     scale : f32 @DRAM,
//     act : bool,
//     A : i8[256, 128] @DRAM,
//     B : i8[128, 64] @DRAM,
//     C : i8[256, 64] @DRAM
// )
void gemm_256x64x128( autocomp_exo_gemmini_Context *ctxt, const float* scale, bool act, const int8_t* A, const int8_t* B, int8_t* C );



#ifdef __cplusplus
}
#endif
#endif  // AUTOCOMP_EXO_GEMMINI_H
