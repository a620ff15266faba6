"""Beam search: plan, then implement; keep the fastest correct candidates.

The first beam is ``B`` copies of the start. Each iteration, for every beam
entry ``b`` (the beam is sorted by cycles, then id) and plan index ``p < N``:
the menu after dropout (each option dropped with probability ``dropout``,
never empty), one plan from the agent, and ``K``
implementations (schedule suffixes), each from its own rng. Every rng is
derived from ``(seed, iteration, b, p[, k])`` only, so the same seed gives the
same trace whatever order the workers finish in.

Children are deduplicated on their schedule key (canonical step JSON without
menu labels) against everything seen in the run; the rest are evaluated in
parallel (`autocomp_exo.workers`). A child enters the beam only if it is
correct and faster than its parent; the new beam is the best ``B`` of the old
beam plus the accepted children. A beam entry the agent has nothing new for
(every proposal already seen) is *exhausted*; when the whole beam is, the
beam is refilled with the best correct candidates of the run that are not
(backtracking: a greedy beam otherwise ends early in a local optimum, e.g.
deep unrolling that leaves no loop nest for the structural moves, with most
of the budget unused). The search stops when the sample budget (evaluated
children) or the iterations are used up, or when every correct candidate is
exhausted (three iterations in a row with nothing new).

An agent that answers many requests at once (``agent.concurrent``, the LLM
agent) is not asked one request at a time: every slot's rng, dropout menu
and sample index are drawn first; all B x N plan requests go out together,
a slot's K implement requests as soon as its plan is back, a duplicate's
re-ask as soon as it is decided, with the same per-slot rngs as the
one-at-a-time loop (`streaming.stream_proposals`). With worker processes,
each new schedule is evaluated as soon as its answer arrives, while other
requests are still out. Answers are used in a fixed order (round, then slot), so the
trace does not depend on the order they arrive in or on how many are in
flight. Agents without ``concurrent`` (the offline agent) keep the
one-at-a-time loop.

With a run database (`database.Database`, e.g. a `runs.RunDir`), every
finished candidate is committed to it as it finishes, and candidates already
in it are looked up instead of being evaluated: a resumed run replays to the
same result. The best so far goes to ``Database.write_best`` after every
iteration.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from gemmini_isa import GemminiConfig

from .agents.base import Agent, Candidate, Plan
from .database import Database
from .measurement import Measurement
from .menu import MENU, dropout as menu_dropout
from .runs import schedule_key
from .schedule import Schedule
from . import streaming
from .workers import Task, WorkerPool

__all__ = ["SearchSettings", "SearchResult", "derive_rng", "beam_search", "accept", "next_beam", "refill_beam",
           "replace_exhausted"]


@dataclass
class SearchSettings:
    """The search's settings, and the single home of their defaults
    (`optimize`, `transfer` and the CLI take theirs from `defaults`)."""

    beam: int = 4          # B
    plans: int = 3         # N plans per beam entry
    impls: int = 2         # K implementations per plan
    iterations: Optional[int] = None  # T (None: until the budget is used)
    dropout: float = 0.7
    budget: int = 120      # evaluated children (sized for a 2-core laptop)
    seed: int = 0
    eval_seed: int = 0     # seed of the random GEMM inputs
    max_idle: int = 3      # stop after this many iterations without new children

    #: named settings, as overrides of the defaults: the Autocomp paper's GEMM
    #: settings, the demo's, a transfer's budget, transfer's guided phase (one
    #: menu option at a time) and the benchmarks' (`benchmarks/search_quality.py`)
    PRESETS = {
        "paper": dict(beam=6, plans=6, impls=2, iterations=15, dropout=0.7, budget=6 * 6 * 2 * 15),
        "demo": dict(beam=2, plans=3, impls=2, budget=30),
        "transfer": dict(budget=30),
        "guided": dict(beam=2, plans=2, impls=1, iterations=2, dropout=0.0, max_idle=1),
        "benchmark": dict(beam=3, plans=3, impls=2, budget=300),
    }

    @classmethod
    def preset(cls, name: str, **kw) -> "SearchSettings":
        """The settings of `PRESETS` ``name`` (the defaults for the rest), with ``kw`` on top."""
        return cls(**{**cls.PRESETS[name], **kw})

    @classmethod
    def paper(cls, **kw) -> "SearchSettings":
        """The Autocomp paper's GEMM settings: B=6, N=6, K=2, T=15, dropout 0.7."""
        return cls.preset("paper", **kw)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("beam", "plans", "impls", "iterations", "dropout",
                                              "budget", "seed", "eval_seed", "max_idle")}

    @classmethod
    def defaults(cls, *names: str, preset: Optional[str] = None) -> dict:
        """The default values (of ``names``, default all), of a preset when given:
        ``SearchSettings.defaults("beam", "plans")``, ``SearchSettings.defaults(preset="demo")``."""
        d = (cls.preset(preset) if preset else cls()).to_dict()
        return {k: d[k] for k in names} if names else d


