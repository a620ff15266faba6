"""Gemmini instruction procs that exo.platforms.gemmini lacks.

Exo 1.0's platform moves accumulator data out either raw (``st_acc_i32``) or
scaled by a float (``st_acc_i8``: ``acc_scale`` then ``clamp``). A GEMM that
clamps to int8 without a scale (``clamp(res, tmp)``, optionally ReLU) has no
instruction whose body it matches, so ``replace`` cannot map its store phase.
These procs are that store: their bodies are the clamp-only semantics, their
C the same ``config_st`` + ``mvout`` as Exo's ``st_acc_i8`` with a scale of
1.0 (exact: an int32 that float32 rounds is beyond the int8 range anyway,
so the saturated result is the same). The activation is fixed per proc
(``act`` 0 or 1 in ``config_st``), as it is in the user's algorithm, or
(``st_acc_i8_clamp_act``) a run-time ``act`` flag, as in Exo's app.

They are resolved by name like the platform's procs (`schedule.INSTRUCTIONS`).
"""
from __future__ import annotations

from exo import DRAM, instr
from exo.libs.externs import relu  # noqa: F401  (used in @instr)
from exo.libs.memories import GEMM_ACCUM
from exo.platforms.gemmini import clamp  # noqa: F401  (used in @instr)

__all__ = ["st_acc_i8_clamp", "st_acc_i8_clamp_relu", "st_acc_i8_clamp_act", "EXTRA_INSTRUCTIONS"]


def _template(act: "int | str") -> str:
    return (
        f"gemmini_extended_config_st({{dst}}.strides[0]*1, {act}, 1.0f);\n"
        + "gemmini_extended_mvout( ((uint64_t) &{dst_data}), (uint32_t) &{src_data}, {m}, {n} );"
    )


@instr(_template(0))
def st_acc_i8_clamp(n: size, m: size, src: [i32][n, 16] @ GEMM_ACCUM, dst: [i8][n, m] @ DRAM):
    assert n <= 16
    assert m <= 16
    assert stride(dst, 1) == 1
    assert stride(src, 0) == 16
    assert stride(src, 1) == 1

    for i in seq(0, n):
        for j in seq(0, m):
            tmp: i8
            src_tmp: i32
            src_tmp = src[i, j]
            clamp(src_tmp, tmp)
            dst[i, j] = tmp


@instr(_template(1))
def st_acc_i8_clamp_relu(n: size, m: size, src: [i32][n, 16] @ GEMM_ACCUM, dst: [i8][n, m] @ DRAM):
    assert n <= 16
    assert m <= 16
    assert stride(dst, 1) == 1
    assert stride(src, 0) == 16
    assert stride(src, 1) == 1

    for i in seq(0, n):
        for j in seq(0, m):
            tmp: i8
            src_tmp: i32
            src_tmp = src[i, j]
            clamp(src_tmp, tmp)
            dst[i, j] = relu(tmp)


@instr(_template("{act}"))
def st_acc_i8_clamp_act(n: size, m: size, act: bool, src: [i32][n, 16] @ GEMM_ACCUM, dst: [i8][n, m] @ DRAM):
    assert n <= 16
    assert m <= 16
    assert stride(dst, 1) == 1
    assert stride(src, 0) == 16
    assert stride(src, 1) == 1

    for i in seq(0, n):
        for j in seq(0, m):
            tmp: i8
            src_tmp: i32
            src_tmp = src[i, j]
            clamp(src_tmp, tmp)
            if act == True:
                tmp = relu(tmp)
            dst[i, j] = tmp


#: name -> proc (the names `schedule` whitelists next to the platform's)
EXTRA_INSTRUCTIONS = {p.name(): p for p in (st_acc_i8_clamp, st_acc_i8_clamp_relu, st_acc_i8_clamp_act)}
