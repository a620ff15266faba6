"""The macro moves as the LLM prompts offer them: the arguments each move
accepts on the candidate's proc and one worked example each, really applied.

Why: written as primitives, tiling is about 31 Exo steps and making an
operand resident 47; a model writing them blind rarely gets all of them right.
A move (`autocomp_exo.moves`, a whitelisted op of `schedule`) does the same in
one step, if its arguments name the proc's real operands, loops and buffers.
So everything here is read from the candidate's `ProcFacts` (no callee,
buffer or loop name is assumed), each example is checked on the facts
`moves.predict` foresees (and against the scratchpad and accumulator of the
search's `GemminiConfig`), then applied to the candidate's proc with Exo
within a time budget; the loop nest shown after it is the one Exo produced
(or, past the budget, the predicted one, labelled so).

`guide(facts, config, proc, seconds)` -> `Guide`; `Guide.text()` is the
prompt section, `Guide.brief()` the short list for the plan prompt and
`valid_arguments(facts, op, config)` the hint a retry message gives for a
move whose arguments were wrong.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

from ..moves import MOVES, MoveError
from ..moves.applicable import (compute_loops, divisors, interchangeable, interleavable, loaded, prefetchable,
                                splittable, spread_choice, unused_loops, zero_applies)
from ..moves.common import unique_names
from ..moves.predict import predict, unrolled_calls
from ..proc_facts import Node, ProcFacts

__all__ = ["Example", "Guide", "guide", "brief", "outline", "valid_arguments", "MAX_CALLS", "RESTRUCTURE_MAX_CALLS"]

#: straight-line code an unroll example may produce (larger bodies slow Exo and the I-cache)
MAX_CALLS = 320
#: restructuring moves on longer (unrolled) bodies recurse deeply in Exo and take seconds each
RESTRUCTURE_MAX_CALLS = 120
#: expand_dim (spread_banks) re-checks every access: slow on unrolled code
SPREAD_MAX_CALLS = 40


@dataclass
class Example:
    """A worked example: move steps, what they do, the loop nest after them."""

    title: str
    steps: list
    after: str = ""          # loop nest after the steps
    how: str = ""            # "applied with Exo" | "predicted (not applied: time budget)" | ""
    follow: list = field(default_factory=list)   # steps that also apply after it (checked on its facts)
    facts: Optional[ProcFacts] = None             # predicted facts after the steps

    def block(self, indent: str = "    ") -> str:
        lines = [f"{indent}{json.dumps({'steps': self.steps})}"]
        if self.after:
            lines.append(f"{indent}after it ({self.how}):")
            lines += [indent + "  " + ln for ln in self.after.splitlines()]
        if self.follow:
            lines.append(f"{indent}steps that also apply after it (checked on its predicted nest, not applied): "
                         + ", ".join(json.dumps(s) for s in self.follow))
        return "\n".join(lines)


@dataclass
class Guide:
    """The macro-move section of a candidate's prompts."""

    arguments: dict                   # op -> [lines: the arguments valid on this proc]
    examples: dict                    # op -> Example
    chains: list                      # composed Examples ("make X resident")
    seconds: float = 0.0

    def text(self) -> str:
        out = ["Each move is ONE step that Exo checks as a whole; prefer them to long chains of primitive ops. "
               "The arguments listed are the ones valid on this proc; the examples were applied to it."]
        for ex in self.chains:
            out.append(f"* {ex.title}:")
            out.append(ex.block())
        for op, spec in MOVES.items():
            sig = _signature(op)
            out.append(f"- {sig}: {spec.doc}")
            args = self.arguments.get(op) or ["(does not apply to this proc)"]
            out += [f"    {a}" for a in args]
            ex = self.examples.get(op)
            if ex is not None:
                out.append(f"    e.g. {ex.title}:")
                out.append(ex.block("      "))
        return "\n".join(out)

    def brief(self) -> str:
        out = [f"- {ex.title}: {len(ex.steps)} move steps (" + ", ".join(s["op"] for s in ex.steps) + ")"
               for ex in self.chains]
        for op in MOVES:
            if self.arguments.get(op):
                out.append(f"- {_signature(op)}: " + "; ".join(self.arguments[op])[:300])
        return "\n".join(out)


