"""Conv baseline: the Exo paper's hand-optimized conv schedule, as C text.

What the "Real optimization" steps of Exo's ``apps/gemmini/src/exo/conv.py``
make of `conv_exo`'s mapping (GEMMINI_CONV.md section 5), in the same short
dialect:

- the weight buffer is hoisted to the whole filter (``conv_3``, ``conv_17``)
  or to a 64-output-channel slice whose loop is outermost (``conv_30``), and
  its loads run once per slice instead of once per output tile;
- the output-row loop is split into blocks (56: 7 rows, 28: 14, 14: 7) and
  the input buffer gets a dimension indexed by ``krow + orow_i``: inside a
  block the input rows stay resident, and after the block's first row only
  the new bottom row is fetched (Exo's ``orow_i == 0 or krow == R - 1`` guard);
- the per-och_o statements are unrolled;
- the input buffer starts at a scratchpad bank of its own when it fits there
  (plain row numbers as in `conv_exo`, placed as an expert would).

Loops: och slice, b, row block, output-column tile (full tiles, then the
tail), row in the block. Stride 1 only (the rows a block shares are
consecutive): other strides raise ValueError.
"""
from __future__ import annotations

from gemmini_isa import GemminiConfig

from ..conv import ConvWorkload
from .conv_exo import configs
from .conv_tiling import c_signature

ENTRY = "conv_exo_opt"

__all__ = ["c_source", "generate", "plan", "ENTRY", "ROW_BLOCKS"]

#: output rows -> the row block of the Exo paper's schedules
ROW_BLOCKS = {56: 7, 28: 14, 14: 7}


def _rows(w: ConvWorkload, ks: int, rb: int) -> int:
    r, cb = w.kernel, w.in_channels // 16
    return r * r * w.in_channels * ks // 16 + (rb + r - 1) * r * cb * 16


