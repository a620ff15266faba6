"""Whole programs in both C dialects, Exo's generated C, and the C-language semantics
(types, wrap-around, division, precedence, control flow, helpers) the simulator must get
right. References are numpy / hand-computed, never the simulator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "exo_matmul_64.c"
I8, I32 = np.int8, np.int32


def sat8(x):
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), -128, 127).astype(I8)


def gemm_ref(A, B, scale=1.0, act=False, bias=None):
    """C = saturate_int8(round_half_even(float32(A@B (+bias) as int32) * float32(scale))), relu if act."""
    acc = A.astype(np.int64) @ B.astype(np.int64)
    if bias is not None:
        acc = acc + bias
    acc = acc.astype(I32)
    y = acc.astype(np.float32) * np.float32(scale)
    out = sat8(y)
    if act:
        out = np.maximum(out, 0).astype(I8)
    return out


def run(src, entry, args, **kw):
    try:
        return sim.run(src, entry, args, **kw)
    except sim.SimError as e:
        e.add_note("--- C source ---\n" + src)
        raise


# --------------------------------------------------------------------------
# Exo-generated C
# --------------------------------------------------------------------------


@pytest.mark.parametrize("scale,act", [(1.0 / 128, False), (1.0 / 128, True), (0.0123, True),
                                       (1.0, False), (2.0 ** -10, False)])
def test_exo_example_matmul_64(scale, act):
    rng = np.random.default_rng(100)
    A = rng.integers(-128, 128, (64, 64)).astype(I8)
    B = rng.integers(-128, 128, (64, 64)).astype(I8)
    C = np.zeros(64 * 64, I8)
    res = run(EXAMPLE.read_text(), "matmul_64x64x64",
              {"scale": scale, "act": act, "A": A.reshape(-1), "B": B.reshape(-1), "C": C},
              filename=str(EXAMPLE))
    np.testing.assert_array_equal(C.reshape(64, 64), gemm_ref(A, B, scale, act))
    # the instruction counts of this program are known from its text
    ins = res.instructions
    assert ins["preload"] == 64 and ins["compute_preloaded"] == 64
    assert ins["mvout"] == 16


def test_exo_example_scale_as_float32_array_and_flat_or_2d_arrays():
    rng = np.random.default_rng(101)
    A = rng.integers(-128, 128, (64, 64)).astype(I8)
    B = rng.integers(-128, 128, (64, 64)).astype(I8)
    C = np.zeros((64, 64), I8)
    prog = sim.compile_program(EXAMPLE.read_text(), filename=str(EXAMPLE))
    prog.run("matmul_64x64x64", {"scale": np.array([0.01], np.float32), "act": 0,
                                  "A": A, "B": B, "C": C})
    np.testing.assert_array_equal(C, gemm_ref(A, B, np.float32(0.01), False))
    # a compiled program runs again with new arguments
    C2 = np.zeros((64, 64), I8)
    prog.run("matmul_64x64x64", {"scale": 0.02, "act": True, "A": B, "B": A, "C": C2})
    np.testing.assert_array_equal(C2, gemm_ref(B, A, 0.02, True))


def exo_style_gemm(M: int, N: int, K: int) -> str:
    """The C Exo 1.0.0 emits for its baseline Gemmini matmul (same shape as
    examples/exo_matmul_64.c), generalised by hand to M x N x K."""
    return f"""#include "matmul.h"
#include <stdio.h>
#include <stdlib.h>
#include <include/gemmini.h>
#include "gemm_acc_malloc.h"
#include "gemm_malloc.h"

