"""Transfer recorded schedules to new GEMM shapes.

``transfer(record, proc, budget=...)`` starts a search for ``proc`` from one or
more library records of *similar* shapes, in three phases:

1. **Adapted replay.** Each record's schedule is replayed on the new shape with
   its shape-dependent parameters adapted (see `adapt`).  Every distinct
   adapted schedule that Exo accepts is evaluated (simulated, checked
   bit-exact): one sample each.
2. **Guided phase.** From the best so far, the record's menu options (the
   ``menu`` label of its steps, in order of first use) are applied one at a
   time: a small beam search (`search.beam_search`, 2 iterations, beam 2)
   whose agent only gets that one option.
3. **Full search** for the rest of the budget (`search.beam_search` with the
   usual menu and dropout) from the best so far. When it runs out of
   proposals with budget left (the agent has nothing new for a fully
   unrolled schedule), the rest goes to a search from Exo's standard mapping
   (phase ``fresh``).

Similar shapes (`similarity`): the same signature apart from M, N, K, and
either two of M, N, K equal, or the same aspect ratio (M:N:K proportional).

How a schedule is adapted (`adapt`).  The Exo standard mapping prefix
(steps labelled ``exo-unopt``) is rebuilt for the new shape with
`baselines.exo_unopt.schedule` (its tile widths depend on N and K). The later
steps are replayed with Exo, one by one:

- a *move* (`autocomp_exo.moves`) keeps its recorded decisions (policy
  ``keep``) or, for ``tile_loop``, has its factor scaled by the loop's extent
  ratio between the shapes (``scale``: the record's own-shape facts are read
  only for this). When it fails or overflows on the new shape (buffers over
  the scratchpad / accumulator, more than ``max_calls`` calls), the
  alternatives of `moves.resample.alternatives` are tried in order (read from
  the new proc's facts: divisors of the loop's extent now, fewer unrolled
  levels, ...); when none applies the step is dropped;
- any other (primitive) step is replayed unchanged and dropped when it fails
  or overflows: its integers are not guessed.

Every change and drop is noted. The result is only trusted after simulation:
each adapted schedule is evaluated like any other candidate.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from .agents.base import Agent
from .menu import option as menu_option
from .search import SearchSettings
from .library import Library, Record, RecordError, StaleRecord, hardware_fingerprint, record_from_result, verify
from .workloads import Workload, WorkloadError

__all__ = ["similarity", "similar_records", "adapt", "Adapted", "transfer", "TransferResult",
           "OptionAgent", "optimize_with_library", "StaleRecordWarning", "GUIDE_SKIP"]

#: menu labels that are not options of the search (the baselines' steps)
GUIDE_SKIP = ("exo-unopt", "exo-opt", None, "")
MAX_CALLS = 700   # straight-line code cap of an adapted schedule (calls): past it a step is too big


class StaleRecordWarning(UserWarning):
    """A library record that no longer replays or no longer gives its cycles (not used)."""


# --------------------------------------------------------------------------- #
# Similar shapes
# --------------------------------------------------------------------------- #


def similarity(a: Any, b: Any) -> Optional[tuple]:
    """How ``b`` (a record's signature or workload) is similar to ``a`` (the new one).

    Delegates to the workload's `Workload.similarity` (signatures are rebuilt
    with `Workload.from_signature`; one without "kind" is a GEMM). Returns
    None when not similar, else a sort key; for GEMMs ``(rule, distance)``:
    rule 0 for the same shape, 1 for two shared dimensions, 2 for the same
    aspect ratio; distance is |log(volume ratio)|.
    """
    try:
        wa = Workload.from_signature(a) if isinstance(a, dict) else a
        wb = Workload.from_signature(b) if isinstance(b, dict) else b
    except (WorkloadError, KeyError, TypeError, ValueError):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for k in ("dtype", "acc"):   # kept in the signature, not in the workload object
            if a.get(k, "int8" if k == "dtype" else "int32") != b.get(k, "int8" if k == "dtype" else "int32"):
                return None
    return wa.similarity(wb)


def similar_records(source: Any, workload: Any, *, config: Any = None, include_same: bool = False,
                    limit: Optional[int] = None, other_hardware: bool = True) -> list[Record]:
    """Records of ``source`` (a Library, path, or iterable of Records) similar to ``workload``,
    closest first.  Records for this hardware come first; records made for
    another hardware configuration follow (``other_hardware``): a transfer
    re-measures everything it takes from them, so they are still useful starts."""
    from .library import signature_of

    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        source = Library(source)
    recs = source.records() if isinstance(source, Library) else list(source)
    sig = signature_of(workload)
    hw = hardware_fingerprint(config)
    scored = []
    for r in recs:
        if r.hardware != hw and not other_hardware:
            continue
        s = similarity(sig, r.workload)
        if s is None or (s[0] == 0 and not include_same):
            continue
        scored.append(((r.hardware != hw,) + s, r.cycles, r.name, r))
    scored.sort(key=lambda x: x[:3])
    out = [x[3] for x in scored]
    return out[:limit] if limit else out


# --------------------------------------------------------------------------- #
# Phase 1: adapting a schedule to a new shape
# --------------------------------------------------------------------------- #


@dataclass
class Adapted:
    schedule: Any                     # Schedule for the new workload
    policy: str
    source: Record
    notes: list = field(default_factory=list)   # what was changed or dropped

    def __repr__(self) -> str:
        return f"Adapted({self.source.name} -> {len(self.schedule)} steps, {self.policy}, {len(self.notes)} notes)"


def _overflow(before: Any, after: Any, config: Any, max_calls: int) -> str:
    """Why the step that turned facts ``before`` into ``after`` is too big for
    the new shape ("" when it is not): local buffers over ``config``'s
    capacity (all at once: an upper bound), or more than ``max_calls`` calls
    of straight-line code. Only what the step itself made so counts."""
    over = after.over_capacity(config)
    if over and not before.over_capacity(config):
        return over
    n = after.n_calls()
    if n > max_calls and n > before.n_calls():
        return f"{n} calls > {max_calls}"
    return ""


def _unopt_prefix_len(record: Record) -> int:
    """Number of leading steps that are Exo's standard mapping of the record's shape (0 if not)."""
    from .baselines import exo_unopt

    steps = record.schedule.steps
    if not steps or steps[0].menu != exo_unopt.MENU:
        return 0
    try:
        pre = exo_unopt.schedule(record.gemm_workload())
    except Exception:
        return 0
    if pre.is_prefix_of(record.schedule):
        return len(pre)
    return 0


def _source_facts(record: Record, start: int) -> dict:
    """Facts of the record's own proc before each of its ``tile_loop`` steps
    (index -> ProcFacts): the old loop extents the ``scale`` policy scales by.
    Replays only up to the last ``tile_loop``; {} when the record does not
    replay on its own shape."""
    from .proc_facts import facts
    from .schedule import Schedule, ScheduleError, _apply_step

    steps = record.schedule.steps
    idx = [i for i in range(start, len(steps)) if steps[i].op == "tile_loop"]
    if not idx:
        return {}
    out = {}
    try:
        p = Schedule(steps[:start]).apply(record.gemm_workload().proc)
    except ScheduleError:
        return {}
    for i in range(start, idx[-1] + 1):
        if i in idx:
            out[i] = facts(p)
        try:
            p = _apply_step(p, steps[i], i)
        except ScheduleError:
            pass
    return out


def _scaled(d: dict, f: Any, old: Any) -> dict:
    """``tile_loop`` decisions with the factor scaled by the loop's extent ratio (new / old)."""
    new_lp = f.loop(d["loop"])
    old_lp = old.loop(d["loop"]) if old is not None else None
    if new_lp is None or old_lp is None or not new_lp.extent or not old_lp.extent or new_lp.extent == old_lp.extent:
        return d
    return {**d, "factor": max(2, round(d["factor"] * new_lp.extent / old_lp.extent))}


