"""Loop moves: tiling, interchange, unrolling around instruction calls."""
from __future__ import annotations

from typing import Any, Optional

from ..proc_facts import cursor_at
from . import ROLES, MoveError
from .common import live, loop_node, unique_names


def tile_loop(p: Any, loop: str, factor: int) -> Any:
    """Divide the first loop ``loop`` into ``extent/factor`` blocks of
    ``factor`` iterations (outer loop+'o', inner loop+'i')."""
    from exo.stdlib.scheduling import divide_loop

    f = live(p)
    n = loop_node(f, loop)
    if not n.extent or n.extent % factor or factor < 2:
        raise MoveError(f"factor {factor} does not divide loop {loop} ({n.extent} iterations)")
    names = unique_names([loop + "o", loop + "i"], f.loop_names())
    return divide_loop(p, cursor_at(p, n), factor, names, perfect=True)


def interchange_loops(p: Any, outer: str) -> Any:
    """Swap the loop ``outer`` with the one loop in its body. Allocations
    beside the inner loop: sunk into it and shrunk to the slice of its counter
    when their uses index one dimension by that counter, else lifted out."""
    from exo.stdlib.scheduling import lift_alloc, reorder_loops, resize_dim, sink_alloc

    f = live(p)
    o = loop_node(f, outer)
    inner = [c for c in o.body if c.kind != "alloc"]
    if len(inner) != 1 or inner[0].kind != "for":
        raise MoveError(f"the body of loop {outer} is not one loop (besides allocations)")
    iname = inner[0].name
    for al in [c for c in o.body if c.kind == "alloc"]:
        uses = [ob for c in inner[0].walk() if c.kind == "call" for ob in c.operands if ob.buffer == al.name]
        dims = {ob.dim_of(iname) for ob in uses}
        cur = cursor_at(p, al)
        if uses and len(dims) == 1 and None not in dims and al.index() < inner[0].index():
            d = dims.pop()
            p = sink_alloc(p, cur)
            # the allocation is now the first statement of the inner loop
            sunk = cursor_at(p, live(p).loops(iname)[0]).body()[0]
            p = resize_dim(p, sunk, d, 1, iname)
        else:
            p = lift_alloc(p, cur)
    f = live(p)
    return reorder_loops(p, cursor_at(p, loop_node(f, outer)))


def _targets(f, role: str, depth: int, operand: Optional[str]) -> list:
    if role not in ROLES:
        raise MoveError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    calls = f.calls(role)
    if operand is not None:
        calls = [c for c in calls if (c.dram_operand() is not None and c.dram_operand().buffer == operand)]
    if not calls:
        raise MoveError(f"no {role} call" + (f" of {operand}" if operand else ""))
    loops: dict = {}
    for c in calls:
        for lp in c.loops()[::-1][:depth]:
            if lp.extent is None:
                break
            loops[id(lp)] = lp
    if not loops:
        raise MoveError(f"no loop with constant bounds around the {role} calls")
    # innermost first: an outer loop is unrolled after the loops inside it
    return sorted(loops.values(), key=lambda n: -len(n.ancestors()))


def unroll_calls(p: Any, role: str, depth: int = 1, operand: Optional[str] = None, simplify: bool = True) -> Any:
    """Fully unroll the ``depth`` innermost loops around each ``role`` call."""
    from exo.stdlib.scheduling import simplify as _simplify, unroll_loop

    f = live(p)
    # last in program order first: unrolling a loop only rewrites statements
    # at or after its own position, so every loop still to be unrolled keeps
    # its path (no cursor forwarding, which grows with every edit)
    for n in sorted(_targets(f, role, depth, operand), key=lambda n: n.path, reverse=True):
        p = unroll_loop(p, cursor_at(p, n))
    return _simplify(p) if simplify else p


def _interleave_target(f, operand: str):
    """(S, R): S the statement holding the load of ``operand`` whose scope
    also holds R, the first later loop of at least 2 iterations whose
    computes read the loaded buffer."""
    loads = f.loads_of(operand)
    if len(loads) != 1:
        raise MoveError(f"interleave_loads needs one load of {operand}, found {len(loads)}")
    x = loads[0]
    buf = x.local_operand().buffer
    s = x
    while s.parent is not None:
        sib = s.siblings()
        for r in sib[sib.index(s) + 1:]:
            if r.kind == "for" and (r.extent or 0) >= 2 and any(
                    o.buffer == buf for c in r.calls("compute") for o in c.operands):
                if s.kind == "for":
                    _check_fusable(x, s, r, buf, operand)
                if s.kind != "for":
                    raise MoveError(f"the load of {operand} is not in a loop of its own beside the computes")
                return s, r
        s = s.parent
    raise MoveError(f"no loop of computes reading {buf} follows the load of {operand}")


