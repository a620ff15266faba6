"""`optimize(proc)`: search for a fast Gemmini schedule of a GEMM proc.

::

    import autocomp_exo as ax
    r = ax.optimize(ax.gemm(512, 512, 512), budget=200)
    r.cycles, r.speedup, r.utilization, r.proc, r.c_code, r.schedule

``proc`` is an algorithm-level GEMM (`autocomp_exo.workloads.gemm` or a
user's proc of the same form, recognised by `workload_of`); the search starts
from Exo's standard Gemmini mapping of it (`baselines.exo_unopt`). Or pass an
already Gemmini-mapped proc as ``baseline`` (``proc`` may then be None): the
search schedules that proc further. ``baseline`` may also be a `Schedule` of
steps on the algorithm proc (e.g. ``baselines.exo_opt.schedule(w)``).
``speedup`` is over the starting point.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .agents.base import Agent, Candidate
from .runs import RunDir, schedule_key
from .schedule import Schedule
from .search import SearchResult, SearchSettings, beam_search
from .workers import Task, register_base

__all__ = ["Result", "optimize", "DEFAULTS"]

#: defaults (sized for a 2-core laptop): those of `SearchSettings`, their single home
DEFAULTS = SearchSettings.defaults("budget", "beam", "plans", "impls", "iterations", "dropout")


@dataclass
class Result:
    proc: Any                 # the scheduled Exo proc
    c_code: str               # its Gemmini C
    schedule: Schedule        # the whole schedule (baseline steps + the search's)
    cycles: int
    baseline_cycles: int
    speedup: float            # over the starting point (Exo's standard mapping by default)
    utilization: float
    samples_used: int
    run_dir: Optional[str]
    workload: Any = None
    search: Optional[SearchResult] = None
    seeds: list = None        # every input seed the winner passed (its search seed and the re-checks)
    notes: list = None

    def __post_init__(self):
        self.seeds = list(self.seeds or [])
        self.notes = list(self.notes or [])

    def summary(self) -> str:
        return (f"{getattr(self.workload, 'name', 'gemm')}: baseline {self.baseline_cycles:,} cycles -> best "
                f"{self.cycles:,} cycles, {self.speedup:.2f}x, {100 * self.utilization:.1f}% utilization, "
                f"{self.samples_used} samples")


def _shape_of_mapped(p: Any):
    """(M, N, K) from the parameters of a GEMM-shaped proc (A[M,K], B[K,N], C[M,N])."""
    from exo.API_cursors import LiteralCursor

    from .workloads import WorkloadError

    tens = [a for a in p.args() if a.is_tensor() and len(a.shape()) == 2]
    if len(tens) != 3 or not all(isinstance(e, LiteralCursor) for a in tens for e in a.shape()):
        raise WorkloadError(f"{p.name()} does not look like a GEMM (A[M,K], B[K,N], C[M,N] with constant sizes)")
    (M, K), (K2, N), (M2, N2) = [tuple(int(e.value()) for e in a.shape()) for a in tens]
    if (M, N, K) != (M2, N2, K2):
        raise WorkloadError(f"inconsistent GEMM shapes in {p.name()}")
    return M, N, K


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
    (`autocomp_exo.transfer`). Both: `transfer.optimize_with_library`.
    """
    validate_settings(budget=budget, beam=beam, plans=plans, impls=impls, iterations=iterations,
                      dropout=dropout, workers=workers, timeout=timeout, recheck=recheck)
    if report and run_dir is None:
        raise ValueError("report= needs a run_dir= (the report is drawn from the run directory)")
    if library is not None or reuse is not None:
        from .transfer import optimize_with_library

        if reuse is not None and executor not in (None, "local"):
            raise ValueError("reuse= evaluates with local worker processes only; for Ray call "
                             "autocomp_exo.transfer(..., pool=autocomp_exo.executors.RayPool(...))")
        result = optimize_with_library(
            proc, library=library, reuse=reuse, budget=budget, agent=agent, seed=seed, config=config,
            relu=relu, beam=beam, plans=plans, impls=impls, iterations=iterations, dropout=dropout,
            workers=workers, run_dir=run_dir, baseline=baseline, timeout=timeout, eval_seed=eval_seed,
            progress=progress, evaluate_fn=evaluate_fn, executor=executor, ray_address=ray_address)
        if report:
            _write_report(run_dir, report)
        return result
    from exo.API import Procedure

    from .baselines import exo_unopt
    from .workloads import GemmWorkload, WorkloadError, recognise

    base_key = None
    user = None
    start = "exo-unopt"
    if isinstance(baseline, Procedure):
        M, N, K = _shape_of_mapped(baseline)
        w = GemmWorkload(M, N, K, relu)
        base_sched = Schedule([])
        # identify the proc by its structure-independent text digest (for run settings only)
        base_key = "base-" + hashlib.sha256(str(baseline).encode()).hexdigest()[:16]
        register_base(base_key, baseline)
        start = base_key
    else:
        if proc is None:
            raise WorkloadError("optimize needs an algorithm-level GEMM proc or a mapped proc as baseline=")
        if isinstance(proc, GemmWorkload):
            w = proc
        else:
            user = recognise(proc, relu=relu)
            w = user.workload
            if not isinstance(w, GemmWorkload):
                raise WorkloadError(f"{proc.name()} is {user.variant}: recognised, but the search maps only the "
                                    "scaled int8 GEMM onto Gemmini so far")
        if baseline is None:
            base_sched = exo_unopt.schedule(w)
        elif isinstance(baseline, Schedule):
            base_sched = baseline
            start = "schedule-" + hashlib.sha256(schedule_key(baseline).encode()).hexdigest()[:16]
        elif isinstance(baseline, str) and baseline in ("exo-unopt", "exo-opt"):
            from .baselines import exo_opt

            base_sched = (exo_unopt if baseline == "exo-unopt" else exo_opt).schedule(w)
            start = baseline
        else:
            raise TypeError("baseline must be None, an Exo proc, a Schedule, 'exo-unopt' or 'exo-opt'")

    if agent is None:
        from .agents.offline import OfflineAgent

        agent = OfflineAgent()
    settings = SearchSettings(beam=beam, plans=plans, impls=impls, iterations=iterations, dropout=dropout,
                              budget=budget, seed=seed, eval_seed=eval_seed)
    run = None
    if run_dir is not None:
        run = RunDir(run_dir)
        run.start({"workload": w.signature(), "agent": getattr(agent, "name", type(agent).__name__),
                   "start": start, "config": None if config is None else config.to_dict(),
                   **settings.to_dict(), "workers": workers,
                   "executor": executor if isinstance(executor, str) or executor is None else type(executor).__name__})
    extra = {}
    if base_key:
        extra["base"] = base_key
    if config is not None:
        extra["config"] = config.to_dict()
    from .executors import make_executor

    if base_key and executor not in (None, "local"):
        raise ValueError("a mapped Exo proc given as baseline= cannot go to remote workers (Exo procs do not "
                         "pickle); use executor='local' or pass the baseline as a Schedule")
    pool = make_executor(executor, workers=workers, timeout=timeout, fn=evaluate_fn, ray_address=ray_address)
    try:
        bar = _progress_fn(progress, budget)
        try:
            sr = beam_search(w, base_sched, agent, settings, pool=pool, run=run, task_extra=extra, progress=bar)
        finally:
            if hasattr(bar, "close"):
                bar.close()
        best, seeds_passed, recheck_notes = _recheck(sr, pool, w, extra, recheck)
    finally:
        if pool is not executor:   # an executor object given by the caller stays open
            pool.close()
    p = (baseline if base_key else w.proc)
    c_code = ""
    sp = None
    try:
        sp = best.schedule.apply(p)
        from .exo_compile import to_c

        c_code = to_c(sp)[0]
    except Exception:  # a stub evaluator's schedules need not apply
        pass
    m = best.measurement
    result = Result(
        proc=sp, c_code=c_code, schedule=best.schedule, cycles=best.cycles,
        baseline_cycles=sr.baseline.cycles, speedup=sr.baseline.cycles / best.cycles,
        utilization=(m.utilization if m and m.utilization is not None else float("nan")),
        samples_used=sr.samples_used, run_dir=str(run.path) if run else None, workload=w, search=sr,
        seeds=seeds_passed, notes=recheck_notes)
    if user is not None:
        _as_user(result, user)
    if run is not None:
        _finish_run_dir(run, result)
    if report:
        _write_report(run.path, report)
    return result


