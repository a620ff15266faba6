"""The move library: schedule transformations that read the proc's structure.

A *move* is one documented transformation with a few *decisions* (a loop to
tile and its factor, which DRAM operand's loads leave which loops, how many
loop levels around an instruction to unroll, ...). It finds what it acts on
through `autocomp_exo.proc_facts` (instruction roles from the `gemmini_isa`
tables, the loop counters each operand reads, buffer shapes and memories),
never through callee, buffer or loop names it assumes, and expands into Exo's
checked primitives and `exo.stdlib` helpers on the live proc. Each move is a
whitelisted op of `autocomp_exo.schedule` (a macro step): a schedule made of
moves keeps its decisions, so `transfer` can replay it on another shape.

This module is the registry (names, parameters, docs, examples) and imports
no Exo; the expansions live in `loops`, `buffers` and `substitute`.
Capacities are not consulted here: the agent that samples decisions checks
them against the search's `GemminiConfig`, and the simulator refuses a
schedule whose buffers overflow.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["MoveSpec", "MOVES", "MoveError", "implementation", "ROLES"]

#: instruction roles a move may select calls by (see `proc_facts`)
ROLES = ("compute", "load", "zero", "store")


class MoveError(Exception):
    """A move does not apply to the proc as it is (the message says why)."""


@dataclass(frozen=True)
class MoveSpec:
    """A move as a schedule op: ``params`` are (name, kind, default) with the
    kinds of `schedule.KINDS` (default ``...``: required)."""

    name: str
    params: tuple
    doc: str
    example: dict
    module: str


_R = ...   # required

MOVES: dict[str, MoveSpec] = {m.name: m for m in [
    MoveSpec("tile_loop", (("loop", "name", _R), ("factor", "pos_int", _R)),
             "Move: split a loop into blocks of `factor` iterations (factor dividing its extent; the new loops are "
             "named loop+'o' and loop+'i', made unique).",
             {"op": "tile_loop", "args": ["i", 2]}, "loops"),
    MoveSpec("interchange_loops", (("outer", "name", _R),),
             "Move: swap the loop `outer` with the one loop in its body. Buffers allocated beside the inner "
             "loop and indexed by its counter shrink to one slice inside it; others are lifted out.",
             {"op": "interchange_loops", "args": ["ii"]}, "loops"),
    MoveSpec("unroll_calls", (("role", "role", _R), ("depth", "pos_int", 1), ("operand", "opt_name", None),
                              ("simplify", "bool", True)),
             "Move: fully unroll the `depth` innermost loops around every call of an instruction role "
             "(compute, load, zero, store; loads/stores optionally only of one DRAM operand), innermost first, "
             "then simplify (optional).",
             {"op": "unroll_calls", "args": ["compute", 2]}, "loops"),
    MoveSpec("hoist_load", (("operand", "name", _R), ("levels", "nat", 1)),
             "Move: take the load of a DRAM operand out of `levels` enclosing loops whose counters it does not "
             "read (0: all of them), innermost first: its buffer gains a dimension for each loop in between "
             "whose counter it does read, the load is split off and the loop around it removed (load once, "
             "reuse; the checked form of an if-guarded load).",
             {"op": "hoist_load", "args": ["B", 1]}, "buffers"),
    MoveSpec("stage_buffer", (("buffer", "name", _R), ("expand", "names", [])),
             "Move: allocate a local buffer once, at the top of the proc, with one copy per iteration of each "
             "loop in `expand` (a leading dimension indexed by its counter: double buffering when that loop "
             "has 2 iterations).",
             {"op": "stage_buffer", "args": ["res", ["ii"]]}, "buffers"),
    MoveSpec("spread_banks", (("buffer", "name", _R), ("copies", "pos_int", _R), ("at", "nat", 0)),
             "Move: pad a scratchpad buffer to `copies` times its rows so it spans whole banks: `at` 0 adds a "
             "leading dimension of copies (copy 0 used; the operands after it start in another bank); `at` k "
             "grows dimension k, padding each slice of the dimensions before it (each staged copy of a double "
             "buffer in banks of its own, so one copy loads while the computes read the other).",
             {"op": "spread_banks", "args": ["a", 4]}, "buffers"),
    MoveSpec("double_buffer", (("buffer", "name", _R), ("factor", "pos_int", 2)),
             "Move: split the loop around a local buffer's allocation by `factor` and give the buffer a "
             "dimension for the inner counter, so consecutive iterations use distinct rows.",
             {"op": "double_buffer", "args": ["res", 2]}, "buffers"),
    MoveSpec("interleave_loads", (("operand", "name", _R),),
             "Move: peel the first iteration of the loop of computes that follows the loads of a DRAM operand "
             "and fuse the loads' loop with the peeled computes' loop of the same extent (loads of a step, its "
             "computes, the next step's loads, ... instead of one burst of loads).",
             {"op": "interleave_loads", "args": ["B"]}, "loops"),
    MoveSpec("split_loads", (("operand", "name", _R),),
             "Move: split the loop holding the load of a DRAM operand and the computes reading it (its counter "
             "indexing the loaded buffer: one copy per iteration, e.g. after stage_buffer) into a loop of the "
             "loads and a loop of the rest, so every copy's loads are issued before the block's computes.",
             {"op": "split_loads", "args": ["A"]}, "loops"),
    MoveSpec("prefetch_loads", (("operand", "name", _R),),
             "Move: software-pipeline the loads of a DRAM operand one step ahead: in the loop over the copies "
             "of its staged buffer (the loop whose body is the loop holding the loads and the computes reading "
             "them), each step issues the next step's loads before its own computes, the first step's loads "
             "before the loop; with a pair of copies inside (one per bank), each prefetch is issued while the "
             "computes read the other copy.",
             {"op": "prefetch_loads", "args": ["A"]}, "loops"),
    MoveSpec("zero_into_compute", (),
             "Move: peel the first step of the reduction loops of every output tile and let its compute "
             "overwrite the accumulator (the instruction's non-accumulating twin) instead of zeroing it first.",
             {"op": "zero_into_compute", "args": []}, "substitute"),
]}


def implementation(name: str) -> Callable[..., Any]:
    """The expansion of move ``name``: ``fn(proc, **decisions) -> proc``."""
    spec = MOVES[name]
    mod = importlib.import_module(f"{__name__}.{spec.module}")
    return getattr(mod, name)