/* relying on the following instruction..."
gemmini_extended_mvin2( &{{src_data}}, ((uint64_t) &{{dst_data}}), 16*{{m}}, {{n}} );
*/
// matmul_{M}x{N}x{K}(
//     scale : f32 @DRAM,
// )
void matmul_{M}x{N}x{K}( matmul_Context *ctxt, const float* scale, bool act, const int8_t* A, const int8_t* B, int8_t* C ) {{
gemmini_extended_config_st(({N}), (act), (scale)[0]);

gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);

gemmini_extended3_config_ld(({N}), 1.0f, 0, 2);

gemmini_extended3_config_ld(({K}), 1.0f, 0, 1);

gemmini_extended3_config_ld(0, 1.0f, 0, 0);

for (int_fast32_t i = 0; i < {M // 16}; i++) {{
  int32_t *res = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * 4 * {N // 64} * sizeof(int32_t)));
  int8_t *a = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 4 * {K // 64} * sizeof(int8_t)));
  for (int_fast32_t j = 0; j < {N // 64}; j++) {{
    for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {{
      gemmini_extended_mvin( 0, ((uint64_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16))),(16), (16) );
    }}
    int8_t *b = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 4 * 4 * {K // 64} * sizeof(int8_t)));
    for (int_fast32_t ko = 0; ko < {K // 64}; ko++) {{
      if (j == 0) {{
        gemmini_extended_mvin2( &A[(16 * i) * ({K}) + 64 * ko], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)a)) + ((ko) * (1024))/16))), 16*(4), (16) );
      }}
      for (int_fast32_t k = 0; k < 4; k++) {{
        gemmini_extended_mvin3( &B[(64 * ko + 16 * k) * ({N}) + 64 * j], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)b)) + ((ko) * (4096) + (k) * (1024))/16))), 16*(4), (16) );
      }}
      for (int_fast32_t k = 0; k < 4; k++) {{
        for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {{
          gemmini_extended_preload((uint32_t)(&*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)b)) + ((ko) * (4096) + (k) * (1024) + (j_in_o) * (256))/16))), (uint32_t)(&*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16))) | 0x40000000, (16), (16), (16), (16));
