"""evaluate / evaluate_c: the ok path and every failure stage, as data."""
from __future__ import annotations

import json

import pytest

from autocomp_exo.baselines import swlib
from autocomp_exo.evaluate import evaluate, evaluate_c
from autocomp_exo.measurement import Measurement

pytest.importorskip("sim")
workloads = pytest.importorskip("autocomp_exo.workloads")


@pytest.fixture(scope="module")
def w64():
    return workloads.GemmWorkload(64, 64, 64, False)


@pytest.fixture(scope="module")
def unopt_schedule(w64):
    mod = pytest.importorskip("autocomp_exo.baselines.exo_unopt")
    return mod.schedule(w64)


@pytest.fixture(scope="module")
def unopt_measurement(w64, unopt_schedule):
    return evaluate(w64, unopt_schedule, seed=0)


@pytest.fixture(scope="module")
def swlib_c():
    return swlib.generate(workloads.GemmWorkload(64, 64, 64, False), arrays="flat")


def test_ok_path(unopt_measurement):
    m = unopt_measurement
    assert m.ok, m.error
    assert m.stage is None and m.error is None
    assert m.cycles > 64 ** 3 // 256
    assert 0 < m.utilization < 1
    assert m.mismatches == 0 and m.total_elements == 64 * 64
    assert m.instructions.get("total", 0) > 0
    assert m.c_source and m.entry
    for stage in ("schedule", "compile", "parse", "simulate", "total"):
        assert stage in m.timings
    d = m.to_dict()
    json.dumps(d)
    assert "proc" not in d and d["cycles"] == m.cycles
    assert Measurement.from_dict(d).cycles == m.cycles


def test_speedup_against_baseline(w64, unopt_measurement):
    m = evaluate(w64, None, proc=unopt_measurement.proc, baseline_cycles=2 * unopt_measurement.cycles)
    assert m.ok, m.error
    assert m.speedup == pytest.approx(2.0 * unopt_measurement.cycles / m.cycles)


def test_relu_workload_ok():
    w = workloads.GemmWorkload(32, 48, 64, True)
    m = evaluate_c(w, *swlib.generate(w, arrays="flat"))
    assert m.ok, m.error
    assert m.relu is True


class _Broken:
    def apply(self, proc):
        raise RuntimeError("step 3 (divide_loop): no loop named 'q'")


def test_broken_schedule_stage_schedule(w64):
    m = evaluate(w64, _Broken())
    assert not m.ok and m.stage == "schedule"
    assert "divide_loop" in m.error


def test_real_bad_schedule_stage_schedule(w64, unopt_schedule):
    sched_mod = pytest.importorskip("autocomp_exo.schedule")
    # the Exo baseline followed by a step naming a loop that does not exist
    bad = sched_mod.Schedule(list(unopt_schedule) + [
        {"op": "divide_loop", "args": ["no_such_loop", 4, ["a", "b"]], "kwargs": {"perfect": True},
         "menu": "tiling"}])
    m = evaluate(w64, bad)
    assert not m.ok and m.stage == "schedule", m.error
    assert "divide_loop" in m.error
    assert m.timings["schedule"] >= 0 and "compile" not in m.timings


def test_compile_failure_stage_compile(w64):
    m = evaluate(w64, None, proc=object())
    assert not m.ok and m.stage == "compile"


def test_corrupted_c_stage_parse(w64, swlib_c):
    c, entry = swlib_c
    bad = c.replace("for (int_fast32_t k = 0; k < K; k++) {", "for (int_fast32_t k = 0; k < K; k++ {", 1)
    m = evaluate_c(w64, bad, entry)
    assert not m.ok and m.stage == "parse"
    assert m.error


def test_unknown_entry_or_bad_run_stage_simulate(w64, swlib_c):
    c, entry = swlib_c
    m = evaluate_c(w64, c, "no_such_function")
    assert not m.ok and m.stage in ("simulate", "parse")
    # a local address beyond the scratchpad raises while running
    bad = c.replace("uint32_t A_sp_addr_start = 0;", "uint32_t A_sp_addr_start = 16380;")
    assert bad != c
    m = evaluate_c(w64, bad, entry)
    assert not m.ok and m.stage == "simulate", (m.stage, m.error)


def test_mismatch_stage_mismatch(w64, swlib_c):
    c, entry = swlib_c
    # never accumulate: every k overwrites the partial sums
    bad = c.replace("uint32_t out_sp_addr = C_sp_addr | 0x40000000;", "uint32_t out_sp_addr = C_sp_addr;")
    assert bad != c
    m = evaluate_c(w64, bad, entry)
    assert not m.ok and m.stage == "mismatch"
    assert m.mismatches > 0 and m.first_mismatch is not None
    assert m.cycles is not None  # it ran: the figures are still there
    assert "differ" in m.error


def test_swlib_ok_via_evaluate_c(w64, swlib_c):
    m = evaluate_c(w64, *swlib_c, label="swlib")
    assert m.ok, m.error
    assert m.label == "swlib" and m.cycles > 0


# ---- autocomp-exo bench (kept small: two C baselines on one shape) --------------------

def test_bench_json_cli(capsys):
    from autocomp_exo import bench

    assert bench.parse_shapes("512x512x512, 12544x256x64") == [(512, 512, 512), (12544, 256, 64)]
    with pytest.raises(ValueError):
        bench.parse_shapes("100x64x64")
    assert set(bench.PUBLISHED) == set(bench.SHAPES)
    assert bench.PUBLISHED[(12544, 64, 256)]["fsm"] == 5.9
    parser = __import__("argparse").ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    bench.add_bench_parser(sub)
    ns = parser.parse_args(["bench", "--shapes", "64x64x64", "--baselines", "swlib,fsm", "--json"])
    assert ns.handler(ns) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert [r["baseline"] for r in rows] == ["swlib", "fsm"]
    for r in rows:
        assert r["correct"] is True and r["cycles"] > 0 and 0 < r["utilization"] <= 1
        assert (r["M"], r["N"], r["K"]) == (64, 64, 64) and r["published_speedup"] is None
    assert rows[0]["speedup"] == 1.0
    ns = parser.parse_args(["bench", "--shapes", "64x64x64", "--baselines", "nope"])
    assert ns.handler(ns) == 2
