"""The timing model (sim/timing.py) on synthetic command streams: no C needed.

Each test states a rule of GEMMINI_RTL.md (or a property any correct model
has: more bandwidth, more IDs, deeper queues are never slower) that a broken
model would violate; the rows, byte counts and unit names are what the
functional machine passes to `TimingModel.command`.
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
    from sim.timing import FLAG_ACCUMULATE, FLAG_SCALED, TimingModel, TimingReport
except ImportError:  # sim/__init__ imports modules still being written: load the file alone
    _path = Path(__file__).resolve().parents[1] / "sim" / "timing.py"
    _spec = importlib.util.spec_from_file_location("_sim_timing", _path)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["_sim_timing"] = _mod
    _spec.loader.exec_module(_mod)
    TimingModel, TimingReport = _mod.TimingModel, _mod.TimingReport
    FLAG_ACCUMULATE, FLAG_SCALED = _mod.FLAG_ACCUMULATE, _mod.FLAG_SCALED

CFG = GemminiConfig()
DIM = CFG.dim
SP, ACC = 0, 1


# ---- stream builders ------------------------------------------------------
def mvin(tm, row, rows=16, cols=16, *, space=SP, fsm=False, addr=1 << 40, stride=None, flags=0):
    blocks = -(-cols // DIM)
    elem = 4 if space == ACC else 1
    op = "mvin_acc" if space == ACC else "mvin"
    stride = cols * elem if stride is None else stride
    return tm.command(op, "load", (), ((space, row, row + rows * blocks),),
                      rows * cols * elem, rows, cols, fsm=fsm, dram_addr=addr, dram_stride=stride, flags=flags)


def mvin_zero(tm, row, rows=16, *, space=ACC):
    return tm.command("mvin_zero", "load", (), ((space, row, row + rows),), 0, rows, DIM)


def pair(tm, b_row, a_row, c_row, *, fsm=False, bank_conflict=False, c_space=ACC):
    """preload B (scratchpad rows) with C, then compute_preloaded A -> C."""
    tm.command("preload", "execute", ((SP, b_row, b_row + 16),), ((c_space, c_row, c_row + 16),),
               0, 16, 16, fsm=fsm)
    return tm.command("compute_preloaded", "execute", ((SP, a_row, a_row + 16),), (),
                      0, 16, 16, fsm=fsm, bank_conflict=bank_conflict)


def mvout(tm, acc_row, *, cols=16, fsm=False, addr=2 << 40):
    blocks = -(-cols // DIM)
    return tm.command("mvout", "store", ((ACC, acc_row, acc_row + 16 * blocks),), (), 16 * cols, 16, cols,
                      fsm=fsm, dram_addr=addr, dram_stride=cols)


def run(build, config=CFG):
    tm = TimingModel(config)
    build(tm)
    return tm.report()


def _load_heavy(tm, rng=None):
    for i in range(48):
        a = (i * 64) % 8192
        b = 8192 + (i * 64) % 8192
        mvin(tm, a, 16, 64, addr=(1 << 40) + 1024 * i)
        mvin(tm, b, 16, 64, addr=(3 << 40) + 1024 * i)
        for j in range(4):
            pair(tm, b + 16 * j, a + 16 * j, (16 * j + 64 * i) % 1024)
        if i % 4 == 3:
            for j in range(4):
                mvout(tm, (16 * j + 64 * i) % 1024, addr=(2 << 40) + 256 * (j + 4 * i))


def _random_program(tm, seed):
    rng = random.Random(seed)
    for _ in range(300):
        r = rng.random()
        if r < 0.35:
            mvin(tm, 16 * rng.randrange(64), 16, rng.choice((16, 32, 64)), addr=(1 << 40) + 16 * rng.randrange(64))
        elif r < 0.45:
            mvin(tm, 16 * rng.randrange(32), 16, 16, space=ACC)
        elif r < 0.8:
            pair(tm, 16 * rng.randrange(64), 16 * rng.randrange(64), 16 * rng.randrange(32))
        elif r < 0.95:
            mvout(tm, 16 * rng.randrange(32), addr=(2 << 40) + 256 * rng.randrange(64))
        else:
            tm.cpu(rng.randrange(40))


# ---- execute (GEMMINI_RTL.md section 3) -------------------------------------
def test_compute_only_runs_at_dim_cycles_per_block():
    n = 256

    def prog(tm, b_base=8192):
        for i in range(n):
            pair(tm, b_base + (i * 16) % 2048, (i * 16) % 2048, (i * 16) % 1024)

    rep = run(prog)
    # merged compute+preload operations back to back: one pipeline fill on top of n * 16
    assert n * 16 <= rep.cycles <= n * 16 + 100, rep.cycles
    assert n * 16 <= rep.units["execute"]["busy"] <= rep.cycles
    assert rep.units["execute"]["bank_conflict"] == 0
    # the preload's weights and the compute's A in one bank: 2 cycles a row
    same = run(lambda tm: prog(tm, 0 + 2048))
    assert same.cycles >= 1.9 * n * 16, same.cycles
    assert same.units["execute"]["bank_conflict"] >= 0.9 * n * 16


def test_three_operands_in_one_bank_take_three_cycles_a_row():
    n = 64

    def prog(tm, bias_row):
        for i in range(n):
            tm.command("preload", "execute", ((SP, 1024 + 16 * (i % 8), 1040 + 16 * (i % 8)),),
                       ((ACC, 16 * (i % 32), 16 * (i % 32) + 16),), 0, 16, 16)
            tm.command("compute_preloaded", "execute", ((SP, 16 * (i % 8), 16 * (i % 8) + 16),
                                                        (SP, bias_row, bias_row + 16)), (), 0, 16, 16)
    three = run(lambda tm: prog(tm, 2048)).cycles
    two = run(lambda tm: prog(tm, 8192)).cycles
    assert three >= 2.8 * n * 16 and two <= 2.2 * n * 16 + 100, (three, two)


def test_a_compute_merges_only_with_a_preload_already_queued():
    """With the CPU far behind, each preload arrives after the compute before it
    fired: the pair runs as two operations (16 + 16 cycles with real weights)."""
    n = 64

    def prog(tm, gap):
        for i in range(n):
            tm.cpu(gap)
            pair(tm, 8192 + 16 * (i % 64), 16 * (i % 64), 16 * (i % 64))
    fast = run(lambda tm: prog(tm, 0))
    slow = run(lambda tm: prog(tm, 40))
    assert fast.units["execute"]["busy"] <= n * 16 + 40
    assert slow.units["execute"]["busy"] >= 2 * n * 16 - 40, slow.units["execute"]["busy"]


def test_short_operations_take_at_least_four_rows():
    tm = TimingModel(CFG)
    for i in range(100):
        tm.command("preload", "execute", (), ((ACC, 16 * (i % 32), 16 * (i % 32) + 1),), 0, 0, 16)
        tm.command("compute_accumulated", "execute", ((SP, 16 * i, 16 * i + 1),), (), 0, 1, 16)
    ex = tm.report().units["execute"]
    assert ex["busy"] >= 100 * 4, ex


def test_mvin_over_a_preloads_weights_waits_for_the_next_computes_results():
    """A real-C preload keeps its RS entry until its compute's results landed
    (about 50 cycles after the compute starts): overwriting its weights waits."""
    tm = TimingModel(CFG)
    end_pair = pair(tm, 8192, 0, 0)
    rel_load = mvin(tm, 8192)
    assert rel_load >= CFG.exec_result_latency + 16, rel_load


def test_config_ex_drains_the_array():
    tm = TimingModel(CFG)
    pair(tm, 8192, 0, 0)
    rel = tm.command("config_ex", "execute", (), (), 0, 0, 0)
    assert rel >= 16 + CFG.exec_result_latency, rel


def test_dma_writes_into_the_bank_the_array_reads_steal_cycles():
    """Loads issued ahead land while a long compute stream reads A from bank 0:
    rows written into bank 0 take the bank's port from the array."""
    def prog(tm, load_row):
        for i in range(8):
            mvin(tm, load_row + 64 * i, 16, 64, addr=(1 << 40) + 1024 * i)
        for i in range(128):
            pair(tm, 8192 + 16 * (i % 16), 16 * (i % 16), 16 * (i % 32))
    same = run(lambda tm: prog(tm, 2048))      # the loads write the bank A is read from
    other = run(lambda tm: prog(tm, 12288))    # another bank
    assert other.units["execute"]["bank_conflict"] == 0
    assert same.units["execute"]["bank_conflict"] >= 0.5 * 8 * 16 * 4, same.units["execute"]
    assert same.cycles > other.cycles


