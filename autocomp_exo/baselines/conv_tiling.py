"""The Gemmini software library's conv tiling (GEMMINI_CONV.md section 4).

``tile_sizes`` is ``tiled_conv_stride_auto``'s heuristic (shrink the largest
entry until a tile fits half the scratchpad and half the accumulator, then
grow pocols, then every entry); ``tile_loops_c`` writes ``tiled_conv``'s tile
loops as C around a per-tile body (an FSM call or the CPU-issued
``sp_tiled_conv``), with the edge clipping, the pads of the input window, the
bias/output pointers of the first/last reduction tile and the a_reuse /
b_reuse pinning. Only what the conv workloads use: no pooling, no dilation, no
transposes, padding 0 (the input is pre-padded).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gemmini_isa import GemminiConfig

from ..conv import ConvWorkload

__all__ = ["tile_sizes", "Tiling", "tiling", "tile_loops_c", "c_signature", "ARG_NAMES"]

DIM = 16
ARG_NAMES = ("batches", "porows", "pocols", "pochs", "krows", "kcols", "kchs")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _rows(args: list, stride: int) -> tuple[int, int, int]:
    """(A, B, C) rows of a candidate: input and weight scratchpad rows, accumulator rows."""
    batches, porows, pocols, pochs, krows, kcols, kchs = args
    orows, ocols = porows, pocols                     # no pooling
    irows, icols = orows * stride + krows - 1, ocols * stride + kcols - 1
    a = _ceil(kchs, DIM) * batches * irows * icols
    b = _ceil(pochs, DIM) * krows * kcols * kchs
    c = _ceil(pochs, DIM) * batches * orows * ocols
    return a, b, c


def tile_sizes(w: ConvWorkload, config: Optional[GemminiConfig] = None) -> tuple[int, ...]:
    """``tiled_conv_stride_auto``'s (batches, porows, pocols, pochs, krows, kcols, kchs)."""
    cfg = config or GemminiConfig()
    max_sp, max_acc = cfg.sp_rows // 2, cfg.acc_rows // 2
    top = [w.batch, w.out_dim, w.out_dim, w.out_channels, w.kernel, w.kernel, w.in_channels]
    args = list(top)

    def fits(c: list) -> bool:
        a, b, acc = _rows(c, w.stride)
        return a + b <= max_sp and acc <= max_acc

    while not fits(args):
        idx, best = -1, -1
        for i, v in enumerate(args):
            # pocols stays at >= DIM while porows can still shrink (keeps the array's rows busy)
            if not (i == 2 and v <= DIM and args[1] > 1) and v > best:
                idx, best = i, v
        if idx in (3, 6):
            args[idx] = args[idx] // DIM * DIM if args[idx] % DIM else args[idx] - DIM
            args[idx] = max(args[idx], 1)
        else:
            args[idx] -= 1
    while True:          # grow pocols first
        c = list(args)
        c[2] += 1
        if c[2] > top[2] or not fits(c):
            break
        args = c
    grew = True
    while grew:          # then every entry, one at a time
        grew = False
        for i in range(7):
            c = list(args)
            c[i] += 1
            if c[i] <= top[i] and fits(c):
                args, grew = c, True
    return tuple(args)


@dataclass(frozen=True)
class Tiling:
    """A conv's library tiles: the sizes, the counts along each loop and the reuse flags."""

    sizes: tuple
    counts: tuple      # tiles along b, porow, pocol, poch, krow, kcol, kch
    a_reuse: bool
    b_reuse: bool

    @property
    def calls(self) -> int:
        n = 1
        for c in self.counts:
            n *= c
        return n


def tiling(w: ConvWorkload, config: Optional[GemminiConfig] = None) -> Tiling:
    t = tile_sizes(w, config)
    tops = (w.batch, w.out_dim, w.out_dim, w.out_channels, w.kernel, w.kernel, w.in_channels)
    counts = tuple(_ceil(top, s) for top, s in zip(tops, t))
    nb, npr, npc, npo, nkr, nkc, nkch = counts
    return Tiling(t, counts, nkch * nkr * nkc * nb * npr * npc <= 2, nkch * npo * nkr * nkc <= 2)


def c_signature(name: str, w: ConvWorkload) -> str:
    """The entry's declaration: the harness's 4-D arrays, then Exo's scale pointer and act."""
    n, p, i, c, k, r = w.batch, w.out_dim, w.in_dim, w.in_channels, w.out_channels, w.kernel
    return (f"void {name}(int8_t inp[{n}][{i}][{i}][{c}], int8_t weights[{r}][{r}][{c}][{k}], "
            f"int32_t bias[1][{k}], int8_t output[{n}][{p}][{p}][{k}], const float* scale, bool act)")


