"""Exo's unoptimized Gemmini mapping of a conv, as Schedule data.

The steps are those of the conv helpers in ``exo.platforms.gemmini``
(split_fission_dim, replace_div_part / replace_mod_part, set_gemm_memories,
inline_div_part / inline_mod_part; GEMMINI_CONV.md section 5) applied to
`ConvWorkload.proc`. The platform wraps most of them in ``repeat`` (apply
until it fails) or ``loop_hack`` (apply at every match): whether a step
applies once or twice depends on the shape (the ocol split leaves a full-tile
part, a tail part, or both). So the list is *traced* once per shape
(`_Trace`): each helper step is applied, and only the steps that applied are
kept, with explicit ``#k`` match indices; the resulting Schedule replays
without a failing step, like `baselines.exo_unopt` for GEMMs.

Two changes to Exo's helpers: a load moves at most 4 blocks of 16 channels
(64 bytes, GEMMINI_CONV.md section 1), so with more than 64 input or output
channels the weight and input loads are split into groups of 4 blocks (Exo's
helper would emit one mvin of all of them); and a stride-2 conv uses the same
steps (the input strip's DRAM window then has a column stride of 2 pixels,
which ``ld_i8_block_id2`` cannot express, so it is refused by name).

One change of the row split (`row_tile`): where Exo's helper cuts an output
row into tiles of 16 and a guarded tail part (56 = 3 x 16 + 8), the search's
start takes tiles of a width that divides the row into as many tiles (56 =
4 x 14): the same preload/compute pairs, one copy of each load instead of two
(``schedule(w, tail=True)`` is the helper's split).

Per (b, orow, tile of n <= 16 output columns): broadcast the bias into the
accumulator, then per (krow, kcol) load the in_ch x out_ch weight slab and
the input strip and run every 16x16 ``matmul_acc_i8``, then store; configs
hoisted to the top (the input load keeps its config: its block stride is n).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from gemmini_isa import GemminiConfig

from ..conv import DIM, ConvWorkload
from ..schedule import DEFAULT_CACHE, OPS, Schedule, ScheduleError, Step, _apply_step, _chain_keys
from ..workload_base import WorkloadError

__all__ = ["schedule", "steps", "MENU"]

MENU = "exo-unopt"

#: blocks of 16 int8 channels one scratchpad mvin moves (64 columns)
_MAX_BLOCKS = GemminiConfig().max_mvin_cols_sp // GemminiConfig().dim


def _gap(stmt: str) -> dict:
    return {"gap": "after", "stmt": stmt}


def _instr(name: str) -> dict:
    return {"instr": name}


def _mem(name: str) -> dict:
    return {"mem": name}


class _Trace:
    """Apply helper steps to a proc, keeping those that applied (the Schedule).

    Each prefix's proc goes to the prefix cache: replaying the schedule, or a
    variant of it, in this process starts from there."""

    def __init__(self, proc):
        self.base = self.p = proc
        self.steps: list[Step] = []
        self._key = b""

    def _keep(self, st: Step, p) -> None:
        self.p = p
        self.steps.append(st)
        self._key = hashlib.sha256(self._key + st.program_key().encode()).digest()
        DEFAULT_CACHE.store(self.base, self._key.hex(), p)

    def once(self, op: str, *args, **kwargs) -> None:
        """A step that must apply (ScheduleError otherwise)."""
        st = Step(op, list(args), kwargs, MENU)
        self._keep(st, _apply_step(self.p, st, len(self.steps)))

    def repeat(self, op: str, *args, limit: int = 8, **kwargs) -> int:
        """Exo's ``repeat(op)``: apply until it fails; the count that applied."""
        n = 0
        while n < limit:
            st = Step(op, list(args), kwargs, MENU)
            try:
                p = _apply_step(self.p, st, len(self.steps))
            except ScheduleError:
                break
            self._keep(st, p)
            n += 1
        return n

    def each(self, op: str, pattern: str, *args, **kwargs) -> int:
        """Exo's ``loop_hack``: apply at match #0, #1, ... of ``pattern`` (as many as there are now)."""
        n = self.count(pattern)
        for i in range(n):
            self.once(op, self._at(op, pattern, i), *args, **kwargs)
        return n

    def count(self, pattern: str) -> int:
        try:
            return len(self.p.find(pattern, many=True))
        except Exception:
            return 0

    @staticmethod
    def _at(op: str, pattern: str, i: int):
        if OPS[op].params[0].kind == "gap":
            return _gap(f"{pattern} #{i}")
        return f"{pattern} #{i}"


