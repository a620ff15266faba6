"""Issue 13 (items 1 and 6): the Workload protocol, the typed Task, Agent.rejections/notify,
OptionAgent forwarding, and the package API with optimize/transfer importable independently."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from autocomp_exo.agents.base import Agent, Candidate, Plan
from autocomp_exo.workers import Task, evaluate_task
from autocomp_exo.workloads import GemmWorkload, MatmulI32Workload, Workload, WorkloadError


def test_workload_signature_round_trip():
    for w in (GemmWorkload(64, 32, 16), GemmWorkload(16, 16, 16, relu=True), MatmulI32Workload(32, 16, 16, False)):
        assert isinstance(w, Workload)
        sig = json.loads(json.dumps(w.signature()))
        assert Workload.from_signature(sig) == w and sig["kind"] == w.kind
        assert w.dims == {"M": w.M, "N": w.N, "K": w.K} and w.macs == w.M * w.N * w.K
        assert w.outputs == ("C",)
        inp = w.inputs(1)
        argnames = [a.name() for a in w.proc.args()]
        assert set(inp) <= set(argnames) and set(w.outputs) <= set(inp)
    # a signature written before kinds existed is a GEMM
    assert Workload.from_signature({"M": 16, "N": 32, "K": 16}) == GemmWorkload(16, 32, 16)
    with pytest.raises(WorkloadError, match="unknown workload kind"):
        Workload.from_signature({"kind": "pooling", "M": 16})
    with pytest.raises(WorkloadError, match="not a conv signature"):
        Workload.from_signature({"kind": "conv", "M": 16})
    # similarity: GEMMs with GEMMs only
    assert GemmWorkload(64, 64, 64).similarity(GemmWorkload(64, 64, 128))[0] == 1
    assert GemmWorkload(64, 64, 64).similarity(MatmulI32Workload(64, 64, 64)) is None


def test_task_round_trip_and_old_dicts():
    w = GemmWorkload(16, 16, 16, relu=True)
    t = Task.of(w, [{"op": "simplify", "args": [], "kwargs": {}, "menu": None}], seed=3, seeds=[5, 6],
                baseline_cycles=100, base="b1", config={"DIM": 16}, label="x", sleep=0.5)
    assert t.extra == {"sleep": 0.5}
    d = json.loads(json.dumps(t.to_dict()))
    assert Task.from_dict(d) == t
    assert d["M"] == 16 and d["relu"] is True         # the flat fields older readers use
    old = {"M": 16, "N": 32, "K": 16, "relu": False, "schedule": [], "seed": 2}
    t2 = Task.from_dict(old)
    assert Workload.from_signature(t2.workload) == GemmWorkload(16, 32, 16) and t2.seed == 2


def test_worker_rebuilds_the_workload_from_its_signature():
    """The int32 matmul (another kind, other arguments: no scale, no act) evaluates in a worker
    from its signature alone, bound by the proc's argument names and checked against its reference."""
    w = MatmulI32Workload(16, 16, 16, accumulate=True)
    r = evaluate_task(Task.of(w, [], seed=0).to_dict())
    m = r["measurement"]
    assert m["ok"], m
    assert m["workload"] == w.name and m["total_elements"] == 16 * 16
    # the same through a Task object
    assert evaluate_task(Task.of(w, [], seed=0))["measurement"]["cycles"] == m["cycles"]
    # a bad signature is a failed result, not an exception
    bad = evaluate_task({"workload": {"kind": "nope"}, "schedule": []})
    assert not bad["measurement"]["ok"] and "unknown workload kind" in bad["measurement"]["error"]


class _Toy(Workload):
    """A non-GEMM toy: y = x + 1 elementwise (int8, wrapping)."""

    kind = "toy_add1"
    outputs = ("y",)

    def __init__(self, n: int = 16, wrong: bool = False):
        self.n, self.wrong = n, wrong

    name = property(lambda self: f"toy_add1_{self.n}")
    dims = property(lambda self: {"N": self.n})
    macs = property(lambda self: self.n)

    def signature(self):
        return {"kind": self.kind, "N": self.n, "wrong": self.wrong}

    @classmethod
    def _from_signature(cls, sig):
        return cls(int(sig["N"]), bool(sig.get("wrong")))

    @property
    def proc(self):
        from exo import DRAM, proc

        @proc
        def toy_add1(x: i8[16] @ DRAM, y: i8[16] @ DRAM):
            for i in seq(0, 16):
                y[i] = x[i] + 1.0
        return toy_add1

    def inputs(self, seed=0):
        rng = np.random.default_rng(seed)
        return {"x": rng.integers(-100, 100, size=self.n).astype(np.int8), "y": np.zeros(self.n, np.int8)}

    def reference(self, inputs):
        return (inputs["x"].astype(np.int16) + (2 if self.wrong else 1)).astype(np.int8)


