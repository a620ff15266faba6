"""Exo's standard (unoptimized) Gemmini mapping of a GEMM, as Schedule data.

The same mapping as ``exo.platforms.gemmini``'s helpers (tile_outer_loops,
old_lift_alloc, fission_outer_blocks, fission_inner_blocks,
replace_gemmini_calls, inline_lift_config) applied to Exo's matmul app, but
written as explicit, checked primitive steps: every step either applies or
raises (the ``repeat(...)`` wrappers of the platform file swallow errors).

Per 16 x TJ output tile (TJ = 64 normally): zero the accumulator, then for
each TK-wide k chunk (TK = 64 normally) load A (16 x TK) and B (TK x TJ, as
TK/16 mvins of 16 x TJ) into freshly allocated scratchpad buffers and run
(TK/16) x (TJ/16) preload/compute pairs; then mvout.  Configs are hoisted to
the top of the proc. The accumulator holds a 16-row block's whole N-wide
output row (lifted over j), except when N > 1024 rows would not fit: then
one 16 x TJ tile per j step.

The int32-output matmul (`MatmulI32Workload`) and the unscaled clamp to
int8 (`MatmulClampWorkload`) get the same mapping after a prelude of checked
steps that brings their algorithm into the loop nest of Exo's app (the
output staged in an i32 ``res`` with ``stage_mem``, the operands bound to
``a``/``b`` and widened to ``a2``/``b2`` with ``bind_expr``); their store is
Exo's raw ``st_acc_i32`` or `gemmini_ext.st_acc_i8_clamp(_relu|_act)`, and an
accumulating matmul loads C's old contents with ``ld_acc_i32`` instead of
zeroing. Those instructions emit their configuration with every call (Exo
has no split ``_v2`` form of them), so only the others' configs are hoisted.

Shapes: M, N, K multiples of 16.  When N (or K) is not a multiple of 64 the
tile width TJ (or TK) is the largest of 48, 32, 16 that divides it (the
instructions move at most 4 blocks of 16 columns at a time).
"""
from __future__ import annotations

from gemmini_isa.config import default as default_config

from dataclasses import dataclass
from typing import Any

from ..schedule import Schedule
from ..workloads import GemmWorkload, MatmulClampWorkload, MatmulI32Workload, WorkloadError, check_shape

__all__ = ["schedule", "tiles", "steps", "Form", "form", "MENU"]

MENU = "exo-unopt"


@dataclass(frozen=True)
class Form:
    """How a workload's algorithm meets Exo's mapping: the steps that bring
    it into the app's loop nest, how the accumulator tile starts (its
    statement pattern and instruction) and which instruction stores it
    (``*_v2``: Exo has a split config/do form whose config is hoisted)."""

    prelude: tuple = ()
    init_stmt: str = "res[_] = 0.0"
    init_instr: str = "zero_acc_i32"
    init_v2: bool = True
    store_instr: str = "st_acc_i8"
    store_v2: bool = True


GEMM_FORM = Form()


def _widen_operands() -> tuple:
    """``res += A[i, k] * B[k, j]`` -> the app's ``a``/``b`` (int8) and ``a2``/``b2`` (i32) temporaries."""
    return (
        _s("bind_expr", "A[_]", "a"),
        _s("bind_expr", "B[_]", "b"),
        _s("bind_expr", "a", "a2"),
        _s("bind_expr", "b", "b2"),
        _s("set_precision", "a2", "i32"),
        _s("set_precision", "b2", "i32"),
        _s("reorder_stmts", "a2 = _ ; b2 : _"),
    )


