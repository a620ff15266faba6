"""Parallel evaluation of candidates in worker processes, with a per-candidate timeout.

A *task* is a JSON-ready dict (workload dimensions, schedule steps, seed,
baseline cycles, the key of a registered base proc); the worker applies the
schedule (reusing its process-local prefix cache), compiles, simulates and
checks it (`autocomp_exo.evaluate`) and returns a JSON-ready result:
``{"measurement": {...}, "proc_text": str | None, "facts": dict | None,
"seconds": float}`` (``facts``: `proc_facts.ProcFacts.to_json()` of the
scheduled proc, read with Exo's cursors in the worker).

A worker that crashes (the process dies), raises, or runs past the timeout
gives a failed result (``measurement.ok = False``, ``stage = "worker"``); the
pool replaces the worker and the search goes on. ``workers=0`` evaluates in
the calling process (no timeout; for debugging and tiny runs). So does a pool
created inside a daemonic process (a `multiprocessing.Pool` worker, which may
not have children): it warns once (`InProcessFallback`) and gives the same
results, without the per-candidate timeout. `autocomp_exo.executors` has the
other executor (Ray) with the same interface.

Pools use the ``fork`` start method so procs registered with
`register_base` before the pool starts (an already mapped proc given as a
baseline, which cannot be pickled) are visible in the workers.
"""
from __future__ import annotations

import hashlib
import importlib
import multiprocessing as mp
import os
import sys
import time
import traceback
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, TimeoutError as FTimeout, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from gemmini_isa import GemminiConfig

from .proc_facts import facts as _facts
from .proc_text import proc_text as _text
from .runs import schedule_key
from .schedule import Schedule

__all__ = ["Task", "evaluate_task", "register_base", "failed_result", "WorkerPool", "default_workers",
           "InProcessFallback"]


@dataclass
class Task:
    """What a worker evaluates: a workload (by its signature), a schedule (step
    dicts), the search's input seed (or the exact ``seeds`` to pass), the
    baseline cycles for the speedup, the key of a registered base proc, the
    hardware config (``GemminiConfig.to_dict()``) and a label.

    ``to_dict()`` is the JSON-ready form sent to workers; it also carries the
    workload's M, N, K, relu (older readers, failure records)."""

    workload: dict
    schedule: list
    seed: int = 0
    seeds: list = field(default_factory=list)
    baseline_cycles: Optional[int] = None
    base: Optional[str] = None
    config: Optional[dict] = None
    label: Optional[str] = None
    extra: dict = field(default_factory=dict)   # other JSON fields (an evaluator's own options)

    _FIELDS = ("workload", "schedule", "seed", "seeds", "baseline_cycles", "base", "config", "label")

    @classmethod
    def of(cls, workload: Any, schedule: Any, **kw) -> "Task":
        """The task of a `Workload` and a `Schedule` (or list of step dicts);
        keywords that are not fields go to ``extra``."""
        steps = schedule.to_list() if hasattr(schedule, "to_list") else list(schedule)
        sig = workload.to_task() if callable(getattr(workload, "to_task", None)) else workload.signature()
        extra = {k: kw.pop(k) for k in list(kw) if k not in cls._FIELDS}
        return cls(dict(sig), steps, extra=extra, **kw)

    def to_dict(self) -> dict:
        d = {"workload": dict(self.workload), "schedule": list(self.schedule), "seed": int(self.seed),
             "baseline_cycles": self.baseline_cycles}
        for k in ("M", "N", "K", "relu"):
            if k in self.workload:
                d[k] = self.workload[k]
        if self.seeds:
            d["seeds"] = [int(x) for x in self.seeds]
        for k in ("base", "config", "label"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        """A task from its dict; a dict without "workload" (written before tasks
        carried one) is a GEMM of its M, N, K, relu."""
        sig = d.get("workload")
        if sig is None:
            sig = {"kind": "gemm", "M": int(d["M"]), "N": int(d["N"]), "K": int(d["K"]),
                   "relu": bool(d.get("relu", False)), "dtype": "int8", "acc": "int32"}
        extra = {k: v for k, v in d.items() if k not in cls._FIELDS and k not in ("M", "N", "K", "relu")}
        return cls(dict(sig), list(d["schedule"]), int(d.get("seed", 0) or 0),
                   [int(x) for x in d.get("seeds") or []], d.get("baseline_cycles"), d.get("base"),
                   d.get("config"), d.get("label"), extra)


class InProcessFallback(RuntimeWarning):
    """A worker pool inside a daemonic process evaluates in that process instead."""


_BASES: dict[str, Any] = {}


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def register_base(key: str, proc: Any) -> None:
    """Make ``proc`` the base proc of tasks with ``"base": key`` (before starting a pool)."""
    _BASES[key] = proc


class _Workload:
    """A workload whose proc is a registered base proc (everything else, its
    inputs and reference included, is the wrapped workload's)."""

    def __init__(self, w: Any, proc: Any):
        self._w, self.proc = w, proc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)


