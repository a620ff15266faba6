"""The offline agent: a policy over the move library (no LLM).

It reads the candidate's structure from its `ProcFacts` (sent by the worker
that evaluated it): which DRAM operands are loaded inside which loops, which
loop counters each load reads, the local buffers with their shapes and
memories, the calls of each instruction role. Nothing is known by name: the
operands, loops and buffers a plan touches are found by those rules.

A *tactic* samples one plan's decisions and writes it as move steps (macro
ops of `autocomp_exo.schedule`, expanded by `autocomp_exo.moves` on the live
proc). Tactics compose moves; each composed step is checked on the facts
predicted by `moves.predict`, and a plan whose buffers would not fit the
scratchpad or accumulator of the search's `GemminiConfig` is never proposed.

``reuse``        keep one operand's tiles resident: optionally tile a loop the
                 other operand's loads read, optionally swap the tile loop
                 with the loop inside it, take the loads out of the loops
                 whose counters they do not read, stage buffers over the
                 tile loop (double buffering; each copy optionally padded
                 to whole banks), then (seven plans in ten) an ending
                 (below). Instead of the tile, a loop only the resident
                 operand reads may be swapped with the loop inside it
                 that the others read.
                 Or software-pipelined: the tile loop split into pairs,
                 a copy of every tile buffer per tile with the two copies
                 of a pair a bank apart, the other operand's loads issued
                 one pair ahead (`prefetch_loads`), the zeroing folded,
                 often the computes unrolled one level
``hoist``        one load out of loops it does not depend on
``tile``         split one loop around the computes
``interchange``  swap a loop with the one loop in its body
``stage``        allocate a buffer once, one copy per iteration of a small loop
``double_buffer`` split the loop around a buffer and give it a copy per half
``spread``       a scratchpad buffer padded to whole banks (operands of a
                 compute in different banks)
``zero``         the first compute of each tile overwrites instead of a zeroing
``interleave``   the loads of a step issued between the computes of the step before
``split``        every copy's loads of a block issued before the block's computes
``unroll``       the innermost loops around an instruction role unrolled

Endings (sampled at the end of ``reuse``): a bank spread (the whole buffer
or each staged copy), loads split ahead of the computes, then the zeroing
folded into the computes or loads interleaved with them, and (one plan in
twenty) unrolling within a code-size cap. Which tactic a plan takes is biased
by what limits the candidate (`Candidate.bottleneck`); moves Exo refused
after a prefix are not proposed again (`OfflineAgent.notify`).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from gemmini_isa import GemminiConfig

from ..menu import MenuOption
from ..moves import MoveError
from ..moves.applicable import (bank_pad, compute_loops, divisors, half_bank_pad, interchangeable,
                                interleavable, loaded, prefetchable, residency_swaps, splittable,
                                spread_choice, unused_loops, zero_applies)
from ..moves.common import unique_names
from ..moves.predict import predict, unrolled_calls
from ..proc_facts import ProcFacts
from .base import Agent, Candidate, Plan

__all__ = ["OfflineAgent", "TACTICS", "OPTION_TACTICS"]

PIPELINE = 0.5           # how often a tiled reuse plan is software-pipelined
BARE = 0.3               # how often a reuse plan stops before its ending

MAX_CALLS = 320          # straight-line code cap when the unrolled code is simplified
MAX_CALLS_RAW = 600      # cap without simplify (Exo's simplify is slow on long bodies)
# Exo's fission / reorder / lift recurse over the statements of a block: on the
# long straight-line bodies deep unrolling leaves they hit the recursion limit
RESTRUCTURE_MAX_CALLS = 120
UNROLL_ENDING = 0.05     # how often a restructuring plan ends unrolled (rarely faster under
                         # timing v2: loop overhead is cheap, long straight-line code misses the I-cache)
_FAILED_STEP = re.compile(r"step (\d+) \(")   # ScheduleError: "step 74 (hoist_load) [...]"


@dataclass
class View:
    """The candidate as the policy sees it; ``refused`` holds the moves Exo
    refused after a schedule prefix (see `OfflineAgent.notify`)."""

    facts: ProcFacts
    config: GemminiConfig
    cand: Candidate
    refused: frozenset = frozenset()


def _step_key(op: str, args: Sequence) -> str:
    return json.dumps([op, list(args)], sort_keys=True, default=str)


def _refusal_key(prefix: Sequence[str], op: str, args: Sequence) -> str:
    """A move (its op and first decision) after a schedule prefix (step keys)."""
    h = hashlib.sha256("\n".join(prefix).encode()).hexdigest()[:20]
    return f"{h}:{op}:{json.dumps(list(args)[:1], default=str)}"


class Composer:
    """Moves appended one by one, each checked on the predicted facts."""

    def __init__(self, view: View):
        self.view = view
        self.facts = view.facts
        self.steps: list[tuple[str, dict]] = []
        self._prefix = [_step_key(st.op, st.args) for st in getattr(view.cand.schedule, "steps", ())]

    def fits(self, f: ProcFacts) -> bool:
        return f.over_capacity(self.view.config) == ""

    def add(self, op: str, **decisions) -> bool:
        """Append the move when it applies and the result fits; say whether it did."""
        try:
            g = predict(self.facts, op, decisions)
        except (MoveError, KeyError, ValueError, AttributeError):
            return False
        if not self.fits(g):
            return False
        args = self._args(op, decisions)
        if self.view.refused and _refusal_key(self._prefix, op, args) in self.view.refused:
            return False
        self.facts = g
        self.steps.append((op, decisions))
        self._prefix = self._prefix + [_step_key(op, args)]
        return True

    @staticmethod
    def _args(op: str, d: dict) -> list:
        from ..schedule import OPS

        return [d[p.name] for p in OPS[op].params if p.name in d]

    def step_dicts(self) -> list[dict]:
        return [{"op": op, "args": self._args(op, d), "kwargs": {}} for op, d in self.steps]


def _short(f: ProcFacts) -> bool:
    return f.n_calls() <= RESTRUCTURE_MAX_CALLS


# --------------------------------------------------------------------------- #
# Endings
# --------------------------------------------------------------------------- #

def _ending(c: Composer, rng: random.Random, p_spread: float = 0.7) -> None:
    """Bank spread, loads split ahead of the computes, the zeroing folded
    into the computes or loads interleaved with them, then unrolling (each
    sampled)."""
    sp = spread_choice(c.facts, c.view.config, rng)
    if sp and rng.random() < p_spread:
        c.add("spread_banks", buffer=sp[0], copies=sp[1], at=sp[2])
    split = splittable(c.facts)
    did_split = bool(split) and rng.random() < 0.7 and c.add("split_loads", operand=rng.choice(split))
    # the zeroing fold or an interleave: the fold after an interleave sees two
    # zeroings (a peeled tile) and refuses; an interleave after the fold is
    # left to a child (the predicted facts do not model the fold's peel,
    # the child's facts from the worker do)
    folded = zero_applies(c.facts) and rng.random() < 0.6 and c.add("zero_into_compute")
    inter = [] if did_split or folded else interleavable(c.facts)
    if inter and rng.random() < 0.6:
        c.add("interleave_loads", operand=rng.choice(inter))
    # unrolled code can no longer be restructured (Exo's fission and lifts
    # on long bodies, the zeroing fold): a restructuring plan seldom ends
    # unrolled; the unroll tactic refines the children the CPU limits
    r = rng.random()
    if r < UNROLL_ENDING:
        _unroll(c, rng, simplify=r < UNROLL_ENDING / 3)


def _unroll(c: Composer, rng: random.Random, simplify: bool, role: Optional[str] = None) -> bool:
    """Unroll loops around one role (computes first, most of the commands)
    as deep as the code-size cap allows (sampled depth), then the zeroing
    and store loops one level."""
    f = c.facts
    cap = MAX_CALLS if simplify else MAX_CALLS_RAW
    roles = [role] if role else ["compute"]
    done = False
    for r in roles:
        if not f.calls(r):
            continue
        depths = [d for d in range(1, 6) if _calls_after(f, r, d) <= cap]
        if not depths:
            continue
        d = rng.choice(depths[-2:]) if len(depths) > 1 and rng.random() < 0.5 else depths[-1]
        done = c.add("unroll_calls", role=r, depth=d, operand=None, simplify=False) or done
    if role is None:
        for r in ("zero", "store"):
            if c.facts.calls(r) and _calls_after(c.facts, r, 1) <= cap + 64:
                c.add("unroll_calls", role=r, depth=1, operand=None, simplify=False)
    if done and simplify and c.steps:
        op, d = c.steps[-1]
        c.steps[-1] = (op, dict(d, simplify=True))
    return done


def _calls_after(f: ProcFacts, role: str, depth: int) -> int:
    try:
        return unrolled_calls(f, role, depth)
    except MoveError:
        return 1 << 30


# --------------------------------------------------------------------------- #
# Tactics: sample(view, rng) -> Composer | None
# --------------------------------------------------------------------------- #

def _reuse(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    ops = loaded(f)
    if len(ops) < 2 or not _short(f):
        return None
    c = Composer(v)
    stay = rng.choice(ops)                       # the operand kept resident
    other = [o for o in ops if o != stay]
    # a loop the other operands' loads read and the resident one's does not
    tiles = [lp for lp in unused_loops(f, stay) if lp in compute_loops(f)
             and any(f.loads_of(o)[0].mentions(lp.name) for o in other)]
    tiled = None
    # or no tile: swap a loop only the resident operand reads with the loop
    # inside it that the others read (their loads can then leave it)
    swaps = residency_swaps(f, stay, other)
    r = rng.random()
    if swaps and r < 0.2:
        c.add("interchange_loops", outer=rng.choice(swaps).name)
    elif tiles and r < 0.92:
        t = rng.choice(tiles)
        fs = divisors(t.extent)
        # half the time the largest tile first (the resident operand's tile
        # is reused by every step of it; staging then refuses what does not fit)
        if rng.random() < 0.5:
            fs.reverse()
        else:
            rng.shuffle(fs)
        if len(other) == 1 and rng.random() < PIPELINE:
            for x in [x for x in fs if x % 2 == 0 and x >= 4]:   # pairs, at least two of them
                pc = Composer(v)
                if _pipelined(pc, rng, t, x, stay, other[0]):   # the first factor whose copies fit
                    return pc
        for fac in fs:
            names = unique_names([t.name + "o", t.name + "i"], f.loop_names())   # tile_loop's names
            if c.add("tile_loop", loop=t.name, factor=fac):
                tiled = names[1]
                break
    if tiled and rng.random() < 0.5:
        c.add("interchange_loops", outer=tiled)
    for o in rng.sample(ops, len(ops)):
        if o == stay:
            lv = rng.choice([0, 0, 1])
            if not c.add("hoist_load", operand=o, levels=lv) and lv == 0:
                c.add("hoist_load", operand=o, levels=1)     # all of it does not fit: one level
        else:
            c.add("hoist_load", operand=o, levels=1)
    if tiled:
        for al in list(c.facts.allocs()):
            if al.mem == "DRAM" or tiled not in [lp.name for lp in al.loops()]:
                continue
            if rng.random() < 0.85:
                pad = bank_pad(c.facts, c.view.config, al)
                if pad and rng.random() < 0.5:
                    # each copy in banks of its own: one copy loads while the
                    # computes read another (a DMA write steals array reads)
                    c.add("spread_banks", buffer=al.name, copies=pad)
                c.add("stage_buffer", buffer=al.name, expand=[tiled])
    if not c.steps:
        return None
    # without an ending sometimes: the bare structure can enter the beam and
    # take each ending (or another) as a plan of its own; an ending chosen in
    # the same plan closes off the others (e.g. an interleave the zeroing fold)
    if rng.random() >= BARE:
        _ending(c, rng)
    return c


def _pipelined(c: Composer, rng: random.Random, t, fac: int, stay: str, other: str) -> bool:
    """The software-pipelined form of reuse: loop ``t`` tiled by ``fac`` and
    its tile loop into pairs; the other operand's tiles (and every buffer of
    the tile) get a copy per tile, the two copies of a pair in different
    banks; the loads of each pair are issued one pair ahead (while the pair
    before computes) and, in a pair, while the computes read the other copy;
    then the zeroing folded and (often) the compute loops unrolled one level
    (with the loads ahead, the CPU's issue is what is left). False when a
    step does not apply (the caller drops the composer)."""
    f = c.facts
    ti = unique_names([t.name + "o", t.name + "i"], f.loop_names())[1]
    if not c.add("tile_loop", loop=t.name, factor=fac):
        return False
    po, pi = unique_names([ti + "o", ti + "i"], c.facts.loop_names())
    if not (c.add("tile_loop", loop=ti, factor=2) and c.add("interchange_loops", outer=po)):
        return False
    if not c.add("hoist_load", operand=other, levels=1):
        return False
    # the pipelined buffer staged first: allocated first, its halves start on bank boundaries
    buf = c.facts.loads_of(other)[0].local_operand().buffer
    if not c.add("stage_buffer", buffer=buf, expand=[po, pi]):
        return False
    lv = rng.choice([0, 0, 1])
    if not c.add("hoist_load", operand=stay, levels=lv) and lv == 0:
        c.add("hoist_load", operand=stay, levels=1)
    for al in list(c.facts.allocs()):
        # every buffer of the tile gets its copies (or the loads cannot go ahead)
        if al.mem != "DRAM" and po in [lp.name for lp in al.loops()]:
            if not c.add("stage_buffer", buffer=al.name, expand=[po, pi]):
                return False
    if not c.add("interchange_loops", outer=pi):
        return False
    al = c.facts.alloc(buf)
    pad = half_bank_pad(c.facts, c.view.config, al) if al is not None else None
    if pad:
        c.add("spread_banks", buffer=buf, copies=pad, at=1)
    # zeroing through the load queue would wait behind the loads issued ahead
    if zero_applies(c.facts):
        c.add("zero_into_compute")
    if other not in prefetchable(c.facts) or not c.add("prefetch_loads", operand=other):
        return False
    if rng.random() < 0.7:
        c.add("unroll_calls", role="compute", depth=1, operand=None, simplify=False)
    return True


def _hoist(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    if not _short(f):
        return None
    ops = [o for o in loaded(f) if unused_loops(f, o)]
    if not ops:
        return None
    c = Composer(v)
    o = rng.choice(ops)
    if not c.add("hoist_load", operand=o, levels=rng.choice([1, 1, 0])):
        return None
    return c


def _tile(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    if not _short(f):
        return None
    loops = [lp for lp in compute_loops(f) if divisors(lp.extent)]
    if not loops:
        return None
    c = Composer(v)
    lp = rng.choice(loops)
    return c if c.add("tile_loop", loop=lp.name, factor=rng.choice(divisors(lp.extent))) else None


def _interchange(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    if not _short(f):
        return None
    outs = interchangeable(f)
    if not outs:
        return None
    c = Composer(v)
    return c if c.add("interchange_loops", outer=rng.choice(outs).name) else None


def _stage(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    if not _short(f):
        return None
    opts = []
    for al in f.allocs():
        if al.mem == "DRAM" or not al.loops():
            continue
        small = [lp.name for lp in al.loops() if lp.extent and lp.extent <= 4]
        opts.append((al.name, [[]] + [[s] for s in small]))
    if not opts:
        return None
    name, choices = rng.choice(opts)
    c = Composer(v)
    return c if c.add("stage_buffer", buffer=name, expand=rng.choice(choices)) else None


def _double_buffer(v: View, rng: random.Random) -> Optional[Composer]:
    f = v.facts
    if not _short(f):
        return None
    opts = [al for al in f.allocs() if al.mem != "DRAM" and al.parent is not None and al.parent.kind == "for"
            and al.parent.extent and al.parent.extent >= 2]
    if not opts:
        return None
    al = rng.choice(opts)
    c = Composer(v)
    fs = [d for d in (2, 4) if al.parent.extent % d == 0]
    return c if fs and c.add("double_buffer", buffer=al.name, factor=fs[0] if rng.random() < 0.75 else fs[-1]) else None


def _spread(v: View, rng: random.Random) -> Optional[Composer]:
    # expand_dim re-checks the bounds of every access: on unrolled straight-line
    # code that takes tens of seconds (28 s for 128 unrolled computes)
    if v.facts.n_calls() > 40:
        return None
    c = Composer(v)
    sp = spread_choice(c.facts, c.view.config, rng)
    return c if sp and c.add("spread_banks", buffer=sp[0], copies=sp[1], at=sp[2]) else None


def _zero(v: View, rng: random.Random) -> Optional[Composer]:
    if not zero_applies(v.facts):
        return None
    c = Composer(v)
    c.add("zero_into_compute")
    if rng.random() < 0.5:
        _unroll(c, rng, simplify=False)
    return c


def _interleave(v: View, rng: random.Random) -> Optional[Composer]:
    inter = interleavable(v.facts) if _short(v.facts) else []
    if not inter:
        return None
    c = Composer(v)
    c.add("interleave_loads", operand=rng.choice(inter))
    if rng.random() < 0.5:
        _unroll(c, rng, simplify=False)
    return c


def _split(v: View, rng: random.Random) -> Optional[Composer]:
    split = splittable(v.facts) if _short(v.facts) else []
    if not split:
        return None
    c = Composer(v)
    return c if c.add("split_loads", operand=rng.choice(split)) else None


def _unroll_tactic(v: View, rng: random.Random) -> Optional[Composer]:
    c = Composer(v)
    role = rng.choices(["compute", "load", "zero", "store"], [4, 1, 1, 1])[0]
    return c if _unroll(c, rng, simplify=rng.random() < 0.5, role=role) else None


@dataclass(frozen=True)
class Tactic:
    name: str
    text: str
    sample: Callable[[View, random.Random], Optional[Composer]]
    weight: float = 1.0


TACTICS: dict[str, Tactic] = {t.name: t for t in [
    Tactic("reuse", "keep one operand resident: tile a loop the other operand reads, optionally move the "
           "tile loop inside, take the loads out of the loops they do not depend on, stage the buffers "
           "of the tile (double buffering), then spread banks / fold the zeroing / unroll", _reuse, 8.0),
    Tactic("hoist", "move a load out of a loop whose counter it does not read (load once, reuse)", _hoist, 0.7),
    Tactic("tile", "split a loop around the computes into blocks", _tile, 0.4),
    Tactic("interchange", "swap a loop with the one loop in its body", _interchange, 0.3),
    Tactic("stage", "allocate a local buffer once, one copy per iteration of a small loop", _stage, 0.4),
    Tactic("double_buffer", "split the loop around a buffer in 2 (or 4); a copy of the buffer per part",
           _double_buffer, 0.5),
    Tactic("spread", "pad an operand buffer to whole scratchpad banks so the operands of a compute sit in "
           "different banks", _spread, 3.0),
    Tactic("zero", "let the first compute of each output tile overwrite the accumulator instead of "
           "zeroing it first", _zero, 3.0),
    Tactic("interleave", "issue the loads of an operand step by step between the computes that use them "
           "(the first tile peeled, the loads' loop fused with its computes' loop)", _interleave, 2.0),
    Tactic("split", "issue the loads of every copy of a staged buffer before the computes of the block "
           "(the loop holding loads and computes split in two)", _split, 2.0),
    Tactic("unroll", "fully unroll the innermost loops around an instruction's calls", _unroll_tactic, 2.5),
]}

#: menu option -> the tactics that realize it
OPTION_TACTICS: dict[str, tuple[str, ...]] = {
    "tiling": ("tile", "double_buffer", "reuse"),
    "reorder": ("reuse", "interchange"),
    "split": ("hoist", "split"),
    "fuse": ("zero", "interleave", "reuse"),
    "simplify": ("unroll", "zero"),
    "reorder_stmts": ("hoist", "interleave", "reuse"),
    "unroll": ("unroll",),
    "double_buffer": ("double_buffer", "stage", "reuse", "split"),
    "scratchpad_reuse": ("reuse", "hoist"),
    "spread": ("spread", "double_buffer"),
    "guarded_loads": ("hoist", "reuse"),
    "hoist": ("hoist",),
    "substitute": ("zero", "spread"),
    "pipeline": ("interleave", "split", "double_buffer", "reuse", "spread"),
    "min_data_movement": ("reuse", "hoist", "spread"),
    "min_loop_overhead": ("unroll", "zero"),
    "other": tuple(TACTICS),
}

#: bottleneck -> tactic weight multipliers
BIAS = {
    "cpu": {"zero": 2.0, "unroll": 2.0, "reuse": 2.0},
    "load": {"reuse": 3.0, "hoist": 3.0, "tile": 2.0, "double_buffer": 1.5, "interleave": 2.0},
    "dependency": {"double_buffer": 4.0, "stage": 2.0, "reuse": 2.0, "split": 2.0},
    "bank": {"spread": 3.0, "reuse": 2.0, "split": 2.0},
    "execute": {},
    "unknown": {},
}


def _view(cand: Candidate) -> Optional[View]:
    """The candidate's facts (from the worker, else read from its proc) and config."""
    f = cand.proc_facts()
    if f is None:
        proc = getattr(cand.workload, "proc", None)
        if proc is None:
            return None
        try:
            from ..proc_facts import facts

            f = facts(cand.schedule.apply(proc))
        except Exception:  # noqa: BLE001 - a candidate that does not apply has no plans
            return None
    cfg = cand.config if isinstance(cand.config, GemminiConfig) else GemminiConfig()
    return View(f, cfg, cand)


class OfflineAgent(Agent):
    """Plans and implements menu options without an LLM (see the module doc)."""

    name = "offline"

    def __init__(self, tactics: Optional[dict] = None, option_tactics: Optional[dict] = None):
        self.tactics = dict(TACTICS if tactics is None else tactics)
        self.option_tactics = dict(OPTION_TACTICS if option_tactics is None else option_tactics)
        self.refused: set = set()

    def notify(self, results: Sequence[Candidate]) -> None:
        """Remember each move Exo refused (a child failing at a schedule
        step): the same move with the same first decision after the same
        prefix is not proposed again (Exo's fission and reorder checks are
        not modelled by `moves.predict`)."""
        for c in results:
            m = c.measurement
            if m is None or m.ok or m.stage != "schedule":
                continue
            hit = _FAILED_STEP.search(m.error or "")
            steps = list(getattr(c.schedule, "steps", ()))
            if not hit or int(hit.group(1)) >= len(steps):
                continue
            i = int(hit.group(1))
            prefix = [_step_key(st.op, st.args) for st in steps[:i]]
            self.refused.add(_refusal_key(prefix, steps[i].op, steps[i].args))

    def _view(self, cand: Candidate) -> Optional[View]:
        v = _view(cand)
        if v is not None and self.refused:
            v.refused = frozenset(self.refused)
        return v

    def _samples(self, v: View, name: str, rng: random.Random) -> Optional[Composer]:
        try:
            return self.tactics[name].sample(v, rng)
        except (MoveError, IndexError, KeyError, ValueError):
            return None

    def applicable(self, cand: Candidate) -> list[str]:
        """Tactics with at least one plan for ``cand`` (a few samples each)."""
        v = self._view(cand)
        if v is None:
            return []
        out = []
        for name in self.tactics:
            rng = random.Random(0)
            if any(self._samples(v, name, rng) for _ in range(4)):
                out.append(name)
        return out

    def plan(self, candidate: Candidate, menu: Sequence[MenuOption], n: int,
             rng: random.Random) -> list[Plan]:
        v = self._view(candidate)
        if v is None:
            return []
        app = set(self.applicable(candidate))
        bias = BIAS.get(candidate.bottleneck(), {})
        choices = []
        for opt in menu:
            ts = [t for t in self.option_tactics.get(opt.key, ()) if t in app]
            for t in ts:
                choices.append((opt.key, t, self.tactics[t].weight * bias.get(t, 1.0) / len(ts)))
        if not choices:
            return []
        plans = []
        for _ in range(n):
            opt, t, _w = rng.choices(choices, weights=[x[2] for x in choices])[0]
            plans.append(Plan(opt, t, self.tactics[t].text, {"bottleneck": candidate.bottleneck()}))
        return plans

    def implement(self, candidate: Candidate, plan: Plan, k: int,
                  rng: random.Random) -> list[list[dict]]:
        v = self._view(candidate)
        if v is None or plan.move not in self.tactics:
            return []
        out, seen = [], set()
        for _ in range(6 * k):
            if len(out) >= k:
                break
            c = self._samples(v, plan.move, rng)
            if c is None or not c.steps:
                continue
            steps = c.step_dicts()
            key = json.dumps(steps, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            out.append([dict(s, menu=plan.option) for s in steps])
        return out
