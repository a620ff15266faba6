"""The search driver: what `optimize` and `transfer` share.

Both entry points resolve their workload, open a run directory (a `Database`
of every candidate), evaluate schedules in a worker pool and run beam
searches into that run directory through one `Session`; they differ only in
where the search starts:

- `autocomp_exo.optimize`: from one starting schedule (Exo's standard
  mapping, a given schedule or a library record), then the winner is
  re-checked on fresh inputs (`recheck`);
- `autocomp_exo.transfer`: from an *initial population* it provides (library
  records of similar shapes adapted to the new shape, `transfer.adapt`),
  evaluated with `Session.evaluate`, then guided and full searches with
  `Session.search`.

Also here: the settings check (`validate_settings`), the progress bar
(`Bar`, `progress_fn`), the result (`Result`) and its JSON (`result_json`),
giving a result the user's names (`as_user`) and writing the run directory's
``best.json`` / ``best.c``. The defaults of the search's settings live in
`search.SearchSettings` only.

Layering (no cycles): ``driver`` imports the search, the run log, the
workers and the library; ``transfer`` imports ``driver``; ``optimize``
imports both; nothing here imports ``optimize`` or ``transfer``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from exo.API_cursors import LiteralCursor

from .agents.base import Agent
from .atomic_write import write_atomic
from .database import Database
from .exo_compile import to_c
from .library import fresh_seeds
from .measurement import Measurement
from .report import write_report as _write_report
from .runs import RunDir, schedule_key
from .schedule import Schedule
from .search import SearchResult, SearchSettings, beam_search
from .workers import Task
from .workloads import GemmWorkload, UserSchedule, Workload, WorkloadError, recognise

__all__ = ["Result", "SettingsError", "validate_settings", "Bar", "progress_fn", "one_line", "result_json",
           "as_user", "resolve_workload", "shape_of_mapped", "start_run", "Session", "recheck",
           "finish_run_dir", "write_report", "DEFAULTS"]

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


# --------------------------------------------------------------------------- #
# Settings
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Progress and output
# --------------------------------------------------------------------------- #


class Bar:
    """A progress bar (tqdm, on stderr) fed with the search's events (any phase)."""

    def __init__(self, total: int, quiet: bool):
        self.bar = None
        self.n = 0
        if not quiet:
            from tqdm import tqdm   # deferred: only a visible bar needs tqdm

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


def progress_fn(progress: Any, budget: int) -> Any:
    """``progress=True``: a progress bar; a callable: itself; else None."""
    if progress is True:
        return Bar(budget, quiet=False)
    return progress if callable(progress) else None


def close_progress(bar: Any) -> None:
    if hasattr(bar, "close"):
        bar.close()


def one_line(e: BaseException) -> str:
    """An exception as one line (a failed baseline that ran out of time says so)."""
    msg = " ".join(str(e).split())
    if "candidate took longer than" in msg:
        msg += " (raise --timeout)"
    return msg[:600]


def result_json(r: Any) -> dict:
    """What ``optimize --json`` (and ``transfer --json``) print."""
    return {"workload": r.workload.signature() if r.workload is not None else None,
            "cycles": r.cycles, "baseline_cycles": r.baseline_cycles, "speedup": r.speedup,
            "utilization": r.utilization if r.utilization == r.utilization else None,
            "samples_used": r.samples_used, "run_dir": r.run_dir, "schedule": r.schedule.to_list(),
            "c_code": r.c_code, "seeds": list(getattr(r, "seeds", None) or [])}


# --------------------------------------------------------------------------- #
# Workloads
# --------------------------------------------------------------------------- #


def resolve_workload(proc: Any, relu: bool = False) -> tuple:
    """(the workload, the recognition of a user's proc or None) for any
    `Workload` (GEMM, int32 matmul, clamped matmul, ...) or a user's proc of a
    recognised form (`workloads.recognise`). A workload object is taken as it
    is: its baseline refuses it by name when it has no Gemmini mapping."""
    if isinstance(proc, Workload):
        return proc, None
    user = recognise(proc, relu=relu)
    from .baselines.exo_unopt import form

    form(user.workload)   # WorkloadError for a recognised variant without a Gemmini mapping
    return user.workload, user


def shape_of_mapped(p: Any):
    """(M, N, K) from the parameters of a GEMM-shaped proc (A[M,K], B[K,N], C[M,N])."""
    tens = [a for a in p.args() if a.is_tensor() and len(a.shape()) == 2]
    if len(tens) != 3 or not all(isinstance(e, LiteralCursor) for a in tens for e in a.shape()):
        raise WorkloadError(f"{p.name()} does not look like a GEMM (A[M,K], B[K,N], C[M,N] with constant sizes)")
    (M, K), (K2, N), (M2, N2) = [tuple(int(e.value()) for e in a.shape()) for a in tens]
    if (M, N, K) != (M2, N2, K2):
        raise WorkloadError(f"inconsistent GEMM shapes in {p.name()}")
    return M, N, K