def _check_fusable(x, s, r, buf: str, operand: str) -> None:
    """The first loop of ``s``'s extent with computes in ``r``'s body (the
    one `interleave_loads` fuses with the loads' loop ``s``) must index the
    loaded buffer by its counter where the load indexes it by ``s``'s."""
    d = x.local_operand().dim_of(s.name)
    for n in r.body:
        if n.kind == "for" and n.extent == s.extent and n.calls("compute"):
            reads = [o for c in n.calls("compute") for o in c.operands if o.buffer == buf]
            if d is not None and reads and all(o.dim_of(n.name) == d for o in reads):
                return
            break
    raise MoveError(f"no loop inside {r.name} steps through {buf} as the loads of {operand} do "
                    f"(nothing to fuse the loads' loop {s.name} with)")


def interleave_loads(p: Any, operand: str) -> Any:
    """Peel the first iteration of the loop of computes that follows the
    loads of ``operand`` and fuse the loads' loop with the peeled computes'
    loop of the same extent: the CPU then issues a step's loads, that step's
    computes, the next step's loads, ... instead of all loads in one burst."""
    from exo.API_cursors import ForCursor
    from exo.stdlib.scheduling import cut_loop, fuse, reorder_stmts, simplify, unroll_loop

    f = live(p)
    s, r = _interleave_target(f, operand)
    sc = cursor_at(p, s)
    p = cut_loop(p, cursor_at(p, r), r.lo + 1)
    sc = p.forward(sc)
    first = sc.next()
    while not isinstance(first, ForCursor) or first.hi().value() - first.lo().value() != 1:
        first = first.next()
    p = unroll_loop(p, first)
    sc = p.forward(sc)
    ext = s.extent
    # the peeled iteration's loop of computes with the loads' extent
    c = sc.next()
    hops = 0
    while True:
        if not c:
            raise MoveError(f"no loop of {ext} iterations in the peeled computes")
        if isinstance(c, ForCursor) and c.hi().value() - c.lo().value() == ext and _has_compute(c):
            break
        c = c.next()
        hops += 1
    for _ in range(hops):
        p = reorder_stmts(p, p.forward(sc).expand(0, 1))
    sc = p.forward(sc)
    p = fuse(p, sc, sc.next())
    return simplify(p)


def _has_compute(c) -> bool:
    """Whether the statement under cursor ``c`` contains a compute call."""
    from exo.API_cursors import CallCursor, ForCursor, IfCursor

    from ..proc_facts import instruction_role

    stack = [c]
    while stack:
        s = stack.pop()
        if isinstance(s, CallCursor):
            try:
                if instruction_role(s.subproc().get_instr())[0] == "compute":
                    return True
            except AttributeError:
                pass
        elif isinstance(s, (ForCursor, IfCursor)):
            stack.extend(s.body())
    return False


def _split_target(f, operand: str):
    """(S, L): S the statement holding the load of ``operand`` directly in
    loop L, the innermost loop around the load whose body also holds
    computes reading the loaded buffer, and whose counter indexes that buffer
    (each iteration loads its own copy, so all loads can go first)."""
    loads = f.loads_of(operand)
    if len(loads) != 1:
        raise MoveError(f"split_loads needs one load of {operand}, found {len(loads)}")
    x = loads[0]
    buf = x.local_operand().buffer
    s = x
    while s.parent is not None and s.parent.kind == "for":
        L = s.parent
        rest = [c for c in L.body if c is not s]
        if any(o.buffer == buf for r in rest for c in r.calls("compute") for o in c.operands):
            if x.local_operand().dim_of(L.name) is None:
                raise MoveError(f"the copy of {buf} that the load of {operand} writes does not depend on "
                                f"loop {L.name} (stage {buf} over {L.name} first)")
            if L.body.index(s) == len(L.body) - 1:
                raise MoveError(f"nothing follows the load of {operand} in loop {L.name}")
            return s, L
        s = L
    raise MoveError(f"no loop around the load of {operand} also holds computes reading {buf}")