gemmini_extended_compute_preloaded((uint32_t)(&*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)a)) + ((ko) * (1024) + (k) * (256))/16))), ~((uint32_t)0), (16), (16), 16, 16);
        }}
      }}
    }}
    gemm_free((uint64_t)(b));
    for (int_fast32_t j_in_o = 0; j_in_o < 4; j_in_o++) {{
      gemmini_extended_mvout( ((uint64_t) &C[(16 * i) * ({N}) + 16 * j_in_o + 64 * j]), (uint32_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)res)) + ((j) * (1024) + (j_in_o) * (256))/16)), (16), (16) );
    }}
  }}
  gemm_free((uint64_t)(a));
  gemm_acc_free((uint32_t)(res));
}}
gemmini_fence();
}}
"""


@pytest.mark.parametrize("M,N,K", [(48, 128, 192), (16, 64, 128)])
def test_exo_style_gemm_non_square(M, N, K):
    rng = np.random.default_rng(102)
    A = rng.integers(-128, 128, (M, K)).astype(I8)
    B = rng.integers(-128, 128, (K, N)).astype(I8)
    C = np.zeros(M * N, I8)
    run(exo_style_gemm(M, N, K), f"matmul_{M}x{N}x{K}",
        {"scale": 1.0 / 256, "act": False, "A": A, "B": B, "C": C})
    np.testing.assert_array_equal(C.reshape(M, N), gemm_ref(A, B, 1.0 / 256))


# --------------------------------------------------------------------------
# the short (Autocomp) dialect
# --------------------------------------------------------------------------

SHORT_GEMM_64 = """
void solution(int8_t A[64][64], int8_t B[64][64], int8_t C[64][64]) {
  config_st(64);
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(64, 1.0f, 16, 0);
  config_ld(64, 1.0f, 16, 1);
  config_ld(0, 1.0f, 0, 2);
  uint32_t a_base = 0;
  uint32_t b_base = 4096;
  uint32_t res = 1 << 31;
  for (int_fast32_t i = 0; i < 4; i++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      mvin3(0, res + j * 16, 16, 16);
    }
    mvin((uint64_t) &A[16 * i][0], a_base + i * 64, 64, 16);
    for (int_fast32_t k = 0; k < 4; k++) {
      if (i == 0) {
        mvin2(&B[16 * k][0], b_base + ((k) * (1024))/16, 64, 16);
      }
      for (int_fast32_t j = 0; j < 4; j++) {
        preload(b_base + k * 64 + j * 16, (res + 16 * j) | 0x40000000, 16, 16, 16, 16);
        compute_preloaded(a_base + i * 64 + k * 16, ~((uint32_t)0), 16, 16, 16, 16);
      }
    }
    mvout(((uint64_t) &C[16 * i][0]), res, 64, 16);
  }
  fence();
}
"""

# the Gemmini software library's inner loop (GEMMINI.md section 5): k, j, i with
# GARBAGE preloads for i > 0, compute_accumulated, overwrite on the first k, and
# the accumulator written as I*J tiles of 16 rows.
SHORT_GEMM_SWLIB = """
void solution(int8_t A[64][64], int8_t B[64][64], int8_t C[64][64]) {
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(64, RELU, 0.125f);
  config_ld(64, 1.0f, 16, 0);
  config_ld(64, 1.0f, 1);
  uint32_t A_sp = 0;
  uint32_t B_sp = 16384 - 256;
  uint32_t C_acc = 0x80000000;
  uint32_t GARBAGE = ~((uint32_t)0);
  for (int_fast32_t k = 0; k < 4; k++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      for (int_fast32_t i = 0; i < 4; i++) {
        if (j == 0 && k % 4 == 0) {
          mvin(&A[16 * i][0], A_sp + i * 64, 64, 16);
        }
        if (i == 0) {
          mvin2(&B[16 * k][16 * j], B_sp - 16 * k - 64 * j, 16, 16);
        }
        uint32_t out = C_acc + (i * 4 + j) * 16;
        if (k != 0) {
          out = out | (1 << 30);
        }
        if (i == 0) {
          preload(B_sp - 16 * k - 64 * j, out, 16, 16, 16, 16);
          compute_preloaded(A_sp + i * 64 + k * 16, GARBAGE, 16, 16, 16, 16);
        } else {
          preload(GARBAGE, out, 16, 16, 16, 16);
          compute_accumulated(A_sp + i * 64 + k * 16, GARBAGE, 16, 16, 16, 16);
        }
      }
    }
  }
  for (int_fast32_t i = 0; i < 4; i++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      mvout(&C[16 * i][16 * j], C_acc + (i * 4 + j) * 16, 16, 16);
    }
  }
  fence();
}
"""


def test_short_dialect_gemm_64():
    rng = np.random.default_rng(103)
    A = rng.integers(-5, 5, (64, 64)).astype(I8)
    B = rng.integers(-5, 5, (64, 64)).astype(I8)
    C = np.zeros((64, 64), I8)
    run(SHORT_GEMM_64, "solution", {"A": A, "B": B, "C": C})
    want = gemm_ref(A, B)
    assert 0 < (np.abs(want) == 127).sum() < want.size // 2  # some saturation, not all
    np.testing.assert_array_equal(C, want)


def test_short_dialect_swlib_loop_with_garbage_preloads():
    rng = np.random.default_rng(104)
    A = rng.integers(-128, 128, (64, 64)).astype(I8)
    B = rng.integers(-128, 128, (64, 64)).astype(I8)
    C = np.zeros((64, 64), I8)
    res = run(SHORT_GEMM_SWLIB, "solution", {"A": A, "B": B, "C": C})
    np.testing.assert_array_equal(C, gemm_ref(A, B, 0.125, True))
    assert res.instructions["compute_accumulated"] == 48
    assert res.instructions["compute_preloaded"] == 16


def test_short_dialect_nd_arrays_conv1x1_bias_relu():
    """N-d array params (int8_t inp[2][4][4][16], int32_t bias[1][16]), bias broadcast with stride 0."""
    src = """
void solution(int8_t inp[2][4][4][16], int8_t w[16][16], int32_t bias[1][16], int8_t out[2][4][4][16]) {
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(16, RELU, 0.25);
  config_ld(16, 1.0f, 16, 0);
  config_ld(0, 1.0f, 16, 1);
  uint32_t acc = 1 << 31;
  mvin(&w[0][0], 1000, 16, 16);
  for (int_fast32_t n = 0; n < 2; n++) {
    mvin2(&bias[0][0], acc + 16 * n, 16, 16);
    mvin(&inp[n][0][0][0], 16 * n, 16, 16);
    preload(1000, (acc + 16 * n) | 0x40000000, 16, 16, 16, 16);
    compute_preloaded(16 * n, ~((uint32_t)0), 16, 16, 16, 16);
    mvout(&out[n][0][0][0], acc + 16 * n, 16, 16);
  }
  fence();
}
"""
    rng = np.random.default_rng(105)
    inp = rng.integers(-16, 16, (2, 4, 4, 16)).astype(I8)
    w = rng.integers(-8, 8, (16, 16)).astype(I8)
    bias = rng.integers(-200, 200, (1, 16)).astype(I32)
    out = np.zeros((2, 4, 4, 16), I8)
    run(src, "solution", {"inp": inp, "w": w, "bias": bias, "out": out})
    want = gemm_ref(inp.reshape(32, 16), w, 0.25, True, bias=bias)
    np.testing.assert_array_equal(out.reshape(32, 16), want)


def test_exo_dialect_static_helper_issuing_instructions():
    src = """