# ---- loads (section 2) ---------------------------------------------------------
def test_more_memory_bandwidth_or_read_ids_is_never_slower():
    bws = (2.0, 4.0, 8.0, 16.0)
    cycles = [run(_load_heavy, CFG.replace(mem_bytes_per_cycle=b)).cycles for b in bws]
    assert cycles == sorted(cycles, reverse=True), cycles
    assert cycles[0] > 1.5 * cycles[-1], cycles
    ids = [run(_load_heavy, CFG.replace(dma_read_ids=n)).cycles for n in (2, 4, 16, 64)]
    assert ids == sorted(ids, reverse=True) and ids[0] > ids[-1], ids


def test_narrow_rows_are_bound_by_the_read_id_window():
    """16 read IDs, each held one memory round trip: 16-byte rows move 256 bytes
    per round trip, 64-byte rows 1 KiB."""
    lat = 200
    cfg = CFG.replace(mem_read_latency=lat)
    narrow = run(lambda tm: [mvin(tm, 16 * i, 16, 16) for i in range(64)], cfg).cycles
    wide = run(lambda tm: [mvin(tm, 64 * i, 16, 64) for i in range(16)], cfg).cycles
    assert narrow >= 64 * lat * 16 / CFG.dma_read_ids * 0.9, narrow
    assert wide < 0.5 * narrow, (wide, narrow)


