"""Baseline 1: the Gemmini software library's CPU-issued tiled matmul.

`c_source(M, N, K)` writes the Gemmini C that ``tiled_matmul_auto(M, N, K,
..., WS)`` of the Gemmini software library (``gemmini.h``) issues when the
hardware loop FSM is off: ``tiled_matmul_outer`` loops over tiles (i0, j0, k0)
and, for each tile, ``sp_tiled_matmul_ws`` issues one instruction at a time
from the CPU (GEMMINI.md section 5):

* A (I x K blocks of DIM x DIM) sits at scratchpad row 0 upward,
  ``A_sp = (i*K + k)*DIM``; B (K x J blocks) at the top of the scratchpad
  downward, ``B_sp = 16384 - K*J*DIM + (k*J + j)*DIM``; C (I x J blocks) at
  accumulator row 0, ``C_acc = (i*J + j)*DIM``.
* loops ``k, j, i``: mvin an A row-block of up to 4 blocks (16 x 64) when
  ``j == 0 && k % 4 == 0``; mvin2 a B row-block of up to 4 blocks when
  ``i == 0 && j % 4 == 0``; preload B (GARBAGE when ``i != 0``: keep the
  weights) with C accumulating except on the very first k of the whole K
  range (overwrite); ``compute_preloaded`` when ``i == 0`` else
  ``compute_accumulated``;
* after the tile's last k, and only on the last k0 tile, mvout C in
  row-blocks of up to 4 blocks (16 x 64).

The tile sizes come from `tile_sizes`, the library's greedy heuristic.

Generated signature (M, N, K replaced by numbers)::

    void swlib_gemm(const int8_t A[M][K], const int8_t B[K][N], int8_t C[M][N],
                    const float* scale, bool act)

or, with ``arrays="flat"``, ``const int8_t* A, const int8_t* B, int8_t* C``
(row-major) in place of the 2-D array parameters.

``C = clamp(round(scale * (A @ B)))``, then ReLU if ``act``: the same
semantics as the Exo GEMM procs (scale and ReLU applied by mvout through
``config_st``). Deviations from the library, none of which changes a result
or a cycle count in the timing model: the activation is given to
``config_st`` only (``config_ex`` gets 0, as in Exo's C; in WS the library's
``config_ex`` activation is unused), the mvout source address is the plain
accumulator address (the library passes it with the accumulate bit 30 set,
which reads ignore), and the bias path (D) is absent (no bias).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gemmini_isa import GemminiConfig

_DEFAULT = GemminiConfig()
DIM = _DEFAULT.dim
MAX_BLOCK_LEN = 4            # int8 columns per mvin / mvout: 4 * DIM
SP_ROWS = _DEFAULT.sp_rows   # the library's tile sizes are computed for the default chip
ACC_ROWS = _DEFAULT.acc_rows
ENTRY = "swlib_gemm"

__all__ = ["Tiling", "tile_sizes", "tiling", "c_source", "generate", "ENTRY", "ARRAY_STYLES"]


def _isqrt(n: int) -> int:
    r = int(n ** 0.5)
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


def tile_sizes(M: int, N: int, K: int, *, dim: int = DIM, sp_rows: int = SP_ROWS,
               acc_rows: int = ACC_ROWS) -> tuple[int, int, int]:
    """(tile_I, tile_J, tile_K) in DIM units, as ``tiled_matmul_auto`` picks them (WS).

    Double-buffered (WS): half the scratchpad and half the accumulator.
    Start with ``I = J = min(dim, sqrt(acc/2 / DIM))`` (= 5) and
    ``K = min(dim, spad/2 / (2*DIM) / 5)`` (= 51), then, round after round,
    grow J, then I, then K by one each while the tile's scratchpad rows
    ``(I*K + K*J)*DIM``, accumulator rows ``I*J*DIM`` fit the halves and the
    tile fits the (padded) matrix.
    """
    dI = -(-M // dim)
    dJ = -(-N // dim)
    dK = -(-K // dim)
    max_sp = sp_rows // 2
    max_acc = acc_rows // 2
    max_tile_ij = _isqrt(max_acc // dim)
    max_tile_k = max_sp // (2 * dim) // max_tile_ij
    ti = min(dI, max_tile_ij)
    tj = min(dJ, max_tile_ij)
    tk = min(dK, max_tile_k)

    def sp(i: int, j: int, k: int) -> int:
        return (i * k + k * j) * dim

    def acc(i: int, j: int) -> int:
        return i * j * dim

    while True:
        grew = False
        if sp(ti, tj + 1, tk) <= max_sp and acc(ti, tj + 1) <= max_acc and tj + 1 <= dJ:
            tj += 1
            grew = True
        if sp(ti + 1, tj, tk) <= max_sp and acc(ti + 1, tj) <= max_acc and ti + 1 <= dI:
            ti += 1
            grew = True
        if sp(ti, tj, tk + 1) <= max_sp and tk + 1 <= dK:
            tk += 1
            grew = True
        if not grew:
            break
    return ti, tj, tk


@dataclass(frozen=True)
class Tiling:
    """How a GEMM splits into library tiles (everything in DIM units)."""

    M: int
    N: int
    K: int
    tile_I: int
    tile_J: int
    tile_K: int
    I0: int       # number of tiles along each dimension
    J0: int
    K0: int
    last_I: int   # size of the last tile along each dimension
    last_J: int
    last_K: int


def tiling(M: int, N: int, K: int) -> Tiling:
    """The tile grid of ``tiled_matmul_outer`` for an M x N x K GEMM (multiples of DIM)."""
    for name, v in (("M", M), ("N", N), ("K", K)):
        if v <= 0 or v % DIM:
            raise ValueError(f"{name} = {v}: the library baselines support positive multiples of {DIM}")
    ti, tj, tk = tile_sizes(M, N, K)
    dI, dJ, dK = M // DIM, N // DIM, K // DIM

    def split(d: int, t: int) -> tuple[int, int]:
        n = -(-d // t)
        return n, d - (n - 1) * t

    I0, lI = split(dI, ti)
    J0, lJ = split(dJ, tj)
    K0, lK = split(dK, tk)
    return Tiling(M, N, K, ti, tj, tk, I0, J0, K0, lI, lJ, lK)


def _dims(workload_or_m: Any, N: int | None, K: int | None) -> tuple[int, int, int]:
    if N is None and K is None:
        w = workload_or_m
        return int(w.M), int(w.N), int(w.K)
    return int(workload_or_m), int(N), int(K)


def tile_size_decl(var: str, loop: str, count: int, full: int, last: int) -> str:
    """``int_fast32_t I = ...;`` for a tile loop counter (a ternary only when the last tile differs)."""
    if last == full:
        return f"int_fast32_t {var} = {full};"
    return f"int_fast32_t {var} = {loop} < {count - 1} ? {full} : {last};"


ARRAY_STYLES = ("2d", "flat")


def c_signature(name: str, M: int, N: int, K: int, arrays: str = "2d") -> str:
    """The entry's declaration: 2-D array parameters, or flat pointers (row-major)."""
    if arrays == "2d":
        mats = f"const int8_t A[{M}][{K}], const int8_t B[{K}][{N}], int8_t C[{M}][{N}]"
    elif arrays == "flat":
        mats = "const int8_t* A, const int8_t* B, int8_t* C"
    else:
        raise ValueError(f"arrays must be one of {ARRAY_STYLES}, got {arrays!r}")
    return f"void {name}({mats}, const float* scale, bool act)"