class SettingsError(ValueError):
    """A search setting out of its range (the message says which and why)."""


def validate_settings(*, budget: Any = 1, beam: Any = 1, plans: Any = 1, impls: Any = 1, iterations: Any = None,
                      dropout: Any = 0.0, workers: Any = None, timeout: Any = None, recheck: Any = 0) -> None:
    """Raise SettingsError (one line) unless every setting is in range."""

    def integer(name, v, lo, none_ok=False):
        if v is None and none_ok:
            return
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise SettingsError(f"{name} must be an integer >= {lo}, got {v!r}")

    integer("budget", budget, 1)
    integer("beam", beam, 1)
    integer("plans", plans, 1)
    integer("impls", impls, 1)
    integer("iterations", iterations, 1, none_ok=True)
    integer("workers", workers, 0, none_ok=True)
    integer("recheck", recheck, 0)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be a number in [0, 1) (the chance of leaving a menu option out), "
                            f"got {dropout!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or not timeout >= 1.0):
        raise SettingsError(f"timeout must be at least 1 second per candidate (a GEMM takes seconds to "
                            f"schedule, compile and simulate), got {timeout!r}")


def _progress_fn(progress: Any, budget: int) -> Any:
    """``progress=True``: a progress bar; a callable: itself; else None."""
    if progress is True:
        return _Bar(budget, quiet=False)
    return progress if callable(progress) else None