def test_unaligned_rows_need_more_requests():
    cfg = CFG.replace(mem_read_latency=300)
    aligned = run(lambda tm: [mvin(tm, 64 * i, 16, 64, addr=(1 << 40)) for i in range(32)], cfg).cycles
    offset = run(lambda tm: [mvin(tm, 64 * i, 16, 64, addr=(1 << 40) + 16, stride=64) for i in range(32)],
                 cfg).cycles
    assert offset > 1.3 * aligned, (offset, aligned)


def test_stride_zero_reads_one_row():
    tm = TimingModel(CFG)
    mvin(tm, 0, 16, 16, stride=0)
    assert tm.report().dram_bytes_read == 16


def test_scaled_int8_mvin_takes_four_cycles_a_row():
    cfg = CFG.replace(mem_read_latency=10)   # so the scaler, not the ID window, is the limit
    plain = run(lambda tm: [mvin(tm, 16 * i, 16, 16) for i in range(64)], cfg).units["load"]["busy"]
    scaled = run(lambda tm: [mvin(tm, 16 * i, 16, 16, flags=FLAG_SCALED) for i in range(64)],
                 cfg).units["load"]["busy"]
    assert scaled >= 64 * 16 * CFG.mvin_scaled_row_cycles * 0.9 > plain, (scaled, plain)


def test_zero_mvin_moves_no_dram_bytes_and_is_fast():
    tm = TimingModel(CFG)
    for i in range(16):
        mvin_zero(tm, 16 * i)
    r = tm.report()
    assert r.dram_bytes_read == 0
    assert r.units["load"]["busy"] <= 16 * 16 + 16 * CFG.zero_fill_latency + 10


def test_load_waits_for_readers_war():
    tm = TimingModel(CFG)
    pair(tm, 8192, 0, 0)
    assert mvin(tm, 0) >= 16 + 1, "the compute reads rows 0..15: the load must wait"


# ---- stores (section 4) ----------------------------------------------------------
def test_wide_int8_mvout_rows_take_seven_cycles():
    tm = TimingModel(CFG)
    for i in range(8):
        mvout(tm, 64 * i, cols=64, addr=(2 << 40) + 1024 * i)
    st = tm.report().units["store"]
    assert st["busy"] >= 8 * 16 * 7, st


