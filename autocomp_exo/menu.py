"""The optimization menu (the Autocomp paper's categories, BENCHMARKS.md) and dropout.

Each :class:`MenuOption` has a short ``key`` (recorded in every schedule step
an agent produces, as the step's ``menu`` label), a title, and a description
of what it means on Gemmini in Exo terms (for prompts and for people).

``dropout(menu, p, rng)`` drops every option independently with probability
``p`` and never returns an empty menu (if everything was dropped, one option
chosen by ``rng`` is kept).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["MenuOption", "MENU", "KEYS", "option", "dropout", "describe"]


@dataclass(frozen=True)
class MenuOption:
    key: str
    title: str
    description: str

    def to_dict(self) -> dict:
        return {"key": self.key, "title": self.title, "description": self.description}


MENU: tuple[MenuOption, ...] = (
    MenuOption(
        "tiling", "loop tiling",
        "Split a loop (divide_loop) into an outer and an inner loop so that a tile of rows of "
        "A / C (i), columns of B / C (j) or the reduction (k) is handled together; tile sizes "
        "must divide the loop and the tile's operands must fit the 16384-row scratchpad and the "
        "1024-row accumulator."),
    MenuOption(
        "reorder", "loop reordering",
        "Swap two nested loops (reorder_loops) so that the operand that stays the same in the "
        "inner loop is loaded once and reused by the array (e.g. j outside the row tiles of a "
        "block)."),
    MenuOption(
        "split", "splitting loops",
        "Fission a loop body (fission / autofission) into separate loops, e.g. the loads of an "
        "operand away from the computes, so each part can be hoisted or reordered."),
    MenuOption(
        "fuse", "fusing loops",
        "Fuse adjacent loops with the same bounds (fuse) so the zero / compute / store phases of "
        "an output tile share one loop and one pass of loop overhead."),
    MenuOption(
        "simplify", "simplifying arithmetic and propagating constants",
        "Simplify index arithmetic (simplify) so the CPU computes fewer scalar operations per "
        "Gemmini command; constant scratchpad offsets after unrolling."),
    MenuOption(
        "reorder_stmts", "reordering statements or blocks",
        "Move statements past each other (reorder_stmts), e.g. issue the loads of the next tile "
        "before the computes of this one, or move a load to the top of its loop body."),
    MenuOption(
        "unroll", "unrolling",
        "Fully unroll a small inner loop (unroll_loop) around preload/compute, mvin or mvout "
        "calls: straight-line RoCC commands with constant local addresses, less loop control."),
    MenuOption(
        "double_buffer", "double buffering",
        "Give a scratchpad or accumulator buffer a leading dimension indexed by an inner loop "
        "counter (autolift_alloc / expand_dim after a 2-way split) so consecutive tiles use "
        "distinct local rows: loads of the next tile do not wait for the computes of this one."),
    MenuOption(
        "scratchpad_reuse", "moving more data into the scratchpad at an outer loop to reuse it",
        "Allocate an operand at an outer loop with a dimension per tile (lift_alloc / "
        "autolift_alloc) and load it there, so the array reuses it across the inner loops "
        "instead of reloading it (e.g. all of B resident, or the A strips of an i block)."),
    MenuOption(
        "spread", "spreading data over the scratchpad instead of reloading one place",
        "Use distinct scratchpad / accumulator rows for distinct tiles (a dimension per tile) "
        "rather than one place reloaded every iteration: removes write-after-read waits."),
    MenuOption(
        "guarded_loads", "loading once across outer iterations with if guards",
        "Load an operand only on the first iteration of the loops it does not depend on (the "
        "checked form: move the load to the top of the loop body, fission after it and remove "
        "the loop around it), keeping it resident for the remaining iterations."),
    MenuOption(
        "hoist", "hoisting redundant operations out of loops",
        "Move loop-invariant work (configs, loads that do not use the loop counter, "
        "allocations) out of the loops (lift_config, lift_alloc, fission + remove_loop)."),
    MenuOption(
        "substitute", "substituting faster equivalent operations",
        "Replace an instruction sequence by an equivalent cheaper one (replace / call_eqv), "
        "e.g. wider mvins, or fewer commands per tile."),
    MenuOption(
        "pipeline", "pipelining to overlap data movement and compute",
        "Arrange loads, computes and stores so the load, execute and store units work at the "
        "same time: distinct buffers per stage and loads issued ahead of their computes."),
    MenuOption(
        "min_data_movement", "minimizing data movement",
        "Reduce DRAM traffic: keep the larger operand resident, reuse B strips across the row "
        "tiles of a block, avoid reloading A for every column tile."),
    MenuOption(
        "min_loop_overhead", "minimizing loop overhead",
        "Fewer loop iterations and less scalar work per Gemmini command: unroll, merge loops, "
        "lift the loads, keep addresses constant."),
    MenuOption(
        "other", "anything else",
        "Any other correct transformation that makes the program faster on Gemmini."),
)

KEYS: tuple[str, ...] = tuple(o.key for o in MENU)
_BY_KEY = {o.key: o for o in MENU}


def option(key: str) -> MenuOption:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown menu option {key!r}; known: {', '.join(KEYS)}") from None


def dropout(menu: Sequence[MenuOption] | None = None, p: float = 0.7,
            rng: random.Random | None = None) -> list[MenuOption]:
    """Drop each option independently with probability ``p``; never empty.

    The order of the surviving options is the menu's order. With ``p <= 0``
    the whole menu is returned; with ``p >= 1`` exactly one option survives.
    """
    menu = list(MENU if menu is None else menu)
    if not menu:
        raise ValueError("the menu is empty")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout must be in [0, 1], got {p!r}")
    rng = rng or random.Random(0)
    kept = [o for o in menu if rng.random() >= p]
    if not kept:
        kept = [menu[rng.randrange(len(menu))]]
    return kept


def describe(menu: Iterable[MenuOption] | None = None) -> str:
    """The menu as prompt text, one option per line."""
    return "\n".join(f"- [{o.key}] {o.title}: {o.description}" for o in (MENU if menu is None else menu))