def as_user(result: Any, user: Any) -> Any:
    """Give a result the user's names: ``proc`` renamed (proc, parameters,
    loops, buffers), ``c_code`` from it, ``schedule`` a `UserSchedule`."""
    result.recognition = user
    if user.is_canonical:
        return result
    result.schedule = UserSchedule(result.schedule.steps)
    if result.proc is not None:
        try:
            result.proc = user.to_user(result.proc)
            result.c_code = to_c(result.proc)[0]
        except Exception as e:  # pragma: no cover - renaming is structural
            result.notes = list(getattr(result, "notes", None) or []) + [f"could not rename to the user's names: {e}"]
    return result


def compile_best(schedule: Schedule, proc: Any) -> tuple:
    """(the scheduled proc, its C) for the winner; (None, "") when it does not
    apply (a stub evaluator's schedules need not)."""
    sp, c_code = None, ""
    try:
        sp = schedule.apply(proc)
        c_code = to_c(sp)[0]
    except Exception:  # a stub evaluator's schedules need not apply
        pass
    return sp, c_code


# --------------------------------------------------------------------------- #
# Run directories and sessions
# --------------------------------------------------------------------------- #


def start_run(run_dir: Optional[str], settings: dict) -> Optional[RunDir]:
    """The run directory (a `Database` of the run's candidates), its settings
    written or checked (`RunDir.start`); None without ``run_dir``."""
    if run_dir is None:
        return None
    run = RunDir(run_dir)
    run.start(settings)
    return run


class Session:
    """One search of ``workload``: the worker pool, the run's `Database` (or
    None) and what every task carries (``extra``: a registered base proc, the
    hardware config). ``evaluate`` evaluates schedules through the database
    (finished ones are looked up, new ones committed); ``search`` runs a beam
    search into it."""

    def __init__(self, workload: Any, pool: Any, *, run: Optional[Database] = None,
                 extra: Optional[dict] = None, eval_seed: int = 0):
        self.workload, self.pool, self.run = workload, pool, run
        self.extra = dict(extra or {})
        self.eval_seed = eval_seed

    def task(self, schedule: Schedule, baseline_cycles: Optional[int] = None) -> dict:
        return Task.of(self.workload, schedule, seed=self.eval_seed, baseline_cycles=baseline_cycles,
                       **self.extra).to_dict()

    def evaluate(self, schedules: list, baseline_cycles: Optional[int] = None, phase: str = "replay") -> list:
        """Evaluate ``schedules`` in the pool (results in order); with a run
        database, finished ones are looked up and new ones committed."""
        run = self.run
        keys = [schedule_key(x) for x in schedules]
        out = [run.lookup(k) if run else None for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        got = self.pool.run([self.task(schedules[i], baseline_cycles) for i in todo])
        for i, r in zip(todo, got):
            out[i] = r
            if run is not None:
                run.commit({"id": None, "key": keys[i], "parent": None, "iteration": 0, "plan": None,
                            "menu": [], "schedule": schedules[i].to_list(), "phase": phase,
                            "measurement": r.get("measurement"), "proc_text": r.get("proc_text"),
                            "facts": r.get("facts"), "seconds": r.get("seconds")})
        return out

    def search(self, base: Schedule, agent: Agent, settings: SearchSettings,
               progress: Optional[Callable[[dict], None]] = None) -> SearchResult:
        """`search.beam_search` from ``base`` into the run database."""
        return beam_search(self.workload, base, agent, settings, pool=self.pool, run=self.run,
                           task_extra=self.extra, progress=progress)


def recheck(sr: SearchResult, pool: Any, w: Any, extra: dict, n: int) -> tuple:
    """The winner checked on ``n`` fresh inputs; if it fails, the next best
    candidate that passes (at most 5 tried). Returns (candidate, seeds, notes)."""
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


def write_best_c(run: Any, c_code: str) -> None:
    if c_code:
        write_atomic(run.path / "best.c", c_code)


def finish_run_dir(run: Any, result: Any) -> None:
    """best.c, and the winner's re-checked seeds in best.json."""
    write_best_c(run, result.c_code)
    b = run.best() or {}
    b.update({"cycles": result.cycles, "schedule": result.schedule.to_list(), "seeds": list(result.seeds),
              "recheck_notes": list(result.notes)})
    run.write_best(b)


def write_report(run_dir: Any, report: Any) -> Any:
    """`autocomp_exo.report.write_report` for ``optimize(..., report=True | DIR)``."""
    return _write_report(run_dir, out=None if report is True else report)
