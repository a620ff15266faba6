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

Shapes: M, N, K multiples of 16.  When N (or K) is not a multiple of 64 the
tile width TJ (or TK) is the largest of 48, 32, 16 that divides it (the
instructions move at most 4 blocks of 16 columns at a time).
"""
from __future__ import annotations

from gemmini_isa.config import default as default_config

from ..schedule import Schedule
from ..workloads import GemmWorkload, WorkloadError, check_shape

__all__ = ["schedule", "tiles", "MENU"]

MENU = "exo-unopt"


def tiles(workload: GemmWorkload) -> tuple[int, int]:
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


def steps(tj: int = 64, tk: int = 64, n: int = 0) -> list[dict]:
    """The mapping's steps for tile widths ``tj``/``tk``; ``n`` (N) decides
    whether the accumulator row of a 16-row block is lifted over j (Exo's
    mapping: an N-row buffer) or, when N rows exceed the accumulator, stays
    one 16 x TJ tile inside the j loop (Exo's own lift would not fit)."""
    s = []
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
        _s("autofission", _gap_after("res[_] = 0.0"), 3),
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
        _s("replace", "for i_in in _: _ #0", _instr("zero_acc_i32")),
        _s("replace", "for i_in in _: _ #0", _instr("ld_i8_block_id1")),
        _s("replace", "for ki in _: _ #0", _instr("ld_i8_block_id2")),
        _s("replace", "for i_in in _: _ #0", _instr("matmul_acc_i8")),
        _s("replace", "for i_in in _: _ #0", _instr("st_acc_i8")),
        _s("set_memory", "res", _mem("GEMM_ACCUM")),
        _s("set_memory", "a", _mem("GEMM_SCRATCH")),
        _s("set_memory", "b", _mem("GEMM_SCRATCH")),
    ]
    # -- inline_lift_config: split each instruction into config + do, hoist --
    s += [
        _s("call_eqv", "zero_acc_i32(_)", _instr("zero_acc_i32_v2")),
        _s("inline", "zero_acc_i32_v2(_)"),
        _s("inline_window", "dst = res[_]"),
        _s("lift_config", "config_zero(_)"),
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
        _s("call_eqv", "st_acc_i8(_)", _instr("st_acc_i8_v2")),
        _s("inline", "st_acc_i8_v2(_)"),
        _s("inline_window", "src = res[_]"),
        _s("inline_window", "dst = C[_]"),
        _s("lift_config", "config_st_acc_i8(_)"),
        _s("simplify"),
    ]
    return s


def schedule(workload: GemmWorkload) -> Schedule:
    """Exo's standard Gemmini mapping for ``workload`` as a Schedule."""
    if not isinstance(workload, GemmWorkload):
        raise WorkloadError(f"expected a GemmWorkload, got {type(workload).__name__}")
    tj, tk = tiles(workload)
    return Schedule(steps(tj, tk, workload.N))