def _signature(op: str) -> str:
    from ..schedule import OPS

    return OPS[op].signature()


# --------------------------------------------------------------------------- #
# The loop nest of a proc, compactly
# --------------------------------------------------------------------------- #

def _call_line(c: Node) -> str:
    ops = {o.slot: o.buffer for o in c.operands}
    if c.role == "load":
        what = f"load {ops.get('src', '?')} -> {ops.get('dst', '?')}"
    elif c.role == "store":
        what = f"store {ops.get('src', '?')} -> {ops.get('dst', '?')}"
    elif c.role == "zero":
        what = f"zero {ops.get('dst', next(iter(ops.values()), '?'))}"
    elif c.role == "compute":
        what = (f"compute {ops.get('moving', '?')} x {ops.get('stationary', '?')} "
                f"{'+=' if c.accumulate else '='}> {ops.get('output', '?')}")
    else:
        what = c.role or "call"
    return f"{c.name}  [{what}]"


def _lines(n: Node, depth: int, out: list) -> None:
    pad = "  " * depth
    prev, run = None, 0

    def flush():
        if prev is not None:
            out.append(pad + prev + (f"  x{run}" if run > 1 else ""))

    for c in n.children():
        if c.kind == "call":
            line = _call_line(c)
            if line == prev:
                run += 1
                continue
            flush()
            prev, run = line, 1
            continue
        flush()
        prev, run = None, 0
        if c.kind == "for":
            out.append(f"{pad}for {c.name} in seq({c.lo}, {c.hi}):")
            _lines(c, depth + 1, out)
        elif c.kind == "alloc":
            out.append(f"{pad}{c.name}: {list(c.dims)} @ {c.mem}")
        elif c.kind == "if":
            out.append(f"{pad}if ...:")
            _lines(c, depth + 1, out)
    flush()


def outline(f: ProcFacts, max_lines: int = 30) -> str:
    """Loops, allocations and instruction calls (role and buffers), runs of
    equal calls counted, config calls left out; at most ``max_lines``."""
    out: list = []
    _lines(f.root, 0, out)
    out = [ln for ln in out if "[call]" not in ln and "[config]" not in ln]
    if len(out) > max_lines:
        out = out[:max_lines] + [f"... ({len(out) - max_lines} more lines)"]
    return "\n".join(out)


# --------------------------------------------------------------------------- #
# What each move accepts on this proc
# --------------------------------------------------------------------------- #

def _fits(f: ProcFacts, config: Any) -> str:
    return f.over_capacity(config)


def _try(f: ProcFacts, op: str, config: Any, **d) -> Optional[ProcFacts]:
    """The predicted facts after a move, or None when it does not apply or overflows."""
    try:
        g = predict(f, op, d)
    except (MoveError, KeyError, ValueError, AttributeError, IndexError):
        return None
    return None if _fits(g, config) else g


def _q(xs) -> str:
    return ", ".join(json.dumps(x) for x in xs)


def _args_tile(f: ProcFacts, config: Any) -> list[str]:
    ls = [f"{json.dumps(lp.name)} ({lp.extent}): {', '.join(map(str, divisors(lp.extent)))}"
          for lp in compute_loops(f) if divisors(lp.extent)]
    return ["loop and factor (dividing its extent): " + "; ".join(ls)] if ls else []


def _args_interchange(f: ProcFacts, config: Any) -> list[str]:
    ls = [f"{json.dumps(lp.name)} (with {lp.body[-1].name})" for lp in interchangeable(f)]
    return ["outer: " + ", ".join(ls)] if ls else []


def _args_hoist(f: ProcFacts, config: Any) -> list[str]:
    out = []
    for o in loaded(f):
        un = unused_loops(f, o)
        if not un:
            continue
        ok = [lv for lv in range(0, len(un) + 1) if _try(f, "hoist_load", config, operand=o, levels=lv)]
        what = ", ".join(lp.name for lp in un)
        fit = f"levels: {', '.join(map(str, ok))}" if ok else "no level fits the local memories"
        out.append(f"operand {json.dumps(o)}: its load does not read {what}; {fit} (0 = all)")
    return out


