"""Conv baseline: the hardware conv FSM as the software library drives it.

``tiled_conv_auto(..., WEIGHT_STATIONARY)`` with the upstream header: the
library's tile heuristic (`conv_tiling.tile_sizes`), ``config_st`` and
``config_ex`` once, then one ``gemmini_loop_conv_ws`` per tile of
``tiled_conv``'s loops (``sp_tiled_conv`` issues exactly one), then a fence.
The simulator runs each call by issuing real instructions (sim/loop_conv_ws.py).
"""
from __future__ import annotations

from ..conv import ConvWorkload
from .conv_tiling import c_signature, tile_loops_c, tiling

ENTRY = "conv_fsm"

__all__ = ["c_source", "generate", "ENTRY"]


def _call(w: ConvWorkload) -> str:
    """The 54 arguments in gemmini.h's order (sp_tiled_conv's call; no pooling: pool 1/1/0)."""
    n, i, p, c, k, r = w.batch, w.in_dim, w.out_dim, w.in_channels, w.out_channels, w.kernel
    args = [
        n, i, i, c, k, p, p, p, p,                          # layer sizes, pool_out = out
        w.stride, 0, r, 1, 1, 1, 0,                          # stride, padding, kernel, dilation, pool
        "batches_", "porows_", "pocols_", "pochs_", "krows_", "kcols_", "kchs_",
        "lpad", "rpad", "upad", "dpad", 0, 0, 0, 0,          # window pads, pool pads
        "porows_", "pocols_",                                # orows, ocols
        "w_", "out_", "bias_", "in_",
        "false", "true", "false", "false", "false", "act",   # no_bias, no_pool, ds, wrot180, in_dil, act
        "false", "false", "false", "false",                  # the four transposes
        1, c, k, k, "false", "a_spad_id", "b_spad_id",       # max_pixels_per_row, strides, dw, spad ids
    ]
    assert len(args) == 54
    return "gemmini_loop_conv_ws(" + ", ".join(str(a) for a in args) + ");"


def c_source(w: ConvWorkload, *, name: str = ENTRY) -> str:
    t = tiling(w)
    body = tile_loops_c(w, t, _call(w), indent="  ")
    return f"""\
// Gemmini software library with the conv FSM: tiled_conv_auto for {w.name}, WS.
// Tiles (batches, porows, pocols, pochs, krows, kcols, kchs) = {t.sizes}: {t.calls} FSM calls
// (a_reuse {int(t.a_reuse)}, b_reuse {int(t.b_reuse)}).
#include <stdint.h>
#include <stdbool.h>
#include "include/gemmini.h"

{c_signature(name, w)} {{
  gemmini_extended_config_st({w.out_channels}, act, scale[0]);
  gemmini_extended_config_ex(WS, 0, 0, {w.stride}, 0, 0);
{body}
  gemmini_fence();
}}
"""


def generate(w: ConvWorkload, *, name: str = ENTRY) -> tuple[str, str]:
    """``(c_source, entry_name)``."""
    return c_source(w, name=name), name
