"""What each move does to a proc's facts, without Exo.

`predict(facts, op, decisions)` returns the `ProcFacts` the proc would have
after the move (a copy; MoveError when the move does not apply), following
the rules of the expansions in `loops` and `buffers`: the offline agent
composes several moves in one plan and checks the buffers of the result
against the `GemminiConfig` before anything is sent to a worker. Unrolling
and substitution change no loop the other moves read: their prediction
only counts calls (code size).
"""
from __future__ import annotations

from typing import Any, Optional

from ..proc_facts import Node, Operand, ProcFacts
from . import MOVES, MoveError
from .common import unique_names

__all__ = ["predict", "unrolled_calls"]


def _copy(f: ProcFacts) -> ProcFacts:
    return ProcFacts.from_json(f.to_json())


def _refresh(f: ProcFacts) -> ProcFacts:
    """Re-link parents after edits (the facts keep their node list)."""
    def link(n: Node, parent: Optional[Node]) -> None:
        n.parent = parent
        for c in n.children():
            link(c, n)
    link(f.root, None)
    return ProcFacts(f.root, f.args)


def _first_loop(f: ProcFacts, name: str) -> Node:
    n = f.loop(name)
    if n is None:
        raise MoveError(f"no loop {name!r}")
    return n


def _rename_var(n: Node, old: str, new: tuple) -> None:
    """Statements under ``n`` that read ``old`` read all of ``new`` instead."""
    for s in n.walk():
        if old in s.reads:
            s.reads = tuple(v for v in s.reads if v != old) + new
        ops = []
        for o in s.operands:
            vars_ = tuple(v for v in o.vars if v != old) + (new if old in o.vars else ())
            index = tuple(tuple(v for v in ix if v != old) + (new if old in ix else ()) for ix in o.index)
            ops.append(Operand(o.param, o.slot, o.buffer, o.mem, vars_, index))
        s.operands = tuple(ops)


def _prepend_index(f: ProcFacts, buffer: str, comps: tuple) -> None:
    """Every access of ``buffer`` gains leading index components (each a
    tuple of the loop counters it reads), as the buffer gains leading dims."""
    for s in f.root.walk():
        if not s.operands:
            continue
        ops = []
        for o in s.operands:
            if o.buffer == buffer:
                extra = tuple(v for c in comps for v in c if v not in o.vars)
                o = Operand(o.param, o.slot, o.buffer, o.mem, tuple(o.vars) + extra, tuple(comps) + tuple(o.index))
            ops.append(o)
        s.operands = tuple(ops)


def _tile(f: ProcFacts, loop: str, factor: int) -> ProcFacts:
    t = _first_loop(f, loop)
    if not t.extent or t.extent % factor or factor < 2:
        raise MoveError(f"factor {factor} does not tile loop {loop} ({t.extent})")
    on, inn = unique_names([loop + "o", loop + "i"], f.loop_names())
    inner = Node("for", name=inn, lo=0, hi=factor, body=t.body)
    _rename_var(inner, loop, (on, inn))
    t.name, t.lo, t.hi, t.body = on, 0, t.extent // factor, [inner]
    return _refresh(f)


def _interchange(f: ProcFacts, outer: str) -> ProcFacts:
    o = _first_loop(f, outer)
    loops = [c for c in o.body if c.kind != "alloc"]
    if len(loops) != 1 or loops[0].kind != "for":
        raise MoveError(f"the body of loop {outer} is not one loop (besides allocations)")
    inner = loops[0]
    up = o.parent.body
    for al in [c for c in o.body if c.kind == "alloc"]:
        uses = [ob for c in inner.walk() if c.kind == "call" for ob in c.operands if ob.buffer == al.name]
        dims = {ob.dim_of(inner.name) for ob in uses}
        if uses and len(dims) == 1 and None not in dims and o.body.index(al) < o.body.index(inner):
            d = dims.pop()
            al.dims = tuple(1 if i == d else x for i, x in enumerate(al.dims))
            inner.body.insert(0, al)
        else:
            up.insert(up.index(o), al)
    o.body = [inner]
    for k in ("name", "lo", "hi"):
        a, b = getattr(o, k), getattr(inner, k)
        setattr(o, k, b)
        setattr(inner, k, a)
    return _refresh(f)