def _args_stage(f: ProcFacts, config: Any) -> list[str]:
    out = []
    for al in f.allocs():
        if al.mem == "DRAM" or not al.loops():
            continue
        out.append(f"buffer {json.dumps(al.name)} ({al.mem}, inside {', '.join(lp.name for lp in al.loops())}): "
                   f"expand a subset of those loops")
    return out


def _args_spread(f: ProcFacts, config: Any) -> list[str]:
    sp = spread_choice(f, config)
    if sp is None:
        return []
    return [f"buffer {json.dumps(sp[0])} ({f.rows(f.alloc(sp[0]))} rows, a bank is {config.sp_bank_rows}): "
            f"copies {sp[1]} pads it to a bank"]


def _double_bufferable(f: ProcFacts) -> list[Node]:
    return [al for al in f.allocs() if al.mem != "DRAM" and al.parent is not None and al.parent.kind == "for"
            and divisors(al.parent.extent, hi=4)]


def _args_double(f: ProcFacts, config: Any) -> list[str]:
    return [f"buffer {json.dumps(al.name)} (in loop {al.parent.name}, {al.parent.extent} iterations): factor "
            + ", ".join(str(d) for d in divisors(al.parent.extent, hi=4)) for al in _double_bufferable(f)]


def _args_interleave(f: ProcFacts, config: Any) -> list[str]:
    ops = interleavable(f)
    return [f"operand: {_q(ops)}"] if ops else []


def _args_split(f: ProcFacts, config: Any) -> list[str]:
    ops = splittable(f)
    return [f"operand: {_q(ops)} (its buffer has a copy per iteration of the loop it shares with the computes)"] \
        if ops else []


def _args_prefetch(f: ProcFacts, config: Any) -> list[str]:
    ops = prefetchable(f)
    return [f"operand: {_q(ops)} (its buffer has a copy per step of the loop around the loop that holds the "
            "loads and the computes; a pair of copies a bank apart inside is best)"] if ops else []


def _args_zero(f: ProcFacts, config: Any) -> list[str]:
    return ["no arguments (applies: the computes follow a zeroing of their output)"] if zero_applies(f) else []


def _unroll_depths(f: ProcFacts, role: str) -> list[tuple[int, int]]:
    out = []
    for d in range(1, 6):
        try:
            n = unrolled_calls(f, role, d)
        except MoveError:
            break
        if n > MAX_CALLS:
            break
        if out and out[-1][1] == n:
            break
        out.append((d, n))
    return out


def _args_unroll(f: ProcFacts, config: Any) -> list[str]:
    out = []
    for role in ("compute", "load", "zero", "store"):
        ds = _unroll_depths(f, role) if f.calls(role) else []
        if ds:
            out.append(f"role {json.dumps(role)}: depth " + ", ".join(f"{d} ({n} calls after)" for d, n in ds))
    return out


_ARGS = {
    "tile_loop": _args_tile, "interchange_loops": _args_interchange, "hoist_load": _args_hoist,
    "stage_buffer": _args_stage, "spread_banks": _args_spread, "double_buffer": _args_double,
    "interleave_loads": _args_interleave, "split_loads": _args_split, "zero_into_compute": _args_zero,
    "prefetch_loads": _args_prefetch,
    "unroll_calls": _args_unroll,
}


def valid_arguments(f: ProcFacts, op: str, config: Any = None) -> list[str]:
    """What move ``op`` accepts on the proc of ``f`` (lines; [] when nothing)."""
    fn = _ARGS.get(op)
    if fn is None:
        return []
    try:
        return fn(f, _config(config))
    except Exception:  # noqa: BLE001 - a hint, never a reason to fail
        return []


def _config(config: Any) -> Any:
    from gemmini_isa import GemminiConfig

    return config if isinstance(config, GemminiConfig) else GemminiConfig()


