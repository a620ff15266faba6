"""`optimize(proc)`: search for a fast Gemmini schedule of a GEMM proc.

::

    import autocomp_exo as ax
    r = ax.optimize(ax.gemm(512, 512, 512), budget=200)
    r.cycles, r.speedup, r.utilization, r.proc, r.c_code, r.schedule

``proc`` is a `Workload` object (any kind with a Gemmini mapping: the scaled
GEMM, the int32 matmul, the clamped matmul) or an algorithm-level proc
(`autocomp_exo.workloads.gemm` or a user's proc of a recognised form,
`workloads.recognise`); the search starts
from Exo's standard Gemmini mapping of it (`baselines.exo_unopt`). Or pass an
already Gemmini-mapped proc as ``baseline``: the search schedules that proc
further, as the workload ``proc`` says (``proc`` may be None for the scaled
GEMM: its parameters say what it computes). ``baseline`` may also be a `Schedule` of
steps on the algorithm proc (e.g. ``baselines.exo_opt.schedule(w)``).
``speedup`` is over the starting point.

With a schedule library (``library=``, ``reuse=``): `optimize_with_library`,
which starts from a verified record of this shape or transfers records of
similar shapes (`autocomp_exo.transfer`, an initial population for the
driver). The search itself runs in `autocomp_exo.driver` (shared with
`transfer`); the command line is in `autocomp_exo.cli`.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Any, Callable, Optional

from exo.API import Procedure

from .agents.base import Agent
from .agents.offline import OfflineAgent
from .baselines import exo_opt, exo_unopt
from .driver import (DEFAULTS, Result, Session, SettingsError, as_user, close_progress, compile_best,
                     finish_run_dir, progress_fn, recheck as recheck_winner, resolve_workload, shape_of_mapped,
                     start_run, validate_settings, write_report)
from .executors import make_executor
from .library import Library, RecordError, StaleRecord, record_from_result, verify
from .runs import schedule_key
from .schedule import Schedule
from .search import SearchSettings
from .transfer import StaleRecordWarning, TransferResult, similar_records, transfer
from .workers import register_base
from .workloads import GemmWorkload, WorkloadError

__all__ = ["Result", "optimize", "optimize_with_library", "DEFAULTS", "SettingsError", "validate_settings"]

_shape_of_mapped = shape_of_mapped   # the name tests/test_proc_facts.py uses


def optimize(proc: Any = None, *, budget: int = DEFAULTS["budget"], agent: Optional[Agent] = None,
             beam: int = DEFAULTS["beam"], plans: int = DEFAULTS["plans"], impls: int = DEFAULTS["impls"],
             iterations: Optional[int] = DEFAULTS["iterations"], dropout: float = DEFAULTS["dropout"],
             seed: int = 0, workers: Optional[int] = None, run_dir: Optional[str] = None,
             baseline: Any = None, timeout: Optional[float] = 600.0, relu: bool = False,
             eval_seed: int = 0, config: Any = None,
             progress: Optional[Callable[[dict], None]] = None,
             evaluate_fn: Optional[Callable[[dict], dict]] = None,
             library: Any = None, reuse: Any = None, executor: Any = "local",
             ray_address: Optional[str] = None, report: Any = None, recheck: int = 3) -> Result:
    """Search for a fast schedule of ``proc``; see the module doc.

    ``executor``: where candidates are evaluated, "local" (``workers``
    processes) or "ray" (Ray tasks on the cluster at ``ray_address``, default
    $RAY_ADDRESS or a local instance), or an executor object
    (`autocomp_exo.executors`; not closed here). The same seed gives the same
    search whichever executor runs it.

    ``report``: write `autocomp_exo.report` for the run at the end (needs
    ``run_dir``): True for ``RUN_DIR/report``, or a directory.

    ``progress``: a callable receiving the search's events, or True for a
    progress bar. ``recheck``: the winner is checked again on this many fresh
    inputs (``Result.seeds``: every input seed it passed); a winner that fails
    one gives way to the next best candidate that passes.

    ``proc`` may be a user's proc of any of the recognised GEMM forms
    (`workloads.recognise`): ``Result.proc`` has the user's proc, parameter
    and loop names, and ``Result.schedule`` applies to the user's proc.

    ``library`` (a `Library` or directory): start from its record for this
    shape after re-verifying it (a stale record is reported, not used) and
    save the winner there (verified first). ``reuse`` (a `Library` or directory): when there
    is no record for this shape, start from records of similar shapes
    (`autocomp_exo.transfer`). Both: `optimize_with_library`.
    """
    validate_settings(budget=budget, beam=beam, plans=plans, impls=impls, iterations=iterations,
                      dropout=dropout, workers=workers, timeout=timeout, recheck=recheck)
    if report and run_dir is None:
        raise ValueError("report= needs a run_dir= (the report is drawn from the run directory)")
    if library is not None or reuse is not None:
        if reuse is not None and executor not in (None, "local"):
            raise ValueError("reuse= evaluates with local worker processes only; for Ray call "
                             "autocomp_exo.transfer(..., pool=autocomp_exo.executors.RayPool(...))")
        result = optimize_with_library(
            proc, library=library, reuse=reuse, budget=budget, agent=agent, seed=seed, config=config,
            relu=relu, beam=beam, plans=plans, impls=impls, iterations=iterations, dropout=dropout,
            workers=workers, run_dir=run_dir, baseline=baseline, timeout=timeout, eval_seed=eval_seed,
            progress=progress, evaluate_fn=evaluate_fn, executor=executor, ray_address=ray_address)
        if report:
            write_report(run_dir, report)
        return result
    base_key = None
    user = None
    start = "exo-unopt"
    if isinstance(baseline, Procedure):
        w = _mapped_workload(baseline, proc, relu)
        base_sched = Schedule([])
        # identify the proc by its structure-independent text digest (for run settings only)
        base_key = "base-" + hashlib.sha256(str(baseline).encode()).hexdigest()[:16]
        register_base(base_key, baseline)
        start = base_key
    else:
        if proc is None:
            raise WorkloadError("optimize needs an algorithm-level GEMM proc or a mapped proc as baseline=")
        w, user = resolve_workload(proc, relu)
        if baseline is None:
            base_sched = exo_unopt.schedule(w)
        elif isinstance(baseline, Schedule):
            base_sched = baseline
            start = "schedule-" + hashlib.sha256(schedule_key(baseline).encode()).hexdigest()[:16]
        elif isinstance(baseline, str) and baseline in ("exo-unopt", "exo-opt"):
            base_sched = (exo_unopt if baseline == "exo-unopt" else exo_opt).schedule(w)
            start = baseline
        else:
            raise TypeError("baseline must be None, an Exo proc, a Schedule, 'exo-unopt' or 'exo-opt'")

    if agent is None:
        agent = OfflineAgent()
    settings = SearchSettings(beam=beam, plans=plans, impls=impls, iterations=iterations, dropout=dropout,
                              budget=budget, seed=seed, eval_seed=eval_seed)
    run = start_run(run_dir, {
        "workload": w.signature(), "agent": getattr(agent, "name", type(agent).__name__),
        "start": start, "config": None if config is None else config.to_dict(),
        **settings.to_dict(), "workers": workers,
        "executor": executor if isinstance(executor, str) or executor is None else type(executor).__name__})
    extra = {}
    if base_key:
        extra["base"] = base_key
    if config is not None:
        extra["config"] = config.to_dict()
    if base_key and executor not in (None, "local"):
        raise ValueError("a mapped Exo proc given as baseline= cannot go to remote workers (Exo procs do not "
                         "pickle); use executor='local' or pass the baseline as a Schedule")
    pool = make_executor(executor, workers=workers, timeout=timeout, fn=evaluate_fn, ray_address=ray_address)
    try:
        bar = progress_fn(progress, budget)
        try:
            sr = Session(w, pool, run=run, extra=extra, eval_seed=eval_seed).search(base_sched, agent, settings,
                                                                                    progress=bar)
        finally:
            close_progress(bar)
        best, seeds_passed, recheck_notes = recheck_winner(sr, pool, w, extra, recheck)
    finally:
        if pool is not executor:   # an executor object given by the caller stays open
            pool.close()
    sp, c_code = compile_best(best.schedule, baseline if base_key else w.proc)
    m = best.measurement
    result = Result(
        proc=sp, c_code=c_code, schedule=best.schedule, cycles=best.cycles,
        baseline_cycles=sr.baseline.cycles, speedup=sr.baseline.cycles / best.cycles,
        utilization=(m.utilization if m and m.utilization is not None else float("nan")),
        samples_used=sr.samples_used, run_dir=str(run.path) if run else None, workload=w, search=sr,
        seeds=seeds_passed, notes=recheck_notes)
    if user is not None:
        as_user(result, user)
    if run is not None:
        finish_run_dir(run, result)
    if report:
        write_report(run.path, report)
    return result


def _mapped_workload(baseline: Procedure, proc: Any, relu: bool) -> Any:
    """The workload a mapped ``baseline=`` proc computes: ``proc``'s (a workload
    or an algorithm proc, same shape) when given; else the scaled GEMM, when
    the mapped proc has its parameters (f32 scale, bool act, int8 A, B, C).
    Another kind (an int32 C, say) needs ``proc``: its shape alone does not say
    which workload it is."""
    M, N, K = shape_of_mapped(baseline)
    if proc is not None:
        w, _user = resolve_workload(proc, relu)
        if tuple(w.dims.get(k) for k in "MNK") != (M, N, K):
            raise WorkloadError(f"baseline= maps a {M}x{N}x{K} GEMM, the workload is {w.name}")
        return w
    from .workloads import gemm

    def kinds(p: Procedure) -> list:
        return sorted(f"{a.type().name.lower()}" + ("[]" if a.is_tensor() else "") for a in p.args())

    if kinds(baseline) != kinds(gemm(M, N, K)):
        raise WorkloadError(f"baseline= proc {baseline.name()} has parameters {kinds(baseline)}, not the scaled "
                            f"GEMM's {kinds(gemm(M, N, K))}: pass its workload or algorithm proc too, "
                            f"optimize(workload, baseline=mapped_proc)")
    return GemmWorkload(M, N, K, relu)


# --------------------------------------------------------------------------- #
# optimize with a library (what `optimize(..., library=, reuse=)` does)
# --------------------------------------------------------------------------- #


def _as_library(x: Any) -> Optional[Library]:
    if x is None or x is False:
        return None
    if isinstance(x, Library):
        return x
    return Library(x)


def optimize_with_library(proc: Any, *, library: Any = None, reuse: Any = None,
                          budget: int = DEFAULTS["budget"],
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
    w, user = resolve_workload(proc, relu)
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
        bar = progress_fn(keep.get("progress"), budget)
        keep["progress"] = bar
        try:
            result = transfer(reuse_lib, w, budget=budget, agent=agent, seed=seed, config=config, **keep)
        finally:
            close_progress(bar)
    else:
        result = optimize(w, budget=budget, agent=agent, seed=seed, config=config, **kw)
    result.stale_record = stale
    source = "search" if start_record is None else "search (from library record)"
    if isinstance(result, TransferResult):
        source = "transfer from " + ", ".join(r.name for r in result.sources)
    save_result(result, source=source)
    if user is not None:
        as_user(result, user)
    return result