def _change_note(i: int, op: str, d0: dict, d: dict, f: Any, why: str) -> str:
    if op == "tile_loop":
        lp = f.loop(d["loop"])
        return (f"step {i} tile_loop {d['loop']!r}: factor {d0['factor']} -> {d['factor']} "
                f"(extent {lp.extent if lp is not None else '?'})")
    what = ", ".join(f"{k} {d0.get(k)!r} -> {v!r}" for k, v in d.items() if d0.get(k) != v)
    return f"step {i} {op}: {what}" + (f" ({why})" if why else "")


def adapt(record: Record, workload: Any, *, policies: Sequence[str] = ("keep", "scale"),
          max_calls: int = MAX_CALLS, config: Any = None) -> list[Adapted]:
    """The record's schedule rewritten for ``workload`` (one per policy, distinct schedules only).

    Applies every step with Exo while it rewrites, so each returned schedule
    replays on the new shape (it is not yet simulated). ``config``: the
    GemminiConfig whose capacities the buffers must fit (None: the default)."""
    from .baselines import exo_unopt
    from .moves import MOVES
    from .moves.resample import alternatives, decisions_of
    from .proc_facts import facts
    from .schedule import Schedule, ScheduleError, Step, _apply_step
    from .workloads import GemmWorkload, workload_of

    if not isinstance(workload, GemmWorkload):
        workload = workload_of(workload)
    steps = record.schedule.steps
    n_pre = _unopt_prefix_len(record)
    old = _source_facts(record, n_pre) if "scale" in policies else {}
    new_pre = exo_unopt.schedule(workload) if n_pre else Schedule([])
    base = new_pre.apply(workload.proc)
    base_facts = facts(base)
    out: list[Adapted] = []
    seen = set()
    for policy in policies:
        notes: list[str] = []
        if n_pre and record.gemm_workload() != workload:
            notes.append(f"steps 0-{n_pre - 1}: Exo's standard mapping rebuilt for {workload.name}")
        p, f = base, base_facts
        kept: list[Step] = []
        for i in range(n_pre, len(steps)):
            s = steps[i]
            d0: Optional[dict] = None
            tries: list = [None]                       # None: the step as recorded
            if s.op in MOVES:
                d0 = decisions_of(s.op, s.args, s.kwargs)
                of = old.get(i) if policy == "scale" else None
                first = _scaled(d0, f, of) if of is not None else d0
                tries = [first] + [a for a in alternatives(f, s.op, d0, config, old_facts=of) if a != first]
            why, got = "", None
            for d in tries:
                s2 = s if d is None or d == d0 else Step(s.op, [d[n] for n, _k, _v in MOVES[s.op].params], {},
                                                         s.menu)
                try:
                    p2 = _apply_step(p, s2, len(new_pre) + len(kept))
                except ScheduleError as e:
                    why = why or e.message.splitlines()[0][:160]
                    continue
                f2 = facts(p2)
                over = _overflow(f, f2, config, max_calls)
                if over:
                    why = why or f"{over} on {workload.name}"
                    continue
                got = (d, s2, p2, f2)
                break
            if got is None:
                notes.append(f"step {i} {s.op}: dropped ({why})")
                continue
            d, s2, p, f2 = got
            if s2 is not s:
                notes.append(_change_note(i, s.op, d0, d, f, why))
            f = f2
            kept.append(s2)
        sched = new_pre.extend(kept)
        key = sched.canonical()
        if key in seen:
            continue
        seen.add(key)
        out.append(Adapted(sched, policy, record, notes))
    return out


