"""Issue 17: every piece of work bounded, fresh inputs, user procs end to end, the CLI.

(The library-integrity items are in test_library.py, the workload variants in
test_workloads.py.)  Real runs use 64x64x64 GEMMs and budgets of 2-3 samples.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autocomp_exo.library import Library, Record, hardware_fingerprint
from autocomp_exo.workloads import GemmWorkload

HW = hardware_fingerprint()
MM = "do_matmul_acc_i8(_)"


def _one_line_error(err: str) -> bool:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return "Traceback" not in err and len(lines) >= 1 and lines[-1].startswith("autocomp-exo: error:")


# --------------------------------------------------------------------------- #
# CLI validation: one-line errors, exit 2
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("extra,what", [
    (["--beam", "0"], "beam"),            # was: IndexError traceback
    (["--dropout", "1.5"], "dropout"),    # was: a raw traceback
    (["--timeout", "0.5"], "timeout"),    # was: a raw traceback (the baseline timed out)
    (["--plans", "0"], "plans"),          # was: silently 0 samples
    (["--budget", "-5"], "budget"),       # was: silently 0 samples
    (["--impls", "0"], "impls"),
    (["--iterations", "0"], "iterations"),
    (["--workers", "-1"], "workers"),
])
def test_cli_settings_are_validated(extra, what, capsys):
    from autocomp_exo.cli import main

    assert main(["optimize", "gemm", "64", "64", "64", "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert _one_line_error(err) and what in err


def test_cli_changed_seed_on_a_run_dir_is_one_line(tmp_path, capsys):
    from autocomp_exo.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "settings.json").write_text(json.dumps({"workload": GemmWorkload(64, 64, 64).signature(), "seed": 0}))
    assert main(["optimize", "gemm", "64", "64", "64", "--quiet", "--seed", "1", "--budget", "2",
                 "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert _one_line_error(err) and "other settings" in err


def test_transfer_cli_validates_too(tmp_path, capsys):
    from autocomp_exo.cli import main

    assert main(["transfer", "gemm", "64", "64", "64", "--from", str(tmp_path), "--beam", "0"]) == 2
    assert _one_line_error(capsys.readouterr().err)
    assert main(["transfer", "gemm", "64", "64", "64", "--from", str(tmp_path)]) == 2    # nothing similar
    assert "no record" in capsys.readouterr().err


def test_api_validates_settings():
    import importlib

    opt = importlib.import_module("autocomp_exo.optimize")   # (autocomp_exo.optimize is the function)

    for kw in ({"beam": 0}, {"dropout": 1.5}, {"timeout": 0.5}, {"budget": -5}, {"plans": 0}):
        with pytest.raises(opt.SettingsError):
            opt.optimize(GemmWorkload(64, 64, 64), **kw)


# --------------------------------------------------------------------------- #
# The simulator's limits
# --------------------------------------------------------------------------- #


def _sim(args, timeout=60):
    return subprocess.run([sys.executable, "-m", "autocomp_exo.cli", "sim", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_sim_wall_clock_limit(tmp_path):
    spin = tmp_path / "spin.c"
    spin.write_text("void f(void) { int x = 0; while (1) { x++; } }\n")
    mvins = tmp_path / "mvins.c"
    mvins.write_text('#include "gemmini.h"\nvoid g(void) { for (;;) { gemmini_extended_mvin(0, 0, 16, 16); } }\n')
    for f, entry in ((spin, "f"), (mvins, "g")):
        p = _sim([str(f), "--entry", entry, "--max-seconds", "1"])
        assert p.returncode == 2, p.stderr
        assert "wall-clock limit" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_sim_input_size_limit(tmp_path):
    import sim
    from sim.run import InputTooLargeError, TimeLimitError

    big = tmp_path / "big.c"
    big.write_text("void h(void) {}\n" + "// padding\n" * 900_000)     # ~10 MB
    p = _sim([str(big), "--entry", "h"])
    assert p.returncode == 2 and "more than the limit" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert _sim([str(big), "--entry", "h", "--max-source-bytes", str(20 * 2**20)]).returncode == 0
    with pytest.raises(InputTooLargeError):
        sim.compile_program(big.read_text(), "big.c")
    prog = sim.compile_program("void f(void) { int x = 0; while (1) { x++; } }\n", "spin.c")
    with pytest.raises(TimeLimitError):
        prog.run("f", {}, max_seconds=0.5)


# --------------------------------------------------------------------------- #
# Replays in the pool, under the timeout
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def source():
    from autocomp_exo.baselines import exo_unopt

    w = GemmWorkload(64, 64, 64)
    s = exo_unopt.schedule(w).extend([
        {"op": "divide_loop", "args": ["i", 2, ["io", "ii"]], "kwargs": {"perfect": True}, "menu": "tiling"},
        {"op": "unroll_loop", "args": [{"parent": MM}], "menu": "unroll"},
        {"op": "simplify", "menu": "unroll"}])
    return Record(w.signature(), HW, s, 1000, 2000, "exo-unopt", None, 0, {"source": "test"})


def test_adapt_runs_in_the_pool_under_the_timeout(source):
    from autocomp_exo.transfer import adapt
    from autocomp_exo.workers import WorkerPool

    w = GemmWorkload(128, 64, 64)
    task = {"kind": "adapt", "record": source.to_dict(), "M": 128, "N": 64, "K": 64, "relu": False}
    with WorkerPool(1, timeout=0.05) as pool:
        r = pool.run([task])[0]
    assert r["measurement"]["stage"] == "timeout" and "adapted" not in r
    with WorkerPool(1, timeout=600) as pool:
        r = pool.run([task])[0]
    assert [a["schedule"] for a in r["adapted"]] == [a.schedule.to_list() for a in adapt(source, w)]


# --------------------------------------------------------------------------- #
# Fresh inputs
# --------------------------------------------------------------------------- #


def test_each_candidate_draws_its_own_inputs(source):
    from autocomp_exo.workers import candidate_seed, evaluate_task

    w = source.gemm_workload()
    s1 = source.schedule.to_list()
    s2 = s1[:-1]
    t = {"M": 64, "N": 64, "K": 64, "relu": False, "seed": 0}
    a, b = evaluate_task({**t, "schedule": s1}), evaluate_task({**t, "schedule": s2})
    ma, mb = a["measurement"], b["measurement"]
    assert ma["ok"] and mb["ok"]
    # reproduction: before, both were seeded by (eval_seed=0, M, N, K): one set of inputs for all
    assert ma["seed"] != mb["seed"] and ma["seeds"] == [ma["seed"]]
    from autocomp_exo.schedule import Schedule

    assert ma["seed"] == candidate_seed(0, Schedule(s1))      # reproducible (resume sees the same)
    x, y = w.inputs(ma["seed"]), w.inputs(mb["seed"])
    assert (x["A"] != y["A"]).any()
    # verification-style tasks must pass every listed seed
    r = evaluate_task({**t, "schedule": s1, "seeds": [11, 12, 13]})["measurement"]
    assert r["ok"] and r["seeds"] == [11, 12, 13]


def test_winner_failing_on_fresh_inputs_gives_way():
    """The final winner is re-checked; one that fails on fresh inputs is replaced
    by the next best candidate that passes."""
    from autocomp_exo.measurement import Measurement
    from autocomp_exo.driver import recheck as _recheck
    from autocomp_exo.schedule import Schedule

    def cand(i, cycles, steps):
        return SimpleNamespace(id=i, cycles=cycles, ok=True, schedule=Schedule(steps),
                               measurement=Measurement(ok=True, cycles=cycles, seeds=[100 + i]))

    base = cand(0, 900, [])
    good = cand(2, 700, [{"op": "simplify", "menu": "simplify"}])
    cheat = cand(1, 500, [{"op": "simplify", "menu": "simplify"}, {"op": "simplify", "menu": "simplify"}])

    class Pool:
        def run(self, tasks):
            ok = len(tasks[0]["schedule"]) != 2           # the cheat fails on new inputs
            return [{"measurement": {"ok": ok, "cycles": 1, "seeds": tasks[0]["seeds"] if ok else [],
                                     "stage": None if ok else "mismatch", "error": None if ok else "differs"}}]

    sr = SimpleNamespace(best=cheat, baseline=base, candidates=[cheat, good])
    best, seeds, notes = _recheck(sr, Pool(), GemmWorkload(64, 64, 64), {}, 3)
    assert best is good and len(seeds) == 4 and "failed on fresh inputs" in notes[0]


# --------------------------------------------------------------------------- #
# End to end: a user's proc, the CLI with --json/--library/--reuse, transfer
# --------------------------------------------------------------------------- #


def test_optimize_user_proc_comes_back_in_its_own_names(capsys):
    from autocomp_exo.optimize import optimize
    from test_workloads import tensors_first   # a real file: @proc reads the source

    user = tensors_first.partial_eval(64, 64, 64)
    r = optimize(user, budget=2, beam=1, plans=1, impls=1, workers=1, progress=True)
    # reproduction: result.proc came back as gemm_64x64x64(scale, act, A, B, C)
    assert r.proc.name() == "tensors_first"
    assert [str(a.name()) for a in r.proc.args()] == ["X", "Y", "Z", "sc", "use_relu"]
    assert "void tensors_first(" in r.c_code
    # reproduction: result.schedule did not apply to the user's proc ("failed to find matches")
    again = r.schedule.apply(user)
    assert str(again) == str(r.proc)
    # the winner was checked on its search input and three fresh ones
    assert len(r.seeds) >= 4
    # progress=True: a bar on stderr from the Python API
    assert "2/2" in capsys.readouterr().err


def test_cli_json_library_reuse_transfer_and_verify(tmp_path, capsys):
    """`optimize --json --library --run-dir` (best.c, a verified record), then a new
    shape with `--reuse` (the transfer path with a run directory and the CLI bar),
    `transfer`, and `library verify`."""
    import time

    from autocomp_exo.cli import main

    lib, d1, d2 = tmp_path / "lib", tmp_path / "r1", tmp_path / "r2"
    small = ["--budget", "2", "--beam", "1", "--plans", "1", "--impls", "1", "--workers", "1"]
    t0 = time.perf_counter()
    assert main(["optimize", "gemm", "64", "64", "64", *small, "--json", "--library", str(lib),
                 "--run-dir", str(d1), "--quiet"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["cycles"] > 0 and out["seeds"]
    assert (d1 / "best.c").read_text() == out["c_code"]
    recs = Library(lib).records()
    assert len(recs) == 1 and recs[0].verified and recs[0].cycles == out["cycles"]
    t1 = time.perf_counter()

    # reproduction: optimize(reuse=, run_dir=) ignored run_dir and the bar raised KeyError: 'iteration'
    assert main(["optimize", "gemm", "128", "64", "64", *small, "--reuse", str(lib), "--run-dir", str(d2)]) == 0
    cap = capsys.readouterr()
    assert "KeyError" not in cap.err and "phase" in cap.err      # the bar shows the transfer's phases
    assert (d2 / "candidates.jsonl").exists() and (d2 / "best.c").exists()
    best = json.loads((d2 / "best.json").read_text())
    assert best["sources"] == ["gemm_64x64x64"]
    # every candidate records the input seed it passed
    rows = [json.loads(x) for x in (d2 / "candidates.jsonl").read_text().splitlines()]
    ok = [r["measurement"] for r in rows if r["measurement"] and r["measurement"].get("ok")]
    assert ok and all(m["seeds"] for m in ok) and len({m["seed"] for m in ok}) == len(ok)
    t2 = time.perf_counter()

    assert main(["transfer", "gemm", "64", "128", "64", "--from", str(lib), "--budget", "1", "--workers", "1",
                 "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert t["sources"] == ["gemm_64x64x64"] and t["cycles"] > 0
    t3 = time.perf_counter()

    assert main(["library", "verify", "--library", str(lib)]) == 0
    assert "1 of 1 records verified" in capsys.readouterr().out
    print(f"optimize {t1 - t0:.0f} s, reuse {t2 - t1:.0f} s, transfer {t3 - t2:.0f} s, "
          f"verify {time.perf_counter() - t3:.0f} s")


def test_transfer_progress_events_have_one_schema(source):
    from autocomp_exo.driver import Bar as _Bar
    from autocomp_exo.transfer import transfer

    events = []
    r = transfer(source, GemmWorkload(128, 64, 64), budget=2, workers=1, beam=1, plans=1, impls=1,
                 guided_budget=0, progress=events.append)
    keys = {"event", "samples", "budget", "best_cycles", "baseline_cycles", "speedup", "iteration", "phase"}
    assert events and all(keys <= set(e) for e in events), [sorted(set(e)) for e in events][:3]
    assert [e["samples"] for e in events] == sorted(e["samples"] for e in events)
    assert events[-1]["best_cycles"] == r.cycles
    bar = _Bar(3, quiet=True)
    bar.bar = SimpleNamespace(update=lambda n: None, set_postfix_str=lambda *a, **k: None, close=lambda: None)
    for e in events:
        bar(e)            # reproduction: KeyError: 'iteration'


# --------------------------------------------------------------------------- #
# The newer workload kinds end to end: optimize(workload), library, transfer
# --------------------------------------------------------------------------- #


def test_optimize_takes_any_workload_object(tmp_path):
    """Reproduction: ``optimize(MatmulI32Workload(...))`` raised "expected an Exo
    Procedure, got MatmulI32Workload"; a workload without a mapping is refused by name."""
    from search_stubs import StubAgent, fake_eval

    from autocomp_exo.optimize import optimize
    from autocomp_exo.workloads import MatmulI32Workload, Workload, WorkloadError

    w = MatmulI32Workload(64, 64, 64)
    log = tmp_path / "tasks.log"
    r = optimize(w, agent=StubAgent(), evaluate_fn=_logged(fake_eval, log), workers=0, budget=2, recheck=1)
    assert r.workload is w
    assert {json.loads(x)["kind"] for x in log.read_text().splitlines()} == {"matmul_i32"}
    # a proc given as baseline= is evaluated as the workload given with it; alone, only
    # the scaled GEMM's parameters say what it computes (was: "C (int32_t*) needs dtype int32")
    r = optimize(w, baseline=w.proc, agent=StubAgent(), evaluate_fn=fake_eval, workers=0, budget=1, recheck=0)
    assert r.workload is w
    with pytest.raises(WorkloadError, match=r"not the scaled GEMM's .*pass its workload"):
        optimize(None, baseline=w.proc, budget=1, workers=0)
    with pytest.raises(WorkloadError, match="maps a 64x64x64 GEMM, the workload is matmul_i32_32x64x64"):
        optimize(MatmulI32Workload(32, 64, 64), baseline=w.proc, budget=1, workers=0)

    class Elsewise(Workload):
        name, dims, macs, proc = "x", {}, 1, None

        def signature(self):
            return {"kind": "elsewise"}

        def inputs(self, seed=0):
            return {}

        def reference(self, inputs):
            return None

    with pytest.raises(WorkloadError, match="no Gemmini mapping for a Elsewise"):
        optimize(Elsewise(), budget=1, workers=0)