def _clip(var: str, size: int, top: int, counter: str) -> str:
    if top % size == 0:
        return f"const int {var} = {size};"
    return f"const int {var} = {counter} + {size} > {top} ? {top} - {counter} : {size};"


def tile_loops_c(w: ConvWorkload, t: Tiling, body: str, indent: str = "") -> str:
    """``tiled_conv``'s loops around ``body`` (C statements) with, in scope:
    the tile origin ``b porow pocol poch krow kcol kch``, the clipped sizes
    ``batches_ porows_ pocols_ pochs_ krows_ kcols_ kchs_``, the window
    ``irows_ icols_ upad dpad lpad rpad``, the pointers ``in_ w_ bias_ out_``
    (NULL when that phase is skipped) and ``a_spad_id b_spad_id``."""
    B, PR, PC, PO, KR, KC, KCH = t.sizes
    nb, npr, npc, npo, nkr, nkc, nkch = t.counts
    st, ind, p = w.stride, w.in_dim, w.out_dim
    k, c, r = w.out_channels, w.in_channels, w.kernel
    first_red = "krow == 0 && kcol == 0 && kch == 0"
    last_red = f"krow + {KR} >= {r} && kcol + {KC} >= {r} && kch + {KCH} >= {c}"
    lines = [
        f"for (int b = 0; b < {w.batch}; b += {B}) {{",
        f" for (int porow = 0; porow < {p}; porow += {PR}) {{",
        f"  for (int pocol = 0; pocol < {p}; pocol += {PC}) {{",
        f"   for (int poch = 0; poch < {k}; poch += {PO}) {{",
        f"    for (int krow = 0; krow < {r}; krow += {KR}) {{",
        f"     for (int kcol = 0; kcol < {r}; kcol += {KC}) {{",
        f"      for (int kch = 0; kch < {c}; kch += {KCH}) {{",
        "       " + _clip("batches_", B, w.batch, "b"),
        "       " + _clip("porows_", PR, p, "porow"),
        "       " + _clip("pocols_", PC, p, "pocol"),
        "       " + _clip("pochs_", PO, k, "poch"),
        "       " + _clip("krows_", KR, r, "krow"),
        "       " + _clip("kcols_", KC, r, "kcol"),
        "       " + _clip("kchs_", KCH, c, "kch"),
        f"       const int irow = porow * {st} + krow;",
        f"       const int icol = pocol * {st} + kcol;",
        f"       const int irows_ = porows_ * {st} + krows_ - 1;",
        f"       const int icols_ = pocols_ * {st} + kcols_ - 1;",
        "       const int upad = 0;",
        "       const int lpad = 0;",
        f"       const int dpad = irow + irows_ > {ind} ? irow + irows_ - {ind} : 0;",
        f"       const int rpad = icol + icols_ > {ind} ? icol + icols_ - {ind} : 0;",
        "       const int8_t* in_ = &inp[b][irow][icol][kch];",
        "       const int8_t* w_ = &weights[krow][kcol][kch][poch];",
        "       const int32_t* bias_ = NULL;",
        f"       if ({first_red}) {{",
        "        bias_ = &bias[0][poch];",
        "       }",
        "       int8_t* out_ = NULL;",
        f"       if ({last_red}) {{",
        "        out_ = &output[b][porow][pocol][poch];",
        "       }",
        "       int a_spad_id = 0;",
        "       int b_spad_id = 0;",
    ]
    if t.a_reuse:
        lines += [
            "       if (poch > 0) {",
            "        in_ = NULL;",
            "       }",
            "       a_spad_id = (b == 0 && porow == 0 && pocol == 0 && krow == 0 && kcol == 0 && kch == 0) ? 1 : 2;",
        ]
    if t.b_reuse:
        lines += [
            "       if (b > 0 || porow > 0 || pocol > 0) {",
            "        w_ = NULL;",
            "       }",
            "       b_spad_id = (poch == 0 && krow == 0 && kcol == 0 && kch == 0) ? 1 : 2;",
        ]
    lines += ["       " + ln for ln in body.strip("\n").splitlines()]
    lines += ["      }", "     }", "    }", "   }", "  }", " }", "}"]
    return "\n".join(indent + ln for ln in lines)
