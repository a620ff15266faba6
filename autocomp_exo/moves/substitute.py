"""Instruction substitution: the first compute of an output tile overwrites
the accumulator instead of adding to a zeroed one."""
from __future__ import annotations

import functools
from typing import Any, Optional

from ..proc_facts import Node, ProcFacts, _c_commands, instruction_role
from . import MoveError
from .common import live


@functools.lru_cache(maxsize=None)
def _twin(instr: str) -> Optional[str]:
    """The exo.platforms.gemmini instruction that issues the same commands as
    the accumulating compute ``instr`` with the same parameters, but
    overwrites (accumulate bit clear)."""
    import exo.platforms.gemmini as G
    from exo.API import Procedure

    acc = getattr(G, instr, None)
    if not isinstance(acc, Procedure):
        return None
    ops = [op for op, _ in _c_commands(acc.get_instr() or "")]
    params = [(a.name(), str(a.type())) for a in acc.args()]
    for name in sorted(dir(G)):
        q = getattr(G, name)
        if not isinstance(q, Procedure) or q is acc:
            continue
        try:
            text = q.get_instr()
        except AttributeError:   # not an instruction proc
            continue
        if not text:
            continue
        role, accumulate, _slots = instruction_role(text)
        if role != "compute" or accumulate:
            continue
        if [op for op, _ in _c_commands(text)] == ops and \
                [(a.name(), str(a.type())) for a in q.args()] == params:
            return name
    return None


def _target(f: ProcFacts):
    """(zeroing call, first accumulating compute, the compute's loop nest
    below the zeroing's scope, allocations between them) or a MoveError."""
    zs = f.calls("zero")
    if len(zs) != 1:
        raise MoveError(f"zero_into_compute needs one zeroing call, found {len(zs)}")
    z = zs[0]
    mm = next((c for c in f.calls("compute") if c.accumulate), None)
    if mm is None:
        raise MoveError("no accumulating compute")
    zl = z.parent
    if zl is None or zl.kind != "for" or len(zl.body) != 1 or not zl.extent:
        raise MoveError("the zeroing is not alone in a loop")
    sib = zl.parent.body
    i = sib.index(zl)
    skip = 0
    while i + 1 + skip < len(sib) and sib[i + 1 + skip].kind == "alloc":
        skip += 1
    if i + 1 + skip >= len(sib):
        raise MoveError("nothing follows the zeroing loop")
    l1 = sib[i + 1 + skip]
    if l1.kind != "for" or mm not in list(l1.walk()):
        raise MoveError("the computes do not follow the zeroing loop")
    chain = []
    n = mm.parent
    while n is not None and n is not zl.parent:
        if n.kind != "for" or n.lo is None or n.hi is None:
            raise MoveError("the computes sit under a loop without constant bounds or an if")
        chain.append(n)
        n = n.parent
    chain.reverse()
    if len(mm.parent.body) != 1 or mm.parent.extent != zl.extent or any(len(lp.body) != 1 for lp in chain):
        raise MoveError("the compute nest is not a perfect nest matching the zeroing loop")
    zdst = z.local_operand().buffer
    out = mm.operand("output")
    if out is None or out.buffer != zdst:
        raise MoveError("the zeroing and the computes write different buffers")
    return z, mm, chain, skip


def zero_into_compute(p: Any) -> Any:
    """Peel the first iteration of every loop of the compute nest and fuse the
    zeroing with the first compute of each tile into the overwriting twin."""
    from ..schedule import Step, _apply_step

    f = live(p)
    z, mm, chain, skip = _target(f)
    twin = _twin(mm.name)
    if twin is None:
        raise MoveError(f"{mm.name} has no non-accumulating twin among the Gemmini instructions")
    ops = {o.slot: o.buffer for o in mm.operands}
    bz, ba, bb, bc = z.local_operand().buffer, ops["moving"], ops["stationary"], ops["output"]

    def up(c, n=1):
        for _ in range(n):
            c = {"parent": c}
        return c

    P, Z, zs = f"{mm.name}(_)", f"{z.name}(_)", f"{bz}[_] = 0.0"
    steps = []
    q = len(chain)
    for d in range(q, 1, -1):
        lp = chain[q - d]
        if lp.extent > 1:
            steps.append(("cut_loop", [up(P, d), lp.lo + 1]))
        steps.append(("unroll_loop", [up(P, d)]))
    steps += [("reorder_stmts", [{"block": up(Z), "expand": [0, 1]}])] * skip
    steps += [
        ("fuse", [up(Z), {"next": up(Z)}]),
        ("inline", [Z]),
        ("inline", [P]),
        ("inline_window", [f"_ = {bz}[_] #0"]),
        ("inline_window", [f"_ = {ba}[_]"]),
        ("inline_window", [f"_ = {bb}[_]"]),
        ("inline_window", [f"_ = {bc}[_]"]),
        ("fuse", [up(zs, 2), {"next": up(zs, 2)}]),
        ("fuse", [up(zs, 1), {"next": up(zs, 1)}]),
        ("replace", [up(zs, 2), {"instr": twin}]),
        ("simplify", []),
    ]
    from ..schedule import ScheduleError

    for i, (op, args) in enumerate(steps):
        try:
            p = _apply_step(p, Step(op, args), i)
        except ScheduleError as e:
            raise MoveError(f"sub-step {i} ({op} {args}): {e.message}") from e
    return p