# --------------------------------------------------------------------------- #
# Examples (checked on the predicted facts)
# --------------------------------------------------------------------------- #

def _step(op: str, **d) -> dict:
    from ..schedule import OPS

    return {"op": op, "args": [d[p.name] for p in OPS[op].params if p.name in d]}


class _Chain:
    """Moves appended while each applies and the result fits."""

    def __init__(self, f: ProcFacts, config: Any):
        self.f, self.config, self.steps = f, config, []

    def add(self, op: str, **d) -> bool:
        g = _try(self.f, op, self.config, **d)
        if g is None:
            return False
        self.f = g
        self.steps.append(_step(op, **d))
        return True


def _resident(f: ProcFacts, config: Any, stay: str) -> Optional[_Chain]:
    """Keep ``stay``'s tiles resident (the offline agent's reuse tactic, with
    its most frequent decisions): tile a loop the other operands' loads read
    and ``stay``'s does not, the tile loop moved inside, the loads out of the
    loops they do not read, the buffers of the tile staged over it."""
    others = [o for o in loaded(f) if o != stay]
    tiles = [lp for lp in unused_loops(f, stay) if lp in compute_loops(f)
             and any(f.loads_of(o)[0].mentions(lp.name) for o in others)]
    for t in tiles:
        for fac in sorted(divisors(t.extent), reverse=True):
            c = _Chain(f, config)
            inner = unique_names([t.name + "o", t.name + "i"], f.loop_names())[1]
            if not c.add("tile_loop", loop=t.name, factor=fac):
                continue
            c.add("interchange_loops", outer=inner)
            if not c.add("hoist_load", operand=stay, levels=1):
                continue
            for o in others:
                c.add("hoist_load", operand=o, levels=1)
            for al in list(c.f.allocs()):
                if al.mem != "DRAM" and inner in [lp.name for lp in al.loops()]:
                    c.add("stage_buffer", buffer=al.name, expand=[inner])
            return c
    return None


def _follow_ups(f: ProcFacts, config: Any) -> list[dict]:
    """Ending moves that apply on ``f`` (bank spread, interleaving or the
    zeroing folded, unrolling within the code-size cap)."""
    out = []
    sp = spread_choice(f, config)
    if sp and f.n_calls() <= SPREAD_MAX_CALLS:
        out.append(_step("spread_banks", buffer=sp[0], copies=sp[1]))
    pre = prefetchable(f)
    if pre:
        out.append(_step("prefetch_loads", operand=pre[0]))
    split = splittable(f)
    if split:
        out.append(_step("split_loads", operand=split[0]))
    inter = interleavable(f)
    if inter:
        out.append(_step("interleave_loads", operand=inter[0]))
    if zero_applies(f):
        out.append(_step("zero_into_compute"))
    ds = _unroll_depths(f, "compute")
    if ds:
        out.append(_step("unroll_calls", role="compute", depth=ds[-1][0]))
    return out


def _one(f: ProcFacts, config: Any, op: str) -> Optional[Example]:
    """One single-step example of ``op`` on ``f`` (the first that applies and fits)."""
    for title, d in _candidates(f, config, op):
        g = _try(f, op, config, **d) if op not in ("interleave_loads", "unroll_calls") else f
        if g is not None:
            return Example(title, [_step(op, **d)], facts=g if g is not f else None)
    return None