@dataclass
class SearchResult:
    best: Candidate
    baseline: Candidate
    beam: list
    candidates: list               # every child, in generation order
    samples_used: int
    iterations: int
    trace: list = field(default_factory=list)   # [(iteration, [beam ids])]

    def trace_key(self) -> list:
        """A compact, comparable trace: per child (id, parent, key digest, ok, cycles)."""
        out = []
        for c in self.candidates:
            out.append((c.id, c.parent, hashlib.sha256(schedule_key(c.schedule).encode()).hexdigest()[:12],
                        c.ok, c.cycles))
        return out


def derive_rng(*parts: Any) -> random.Random:
    """A Random seeded from a tuple of ints/strings (stable across processes)."""
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def accept(child: Candidate, parent: Candidate) -> bool:
    """A child enters the beam only if it is correct and faster than its parent."""
    return bool(child.ok and parent.ok and child.cycles is not None and parent.cycles is not None
                and child.cycles < parent.cycles)


def _rank(c: Candidate):
    return (c.cycles if c.cycles is not None else float("inf"), c.id)


#: ops that only unroll: they change no loop structure that later steps read
UNROLL_OPS = frozenset({"unroll_calls", "unroll_loop", "simplify"})


def structure_key(c: Candidate) -> str:
    """The candidate's schedule without its unrolling steps: candidates that
    differ only in how far they unroll are one program structure."""
    steps = getattr(c.schedule, "steps", None) or []
    return json.dumps([[s.op, s.args, s.kwargs] for s in steps if s.op not in UNROLL_OPS],
                      sort_keys=True, default=str)


def _best_distinct(pool: Iterable, width: int) -> list:
    """The best ``width`` (by cycles, then schedule length, then id), at most one per structure
    (the beam then explores distinct structures instead of unroll variants
    of one, which later moves can no longer restructure)."""
    out, seen = [], set()
    # equal cycles: the shorter schedule (less unrolled: later moves can still restructure it)
    for c in sorted(pool, key=lambda c: (_rank(c)[0], len(getattr(c.schedule, "steps", ()) or ()), c.id)):
        k = structure_key(c)
        if k in seen:
            continue
        seen.add(k)
        out.append(c)
        if len(out) == width:
            break
    return out


def next_beam(beam: list, accepted: list, width: int) -> list:
    """The best ``width`` of the old beam plus the accepted children (by
    cycles, then id; one per structure, see `structure_key`)."""
    pool = {c.id: c for c in list(beam) + list(accepted)}
    return _best_distinct(pool.values(), width)


def replace_exhausted(beam: list, candidates: list, exhausted: set, width: int) -> list:
    """The beam with the entries the agent had nothing new for replaced by the
    best correct candidates of the run not yet exhausted (by cycles, one per
    structure, none of a live entry's structure; the live entries stay): a slot whose entry has no move left otherwise idles for the
    rest of the search (e.g. a deeply unrolled winner that the structural
    moves can no longer change). The best candidate is kept by the search
    whether or not it stays in the beam."""
    keep = [c for c in beam if c.id not in exhausted]
    if len(keep) == len(beam):
        return beam
    ids, taken = {c.id for c in keep}, {structure_key(c) for c in keep}
    pool = [c for c in candidates if c.id not in ids and structure_key(c) not in taken]
    fill = refill_beam(pool, exhausted, width - len(keep))
    if not keep and not fill:
        return beam
    return sorted(keep + fill, key=_rank)


