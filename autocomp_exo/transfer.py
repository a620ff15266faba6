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

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from gemmini_isa import GemminiConfig

from .agents.base import Agent
from .agents.offline import OfflineAgent
from .baselines import exo_unopt
from .driver import Session, as_user, compile_best, resolve_workload, start_run, write_best_c
from .library import Library, Record, StaleRecord, hardware_fingerprint, signature_of
from .measurement import Measurement
from .menu import KEYS, option as menu_option
from .moves import MOVES
from .moves.resample import alternatives, decisions_of
from .proc_facts import facts
from .schedule import Schedule, ScheduleError, Step, _apply_step
from .search import SearchSettings
from .workers import WorkerPool, failed_result
from .workloads import GemmWorkload, Workload, WorkloadError, workload_of

__all__ = ["similarity", "similar_records", "adapt", "Adapted", "initial_population", "transfer",
           "TransferResult", "OptionAgent", "StaleRecordWarning", "StaleRecord", "GUIDE_SKIP"]

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
    if not isinstance(workload, Workload):
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
    """`adapt` as a worker task (``{"kind": "adapt", "record": {...}, "workload": signature}``;
    a task without "workload" is the GEMM of its "M", "N", "K", "relu"),
    optionally ``"config"``: a ``GemminiConfig.to_dict()``):
    the replays of the record on both shapes run in a worker under the
    per-candidate timeout. Returns ``{"measurement": {"ok", ...}, "adapted":
    [{"schedule", "policy", "notes"}], "seconds"}``."""
    t0 = time.perf_counter()
    try:
        rec = Record.from_dict(task["record"])
        sig = task.get("workload")
        w = Workload.from_signature(sig) if sig is not None else \
            GemmWorkload(int(task["M"]), int(task["N"]), int(task["K"]), bool(task.get("relu", False)))
        cfg = task.get("config")
        if cfg is not None:
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
        self.pool, self.memo, self._dumps = pool, {}, json.dumps

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


def initial_population(sources: Sequence[Record], workload: Any, session: Session, limit: int,
                       notes: Optional[list] = None) -> list[Adapted]:
    """What transfer gives the driver to start from: every record of ``sources``
    adapted to ``workload`` (`adapt`, one per policy; at most ``limit`` in
    all). Adapting replays the records, so it runs in the session's worker
    pool under the per-candidate timeout (a ``"kind": "adapt"`` task); a
    record that cannot be adapted is noted in ``notes``. Not yet evaluated:
    `driver.Session.evaluate` does that."""
    notes = notes if notes is not None else []
    w = workload
    out: list = []
    a_tasks = [{"kind": "adapt", "record": r.to_dict(), "workload": w.to_task(), **session.extra} for r in sources]
    for r, rr in zip(sources, session.pool.run(a_tasks)):
        if not (rr.get("measurement") or {}).get("ok") or "adapted" not in rr:
            m = rr.get("measurement") or {}
            notes.append(f"{r.name}: cannot adapt ({m.get('stage')}: {(m.get('error') or '')[:300]})")
            continue
        for a in rr["adapted"]:
            if len(out) >= limit:
                break
            out.append(Adapted(Schedule.from_json(a["schedule"]), a["policy"], r, list(a["notes"])))
    return out


_D = SearchSettings.defaults()
_T = SearchSettings.defaults(preset="transfer")
_G = SearchSettings.defaults(preset="guided")


def transfer(record: Any, proc: Any, *, budget: int = _T["budget"], agent: Any = None, beam: int = _D["beam"],
             plans: int = _D["plans"], impls: int = _D["impls"], dropout: float = _D["dropout"], seed: int = 0,
             workers: Optional[int] = None, timeout: Optional[float] = 600.0, config: Any = None,
             relu: bool = False, eval_seed: int = 0, max_sources: int = 2, guided_beam: int = _G["beam"],
             guided_budget: Optional[int] = None,
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

    The records enter as the driver's initial population (`initial_population`,
    evaluated with `driver.Session.evaluate`); the later phases are
    `driver.Session.search` runs into the same run directory.
    """
    w, user = resolve_workload(proc, relu)
    if isinstance(record, Record):
        sources = [record]
    elif isinstance(record, Library) or isinstance(record, (str, bytes)) or hasattr(record, "__fspath__"):
        sources = similar_records(record, w, config=config, limit=max_sources)
    else:
        sources = list(record)[:max_sources]
    agent = agent or OfflineAgent()
    run = start_run(run_dir, {
        "workload": w.signature(), "agent": getattr(agent, "name", type(agent).__name__),
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
    session = Session(w, pool, run=run, extra=extra, eval_seed=eval_seed)
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

    try:
        # the baseline (Exo's standard mapping of the new shape; not a sample)
        unopt = exo_unopt.schedule(w)
        if baseline_cycles is None:
            r0 = session.evaluate([unopt])[0]
            m0 = Measurement.from_dict(r0["measurement"])
            if not m0.ok:
                raise RuntimeError(f"the baseline failed: {m0.stage}: {m0.error}")
            baseline_cycles = m0.cycles
        best_sched, best_cycles, best_m = unopt, baseline_cycles, None
        state["baseline"] = state["best"] = baseline_cycles
        emit({"event": "start"}, 1)

        # ---- phase 1: adapted replay: the records as the initial population
        t1 = time.perf_counter()
        adapted_all = initial_population(sources, w, session, budget, notes)
        res = session.evaluate([a.schedule for a in adapted_all], baseline_cycles)
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

            sr_ = session.search(base, ag, settings, progress=prog)
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
            st = SearchSettings.preset("guided", beam=guided_beam, budget=per, seed=seed * 1000 + k,
                                       eval_seed=eval_seed)
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

    sp, c_code = compile_best(best_sched, w.proc)
    util = best_m.utilization if best_m is not None and best_m.utilization is not None else \
        (config or GemminiConfig()).ideal_cycles(w.macs) / best_cycles
    if run is not None:
        run.write_best({"cycles": best_cycles, "baseline_cycles": baseline_cycles,
                        "speedup": baseline_cycles / best_cycles, "utilization": util,
                        "samples_used": len(history), "final": True, "schedule": best_sched.to_list(),
                        "menu": [st.menu for st in best_sched.steps], "phases": phases, "notes": notes,
                        "sources": [r.name for r in sources]})
        write_best_c(run, c_code)
    emit({"event": "end"}, 4)
    result = TransferResult(proc=sp, c_code=c_code, schedule=best_sched, cycles=best_cycles,
                            baseline_cycles=baseline_cycles, speedup=baseline_cycles / best_cycles,
                            utilization=util, samples_used=len(history), workload=w, search=sr,
                            sources=sources, adapted=adapted, phases=phases, history=history, notes=notes,
                            run_dir=str(run.path) if run else None)
    if user is not None:
        as_user(result, user)
    return result