def _candidates(f: ProcFacts, config: Any, op: str) -> list[tuple[str, dict]]:
    """(title, decisions) worth showing for ``op``, best first."""
    if op == "tile_loop":
        ls = sorted(compute_loops(f), key=lambda lp: -(lp.extent or 0))
        return [(f"split {lp.name} into blocks of {d}", {"loop": lp.name, "factor": d})
                for lp in ls for d in sorted(divisors(lp.extent), reverse=True)[:2]]
    if op == "interchange_loops":
        return [(f"swap {lp.name} with {lp.body[-1].name}", {"outer": lp.name}) for lp in interchangeable(f)]
    if op == "hoist_load":
        return [(f"load {o} once outside {unused_loops(f, o)[-1].name}", {"operand": o, "levels": 1})
                for o in loaded(f) if unused_loops(f, o)]
    if op == "stage_buffer":
        return [(f"allocate {al.name} once" + (f", one copy per {al.loops()[-1].name}" if e else ""),
                 {"buffer": al.name, "expand": [al.loops()[-1].name] if e else []})
                for al in f.allocs() if al.mem != "DRAM" and al.loops() for e in (True, False)]
    if op == "spread_banks":
        sp = spread_choice(f, config)
        return [(f"pad {sp[0]} to a whole bank", {"buffer": sp[0], "copies": sp[1]})] if sp else []
    if op == "double_buffer":
        return [(f"two copies of {al.name} over {al.parent.name}", {"buffer": al.name, "factor": 2})
                for al in _double_bufferable(f) if al.parent.extent % 2 == 0]
    if op == "interleave_loads":
        return [(f"issue the loads of {o} between the computes", {"operand": o}) for o in interleavable(f)]
    if op == "split_loads":
        return [(f"issue every copy's loads of {o} before the block's computes", {"operand": o})
                for o in splittable(f)]
    if op == "prefetch_loads":
        return [(f"issue the next step's loads of {o} before this step's computes", {"operand": o})
                for o in prefetchable(f)]
    if op == "zero_into_compute":
        return [("the first compute of each tile overwrites instead of a zeroing", {})] if zero_applies(f) else []
    if op == "unroll_calls":
        ds = _unroll_depths(f, "compute")
        return [(f"unroll the {ds[-1][0]} loop(s) around the computes ({ds[-1][1]} calls after)",
                 {"role": "compute", "depth": ds[-1][0]})] if ds else []
    return []


def _restructures(op: str) -> bool:
    return op not in ("unroll_calls", "zero_into_compute")


def examples(f: ProcFacts, config: Any = None) -> tuple[dict, list]:
    """(op -> single-step Example, composed chains), checked on predicted facts only."""
    config = _config(config)
    long = f.n_calls() > RESTRUCTURE_MAX_CALLS
    single = {}
    for op in MOVES:
        if long and _restructures(op) or (op == "spread_banks" and f.n_calls() > SPREAD_MAX_CALLS):
            continue
        try:
            ex = _one(f, config, op)
        except Exception:  # noqa: BLE001 - an example is a help, not a requirement
            ex = None
        if ex is not None:
            single[op] = ex
    chains = []
    for stay in ([] if long else loaded(f)):
        try:
            c = _resident(f, config, stay)
        except Exception:  # noqa: BLE001
            c = None
        if c is not None and len(c.steps) > 1:
            chains.append(Example(f"make {stay} resident (its tiles loaded once and reused)", c.steps,
                                  follow=_follow_ups(c.f, config), facts=c.f))
    return single, chains


# --------------------------------------------------------------------------- #
# Applying them with Exo, within a time budget
# --------------------------------------------------------------------------- #

def changes(before: str, after: str, max_lines: int = 16) -> str:
    """The lines of a loop nest a move changed ('-' before, '+' after, one
    line of context): a single move's example shows only what it did."""
    import difflib

    out = [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
           if not ln.startswith(("---", "+++"))]
    out = ["..." if ln.startswith("@@") else ln for ln in out]
    if len(out) > max_lines:
        out = out[:max_lines] + [f"... ({len(out) - max_lines} more changed lines)"]
    return "\n".join(out) if out else "(no change)"


def _view(before: str, g: ProcFacts, max_lines: int, whole: bool) -> tuple[str, str]:
    """The nest after a move: the lines it changed when that is shorter than
    the whole nest (always the whole nest for a chain)."""
    nest = outline(g, max_lines)
    if whole:
        return nest, "the whole nest"
    diff = changes(before, outline(g, 10_000), max_lines)
    if diff.count("\n") < nest.count("\n") and "more changed lines" not in diff:
        return diff, "the lines it changed"
    return nest, "the whole nest"


