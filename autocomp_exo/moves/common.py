"""What the move expansions share: facts of the live proc, nodes to cursors."""
from __future__ import annotations

from typing import Any

from ..proc_facts import Node, ProcFacts, cursor_at, facts
from . import MoveError

__all__ = ["live", "loop_node", "unique_names", "call_cursor", "accumulated_in", "init_load", "MoveError"]


def live(p: Any) -> ProcFacts:
    """The facts of ``p`` now (moves re-read them after restructuring)."""
    return facts(p)


def loop_node(f: ProcFacts, name: str) -> Node:
    """The first loop with counter ``name`` (MoveError when there is none)."""
    n = f.loop(name)
    if n is None:
        raise MoveError(f"no loop {name!r}; loops: {', '.join(sorted(f.loop_names())) or 'none'}")
    return n


def unique_names(base: list[str], used: set) -> list[str]:
    """``base`` with a suffix until no name is in ``used``."""
    names = list(base)
    k = 1
    while any(n in used for n in names):
        names = [f"{b}{k}" for b in base]
        k += 1
    return names


def call_cursor(p: Any, node: Node) -> Any:
    return cursor_at(p, node)


def accumulated_in(loop: Node, buf: str) -> "Node | None":
    """A call inside ``loop`` that accumulates into ``buf`` (a load into such
    a buffer starts the sum: a bias broadcast, not a loop-invariant operand)."""
    for n in loop.walk():
        if n.kind == "call" and n.accumulate and n.role == "compute":
            if any(o.buffer == buf and o.slot == "output" for o in n.operands):
                return n
    return None


def init_load(x: Node) -> "Node | None":
    """For a load ``x``: the innermost loop around it whose counter it does not
    read, when a compute in that loop accumulates into the load's buffer (the
    load starts a sum each iteration: a hoist would change the result)."""
    unused = [lp for lp in x.loops() if not x.mentions(lp.name)]
    lo = x.local_operand()
    if not unused or lo is None:
        return None
    return unused[-1] if accumulated_in(unused[-1], lo.buffer) is not None else None
