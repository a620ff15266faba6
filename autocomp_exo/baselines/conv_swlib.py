"""Conv baseline: the software library's CPU-issued tiled convolution.

``tiled_conv_auto`` with the body of ``sp_tiled_conv`` that sits in a comment
upstream (the FSM ports it, GEMMINI_CONV.md section 4): the same tiles and
tile loops as `conv_fsm`, but per tile the CPU issues every command itself,
phase by phase: the bias (mvin3, broadcast, overwrite), the input (mvin,
zeros in pads), the weights (mvin2, at the top of the whole scratchpad), the
preload/compute pairs (loops och, krow, kcol, kch, b, orow, ocol), the
stores. Inputs start at scratchpad row 0 for every tile (no double
buffering: overlap between tiles comes only from the reservation station);
two counters alternate the accumulator half on tiles with a bias or an output.
"""
from __future__ import annotations

from gemmini_isa import GemminiConfig

from ..conv import ConvWorkload
from .conv_tiling import c_signature, tile_loops_c, tiling

ENTRY = "conv_swlib"

__all__ = ["c_source", "generate", "ENTRY"]


def _body(w: ConvWorkload, cfg: GemminiConfig) -> str:
    st, ind, p = w.stride, w.in_dim, w.out_dim
    c, k, r = w.in_channels, w.out_channels, w.kernel
    half_acc = cfg.acc_rows // 2
    return f"""\
// sp_tiled_conv, CPU-issued
const int orows = porows_;
const int ocols = pocols_;
const int irows_in = irows_ - upad - dpad;
const int icols_in = icols_ - lpad - rpad;
const int sa = batches_ * irows_ * icols_;
const int pix = batches_ * orows * ocols;
const int wblk = krows_ * kcols_ * kchs_;
const uint32_t B_start = {cfg.sp_rows} - ((pochs_ + 15) / 16) * wblk;
const uint32_t D_start = 0x80000000 + D_row;
const uint32_t C_start = 0x80000000 + C_row;
if (bias_ != NULL) {{
 D_row = (D_row + {half_acc}) % {cfg.acc_rows};
}}
if (out_ != NULL) {{
 C_row = (C_row + {half_acc}) % {cfg.acc_rows};
}}
if (bias_ != NULL) {{
 gemmini_extended4_config_ld(0, 1.0f, false, pix, 2);
 for (int b_ = 0; b_ < batches_; b_++) {{
  for (int orow = 0; orow < orows; orow++) {{
   for (int ocol = 0; ocol < ocols; ocol += 16) {{
    const int I = ocols - ocol > 16 ? 16 : ocols - ocol;
    for (int och = 0; och < pochs_; och += 16) {{
     const int J = pochs_ - och > 16 ? 16 : pochs_ - och;
     gemmini_extended_mvin3(bias_ + och, D_start + (och / 16) * pix + (b_ * orows + orow) * ocols + ocol, J, I);
    }}
   }}
  }}
 }}
}}
if (in_ != NULL) {{
 gemmini_extended4_config_ld({c}, 1.0f, false, sa, 0);
 const int ich_step = kchs_ < 64 ? kchs_ : 64;
 for (int b_ = 0; b_ < batches_; b_++) {{
  for (int irow_ = -upad; irow_ < irows_in + dpad; irow_++) {{
   int icol_ = -lpad;
   while (icol_ < icols_in + rpad) {{
    int I = icols_in - icol_;
    if (icol_ < 0) {{
     I = -icol_;
    }} else if (icol_ >= icols_in) {{
     I = icols_in + rpad - icol_;
    }}
    if (I > 16) {{
     I = 16;
    }}
    const bool pad = irow_ < 0 || irow_ >= irows_in || icol_ < 0 || icol_ >= icols_in;
    for (int ich = 0; ich < kchs_; ich += ich_step) {{
     const int K = kchs_ - ich > 64 ? 64 : kchs_ - ich;
     const int8_t* src = NULL;
     if (!pad) {{
      src = in_ + ((b_ * {ind} + irow_) * {ind} + icol_) * {c} + ich;
     }}
     gemmini_extended_mvin(src, (ich / 16) * sa + (b_ * irows_ + irow_ + upad) * icols_ + icol_ + lpad, K, I);
    }}
    icol_ += I;
   }}
  }}
 }}
}}
if (w_ != NULL) {{
 gemmini_extended4_config_ld({k}, 1.0f, false, wblk, 1);
 const int och_step = pochs_ < 64 ? pochs_ : 64;
 for (int och = 0; och < pochs_; och += och_step) {{
  const int J = pochs_ - och > 64 ? 64 : pochs_ - och;
  for (int krow_ = 0; krow_ < krows_; krow_++) {{
   for (int kcol_ = 0; kcol_ < kcols_; kcol_++) {{
    for (int kch_ = 0; kch_ < kchs_; kch_ += 16) {{
     const int K = kchs_ - kch_ > 16 ? 16 : kchs_ - kch_;
     gemmini_extended_mvin2(w_ + ((krow_ * {r} + kcol_) * {c} + kch_) * {k} + och,
                            B_start + (och / 16) * wblk + (krow_ * kcols_ + kcol_) * kchs_ + kch_, J, K);
    }}
   }}
  }}
 }}
}}
for (int och = 0; och < pochs_; och += 16) {{
 const int J = pochs_ - och > 16 ? 16 : pochs_ - och;
 for (int krow_ = 0; krow_ < krows_; krow_++) {{
  for (int kcol_ = 0; kcol_ < kcols_; kcol_++) {{
   for (int kch_ = 0; kch_ < kchs_; kch_ += 16) {{
    const int K = kchs_ - kch_ > 16 ? 16 : kchs_ - kch_;
    const uint32_t B_sp = B_start + (och / 16) * wblk + (krow_ * kcols_ + kcol_) * kchs_ + kch_;
    for (int b_ = 0; b_ < batches_; b_++) {{
     for (int orow = 0; orow < orows; orow++) {{
      for (int ocol = 0; ocol < ocols; ocol += 16) {{
       const int I = ocols - ocol > 16 ? 16 : ocols - ocol;
       const uint32_t A_sp = (kch_ / 16) * sa + (b_ * irows_ + orow * {st} + krow_) * icols_ + ocol * {st} + kcol_;
       const uint32_t C_sp = (C_start | 0x40000000) + (och / 16) * pix + (b_ * orows + orow) * ocols + ocol;
       if (b_ == 0 && orow == 0 && ocol == 0) {{
        gemmini_extended_preload(B_sp, C_sp, J, K, J, I);
        gemmini_extended_compute_preloaded(A_sp, ~((uint32_t)0), K, I, J, I);
       }} else {{
        gemmini_extended_preload(~((uint32_t)0), C_sp, J, K, J, I);
        gemmini_extended_compute_accumulated(A_sp, ~((uint32_t)0), K, I, J, I);
       }}
      }}
     }}
    }}
   }}
  }}
 }}
}}
if (out_ != NULL) {{
 for (int b_ = 0; b_ < batches_; b_++) {{
  for (int orow = 0; orow < orows; orow++) {{
   for (int ocol = 0; ocol < ocols; ocol += 16) {{
    const int I = ocols - ocol > 16 ? 16 : ocols - ocol;
    for (int och = 0; och < pochs_; och += 16) {{
     const int J = pochs_ - och > 16 ? 16 : pochs_ - och;
     gemmini_extended_mvout(out_ + ((b_ * {p} + orow) * {p} + ocol) * {k} + och,
                            C_start + (och / 16) * pix + (b_ * orows + orow) * ocols + ocol, J, I);
    }}
   }}
  }}
 }}
}}"""


def c_source(w: ConvWorkload, *, name: str = ENTRY, config: GemminiConfig | None = None) -> str:
    cfg = config or GemminiConfig()
    t = tiling(w, cfg)
    body = tile_loops_c(w, t, _body(w, cfg), indent="  ")
    return f"""\
// Gemmini software library, CPU-issued: tiled_conv_auto for {w.name}, WS.
// Tiles (batches, porows, pocols, pochs, krows, kcols, kchs) = {t.sizes}: {t.calls} tiles
// (a_reuse {int(t.a_reuse)}, b_reuse {int(t.b_reuse)}: the CPU path ignores the scratchpad ids).
#include <stdint.h>
#include <stdbool.h>
#include "include/gemmini.h"

{c_signature(name, w)} {{
  gemmini_extended_config_st({w.out_channels}, act, scale[0]);
  gemmini_extended_config_ex(WS, 0, 0, {w.stride}, 0, 0);
  uint32_t D_row = 0;
  uint32_t C_row = 0;
{body}
  gemmini_fence();
}}
"""


def generate(w: ConvWorkload, *, name: str = ENTRY) -> tuple[str, str]:
    """``(c_source, entry_name)``."""
    return c_source(w, name=name), name