def _input_base(w: ConvWorkload, ks: int, rb: int, config: GemminiConfig | None = None) -> int:
    """First scratchpad row of the input buffer: after the weights, from the next bank
    boundary when it fits there (the array then reads A and B from different banks)."""
    cfg = config or GemminiConfig()
    wrows = w.kernel ** 2 * w.in_channels * ks // 16
    bank = -(-wrows // cfg.sp_bank_rows) * cfg.sp_bank_rows
    return bank if bank + _rows(w, ks, rb) - wrows <= cfg.sp_rows else wrows


def plan(w: ConvWorkload, config: GemminiConfig | None = None) -> tuple[int, int]:
    """(KS, RB): output channels resident per slice and output rows per block."""
    if w.stride != 1:
        raise ValueError(f"{w.name}: the hand-optimized conv schedule is for stride 1 (got {w.stride})")
    cfg = config or GemminiConfig()
    k, p = w.out_channels, w.out_dim
    blocks = [ROW_BLOCKS[p]] if p in ROW_BLOCKS else []
    blocks += [d for d in range(min(p, 14), 0, -1) if p % d == 0]
    slices = [k] + [s for s in range(k - k % 64, 0, -64) if s and k % s == 0]
    for ks in slices:
        for rb in blocks:
            if ks <= cfg.acc_rows and _rows(w, ks, rb) <= cfg.sp_rows:
                return ks, rb
    raise ValueError(f"{w.name}: no weight slice and row block fit the scratchpad")


def _tile(w: ConvWorkload, ks: int, rb: int, ocol0: str, n: int) -> list[str]:
    c, r = w.in_channels, w.kernel
    cb, kb = c // 16, ks // 16
    ib = _input_base(w, ks, rb)
    strip = cb * 16                                 # rows of one (row slot, kcol) strip

    def unrolled(fmt: str) -> list[str]:
        return [fmt.format(o=o) for o in range(kb)]

    lines = [f"config_ld({c}, 1.0f, {n}, 2);", f"for (int orow_i = 0; orow_i < {rb}; orow_i++) {{",
             f" const int orow = {rb} * orow_b + orow_i;"]
    lines += [" " + s for s in unrolled(f"mvin(&bias[0][och_s + {{o}} * 16], (1 << 31) + {{o}} * 16, 16, {n});")]
    lines += [
        f" for (int krow = 0; krow < {r}; krow++) {{",
        f"  if (orow_i == 0 || krow == {r - 1}) {{",
        f"   for (int kcol = 0; kcol < {r}; kcol++) {{",
        f"    for (int kch_o = 0; kch_o < {cb}; kch_o += 4) {{",
        f"     mvin3(&inp[b][orow + krow][{ocol0} + kcol][16 * kch_o], "
        f"{ib} + ((orow_i + krow) * {r} + kcol) * {strip} + {n} * kch_o, "
        f"{c} - 16 * kch_o < 64 ? {c} - 16 * kch_o : 64, {n});",
        "    }",
        "   }",
        "  }",
        " }",
        f" for (int kk = 0; kk < {r * r}; kk++) {{",       # krow and kcol fused
        f"  const int krow = kk / {r};",
        f"  const int kcol = kk % {r};",
        f"  for (int kch_o = 0; kch_o < {cb}; kch_o++) {{",
        f"   const uint32_t a = {ib} + ((orow_i + krow) * {r} + kcol) * {strip} + {n} * kch_o;",
        f"   const uint32_t wt = 16 * ((kk * {cb} + kch_o) * {kb});",
    ]
    for o in range(kb):
        lines += [f"   preload(wt + {16 * o}, (1 << 31) + (1 << 30) + {16 * o}, 16, 16, 16, {n});",
                  f"   compute_preloaded(a, ~0, 16, {n}, 16, 16);"]
    lines += ["  }", " }"]
    lines += [" " + s for s in unrolled(
        f"mvout(&output[b][orow][{ocol0}][och_s + {{o}} * 16], (1 << 31) + {{o}} * 16, 16, {n});")]
    lines += ["}"]
    return lines


def c_source(w: ConvWorkload, *, name: str = ENTRY) -> str:
    ks, rb = plan(w)
    c, k, r, p = w.in_channels, w.out_channels, w.kernel, w.out_dim
    cb, kb = c // 16, ks // 16
    full, tail = p // 16, p % 16
    body = configs(w) + [
        f"for (int och_s = 0; och_s < {k}; och_s += {ks}) {{",
        # the resident weights of the slice: once (Exo's guard on the first spatial iteration)
        f" for (int kk = 0; kk < {r * r}; kk++) {{",
        f"  for (int kch_o = 0; kch_o < {cb}; kch_o++) {{",
        f"   for (int och_o = 0; och_o < {kb}; och_o += 4) {{",
        f"    mvin2(&weights[kk / {r}][kk % {r}][16 * kch_o][och_s + 16 * och_o], "
        f"16 * ((kk * {cb} + kch_o) * {kb} + och_o), {ks} - 16 * och_o < 64 ? {ks} - 16 * och_o : 64, 16);",
        "   }",
        "  }",
        " }",
        f" for (int b = 0; b < {w.batch}; b++) {{",
        f"  for (int orow_b = 0; orow_b < {p // rb}; orow_b++) {{",
    ]
    if full:
        body += [f"   for (int ocol_o = 0; ocol_o < {full}; ocol_o++) {{"]
        body += ["    " + ln for ln in _tile(w, ks, rb, "16 * ocol_o", 16)]
        body += ["   }"]
    if tail:
        body += ["   " + ln for ln in _tile(w, ks, rb, str(16 * full), tail)]
    body += ["  }", " }", "}", "fence();"]
    text = "\n".join("  " + ln for ln in body)
    return f"""\
// The Exo paper's hand-optimized conv schedule for {w.name}: {ks} output channels resident,
// blocks of {rb} output rows (short dialect)
#include <stdint.h>
#include <stdbool.h>

{c_signature(name, w)} {{
{text}
}}
"""


def generate(w: ConvWorkload, *, name: str = ENTRY) -> tuple[str, str]:
    """``(c_source, entry_name)``."""
    return c_source(w, name=name), name
