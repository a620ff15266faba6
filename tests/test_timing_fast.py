"""The C timing kernel (sim/timing_kernel.c via sim/timing_fast.py) against the
Python model (sim/timing.py): identical reports, to the cycle and to the last
bit of every float, on random command streams and on real programs; and the
fallback to the Python model when there is no C compiler."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from gemmini_isa.config import GemminiConfig
from sim import timing_fast
from sim.timing import TimingModel
from sim.timing_fast import FastTimingModel, KernelUnavailable, make_timing_model

REPO = Path(__file__).resolve().parents[1]

try:
    timing_fast.load_library()
    _why = ""
except KernelUnavailable as e:  # no compiler here: only the fallback tests run
    _why = str(e)
needs_kernel = pytest.mark.skipif(bool(_why), reason=f"C timing kernel unavailable: {_why}")

# configs with awkward numbers, so float rounding differences would show (the
# Python model takes float(cfg.x) of the latencies, so some are not integers)
CONFIGS = [
    GemminiConfig(),
    GemminiConfig(cpu_rocc_cycles=1.7, rocc_replay_cycles=7, frontend_slack=3, frontend_latency=4.5,
                  rs_load=3, rs_execute=5, rs_store=2, rs_issue_latency=2, ex_queue_latency=3,
                  dma_beat_bytes=24, dma_max_request_bytes=96, dma_read_ids=5, dma_write_ids=3,
                  dma_mvins_in_flight=3, mvin_request_latency=4.25, mvin_write_latency=6,
                  mvin_release_cycles=1, mvin_scaled_row_cycles=3, zero_fill_latency=2, mvout_read_latency=3,
                  mvout_put_latency=11.5, mvout_buffer_rows=3, mem_read_latency=83.3, mem_write_latency=61,
                  mem_bytes_per_cycle=7.3, tlb_entries=2, tlb_miss_cycles=3.1, exec_min_rows=5,
                  exec_result_latency=31, acc_commit_cycles=3, config_ex_cycles=2, fence_tail_cycles=2.7,
                  fsm_setup_commands=5, fsm_concurrent_loops=1),
    GemminiConfig(rs_load=0, rs_execute=1, rs_store=1, dma_mvins_in_flight=0, dma_read_ids=0, dma_write_ids=1,
                  frontend_slack=0, tlb_entries=0, fsm_concurrent_loops=0, mvout_buffer_rows=0,
                  mem_bytes_per_cycle=2.5, exec_min_rows=0, fsm_setup_commands=0, cpu_rocc_cycles=0.3,
                  rs_issue_latency=0, ld_queue_latency=0, st_queue_latency=0, mem_read_latency=0.1),
    # many small banks: ranges straddle banks (bank sharing, DMA-write stealing); 4 accumulator banks
    GemminiConfig(sp_banks=128, sp_bank_rows=128, acc_banks=4, acc_bank_rows=64, mem_bytes_per_cycle=12.5,
                  tlb_entries=1, tlb_miss_cycles=7, dma_max_request_bytes=32, fsm_concurrent_loops=3,
                  mvout_buffer_rows=12, exec_result_latency=7.5),
]


# ---- random command streams ------------------------------------------------
def _range(rng: random.Random, space: int, cfg: GemminiConfig, *, aligned: float = 0.6) -> tuple:
    rows = cfg.sp_rows if space == 0 else cfg.acc_rows
    if rng.random() < aligned:
        n = 16 * rng.choice((1, 1, 1, 2, 4))
        a = 16 * rng.randrange(0, rows // 16 - n // 16 + 1)
    else:
        n = rng.choice((0, 1, 3, 7, 15, 16, 17, 31, 33, 64))
        a = rng.randrange(0, rows - n + 1)
    return (space, a, a + n)


def _dram(rng: random.Random) -> tuple[int, int]:
    """(dram_addr, dram_stride): varied alignment (16/32/64-byte requests,
    page crossings: the TLB), strides including 0 (one row read) and negative."""
    page = rng.choice((0x80000, 0x80001, 0x80002, 0x80003, 0x80004, 0x90000, 0x80000 + rng.randrange(64)))
    addr = (page << 12) + rng.choice((0, 0, 16, 32, 48, 64, 4032, 4080, rng.randrange(4096)))
    addr += rng.choice((0, 0, 0, 1, 8, 15, 24))
    stride = rng.choice((0, 16, 64, 64, 256, 1000, 4096, 4104, -64, rng.randrange(1, 9000)))
    return addr, stride


def _stream(seed: int, cfg: GemminiConfig, n: int = 2500, *, dense: bool = False) -> list:
    """A list of events: ('cpu', cycles) / ('cmd', args, kwargs) / ('fence',) /
    ('fsm_begin',) / ('fsm_end',) / ('peek',). `dense`: every range in the
    first 96 rows, mostly unaligned (partial-block updates and queries)."""
    rng = random.Random(seed)
    ev: list = []
    fsm = False

    def c(space: int) -> tuple:
        if dense:
            a = rng.randrange(0, 96)
            return (space, a, a + (16 if rng.random() < 0.3 else rng.randrange(0, 40)))
        if rng.random() < 0.5:   # a few blocks only: commands depend on each other
            a = 16 * rng.randrange(4)
            return (space, a, a + 16)
        return _range(rng, space, cfg)

    for _ in range(n):
        x = rng.random()
        if x < 0.03:
            ev.append(("fence",))
            fsm = False
            continue
        if x < 0.06:
            ev.append(("fsm_begin",))
            fsm = True
            continue
        if x < 0.08:
            ev.append(("fsm_end",))
            fsm = False
            continue
        if x < 0.10:
            fsm = not fsm  # implicit run starts
        if x < 0.12:
            ev.append(("peek",))
        if rng.random() < 0.5:
            cyc = (rng.choice((0, 1, 2, 3, 7, 40)) if rng.random() < 0.9 else
                   rng.choice((0.5, 2.25, 300, 0.1 * 3, 1.6 * 7, 1e-3, 12345.678)))
            ev.append(("cpu", cyc))
        f = fsm and rng.random() < 0.9
        space = rng.randrange(2)
        op = rng.choice(("mvin", "mvin", "mvin_acc", "mvin_zero", "config_ld", "config_ex", "config_st",
                         "preload", "preload", "compute_preloaded", "compute_accumulated", "compute_preloaded",
                         "mvout", "mvout", "flush", "weird"))
        rows = rng.choice((0, 1, 5, 16, 16, 16))
        cols = rng.choice((0, 1, 16, 17, 33, 64, 64))
        flags = rng.choice((0, 0, 1, 2, 4, 7))
        addr, stride = _dram(rng)
        if op in ("mvin", "mvin_acc", "mvin_zero"):
            writes = tuple(c(space if op == "mvin" else 1) for _ in range(rng.choice((1, 1, 1, 2, 4))))
            nb = 0 if op == "mvin_zero" else rng.choice((0, 1, 63, 64, 65, 256, 1024, 4096, rows * cols))
            ev.append(("cmd", (op, "load", (), writes, nb, rows, cols),
                       {"fsm": f, "dram_addr": addr, "dram_stride": stride, "flags": flags}))
        elif op in ("config_ld", "config_st", "config_ex"):
            unit = {"config_ld": "load", "config_st": "store", "config_ex": "execute"}[op]
            ev.append(("cmd", (op, unit, (), (), 0, 0, 0), {"fsm": f}))
        elif op == "preload":
            reads = () if rng.random() < 0.2 else (c(0),)
            writes = () if rng.random() < 0.1 else (c(rng.randrange(2)),)
            ev.append(("cmd", (op, "execute", reads, writes, 0, rows if reads else 0, 16, f, False, 0, 0,
                               rng.choice((0, 2, 2, 3))), {}))
        elif op.startswith("compute"):
            reads = tuple(c(rng.randrange(2)) for _ in range(rng.choice((0, 1, 1, 2, 3))))
            writes = () if rng.random() < 0.8 else (c(1),)
            ev.append(("cmd", (op, "execute", reads, writes, 0, rows, cols),
                       {"fsm": f, "bank_conflict": rng.random() < 0.3}))
        elif op == "mvout":
            reads = tuple(c(space) for _ in range(rng.choice((1, 1, 2, 4))))
            nb = rng.choice((0, 16, 256, 1000, 1024, rows * cols))
            ev.append(("cmd", ("mvout", "store", reads, (), nb, rows, cols, f, False, addr, stride, flags), {}))
        elif op == "flush":
            ev.append(("cmd", ("flush", "sync", (), (), 0, 0, 0), {"fsm": f}))
        else:  # an op the model does not know: costs like its unit's config
            unit = rng.choice(("load", "execute", "store", "sync"))
            ev.append(("cmd", ("weird_op", unit, (), (c(0),), 0, 0, 0), {"fsm": f}))
    return ev


def _play(tm, events) -> list:
    peeks = []
    for e in events:
        k = e[0]
        if k == "cpu":
            tm.cpu(e[1])
        elif k == "cmd":
            tm.command(*e[1], **e[2])
        elif k == "fence":
            tm.fence()
        elif k == "fsm_begin":
            tm.fsm_begin()
        elif k == "fsm_end":
            tm.fsm_end()
        else:
            peeks.append((tm.now, tm.cycles))
    return peeks


def _bits(x):
    """Floats as their exact hex (so -0.0 != 0.0 and every bit counts)."""
    if isinstance(x, float):
        return x.hex()
    if isinstance(x, dict):
        return {k: _bits(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_bits(v) for v in x]
    return x


def _same(py: TimingModel, fast: FastTimingModel) -> None:
    # the raw state first (report() fires what is pending, in both)
    assert _bits(fast._snapshot()) == _bits(timing_fast.python_snapshot(py))   # every raw float, exactly
    assert _bits(fast._calendar()) == _bits(timing_fast.python_calendar(py))
    assert fast.report().to_dict() == py.report().to_dict()
    assert _bits(fast._snapshot()) == _bits(timing_fast.python_snapshot(py))
    assert _bits(fast.now) == _bits(py.now) and fast.cycles == py.cycles


@needs_kernel
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ci", range(len(CONFIGS)))
def test_random_streams_match_python(seed, ci):
    cfg = CONFIGS[ci]
    events = _stream(seed * 7 + ci, cfg, dense=seed % 2 == 1)
    py, fast = TimingModel(cfg), FastTimingModel(cfg)
    assert _play(fast, events) == _play(py, events)
    _same(py, fast)


@needs_kernel
@pytest.mark.parametrize("seed", range(2))
def test_random_streams_small_flushes_and_python_encoder(monkeypatch, seed):
    """Flushing every few records, and the Python-side int64 encoder (used when
    Python.h is missing), change nothing."""
    cfg = CONFIGS[1]
    events = _stream(100 + seed, cfg)
    monkeypatch.setattr(timing_fast, "_FLUSH_AT", 5)
    for enc in (False, True):
        py = TimingModel(cfg)   # fresh: report() fires what is pending
        _play(py, events)
        fast = FastTimingModel(cfg, encode_in_python=enc)
        _play(fast, events)
        _same(py, fast)


@needs_kernel
def test_long_runs_sparse_times():
    """Huge CPU gaps between commands (the memory calendar and the FSM's
    used-cycle set are sparse in C as in Python) and long FSM runs."""
    cfg = CONFIGS[3]
    events = [("cpu", 4e7 * k) if e[0] == "cpu" and e[1] == 40 else e
              for k, e in enumerate(_stream(21, cfg, n=2000))]
    events += [("fsm_begin",)] + [e for e in _stream(22, cfg, n=600) if e[0] == "cmd"]
    py, fast = TimingModel(cfg), FastTimingModel(cfg)
    assert _play(fast, events) == _play(py, events)
    _same(py, fast)
    assert py.cycles > 10**10


@needs_kernel
def test_trace_record_and_replay():
    """TraceRecorder's int64 records, replayed by the kernel (replay_trace) and
    by the Python model (replay_python), give the live model's report."""
    from sim.timing_fast import TraceRecorder, replay_python, replay_trace
    cfg = CONFIGS[1]
    events = [e for e in _stream(11, cfg, n=1500) if e[0] != "peek"]
    rec, py = TraceRecorder(cfg), TimingModel(cfg)
    _play(rec, events)
    _play(py, events)
    want = py.report().to_dict()
    words = rec.words()
    assert rec.report().to_dict() == want
    assert replay_trace(words, cfg).to_dict() == want
    assert replay_trace(words.tobytes(), cfg).to_dict() == want
    assert replay_trace(np.frombuffer(words.tobytes(), dtype=np.int64), cfg).to_dict() == want
    assert replay_python(words, TimingModel(cfg)).report().to_dict() == want
    with pytest.raises(ValueError, match="truncated"):
        replay_trace(words[:-1], cfg)


