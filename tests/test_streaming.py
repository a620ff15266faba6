"""Streamed proposals (`autocomp_exo.streaming`): requests go out as soon as what
they need is back, and the trace does not depend on the order answers arrive in.

A stub agent answers from threads after random delays (an unseeded rng: a
different arrival order every run); its trace must be the one of the same
agent asked a round at a time through `BatchRequests`, duplicates and re-asks
included. No Exo, no simulator: the stub evaluator of `search_stubs`.
"""
from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_stubs import StubAgent, fake_eval  # noqa: E402

from autocomp_exo import streaming  # noqa: E402
from autocomp_exo.schedule import Schedule  # noqa: E402
from autocomp_exo.search import SearchSettings, beam_search  # noqa: E402
from autocomp_exo.workers import WorkerPool  # noqa: E402
from autocomp_exo.workloads import GemmWorkload  # noqa: E402


class BatchStub(StubAgent):
    """Concurrent, but only with the batch calls: the search asks a round at a time."""

    concurrent = True


class StreamStub(BatchStub):
    """Answers each request from its own thread after a random delay; logs when
    each request was sent and answered."""

    def __init__(self, *a, slow_plan: float = 0.0, **kw):
        super().__init__(*a, **kw)
        self.slow_plan = slow_plan
        self.log: list[tuple[float, str, str, int]] = []   # (time, "sent"/"done", kind, slot)
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.jitter = random.Random()

    def requests(self, run_task=None):
        agent = self

        class Session:
            def _go(self, kind, slot, fn, delay):
                agent.log.append((time.monotonic(), "sent", kind, slot))

                def run():
                    time.sleep(delay)
                    out = fn()
                    agent.log.append((time.monotonic(), "done", kind, slot))
                    return out, []
                return agent.pool.submit(run)

            def plan(self, slot, candidate, menu, rng):
                d = agent.slow_plan if slot == 0 else agent.jitter.uniform(0, 0.02)
                return self._go("plan", slot, lambda: agent.plan(candidate, menu, 1, rng), d)

            def implement(self, slot, candidate, plan, rng):
                return self._go("implement", slot, lambda: agent.implement(candidate, plan, 1, rng),
                                agent.jitter.uniform(0, 0.02))

            def result(self, f):
                return f.result()

            def close(self):
                pass

        return Session()


def search(agent, workers=0, budget=60, seed=3, **kw):
    s = SearchSettings(beam=3, plans=3, impls=2, budget=budget, seed=seed, **kw)
    with WorkerPool(workers, 30.0, fn=fake_eval) as pool:
        return beam_search(GemmWorkload(64, 64, 64), Schedule([]), agent, s, pool=pool, task_extra={})


@pytest.mark.parametrize("width", [3, 12])
def test_streamed_trace_is_the_round_by_round_trace_whatever_the_arrival_order(width):
    """width 3: most answers are duplicates (re-asks, exhausted beam entries)."""
    ref = search(BatchStub(width=width))
    for _ in range(3):
        got = search(StreamStub(width=width))
        assert got.trace_key() == ref.trace_key() and got.trace == ref.trace
        assert got.best.id == ref.best.id and got.samples_used == ref.samples_used
    assert ref.samples_used > 9   # more than one iteration


def test_implement_requests_go_out_before_the_slowest_plan_is_back():
    a = StreamStub(width=10_000, slow_plan=0.3)
    search(a, budget=18, iterations=1)
    done0 = next(t for t, what, kind, slot in a.log if (what, kind, slot) == ("done", "plan", 0))
    sent = [t for t, what, kind, _s in a.log if (what, kind) == ("sent", "implement")]
    assert len(sent) == 3 * 3 * 2
    assert sum(t < done0 for t in sent) >= 2 * 8   # every other slot's implementations went out meanwhile