def test_a_toy_workload_evaluates_through_the_worker():
    r = evaluate_task(Task.of(_Toy(), []).to_dict())
    m = r["measurement"]
    if not m["ok"] and m["stage"] in ("compile", "parse", "simulate"):
        pytest.skip(f"the toy proc does not lower/simulate here: {m['stage']}: {m['error'][:200]}")
    assert m["ok"], m
    r = evaluate_task(Task.of(_Toy(wrong=True), []).to_dict())
    assert r["measurement"]["stage"] == "mismatch" and "y[" in r["measurement"]["error"]


class _Refuser(Agent):
    name = "refuser"

    def __init__(self):
        self.seen = []

    def plan(self, candidate, menu, n, rng):
        return [Plan(menu[0].key, "m")]

    def implement(self, candidate, plan, k, rng):
        self.rejections.append({"stage": "parse", "reason": "not JSON", "steps": "garbage"})
        return []

    def notify(self, results):
        self.seen.append([c.id for c in results])


def test_agent_base_rejections_and_notify_default():
    class Plain(Agent):
        def plan(self, *a):
            return []

        def implement(self, *a):
            return []

    a, b = Plain(), Plain()
    assert a.rejections == [] and a.rejections is a.rejections and a.rejections is not b.rejections
    assert a.notify([]) is None


def test_option_agent_forwards_rejections_and_notify():
    from autocomp_exo.menu import MENU
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.transfer import OptionAgent

    inner = _Refuser()
    oa = OptionAgent(inner, "tiling")
    c = Candidate(0, Schedule([]))
    plans = oa.plan(c, list(MENU), 1, random.Random(0))
    assert plans[0].option == "tiling"
    assert oa.implement(c, plans[0], 1, random.Random(0)) == []
    assert oa.rejections is inner.rejections and len(oa.rejections) == 1
    oa.notify([c])
    assert inner.seen == [[0]]


def test_search_records_refusals_through_option_agent_and_notifies():
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.search import SearchSettings, beam_search
    from autocomp_exo.transfer import OptionAgent
    from autocomp_exo.workers import WorkerPool

    inner = _Refuser()
    w = GemmWorkload(16, 16, 16)
    with WorkerPool(0) as pool:
        sr = beam_search(w, Schedule([]), OptionAgent(inner, "tiling"), SearchSettings(beam=1, plans=1, impls=1,
                         iterations=1, budget=2), pool=pool)
    rej = [c for c in sr.candidates if c.measurement.stage == "parse"]
    assert rej and "not JSON" in rej[0].measurement.error


@pytest.mark.parametrize("mod", ["autocomp_exo.transfer", "autocomp_exo.optimize", "autocomp_exo.evaluate"])
def test_modules_import_first_and_package_functions(mod):
    code = (f"import {mod}, sys, autocomp_exo as ax; "
            "assert callable(ax.optimize) and callable(ax.transfer) and callable(ax.evaluate); "
            "assert not isinstance(ax.optimize, type(sys)) and not isinstance(ax.transfer, type(sys)); "
            "from autocomp_exo.optimize import optimize; assert ax.optimize is optimize; "
            "from autocomp_exo.transfer import transfer; assert ax.transfer is transfer")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_database_top_k_ordering(tmp_path, monkeypatch):
    from autocomp_exo.database import Database
    from autocomp_exo.runs import RunDir

    run = RunDir(tmp_path / "run")
    assert isinstance(run, Database)
    sig = GemmWorkload(16, 16, 16).signature()
    run.start({"workload": sig})
    for key, ok, cyc in (("a", True, 300), ("b", True, 100), ("c", False, 50), ("d", True, 100), ("e", True, 200)):
        run.commit({"key": key, "measurement": {"ok": ok, "cycles": cyc}})
    assert [r["key"] for r in run.top_k(sig, None, 3)] == ["b", "d", "e"]     # fastest first, ties by key
    assert run.lookup("c")["measurement"]["cycles"] == 50
    assert run.top_k(GemmWorkload(32, 16, 16).signature(), None, 3) == []      # another workload
    sig_old = {k: v for k, v in sig.items() if k != "kind"}                      # an old signature is a GEMM
    assert len(run.top_k(sig_old, None, 10)) == 4
    # resumed: the same answers from the log on disk
    assert [r["key"] for r in RunDir(tmp_path / "run").top_k(sig, None, 2)] == ["b", "d"]


def test_library_is_a_database(tmp_path):
    from autocomp_exo.database import Database
    from autocomp_exo.library import FORMAT, Library, Record, hardware_fingerprint

    lib = Library(tmp_path / "lib")
    assert isinstance(lib, Database)
    hw = hardware_fingerprint()
    recs = []
    for (M, cyc) in ((16, 500), (32, 300)):
        sig = GemmWorkload(M, 16, 16).signature()
        recs.append(Record.from_dict({"format": FORMAT, "workload": sig, "hardware": hw, "schedule": [], "cycles": cyc,
                                      "baseline_cycles": 1000}))
        lib.commit(recs[-1])
    assert [r.cycles for r in lib.top_k(None, hw, 5)] == [300, 500]
    assert [r.cycles for r in lib.top_k(GemmWorkload(16, 16, 16).signature(), hw, 5)] == [500]
    assert lib.lookup(recs[1].key).cycles == 300
    assert lib.lookup(GemmWorkload(64, 16, 16).signature()) is None
