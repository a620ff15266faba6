"""Alternative decisions for a move that does not fit a new shape.

`transfer.adapt` replays a recorded schedule's moves on another GEMM shape
with their recorded decisions. Some decisions are tied to the old shape: a
tile factor that no longer divides the loop, an unroll or a staged buffer
that makes the code or the buffers too big, a bank pad sized for the old
buffer. Instead of guessing integers from the old shape, `alternatives`
reads the candidates from the *new* proc's facts (the loop's extent now, the
buffer's rows now), closest to the recorded decision first, so the replay
keeps the record's intent as far as the new shape allows. Pure facts: no Exo.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from gemmini_isa import GemminiConfig

from ..proc_facts import ProcFacts
from . import MOVES

__all__ = ["alternatives", "decisions_of"]


def decisions_of(op: str, args: list, kwargs: Optional[dict] = None) -> dict:
    """A move step's decisions by name (positional ``args`` in the order of
    ``MOVES[op].params``, then ``kwargs``, then the defaults)."""
    out: dict = {}
    kwargs = kwargs or {}
    for i, (name, _kind, default) in enumerate(MOVES[op].params):
        if i < len(args):
            out[name] = args[i]
        elif name in kwargs:
            out[name] = kwargs[name]
        elif default is not ...:
            out[name] = default
    return out


def _tile(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Divisors of the loop's extent now, by ratio to the recorded factor (and
    to that factor scaled by the extent ratio, when the old extent is known)."""
    lp = f.loop(d["loop"])
    e = lp.extent if lp is not None else None
    q = d.get("factor")
    if not e or not isinstance(q, int) or q < 1:
        return []
    targets = [float(q)]
    o = old.loop(d["loop"]) if old is not None else None
    if o is not None and o.extent:
        targets.append(max(q * e / o.extent, 1.0))
    divs = [k for k in range(2, e) if e % k == 0]
    divs.sort(key=lambda k: (min(abs(math.log(k / t)) for t in targets), k))
    return [{"factor": k} for k in divs]


def _unroll(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Fewer unrolled levels (less straight-line code)."""
    return [{"depth": k} for k in range(int(d.get("depth", 1)) - 1, 0, -1)]


def _hoist(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Out of fewer loops (a smaller hoisted buffer): all of them -> one."""
    n = int(d.get("levels", 1))
    return [{"levels": 1}] if n == 0 else [{"levels": k} for k in range(n - 1, 0, -1)]


def _stage(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Fewer copies: the loops the buffer is still inside, then one loop fewer
    at a time, down to none."""
    expand = list(d.get("expand") or [])
    al = f.alloc(d["buffer"])
    if al is not None:
        around = {lp.name for lp in al.loops()}
        expand = [e for e in expand if e in around]
    return [{"expand": expand[:k]} for k in range(len(expand), -1, -1)]


def _spread(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Enough copies of the buffer as it is now to fill one bank."""
    al = f.alloc(d["buffer"])
    rows = ProcFacts.rows(al) if al is not None else 0
    if not rows or rows >= cfg.sp_bank_rows:
        return []
    n = -(-cfg.sp_bank_rows // rows)
    return [{"copies": n}] if n >= 2 else []


def _double(f: ProcFacts, d: dict, cfg: GemminiConfig, old: Optional[ProcFacts]) -> list[dict]:
    """Two copies (the smallest double buffer)."""
    return [{"factor": 2}] if int(d.get("factor", 2)) > 2 else []


_RESAMPLE: dict[str, Callable[..., list[dict]]] = {
    "tile_loop": _tile, "unroll_calls": _unroll, "hoist_load": _hoist, "stage_buffer": _stage,
    "spread_banks": _spread, "double_buffer": _double,
}


def alternatives(facts: ProcFacts, op: str, decisions: dict, config: Any = None, *,
                 old_facts: Optional[ProcFacts] = None) -> list[dict]:
    """Ordered alternative decision dicts (complete, each different from
    ``decisions``) for move ``op`` on the proc whose facts are ``facts``, when
    the recorded ``decisions`` failed or overflowed there. ``old_facts``: the
    facts of the record's own proc before the step (tile factors then also try
    the recorded factor scaled by the loop's extent ratio). [] when the move
    has no shape-dependent decision."""
    fn = _RESAMPLE.get(op)
    if fn is None:
        return []
    out: list[dict] = []
    for change in fn(facts, decisions, config or GemminiConfig(), old_facts):
        alt = {**decisions, **change}
        if alt != decisions and alt not in out:
            out.append(alt)
    return out