@needs_kernel
@pytest.mark.parametrize("seed", range(3))
def test_row_scoreboard_matches_per_row_maxima(seed):
    """The blocked row tables (one value per 16-row block, per-row detail only
    where touched unaligned), in C and in Python, against plain per-row maxima."""
    from sim.timing import _qmax, _umax
    rng = random.Random(seed)
    rows = 160
    fast = FastTimingModel(GemminiConfig(sp_bank_rows=rows // 4))   # scratchpad: 160 rows
    lib, st = fast._lib, fast._st
    ref = [0.0] * rows
    blk, fine = [0.0] * (rows // 16), [None] * (rows // 16)
    for step in range(3000):
        a = rng.randrange(rows)
        if rng.random() < 0.3:
            a &= ~15
            b = min(rows, a + 16 * rng.choice((1, 1, 2, 3)))
        else:
            b = rng.randrange(a, min(rows, a + 50) + 1)
        if rng.random() < 0.5:
            # times grow, with stragglers, as in the model
            t = max(0.0, rng.choice((step + rng.uniform(-200, 30), float(step - rng.randrange(200)),
                                     max(ref[a:b] or [0.0]))))
            assert lib.tk_table_umax(st, 2, 0, a, b, t) == 0
            if b > a:
                _umax(blk, fine, a, b, t)
            for i in range(a, b):
                ref[i] = max(ref[i], t)
        else:
            want = max(ref[a:b] or [0.0])
            assert lib.tk_table_qmax(st, 2, 0, a, b) == want
            if b > a:
                assert _qmax(blk, fine, a, b) == want
    assert lib.tk_table_umax(st, 2, 0, 0, rows + 1, 1.0) == -1
    assert lib.tk_table_umax(st, 2, 2, 0, 16, 1.0) == -1
    assert lib.tk_table_umax(st, 4, 0, 0, 16, 1.0) == -1


@needs_kernel
def test_numpy_ints_lists_and_keywords():
    cfg = GemminiConfig()
    py, fast = TimingModel(cfg), FastTimingModel(cfg)
    for tm in (py, fast):
        tm.cpu(np.int64(5))
        tm.cpu(np.float32(0.7))
        tm.cpu(2.5)
        tm.command("mvin", "load", [], [[0, np.int64(3), 19]], np.int32(256), rows=np.int64(16), cols=16,
                   dram_addr=np.int64(0x80000008), dram_stride=np.int32(64), flags=np.int64(1))
        tm.command(op="preload", unit="execute", reads=[(0, 3, 19)], writes=[(1, 0, 16)], rows=16, cols=16,
                   flags=2)
        tm.command("compute_preloaded", "execute", ((0, 0, 16),), (), 0, 16, 16, fsm=0, bank_conflict=1)
        tm.command("mvout", "store", ((1, 0, 16),), (), 256, 16, 16, True, False, 0x80001000, 16, 4)
        tm.command("mvout", "store", ((1, 0, 16),), (), 256, 16, 16, False, False, dram_addr=0x80001000,
                   dram_stride=0)
        tm.fence()
    _same(py, fast)


@needs_kernel
@pytest.mark.parametrize("enc", [False, True], ids=["extension", "ctypes"])
def test_return_values_and_bad_input(enc):
    """Bad input raises (in the call with the extension, at the next flush on
    the ctypes path) and leaves the model usable."""
    fast = FastTimingModel(encode_in_python=enc)
    assert fast.command("config_ex", "execute") is None
    assert fast.fence() is None

    def bad(exc, match, *args, **kw):
        with pytest.raises(exc, match=match or None):
            fast.command(*args, **kw)
            fast.report()

    bad(ValueError, "outside the scratchpad", "mvin", "load", (), ((0, 0, 10**9),), 16, 1, 16)
    bad(ValueError, "outside the accumulator", "mvin", "load", (), ((1, 5, 1030),), 16, 1, 16)
    bad(ValueError, "space 2", "mvin", "load", (), ((2, 0, 16),), 16, 1, 16)
    bad(TypeError, "", "mvin", "load", (), ((0, "x", 16),), 16, 1, 16)
    bad(TypeError, "", "mvin", "load", (), ((0, 0, 16),), 16.5, 1, 16)
    bad((TypeError, ValueError), "", "mvin", "load", (), ((0, 0),), 16, 1, 16)
    bad(TypeError, "", "mvin", "load", 5, (), 16, 1, 16)
    bad(TypeError, "", "mvin", "load", (), (), 16, 1, 16, False, False, "addr")
    bad(TypeError, "", "mvin", "load", (), (), 16, 1, 16, False, False, 0, 0, 0, "extra")
    bad(TypeError, "", "mvin", "load", (), ((0, 0, 16),), 16, 1, 16, False, False, 0, 0.5, 0)
    bad(TypeError, "unexpected keyword argument 'colz'", "mvin", "load", colz=3)
    bad(TypeError, "multiple values", "mvin", "load", (), (), op="mvin")
    bad(TypeError, "missing", "mvin")
    # the bad commands did nothing; the model still works
    fast.command("mvin", "load", (), ((0, 0, 16),), 256, 16, 16)
    assert fast.report().units["load"]["commands"] == 1
    assert fast.report().units["execute"]["commands"] == 1


@needs_kernel
@pytest.mark.parametrize("bad", [dict(dma_beat_bytes=128), dict(mem_bytes_per_cycle=0.0), dict(acc_bank_rows=0),
                                 dict(mvout_buffer_rows=-1)])
def test_configs_no_model_can_run_are_refused(monkeypatch, bad):
    """Configs on which the rules would divide by zero or never finish are
    refused by both models with a ValueError (make_timing_model too)."""
    monkeypatch.delenv("AUTOCOMP_EXO_PURE_TIMING", raising=False)
    cfg = GemminiConfig(**bad)
    with pytest.raises(ValueError):
        FastTimingModel(cfg)
    with pytest.raises(ValueError):
        TimingModel(cfg)
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        make_timing_model(cfg)


@needs_kernel
def test_model_type_is_not_instantiable():
    ext = timing_fast.load_library().ext
    if ext is None:
        pytest.skip("kernel built without Python.h")
    with pytest.raises(TypeError):
        ext.Model()
    with pytest.raises(TypeError):
        ext.new(b"", b"")


# ---- real programs -----------------------------------------------------------
def _example_args(path: Path, prog) -> tuple[str, dict] | None:
    rng = np.random.default_rng(1)
    src = path.read_text()
    entries = re.findall(r"^void\s+(\w+)\s*\(", src, re.M)
    if not entries:
        return None
    entry = entries[-1]
    m = re.search(r"(\d+)x(\d+)x(\d+)", entry) or re.search(r"(\d+)", path.stem)
    n = int(m.group(1)) if m else 64
    args: dict = {}
    for pname, pt in prog.entry_params(entry):
        if pt.kind == "ctx":
            continue
        if pname == "scale":
            args[pname] = 1 / 64
        elif pname == "act":
            args[pname] = False
        elif pt.kind in ("ptr", "array"):
            shape = tuple(pt.dims) if pt.kind == "array" else (n * n,)
            args[pname] = rng.integers(-8, 8, shape, dtype=np.int8) if pname != "C" else np.zeros(shape, np.int8)
        else:
            return None
    return entry, args


def _run_both(monkeypatch, c_source, entry, make_args):
    import sim
    run_mod = sys.modules["sim.run"]
    made = []

    def run_with(factory):
        def make(cfg=None):
            tm = factory(cfg)
            made.append(type(tm))
            return tm
        monkeypatch.setattr(run_mod, "make_timing_model", make)
        return sim.run(c_source, entry, make_args())

    r_py = run_with(TimingModel)
    r_fast = run_with(FastTimingModel)
    assert made == [TimingModel, FastTimingModel]
    assert r_fast.to_dict() == r_py.to_dict()
    assert r_fast.timing == r_py.timing
    for k in r_py.arrays:
        assert np.array_equal(r_fast.arrays[k], r_py.arrays[k])
    assert r_py.cycles > 0
    return r_py


EXAMPLES = sorted((REPO / "examples").glob("*.c"))


@needs_kernel
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_match_python(monkeypatch, path):
    import sim
    src = path.read_text()
    prog = sim.compile_program(src, path.name)
    got = _example_args(path, prog)
    if got is None:
        pytest.skip(f"no argument recipe for {path.name}")
    entry, args = got
    _run_both(monkeypatch, src, entry, lambda: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                                 for k, v in args.items()})


@needs_kernel
@pytest.mark.parametrize("gen_name", ["swlib", "fsm"])
def test_baselines_match_python(monkeypatch, gen_name):
    """CPU-issued tiles with partial edges (swlib) and the LOOP_WS FSM (fsm)."""
    from types import SimpleNamespace

    from autocomp_exo.baselines import fsm, swlib
    from autocomp_exo.reference import random_inputs
    gen = {"swlib": swlib, "fsm": fsm}[gen_name]
    M, N, K = 112, 112, 48
    c, entry = gen.generate(SimpleNamespace(M=M, N=N, K=K), arrays="flat")
    x = random_inputs(SimpleNamespace(M=M, N=N, K=K, relu=True), 0)
    _run_both(monkeypatch, c, entry, lambda: {
        "A": x["A"].copy(), "B": x["B"].copy(), "C": x["C_init"].copy(),
        "scale": np.array([x["scale"]], dtype=np.float32), "act": True})


# ---- building and falling back ----------------------------------------------
def _fresh(monkeypatch, tmp_path):
    """A cache directory nobody built into yet."""
    monkeypatch.setenv("AUTOCOMP_EXO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AUTOCOMP_EXO_PURE_TIMING", raising=False)


def test_fallback_with_a_bogus_compiler(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.warns(RuntimeWarning, match="no-such-cc"):
        tm = make_timing_model(GemminiConfig())
    assert type(tm) is TimingModel
    with pytest.raises(KernelUnavailable):
        FastTimingModel()


def test_fallback_when_the_compiler_fails(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setenv("CC", "false")   # exists, exits 1
    with pytest.warns(RuntimeWarning, match="failed"):
        tm = make_timing_model()
    assert type(tm) is TimingModel


def test_fallback_without_gcc_on_path(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path)
    monkeypatch.delenv("CC", raising=False)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.warns(RuntimeWarning, match="'gcc' not found"):
        tm = make_timing_model()
    assert type(tm) is TimingModel
    # and a program still runs, timed by the Python model
    import sim
    src = (REPO / "examples" / "short_matmul_64.c").read_text()
    A = np.ones((64, 64), np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sim.run(src, "solution", {"A": A, "B": A.copy(), "C": np.zeros((64, 64), np.int8)})
    assert r.cycles > 0


def test_pure_env_forces_python(monkeypatch):
    monkeypatch.setenv("AUTOCOMP_EXO_PURE_TIMING", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(make_timing_model()) is TimingModel
    assert timing_fast.kernel_status().startswith("python")


@needs_kernel
def test_default_is_fast(monkeypatch):
    monkeypatch.delenv("AUTOCOMP_EXO_PURE_TIMING", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(make_timing_model()) is FastTimingModel
    assert timing_fast.kernel_status().startswith("c ")


@needs_kernel
def test_kernel_without_python_headers(monkeypatch, tmp_path):
    """No Python.h: the library is built without the extension and driven
    through ctypes with int64 records; same results."""
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setattr(timing_fast, "_python_include", lambda: None)
    kernel = timing_fast.load_library()
    assert kernel.ext is None and str(tmp_path) in str(kernel.path)
    assert "no Python.h" in timing_fast.kernel_status()
    cfg = CONFIGS[1]
    events = _stream(7, cfg, n=1500, dense=True)
    py, fast = TimingModel(cfg), FastTimingModel(cfg)
    assert fast._m is None
    assert _play(fast, events) == _play(py, events)
    _same(py, fast)


@needs_kernel
def test_concurrent_builds_into_a_fresh_cache(tmp_path):
    """Several processes building the library at once all get a working one."""
    env = dict(os.environ, AUTOCOMP_EXO_CACHE=str(tmp_path / "cache"))
    env.pop("AUTOCOMP_EXO_PURE_TIMING", None)
    code = ("from sim.timing_fast import FastTimingModel as F; t = F(); t.cpu(3); "
            "t.command('mvin', 'load', (), ((0, 0, 16),), 256, 16, 16); print(t.report().cycles)")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len({o[0] for o in outs}) == 1
    built = list((tmp_path / "cache" / "sim").iterdir())
    assert len([p for p in built if p.name.startswith("timing_kernel-")]) == 1, built  # no temp files left