def failed_result(stage: str, error: str, seconds: float = 0.0, task: Optional[dict] = None) -> dict:
    m = {"ok": False, "stage": stage, "error": error, "timings": {"total": seconds}}
    if task:
        dims = task.get("workload") if isinstance(task.get("workload"), dict) else task
        m.update({"M": dims.get("M", task.get("M")), "N": dims.get("N", task.get("N")),
                  "K": dims.get("K", task.get("K"))})
    return {"measurement": m, "proc_text": None, "facts": None, "seconds": seconds}


def candidate_seed(eval_seed: int, schedule: Any) -> int:
    """The input seed of one candidate: drawn from the search's ``eval_seed`` and
    the candidate's own program (its schedule key), so every candidate sees
    other inputs (A, B, scale, act) and a resumed run sees the same ones."""
    h = hashlib.sha256(f"{int(eval_seed)}|{schedule_key(schedule)}".encode()).hexdigest()
    return int(h[:8], 16) & 0x7FFFFFFF


#: other kinds of task a worker runs (``task["kind"]``): the function, by
#: "module:name", imported in the worker when the first such task arrives.
#: Named, not imported: the modules that send these tasks (`transfer`) import
#: this one, so this one does not import them.
TASK_KINDS = {"adapt": "autocomp_exo.transfer:adapt_task", "guide": "autocomp_exo.agents.llm_moves:guide_task",
              "check": "autocomp_exo.agents.llm_check:check_task"}


def task_function(kind: str) -> Callable[[dict], dict]:
    """The function of a task kind of `TASK_KINDS`."""
    module, name = TASK_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def task_parts(task: Any) -> tuple:
    """(Task, workload (its proc the registered base proc, if any), Schedule,
    GemminiConfig or None) of a task or its dict; raises for a bad task."""
    from .workloads import Workload

    t = task if isinstance(task, Task) else Task.from_dict(task)
    w = Workload.from_signature(t.workload)
    sched = Schedule.from_json(t.schedule)
    if t.base:
        if t.base not in _BASES:
            raise LookupError(f"base proc {t.base!r} is not registered in this worker")
        w = _Workload(w, _BASES[t.base])
    return t, w, sched, None if t.config is None else GemminiConfig(**t.config)


def evaluate_task(task: Any) -> dict:
    """Evaluate one candidate (runs in a worker). Never raises for candidate errors.

    ``task`` is a `Task` or its dict. The workload is rebuilt from the task's
    signature (`Workload.from_signature`). The inputs come from the
    candidate's own seed (`candidate_seed` of the task's ``seed`` and the
    schedule) unless the task lists ``"seeds"``: then the first is used and the
    program must pass every one (verification). A task with ``"kind":
    "adapt"`` adapts a library record to a new shape (`transfer.adapt_task`)
    under the same timeout."""
    t0 = time.perf_counter()
    if isinstance(task, dict) and task.get("kind") in TASK_KINDS:
        return task_function(task["kind"])(task)
    # deferred: Exo loads here, in the worker (this module is imported by fast paths too)
    from .evaluate import evaluate

    raw = task.to_dict() if isinstance(task, Task) else task
    try:
        t, w, sched, config = task_parts(task)
        seeds = list(t.seeds)
    except Exception as e:
        return failed_result("schedule", f"{type(e).__name__}: {e}", time.perf_counter() - t0, raw)
    seed = seeds[0] if seeds else candidate_seed(int(t.seed), sched)
    m = evaluate(w, sched, config=config, seed=seed, seeds=seeds[1:],
                 baseline_cycles=t.baseline_cycles, label=t.label)
    proc_text = facts = None
    if m.proc is not None:
        try:
            proc_text = _text(m.proc)
        except Exception:  # pragma: no cover
            proc_text = None
        try:
            facts = _facts(m.proc).to_json()
        except Exception:  # noqa: BLE001 - facts are a help for the agents, never a failure
            facts = None
    d = m.to_dict(include_source=False)
    return {"measurement": d, "proc_text": proc_text, "facts": facts, "seconds": time.perf_counter() - t0}


