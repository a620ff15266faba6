"""Convs through the search: Exo's unoptimized conv mapping as Schedule data,
the moves on its structure, optimize and the CLI (issue 15, phase 2)."""
from __future__ import annotations

import numpy as np
import pytest

from autocomp_exo.baselines import conv_unopt, exo_unopt
from autocomp_exo.cli import main
from autocomp_exo.conv import ConvWorkload
from autocomp_exo.evaluate import evaluate
from autocomp_exo.moves.applicable import loaded
from autocomp_exo.proc_facts import facts
from autocomp_exo.schedule import Schedule, ScheduleError
from autocomp_exo.workloads import WorkloadError

TINY = ConvWorkload(1, 20, 16, 16)   # two row tiles of 10 (one trace with the relu case below)


def _calls(proc) -> dict:
    out: dict = {}
    for c in facts(proc).calls():
        out[c.name] = out.get(c.name, 0) + 1
    return out


def test_row_tiles_divide_the_row_into_as_many_tiles_as_exos_split():
    assert [conv_unopt.row_tile(d) for d in (4, 14, 16, 20, 28, 56, 112)] == [16, 16, 16, 10, 14, 14, 16]
    assert conv_unopt.row_tile(56, tail=True) == 16
    assert conv_unopt.row_tile(17) == 16   # 17 = 16 + 1: no width in [8, 16) gives 2 tiles


@pytest.mark.parametrize("w, seed", [(ConvWorkload(1, 20, 16, 16, relu=True), 1),
                                     (ConvWorkload(1, 1, 80, 80), 1)])
def test_unopt_schedule_is_exos_mapping_and_bit_exact(w, seed):
    s = exo_unopt.schedule(w)   # the search's start for a conv
    assert s == conv_unopt.schedule(w) and not s.unsafe
    assert {st.menu for st in s.steps} == {"exo-unopt"}
    m = evaluate(w, s, seed=seed)
    assert m.ok, m.error
    calls = _calls(s.apply(w.proc))
    # one part: one copy of each load (20 columns: two tiles of 10, not 16 + a tail of 4)
    assert calls["do_ld_i8_block_id1"] == 1 and calls["do_st_acc_i8"] == 1
    if w.out_dim == 20:
        assert s.steps[0].args[:2] == ["ocol", 10]
    # the mapping of GEMMINI_CONV.md section 5: bias broadcast, weights, input strip, 16x16 matmuls, store
    assert {"do_ld_acc_i32_vector", "do_ld_i8_block_id1", "ld_i8_block_id2", "do_matmul_acc_i8",
            "do_st_acc_i8"} <= set(calls)
    # 80 channels: loads of at most 64 columns (one block each), not one mvin of 80
    if w.in_channels > 64:
        c = s.apply(w.proc)
        assert "16*(5)" not in str(c) and "ld_i8_block_id2(" in str(c)


def test_unopt_schedule_steps_are_checked_data():
    s = conv_unopt.schedule(TINY)
    again = Schedule.from_json(s.to_json())
    assert again == s
    # one step wrong (the bias broadcast replaced by the weight load) fails in Exo, naming the step
    bad = [st.to_dict() for st in s.steps]
    i = next(k for k, st in enumerate(bad) if st["op"] == "replace")
    bad[i]["args"][1] = {"instr": "ld_i8_block_id1"}
    m = evaluate(TINY, Schedule(bad))
    assert not m.ok and m.stage == "schedule" and f"step {i}" in m.error


def test_unopt_refuses_what_it_cannot_map():
    with pytest.raises(WorkloadError, match="stride 1"):
        conv_unopt.schedule(ConvWorkload(1, 4, 16, 16, stride=2))
    with pytest.raises(WorkloadError, match="scratchpad rows"):
        conv_unopt.schedule(ConvWorkload(1, 4, 512, 512))
    with pytest.raises(WorkloadError, match="ConvWorkload"):
        conv_unopt.schedule(object())


def test_the_bias_load_starts_a_sum_and_is_not_hoisted():
    base = conv_unopt.schedule(TINY)
    f = facts(base.apply(TINY.proc))
    assert "weights" in loaded(f) and "bias" not in loaded(f)
    with pytest.raises(ScheduleError, match="initialises res"):
        base.extend([{"op": "hoist_load", "args": ["bias", 1]}]).apply(TINY.proc)


def test_optimize_a_tiny_conv_is_faster_and_bit_exact(tmp_path):
    import autocomp_exo as ax

    r = ax.optimize(TINY, budget=4, beam=1, plans=2, impls=2, workers=1, run_dir=str(tmp_path / "run"),
                    recheck=1)
    assert r.cycles < r.baseline_cycles and r.speedup > 1.5
    m = evaluate(TINY, r.schedule, seed=3)
    assert m.ok and m.cycles is not None
    assert np.isfinite(r.utilization) and 0 < r.utilization < 1
    assert (tmp_path / "run" / "best.c").exists()


@pytest.mark.parametrize("argv, msg", [
    (["conv", "1", "4", "16"], "conv needs 4 sizes (BATCH OUT_DIM IN_CH OUT_CH), got 3"),
    (["conv", "conv-99"], "unknown conv benchmark 'conv-99'"),
    (["conv", "1", "4", "x", "16"], "conv IN_CH must be an integer, got 'x'"),
    (["conv", "1", "4", "17", "16"], "multiples of 16"),
    (["conv", "1", "4", "16", "16", "--kernel", "5"], "kernel 5x5 is not supported"),
    (["conv", "conv-56", "--start", "exo-opt"], "--start exo-opt is not available for convs"),
    (["gemm", "64", "64"], "gemm needs 3 sizes (M N K), got 2"),
    (["gemm", "64", "64", "64", "--stride", "2"], "--kernel and --stride are conv options"),
])
def test_cli_optimize_conv_argument_errors(argv, msg, capsys):
    assert main(["optimize", *argv, "--quiet"]) == 2
    assert msg in capsys.readouterr().err


def test_cli_optimize_conv_stride_2_is_refused_by_name(capsys):
    assert main(["optimize", "conv", "1", "4", "16", "16", "--stride", "2", "--quiet", "--workers", "1"]) == 2
    assert "needs stride 1" in capsys.readouterr().err


def test_search_quality_convs_names_an_unknown_shape():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "search_quality.py"
    spec = importlib.util.spec_from_file_location("search_quality", path)
    sq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sq)
    with pytest.raises(SystemExit, match="unknown conv shapes \\['conv-99'\\]; known: conv-56"):
        sq.main(["--convs", "--shapes", "conv-99"])