def _recheck(sr: SearchResult, pool: Any, w: Any, extra: dict, n: int) -> tuple:
    """The winner checked on ``n`` fresh inputs; if it fails, the next best
    candidate that passes (at most 5 tried). Returns (candidate, seeds, notes)."""
    from .library import fresh_seeds
    from .measurement import Measurement

    best = sr.best
    seeds0 = list(getattr(best.measurement, "seeds", None) or [])
    if n <= 0:
        return best, seeds0, []
    ranked = sorted((c for c in [sr.baseline] + list(sr.candidates) if c.ok), key=lambda c: (c.cycles, c.id))
    notes = []
    for c in ranked[:5]:
        seeds = fresh_seeds(n)
        task = Task.of(w, c.schedule, seeds=seeds, baseline_cycles=sr.baseline.cycles, label="recheck",
                       **extra).to_dict()
        res = pool.run([task])[0]
        m = Measurement.from_dict(res.get("measurement") or {"ok": False, "stage": "worker"})
        if m.ok:
            return c, sorted(set(list(getattr(c.measurement, "seeds", None) or []) + list(m.seeds or []))), notes
        notes.append(f"candidate {c.id} ({c.cycles:,} cycles) failed on fresh inputs: {m.stage}: "
                     f"{(m.error or '').splitlines()[0][:200] if m.error else ''}")
    return sr.baseline, list(getattr(sr.baseline.measurement, "seeds", None) or []), notes


def _as_user(result: Any, user: Any) -> Any:
    """Give a result the user's names: ``proc`` renamed (proc, parameters,
    loops, buffers), ``c_code`` from it, ``schedule`` a `UserSchedule`."""
    from .workloads import UserSchedule

    result.recognition = user
    if user.is_canonical:
        return result
    result.schedule = UserSchedule(result.schedule.steps)
    if result.proc is not None:
        try:
            result.proc = user.to_user(result.proc)
            from .exo_compile import to_c

            result.c_code = to_c(result.proc)[0]
        except Exception as e:  # pragma: no cover - renaming is structural
            result.notes = list(getattr(result, "notes", None) or []) + [f"could not rename to the user's names: {e}"]
    return result


def _finish_run_dir(run: Any, result: Any) -> None:
    """best.c, and the winner's re-checked seeds in best.json."""
    from .atomic_write import write_atomic

    if result.c_code:
        write_atomic(run.path / "best.c", result.c_code)
    b = run.best() or {}
    b.update({"cycles": result.cycles, "schedule": result.schedule.to_list(), "seeds": list(result.seeds),
              "recheck_notes": list(result.notes)})
    run.write_best(b)


def _write_report(run_dir: Any, report: Any) -> Any:
    """`autocomp_exo.report.write_report` for ``optimize(..., report=True | DIR)``."""
    from .report import write_report

    return write_report(run_dir, out=None if report is True else report)


# --------------------------------------------------------------------------- #
# CLI: `autocomp-exo optimize gemm M N K ...` and `autocomp-exo demo`
# --------------------------------------------------------------------------- #

DEMO = dict(M=256, N=256, K=256, budget=30, beam=2, plans=3, impls=2)