#include <include/gemmini.h>
// a helper with pointer parameters, called with &X[...] and pointer arithmetic
static void load_tile(const int8_t* src, uint32_t dst) {
  gemmini_extended_mvin(src, dst, 16, 16);
}

static uint32_t acc_row(int_fast32_t t) {
  return ((uint32_t)1 << 31) | (uint32_t)(16 * t);
}

void helper_mm(helper_mm_Context *ctxt, const int8_t* A, const int8_t* B, int32_t* C) {
  gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);
  gemmini_extended3_config_ld(16, 1.0f, 0, 0);
  gemmini_extended_config_st(64, 0, 1.0f);
  load_tile(&A[0], 0);
  load_tile(A + 256, 16);
  load_tile(&B[0], 32);
  gemmini_flush(0);
  for (int_fast32_t t = 0; t < 2; t++) {
    gemmini_extended_preload(32, acc_row(t), 16, 16, 16, 16);
    gemmini_extended_compute_preloaded(16 * t, ~((uint32_t)0), 16, 16, 16, 16);
    gemmini_extended_mvout(&C[t * 256], acc_row(t) | 0x20000000, 16, 16);
  }
  gemmini_fence();
}
"""
    rng = np.random.default_rng(106)
    A = rng.integers(-128, 128, (32, 16)).astype(I8)
    B = rng.integers(-128, 128, (16, 16)).astype(I8)
    C = np.zeros((32, 16), I32)
    run(src, "helper_mm", {"A": A, "B": B, "C": C})
    np.testing.assert_array_equal(C, A.astype(np.int64) @ B.astype(np.int64))


# --------------------------------------------------------------------------
# C semantics (observed through scalar stores into an int32 output array)
# --------------------------------------------------------------------------


def c_values(body: str, n: int, helpers: str = "", init=None) -> list[int]:
    src = f"{helpers}\nvoid f(int32_t* out) {{\n{body}\n}}\n"
    out = np.zeros(n, I32) if init is None else np.array(init, I32)
    run(src, "f", {"out": out})
    return out.tolist()


def check(body: str, expected: list[int], **kw):
    got = c_values(body, len(expected), **kw)
    bad = {i: (g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e}
    assert not bad, f"out[i]: (got, want) = {bad}\n{body}"


def test_c_unsigned_and_signed_wraparound_by_type():
    check("""
  uint32_t x = 0;
  x = x - 1;
  out[0] = (x == 4294967295);
  out[1] = x > 0;
  uint32_t y = 4294967295;
  y += 2;
  out[2] = (y == 1);
  int32_t s = 2147483647;
  s = s + 1;
  out[3] = (s < 0);
  out[4] = s;
  int64_t z = 2147483647;
  z = z + 1;
  out[5] = (z == 2147483648);
  out[6] = (z > 0);
  uint64_t u = 0;
  u = u - 1;
  out[7] = (u + 1 == 0);
  out[8] = (u > 4294967295);
  out[9] = (int32_t)(u >> 33);
  uint32_t m = 65536;
  m = m * 65536;
  out[10] = (m == 0);
  int32_t p = 65536;
  p *= 65536;
  out[11] = p;
  uint32_t big = 3000000000;
  out[12] = (int32_t)big;
  out[13] = (int8_t)300;
  int64_t w = 4294967296 * 3;
  out[14] = (int32_t)(w / 4294967296);
  uint32_t h = 0x80000000;
  out[15] = (int32_t)(h >> 31);
  int32_t neg = -8;
  out[16] = neg >> 1;
  uint32_t sh = 1 << 31;
  out[17] = (sh == 2147483648);
  out[18] = (~((uint32_t)0) == 4294967295);
  uint32_t g = ~((uint32_t)0);
  g++;
  out[19] = g;