def _split_fission_dim(t: _Trace, tile: int) -> None:
    if tile == DIM:   # Exo's helper: full tiles of 16 and a guarded tail part
        t.once("divide_loop", "ocol", DIM, ["ocol_o", "ocol_i"], tail="cut_and_guard")
    else:             # tiles of `tile` columns that divide the row: one part
        t.once("divide_loop", "ocol", tile, ["ocol_o", "ocol_i"], perfect=True)
    t.repeat("divide_loop", "och", 16, ["och_o", "och_i"], perfect=True)
    t.repeat("divide_loop", "kch", 16, ["kch_o", "kch_i"], perfect=True)
    t.repeat("reorder_loops", "ocol_i och_o")
    t.each("autolift_alloc", "res : _", 3, "row", None, True)
    t.each("autofission", "res[_] = _", 3)
    t.each("autofission", "for krow in _:_", 3)
    for nest in ("och_i krow", "och_i kcol", "och_i kch_o", "ocol_i krow", "ocol_i kcol", "ocol_i kch_o",
                 "och_o krow"):
        t.repeat("reorder_loops", nest)
    t.once("simplify")
    t.each("autolift_alloc", "i_s : _", 6, "row", None, True)
    t.each("autolift_alloc", "w_s : _", 1, "row", None, True)
    t.each("autolift_alloc", "w_s : _", 1, "col", None, True)
    t.repeat("reorder_loops", "och_o kcol")
    t.repeat("reorder_loops", "och_o kch_o")
    t.each("autolift_alloc", "w_s : _", 3, "row", None, True)
    t.each("autofission", "w_s = _", 5)
    t.each("autofission", "i_s = _", 5)


def _group(t: _Trace, assign: str, loop_levels: int, name: str, blocks: int) -> None:
    """Split the channel-block loop ``loop_levels`` above ``assign`` into groups of at most 4 blocks."""
    g = max(d for d in range(1, _MAX_BLOCKS + 1) if blocks % d == 0)
    cur: Any = assign
    for _ in range(loop_levels):
        cur = {"parent": cur}
    t.once("divide_loop", cur, g, [name + "o", name + "i"], perfect=True)


def _replace_part(t: _Trace, w: ConvWorkload) -> None:
    """replace_div_part / replace_mod_part for the first unmapped part (ocol_i loops left)."""
    kb, cb = w.out_channels // 16, w.in_channels // 16
    t.once("replace", "for ocol_i in _:_ #0", _instr("ld_acc_i32_vector"))
    t.repeat("reorder_loops", "och_i kch_i")
    t.repeat("reorder_loops", "och_o kch_i")
    if kb > _MAX_BLOCKS:   # weights: kch_o { kch_i { och_o { och_i { w_s = _ }}}}
        _group(t, "w_s[_] = _ #0", 2, "och_o", kb)
        t.once("reorder_loops", "kch_i och_oo")
    t.once("replace", "for kch_i in _:_ #0", _instr("ld_i8_block_id1"))
    t.repeat("reorder_loops", "kch_o ocol_i")
    if cb > _MAX_BLOCKS:   # input: ocol_i { kch_o { kch_i { i_s = _ }}}
        _group(t, "i_s[_] = _ #0", 2, "kch_o", cb)
        t.once("reorder_loops", "ocol_i kch_oo")
    t.once("replace", "for ocol_i in _:_ #0", _instr("ld_i8_block_id2"))
    t.repeat("reorder_loops", "kch_i och_i")
    t.once("replace", "for ocol_i in _:_ #0", _instr("matmul_acc_i8"))
    t.once("replace", "for ocol_i in _:_ #0", _instr("st_acc_i8"))