def form(workload: Any) -> Form:
    """The `Form` of a workload (WorkloadError for one without a Gemmini mapping)."""
    if isinstance(workload, GemmWorkload):
        return GEMM_FORM
    if isinstance(workload, MatmulI32Workload):
        if workload.accumulate:   # res = C[i, j]; ...; C[i, j] = res
            stage = _s("stage_mem", "for k in _: _", "C[i, j]", "res")
            return Form((stage,) + _widen_operands(), "res[_] = C[_]", "ld_acc_i32", False, "st_acc_i32", False)
        # res = 0 (Exo drops the load: C is overwritten first); ...; C[i, j] = res
        stage = _s("stage_mem", {"block": "C[_] = 0.0", "expand": [0, 1]}, "C[i, j]", "res")
        return Form((stage,) + _widen_operands(), store_instr="st_acc_i32", store_v2=False)
    if isinstance(workload, MatmulClampWorkload):
        store = ("st_acc_i8_clamp_act" if getattr(workload, "act", False) else
                 "st_acc_i8_clamp_relu" if workload.relu else "st_acc_i8_clamp")
        # clamp(res, tmp) -> src_tmp = res; clamp(src_tmp, tmp) (an instruction's scalar arguments are variables)
        return Form(_widen_operands() + (_s("bind_expr", "res", "src_tmp"),), store_instr=store, store_v2=False)
    raise WorkloadError(f"no Gemmini mapping for a {type(workload).__name__}")


def tiles(workload: Any) -> tuple[int, int]:
    """(TJ, TK): the tile widths in j and k (64 when the size allows)."""
    check_shape(workload.M, workload.N, workload.K)

    def pick(n):
        for t in (64, 48, 32, 16):
            if n % t == 0:
                return t
        raise WorkloadError(f"{n} is not a multiple of 16")  # pragma: no cover

    return pick(workload.N), pick(workload.K)


def _s(op, *args, **kwargs):
    return {"op": op, "args": list(args), "kwargs": kwargs, "menu": MENU}


def _gap_after(stmt):
    return {"gap": "after", "stmt": stmt}


def _instr(name):
    return {"instr": name}


def _mem(name):
    return {"mem": name}