""", [1, 1, 1, 1, -2**31, 1, 1, 1, 1, 2**31 - 1, 1, 0, 3000000000 - 2**32, 44, 3, 1, -4, 1, 1, 0])


def test_c_usual_arithmetic_conversions():
    check("""
  uint32_t a = 3;
  int32_t b = -1;
  out[0] = (a > b);
  out[1] = (b < 0);
  int32_t n = -1;
  uint32_t v = 2;
  out[2] = (int32_t)(n / v);
  out[3] = (((uint64_t)(int32_t)-1 >> 32) == 4294967295);
  int8_t c = 200;
  out[4] = c;
  uint32_t neg = -5;
  out[5] = (neg == 4294967291);
  int64_t l = -1;
  uint32_t t = 1;
  out[6] = (l < t);
  out[7] = (int32_t)((uint32_t)1 << 31 | 0x40000000);
""", [0, 1, 2147483647, 1, -56, 1, 1, -(2**30)])


def test_c_division_and_modulo_truncate_toward_zero():
    check("""
  out[0] = -7 / 2;
  out[1] = -7 % 2;
  out[2] = 7 / -2;
  out[3] = 7 % -2;
  out[4] = -7 / -2;
  out[5] = -7 % -2;
  int32_t a = -17;
  int32_t b = 5;
  out[6] = a / b;
  out[7] = a % b;
  a /= 4;
  out[8] = a;
  a %= 3;
  out[9] = a;
  out[10] = 17 / 5 * 5 + 17 % 5;
  uint32_t u = 4294967295;
  out[11] = (int32_t)(u / 2);
  int64_t big = -9000000000;
  out[12] = (int32_t)(big / 1000000);
  out[13] = (int32_t)(big % 7);
""", [-3, -1, -3, 1, 3, -1, -3, -2, -4, -1, 17, 2147483647, -9000, -(9000000000 % 7)])


def test_c_operator_precedence():
    check("""
  out[0] = 1 << 2 + 1;
  int32_t a = 5;
  int32_t b = 3;
  int32_t c = 3;
  out[1] = a & b == c;
  out[2] = (a & b) == c;
  out[3] = 2 + 3 * 4;
  out[4] = 10 - 4 - 3;
  out[5] = 100 / 10 / 5;
  out[6] = 1 | 2 ^ 3 & 6;
  out[7] = -2 * -3;
  out[8] = ~0 + 2;
  out[9] = !0 + !5;
  out[10] = 1 < 2 == 1;
  out[11] = 3 > 2 > 1;
  out[12] = 16 >> 2 >> 1;
  out[13] = 6 - 2 << 1;
  out[14] = a * (b + c) % 7;
  out[15] = a | b << 4;
  out[16] = 0x10 | 0x3 & 0x6;
""", [8, 1, 0, 14, 3, 2, 1, 6, 1, 1, 1, 0, 2, 8, 2, 53, 18])


def test_c_logical_operators_and_short_circuit():
    check("""
  int32_t i = 0;
  int32_t j = 3;
  out[0] = 1 + 2 == 3 && 4 - 4 == 0 || 0;
  out[1] = 0 && 1 || 1 && 1;
  out[2] = 1 || 0 && 0;
  out[3] = (i == 0 && j == 3);
  out[4] = (i != 0 || j < 3);
  if (i == 0 && (j == 3 || j == 4)) {
    out[5] = 1;
  }
  if (j == 0 || 10 / j == 3) {
    out[6] = 1;
  }
  if (i != 0 && 10 / i == 1) {
    out[7] = 1;
  } else {
    out[7] = 2;
  }
""", [1, 1, 1, 1, 0, 1, 1, 2])


def test_c_compound_assignments_and_increments():
    check("""
  int32_t x = 10;
  x += 5; out[0] = x;
  x -= 20; out[1] = x;
  x *= -3; out[2] = x;
  x /= 4; out[3] = x;
  x %= 2; out[4] = x;
  x <<= 4; out[5] = x;
  x >>= 2; out[6] = x;
  x |= 3; out[7] = x;
  x &= 5; out[8] = x;
  x ^= 12; out[9] = x;
  out[10] += 7;
  out[11] -= 2;
  int i = 0;
  i++;
  ++i;
  i--;
  out[12] = i;
  uint32_t u = 1;
  u <<= 31;
  u += u;
  out[13] = (u == 0);
  out[14] = out[10] * 2;
""", [15, -5, 15, 3, 1, 16, 4, 7, 5, 9, 107, 98, 1, 1, 214],
        init=[0] * 10 + [100, 100] + [0] * 3)


HELPERS = """
static int32_t add3(int32_t a, int32_t b) {
  return a + b + 3;
}

