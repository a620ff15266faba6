"""The Ray executor: a search gives the same trace as the local pool; a task past
the timeout and a dead worker are failed candidates.

Needs Ray (``pip install -e '.[ray]'``, part of ``[test]``); the module starts
one local instance (``ray.init(num_cpus=2)``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'); the Ray executor "
                                        "tests need it")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import search_stubs  # noqa: E402
from search_stubs import StubAgent, fake_eval, run_stub_search  # noqa: E402

from autocomp_exo.executors import RayPool  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    started = not ray.is_initialized()
    if started:
        # the stubs live in tests/, which Ray's workers cannot import: ship them by value
        ray.cloudpickle.register_pickle_by_value(search_stubs)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.timeout(600)
def test_ray_search_gives_the_same_trace_as_the_local_pool(ray_local, tmp_path):
    """A real search (Exo, compile, simulate, check) of a 64x64x64 GEMM: Ray tasks and
    local worker processes give the same candidates, cycles and beams."""
    import autocomp_exo as ax
    from autocomp_exo.optimize import optimize

    kw = dict(budget=2, beam=1, plans=2, impls=1, seed=3, timeout=300)
    local = optimize(ax.gemm(64, 64, 64), workers=2, run_dir=str(tmp_path / "local"), **kw)
    remote = optimize(ax.gemm(64, 64, 64), executor="ray", run_dir=str(tmp_path / "ray"), **kw)
    assert local.search.trace_key() == remote.search.trace_key()
    assert local.search.trace == remote.search.trace
    assert (remote.cycles, remote.schedule.to_list()) == (local.cycles, local.schedule.to_list())
    assert all(c.ok for c in remote.search.candidates)
    assert remote.samples_used == 2


def test_ray_stub_search_trace_equals_local(ray_local):
    want = run_stub_search(workers=2, budget=20, jitter=0.01)
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.search import SearchSettings, beam_search
    from autocomp_exo.workloads import GemmWorkload

    s = SearchSettings(beam=3, plans=3, impls=2, budget=20, seed=0)
    with RayPool(timeout=30, fn=fake_eval) as pool:
        got = beam_search(GemmWorkload(64, 64, 64), Schedule([]), StubAgent(), s, pool=pool,
                          task_extra={"sleep": 0.0, "jitter": 0.01})
    assert got.trace_key() == want.trace_key() and got.trace == want.trace


def test_ray_timeout_and_dead_worker_are_failed_candidates(ray_local):
    def task(name):
        return {"M": 64, "N": 64, "K": 64, "schedule": [{"op": "rename", "args": [name], "kwargs": {}}]}

    done = []
    with RayPool(timeout=5, fn=fake_eval) as pool:
        res = pool.run([task("p0"), task("p1_hang"), task("p2_crash"), task("p3")],
                       lambda i, r: done.append(i))
    assert sorted(done) == [0, 1, 2, 3]
    assert res[0]["measurement"]["ok"] and res[3]["measurement"]["ok"]
    assert res[1]["measurement"]["stage"] == "timeout" and "5" in res[1]["measurement"]["error"]
    assert res[2]["measurement"]["stage"] == "worker" and not res[2]["measurement"]["ok"]
    assert res[1]["seconds"] < 30   # the hung task was cancelled, not waited for (it sleeps 60 s)
