"""The timing model (sim/timing.py) on synthetic command streams: no C needed.

Each test states a property of GEMMINI.md section 4 that a broken model would
violate (the rows, byte counts and unit names are what the functional machine
passes to `TimingModel.command`).
"""
from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
import time
from pathlib import Path

import pytest

from gemmini_isa.config import GemminiConfig

try:
    from sim.timing import TimingModel, TimingReport
except ImportError:  # sim/__init__ imports modules still being written: load the file alone
    _path = Path(__file__).resolve().parents[1] / "sim" / "timing.py"
    _spec = importlib.util.spec_from_file_location("_sim_timing", _path)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["_sim_timing"] = _mod
    _spec.loader.exec_module(_mod)
    TimingModel, TimingReport = _mod.TimingModel, _mod.TimingReport

CFG = GemminiConfig()
DIM = CFG.dim
SP, ACC = 0, 1


# ---- stream builders ------------------------------------------------------
def mvin(tm, row, rows=16, cols=16, *, space=SP, fsm=False):
    blocks = -(-cols // DIM)
    elem = 4 if space == ACC else 1
    op = "mvin_acc" if space == ACC else "mvin"
    return tm.command(op, "load", (), ((space, row, row + rows * blocks),),
                      rows * cols * elem, rows, cols, fsm=fsm)


def mvin_zero(tm, row, rows=16, *, space=ACC):
    return tm.command("mvin_zero", "load", (), ((space, row, row + rows),), 0, rows, DIM)


def pair(tm, b_row, a_row, c_row, *, fsm=False, bank_conflict=False, c_space=ACC):
    """preload B (scratchpad rows) with C, then compute_preloaded A -> C."""
    tm.command("preload", "execute", ((SP, b_row, b_row + 16),), ((c_space, c_row, c_row + 16),),
               0, 16, 16, fsm=fsm)
    return tm.command("compute_preloaded", "execute", ((SP, a_row, a_row + 16),), (),
                      0, 16, 16, fsm=fsm, bank_conflict=bank_conflict)


def mvout(tm, acc_row, *, fsm=False):
    return tm.command("mvout", "store", ((ACC, acc_row, acc_row + 16),), (), 16 * 16, 16, 16, fsm=fsm)


def run(build, config=CFG):
    tm = TimingModel(config)
    build(tm)
    return tm.report()


# ---- the required properties ---------------------------------------------
def test_compute_only_runs_at_dim_cycles_per_block():
    n = 256

    def prog(tm, conflict=False):
        for i in range(n):
            pair(tm, 8192 + (i * 16) % 8192, (i * 16) % 8192, (i * 16) % 1024, bank_conflict=conflict)

    rep = run(prog)
    # one pipeline fill (first RoCC issue, first preload, result latency) on top of n * 16
    assert n * 16 <= rep.cycles <= n * 16 + 100, rep.cycles
    assert rep.units["execute"]["busy"] >= n * 16
    assert rep.units["execute"]["busy"] <= rep.cycles
    # a bank conflict on every compute doubles the streaming time
    rep2 = run(lambda tm: prog(tm, conflict=True))
    assert rep2.cycles >= 1.8 * n * 16


def test_isolated_preload_costs_dim():
    tm = TimingModel(CFG)
    end = tm.command("preload", "execute", ((SP, 0, 16),), ((ACC, 0, 16),), 0, 16, 16)
    assert end - CFG.cpu_rocc_cycles == pytest.approx(DIM)


def _load_heavy(tm, rng=None):
    for i in range(48):
        a = (i * 64) % 8192
        b = 8192 + (i * 64) % 8192
        mvin(tm, a, 16, 64)
        mvin(tm, b, 16, 64)
        for j in range(4):
            pair(tm, b + 16 * j, a + 16 * j, (16 * j + 64 * i) % 1024)
        if i % 4 == 3:
            for j in range(4):
                mvout(tm, (16 * j + 64 * i) % 1024)


def _random_program(tm, seed):
    rng = random.Random(seed)
    for _ in range(300):
        r = rng.random()
        if r < 0.35:
            mvin(tm, 16 * rng.randrange(64), 16, rng.choice((16, 32, 64)))
        elif r < 0.45:
            mvin(tm, 16 * rng.randrange(32), 16, 16, space=ACC)
        elif r < 0.8:
            pair(tm, 16 * rng.randrange(64), 16 * rng.randrange(64), 16 * rng.randrange(32))
        elif r < 0.95:
            mvout(tm, 16 * rng.randrange(32))
        else:
            tm.cpu(rng.randrange(40))


def test_more_dma_bandwidth_is_never_slower_and_helps_load_heavy_code():
    beats = (8, 16, 32, 64)
    cycles = [run(_load_heavy, CFG.replace(dma_beat_bytes=b)).cycles for b in beats]
    assert cycles == sorted(cycles, reverse=True), cycles
    assert cycles[1] < 0.8 * cycles[0], cycles  # 8 -> 16 B/beat: bus-bound, much faster
    # with the defaults 16 x 64 mvins are bound by the request window (16 requests per
    # DRAM latency), not the bus; with a deep window the bus is the limit again
    deep = CFG.replace(dma_max_inflight=64)
    cycles = [run(_load_heavy, deep.replace(dma_beat_bytes=b)).cycles for b in beats]
    assert cycles == sorted(cycles, reverse=True), cycles
    assert cycles[2] < 0.8 * cycles[1], cycles  # 16 -> 32 B/beat
    for seed in range(12):
        prog = lambda tm, s=seed: _random_program(tm, s)  # noqa: E731
        for cfg in (CFG, deep):
            cs = [run(prog, cfg.replace(dma_beat_bytes=b)).cycles for b in beats]
            assert cs == sorted(cs, reverse=True), (seed, cs)


def test_request_window_limits_narrow_loads():
    """16 x 16 int8 mvins (16 B per request) stream far slower than 16 x 64 ones per byte."""
    narrow = run(lambda tm: [mvin(tm, 16 * i, 16, 16) for i in range(64)])
    wide = run(lambda tm: [mvin(tm, 64 * i, 16, 64) for i in range(16)])
    assert narrow.dram_bytes_read == wide.dram_bytes_read
    assert narrow.cycles > 3 * wide.cycles, (narrow.cycles, wide.cycles)
    # an isolated mvin is not affected: latency + rows
    tm = TimingModel(CFG)
    assert mvin(tm, 0) == CFG.cpu_rocc_cycles + CFG.dram_latency + 16


def test_double_buffering_removes_war_stalls():
    n = 64

    def loop(tm, distinct):
        for i in range(n):
            a = (i % 8) * 16 if distinct else 0
            b = 4096 + ((i % 8) * 16 if distinct else 0)
            mvin(tm, a)
            mvin(tm, b)
            pair(tm, b, a, (i * 16) % 1024)

    single = run(lambda tm: loop(tm, False))
    double = run(lambda tm: loop(tm, True))
    assert double.cycles < 0.8 * single.cycles, (single.cycles, double.cycles)
    assert single.stalls["dependency"] > double.stalls["dependency"]


def test_hoisting_a_loop_invariant_load():
    n = 64

    def loop(tm, hoisted):
        if hoisted:
            mvin(tm, 8192)
        for i in range(n):
            if not hoisted:
                mvin(tm, 8192)          # same B every iteration
            a = (i % 8) * 16
            mvin(tm, a)
            pair(tm, 8192, a, (i * 16) % 1024)
            tm.cpu(4)

    inside = run(lambda tm: loop(tm, False))
    hoisted = run(lambda tm: loop(tm, True))
    assert hoisted.cycles < 0.9 * inside.cycles, (inside.cycles, hoisted.cycles)
    assert hoisted.dram_bytes_read < inside.dram_bytes_read


def test_fence_waits_for_outstanding_stores():
    tm = TimingModel(CFG)
    for i in range(8):
        mvin(tm, i * 16)
        pair(tm, 4096 + i * 16, i * 16, i * 16)
    store_ends = [mvout(tm, i * 16) for i in range(8)]
    before = tm.now
    assert max(store_ends) > before  # the stores are still running when the CPU gets here
    after = tm.fence()
    assert after >= max(store_ends) + CFG.fence_round_trip
    rep = tm.report()
    assert rep.cycles >= after
    assert rep.stalls["fence"] >= after - before - 1
    # a command issued after the fence completes after it
    assert mvin(tm, 0) > after


def test_store_waits_for_results_to_land():
    tm = TimingModel(CFG)
    comp_end = pair(tm, 16, 0, 0)  # returns the landing time of the results
    st_end = mvout(tm, 0)
    assert st_end >= comp_end + DIM  # read 16 rows after the results landed
    # a store of rows no compute wrote does not wait
    tm2 = TimingModel(CFG)
    pair(tm2, 16, 0, 0)
    assert mvout(tm2, 512) < comp_end


def test_rs_full_stalls_on_back_to_back_loads():
    few = run(lambda tm: [mvin(tm, 16 * i) for i in range(4)])
    assert few.stalls["rs_full"] == 0
    many = run(lambda tm: [mvin(tm, 16 * i) for i in range(50)])
    assert many.stalls["rs_full"] > 0
    # the CPU sat in those stalls
    assert many.units["cpu"]["idle"] >= many.stalls["rs_full"]
    # a deeper load RS stalls less
    deeper = run(lambda tm: [mvin(tm, 16 * i) for i in range(50)], CFG.replace(rs_load=32))
    assert deeper.stalls["rs_full"] < many.stalls["rs_full"]


def _tile_stream(tm, fsm, cpu_ops):
    """B resident (2 x 4 blocks); per i: load A (16 x 64), 2 x 4 pairs accumulating
    into two C blocks, store both. Compute-bound unless the CPU issues it."""
    def issue(fn, *args):
        if cpu_ops:
            tm.cpu(cpu_ops)
        fn(tm, *args, fsm=fsm)

    issue(mvin, 4096, 16, 64)
    issue(mvin, 4160, 16, 64)
    for i in range(32):
        a = (i % 4) * 64
        issue(mvin, a, 16, 64)
        for j in range(2):
            c = ((2 * i + j) % 32) * 16
            for k in range(4):
                issue(pair, 4096 + 64 * j + 16 * k, a + 16 * k, c)
            issue(mvout, c)


def test_fsm_commands_cost_no_cpu_time():
    cpu = run(lambda tm: _tile_stream(tm, False, 6))
    fsm = run(lambda tm: _tile_stream(tm, True, 0))
    # 6 scalar ops per command (the unrolled exo-opt code has 3-7, the library ~30)
    assert fsm.cycles < 0.85 * cpu.cycles, (fsm.cycles, cpu.cycles)
    setup = CFG.fsm_setup_cycles * CFG.cpu_rocc_cycles
    assert fsm.units["cpu"]["busy"] == setup
    assert cpu.units["cpu"]["busy"] >= (2 + 32 * 19) * CFG.cpu_rocc_cycles
    # the FSM keeps the array near its 16 cycles per block
    assert fsm.cycles <= 32 * 8 * DIM * 1.25, fsm.cycles
    # same work either way
    assert fsm.dram_bytes_read == cpu.dram_bytes_read
    assert fsm.units["execute"]["commands"] == cpu.units["execute"]["commands"]


def test_fsm_run_setup_is_paid_per_run():
    tm = TimingModel(CFG)
    tm.fsm_begin()
    mvin(tm, 0, fsm=True)
    tm.fsm_begin()
    mvin(tm, 16, fsm=True)
    tm.cpu(1)
    mvin(tm, 32, fsm=True)  # a new run starts automatically after CPU work
    setup = CFG.fsm_setup_cycles * CFG.cpu_rocc_cycles
    assert tm.report().units["cpu"]["busy"] == math.ceil(3 * setup + CFG.cpu_op_cycles)


# ---- further properties ------------------------------------------------------
def test_scratchpad_and_accumulator_never_alias():
    tm = TimingModel(CFG)
    ld_end = mvin(tm, 0, space=SP)                 # scratchpad rows 0..16
    tm.command("preload", "execute", ((SP, 512, 528),), ((ACC, 0, 16),), 0, 16, 16)
    comp = tm.command("compute_preloaded", "execute", ((SP, 1024, 1040),), (), 0, 16, 16)
    assert comp - CFG.exec_latency < ld_end        # the compute did not wait for the load


def test_unaligned_row_ranges_are_tracked_per_row():
    tm = TimingModel(CFG)
    ld_end = tm.command("mvin", "load", (), ((SP, 3, 7),), 4 * 16, 4, 16)
    # A reads row 5 (written by the load): waits; reads rows 8..12: does not
    t1 = tm.command("preload", "execute", ((SP, 5, 6),), ((ACC, 0, 16),), 0, 1, 16)
    assert t1 >= ld_end + DIM
    tm2 = TimingModel(CFG)
    ld_end2 = tm2.command("mvin", "load", (), ((SP, 3, 7),), 4 * 16, 4, 16)
    t2 = tm2.command("preload", "execute", ((SP, 8, 12),), ((ACC, 0, 16),), 0, 4, 16)
    assert t2 < ld_end2
    # a straddling range (rows 14..18 cross a 16-row block) sees a write to row 17
    tm3 = TimingModel(CFG)
    ld3 = tm3.command("mvin", "load", (), ((SP, 17, 18),), 16, 1, 16)
    t3 = tm3.command("preload", "execute", ((SP, 14, 18),), ((ACC, 0, 16),), 0, 4, 16)
    assert t3 >= ld3 + DIM


def test_load_waits_for_readers_war():
    tm = TimingModel(CFG)
    mvin(tm, 0)
    mvin(tm, 16)
    comp_land = pair(tm, 16, 0, 0)
    # overwriting A's rows waits until the compute has streamed them
    t = mvin(tm, 0)
    assert t >= comp_land - CFG.exec_latency + CFG.dram_latency


def test_config_ex_drains_the_array():
    tm = TimingModel(CFG)
    land = pair(tm, 16, 0, 0)
    end = tm.command("config_ex", "execute", (), (), 0, 0, 0)
    assert end >= land + CFG.config_ex_cycles


def test_zero_mvin_moves_no_dram_bytes_and_is_fast():
    tm = TimingModel(CFG)
    end = mvin_zero(tm, 0)
    assert end <= CFG.cpu_rocc_cycles + 16 + 1
    rep = tm.report()
    assert rep.dram_bytes_read == 0


def test_accumulator_mvin_moves_four_byte_elements():
    sp = run(lambda tm: mvin(tm, 0, 16, 16, space=SP))
    acc = run(lambda tm: mvin(tm, 0, 16, 16, space=ACC))
    assert acc.dram_bytes_read == 4 * sp.dram_bytes_read
    assert acc.cycles >= sp.cycles + 3 * 16


def test_more_latency_or_slower_cpu_is_never_faster():
    for seed in range(6):
        prog = lambda tm, s=seed: _random_program(tm, s)  # noqa: E731
        base = run(prog).cycles
        assert run(prog, CFG.replace(dram_latency=160)).cycles >= base
        assert run(prog, CFG.replace(cpu_rocc_cycles=12)).cycles >= base
        assert run(prog, CFG.replace(rs_load=4, rs_execute=8, rs_store=2)).cycles >= base


def test_report_shape():
    tm = TimingModel(CFG)
    _load_heavy(tm)
    tm.command("flush", "sync", (), (), 0, 0, 0)
    tm.fence()
    rep = tm.report()
    assert isinstance(rep, TimingReport)
    d = rep.to_dict()
    json.dumps(d)
    assert set(d["units"]) == {"cpu", "load", "execute", "store"}
    assert set(d["stalls"]) == {"dependency", "rs_full", "cpu_issue", "fence"}
    for u in d["units"].values():
        assert u["busy"] + u["idle"] == d["cycles"]
        assert 0 <= u["busy"] <= d["cycles"]
    assert d["dram_bytes_read"] == 48 * 2 * 16 * 64
    assert d["dram_bytes_written"] == 12 * 4 * 256
    assert all(isinstance(v, int) for v in d["stalls"].values())


def test_command_is_fast():
    """A generous ceiling (the brief asks for ~1-2 us); catches accidental O(rows) numpy work."""
    cmds = []
    for i in range(4000):
        a, b, c = (i * 16) % 8192, 8192 + (i * 16) % 8192, (i * 16) % 1024
        cmds += [("mvin", "load", (), ((SP, a, a + 16),), 256, 16, 16),
                 ("preload", "execute", ((SP, b, b + 16),), ((ACC, c, c + 16),), 0, 16, 16),
                 ("compute_preloaded", "execute", ((SP, a, a + 16),), (), 0, 16, 16),
                 ("mvout", "store", ((ACC, c, c + 16),), (), 256, 16, 16)]
    best = float("inf")
    for _ in range(3):
        tm = TimingModel(CFG)
        command = tm.command
        t0 = time.perf_counter()
        for op, unit, r, w, nb, rows, cols in cmds:
            command(op, unit, r, w, nb, rows, cols)
        best = min(best, (time.perf_counter() - t0) / len(cmds))
    assert best < 20e-6, f"{best * 1e6:.2f} us per command"


# ---- the calibrated default, bank conflicts, real programs ------------------
def test_default_config_is_the_calibrated_one():
    """The properties above run with GemminiConfig() = the calibrated design
    (benchmarks/calibrate.py); the CPU costs are the fitted values."""
    src = {name: source for name, _, source, _ in GemminiConfig.describe()}
    for name in ("cpu_rocc_cycles", "cpu_op_cycles", "bank_conflict_factor"):
        assert src[name] == "calibrated", name
    assert set(src.values()) <= {"sourced", "guessed", "calibrated", "derived"}


def test_preload_reading_the_bank_the_running_compute_reads_serializes():
    """In WS the next preload's B streams in while the current compute streams
    its A: the same scratchpad bank for both costs up to bank_conflict_factor x."""
    n = 128

    def prog(tm, b_base):
        for i in range(n):
            pair(tm, b_base + (i * 16) % 2048, (i * 16) % 2048, (i * 16) % 1024)

    split = run(lambda tm: prog(tm, 8192))      # A in bank 0, B in bank 2
    same = run(lambda tm: prog(tm, 2048))       # both in bank 0
    assert split.cycles <= n * 16 + 100, split.cycles
    assert split.units["execute"]["bank_conflict"] == 0
    assert same.cycles >= 0.9 * CFG.bank_conflict_factor * n * 16, same.cycles
    assert same.units["execute"]["bank_conflict"] > 0
    # a garbage B (weights kept) reads nothing: no conflict
    def garbage(tm):
        for i in range(n):
            tm.command("preload", "execute", (), ((ACC, (i * 16) % 1024, (i * 16) % 1024 + 16),), 0, 0, 16)
            tm.command("compute_accumulated", "execute", ((SP, (i * 16) % 2048, (i * 16) % 2048 + 16),), (),
                       0, 16, 16)
    assert run(garbage).units["execute"]["bank_conflict"] == 0
    # monotone: a slower conflict never makes a program faster
    for seed in range(6):
        prog2 = lambda tm, s=seed: _random_program(tm, s)  # noqa: E731
        cs = [run(prog2, CFG.replace(bank_conflict_factor=f)).cycles for f in (1.0, 1.5, 2.0)]
        assert cs == sorted(cs), cs


def _real(gen, M, N, K):
    """(RunResult, trace words) of a baseline's C on random inputs."""
    from types import SimpleNamespace

    import numpy as np
    sim = pytest.importorskip("sim")
    sim_run = sys.modules["sim.run"]
    from autocomp_exo.reference import random_inputs
    from sim.timing_fast import TraceRecorder

    c, entry = gen.generate(SimpleNamespace(M=M, N=N, K=K), arrays="flat")
    x = random_inputs(SimpleNamespace(M=M, N=N, K=K, relu=False), 0)
    recs = []
    orig = sim_run.make_timing_model

    def make(config=None):
        recs.append(TraceRecorder(config))
        return recs[-1]

    sim_run.make_timing_model = make
    try:
        r = sim.run(c, entry, {"A": x["A"].copy(), "B": x["B"].copy(), "C": x["C_init"].copy(),
                               "scale": np.array([x["scale"]], dtype=np.float32), "act": False})
    finally:
        sim_run.make_timing_model = orig
    return r, recs[0].words()


@pytest.fixture(scope="module")
def real_programs():
    pytest.importorskip("sim")
    from sim.timing_fast import KernelUnavailable, load_library
    try:
        load_library()
    except KernelUnavailable as e:
        pytest.skip(f"C timing kernel unavailable: {e}")
    from autocomp_exo.baselines import fsm, swlib
    shape = (128, 192, 256)
    return {"swlib": _real(swlib, *shape), "fsm": _real(fsm, *shape)}


def test_fsm_is_faster_than_the_same_tiled_loop_from_the_cpu(real_programs):
    """gemmini_loop_ws issues the software library's tiled loop itself: same
    instructions, no CPU cost, so it is faster (with the calibrated costs)."""
    sw, _ = real_programs["swlib"]
    hw, _ = real_programs["fsm"]
    for op in ("mvin", "preload", "compute"):
        n_sw = sum(v for k, v in sw.instructions.items() if k.startswith(op))
        n_hw = sum(v for k, v in hw.instructions.items() if k.startswith("fsm_" + op))
        assert n_sw == n_hw > 0, (op, sw.instructions, hw.instructions)
    assert sw.units["execute"]["commands"] == hw.units["execute"]["commands"]
    assert hw.cycles < 0.5 * sw.cycles, (hw.cycles, sw.cycles)
    assert hw.units["cpu"]["busy"] < 0.1 * sw.units["cpu"]["busy"]
    assert hw.units["execute"]["busy"] >= 0.8 * hw.cycles  # the FSM keeps the array busy


def test_real_programs_more_bandwidth_or_cheaper_cpu_never_slower(real_programs):
    from sim.timing_fast import replay_trace
    for name, (r, words) in real_programs.items():
        base = replay_trace(words, CFG)
        assert base.cycles == r.cycles, name     # the replay is the run's own timing
        for ch in (dict(dma_beat_bytes=32), dict(dram_latency=CFG.dram_latency // 2),
                   dict(cpu_op_cycles=CFG.cpu_op_cycles / 2), dict(rs_load=16, rs_execute=32, rs_store=8)):
            assert replay_trace(words, CFG.replace(**ch)).cycles <= base.cycles, (name, ch)


def test_run_result_carries_the_feedback(real_programs):
    r, _ = real_programs["swlib"]
    assert r.cycles > 0
    for u in ("cpu", "load", "execute", "store"):
        assert r.units[u]["busy"] + r.units[u]["idle"] == r.cycles, u
    assert set(r.stalls) == {"dependency", "rs_full", "cpu_issue", "fence"}
    cpu = r.units["cpu"]
    assert cpu["commands"] > 0 and cpu["rocc"] == math.ceil(cpu["commands"] * CFG.cpu_rocc_cycles)
    assert cpu["rocc"] + cpu["scalar"] <= cpu["busy"] + 2
    assert r.units["execute"]["bank_conflict"] == 0   # the library keeps A and B in different banks
    assert r.dram_bytes["read"] > 0 and r.dram_bytes["written"] == 128 * 192
    assert 0 < r.sp_rows_used <= r.sp_rows and 0 < r.acc_rows_used <= r.acc_rows
    d = r.to_dict()
    json.dumps(d)
    assert d["units"]["cpu"]["scalar"] == cpu["scalar"]