static void fill(int32_t* p, int32_t n, int32_t v) {
  for (int_fast32_t i = 0; i < n; i++) {
    p[i] = v + i;
  }
}

static int32_t sign(int32_t x) {
  if (x > 0) {
    return 1;
  } else if (x < 0) {
    return -1;
  }
  return 0;
}

static int32_t find(int32_t t) {
  for (int_fast32_t i = 0; i < 100; i++) {
    if (i * i >= t) {
      return i;
    }
  }
  return -1;
}
"""


def test_c_nested_ifs_loops_static_helpers_and_return():
    check("""
  out[0] = add3(4, 5);
  fill(&out[1], 3, 100);
  out[4] = sign(-5);
  out[5] = sign(0);
  out[6] = sign(7);
  int32_t cnt = 0;
  for (int_fast32_t i = 0; i < 4; i++) {
    for (int_fast32_t j = 0; j < 4; j++) {
      if (i == j) {
        cnt += 100;
      } else {
        if (i < j) {
          cnt += 1;
        } else {
          cnt += 10;
        }
      }
    }
  }
  out[7] = cnt;
  if (cnt > 0)
    out[8] = 1;
  else
    out[8] = 2;
  fill(out + 10, 2, 7);
  out[12] = find(50);
  out[13] = find(100000);
  out[9] = 5;
  return;
  out[9] = 6;
""", [12, 100, 101, 102, -1, 0, 1, 466, 1, 5, 7, 8, 8, -1], helpers=HELPERS)


def test_c_loop_counter_forms():
    check("""
  int32_t s = 0;
  for (int_fast32_t i = 0; i < 10; i += 3) {
    s += i;
  }
  out[0] = s;
  s = 0;
  for (int i = 10; i > 0; i--) {
    s += 1;
  }
  out[1] = s;
  int_fast32_t k;
  s = 0;
  for (k = 0; k < 5; ++k) {
    if (k % 2 == 0) {
      s += k;
    }
  }
  out[2] = s;
  out[3] = k;
  s = 0;
  for (int_fast32_t i = 0; i < 3; i++) {
    for (int_fast32_t i2 = i; i2 < 3; i2++) {
      s = s * 10 + i2;
    }
  }
  out[4] = s;
""", [18, 10, 6, 5, 12122])


def test_c_locals_shadow_and_block_scope():
    check("""
  int32_t x = 1;
  {
    int32_t x = 2;
    out[0] = x;
  }
  out[1] = x;
  for (int_fast32_t x = 5; x < 6; x++) {
    out[2] = x;
  }
  out[3] = x;
""", [2, 1, 5, 1])


def test_c_for_condition_is_reevaluated_when_the_body_writes_memory_it_reads():
    """C evaluates a for condition before every iteration: a bound read from an array that the
    body (directly, through an alias, or in a helper) changes must be re-read."""
    helpers = """
static void dec(int32_t* p) {
  p[0] -= 1;
}
"""
    check("""
  for (int_fast32_t i = 0; i < out[0]; i++) {
    out[0] = out[0] - 1;
    out[1] += 1;
  }
  int32_t* p = &out[2];
  for (int_fast32_t i = 0; i < out[2]; i++) {
    p[0] -= 1;
    out[3] += 1;
  }
  for (int_fast32_t i = 0; i < out[4]; i++) {
    dec(&out[4]);
    out[5] += 1;
  }
""", [5, 5, 5, 5, 5, 5], helpers=helpers, init=[10, 0, 10, 0, 10, 0])


def test_timing_off_gives_the_same_arrays():
    rng = np.random.default_rng(107)
    A = rng.integers(-128, 128, (64, 64)).astype(I8)
    B = rng.integers(-128, 128, (64, 64)).astype(I8)
    C1, C2 = np.zeros((64, 64), I8), np.zeros((64, 64), I8)
    r1 = run(SHORT_GEMM_SWLIB, "solution", {"A": A, "B": B, "C": C1}, timing=True)
    run(SHORT_GEMM_SWLIB, "solution", {"A": A, "B": B, "C": C2}, timing=False)
    np.testing.assert_array_equal(C1, C2)
    np.testing.assert_array_equal(C1, gemm_ref(A, B, 0.125, True))
    assert r1.cycles > 0