class _logged:
    """An evaluator that notes each task's workload signature, then evaluates (picklable)."""

    def __init__(self, fn, path):
        self.fn, self.path = fn, path

    def __call__(self, task):
        with open(self.path, "a") as fh:
            fh.write(json.dumps(task["workload"]) + "\n")
        return self.fn(task)


def test_clamp_act_optimize_library_verify_and_transfer(tmp_path):
    """The newest kind end to end: optimize(workload object), a verified library
    record, verify, a refused record that does not replay, transfer to a similar
    shape, and the transferred C bit-exact against numpy computed here."""
    import numpy as np

    import sim
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate_c
    from autocomp_exo.library import RecordError, verify
    from autocomp_exo.optimize import optimize
    from autocomp_exo.transfer import similar_records, transfer
    from autocomp_exo.workloads import MatmulClampWorkload, MatmulI32Workload

    w, w2 = MatmulClampWorkload(64, 64, 64, act=True), MatmulClampWorkload(64, 128, 64, act=True)
    lib = Library(tmp_path / "lib")
    r = optimize(w, budget=2, beam=1, plans=1, impls=1, workers=0, recheck=1, library=lib)
    assert r.workload == w and r.cycles < r.baseline_cycles and len(r.seeds) >= 2
    rec = lib.best(w)
    assert rec is not None and rec.verified and rec.cycles == r.cycles and rec.workload == w.signature()
    assert lib.best(MatmulClampWorkload(64, 64, 64)) is None and verify(rec).ok
    # a record of this kind whose schedule is another kind's does not replay: refused at add
    with pytest.raises(RecordError, match="does not replay"):
        lib.add(Record(w.signature(), HW, exo_unopt.schedule(MatmulI32Workload(64, 64, 64)), 1, None,
                       "exo-unopt", None, 0, {}))
    assert [x.name for x in similar_records(lib, w2)] == [rec.name]
    assert similar_records(lib, MatmulClampWorkload(64, 128, 64)) == []     # the act flag is part of the kind
    t = transfer(lib, w2, budget=1, workers=0, beam=1, plans=1, impls=1, guided_budget=0)
    assert t.workload == w2 and t.sources[0].name == rec.name and t.cycles < t.baseline_cycles
    assert "st_acc_i8_clamp_act" in str(t.proc)
    on = next(s for s in range(20) if w2.inputs(s)["act"])
    off = next(s for s in range(20) if not w2.inputs(s)["act"])
    prog = sim.compile_program(t.c_code, filename="t.c")
    for seed in (on, off):
        ins = w2.inputs(seed)
        args = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in ins.items()}
        got = prog.run(t.proc.name(), args).arrays["C"]
        acc = np.clip(ins["A"].astype(np.int64) @ ins["B"].astype(np.int64), -128, 127)
        want = (np.maximum(acc, 0) if ins["act"] else acc).astype(np.int8)
        assert (got.reshape(w2.M, w2.N) == want).all()
    # the check can fail: the same C with the act flag pinned to 0 mismatches when act is true
    pinned = t.c_code.replace("(act), 1.0f", "0, 1.0f")
    assert pinned != t.c_code
    bad = evaluate_c(w2, pinned, t.proc.name(), seed=on)
    assert not bad.ok and bad.stage == "mismatch"


