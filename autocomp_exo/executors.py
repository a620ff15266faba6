"""Where candidates are evaluated: local worker processes, or Ray tasks on a cluster.

::

    ax.optimize(proc, budget=200)                                    # local processes (default)
    ax.optimize(proc, budget=200, executor="ray")                    # Ray: $RAY_ADDRESS, or a local instance
    ax.optimize(proc, budget=200, executor="ray", ray_address="ray://head:10001")
    ax.optimize(proc, budget=200, executor=RayPool(address="auto", runtime_env={...}))

An executor has the interface of `autocomp_exo.workers.WorkerPool`:
``run(tasks, on_done) -> results in task order`` (``on_done(i, result)`` as
each finishes) and ``close()``. Tasks and results are JSON-ready dicts, so the
search, its run directory and its trace are the same whichever executor
evaluated them.

`RayPool` runs each candidate as a Ray task (`workers.evaluate_task`). It
keeps at most as many tasks in flight as the cluster has CPUs (or
``max_in_flight``), so a task starts when it is submitted and the
per-candidate ``timeout`` is counted from there, as in the local pool; a task
past it is cancelled (its worker killed) and recorded as a failed candidate
(``stage = "timeout"``). A task that raises, or whose worker dies, is a failed
candidate (``stage = "worker"``), never a lost search. Ray is an extra
(``pip install 'autocomp_exo[ray]'``); the cluster's nodes need
``autocomp_exo`` installed (the same version), or a ``runtime_env`` that
brings it.

A mapped Exo proc given as ``baseline=`` cannot go to Ray workers (Exo procs
do not pickle; local workers inherit them by ``fork``): pass the baseline as a
`Schedule` of steps instead.
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Any, Callable, Optional, Sequence

from .workers import WorkerPool, evaluate_task, failed_result

__all__ = ["EXECUTORS", "RayPool", "make_executor"]

#: the executor names `optimize` and ``--executor`` accept
EXECUTORS = ("local", "ray")


def _run_task(fn: Callable[[dict], dict], task: dict) -> dict:
    """The body of a Ray task: ``fn(task)``, an exception becoming a failed result."""
    t0 = time.perf_counter()
    try:
        return fn(task)
    except Exception as e:
        return failed_result("worker", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}",
                             time.perf_counter() - t0, task)


class RayPool:
    """Evaluate tasks as Ray tasks (see the module doc).

    ``address``: the cluster to join (``ray.init(address=...)``: "auto",
    "ray://head:10001", ...; None: $RAY_ADDRESS or a new local instance). If
    Ray is already initialised in this process it is used as it is. A Ray
    instance this pool started is shut down by `close`. ``init_kwargs`` go to
    ``ray.init`` (e.g. ``runtime_env``, ``num_cpus`` for a local instance).
    ``num_cpus`` is what each task reserves (1).
    """

    def __init__(self, address: Optional[str] = None, timeout: Optional[float] = 600.0,
                 fn: Callable[[dict], dict] = evaluate_task, *, max_in_flight: Optional[int] = None,
                 num_cpus: float = 1, init_kwargs: Optional[dict] = None):
        try:
            import ray  # noqa: F401  (deferred: Ray is optional and slow to import)
        except ImportError as e:
            raise ImportError("executor 'ray' needs Ray: pip install 'autocomp_exo[ray]' "
                              "(or pip install ray)") from e
        self.address = address
        self.timeout = timeout
        self.fn = fn
        self.max_in_flight = max_in_flight
        self.num_cpus = num_cpus
        self.init_kwargs = dict(init_kwargs or {})
        self._started = False
        self._remote = None
        self._fn_ref = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ensure(self):
        import ray   # deferred: optional

        if not ray.is_initialized():
            kw = dict(self.init_kwargs)
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                # a new local instance: no dashboard, workers' output not copied to this terminal
                kw = {"include_dashboard": False, "log_to_driver": False, **kw}
            ray.init(address=self.address, **kw)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(num_cpus=self.num_cpus, max_retries=0)(_run_task)
            self._fn_ref = ray.put(self.fn)
        return ray

    def _capacity(self, ray) -> int:
        if self.max_in_flight:
            return max(1, int(self.max_in_flight))
        cpus = ray.cluster_resources().get("CPU", 1)
        return max(1, int(cpus // max(self.num_cpus, 1e-9)))

    def close(self) -> None:
        if self._started:
            import ray   # deferred: optional

            ray.shutdown()
            self._started = False
        self._remote = None
        self._fn_ref = None

    def run(self, tasks: Sequence[dict], on_done: Optional[Callable[[int, dict], None]] = None) -> list[dict]:
        results: list[Optional[dict]] = [None] * len(tasks)
        if not tasks:
            return []
        ray = self._ensure()
        cap = self._capacity(ray)
        queue = list(range(len(tasks)))[::-1]   # pop() gives task order
        running: dict[Any, tuple[int, float]] = {}

        def finish(i: int, res: dict) -> None:
            results[i] = res
            if on_done:
                on_done(i, res)

        while queue or running:
            while queue and len(running) < cap:
                i = queue.pop()
                running[self._remote.remote(self._fn_ref, tasks[i])] = (i, time.perf_counter())
            wait_for = None
            if self.timeout is not None:
                first_deadline = min(t0 for _, t0 in running.values()) + self.timeout
                wait_for = max(0.0, first_deadline - time.perf_counter())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=wait_for)
            for ref in ready:
                i, t0 = running.pop(ref)
                finish(i, self._result(ray, ref, tasks[i], time.perf_counter() - t0))
            if self.timeout is not None:
                now = time.perf_counter()
                for ref, (i, t0) in sorted(running.items(), key=lambda kv: kv[1][0]):
                    if now - t0 >= self.timeout:
                        running.pop(ref)
                        try:
                            ray.cancel(ref, force=True)
                        except Exception:  # pragma: no cover - already finished or gone
                            pass
                        finish(i, failed_result("timeout", f"candidate took longer than {self.timeout} s",
                                                now - t0, tasks[i]))
        return results  # type: ignore[return-value]

    @staticmethod
    def _result(ray, ref, task: dict, seconds: float) -> dict:
        try:
            r = ray.get(ref)
        except Exception as e:
            name = type(e).__name__
            if name in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ActorDiedError"):
                return failed_result("worker", f"worker process died: {name}: {e}", seconds, task)
            return failed_result("worker", f"{name}: {e}", seconds, task)
        if not isinstance(r, dict) or "measurement" not in r:
            return failed_result("worker", f"worker returned {type(r).__name__}", seconds, task)
        return r


def make_executor(executor: Any = "local", *, workers: Optional[int] = None, timeout: Optional[float] = 600.0,
                  fn: Optional[Callable[[dict], dict]] = None, ray_address: Optional[str] = None):
    """An executor from a name ("local", "ray") or an executor object (returned as it is)."""
    kw = {"fn": fn} if fn is not None else {}
    if executor is None or executor == "local":
        return WorkerPool(workers, timeout, **kw)
    if executor == "ray":   # ``workers``, when given, caps the tasks in flight
        return RayPool(ray_address, timeout, max_in_flight=workers, **kw)
    if isinstance(executor, str):
        raise ValueError(f"unknown executor {executor!r}; one of {', '.join(EXECUTORS)}")
    if not (hasattr(executor, "run") and hasattr(executor, "close")):
        raise TypeError("executor must be 'local', 'ray' or an object with run(tasks, on_done) and close()")
    return executor