def test_write_ids_window_bounds_narrow_mvouts_and_fences_wait_for_acks():
    lat = 300
    cfg = CFG.replace(mem_write_latency=lat)
    tm = TimingModel(cfg)
    for i in range(16):
        mvout(tm, 16 * i, addr=(2 << 40) + 256 * i)
    t = tm.fence()
    assert t >= 16 * 16 / CFG.dma_write_ids * lat, t
    more = TimingModel(cfg.replace(dma_write_ids=64))
    for i in range(16):
        mvout(more, 16 * i, addr=(2 << 40) + 256 * i)
    assert more.fence() < t


def test_mvout_reads_wait_while_computes_accumulate_into_the_bank():
    def prog(tm, c_row):
        pair(tm, 8192, 0, 0)
        for i in range(16):   # a stream accumulating into c_row's bank
            tm.command("preload", "execute", ((SP, 8192 + 16 * i, 8208 + 16 * i),),
                       ((ACC, c_row + 16 * (i % 4), c_row + 16 * (i % 4) + 16),), 0, 16, 16,
                       flags=FLAG_ACCUMULATE)
            tm.command("compute_accumulated", "execute", ((SP, 16 * i, 16 * i + 16),), (), 0, 16, 16)
        mvout(tm, 0)
        return tm.report().cycles
    same = prog(TimingModel(CFG), 64)      # bank 0, like the mvout's rows
    other = prog(TimingModel(CFG), 512)    # bank 1
    assert same > other, (same, other)


def test_store_waits_for_results_to_land():
    tm = TimingModel(CFG)
    pair(tm, 8192, 0, 0)
    rel = mvout(tm, 0)
    assert rel >= 16 + CFG.exec_result_latency, rel


# ---- command path, FSM, fence (sections 1, 5) ----------------------------------------
def test_cpu_runs_ahead_by_the_front_end_slack_then_stalls():
    tm = TimingModel(CFG)
    for i in range(CFG.rs_load + CFG.frontend_slack):
        mvin(tm, 16 * i, 16, 64)
    assert tm.report().units["cpu"]["rs_full"] == 0
    for i in range(8):
        mvin(tm, 16 * (i + 40), 16, 64)
    assert tm.report().units["cpu"]["rs_full"] > 0


def test_fsm_commands_cost_no_cpu_time_and_issue_one_per_cycle():
    tm = TimingModel(CFG)
    tm.fsm_begin()
    for i in range(200):
        tm.command("config_ld", "load", (), (), 0, 0, 0, fsm=True)
        tm.command("config_st", "store", (), (), 0, 0, 0, fsm=True)
    tm.fsm_end()
    r = tm.report()
    assert r.units["cpu"]["busy"] == CFG.fsm_setup_commands * CFG.cpu_rocc_cycles
    assert r.cycles >= 400, r.cycles    # 400 commands through one issue port


def test_scratchpad_and_accumulator_never_alias():
    tm = TimingModel(CFG)
    pair(tm, 8192, 0, 512)           # reads scratchpad rows 0..15, writes accumulator rows 512..527
    other = TimingModel(CFG)
    pair(other, 8192, 4096, 512)
    assert mvin(tm, 0, space=ACC) == mvin(other, 0, space=ACC)


def test_unaligned_row_ranges_are_tracked_per_row():
    tm = TimingModel(CFG)
    tm.command("mvin", "load", (), ((SP, 3, 10),), 112, 7, 16, dram_addr=1 << 40, dram_stride=16)
    a = tm.command("mvin", "load", (), ((SP, 20, 30),), 160, 10, 16, dram_addr=1 << 40, dram_stride=16)
    def after_preload_of(rows):
        tm2 = TimingModel(CFG)
        tm2.command("preload", "execute", ((SP, *rows),), ((ACC, 0, 16),), 0, 7, 16)
        tm2.command("compute_preloaded", "execute", ((SP, 40, 56),), (), 0, 16, 16)
        return tm2.command("mvin", "load", (), ((SP, 10, 20),), 160, 10, 16, dram_addr=1 << 40, dram_stride=16)
    # rows 10..19 do not overlap a preload's 3..9 but do overlap 13..19
    assert a > 0 and after_preload_of((3, 10)) == after_preload_of((100, 107)) < after_preload_of((13, 20))