def _the_load(f: ProcFacts, operand: str) -> Node:
    loads = f.loads_of(operand)
    if len(loads) != 1:
        raise MoveError(f"{operand} is loaded by {len(loads)} calls")
    return loads[0]


def _hoist_once(f: ProcFacts, operand: str) -> bool:
    x = _the_load(f, operand)
    chain = x.loops()
    unused = [lp for lp in chain if not x.mentions(lp.name)]
    if not unused or any(a.kind == "if" for a in x.ancestors()):
        return False
    L = unused[-1]
    al = f.alloc(x.local_operand().buffer)
    if al is None:
        raise MoveError(f"the load of {operand} does not write a local allocation")
    al_loops = al.loops()
    between = chain[chain.index(L) + 1:]
    if L not in al_loops and between:
        # the buffer (staged) is allocated outside L: Exo cannot split the
        # loops between L and the load away from the computes (the copies the
        # computes of a later iteration read are rewritten)
        raise MoveError(f"the buffer of the load of {operand} is allocated outside loop {L.name}: hoist the "
                        f"load before staging its buffer")
    if L in al_loops:
        grow = [lp.extent or 1 for lp in al_loops[al_loops.index(L) + 1:] if x.mentions(lp.name)]
        al.dims = tuple(grow) + tuple(al.dims)
        _prepend_index(f, al.name, tuple((lp.name,) for lp in al_loops[al_loops.index(L) + 1:]
                                         if x.mentions(lp.name)))
        al.parent.body.remove(al)
        L.parent.body.insert(L.parent.body.index(L), al)
    # a copy of the loops between L and the load around the load alone, before L
    x.parent.body.remove(x)
    # the loops that held only the load go with it (fission leaves no empty loop)
    emptied = x.parent
    while emptied is not L and emptied.kind == "for" and not emptied.body:
        emptied.parent.body.remove(emptied)
        emptied = emptied.parent
    node = x
    for lp in reversed(between):
        node = Node("for", name=lp.name, lo=lp.lo, hi=lp.hi, body=[node])
    L.parent.body.insert(L.parent.body.index(L), node)
    return True


def _hoist(f: ProcFacts, operand: str, levels: int) -> ProcFacts:
    done = 0
    while levels == 0 or done < levels:
        if not _hoist_once(f, operand):
            if done:
                break
            raise MoveError(f"the load of {operand} reads the counter of every loop around it")
        f = _refresh(f)
        done += 1
    return f


def _stage(f: ProcFacts, buffer: str, expand: list) -> ProcFacts:
    al = f.alloc(buffer)
    if al is None or al.mem == "DRAM":
        raise MoveError(f"no local buffer {buffer}")
    chain = al.loops()
    if not chain:
        raise MoveError(f"buffer {buffer} is already allocated outside every loop")
    names = [lp.name for lp in chain]
    if any(e not in names for e in expand):
        raise MoveError(f"buffer {buffer} is not inside loop(s) {expand}")
    al.dims = tuple(lp.extent or 1 for lp in chain if lp.name in expand) + tuple(al.dims)
    _prepend_index(f, buffer, tuple((lp.name,) for lp in chain if lp.name in expand))
    al.parent.body.remove(al)
    f.root.body.insert(0, al)
    return _refresh(f)