def split_loads(p: Any, operand: str) -> Any:
    """Split the loop that holds the load of ``operand`` and the computes
    that read it into a loop of the loads and a loop of the rest: the CPU
    issues every copy's loads of a block before the block's computes, so a
    copy loads while the computes of the copy before it run (with the
    copies in different banks: no DMA write steals a read of the array)."""
    from exo.stdlib.scheduling import fission

    f = live(p)
    s, _ = _split_target(f, operand)
    return fission(p, cursor_at(p, s).after())


def _prefetch_target(f, operand: str):
    """(S, Lq, Lp): S and Lq as `_split_target` finds them (the loads'
    statement and the innermost loop holding loads and computes), Lp the
    loop whose body is Lq alone; both counters index the loaded buffer (a
    copy per step of Lp, the next step's loads land in copies no compute of
    this step reads)."""
    s, lq = _split_target(f, operand)
    lp = lq.parent
    x = f.loads_of(operand)[0]
    if lp is None or lp.kind != "for" or [b for b in lp.body if b.kind != "alloc"] != [lq]:
        raise MoveError(f"the loop {lq.name} around the load of {operand} is not the whole body of a loop")
    if not lp.extent or lp.extent < 2:
        raise MoveError(f"loop {lp.name} around the load of {operand} has fewer than 2 iterations")
    if x.local_operand().dim_of(lp.name) is None:
        raise MoveError(f"the copy of {x.local_operand().buffer} that the load of {operand} writes does not "
                        f"depend on loop {lp.name} (stage it over {lp.name} first)")
    return s, lq, lp


def prefetch_loads(p: Any, operand: str) -> Any:
    """Software-pipeline the loads of ``operand`` one step ahead: in the loop
    Lp stepping over the copies of the loaded buffer, step s issues the
    loads of step s + 1 before its own computes (step 0's loads go before
    the loop), so the loads of a tile run while the tile before it computes.
    When the inner loop Lq has 2 iterations (a pair of copies, e.g. one per
    bank), each prefetched copy is issued while the computes read the other
    one: its DMA writes then steal no array read from the copy being read."""
    from exo.stdlib.scheduling import cut_loop, fission, fuse, reorder_stmts, shift_loop, simplify, unroll_loop

    f = live(p)
    s, lq, lp = _prefetch_target(f, operand)
    lo, hi = int(lp.lo), int(lp.lo) + int(lp.extent)
    sc = cursor_at(p, s)
    p = fission(p, sc.after())                 # Lq: loads | rest
    sc = p.forward(sc)
    lq_loads = sc.parent()
    p = fission(p, lq_loads.after())           # Lp: {Lq loads} | {Lq rest}
    lq_loads = p.forward(lq_loads)
    lp_loads = lq_loads.parent()
    lp_rest = lp_loads.next()
    p = cut_loop(p, lp_loads, lo + 1)          # step lo's loads | steps lo+1.. loads
    lp_loads, lp_rest = p.forward(lp_loads), p.forward(lp_rest)
    ahead = lp_loads.next()
    p = cut_loop(p, lp_rest, hi - 1)           # steps ..hi-2 | the last step
    ahead, lp_rest = p.forward(ahead), p.forward(lp_rest)
    p = shift_loop(p, ahead, lo)               # the loads of step s + 1, counted from lo
    ahead, lp_rest = p.forward(ahead), p.forward(lp_rest)
    p = fuse(p, ahead, lp_rest)
    body = p.forward(ahead).body()
    pair = lq.extent == 2 and len(body) == 2
    if pair:
        loads, rest = body[0], body[1]
        n_rest = len(rest.body())
        p = unroll_loop(p, loads)              # L'0 L'1 R
        rest = p.forward(rest)
        p = unroll_loop(p, rest)               # L'0 L'1 R0.. R1..
        l0 = p.forward(ahead).body()[0]
        p = reorder_stmts(p, l0.expand(0, 1))  # L'1 L'0 R0.. R1..
        for _ in range(n_rest):                # L'1 R0.. L'0 R1..
            l0 = p.forward(l0)
            p = reorder_stmts(p, l0.expand(0, 1))
    return simplify(p)