def test_record_names_keep_every_signature_field(tmp_path):
    """The int32 matmul with and without ``accumulate`` (and the clamp with and
    without ``act``) are different workloads: they no longer share a library file."""
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.workloads import MatmulClampWorkload, MatmulI32Workload

    lib = Library(tmp_path)
    ws = [MatmulI32Workload(64, 64, 64), MatmulI32Workload(64, 64, 64, accumulate=False),
          MatmulClampWorkload(64, 64, 64), MatmulClampWorkload(64, 64, 64, act=True),
          MatmulClampWorkload(64, 64, 64, relu=True), GemmWorkload(64, 64, 64)]
    for i, w in enumerate(ws):
        assert lib.add(Record(w.signature(), HW, Schedule([]), 1000 + i), verify=False)
    assert len({r.filename for r in lib.records()}) == len(ws)
    assert [lib.best(w).cycles for w in ws] == [1000 + i for i in range(len(ws))]
    assert Record(GemmWorkload(64, 64, 64, True).signature(), HW, None, 1).name == "gemm_64x64x64_relu"   # as before


def test_nothing_in_a_record_is_executed_or_escapes_the_library(tmp_path, source):
    """Payloads in a record's steps and in its workload signature stay data:
    the replay refuses them (in a worker), nothing runs, and a record's file
    name never leaves the library directory."""
    from autocomp_exo.library import RecordError, verify
    from autocomp_exo.transfer import similar_records

    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    lib = Library(tmp_path / "lib")
    d = source.to_dict()
    d["schedule"] = d["schedule"][:3] + [{"op": "divide_loop", "args": [code, 2, ["a", "b"]], "menu": "tiling"}]
    (lib.path / "steps.json").parent.mkdir(parents=True, exist_ok=True)
    (lib.path / "steps.json").write_text(json.dumps(d))
    bad = Record.from_dict(d)
    v = verify(bad)
    assert not v.ok and not v.replays and "divide_loop" in v.reason
    with pytest.raises(RecordError, match="does not replay"):
        lib.add(bad)
    sig = {"kind": f"../../{code}", "M": 64, "N": 64, "K": 64}
    odd = Record(sig, HW, source.schedule, 1000)
    assert "/" not in odd.filename
    assert lib.add(odd, verify=False)                 # stored unverified, inside the library
    assert all(p.parent == lib.path for p in lib._files())
    assert not verify(odd).ok and "unknown workload kind" in verify(odd).reason
    # transfer finds the payload record similar; adapting it (a worker task) drops the step, with a note
    from autocomp_exo.transfer import adapt_task

    assert [r.path for r in similar_records(lib, GemmWorkload(128, 64, 64))] == [str(lib.path / "steps.json")]
    r = adapt_task({"kind": "adapt", "record": d, "workload": GemmWorkload(128, 64, 64).signature()})
    assert r["adapted"] and all(code not in json.dumps(a["schedule"]) for a in r["adapted"])
    assert all(any("divide_loop: dropped" in n for n in a["notes"]) for a in r["adapted"])
    assert not marker.exists()


def test_library_cli_on_a_missing_directory_and_other_kinds(tmp_path, capsys):
    """``library verify --library <typo>`` said "0 of 0 records verified" (exit 0);
    ``library list`` sorted by M*N*K and failed on a record without them."""
    from autocomp_exo.cli import main
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.workloads import MatmulClampWorkload

    for cmd in (["verify"], ["list"], ["best", "gemm", "64", "64", "64"]):
        assert main(["library", *cmd, "--library", str(tmp_path / "typo")]) == 2
        err = capsys.readouterr().err
        assert _one_line_error(err) and "no library directory" in err
    lib = Library(tmp_path / "lib")
    lib.add(Record({"kind": "conv", "batch": 1, "out_dim": 56, "in_channels": 64, "out_channels": 64},
                   HW, Schedule([]), 5000), verify=False)
    lib.add(Record(MatmulClampWorkload(64, 64, 64, act=True).signature(), HW, Schedule([]), 3000), verify=False)
    assert main(["library", "list", "--library", str(lib.path)]) == 0
    out = capsys.readouterr().out
    assert "conv_batch1_in_channels64_out_channels64_out_dim56" in out and "matmul_clamp_i8_64x64x64_act" in out
