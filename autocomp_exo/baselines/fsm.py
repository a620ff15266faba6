"""Baseline 4: the hardware loop FSM (``gemmini_loop_ws``), as the library drives it.

With the FSM on, ``tiled_matmul_outer`` of the Gemmini software library
issues the same configs as the CPU-issued version, then one
``gemmini_loop_ws`` per tile of the same grid (`swlib.tiling`: tiles that fit
half the scratchpad and half the accumulator, so that the FSM can ping-pong
halves between consecutive calls), then ``gemmini_fence()``. Per tile:

* ``A`` = ``&A[i0*tile_I*DIM][k0*tile_K*DIM]``, ``B`` likewise, ``D = NULL``
  (no bias), ``C`` = the tile's corner of C on the last k0 tile and
  ``NULL`` otherwise (keep the partial sums in the accumulator);
* strides in elements: A_stride = K, B_stride = N, D_stride = 0, C_stride = N;
* ``ex_accumulate`` = ``k0 != 0`` (add to the partial sums of earlier k0 tiles);
* ``act`` for the stores, A through load stream 0, B through stream 1, no
  transposes, int8 C (``full_C`` = 0), no residual add.

Generated signature (M, N, K replaced by numbers)::

    void fsm_gemm(const int8_t A[M][K], const int8_t B[K][N], int8_t C[M][N],
                  const float* scale, bool act)

or flat ``const int8_t*`` pointers with ``arrays="flat"``.
"""
from __future__ import annotations

from typing import Any

from .swlib import DIM, _dims, c_signature, elem_addr, tile_size_decl, tiling

ENTRY = "fsm_gemm"

__all__ = ["c_source", "generate", "ENTRY"]


def c_source(M: Any, N: int | None = None, K: int | None = None, *, name: str = ENTRY,
             arrays: str = "2d") -> str:
    """One ``gemmini_loop_ws`` per library tile (see the module doc).

    ``arrays``: "2d" (``const int8_t A[M][K]``, ``&A[i][k]``) or "flat"
    (``const int8_t* A``, ``&A[(i) * K + k]``), as in `swlib.c_source`.
    """
    M, N, K = _dims(M, N, K)
    t = tiling(M, N, K)
    sig = c_signature(name, M, N, K, arrays)
    a_addr = elem_addr("A", f"i0 * {t.tile_I * DIM}", f"k0 * {t.tile_K * DIM}", K, arrays)
    b_addr = elem_addr("B", f"k0 * {t.tile_K * DIM}", f"j0 * {t.tile_J * DIM}", N, arrays)

    def call(c_arg: str) -> str:
        return (
            "gemmini_loop_ws(I, J, K, 0, 0, 0, "
            f"{a_addr}, {b_addr}, "
            f"NULL, {c_arg}, {K}, {N}, 0, {N}, "
            "false, false, false, false, k0 != 0, act, 0, 1, false);"
        )

    c_tile = elem_addr("C", f"i0 * {t.tile_I * DIM}", f"j0 * {t.tile_J * DIM}", N, arrays)
    lines = [
        f"// Gemmini software library with the loop FSM: tiled_matmul_auto({M}, {N}, {K}), WS, no bias",
        f"// tiles in DIM units: tile_I = {t.tile_I}, tile_J = {t.tile_J}, tile_K = {t.tile_K};"
        f" grid {t.I0} x {t.J0} x {t.K0}; last tiles {t.last_I}, {t.last_J}, {t.last_K}",
        "#include <stdint.h>",
        "#include <stdbool.h>",
        '#include "include/gemmini.h"',
        "",
        sig + " {",
        "  gemmini_extended_config_ex(WS, 0, 0, 1, 0, 0);",
        f"  gemmini_extended_config_st({N}, act, scale[0]);",
        f"  gemmini_extended4_config_ld({K}, 1.0f, false, {DIM}, 0);",
        f"  gemmini_extended4_config_ld({N}, 1.0f, false, {DIM}, 1);",
        f"  gemmini_extended4_config_ld(0, 1.0f, false, {DIM}, 2);",
        f"  for (int_fast32_t i0 = 0; i0 < {t.I0}; i0++) {{",
        f"    for (int_fast32_t j0 = 0; j0 < {t.J0}; j0++) {{",
        f"      for (int_fast32_t k0 = 0; k0 < {t.K0}; k0++) {{",
        "        " + tile_size_decl("I", "i0", t.I0, t.tile_I, t.last_I),
        "        " + tile_size_decl("J", "j0", t.J0, t.tile_J, t.last_J),
        "        " + tile_size_decl("K", "k0", t.K0, t.tile_K, t.last_K),
    ]
    if t.K0 == 1:
        lines.append("        " + call(c_tile))
    else:
        lines += [
            f"        if (k0 == {t.K0 - 1}) {{",
            "          " + call(c_tile),
            "        } else {",
            "          " + call("NULL"),
            "        }",
        ]
    lines += [
        "      }",
        "    }",
        "  }",
        "  gemmini_fence();",
        "}",
        "",
    ]
    return "\n".join(lines)


def generate(workload: Any, *, name: str = ENTRY, arrays: str = "2d") -> tuple[str, str]:
    """``(c_source, entry_name)`` for a workload (anything with M, N, K)."""
    return c_source(workload, name=name, arrays=arrays), name