def _add_search_args(p, budget: int) -> None:
    p.add_argument("--budget", type=int, default=budget, help=f"evaluated candidates (default {budget})")
    p.add_argument("--beam", type=int, default=DEFAULTS["beam"], help="beam width B")
    p.add_argument("--plans", type=int, default=DEFAULTS["plans"], help="plans per beam entry N")
    p.add_argument("--impls", type=int, default=DEFAULTS["impls"], help="implementations per plan K")
    p.add_argument("--iterations", type=int, default=None, help="iterations T (default: until the budget)")
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help="menu dropout p")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per candidate")
    p.add_argument("--run-dir", default=None, help="run directory (resumes if it exists)")
    p.add_argument("--start", default="exo-unopt", choices=("exo-unopt", "exo-opt"),
                   help="schedule to start from")
    p.add_argument("--paper", action="store_true", help="the paper's settings: B=6 N=6 K=2 T=15")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--library", default=None, metavar="DIR",
                   help="schedule library: start from its (re-verified) record for this shape, save the winner")
    p.add_argument("--reuse", default=None, metavar="DIR",
                   help="library of similar shapes to transfer from when there is no record for this shape")


def add_optimize_parser(subparsers):
    p = subparsers.add_parser("optimize", help="search for a fast Gemmini schedule of a GEMM",
                              description="Beam search with the offline agent from Exo's standard mapping.")
    p.add_argument("kind", choices=("gemm",))
    p.add_argument("M", type=int)
    p.add_argument("N", type=int)
    p.add_argument("K", type=int)
    p.add_argument("--relu", action="store_true")
    p.add_argument("--show-c", action="store_true", help="print the best C")
    p.add_argument("--show-proc", action="store_true", help="print the best Exo proc")
    _add_search_args(p, DEFAULTS["budget"])
    # ---- executor, report, JSON (issue 16: autocomp_exo/executors.py, autocomp_exo/report.py) ----
    from .executors import EXECUTORS

    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where candidates are evaluated: local worker processes, or Ray tasks")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join (ray.init(address=ADDR), e.g. auto or ray://head:10001; "
                        "default $RAY_ADDRESS or a new local instance)")
    p.add_argument("--report", nargs="?", const=True, default=None, metavar="DIR",
                   help="write the plots and HTML report at the end (default RUN_DIR/report; needs --run-dir)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (the result) and nothing else on stdout")
    # ---- LLM agent options (--llm MODEL ..., issue 6: autocomp_exo/agents/llm.py) ----
    from .agents.llm import add_llm_args

    add_llm_args(p)
    p.set_defaults(func=run_optimize, handler=run_optimize)
    return p