def test_more_latency_is_never_faster_and_deeper_queues_never_slower():
    for seed in range(6):
        prog = lambda tm, s=seed: _random_program(tm, s)  # noqa: E731
        base = run(prog).cycles
        assert run(prog, CFG.replace(mem_read_latency=2 * CFG.mem_read_latency)).cycles >= base
        assert run(prog, CFG.replace(mem_write_latency=2 * CFG.mem_write_latency)).cycles >= base
        assert run(prog, CFG.replace(rs_load=16, rs_execute=32, rs_store=8)).cycles <= base


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


def test_every_parameter_says_where_it_comes_from():
    src = {name: source for name, _, source, _ in GemminiConfig.describe()}
    assert set(src.values()) <= {"sourced", "guessed", "calibrated", "derived"}
    for name in ("mem_read_latency", "mem_write_latency", "mem_bytes_per_cycle"):
        assert src[name] == "calibrated", name
    for name in ("exec_result_latency", "dma_read_ids", "dma_write_ids", "frontend_slack", "exec_min_rows"):
        assert src[name] == "sourced", name


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
    from autocomp_exo.baselines import fsm, swlib
    shape = (128, 192, 256)
    return {"swlib": _real(swlib, *shape), "fsm": _real(fsm, *shape)}


def test_fsm_is_faster_than_the_same_tiled_loop_from_the_cpu(real_programs):
    """gemmini_loop_ws issues the software library's tiled loop itself (its
    mvouts 16 x 64): the same loads and computes, no CPU cost, so it is faster."""
    sw, _ = real_programs["swlib"]
    hw, _ = real_programs["fsm"]
    for op in ("mvin", "preload", "compute", "mvout"):
        n_sw = sum(v for k, v in sw.instructions.items() if k.startswith(op))
        n_hw = sum(v for k, v in hw.instructions.items() if k.startswith("fsm_" + op))
        assert n_sw == n_hw > 0, (op, sw.instructions, hw.instructions)
    assert sw.units["execute"]["commands"] == hw.units["execute"]["commands"]
    # (the 2x margin this asserted came from the old per-C-operator CPU charge; with the
    # compiled-code estimate the library's loop costs ~10 instructions per command, and
    # what else separates it from the FSM is memory-side work, issue 12 item 3)
    assert hw.cycles < sw.cycles, (hw.cycles, sw.cycles)
    assert hw.units["cpu"]["busy"] < 0.1 * sw.units["cpu"]["busy"]
    assert hw.units["execute"]["busy"] >= 0.8 * hw.cycles  # the FSM keeps the array busy


def test_real_programs_more_bandwidth_or_cheaper_cpu_never_slower(real_programs):
    from sim.timing_fast import replay_trace
    for name, (r, words) in real_programs.items():
        base = replay_trace(words, CFG)
        assert base.cycles == r.cycles, name     # the replay is the run's own timing
        for ch in (dict(mem_bytes_per_cycle=2 * CFG.mem_bytes_per_cycle), dict(dma_read_ids=64),
                   dict(dma_write_ids=64), dict(mem_read_latency=CFG.mem_read_latency // 2),
                   dict(mem_write_latency=CFG.mem_write_latency // 2), dict(rs_load=16, rs_execute=32, rs_store=8)):
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
    # the library keeps A and B in different banks: only DMA writes steal cycles
    assert r.units["execute"]["bank_conflict"] <= 0.05 * r.units["execute"]["busy"]
    assert r.dram_bytes["read"] > 0 and r.dram_bytes["written"] == 128 * 192
    assert 0 < r.sp_rows_used <= r.sp_rows and 0 < r.acc_rows_used <= r.acc_rows
    d = r.to_dict()
    json.dumps(d)
    assert d["units"]["cpu"]["scalar"] == cpu["scalar"]