def test_a_certain_duplicate_is_asked_again_before_the_slowest_plan_is_back():
    """Slot 0's answers come last, so the cursor waits there; a duplicate of an
    answer already in is re-asked meanwhile (a re-ask's slot number is past the
    18 of round 0), and the trace is still the round-by-round one."""
    a = StreamStub(width=3, slow_plan=0.3)
    r = search(a, budget=18, iterations=1)
    done0 = next(t for t, what, kind, slot in a.log if (what, kind, slot) == ("done", "plan", 0))
    assert sum(t < done0 and slot >= 18 for t, what, kind, slot in a.log if (what, kind) == ("sent", "implement")) >= 3
    assert r.trace_key() == search(BatchStub(width=3), budget=18, iterations=1).trace_key()


def test_children_are_evaluated_while_requests_are_out(monkeypatch):
    submitted = []
    orig = WorkerPool.submit
    monkeypatch.setattr(WorkerPool, "submit", lambda self, t: (submitted.append(time.monotonic()), orig(self, t))[1])
    a = StreamStub(width=10_000, slow_plan=0.5)
    r = search(a, workers=1, budget=18, iterations=1)
    last = max(t for t, what, _k, _s in a.log if what == "done")
    assert r.samples_used == 18 and len(submitted) == 18
    assert sum(t < last for t in submitted) >= 8   # started while the slow plan's slot was still out
    assert search(BatchStub(width=10_000), budget=18, iterations=1).trace_key() == r.trace_key()


def test_batch_requests_send_a_round_at_a_time_with_each_requests_refusals():
    class Refusing(BatchStub):
        def __init__(self):
            super().__init__()
            self.calls = []

        def implement_many(self, requests):
            self.calls.append(len(requests))
            self.rejections.append({"request": 1, "stage": "parse", "reason": "not JSON"})
            return super().implement_many(requests)

    a = Refusing()
    s = streaming.BatchRequests(a)
    futs = [s.implement(q, None, None, random.Random(q)) for q in range(3)]
    import autocomp_exo.agents.base as base

    plan = base.Plan("unroll", "rename")
    s.impls = [(f, (None, plan, 1, random.Random(q))) for q, (f, _r) in enumerate(s.impls)]
    assert [len(s.result(f)[1]) for f in futs] == [0, 1, 0] and a.calls == [3]
    with pytest.raises(RuntimeError, match="never queued"):
        s.result(streaming.Future())


def test_submit_task_without_a_submit_method_runs_the_pool_in_a_thread():
    class RunOnly:
        def run(self, tasks):
            return [{"measurement": {"ok": True}, "thread": threading.current_thread().name} for _ in tasks]

    r = streaming.submit_task(RunOnly(), {}).result(timeout=5)
    assert r["thread"] == "autocomp-eval"


def test_the_in_flight_gate_serves_waiters_by_priority_then_arrival_without_barging():
    from autocomp_exo.agents.llm_gate import Gate

    g = Gate(1)
    g.acquire()
    order, threads = [], []
    for name, prio in [("impl1", 1), ("impl2", 1), ("plan", 0)]:
        t = threading.Thread(target=lambda n=name, p=prio: (g.acquire(p), order.append(n), g.release()))
        t.start()
        threads.append(t)
        while len(g._queue) < len(threads):   # queued in this order
            time.sleep(0.001)
    g.release()
    g.acquire(5)          # a late acquirer waits for everyone queued before it
    order.append("late")
    g.release()
    for t in threads:
        t.join(5)
    assert order == ["plan", "impl1", "impl2", "late"]
    with pytest.raises(ValueError, match="more often"):
        g.release()


def test_pool_tasks_count_what_is_out_and_say_when_a_worker_is_free():
    gate = threading.Event()

    class Slow:
        workers = 1

        def run(self, tasks):
            gate.wait(5)
            return [{"measurement": {"ok": True}, "task": t} for t in tasks]

    tasks = streaming.PoolTasks(Slow(), lambda sched: {"schedule": sched})
    assert tasks.free()
    f = tasks("guide", ["s"], seconds=3)
    assert not tasks.free()
    gate.set()
    assert f.result(timeout=5)["task"] == {"schedule": ["s"], "seconds": 3, "kind": "guide"}
    deadline = time.monotonic() + 5
    while not tasks.free() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tasks.free() and tasks.evaluate(["t"]).result(timeout=5)["task"] == {"schedule": ["t"]}