def _inline_part(t: _Trace) -> None:
    t.once("call_eqv", "ld_acc_i32_vector(_)", _instr("ld_acc_i32_vector_v2"))
    t.once("inline", "ld_acc_i32_vector_v2(_)")
    t.once("inline_window", "src = bias[_]")
    t.once("inline_window", "dst = res[_]")
    t.once("call_eqv", "ld_i8_block_id1(_)", _instr("ld_i8_block_id1_s2_v2"))
    t.once("inline", "ld_i8_block_id1_s2_v2(_)")
    t.once("inline_window", "src = weights[_]")
    t.once("inline_window", "dst = w_s[_]")
    t.once("call_eqv", "matmul_acc_i8(_)", _instr("matmul_acc_i8_v2"))
    t.once("inline", "matmul_acc_i8_v2(_)")
    t.once("inline_window", "A = i_s[_]")
    t.once("inline_window", "B = w_s[_]")
    t.once("inline_window", "C = res[_]")
    t.once("call_eqv", "st_acc_i8(_)", _instr("st_acc_i8_s2_v2"))
    t.once("inline", "st_acc_i8_s2_v2(_)")
    t.once("inline_window", "src = res[_]")
    t.once("inline_window", "dst = output[_]")


_CONFIGS = ("config_ld_acc_i32_vector(_)", "config_ld_i8_id1(_)", "config_matmul(_)", "config_st_acc_i8(_)")


def check_fits(w: ConvWorkload, config: GemminiConfig | None = None) -> None:
    """WorkloadError unless the mapping's buffers fit (weights for one tap, three input strips, one output row)."""
    cfg = config or GemminiConfig()
    if w.stride != 1:
        raise WorkloadError(f"{w.name}: Exo's conv mapping needs stride 1 (a stride-{w.stride} input strip has "
                            "a DRAM column stride ld_i8_block_id2 cannot express)")
    sp = w.in_channels * w.out_channels // 16 + w.kernel * w.in_channels
    acc = w.out_channels
    if sp > cfg.sp_rows or acc > cfg.acc_rows:
        raise WorkloadError(f"{w.name}: Exo's conv mapping needs {sp} scratchpad rows and {acc} accumulator rows; "
                            f"the machine has {cfg.sp_rows} and {cfg.acc_rows}")


def row_tile(out_dim: int, tail: bool = False) -> int:
    """Output columns per tile: 16 (Exo's helper, with a tail part when 16 does
    not divide the row) unless ``tail`` is False and a width in [DIM/2, DIM)
    divides the row: then tiles of that width and no tail part. The number of
    tiles is the same (ceil(out_dim / 16)); the tail part would be a second
    copy of every load, and the moves that keep an operand resident take an
    operand loaded by one call."""
    if tail or out_dim % DIM == 0 or out_dim < DIM:
        return DIM
    for t in range(DIM - 1, DIM // 2 - 1, -1):
        if out_dim % t == 0 and -(-out_dim // t) == -(-out_dim // DIM):
            return t
    return DIM


@lru_cache(maxsize=16)
def _traced(batch: int, out_dim: int, in_channels: int, out_channels: int, kernel: int, tile: int) -> tuple:
    """The steps for a shape (the proc does not depend on ``relu``: one trace for both)."""
    w = ConvWorkload(batch, out_dim, in_channels, out_channels, kernel)
    t = _Trace(w.proc)
    _split_fission_dim(t, tile)
    parts = 0
    while t.count("for ocol_i in _:_"):
        _replace_part(t, w)
        parts += 1
    for mem, names in (("GEMM_ACCUM", "res"), ("GEMM_SCRATCH", "i_s"), ("GEMM_SCRATCH", "w_s")):
        for i in range(parts):
            t.once("set_memory", f"{names} #{i}", _mem(mem))
    for i in range(parts):
        _inline_part(t)
        if i == 0:
            for c in _CONFIGS:
                t.once("lift_config", c)
        else:
            for c in _CONFIGS:
                t.once("delete_config", c + " #1")
    t.once("simplify")
    assert _chain_keys(t.steps)[-1] == t._key.hex()   # the cache keys are the schedule's own
    return tuple(t.steps)


def steps(w: ConvWorkload, tail: bool = False) -> list[dict]:
    """The mapping's steps for ``w`` as step dicts."""
    return [s.to_dict() for s in schedule(w, tail=tail)]


def schedule(workload: Any, tail: bool = False) -> Schedule:
    """Exo's standard Gemmini mapping of the conv ``workload`` as a Schedule
    (WorkloadError for a shape it cannot take); the row split of `row_tile`
    (``tail=True``: exactly Exo's helper, 16 columns and a tail part)."""
    if not isinstance(workload, ConvWorkload):
        raise WorkloadError(f"conv_unopt maps a ConvWorkload, got a {type(workload).__name__}")
    check_fits(workload)
    w = workload
    return Schedule(_traced(w.batch, w.out_dim, w.in_channels, w.out_channels, w.kernel,
                            row_tile(w.out_dim, tail)))
