"""Where each move applies on a proc's facts, and the decisions worth trying.

One source for the agents that compose moves (the offline policy and the
LLM prompts' argument lists and worked examples): which DRAM operands a
hoist can move, which loops a tile can split and by what, which loads an
interleave, a split or a prefetch takes, whether the zeroing can be folded, and how many
copies pad a buffer to whole banks. Everything is read from `ProcFacts`
(no names assumed) and capacities come from the caller's `GemminiConfig`.
"""
from __future__ import annotations

import random
from typing import Optional

from gemmini_isa import GemminiConfig

from ..proc_facts import Node, ProcFacts
from . import MoveError
from .common import init_load

__all__ = ["divisors", "loaded", "unused_loops", "compute_loops", "interchangeable", "interleavable",
           "splittable", "prefetchable", "zero_applies", "spread_choice", "staged_lead", "bank_pad",
           "half_bank_pad", "residency_swaps"]


def divisors(n: Optional[int], lo: int = 2, hi: int = 16) -> list[int]:
    """Tile factors of an extent: its divisors in [lo, min(n - 1, hi)]."""
    if not n:
        return []
    return [d for d in range(lo, min(n - 1, hi) + 1) if n % d == 0]


def loaded(f: ProcFacts) -> list[str]:
    """DRAM operands loaded by exactly one call (what `hoist_load` moves),
    except a load that starts an accumulation (`common.init_load`)."""
    loads = [c for c in f.calls("load") if c.dram_operand() is not None]
    names = [c.dram_operand().buffer for c in loads]
    init = {c.dram_operand().buffer for c in loads if init_load(c) is not None}
    return [n for n in dict.fromkeys(names) if names.count(n) == 1 and n not in init]


def unused_loops(f: ProcFacts, operand: str) -> list[Node]:
    """The loops around the load of ``operand`` whose counters it does not read."""
    x = f.loads_of(operand)[0]
    return [lp for lp in x.loops() if not x.mentions(lp.name)]


def compute_loops(f: ProcFacts) -> list[Node]:
    """Loops around the computes, outermost first (no duplicates)."""
    out: dict = {}
    for c in f.calls("compute"):
        for lp in c.loops():
            out[id(lp)] = lp
    return list(out.values())


def interchangeable(f: ProcFacts) -> list[Node]:
    """Loops whose body (besides allocations) is one loop (`interchange_loops`)."""
    return [lp for lp in f.loops() if f.loop(lp.name) is lp
            and len([b for b in lp.body if b.kind != "alloc"]) == 1 and lp.body[-1].kind == "for"]


def _where(f: ProcFacts, target) -> list[str]:
    out = []
    for o in loaded(f):
        try:
            target(f, o)
            out.append(o)
        except (MoveError, AttributeError, IndexError):
            pass
    return out


def interleavable(f: ProcFacts) -> list[str]:
    """Operands whose loads a loop of computes follows (`interleave_loads`)."""
    from .loops import _interleave_target

    return _where(f, _interleave_target)


def splittable(f: ProcFacts) -> list[str]:
    """Operands whose per-copy loads can go ahead of the computes (`split_loads`)."""
    from .loops import _split_target

    return _where(f, _split_target)


def prefetchable(f: ProcFacts) -> list[str]:
    """Operands whose loads can be issued one step ahead (`prefetch_loads`)."""
    from .loops import _prefetch_target

    return _where(f, _prefetch_target)


def zero_applies(f: ProcFacts) -> bool:
    """Whether `zero_into_compute` applies."""
    from .substitute import _target

    try:
        _target(f)
        return True
    except (MoveError, AttributeError, IndexError):
        return False


def staged_lead(f: ProcFacts, buffer: str) -> bool:
    """Whether every access of ``buffer`` indexes its leading dimension by a loop counter."""
    uses = [o for c in f.calls() for o in c.operands if o.buffer == buffer]
    return bool(uses) and all(o.index and o.index[0] for o in uses)


def spread_choice(f: ProcFacts, config: GemminiConfig,
                  rng: Optional[random.Random] = None) -> Optional[tuple[str, int, int]]:
    """(buffer, copies, at) for `spread_banks`: the first scratchpad buffer in
    program order read by the computes, when smaller than a bank, padded to
    one (the operands after it then start in another bank); or, with an
    ``rng`` (half the time) when its leading dimension holds staged copies,
    each copy padded to whole banks."""
    ops = f.compute_operands()
    bank = config.sp_bank_rows
    for al in f.allocs("GEMM_SCRATCH"):
        if al.name not in (ops.get("moving"), ops.get("stationary")):
            continue
        rows = f.rows(al)
        lead = al.dims[0] if al.dims else None
        if rng is not None and lead and lead > 1 and len(al.dims) > 2 and staged_lead(f, al.name):
            per = rows // lead
            if 0 < per < bank and rng.random() < 0.5:
                return al.name, -(-bank // per), 1
        if 0 < rows < bank:
            return al.name, -(-bank // rows), 0
        return None
    return None


def bank_pad(f: ProcFacts, config: GemminiConfig, al: Node) -> Optional[int]:
    """Copies that pad a compute operand's scratchpad buffer to whole banks
    (None when it is no operand of the computes or already a bank or more)."""
    ops = f.compute_operands()
    if al.mem != "GEMM_SCRATCH" or al.name not in (ops.get("moving"), ops.get("stationary")):
        return None
    rows, bank = f.rows(al), config.sp_bank_rows
    return -(-bank // rows) if 0 < rows < bank else None


def half_bank_pad(f: ProcFacts, config: GemminiConfig, al: Node) -> Optional[int]:
    """Copies for `spread_banks` at 1 that start each half of a buffer staged
    over a pair (leading dimension 2) on a bank boundary (None when a half
    is a bank or more already)."""
    if al.mem != "GEMM_SCRATCH" or not al.dims or al.dims[0] != 2 or len(al.dims) < 3 or not al.dims[1]:
        return None
    half, bank = f.rows(al) // 2, config.sp_bank_rows
    return -(-bank // half) if 0 < half < bank else None


def residency_swaps(f: ProcFacts, stay: str, other: list) -> list[Node]:
    """Loops whose counter the resident operand's load reads and no other
    load does, holding (besides allocations) one loop that the other loads
    read: swapped, the other loads can leave the outer loop."""
    x = f.loads_of(stay)[0]
    others = [f.loads_of(o)[0] for o in other]
    out = []
    for lp in x.loops():
        if any(y.mentions(lp.name) for y in others):
            continue
        body = [b for b in lp.body if b.kind != "alloc"]
        if len(body) == 1 and body[0].kind == "for" and any(y.mentions(body[0].name) for y in others):
            out.append(lp)
    return out
