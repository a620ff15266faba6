"""gemmini_loop_conv_ws: the hardware conv FSM (LoopConv) issuing real instructions.

One call runs the five sub-machines of GEMMINI_CONV.md section 3 in their
issue order (bias loader, weight loader, input loader, execute, store; the
arbiter prefers bias over weights over input), each one a loop nest issuing
the same mvin / preload / compute / mvout the CPU could issue, on the same
functional machine (bit-exact by construction) and handed to the timing model
as FSM-issued. Executes follow all of the call's loads, stores all of its
executes; consecutive calls use the two loop slots (scratchpad halves) in
turn, so a call's loads overlap the previous call's computes.

The accumulator base (shared by bias, execute and store) flips between the
two halves after every call that writes an output, so reduction tiles that
store nothing accumulate into the half the storing tile then reads.

Supported: weight-stationary convolutions with stride and zero padding (a
tile's lpad/rpad/upad/dpad), bias or no_bias. Refused with UnsupportedError:
pooling, kernel or input dilation, downsampling, wrot180, the four
transposes, depthwise and max_pixels_per_row > 1.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from gemmini_isa import INSTRUCTIONS
from gemmini_isa.instructions import ACC_BIT, ACCUMULATE_BIT, GARBAGE_ADDR, ROCC_COMMANDS

from .errors import InstructionLimitError, UnsupportedError
from .loop_ws import fsm_count

if TYPE_CHECKING:
    from .machine import Machine

WHERE = "gemmini_loop_conv_ws"
_PARAMS = tuple(p.name for p in INSTRUCTIONS["loop_conv_ws"].params)
_UNSUPPORTED = ("downsample", "wrot180", "input_dilated", "trans_output_1203", "trans_weight_1203",
                "trans_weight_0132", "trans_input_3120", "dw")


def _args(args: tuple) -> SimpleNamespace:
    if len(args) != len(_PARAMS):
        raise InstructionLimitError(f"{WHERE} takes {len(_PARAMS)} arguments, got {len(args)}")
    return SimpleNamespace(**dict(zip(_PARAMS, (int(v) for v in args))))


def _check(a: SimpleNamespace) -> None:
    on = [n for n in _UNSUPPORTED if getattr(a, n)]
    if on:
        raise UnsupportedError(f"{WHERE}: {', '.join(on)} is not supported by the simulator")
    if not a.no_pool:
        raise UnsupportedError(f"{WHERE}: pooling (no_pool = 0) is not supported by the simulator")
    if a.kernel_dilation != 1:
        raise UnsupportedError(f"{WHERE}: kernel_dilation {a.kernel_dilation} is not supported (only 1)")
    if a.max_pixels_per_row > 1:
        raise UnsupportedError(f"{WHERE}: max_pixels_per_row {a.max_pixels_per_row} is not supported (only 0 or 1)")
    for n in ("batches", "orows", "ocols", "pochs", "krows", "kcols", "kchs", "stride", "in_stride",
              "weight_stride", "out_stride"):
        if getattr(a, n) < 1:
            raise InstructionLimitError(f"{WHERE}: {n} = {getattr(a, n)}; must be >= 1")
    for n in ("lpad", "rpad", "upad", "dpad"):
        if getattr(a, n) < 0:
            raise InstructionLimitError(f"{WHERE}: {n} = {getattr(a, n)}; must be >= 0")
    if a.a_spad_id not in (0, 1, 2) or a.b_spad_id not in (0, 1, 2):
        raise InstructionLimitError(f"{WHERE}: a_spad_id and b_spad_id must be 0, 1 or 2")


def run_loop_conv_ws(m: "Machine", *args: int) -> None:
    a = _args(args)
    _check(a)
    dim = m.dim
    half_sp, half_acc = m.sp_rows // 2, m.acc_rows // 2
    b_n, orows, ocols, ochs = a.batches, a.orows, a.ocols, a.pochs
    krows, kcols, kchs, st = a.krows, a.kcols, a.kchs, a.stride
    irows, icols = orows * st + krows - 1, ocols * st + kcols - 1
    irows_in, icols_in = irows - a.upad - a.dpad, icols - a.lpad - a.rpad
    if irows_in < 1 or icols_in < 1:
        raise InstructionLimitError(f"{WHERE}: the pads leave no input pixels ({irows_in} rows, {icols_in} cols)")
    pix = b_n * orows * ocols            # accumulator rows of one 16-channel output block
    sa = b_n * irows * icols             # scratchpad rows of one 16-channel input block
    wblk = krows * kcols * kchs          # scratchpad rows of one 16-channel weight block
    och_blocks, kch_blocks = -(-ochs // dim), -(-kchs // dim)
    a_rows, b_rows, c_rows = kch_blocks * sa, och_blocks * wblk, och_blocks * pix

    slot = m.conv_calls % 2
    m.conv_calls += 1
    a_half = a.a_spad_id - 1 if a.a_spad_id else slot
    b_half = a.b_spad_id - 1 if a.b_spad_id else slot
    a0 = a_half * half_sp
    b0 = (b_half + 1) * half_sp - b_rows
    if a_rows + (b_rows if a_half == b_half else 0) > half_sp or b_rows > half_sp:
        raise InstructionLimitError(
            f"{WHERE}: a tile needs {a_rows} input and {b_rows} weight scratchpad rows; the FSM has half "
            f"the scratchpad ({half_sp} rows) per loop slot")
    if c_rows > half_acc:
        raise InstructionLimitError(
            f"{WHERE}: a tile needs {c_rows} accumulator rows; the FSM has half the accumulator ({half_acc})")
    c0 = m.conv_acc_base

    def ctl_row(och: int, b: int, orow: int, ocol: int) -> int:
        return c0 + (och // dim) * pix + (b * orows + orow) * ocols + ocol

    def wt_row(och: int, krow: int, kcol: int, kch: int) -> int:
        return b0 + (och // dim) * wblk + (krow * kcols + kcol) * kchs + kch

    tm = m.tm
    if tm is not None:
        # fsm_begin charges the LOOP_WS macro's commands; this macro has more
        extra = ROCC_COMMANDS["loop_conv_ws"] - m.cfg.fsm_setup_commands
        if extra > 0:
            tm.cpu(extra * m.cfg.cpu_rocc_cycles)
        tm.fsm_begin()

    def config_ld(ident: int, stride: int, block_stride: int) -> None:
        fsm_count(m, "config_ld", WHERE)
        m.ld[ident] = [stride, 1.0, 0, block_stride]
        if tm is not None:
            tm.command("config_ld", "load", (), (), 0, 0, 0, True)

    # ---- bias loader: mvin3 (broadcast, overwrite) into the accumulator ----
    if a.bias:
        config_ld(2, 0, pix)
        for b in range(b_n):
            for orow in range(orows):
                for ocol in range(0, ocols, dim):
                    rows = min(dim, ocols - ocol)
                    for och in range(0, ochs, dim):
                        fsm_count(m, "mvin", WHERE)
                        src = 0 if a.no_bias else a.bias + och * 4
                        m._mvin(src, ACC_BIT | ctl_row(och, b, orow, ocol), min(dim, ochs - och), rows, 0, 1.0,
                                0, pix, True)
    # ---- weight loader: mvin2, och chunks of at most 64 columns -------------
    if a.weights:
        config_ld(1, a.weight_stride, wblk)
        step = min(ochs, 4 * dim)
        for och in range(0, ochs, step):
            cols = min(4 * dim, ochs - och)
            for krow in range(krows):
                for kcol in range(kcols):
                    for kch in range(0, kchs, dim):
                        fsm_count(m, "mvin", WHERE)
                        src = a.weights + ((krow * a.kernel_dim + kcol) * a.in_channels + kch) * a.weight_stride + och
                        m._mvin(src, wt_row(och, krow, kcol, kch), cols, min(dim, kchs - kch), a.weight_stride,
                                1.0, 0, wblk, True)
    # ---- input loader: mvin, pixel runs of at most 16 by at most 64 channels; zeros in pads ----
    if a.input:
        config_ld(0, a.in_stride, sa)
        step = min(kchs, 4 * dim)
        for b in range(b_n):
            for irow in range(-a.upad, irows_in + a.dpad):
                icol = -a.lpad
                while icol < icols_in + a.rpad:
                    if icol < 0:
                        n = min(-icol, dim)
                    elif icol >= icols_in:
                        n = min(icols_in + a.rpad - icol, dim)
                    else:
                        n = min(icols_in - icol, dim)
                    pad = irow < 0 or irow >= irows_in or icol < 0 or icol >= icols_in
                    for ich in range(0, kchs, step):
                        fsm_count(m, "mvin", WHERE)
                        src = 0 if pad else (a.input + ((b * a.in_row_dim + irow) * a.in_col_dim + icol) * a.in_stride
                                             + ich)
                        dst = a0 + (ich // dim) * sa + (b * irows + irow + a.upad) * icols + icol + a.lpad
                        m._mvin(src, dst, min(4 * dim, kchs - ich), n, a.in_stride, 1.0, 0, sa, True)
                    icol += n
    # ---- execute: one weight block, then every output pixel run it feeds ----
    acc_flags = ACC_BIT | ACCUMULATE_BIT
    for och in range(0, ochs, dim):
        j = min(dim, ochs - och)
        for krow in range(krows):
            for kcol in range(kcols):
                for kch in range(0, kchs, dim):
                    k = min(dim, kchs - kch)
                    new = True
                    for b in range(b_n):
                        for orow in range(orows):
                            for ocol in range(0, ocols, dim):
                                i = min(dim, ocols - ocol)
                                arow = (a0 + (kch // dim) * sa + (b * irows + orow * st + krow) * icols
                                        + ocol * st + kcol)
                                fsm_count(m, "preload", WHERE)
                                m._preload(wt_row(och, krow, kcol, kch) if new else GARBAGE_ADDR,
                                           acc_flags | ctl_row(och, b, orow, ocol), j, k, j, i, True)
                                fsm_count(m, "compute", WHERE)
                                m._compute(arow, GARBAGE_ADDR, k, i, j, i, new, True)
                                new = False
    # ---- store: mvout (scaled by the CPU's config_st) ------------------------
    if a.output:
        for b in range(b_n):
            for orow in range(orows):
                for ocol in range(0, ocols, dim):
                    i = min(dim, ocols - ocol)
                    for och in range(0, ochs, dim):
                        fsm_count(m, "mvout", WHERE)
                        dst = a.output + ((b * a.out_row_dim + orow) * a.out_col_dim + ocol) * a.out_stride + och
                        m._mvout(dst, ACC_BIT | ctl_row(och, b, orow, ocol), min(dim, ochs - och), i, m.st_stride,
                                 m.st_act, m.st_scale, True)
        m.conv_acc_base = (c0 + half_acc) % m.acc_rows
    if tm is not None:
        tm.fsm_end()