def refill_beam(candidates: list, exhausted: set, width: int) -> list:
    """The best ``width`` correct candidates not in ``exhausted`` (by cycles,
    then id; one per structure)."""
    live = {c.id: c for c in candidates if c.ok and c.id not in exhausted}
    return _best_distinct(live.values(), width)


def _candidate_from_record(rec: dict, cid: int, schedule: Schedule, parent: Optional[int], plan: Optional[Plan],
                           iteration: int, workload: Any, config: Any = None) -> Candidate:
    m = Measurement.from_dict(rec.get("measurement") or {"ok": False, "stage": "worker", "error": "no measurement"})
    return Candidate(cid, schedule, m, rec.get("proc_text"), parent, plan, iteration, workload,
                     facts=rec.get("facts"), config=config)


def _search_config(task_extra: dict) -> Any:
    """The GemminiConfig the tasks carry (as a dict), None when they carry none."""
    d = task_extra.get("config")
    if d is None:
        return None
    return d if isinstance(d, GemminiConfig) else GemminiConfig(**d)


def beam_search(workload: Any, base: Schedule, agent: Agent, settings: SearchSettings, *,
                pool: WorkerPool, run: Optional[Database] = None, task_extra: Optional[dict] = None,
                progress: Optional[Callable[[dict], None]] = None) -> SearchResult:
    """Search from the schedule ``base`` (already a Gemmini mapping) of ``workload``."""
    task_extra = dict(task_extra or {})
    config = _search_config(task_extra)
    S = settings

    def task(schedule: Schedule, baseline_cycles=None) -> dict:
        return Task.of(workload, schedule, seed=S.eval_seed, baseline_cycles=baseline_cycles,
                       **task_extra).to_dict()

    def record(c: Candidate, res: dict, key: str) -> dict:
        return {
            "id": c.id, "key": key, "parent": c.parent, "iteration": c.iteration,
            "plan": c.plan.to_dict() if c.plan else None,
            "menu": sorted({s.menu for s in c.schedule.steps[len(base):] if s.menu}),
            "schedule": c.schedule.to_list(),
            "measurement": res.get("measurement"),
            "proc_text": res.get("proc_text"),
            "facts": res.get("facts"),
            "seconds": res.get("seconds"),
        }

    # ---- baseline -------------------------------------------------------------
    bkey = schedule_key(base)
    rec = run.lookup(bkey) if run else None
    if rec is None:
        res = pool.run([task(base)])[0]
        rec = None
    else:
        res = rec
    baseline = _candidate_from_record(res, 0, base, None, None, 0, workload, config)
    if rec is None and run is not None:
        run.commit(record(baseline, res, bkey))
    if not baseline.ok:
        raise RuntimeError(f"the baseline schedule failed: {baseline.measurement.stage}: "
                           f"{baseline.measurement.error}")
    base_cycles = baseline.cycles
    seen: set[str] = {bkey}
    # the first iteration expands the start once per beam slot (own rngs,
    # proposals deduplicated): B x N x K children of Exo's standard mapping,
    # where the structural choices (flow, tiles, endings) are made
    beam = [baseline] * max(1, S.beam)
    children_all: list[Candidate] = []
    trace = [(0, [0])]
    samples = 0
    next_id = 1
    idle = 0
    exhausted: set[int] = set()   # ids of candidates the agent had nothing new for
    it = 0
    best = baseline

    def emit(kind: str, **kw):
        if progress:
            progress({"event": kind, "samples": samples, "budget": S.budget, "best_cycles": best.cycles,
                      "baseline_cycles": base_cycles, "speedup": base_cycles / best.cycles,
                      "iteration": it, **kw})

    rejections_seen = 0

    def new_rejections() -> list[dict]:
        """The answers the agent refused since the last look (agents that keep a
        `rejections` list, like the LLM agent, report them this way)."""
        nonlocal rejections_seen
        rej = agent.rejections
        if len(rej) <= rejections_seen:
            return []
        out = rej[rejections_seen:]
        rejections_seen = len(rej)
        return out

    def reject(parent: Candidate, plan: Plan, stage: str, reason: str, steps: Any, where: tuple) -> None:
        """A proposal refused before evaluation (an agent's answer that is not a
        valid step list, a suffix the whitelist refuses) is a failed candidate
        with its reason: recorded, never evaluated, not counted as a sample."""
        nonlocal next_id
        key = "rejected:" + ":".join(map(str, where))
        m = Measurement(ok=False, stage=stage, error=reason or "refused",
                        M=workload.M, N=workload.N, K=workload.K)
        c = Candidate(next_id, parent.schedule, m, None, parent.id, plan, it, workload, config=config)
        next_id += 1
        children_all.append(c)
        if run is not None and run.lookup(key) is None:
            rec = record(c, {"measurement": m.to_dict()}, key)
            rec["rejected_steps"] = steps if isinstance(steps, (list, dict, str)) else None
            run.commit(rec)
        emit("rejected", stage=stage, reason=reason)

    evaluate_early = getattr(pool, "workers", 0) > 0   # a pool of worker processes (not in-process, not Ray)

    def propose_stream(proposals: list, early: dict) -> None:
        """The iteration's proposals from an agent that answers many requests at
        once (`streaming.stream_proposals`): each request goes out as soon as
        what it needs is back, each new schedule is evaluated as soon as its
        answer arrives (``early``: key -> Future of its result), and the events
        are numbered in a fixed order, whatever order the answers arrive in."""
        nonlocal next_id
        slots = []
        for bi, parent in enumerate(beam):
            for pi in range(S.plans):
                rng = derive_rng(S.seed, it, bi, pi, "plan")
                slots.append(streaming.Slot(bi, pi, parent, menu_dropout(MENU, S.dropout, rng), rng))

        tasks = streaming.PoolTasks(pool, lambda sc: task(sc, base_cycles)) if evaluate_early else None

        def submit(key: str, sched: Schedule) -> None:
            if tasks is not None and not (run is not None and run.lookup(key) is not None):
                early[key] = tasks.evaluate(sched)

        session = streaming.session_of(agent, tasks)
        try:
            got = streaming.stream_proposals(
                session, slots, S.impls, seen, room=S.budget - samples, submit=submit,
                impl_rng=lambda bi, pi, ki, r: derive_rng(S.seed, it, bi, pi, ki, r))
        finally:
            session.close()
            new_rejections()   # the session gave them per request; the shared list is read
        for ev in got.events:
            if ev.kind == "reject":
                reject(ev.parent, ev.plan, ev.stage, ev.reason, ev.steps, (it, *ev.where))
                continue
            ev.candidate = Candidate(next_id, ev.schedule, None, None, ev.parent.id, ev.plan, it, workload,
                                     config=config)
            next_id += 1
        proposals.extend((ev.candidate, ev.key) for ev in got.children)
        for bi in got.exhausted_bi:
            exhausted.add(beam[bi].id)

    emit("start")
    while samples < S.budget and (S.iterations is None or it < S.iterations):
        it += 1
        # ---- propose (deterministic) ------------------------------------------
        proposals: list[tuple[Candidate, str]] = []
        pending: set[str] = set()
        early: dict = {}
        if agent.concurrent:
            propose_stream(proposals, early)
        else:
            for bi, parent in enumerate(beam):
                n_before = len(proposals)
                for pi in range(S.plans):
                    rng = derive_rng(S.seed, it, bi, pi, "plan")
                    menu = menu_dropout(MENU, S.dropout, rng)
                    plans = agent.plan(parent, menu, 1, rng)
                    if not plans:
                        continue
                    plan = plans[0]
                    for ki in range(S.impls):
                        for retry in range(3):
                            r = derive_rng(S.seed, it, bi, pi, ki, retry)
                            try:
                                suffixes = agent.implement(parent, plan, 1, r)
                            except Exception as e:  # an agent bug is a lost proposal, not a lost search
                                suffixes = []
                                reject(parent, plan, "agent", f"{type(e).__name__}: {e}", None, (it, bi, pi, ki, retry))
                            for n_rej, rej in enumerate(new_rejections()):
                                reject(parent, plan, str(rej.get("stage") or "agent"), str(rej.get("reason") or ""),
                                       rej.get("steps"), (it, bi, pi, ki, retry, n_rej))
                            if not suffixes:
                                break
                            try:
                                sched = parent.schedule.extend(suffixes[0])
                            except Exception as e:
                                reject(parent, plan, "schedule", str(e), suffixes[0], (it, bi, pi, ki, retry))
                                break
                            key = schedule_key(sched)
                            if key in seen or key in pending:
                                continue  # identical schedule: evaluated once; try another sample
                            pending.add(key)
                            c = Candidate(next_id, sched, None, None, parent.id, plan, it, workload, config=config)
                            next_id += 1
                            proposals.append((c, key))
                            break
                if len(proposals) == n_before:
                    exhausted.add(parent.id)
        room = S.budget - samples
        proposals = proposals[:room]
        if not proposals:
            refill = refill_beam([baseline] + children_all, exhausted, S.beam)
            trace.append((it, [c.id for c in beam]))
            if refill:
                beam = refill   # every candidate gets exhausted at most once: this ends
                continue
            idle += 1
            if idle >= S.max_idle:
                break
            continue
        idle = 0
        # ---- evaluate (parallel; stored results reused) -----------------------
        todo, idx = [], []
        results: list[Optional[dict]] = [None] * len(proposals)
        early_idx = []
        for i, (c, key) in enumerate(proposals):
            seen.add(key)
            r = run.lookup(key) if run else None
            if r is not None:
                results[i] = r
            elif key in early:
                early_idx.append(i)
            else:
                todo.append(task(c.schedule, base_cycles))
                idx.append(i)

        def done(j: int, res: dict) -> None:
            nonlocal samples
            i = idx[j]
            c, key = proposals[i]
            results[i] = res
            if run is not None:
                run.commit(record(c, res, key))
            m = res.get("measurement") or {}
            emit("candidate", ok=bool(m.get("ok")), cycles=m.get("cycles"), id=c.id)

        for i in early_idx:   # started while the requests were out
            idx.append(i)
            done(len(idx) - 1, early[proposals[i][1]].result())
        pool.run(todo, done)
        samples += len(proposals)
        # ---- accept (in generation order) -------------------------------------
        by_id = {c.id: c for c in beam}
        accepted = []
        for i, (c, key) in enumerate(proposals):
            res = results[i] or {}
            c.measurement = Measurement.from_dict(res.get("measurement") or {"ok": False, "stage": "worker"})
            c.proc_text = res.get("proc_text")
            c.facts = res.get("facts")
            children_all.append(c)
            if accept(c, by_id[c.parent]):
                accepted.append(c)
        agent.notify([c for c, _key in proposals])
        beam = next_beam(beam, accepted, S.beam)
        if beam[0].cycles < best.cycles:
            best = beam[0]
        beam = replace_exhausted(beam, [baseline] + children_all, exhausted, S.beam)
        trace.append((it, [c.id for c in beam]))
        if run is not None:
            run.write_best(_best_record(best, baseline, samples, it))
        emit("iteration", accepted=len(accepted), evaluated=len(proposals))
    if run is not None:
        run.write_best(_best_record(best, baseline, samples, it, final=True))
    emit("end")
    return SearchResult(best, baseline, beam, children_all, samples, it, trace)


def _best_record(best: Candidate, baseline: Candidate, samples: int, it: int, final: bool = False) -> dict:
    m = best.measurement
    return {
        "id": best.id, "parent": best.parent, "iteration": best.iteration, "final": final,
        "cycles": best.cycles, "baseline_cycles": baseline.cycles,
        "speedup": baseline.cycles / best.cycles if best.cycles else None,
        "utilization": m.utilization if m else None,
        "samples_used": samples, "iterations": it,
        "schedule": best.schedule.to_list(),
        "menu": [s.menu for s in best.schedule.steps],
        "proc_text": best.proc_text,
    }