class WorkerPool:
    """Evaluate tasks in ``workers`` processes (0: in this process).

    ``run(tasks, on_done)`` returns the results in task order; ``on_done(i,
    result)`` is called in this process as each one finishes (any order).
    """

    def __init__(self, workers: Optional[int] = None, timeout: Optional[float] = 600.0,
                 fn: Callable[[dict], dict] = evaluate_task):
        self.workers = default_workers() if workers is None else int(workers)
        self.timeout = timeout
        self.fn = fn
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _in_process(self) -> bool:
        """True when candidates are evaluated in this process (``workers=0``, or a
        daemonic process, which may not start worker processes)."""
        if self.workers <= 0:
            return True
        if mp.current_process().daemon:
            if not getattr(self, "_warned", False):
                self._warned = True
                warnings.warn(f"{mp.current_process().name} is a daemonic process and cannot start worker "
                              f"processes: evaluating candidates in this process, one at a time and without "
                              f"the per-candidate timeout (same results)", InProcessFallback, stacklevel=3)
            return True
        return False

    def _ensure(self):
        if self._pool is None and self.workers > 0:
            from pebble import ProcessPool   # deferred: only a pool with worker processes needs pebble

            self._pool = ProcessPool(max_workers=self.workers, max_tasks=0,
                                     context=mp.get_context("fork"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None

    def _local(self, task: Any) -> dict:
        t0 = time.perf_counter()
        try:
            return self.fn(task)
        except Exception as e:
            return failed_result("worker", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}",
                                 time.perf_counter() - t0, task)

    def run(self, tasks: Sequence[dict], on_done: Optional[Callable[[int, dict], None]] = None) -> list[dict]:
        results: list[Optional[dict]] = [None] * len(tasks)
        if not tasks:
            return []
        if self._in_process():
            for i, t in enumerate(tasks):
                results[i] = self._local(t)
                if on_done:
                    on_done(i, results[i])
            return results  # type: ignore[return-value]
        pool = self._ensure()
        t0 = {}
        futs = {}
        for i, t in enumerate(tasks):
            f = pool.schedule(self.fn, args=[t], timeout=self.timeout)
            futs[f] = i
            t0[i] = time.perf_counter()
        pending = set(futs)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: futs[f]):
                i = futs[f]
                results[i] = self._result(f, tasks[i], time.perf_counter() - t0[i])
                if on_done:
                    on_done(i, results[i])
        return results  # type: ignore[return-value]

    def submit(self, task: dict) -> Future:
        """Start one task now; a Future of its result (the dict `run` gives).

        Lets a caller hand over candidates one at a time as they appear (the
        search does while LLM requests are out). In-process pools evaluate
        right here and return a finished Future."""
        out: Future = Future()
        if self._in_process():
            out.set_result(self._local(task))
            return out
        t0 = time.perf_counter()
        f = self._ensure().schedule(self.fn, args=[task], timeout=self.timeout)
        f.add_done_callback(lambda f: out.set_result(self._result(f, task, time.perf_counter() - t0)))
        return out

    def _result(self, f, task: dict, seconds: float) -> dict:
        try:
            r = f.result()
        except FTimeout:
            return failed_result("timeout", f"candidate took longer than {self.timeout} s", seconds, task)
        except Exception as e:
            name = type(e).__name__
            if name == "ProcessExpired":
                return failed_result("worker", f"worker process died: {e}", seconds, task)
            return failed_result("worker", f"{name}: {e}", seconds, task)
        if not isinstance(r, dict) or "measurement" not in r:
            return failed_result("worker", f"worker returned {type(r).__name__}", seconds, task)
        return r