def elem_addr(arr: str, row: str, col: str, stride: int, arrays: str = "2d") -> str:
    """``&A[row][col]`` (2-D parameters) or ``&A[(row) * stride + col]`` (flat pointers)."""
    if arrays == "2d":
        return f"&{arr}[{row}][{col}]"
    return f"&{arr}[({row}) * {stride} + {col}]"


def c_source(M: Any, N: int | None = None, K: int | None = None, *, name: str = ENTRY,
             arrays: str = "2d") -> str:
    """The library's CPU-issued tiled matmul as Gemmini C (see the module doc).

    Takes ``(M, N, K)`` or one workload object with those attributes.
    ``arrays``: "2d" declares ``const int8_t A[M][K]`` etc. and addresses
    elements as ``&A[i][k]``; "flat" declares ``const int8_t* A`` etc.
    (row-major, like Exo's C and the library itself) and writes
    ``&A[(i) * K + k]``.
    """
    M, N, K = _dims(M, N, K)
    t = tiling(M, N, K)
    sig = c_signature(name, M, N, K, arrays)
    # DRAM addresses as sp_tiled_matmul_ws computes them: the tile's corner (set per
    # tile by tiled_matmul_outer) plus (row_block * stride + col_block) * DIM
    a_addr = elem_addr("A", f"(a_row + i) * {DIM}", f"(a_col + k) * {DIM}", K, arrays)
    b_addr = elem_addr("B", f"(b_row + k) * {DIM}", f"(b_col + j) * {DIM}", N, arrays)
    c_addr = elem_addr("C", f"(a_row + i) * {DIM}", f"(b_col + j) * {DIM}", N, arrays)
    mb = MAX_BLOCK_LEN
    body = f"""\
// Gemmini software library: tiled_matmul_auto({M}, {N}, {K}), WS, no bias, CPU-issued inner loop
// (tiled_matmul_outer + sp_tiled_matmul_ws). Tiles in DIM units: tile_I = {t.tile_I},
// tile_J = {t.tile_J}, tile_K = {t.tile_K}; grid {t.I0} x {t.J0} x {t.K0}; last tiles {t.last_I}, {t.last_J}, {t.last_K}.
#include <stdint.h>
#include <stdbool.h>
#include "include/gemmini.h"

{sig} {{
  // tiled_matmul_outer: configs once
  gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);
  gemmini_extended_config_st({N}, act, scale[0]);
  gemmini_extended4_config_ld({K}, 1.0f, false, {DIM}, 0);
  gemmini_extended4_config_ld({N}, 1.0f, false, {DIM}, 1);
  gemmini_extended4_config_ld(0, 1.0f, false, {DIM}, 2);
  int_fast32_t pad_I = 0;
  int_fast32_t pad_J = 0;
  int_fast32_t pad_K = 0;
  for (int_fast32_t i0 = 0; i0 < {t.I0}; i0++) {{
    for (int_fast32_t j0 = 0; j0 < {t.J0}; j0++) {{
      for (int_fast32_t k0 = 0; k0 < {t.K0}; k0++) {{
        {tile_size_decl("I", "i0", t.I0, t.tile_I, t.last_I)}
        {tile_size_decl("J", "j0", t.J0, t.tile_J, t.last_J)}
        {tile_size_decl("K", "k0", t.K0, t.tile_K, t.last_K)}
        int_fast32_t a_row = i0 * {t.tile_I};
        int_fast32_t a_col = k0 * {t.tile_K};
        int_fast32_t b_row = k0 * {t.tile_K};
        int_fast32_t b_col = j0 * {t.tile_J};
        // sp_tiled_matmul_ws: A from scratchpad row 0 up, B from the top down, C in the accumulator
        uint32_t A_sp_addr_start = 0;
        uint32_t B_sp_addr_start = {SP_ROWS} - K * J * {DIM};
        uint32_t C_sp_addr_start = 1 << 31;
        int_fast32_t A_blocks = K <= {mb} ? K : {mb};
        int_fast32_t B_blocks = J <= {mb} ? J : {mb};
        int_fast32_t C_blocks = J <= {mb} ? J : {mb};
        for (int_fast32_t k = 0; k < K; k++) {{
          for (int_fast32_t j = 0; j < J; j++) {{
            for (int_fast32_t i = 0; i < I; i++) {{
              uint32_t A_sp_addr = A_sp_addr_start + (i * K + k) * {DIM};
              uint32_t B_sp_addr = B_sp_addr_start + (k * J + j) * {DIM};
              uint32_t C_sp_addr = C_sp_addr_start + (i * J + j) * {DIM};
              if (j == 0 && k % A_blocks == 0) {{
                int_fast32_t a_blocks = k + A_blocks <= K ? A_blocks : K - k;
                int_fast32_t a_cols = a_blocks * {DIM} - (k + a_blocks >= K ? pad_K : 0);
                int_fast32_t a_rows = {DIM} - (i == I - 1 ? pad_I : 0);
                gemmini_extended_mvin({a_addr}, A_sp_addr, a_cols, a_rows);
              }}
              if (i == 0 && j % B_blocks == 0) {{
                int_fast32_t b_blocks = j + B_blocks <= J ? B_blocks : J - j;
                int_fast32_t b_cols = b_blocks * {DIM} - (j + b_blocks >= J ? pad_J : 0);
                int_fast32_t b_rows = {DIM} - (k == K - 1 ? pad_K : 0);
                gemmini_extended_mvin2({b_addr}, B_sp_addr, b_cols, b_rows);
              }}
              uint32_t pre_sp_addr = i == 0 ? B_sp_addr : ~((uint32_t)0);
              // accumulate, except on the very first k of the whole K range (no bias: overwrite)
              uint32_t out_sp_addr = C_sp_addr | 0x40000000;
              if (k0 == 0 && k == 0) {{
                out_sp_addr = C_sp_addr;
              }}
              int_fast32_t A_cols = {DIM} - (k == K - 1 ? pad_K : 0);
              int_fast32_t A_rows = {DIM} - (i == I - 1 ? pad_I : 0);
              int_fast32_t B_cols = {DIM} - (j == J - 1 ? pad_J : 0);
              int_fast32_t B_rows = {DIM} - (k == K - 1 ? pad_K : 0);
              int_fast32_t C_cols = {DIM} - (j == J - 1 ? pad_J : 0);
              int_fast32_t C_rows = {DIM} - (i == I - 1 ? pad_I : 0);
              gemmini_extended_preload(pre_sp_addr, out_sp_addr, B_cols, B_rows, C_cols, C_rows);
              if (i == 0) {{
                gemmini_extended_compute_preloaded(A_sp_addr, ~((uint32_t)0), A_cols, A_rows, {DIM}, {DIM});
              }} else {{
                gemmini_extended_compute_accumulated(A_sp_addr, ~((uint32_t)0), A_cols, A_rows, {DIM}, {DIM});
              }}
            }}
          }}
        }}
        // move-out C after the tile's last k, on the last k0 tile only
        if (k0 == {t.K0 - 1}) {{
          for (int_fast32_t i = 0; i < I; i++) {{
            for (int_fast32_t j = 0; j < J; j += C_blocks) {{
              int_fast32_t c_blocks = j + C_blocks <= J ? C_blocks : J - j;
              int_fast32_t c_cols = c_blocks * {DIM} - (j + c_blocks >= J ? pad_J : 0);
              int_fast32_t c_rows = {DIM} - (i == I - 1 ? pad_I : 0);
              gemmini_extended_mvout(((uint64_t) {c_addr}), C_sp_addr_start + (i * J + j) * {DIM}, c_cols, c_rows);
            }}
          }}
        }}
      }}
    }}
  }}
  gemmini_fence();
}}
"""
    return body


def generate(workload: Any, *, name: str = ENTRY, arrays: str = "2d") -> tuple[str, str]:
    """``(c_source, entry_name)`` for a workload (anything with M, N, K)."""
    return c_source(workload, name=name, arrays=arrays), name
