"""What the move expansions share: facts of the live proc, nodes to cursors."""
from __future__ import annotations

from typing import Any

from ..proc_facts import Node, ProcFacts, cursor_at, facts
from . import MoveError

__all__ = ["live", "loop_node", "unique_names", "call_cursor", "MoveError"]


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