def add_demo_parser(subparsers):
    p = subparsers.add_parser("demo", help="a real search that finishes in a few minutes",
                              description=f"Optimize a {DEMO['M']}x{DEMO['N']}x{DEMO['K']} GEMM from Exo's "
                                          f"standard mapping with the offline agent ({DEMO['budget']} samples).")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None)
    p.add_argument("--budget", type=int, default=DEMO["budget"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_demo, handler=run_demo)
    return p


class _Bar:
    def __init__(self, total: int, quiet: bool):
        self.bar = None
        self.n = 0
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="cand", dynamic_ncols=True)

    def __call__(self, ev: dict) -> None:
        if self.bar is None:
            return
        if ev.get("event") == "candidate":
            self.n += 1
            self.bar.update(1)
        best, sp = ev.get("best_cycles"), ev.get("speedup")
        phase = f"phase {ev['phase']} " if ev.get("phase") is not None else ""
        self.bar.set_postfix_str(f"{phase}it {ev.get('iteration', '-')} best "
                                 f"{f'{best:,}' if best else '-'} cyc {f'{sp:.2f}' if sp else '-'}x",
                                 refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _table(r: Result) -> str:
    rows = [("", "cycles", "utilization", "speedup")]
    base_util = r.workload.macs / 256 / r.baseline_cycles
    rows.append(("baseline (Exo standard mapping)", f"{r.baseline_cycles:,}", f"{100 * base_util:.1f}%", "1.00x"))
    rows.append(("best found", f"{r.cycles:,}", f"{100 * r.utilization:.1f}%", f"{r.speedup:.2f}x"))
    w = [max(len(x[i]) for x in rows) for i in range(4)]
    lines = ["  ".join(x[i].ljust(w[i]) if i == 0 else x[i].rjust(w[i]) for i in range(4)) for x in rows]
    lines.insert(1, "-" * len(lines[0]))
    menu = [s.menu for s in r.schedule.steps if s.menu not in (None, "exo-unopt", "exo-opt")]
    used = list(dict.fromkeys(menu))
    lines.append(f"samples used: {r.samples_used}; menu options in the best schedule: "
                 f"{', '.join(used) if used else '-'}")
    if r.run_dir:
        lines.append(f"run directory: {r.run_dir}")
    return "\n".join(lines)


def _run(args, M, N, K, relu=False, start="exo-unopt") -> tuple[int, Optional[Result]]:
    import sys

    from .workloads import GemmWorkload, WorkloadError

    try:
        w = GemmWorkload(M, N, K, relu)
    except WorkloadError as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    kw = dict(budget=args.budget, beam=getattr(args, "beam", DEFAULTS["beam"]),
              plans=getattr(args, "plans", DEFAULTS["plans"]), impls=getattr(args, "impls", DEFAULTS["impls"]),
              iterations=getattr(args, "iterations", None), dropout=getattr(args, "dropout", DEFAULTS["dropout"]))
    if getattr(args, "paper", False):
        kw.update(beam=6, plans=6, impls=2, iterations=15)
    if hasattr(args, "_demo"):
        kw.update(args._demo)
    # ---- LLM agent (issue 6): --llm MODEL replaces the offline agent ----
    agent = None
    if getattr(args, "llm", None) or getattr(args, "llm_plan", None) or getattr(args, "llm_code", None):
        from .agents.llm import LLMConfigError, agent_from_args

        try:
            agent = agent_from_args(args, run_dir=args.run_dir, iterations=kw["iterations"])
        except (LLMConfigError, ValueError) as e:
            print(f"autocomp-exo: error: {e}", file=sys.stderr)
            return 2, None
    report = getattr(args, "report", None)
    if report and not args.run_dir:
        print("autocomp-exo: error: --report needs --run-dir (the report is drawn from the run directory)",
              file=sys.stderr)
        return 2, None
    as_json = getattr(args, "json", False)
    try:
        validate_settings(workers=getattr(args, "workers", None), timeout=getattr(args, "timeout", 600.0), **kw)
    except SettingsError as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    lib_kw = {k: getattr(args, k) for k in ("library", "reuse") if getattr(args, k, None)}
    bar = _Bar(kw["budget"], args.quiet)   # tqdm writes to stderr: stdout stays for the result
    try:
        r = optimize(w, seed=args.seed, workers=args.workers, run_dir=args.run_dir, **lib_kw,
                     baseline=None if start == "exo-unopt" else start,
                     timeout=getattr(args, "timeout", 600.0),
                     progress=bar if agent is None else agent.progress(bar), agent=agent,
                     executor=getattr(args, "executor", "local"), ray_address=getattr(args, "ray_address", None),
                     **kw)
    except ImportError as e:   # --executor ray without Ray installed
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    except (ValueError, RuntimeError) as e:   # SettingsMismatch, SettingsError, WorkloadError, a failed baseline
        print(f"autocomp-exo: error: {_one_line(e)}", file=sys.stderr)
        return 2, None
    finally:
        bar.close()
    out = sys.stderr if as_json else sys.stdout
    if as_json:
        print(json.dumps(_result_json(r), sort_keys=True))
    else:
        print(_table(r))
    if agent is not None:
        print(agent.finish(quiet=True), file=out)
    if report:
        from .report import write_report

        rep = write_report(args.run_dir, None if report is True else report)
        print(f"report written to {rep['files']['html']}", file=out)
    return 0, r


def _one_line(e: BaseException) -> str:
    """An exception as one line (a failed baseline that ran out of time says so)."""
    msg = " ".join(str(e).split())
    if "candidate took longer than" in msg:
        msg += " (raise --timeout)"
    return msg[:600]


def _result_json(r: Result) -> dict:
    """What ``optimize --json`` prints."""
    return {"workload": r.workload.signature() if r.workload is not None else None,
            "cycles": r.cycles, "baseline_cycles": r.baseline_cycles, "speedup": r.speedup,
            "utilization": r.utilization if r.utilization == r.utilization else None,
            "samples_used": r.samples_used, "run_dir": r.run_dir, "schedule": r.schedule.to_list(),
            "c_code": r.c_code, "seeds": list(getattr(r, "seeds", None) or [])}


def run_optimize(args) -> int:
    rc, r = _run(args, args.M, args.N, args.K, args.relu, args.start)
    if r is not None and args.show_proc and not args.json:
        print(r.proc)
    if r is not None and args.show_c and not args.json:   # the JSON has "c_code"
        print(r.c_code)
    return rc


def run_demo(args) -> int:
    print(f"demo: optimizing gemm {DEMO['M']}x{DEMO['N']}x{DEMO['K']} from Exo's standard Gemmini mapping "
          f"with the offline agent ({args.budget} samples)")
    args._demo = dict(beam=DEMO["beam"], plans=DEMO["plans"], impls=DEMO["impls"])
    rc, _ = _run(args, DEMO["M"], DEMO["N"], DEMO["K"])
    return rc