def _spread(f: ProcFacts, buffer: str, copies: int, at: int = 0) -> ProcFacts:
    al = f.alloc(buffer)
    if al is None or al.mem != "GEMM_SCRATCH" or copies < 2:
        raise MoveError(f"no scratchpad buffer {buffer} (or fewer than 2 copies)")
    if at == 0:
        al.dims = (copies,) + tuple(al.dims)
        _prepend_index(f, buffer, ((),))
        return f
    if at >= len(al.dims) - 1 or al.dims[at] is None:
        raise MoveError(f"buffer {buffer} has no constant dimension {at} above its row")
    al.dims = tuple(d * copies if i == at else d for i, d in enumerate(al.dims))
    return f


def _double_buffer(f: ProcFacts, buffer: str, factor: int) -> ProcFacts:
    al = f.alloc(buffer)
    lp = al.parent if al is not None else None
    if lp is None or lp.kind != "for" or not lp.extent or lp.extent % factor or factor < 2:
        raise MoveError(f"buffer {buffer} is not allocated directly in a loop that {factor} divides")
    f = _tile(f, lp.name, factor) if factor < lp.extent else f
    al = f.alloc(buffer)
    al.dims = (factor,) + tuple(al.dims)
    _prepend_index(f, buffer, ((al.parent.name,),))
    outer = al.parent.parent
    al.parent.body.remove(al)
    outer.body.insert(outer.body.index(al.parent) if al.parent in outer.body else 0, al)
    return _refresh(f)


def unrolled_calls(f: ProcFacts, role: str, depth: int, operand: Optional[str] = None) -> int:
    """The number of calls of the proc after `unroll_calls` (each call is
    copied by the product of the extents of the unrolled loops around it)."""
    from .loops import _targets

    targets = {id(n) for n in _targets(f, role, depth, operand)}
    total = 0
    for c in f.calls():
        k = 1
        for lp in c.loops():
            if id(lp) in targets:
                k *= lp.extent or 1
        total += k
    return total


def predict(f: ProcFacts, op: str, decisions: dict) -> ProcFacts:
    """The facts after move ``op`` with ``decisions`` (keyword arguments)."""
    if op not in MOVES:
        raise MoveError(f"unknown move {op!r}")
    g = _copy(f)
    d = dict(decisions)
    if op == "tile_loop":
        return _tile(g, d["loop"], d["factor"])
    if op == "interchange_loops":
        return _interchange(g, d["outer"])
    if op == "hoist_load":
        return _hoist(g, d["operand"], d.get("levels", 1))
    if op == "stage_buffer":
        return _stage(g, d["buffer"], list(d.get("expand", [])))
    if op == "spread_banks":
        return _spread(g, d["buffer"], d["copies"], d.get("at", 0))
    if op == "double_buffer":
        return _double_buffer(g, d["buffer"], d.get("factor", 2))
    if op == "zero_into_compute":
        return _zero_folded(g)
    if op == "split_loads":
        return _split(g, d["operand"])
    if op == "prefetch_loads":
        from .loops import _prefetch_target

        _prefetch_target(g, d["operand"])   # applies or raises; the pipelined nest is not modelled
        return g
    return g   # unroll_calls, interleave_loads: the loops the other moves read are unchanged


def _split(f: ProcFacts, operand: str) -> ProcFacts:
    """The loop around the load cut in two after the load's statement."""
    from .loops import _split_target

    s, L = _split_target(f, operand)
    k = L.body.index(s) + 1
    first = Node("for", name=L.name, lo=L.lo, hi=L.hi, body=L.body[:k])
    L.body = L.body[k:]
    up = L.parent.body
    up.insert(up.index(L), first)
    return _refresh(f)


def _zero_folded(f: ProcFacts) -> ProcFacts:
    """No zeroing left (its loop goes with it); the peeled compute nest is
    not modelled (the moves after this one read no loop of it)."""
    for z in f.calls("zero"):
        z.parent.body.remove(z)
        node = z.parent
        while node.kind == "for" and not node.body:
            node.parent.body.remove(node)
            node = node.parent
    return _refresh(f)
