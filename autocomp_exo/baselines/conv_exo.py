"""Conv baseline: Exo's unoptimized Gemmini mapping of its conv app, as C text.

What ``apps/gemmini/src/exo/conv.py``'s shared helpers (split_fission_dim,
replace_div_part / replace_mod_part, set_gemm_memories, inline_*_part) make
of the algorithm, written in the short dialect the Autocomp ``exo_baseline``
kernels use (GEMMINI_CONV.md sections 2 and 5): configs at the top (the input
stream's block stride is re-set before the tail tile); per (b, orow, tile of
n <= 16 output columns: full tiles, then the guarded tail): broadcast the bias
into the accumulator, then for each (krow, kcol) load the in_ch x out_ch
weight slab (mvin2, 64 output channels at a time) and the input strip (mvin3,
n pixels by 64 channels, block stride n) and run every 16x16 ``matmul_acc_i8``
(preload of fresh weights accumulating onto the bias, compute_preloaded), then
store. Plain row numbers: scratchpad from row 0, the accumulator at
``(1 << 31) + row``; weights are reloaded for every output tile.

This is the C the search would start from; as Exo schedule data it is the
next phase's work (the search, the moves and the agents work on procs).
"""
from __future__ import annotations

from gemmini_isa import GemminiConfig

from ..conv import ConvWorkload
from .conv_tiling import c_signature

ENTRY = "conv_exo_unopt"

__all__ = ["c_source", "generate", "configs", "ENTRY"]


def _tile(w: ConvWorkload, ocol0: str, n: int) -> list[str]:
    """One output tile of ``n`` pixels at column ``ocol0`` (a C expression)."""
    c, k, s = w.in_channels, w.out_channels, w.stride
    cb, kb = c // 16, k // 16
    i_base = c * k // 16          # the input strip after the weight slab
    lines = [f"config_ld({c * s}, 1.0f, {n}, 2);"]
    lines += [
        f"for (int och_o = 0; och_o < {kb}; och_o++) {{",
        f"  mvin(&bias[0][16 * och_o], (1 << 31) + 16 * och_o, 16, {n});",
        "}",
        f"for (int krow = 0; krow < {w.kernel}; krow++) {{",
        f" for (int kcol = 0; kcol < {w.kernel}; kcol++) {{",
        f"  for (int kch_o = 0; kch_o < {cb}; kch_o++) {{",
        f"   for (int och_o = 0; och_o < {kb}; och_o += 4) {{",
        f"    mvin2(&weights[krow][kcol][16 * kch_o][16 * och_o], 16 * ({kb} * kch_o + och_o), "
        f"{k} - 16 * och_o < 64 ? {k} - 16 * och_o : 64, 16);",
        "   }",
        "  }",
        f"  for (int kch_o = 0; kch_o < {cb}; kch_o += 4) {{",
        f"   mvin3(&inp[b][{s} * orow + krow][{s} * ({ocol0}) + kcol][16 * kch_o], {i_base} + {n} * kch_o, "
        f"{c} - 16 * kch_o < 64 ? {c} - 16 * kch_o : 64, {n});",
        "  }",
        f"  for (int kch_o = 0; kch_o < {cb}; kch_o++) {{",
        f"   for (int och_o = 0; och_o < {kb}; och_o++) {{",
        f"    preload(16 * ({kb} * kch_o + och_o), (1 << 31) + (1 << 30) + 16 * och_o, 16, 16, 16, {n});",
        f"    compute_preloaded({i_base} + {n} * kch_o, ~0, 16, {n}, 16, 16);",
        "   }",
        "  }",
        " }",
        "}",
        f"for (int och_o = 0; och_o < {kb}; och_o++) {{",
        f"  mvout(&output[b][orow][{ocol0}][16 * och_o], (1 << 31) + 16 * och_o, 16, {n});",
        "}",
    ]
    return lines


def configs(w: ConvWorkload) -> list[str]:
    """The configs Exo hoists to the top: store, execute, weight (id 1) and bias (id 0, broadcast) streams."""
    return [
        f"config_st({w.out_channels}, act, scale[0]);",
        "config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);",
        f"config_ld({w.out_channels}, 1.0f, 16, 1);",
        "config_ld(0, 1.0f, 16, 0);",
    ]


def c_source(w: ConvWorkload, *, name: str = ENTRY) -> str:
    cfg = GemminiConfig()
    if w.in_channels * w.out_channels // 16 + w.in_channels > cfg.sp_rows or w.out_channels > cfg.acc_rows:
        raise ValueError(f"{w.name}: Exo's mapping needs {w.in_channels * w.out_channels // 16 + w.in_channels} "
                         f"scratchpad rows and {w.out_channels} accumulator rows; the machine has "
                         f"{cfg.sp_rows} and {cfg.acc_rows}")
    p = w.out_dim
    full, tail = p // 16, p % 16
    body = configs(w) + [
        f"for (int b = 0; b < {w.batch}; b++) {{",
        f" for (int orow = 0; orow < {p}; orow++) {{",
    ]
    if full:
        body += [f"  for (int ocol_o = 0; ocol_o < {full}; ocol_o++) {{"]
        body += ["   " + ln for ln in _tile(w, "16 * ocol_o", 16)]
        body += ["  }"]
    if tail:
        body += ["  " + ln for ln in _tile(w, str(16 * full), tail)]
    body += [" }", "}", "fence();"]
    text = "\n".join("  " + ln for ln in body)
    return f"""\
// Exo's unoptimized Gemmini mapping of its conv app for {w.name} (short dialect)
#include <stdint.h>
#include <stdbool.h>

{c_signature(name, w)} {{
{text}
}}
"""


def generate(w: ConvWorkload, *, name: str = ENTRY) -> tuple[str, str]:
    """``(c_source, entry_name)``."""
    return c_source(w, name=name), name