def _apply(proc: Any, ex: Example) -> Optional[ProcFacts]:
    """The facts of ``proc`` after the example's steps (None when Exo refuses them)."""
    from ..proc_facts import facts
    from ..schedule import Schedule

    try:
        return facts(Schedule(ex.steps).apply(proc, cache=False))
    except Exception:  # noqa: BLE001 - ScheduleError, or anything Exo raises
        return None


_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 128


def guide(f: ProcFacts, config: Any = None, proc: Any = None, seconds: float = 30.0,
          max_lines: int = 24, key: Optional[tuple] = None) -> Guide:
    """The macro-move guide of a proc: valid arguments, examples, chains;
    with ``proc``, each example applied with Exo (examples Exo refuses are
    dropped). The examples are bounded by the proc's size (no restructuring
    example past RESTRUCTURE_MAX_CALLS calls), so the guide is the same on
    every run; ``seconds`` is only a safety net (examples after it show the
    predicted nest, labelled so). ``key`` = (base proc, schedule key) caches
    it in this process (agents, reruns)."""
    config = _config(config)
    ck = None if key is None else (id(key[0]), key[1], repr(config), max_lines)
    if ck is not None:
        with _CACHE_LOCK:
            hit = _CACHE.get(ck)
            if hit is not None and hit[0] is key[0]:
                _CACHE.move_to_end(ck)
                return hit[1]
    g = _guide(f, config, proc, seconds, max_lines)
    if ck is not None:
        with _CACHE_LOCK:
            _CACHE[ck] = (key[0], g)      # the base proc is kept: its id is not reused while cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return g


def _guide(f: ProcFacts, config: Any, proc: Any, seconds: float, max_lines: int) -> Guide:
    t0 = time.monotonic()
    args = {op: valid_arguments(f, op, config) for op in MOVES}
    single, chains = examples(f, config)
    full = outline(f, 10_000)
    for ex in chains + list(single.values()):
        g, how = None, ""
        if proc is not None and time.monotonic() - t0 < seconds:
            g, how = _apply(proc, ex), "applied with Exo"
            if g is None:
                ex.steps = []          # refused by Exo: not shown
                continue
        elif ex.facts is not None:
            g, how = ex.facts, "predicted: not applied within the time budget"
        if g is not None:
            ex.after, what = _view(full, g, max_lines, whole=ex in chains)
            ex.how = f"{how}; {what}"
    single = {op: ex for op, ex in single.items() if ex.steps}
    chains = [ex for ex in chains if ex.steps]
    return Guide(args, single, chains, time.monotonic() - t0)


def brief(f: ProcFacts, config: Any = None) -> str:
    """The macro moves that apply to the proc of ``f``, one line each, for
    the plan prompt (from the facts and their predictions; no Exo)."""
    config = _config(config)
    _single, chains = examples(f, config)
    g = Guide({op: valid_arguments(f, op, config) for op in MOVES}, {}, chains)
    return g.brief()


def guide_task(task: dict) -> dict:
    """`guide` as a worker task (``{"kind": "guide", ...}`` with the fields of a
    `workers.Task`: the workload, the candidate's schedule, the config, and
    ``"seconds"``, ``"max_lines"``): the Exo work of the worked examples runs
    in a worker process, beside the agent's requests instead of under its
    lock. Returns ``{"measurement": {"ok"}, "text": Guide.text() or None,
    "seconds"}``."""
    from ..proc_facts import facts
    from ..workers import failed_result, task_parts

    t0 = time.perf_counter()
    try:
        _t, w, sched, config = task_parts(task)
        proc = sched.apply(w.proc)
        g = guide(facts(proc), config, proc, seconds=float(task.get("seconds", 30.0)),
                  max_lines=int(task.get("max_lines", 24)), key=(w.proc, sched.canonical()))
    except Exception as e:  # noqa: BLE001 - the guide is a help for the prompts
        return failed_result("guide", f"{type(e).__name__}: {e}", time.perf_counter() - t0, task)
    return {"measurement": {"ok": True, "stage": None, "error": None}, "text": g.text(),
            "proc_text": None, "facts": None, "seconds": time.perf_counter() - t0}
