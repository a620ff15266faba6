"""Executors: the local pool inside a daemonic process, executor names (the Ray
executor itself: test_executors_ray.py)."""
from __future__ import annotations

import multiprocessing as mp
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_stubs import StubAgent, fake_eval, run_stub_search  # noqa: E402

from autocomp_exo.executors import RayPool, make_executor  # noqa: E402
from autocomp_exo.workers import InProcessFallback, WorkerPool  # noqa: E402


# --------------------------------------------------------------------------- #
# local pool inside a daemonic process
# --------------------------------------------------------------------------- #


def _search_in_daemon(_):
    assert mp.current_process().daemon
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        r = run_stub_search(workers=2, budget=8)
    return r.trace_key(), r.trace, [w.category.__name__ for w in ws]


def test_pool_inside_a_daemonic_process_falls_back_to_in_process_with_the_same_results():
    want = run_stub_search(workers=1, budget=8)
    with mp.get_context("fork").Pool(1) as p:   # pool workers are daemonic: no children allowed
        key, trace, warned = p.map(_search_in_daemon, [0])[0]
    assert key == want.trace_key()
    assert trace == want.trace
    assert warned.count(InProcessFallback.__name__) == 1   # once per pool, not per candidate


def _optimize_in_daemon(_):
    import autocomp_exo as ax
    from autocomp_exo.optimize import optimize

    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        r = optimize(ax.gemm(64, 64, 64), agent=StubAgent(), evaluate_fn=fake_eval, workers=2, budget=8,
                     beam=2, plans=2, impls=2)
    return r.search.trace_key(), r.cycles, [w.category.__name__ for w in ws]


def test_optimize_inside_a_multiprocessing_pool_worker():
    """The user's case: several searches in a multiprocessing.Pool (daemonic workers)."""
    import autocomp_exo as ax
    from autocomp_exo.optimize import optimize

    want = optimize(ax.gemm(64, 64, 64), agent=StubAgent(), evaluate_fn=fake_eval, workers=2, budget=8,
                    beam=2, plans=2, impls=2)
    with mp.get_context("fork").Pool(2) as p:
        got = p.map(_optimize_in_daemon, [0, 1])
    for key, cycles, warned in got:
        assert (key, cycles) == (want.search.trace_key(), want.cycles)
        assert InProcessFallback.__name__ in warned


def test_in_process_pool_outside_a_daemon_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InProcessFallback)
        with WorkerPool(0, fn=fake_eval) as pool:
            res = pool.run([{"M": 16, "N": 16, "K": 16, "schedule": []}])
    assert res[0]["measurement"]["ok"]


def test_make_executor_names():
    assert isinstance(make_executor("local", workers=0), WorkerPool)
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm")
    with pytest.raises(TypeError):
        make_executor(object())
    pool = WorkerPool(0)
    assert make_executor(pool) is pool


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"autocomp_exo\[ray\]"):
        RayPool()