def steps(tj: int = 64, tk: int = 64, n: int = 0, f: Form = GEMM_FORM) -> list[dict]:
    """The mapping's steps for tile widths ``tj``/``tk``; ``n`` (N) decides
    whether the accumulator row of a 16-row block is lifted over j (Exo's
    mapping: an N-row buffer) or, when N rows exceed the accumulator, stays
    one 16 x TJ tile inside the j loop (Exo's own lift would not fit).
    ``f``: the workload's `Form` (default: Exo's app)."""
    s = list(f.prelude)
    # -- tile_outer_loops: i by 16, j by TJ then 16 --------------------------
    s += [
        _s("divide_loop", "i", 16, ["i", "i_in"], perfect=True),
        _s("reorder_loops", "i_in j"),
        _s("divide_loop", "j", tj, ["j", "j_in"], perfect=True),
        _s("divide_loop", "j_in", 16, ["j_in_o", "j_in_i"], perfect=True),
        _s("reorder_loops", "j_in_o j_in_i"),
    ]
    # -- the accumulator tile res[j_in_o, i_in, j_in_i] ----------------------
    s += [
        _s("autolift_alloc", "res : _", 2, "row", None, True),
        _s("autolift_alloc", "res : _", 1, "col", 16, True),
    ]
    if n <= default_config().acc_rows:
        s.append(_s("autolift_alloc", "res : _", 1, "row", None, True))
    # -- fission_outer_blocks: zero / compute / store phases -----------------
    s += [
        _s("autofission", _gap_after(f.init_stmt), 3),
        _s("autofission", _gap_after("for k in _: _"), 3),
        _s("reorder_loops", "j_in_i j_in_o"),
        _s("reorder_loops", "j_in_i j_in_o"),
        _s("reorder_loops", "j_in_i j_in_o"),
        _s("reorder_loops", "i_in k"),
        _s("reorder_loops", "j_in_i k"),
        _s("reorder_loops", "j_in_o k"),
    ]
    # -- fission_inner_blocks: k by TK then 16, scratchpad tiles a and b -----
    s += [
        _s("divide_loop", "k", tk, ["ko", "k"], perfect=True),
        _s("divide_loop", "k", 16, ["k", "ki"], perfect=True),
        _s("autolift_alloc", "a : _", 3, "row", None, True),
        _s("autolift_alloc", "a : _", 1, "col", None, True),
        _s("autolift_alloc", "a : _", 2, "row", None, True),
        _s("reorder_loops", "ki j_in_o"),
        _s("reorder_loops", "ki j_in_i"),
        _s("autolift_alloc", "b : _", 2, "row", None, True),
        _s("autolift_alloc", "b : _", 1, "col", None, True),
        _s("autolift_alloc", "b : _", 3, "row", None, True),
        _s("autofission", _gap_after("a[_] = _"), 5),
        _s("autofission", _gap_after("b[_] = _"), 5),
        _s("reorder_loops", "j_in_i i_in"),
        _s("reorder_loops", "j_in_i i_in"),
        _s("reorder_loops", "ki i_in"),
        _s("reorder_loops", "ki i_in"),
        _s("reorder_loops", "k i_in"),
        _s("reorder_loops", "j_in_i ki"),
        _s("reorder_loops", "j_in_o ki"),
        _s("reorder_loops", "j_in_i i_in"),
    ]
    # -- replace_gemmini_calls ------------------------------------------------
    s += [
        _s("replace", "for i_in in _: _ #0", _instr(f.init_instr)),
        _s("replace", "for i_in in _: _ #0", _instr("ld_i8_block_id1")),
        _s("replace", "for ki in _: _ #0", _instr("ld_i8_block_id2")),
        _s("replace", "for i_in in _: _ #0", _instr("matmul_acc_i8")),
        _s("replace", "for i_in in _: _ #0", _instr(f.store_instr)),
        _s("set_memory", "res", _mem("GEMM_ACCUM")),
        _s("set_memory", "a", _mem("GEMM_SCRATCH")),
        _s("set_memory", "b", _mem("GEMM_SCRATCH")),
    ]
    # -- inline_lift_config: split each instruction into config + do, hoist --
    if f.init_v2:
        s += [
            _s("call_eqv", "zero_acc_i32(_)", _instr("zero_acc_i32_v2")),
            _s("inline", "zero_acc_i32_v2(_)"),
            _s("inline_window", "dst = res[_]"),
            _s("lift_config", "config_zero(_)"),
        ]
    s += [
        _s("call_eqv", "ld_i8_block_id1(_)", _instr("ld_i8_block_id1_v2")),
        _s("inline", "ld_i8_block_id1_v2(_)"),
        _s("inline_window", "src = A[_]"),
        _s("inline_window", "dst = a[_]"),
        _s("lift_config", "config_ld_i8_id1(_)"),
        _s("call_eqv", "ld_i8_block_id2(_)", _instr("ld_i8_block_id2_v2")),
        _s("inline", "ld_i8_block_id2_v2(_)"),
        _s("inline_window", "src = B[_]"),
        _s("inline_window", "dst = b[_]"),
        _s("lift_config", "config_ld_i8_id2(_)"),
        _s("call_eqv", "matmul_acc_i8(_)", _instr("matmul_acc_i8_v2")),
        _s("inline", "matmul_acc_i8_v2(_)"),
        _s("inline_window", "A = a[_]"),
        _s("inline_window", "B = b[_]"),
        _s("inline_window", "C = res[_]"),
        _s("lift_config", "config_matmul(_)"),
    ]
    if f.store_v2:
        s += [
            _s("call_eqv", "st_acc_i8(_)", _instr("st_acc_i8_v2")),
            _s("inline", "st_acc_i8_v2(_)"),
            _s("inline_window", "src = res[_]"),
            _s("inline_window", "dst = C[_]"),
            _s("lift_config", "config_st_acc_i8(_)"),
        ]
    s.append(_s("simplify"))
    return s


def schedule(workload: Any) -> Schedule:
    """Exo's standard Gemmini mapping for ``workload`` (a GEMM, int32 or clamped
    matmul; a conv: `baselines.conv_unopt`) as a Schedule."""
    if getattr(workload, "kind", None) == "conv":
        from . import conv_unopt

        return conv_unopt.schedule(workload)
    f = form(workload)
    tj, tk = tiles(workload)
    return Schedule(steps(tj, tk, workload.N, f))