def adapt_task(task: dict) -> dict:
    """`adapt` as a worker task (``{"kind": "adapt", "record": {...}, "M", "N", "K", "relu"}``,
    optionally ``"config"``: a ``GemminiConfig.to_dict()``):
    the replays of the record on both shapes run in a worker under the
    per-candidate timeout. Returns ``{"measurement": {"ok", ...}, "adapted":
    [{"schedule", "policy", "notes"}], "seconds"}``."""
    from .workers import failed_result
    from .workloads import GemmWorkload

    t0 = time.perf_counter()
    try:
        rec = Record.from_dict(task["record"])
        w = GemmWorkload(int(task["M"]), int(task["N"]), int(task["K"]), bool(task.get("relu", False)))
        cfg = task.get("config")
        if cfg is not None:
            from gemmini_isa import GemminiConfig

            cfg = GemminiConfig(**cfg)
        ads = adapt(rec, w, config=cfg)
    except Exception as e:  # a record that cannot even be replayed on its own shape
        return failed_result("schedule", f"{type(e).__name__}: {e}", time.perf_counter() - t0, task)
    return {"measurement": {"ok": True, "stage": None, "error": None},
            "adapted": [{"schedule": a.schedule.to_list(), "policy": a.policy, "notes": list(a.notes)}
                        for a in ads],
            "proc_text": None, "facts": None, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- #
# Phases 2-3: the search's API
# --------------------------------------------------------------------------- #


class OptionAgent(Agent):
    """Wraps an agent so that every plan uses one fixed menu option.

    Everything else is the wrapped agent's: its ``rejections`` list (so the
    search records the answers an LLM agent refused in the guided phase),
    ``notify``, and batched requests (``concurrent``, ``plan_many``,
    ``implement_many``)."""

    def __init__(self, agent: Any, option: str):
        self.agent = agent
        self.option = menu_option(option)
        self.name = f"{getattr(agent, 'name', type(agent).__name__)}[{option}]"
        self.concurrent = bool(getattr(agent, "concurrent", False))

    @property
    def rejections(self) -> list:
        rej = getattr(self.agent, "rejections", None)
        if not isinstance(rej, list):   # a duck-typed agent without the base class
            rej = self.__dict__.setdefault("_rejections", [])
        return rej

    def plan(self, candidate, menu, n, rng):
        return self.agent.plan(candidate, [self.option], n, rng)

    def implement(self, candidate, plan, k, rng):
        return self.agent.implement(candidate, plan, k, rng)

    def plan_many(self, requests):
        return self.agent.plan_many([(c, [self.option], n, r) for c, _m, n, r in requests])

    def implement_many(self, requests):
        return self.agent.implement_many(requests)

    def notify(self, results) -> None:
        notify = getattr(self.agent, "notify", None)
        if callable(notify):
            notify(results)


@dataclass
class TransferResult:
    """Like `optimize.Result`, plus what the transfer did."""

    proc: Any
    c_code: str
    schedule: Any
    cycles: int
    baseline_cycles: int          # Exo's standard mapping of the new shape
    speedup: float
    utilization: float
    samples_used: int
    run_dir: Optional[str] = None
    workload: Any = None
    search: Any = None            # the last SearchResult
    sources: list = field(default_factory=list)     # records used
    adapted: list = field(default_factory=list)     # [(Adapted, Measurement)]
    phases: dict = field(default_factory=dict)      # phase -> {"samples", "best_cycles"}
    history: list = field(default_factory=list)     # per sample: cycles (None if failed), in order
    notes: list = field(default_factory=list)
    start: str = "transfer"

    def best_after(self, n: int) -> Optional[int]:
        """Fewest cycles among the first ``n`` samples (None if none was correct)."""
        ok = [c for c in self.history[:n] if c]
        return min(ok) if ok else None

    def summary(self) -> str:
        return (f"{getattr(self.workload, 'name', 'gemm')}: baseline {self.baseline_cycles:,} cycles -> best "
                f"{self.cycles:,} cycles, {self.speedup:.2f}x, {100 * self.utilization:.1f}% utilization, "
                f"{self.samples_used} samples (from {', '.join(r.name for r in self.sources) or '-'})")


#: for steps without a search menu label (hand-written records): the option an op most likely served
OP_OPTIONS = {
    "divide_loop": "tiling", "reorder_loops": "reorder", "unroll_loop": "unroll", "lift_alloc": "scratchpad_reuse",
    "autolift_alloc": "double_buffer", "remove_loop": "guarded_loads", "fission": "split", "fuse": "fuse",
    "reorder_stmts": "reorder_stmts", "sink_alloc": "spread", "simplify": "simplify",
}


class _MemoPool:
    """A WorkerPool that evaluates each distinct task once per transfer (the
    phases re-evaluate their starting schedule; the beam searches of the
    phases may propose the same schedule again)."""

    def __init__(self, pool: Any):
        import json as _json

        self.pool, self.memo, self._dumps = pool, {}, _json.dumps

    def run(self, tasks, on_done=None):
        keys = [self._dumps(t, sort_keys=True) for t in tasks]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        first = {}
        for i in todo:
            first.setdefault(keys[i], i)
        uniq = sorted(first.values())

        def done(j, res):
            self.memo[keys[uniq[j]]] = res
            if on_done:
                for i, k in enumerate(keys):
                    if k == keys[uniq[j]] and i in todo:
                        on_done(i, res)

        self.pool.run([tasks[i] for i in uniq], done)
        out = [self.memo[k] for k in keys]
        if on_done:
            for i in range(len(tasks)):
                if i not in todo:
                    on_done(i, out[i])
        return out

    def close(self):
        self.pool.close()


def _menu_options(records: Iterable[Record]) -> list[str]:
    """The records' menu options in order of first use; for steps labelled with
    a baseline (``exo-opt``: hand-written), the option of the op (OP_OPTIONS)."""
    from .menu import KEYS

    out = []
    for r in records:
        for st in r.schedule.steps:
            m = st.menu
            if m in ("exo-unopt", None, ""):
                continue
            if m in GUIDE_SKIP or m not in KEYS:
                m = OP_OPTIONS.get(st.op)
            if m and m in KEYS and m not in out:
                out.append(m)
    return out


_D = SearchSettings.defaults()


def transfer(record: Any, proc: Any, *, budget: int = 30, agent: Any = None, beam: int = _D["beam"],
             plans: int = _D["plans"], impls: int = _D["impls"], dropout: float = _D["dropout"], seed: int = 0, workers: Optional[int] = None,
             timeout: Optional[float] = 600.0, config: Any = None, relu: bool = False, eval_seed: int = 0,
             max_sources: int = 2, guided_beam: int = 2, guided_budget: Optional[int] = None,
             pool: Any = None, progress: Optional[Callable[[dict], None]] = None,
             baseline_cycles: Optional[int] = None, run_dir: Optional[str] = None) -> TransferResult:
    """Search for ``proc`` (GEMM proc or GemmWorkload) starting from ``record``.

    ``record`` is a Record, a list of Records, or a Library (its records
    similar to ``proc`` are used, closest first, at most ``max_sources``).
    ``budget`` counts evaluated candidates across the three phases.
    Every replay (adapting a record, evaluating a candidate) runs in the
    worker pool under ``timeout``. ``run_dir``: the run directory (every
    candidate, resumable; ``best.json`` and ``best.c``). ``progress``
    events have the search's schema (``event``, ``samples``, ``budget``,
    ``best_cycles``, ``baseline_cycles``, ``speedup``, ``iteration``) plus
    ``phase``; samples and best are over the whole transfer.
    """
    from .runs import RunDir, schedule_key
    from .agents.offline import OfflineAgent
    from .baselines import exo_unopt
    from .measurement import Measurement
    from .schedule import Schedule
    from .search import beam_search
    from .workers import Task, WorkerPool
    from .workloads import GemmWorkload, workload_of

    from .workloads import recognise

    user = None
    if isinstance(proc, GemmWorkload):
        w = proc
    else:
        user = recognise(proc, relu=relu)
        w = user.workload
        if not isinstance(w, GemmWorkload):
            raise WorkloadError(f"{proc.name()} is {user.variant}: recognised, but the search maps only the "
                                "scaled int8 GEMM onto Gemmini so far")
    if isinstance(record, Record):
        sources = [record]
    elif isinstance(record, Library) or isinstance(record, (str, bytes)) or hasattr(record, "__fspath__"):
        sources = similar_records(record, w, config=config, limit=max_sources)
    else:
        sources = list(record)[:max_sources]
    agent = agent or OfflineAgent()
    run = None
    if run_dir is not None:
        run = RunDir(run_dir)
        run.start({"workload": w.signature(), "agent": getattr(agent, "name", type(agent).__name__),
                   "start": "transfer from " + ", ".join(f"{r.name}:{r.cycles}" for r in sources),
                   "config": None if config is None else config.to_dict(), "seed": seed, "beam": beam,
                   "plans": plans, "impls": impls, "dropout": dropout, "iterations": None,
                   "eval_seed": eval_seed, "budget": budget, "workers": workers})
    own_pool = pool is None
    pool = _MemoPool(pool or WorkerPool(workers, timeout))
    history: list = []
    notes: list = []
    phases: dict = {}
    extra = {} if config is None else {"config": config.to_dict()}
    state = {"best": None, "baseline": None, "iteration": 0}

    def emit(ev: dict, phase: int) -> None:
        """One schema for every phase: the transfer's totals over the sub-search's."""
        if not progress:
            return
        bc = state["baseline"]
        best = state["best"]
        if ev.get("best_cycles") and (best is None or ev["best_cycles"] < best):
            best = ev["best_cycles"]
        if ev.get("iteration") is not None and phase > 1:
            state["iteration"] = max(state["iteration"], int(ev["iteration"]))
        out = {**ev, "phase": phase, "samples": len(history), "budget": budget,
               "best_cycles": best, "baseline_cycles": bc, "iteration": state["iteration"] if phase > 1 else 0,
               "speedup": (bc / best) if bc and best else None}
        progress(out)

    def task(s: Schedule, bc=None) -> dict:
        return Task.of(w, s, seed=eval_seed, baseline_cycles=bc, **extra).to_dict()

    try:
        # the baseline (Exo's standard mapping of the new shape; not a sample)
        unopt = exo_unopt.schedule(w)

        def run_logged(scheds: list, bc=None) -> list:
            """Evaluate in the pool; with a run directory, finished ones are looked up, new ones logged."""
            keys = [schedule_key(x) for x in scheds]
            out = [run.lookup(k) if run else None for k in keys]
            todo = [i for i, r in enumerate(out) if r is None]
            got = pool.run([task(scheds[i], bc) for i in todo])
            for i, r in zip(todo, got):
                out[i] = r
                if run is not None:
                    run.append({"id": None, "key": keys[i], "parent": None, "iteration": 0, "plan": None,
                                "menu": [], "schedule": scheds[i].to_list(), "phase": "replay",
                                "measurement": r.get("measurement"), "proc_text": r.get("proc_text"),
                                "facts": r.get("facts"), "seconds": r.get("seconds")})
            return out

        if baseline_cycles is None:
            r0 = run_logged([unopt])[0]
            m0 = Measurement.from_dict(r0["measurement"])
            if not m0.ok:
                raise RuntimeError(f"the baseline failed: {m0.stage}: {m0.error}")
            baseline_cycles = m0.cycles
        best_sched, best_cycles, best_m = unopt, baseline_cycles, None
        state["baseline"] = state["best"] = baseline_cycles
        emit({"event": "start"}, 1)

        # ---- phase 1: adapted replay (adapting replays the records: in the pool, under the timeout)
        adapted_all: list = []
        t1 = time.perf_counter()
        a_tasks = [{"kind": "adapt", "record": r.to_dict(), "M": w.M, "N": w.N, "K": w.K, "relu": w.relu, **extra}
                   for r in sources]
        for r, rr in zip(sources, pool.run(a_tasks)):
            if not (rr.get("measurement") or {}).get("ok") or "adapted" not in rr:
                m = rr.get("measurement") or {}
                notes.append(f"{r.name}: cannot adapt ({m.get('stage')}: {(m.get('error') or '')[:300]})")
                continue
            for a in rr["adapted"]:
                if len(adapted_all) >= budget:
                    break
                adapted_all.append(Adapted(Schedule.from_json(a["schedule"]), a["policy"], r, list(a["notes"])))
        res = run_logged([a.schedule for a in adapted_all], baseline_cycles)
        adapted = []
        for a, rr in zip(adapted_all, res):
            m = Measurement.from_dict(rr["measurement"])
            adapted.append((a, m))
            history.append(m.cycles if m.ok else None)
            if m.ok and m.cycles < best_cycles:
                best_sched, best_cycles, best_m = a.schedule, m.cycles, m
                state["best"] = best_cycles
            elif not m.ok:
                notes.append(f"adapted {a.source.name} ({a.policy}) failed at {m.stage}: "
                             f"{(m.error or '').splitlines()[0][:160] if m.error else ''}")
            emit({"event": "candidate", "ok": m.ok, "cycles": m.cycles}, 1)
        phases["replay"] = {"samples": len(adapted), "best_cycles": best_cycles,
                            "seconds": time.perf_counter() - t1}

        def run_search(base: Schedule, ag: Any, settings: SearchSettings, phase: int):
            def prog(ev: dict) -> None:
                if ev.get("event") == "candidate":
                    history.append(ev.get("cycles") if ev.get("ok") else None)
                emit(ev, phase)

            sr_ = beam_search(w, base, ag, settings, pool=pool, task_extra=extra, progress=prog, run=run)
            if sr_.best.ok and (state["best"] is None or sr_.best.cycles < state["best"]):
                state["best"] = sr_.best.cycles
            return sr_

        # ---- phase 2: the records' menu options, one at a time -----------------
        t2 = time.perf_counter()
        sr = None
        options = _menu_options(sources)
        left = budget - len(history)
        g_budget = guided_budget if guided_budget is not None else min(left // 2, 6 * len(options))
        used2 = 0
        for k, opt in enumerate(options):
            per = (g_budget - used2) // (len(options) - k)
            if per <= 0:
                continue
            st = SearchSettings(beam=guided_beam, plans=2, impls=1, iterations=2, dropout=0.0, budget=per,
                                seed=seed * 1000 + k, eval_seed=eval_seed, max_idle=1)
            try:
                sr = run_search(best_sched, OptionAgent(agent, opt), st, 2)
            except RuntimeError as e:
                notes.append(f"guided {opt}: {e}")
                continue
            used2 += sr.samples_used
            if sr.best.ok and sr.best.cycles < best_cycles:
                best_sched, best_cycles, best_m = sr.best.schedule, sr.best.cycles, sr.best.measurement
        phases["guided"] = {"samples": used2, "options": options, "best_cycles": best_cycles,
                            "seconds": time.perf_counter() - t2}

        # ---- phase 3: the full search --------------------------------------------
        t3 = time.perf_counter()
        start3 = best_sched
        left = budget - len(history)
        used3 = 0
        if left > 0:
            st = SearchSettings(beam=beam, plans=plans, impls=impls, dropout=dropout, budget=left, seed=seed,
                                eval_seed=eval_seed)
            sr = run_search(best_sched, agent, st, 3)
            used3 = sr.samples_used
            if sr.best.ok and sr.best.cycles < best_cycles:
                best_sched, best_cycles, best_m = sr.best.schedule, sr.best.cycles, sr.best.measurement
        phases["search"] = {"samples": used3, "best_cycles": best_cycles, "seconds": time.perf_counter() - t3}

        # ---- the records' structure exhausted with budget left (the agent has
        # nothing new for a fully unrolled schedule): the rest goes to a search
        # from Exo's standard mapping, so reuse never leaves samples unspent
        left = budget - len(history)
        if left > 0 and start3.canonical() != unopt.canonical():
            t4 = time.perf_counter()
            st = SearchSettings(beam=beam, plans=plans, impls=impls, dropout=dropout, budget=left, seed=seed,
                                eval_seed=eval_seed)
            sr = run_search(unopt, agent, st, 4)
            if sr.best.ok and sr.best.cycles < best_cycles:
                best_sched, best_cycles, best_m = sr.best.schedule, sr.best.cycles, sr.best.measurement
            phases["fresh"] = {"samples": sr.samples_used, "best_cycles": best_cycles,
                               "seconds": time.perf_counter() - t4}
            notes.append(f"the search from the records ran out of proposals with {left} samples left: "
                         f"{sr.samples_used} went to a search from Exo's standard mapping")
    finally:
        if own_pool:
            pool.close()
        pool.memo.clear()

    sp, c_code = None, ""
    try:
        sp = best_sched.apply(w.proc)
        from .exo_compile import to_c

        c_code = to_c(sp)[0]
    except Exception:
        pass
    util = best_m.utilization if best_m is not None and best_m.utilization is not None else \
        w.macs / 256 / best_cycles
    if run is not None:
        run.write_best({"cycles": best_cycles, "baseline_cycles": baseline_cycles,
                        "speedup": baseline_cycles / best_cycles, "utilization": util,
                        "samples_used": len(history), "final": True, "schedule": best_sched.to_list(),
                        "menu": [st.menu for st in best_sched.steps], "phases": phases, "notes": notes,
                        "sources": [r.name for r in sources]})
        if c_code:
            from .atomic_write import write_atomic

            write_atomic(run.path / "best.c", c_code)
    emit({"event": "end"}, 4)
    result = TransferResult(proc=sp, c_code=c_code, schedule=best_sched, cycles=best_cycles,
                            baseline_cycles=baseline_cycles, speedup=baseline_cycles / best_cycles,
                            utilization=util, samples_used=len(history), workload=w, search=sr,
                            sources=sources, adapted=adapted, phases=phases, history=history, notes=notes,
                            run_dir=str(run.path) if run else None)
    if user is not None:
        from .optimize import _as_user

        _as_user(result, user)
    return result


# --------------------------------------------------------------------------- #
# optimize with a library (what `optimize(..., library=, reuse=)` does)
# --------------------------------------------------------------------------- #


def _as_library(x: Any) -> Optional[Library]:
    if x is None or x is False:
        return None
    if isinstance(x, Library):
        return x
    return Library(x)


def optimize_with_library(proc: Any, *, library: Any = None, reuse: Any = None, budget: int = 120,
                          agent: Any = None, seed: int = 0, config: Any = None, relu: bool = False,
                          save: bool = True, report: Optional[Callable[[str], None]] = None,
                          **kw) -> Any:
    """`optimize` with a schedule library.

    - ``library``: when it holds a record for the same signature and hardware,
      the record is re-verified (replayed, simulated, checked, cycles compared);
      a verified record is the search's starting point, a stale one is
      reported (``StaleRecordWarning`` and ``report``) and not trusted.  The
      winner is saved to ``library`` (kept only if faster).
    - ``reuse``: a library (or path) of records of similar shapes: when there
      is no usable record for this shape, the search is a `transfer` from them.
    """
    from .optimize import _as_user, optimize
    from .workloads import GemmWorkload, recognise

    lib = _as_library(library)
    reuse_lib = _as_library(reuse)
    say = report or (lambda s: None)

    def save_result(result, **rkw) -> None:
        """Add the winner to ``lib``: verified first; a record that does not replay
        on its workload (a search from a mapped proc) is refused and reported."""
        if lib is None or not save:
            return
        try:
            lib.add(record_from_result(result, config=config, agent=agent or "offline", seed=seed, **rkw),
                    config=config, timeout=kw.get("timeout", 600.0))
        except RecordError as e:
            result.library_error = str(e)
            warnings.warn(f"not saved to {lib.path}: {e}", StaleRecordWarning, stacklevel=3)
            say(f"not saved to the library: {e}")

    if proc is None:   # an already mapped proc given as baseline=: nothing to start from, only save
        result = optimize(None, budget=budget, agent=agent, seed=seed, config=config, relu=relu, **kw)
        result.stale_record = None
        save_result(result, source="search (from a mapped proc)", baseline="mapped proc")
        return result
    user = None
    if isinstance(proc, GemmWorkload):
        w = proc
    else:
        user = recognise(proc, relu=relu)
        w = user.workload
        if not isinstance(w, GemmWorkload):
            raise WorkloadError(f"{proc.name()} is {user.variant}: recognised, but the search maps only the "
                                "scaled int8 GEMM onto Gemmini so far")
    start_record = None
    stale = None
    if lib is not None and kw.get("baseline") is None:   # an explicit starting point wins
        rec = lib.best(w, config=config)
        if rec is not None:
            v = verify(rec, config=config, timeout=kw.get("timeout", 600.0))
            if v.ok:
                start_record = rec
                say(f"starting from the library record for {rec.name} ({rec.cycles:,} cycles, verified)")
            else:
                stale = StaleRecord(rec, v.reason, v.measured)
                warnings.warn(str(stale), StaleRecordWarning, stacklevel=2)
                say(str(stale))
    result = None
    if start_record is not None:
        from .baselines import exo_unopt

        kw.pop("baseline", None)
        result = optimize(w, budget=budget, agent=agent, seed=seed, config=config, baseline=start_record.schedule,
                          **kw)
        # speedup over Exo's standard mapping, as everywhere else in the library
        if start_record.baseline_cycles:
            result.baseline_cycles = start_record.baseline_cycles
            result.speedup = result.baseline_cycles / result.cycles
    elif reuse_lib is not None and similar_records(reuse_lib, w, config=config):
        keep = {k: kw[k] for k in ("beam", "plans", "impls", "dropout", "workers", "timeout", "eval_seed", "progress",
                                   "run_dir") if k in kw}
        from .optimize import _progress_fn

        bar = _progress_fn(keep.get("progress"), budget)
        keep["progress"] = bar
        try:
            result = transfer(reuse_lib, w, budget=budget, agent=agent, seed=seed, config=config, **keep)
        finally:
            if hasattr(bar, "close"):
                bar.close()
    else:
        result = optimize(w, budget=budget, agent=agent, seed=seed, config=config, **kw)
    result.stale_record = stale
    source = "search" if start_record is None else "search (from library record)"
    if isinstance(result, TransferResult):
        source = "transfer from " + ", ".join(r.name for r in result.sources)
    save_result(result, source=source)
    if user is not None:
        _as_user(result, user)
    return result


# --------------------------------------------------------------------------- #
# CLI: `autocomp-exo transfer gemm M N K --from DIR` (the parser is in cli.py)
# --------------------------------------------------------------------------- #


def run_transfer(args) -> int:
    import json as _json

    from .library import _default_path
    from .optimize import SettingsError, _Bar, _one_line, _result_json, validate_settings
    from .workloads import GemmWorkload

    try:
        w = GemmWorkload(args.M, args.N, args.K, args.relu)
        validate_settings(budget=args.budget, beam=args.beam, plans=args.plans, impls=args.impls,
                          dropout=args.dropout, workers=args.workers, timeout=args.timeout)
    except (WorkloadError, SettingsError) as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2
    src = Library(args.source or _default_path())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Warning)
        sources = similar_records(src, w)
    if not sources:
        print(f"autocomp-exo: error: no record in {src.path} is similar to {w.name}", file=sys.stderr)
        return 2
    bar = _Bar(args.budget, args.quiet or args.json)
    try:
        r = transfer(src, w, budget=args.budget, beam=args.beam, plans=args.plans, impls=args.impls,
                     dropout=args.dropout, seed=args.seed, workers=args.workers, timeout=args.timeout,
                     run_dir=args.run_dir, progress=bar)
    except (ValueError, RuntimeError) as e:
        print(f"autocomp-exo: error: {_one_line(e)}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    if args.library:
        try:
            Library(args.library).add(record_from_result(r, source="transfer from " + ", ".join(
                x.name for x in r.sources), agent="offline", seed=args.seed), timeout=args.timeout)
        except RecordError as e:
            print(f"autocomp-exo: warning: not saved: {e}", file=sys.stderr)
    if args.json:
        d = _result_json(r)
        d.update({"sources": [x.name for x in r.sources], "phases": r.phases, "notes": r.notes})
        print(_json.dumps(d, sort_keys=True, default=str))
    else:
        print(r.summary())
        for n in r.notes:
            print(f"  note: {n}")
        if r.run_dir:
            print(f"run directory: {r.run_dir}")
    return 0
