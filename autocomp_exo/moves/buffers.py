"""Buffer moves: loads out of loops, staged and double-buffered allocations,
bank spreading."""
from __future__ import annotations

from typing import Any

from ..proc_facts import Node, ProcFacts, cursor_at
from . import MoveError
from .common import accumulated_in, live, unique_names


def _the_load(f: ProcFacts, operand: str) -> Node:
    loads = f.loads_of(operand)
    if not loads:
        have = sorted({c.dram_operand().buffer for c in f.calls("load") if c.dram_operand() is not None})
        raise MoveError(f"no load of {operand}; loaded operands: {', '.join(have) or 'none'}")
    if len(loads) > 1:
        raise MoveError(f"{operand} is loaded by {len(loads)} calls (hoist_load moves a single load)")
    return loads[0]


def _lift_out(p: Any, f: ProcFacts, al: Node, upto: Node, expand) -> Any:
    """Lift allocation ``al`` out of its enclosing loops up to and including
    ``upto`` (None: all), adding a dimension for each loop ``expand(loop)``."""
    from exo.stdlib.scheduling import autolift_alloc, lift_alloc

    chain = al.loops()
    if upto is not None:
        if upto not in chain:
            return p
        chain = chain[chain.index(upto):]
    if any(a.kind == "if" for a in al.ancestors()):
        raise MoveError(f"buffer {al.name} is allocated under an if")
    c = cursor_at(p, al)
    for lp in reversed(chain):
        if expand(lp):
            p = autolift_alloc(p, c, 1, "row", None, True)
        else:
            p = lift_alloc(p, c)
        # Exo does not forward cursors through lifts: the allocation now
        # stands where the loop it left stood (the loop's path is unchanged)
        c = cursor_at(p, Node("alloc", path=lp.path))
    return p


def _hoist_once(p: Any, operand: str) -> Any:
    """The load of ``operand`` out of the innermost loop whose counter it does
    not read."""
    from exo.API_cursors import InvalidCursor
    from exo.stdlib.scheduling import fission, reorder_stmts
    from exo.stdlib.stdlib import hoist_stmt

    f = live(p)
    x = _the_load(f, operand)
    if any(a.kind == "if" for a in x.ancestors()):
        raise MoveError(f"the load of {operand} is under an if")
    unused = [lp for lp in x.loops() if not x.mentions(lp.name)]
    if not unused:
        raise MoveError(f"the load of {operand} reads the counter of every loop around it")
    L = unused[-1]
    buf = x.local_operand().buffer
    al = f.alloc(buf)
    if al is None:
        raise MoveError(f"the load of {operand} writes {buf}, which is not a local allocation")
    w = accumulated_in(L, buf)
    if w is not None:
        raise MoveError(f"the load of {operand} initialises {buf}, which {w.name} accumulates into inside "
                        f"loop {L.name}: each iteration needs it again")
    # 1. its buffer outside L: a dimension for each loop in between whose counter the load reads
    p = _lift_out(p, f, al, L, lambda lp: lp is not L and x.mentions(lp.name))
    f = live(p)
    x = _the_load(f, operand)
    L = [lp for lp in x.loops() if not x.mentions(lp.name)][-1]
    Lc = cursor_at(p, L)
    cur = cursor_at(p, x)
    # 2. level by level: the statement holding the load first in its loop, split off
    while True:
        parent = cur.parent()
        if parent == Lc:
            return hoist_stmt(p, cur)
        while not isinstance(cur.prev(), InvalidCursor):
            p = reorder_stmts(p, cur.expand(1, 0))
            cur, Lc = p.forward(cur), p.forward(Lc)
        if not isinstance(cur.next(), InvalidCursor):
            p = fission(p, cur.after())
            cur, Lc = p.forward(cur), p.forward(Lc)
        cur = cur.parent()


def hoist_load(p: Any, operand: str, levels: int = 1) -> Any:
    """Take the load of DRAM operand ``operand`` out of ``levels`` loops whose
    counters it does not read (0: all), innermost first."""
    done = 0
    while levels == 0 or done < levels:
        f = live(p)
        x = _the_load(f, operand)
        if not any(not x.mentions(lp.name) for lp in x.loops()):
            if done:
                return p
            raise MoveError(f"the load of {operand} reads the counter of every loop around it")
        p = _hoist_once(p, operand)
        done += 1
    return p


def stage_buffer(p: Any, buffer: str, expand: list = ()) -> Any:
    """Allocate ``buffer`` once at the top of the proc, one copy per
    iteration of each loop named in ``expand``."""
    f = live(p)
    al = f.alloc(buffer)
    if al is None or al.mem == "DRAM":
        raise MoveError(f"no local buffer {buffer}; local buffers: "
                        f"{', '.join(a.name for a in f.allocs() if a.mem != 'DRAM') or 'none'}")
    names = {lp.name for lp in al.loops()}
    missing = [e for e in expand if e not in names]
    if missing:
        raise MoveError(f"buffer {buffer} is not allocated inside loop(s) {', '.join(missing)} "
                        f"(it is inside: {', '.join(lp.name for lp in al.loops()) or 'no loop'})")
    if not al.loops():
        raise MoveError(f"buffer {buffer} is already allocated outside every loop")
    return _lift_out(p, f, al, None, lambda lp: lp.name in expand)


def spread_banks(p: Any, buffer: str, copies: int, at: int = 0) -> Any:
    """Pad a scratchpad buffer to ``copies`` times its rows: ``at`` 0 adds a
    leading dimension of copies (copy 0 used: the buffers after it start in
    another bank); ``at`` k > 0 grows dimension k ``copies``-fold, padding
    each slice of the dimensions before it (e.g. each staged copy of a
    double buffer in banks of its own)."""
    from exo.stdlib.scheduling import expand_dim, resize_dim

    f = live(p)
    al = f.alloc(buffer)
    if al is None or al.mem != "GEMM_SCRATCH":
        raise MoveError(f"no scratchpad buffer {buffer}")
    if copies < 2:
        raise MoveError("spread_banks needs 2 or more copies")
    if at == 0:
        return expand_dim(p, cursor_at(p, al), copies, "0")
    if at >= len(al.dims) - 1 or al.dims[at] is None:
        raise MoveError(f"buffer {buffer} has no constant dimension {at} above its row (dims {list(al.dims)})")
    return resize_dim(p, cursor_at(p, al), at, int(al.dims[at]) * copies, 0)


def double_buffer(p: Any, buffer: str, factor: int = 2) -> Any:
    """Split the loop around ``buffer``'s allocation by ``factor``; the buffer
    gets a dimension for the inner counter."""
    from exo.stdlib.scheduling import autolift_alloc, divide_loop

    f = live(p)
    al = f.alloc(buffer)
    if al is None or al.mem == "DRAM":
        raise MoveError(f"no local buffer {buffer}")
    lp = al.parent
    if lp is None or lp.kind != "for" or not lp.extent or lp.extent % factor or factor < 2:
        raise MoveError(f"buffer {buffer} is not allocated directly in a loop whose extent {factor} divides")
    names = unique_names([lp.name + "o", lp.name + "i"], f.loop_names())
    p = divide_loop(p, cursor_at(p, lp), factor, names, perfect=True)
    return autolift_alloc(p, cursor_at(p, live(p).alloc(buffer)), 1, "row", None, True)
