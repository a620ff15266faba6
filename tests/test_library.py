"""The schedule library: records, best kept, merge, atomic concurrent writes,
corrupt files skipped, stale records reported, the CLI, the shipped records.

Replaying shipped records is slow (Exo + simulator, ~10 s each): by default
one shipped record (the smallest) is replayed; set AUTOCOMP_EXO_ALL_RECORDS=1
to replay every record in schedules/.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import warnings

import pytest

from autocomp_exo.library import (EXPORT_FORMAT, FORMAT, Library, LibraryWarning, Record, RecordError,
                                  StaleRecord, builtin, hardware_fingerprint, verify)
from autocomp_exo.schedule import Schedule
from autocomp_exo.workloads import GemmWorkload

HW = hardware_fingerprint()


def rec(M=64, N=64, K=64, cycles=1000, steps=None, source="test", hw=HW) -> Record:
    w = GemmWorkload(M, N, K)
    sched = Schedule(steps if steps is not None else [{"op": "simplify", "menu": "simplify"}])
    return Record(w.signature(), hw, sched, cycles, 2000, "exo-unopt", 0.5, 0,
                  {"source": source, "date": "2026-11-25"})


def test_record_round_trip_and_format():
    r = rec()
    d = r.to_dict()
    assert d["format"] == FORMAT
    assert d["workload"] == {"kind": "gemm", "M": 64, "N": 64, "K": 64, "relu": False, "dtype": "int8",
                             "acc": "int32"}
    assert d["menu"] == ["simplify"] and d["schedule"][0]["menu"] == "simplify"
    assert d["speedup"] == 2.0
    r2 = Record.from_json(r.to_json())
    assert r2.to_dict() == d and r2.cycles == 1000 and r2.schedule == r.schedule
    for bad in ({**d, "format": "other/9"}, {**d, "cycles": -3}, {**d, "schedule": [{"op": "nope"}]},
                {k: v for k, v in d.items() if k != "workload"}, [1, 2]):
        with pytest.raises(RecordError):
            Record.from_dict(bad)


def test_best_is_kept(tmp_path):
    lib = Library(tmp_path / "lib")
    assert lib.best(GemmWorkload(64, 64, 64)) is None
    assert lib.add(rec(cycles=1000), verify=False)
    assert not lib.add(rec(cycles=1200, source="worse"), verify=False)      # slower: not written
    assert not lib.add(rec(cycles=1000, source="tie"), verify=False)        # not strictly faster: kept
    assert lib.best(GemmWorkload(64, 64, 64)).source == "test"
    assert lib.add(rec(cycles=900, source="better"), verify=False)
    b = lib.best(GemmWorkload(64, 64, 64))
    assert (b.cycles, b.source) == (900, "better")
    # by proc, by signature; other shapes and other hardware are separate
    from autocomp_exo.workloads import gemm

    assert lib.best(gemm(64, 64, 64)).cycles == 900
    assert lib.best(GemmWorkload(64, 64, 64).signature()).cycles == 900
    assert lib.best(GemmWorkload(64, 64, 128)) is None
    assert lib.add(rec(cycles=5000, hw="0123456789abcdef"), verify=False)
    assert lib.best(GemmWorkload(64, 64, 64)).cycles == 900
    assert lib.best(GemmWorkload(64, 64, 64), config="0123456789abcdef").cycles == 5000
    assert len(lib.records()) == 2
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "lib").iterdir())


def test_export_import_merge(tmp_path):
    a, b = Library(tmp_path / "a"), Library(tmp_path / "b")
    a.add(rec(64, 64, 64, cycles=1000, source="a"), verify=False)
    a.add(rec(128, 64, 64, cycles=3000, source="a"), verify=False)
    b.add(rec(64, 64, 64, cycles=800, source="b"), verify=False)        # better than a's
    b.add(rec(128, 64, 64, cycles=3500, source="b"), verify=False)      # worse than a's
    b.add(rec(64, 128, 64, cycles=2000, source="b"), verify=False)      # new
    out = tmp_path / "b.json"
    assert b.export(out) == 3
    doc = json.loads(out.read_text())
    assert doc["format"] == EXPORT_FORMAT and len(doc["records"]) == 3
    counts = a.import_(out)
    assert counts == {"added": 2, "kept": 1, "skipped": 0}
    got = {(r.M, r.N, r.K): (r.cycles, r.source) for r in a.records()}
    assert got == {(64, 64, 64): (800, "b"), (128, 64, 64): (3000, "a"), (64, 128, 64): (2000, "b")}
    # importing again changes nothing; a directory and a single record file import too
    assert a.import_(out) == {"added": 0, "kept": 3, "skipped": 0}
    c = Library(tmp_path / "c")
    assert c.import_(tmp_path / "a")["added"] == 3
    single = tmp_path / "one.json"
    single.write_text(rec(64, 64, 64, cycles=700, source="single").to_json())
    assert c.import_(single) == {"added": 1, "kept": 0, "skipped": 0}
    # a bad entry of an export file is skipped with a warning
    doc["records"].append({"format": FORMAT, "cycles": "many"})
    out.write_text(json.dumps(doc))
    with pytest.warns(LibraryWarning, match="record 3 of"):
        assert c.import_(out)["skipped"] == 1


def test_corrupt_record_skipped_with_warning(tmp_path):
    lib = Library(tmp_path)
    lib.add(rec(64, 64, 64, cycles=1000), verify=False)
    good = tmp_path / rec(64, 64, 64).filename
    bad = tmp_path / "gemm_128x64x64__broken.json"
    bad.write_text('{"format": "autocomp_exo.library/1", "workload": ')   # truncated
    (tmp_path / "gemm_64x128x64__x.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.warns(LibraryWarning) as ws:
        rs = lib.records()
    assert [r.cycles for r in rs] == [1000]
    msgs = " ".join(str(w.message) for w in ws)
    assert str(bad) in msgs and "gemm_64x128x64__x.json" in msgs
    # a corrupt file in the place of a record: best() warns and returns None, add() replaces it
    good.write_text("not json")
    with pytest.warns(LibraryWarning, match=good.name):
        assert lib.best(GemmWorkload(64, 64, 64)) is None
    with pytest.warns(LibraryWarning, match="moved aside"):
        assert lib.add(rec(64, 64, 64, cycles=1500), verify=False)
    assert Record.from_json(good.read_text()).cycles == 1500
    assert any(p.name.startswith(good.name + ".corrupt-") for p in tmp_path.iterdir())


def _writer(path: str, seed: int, n: int) -> None:
    import random

    rng = random.Random(seed)
    lib = Library(path)
    for i in range(n):
        shape = rng.choice([(64, 64, 64), (128, 64, 64)])
        lib.add(rec(*shape, cycles=rng.randrange(1000, 100000), source=f"w{seed}-{i}"), verify=False)


def test_atomic_writes_with_concurrent_processes(tmp_path):
    import random

    path = str(tmp_path / "lib")
    n, procs = 40, 4
    ctx = mp.get_context("fork")
    ps = [ctx.Process(target=_writer, args=(path, s, n)) for s in range(procs)]
    # a reader in this process meanwhile: never sees a half-written record
    for p in ps:
        p.start()
    lib = Library(path)
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", LibraryWarning)   # a torn read would warn: fail
        while any(p.is_alive() for p in ps):
            seen += len(lib.records())
    for p in ps:
        p.join()
        assert p.exitcode == 0
    # the best of everything written is what is stored
    want = {}
    for s in range(procs):
        rng = random.Random(s)
        for i in range(n):
            shape = rng.choice([(64, 64, 64), (128, 64, 64)])
            c = rng.randrange(1000, 100000)
            want[shape] = min(want.get(shape, c), c)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LibraryWarning)
        got = {(r.M, r.N, r.K): r.cycles for r in lib.records()}
    assert got == want
    assert sorted(p.name for p in (tmp_path / "lib").iterdir() if not p.name.startswith(".")) == \
        sorted(rec(*s).filename for s in want)


# --------------------------------------------------------------------------- #
# Re-verification (Exo + simulator)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def small_record():
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate

    w = GemmWorkload(64, 64, 64)
    s = exo_unopt.schedule(w).extend([{"op": "unroll_loop", "args": [{"parent": "do_matmul_acc_i8(_)"}],
                                       "menu": "unroll"}, {"op": "simplify", "menu": "unroll"}])
    m = evaluate(w, s)
    assert m.ok
    return Record(w.signature(), HW, s, m.cycles, None, "exo-unopt", m.utilization, 0, {"source": "test"})


def test_verify_and_stale_records(small_record):
    v = verify(small_record)
    assert v.ok and v.measured == small_record.cycles
    # cycles that no longer match
    r = Record.from_dict({**small_record.to_dict(), "cycles": small_record.cycles - 100})
    v = verify(r)
    assert not v.ok and "simulates to" in v.reason and v.measured == small_record.cycles
    # a schedule that no longer replays
    d = small_record.to_dict()
    d["schedule"] = d["schedule"] + [{"op": "unroll_loop", "args": ["no_such_loop"], "kwargs": {}, "menu": "unroll"}]
    v = verify(Record.from_dict(d))
    assert not v.ok and "no longer replays" in v.reason
    # other hardware
    v = verify(Record.from_dict({**small_record.to_dict(), "hardware": "ffffffffffffffff"}))
    assert not v.ok and "hardware" in v.reason
    assert "stale library record" in str(StaleRecord(r, v.reason))


def test_optimize_with_library_reports_stale_record(tmp_path, small_record, monkeypatch):
    """A stale record is reported and not used as the starting point."""
    import importlib

    # the modules (the package attributes autocomp_exo.optimize / .transfer are the functions)
    opt_mod = importlib.import_module("autocomp_exo.optimize")
    tr = importlib.import_module("autocomp_exo.transfer")
    assert opt_mod.StaleRecordWarning is tr.StaleRecordWarning

    calls = []

    class FakeResult:
        def __init__(self, w):
            self.workload, self.schedule, self.cycles, self.baseline_cycles = w, small_record.schedule, 5000, 9000
            self.speedup, self.utilization, self.samples_used, self.run_dir, self.search = 1.8, 0.1, 3, None, None

    def fake_optimize(w, **kw):
        calls.append(kw)
        return FakeResult(w)

    monkeypatch.setattr(opt_mod, "optimize", fake_optimize)
    lib = Library(tmp_path)
    stale = Record.from_dict({**small_record.to_dict(), "cycles": 10})   # claims 10 cycles
    lib.add(stale, verify=False)      # stored before the timing model changed, say
    said = []
    with pytest.warns(tr.StaleRecordWarning, match="stale library record"):
        r = opt_mod.optimize_with_library(GemmWorkload(64, 64, 64), library=lib, budget=3, report=said.append)
    assert r.stale_record is not None and "simulates to" in r.stale_record.reason
    assert said and "stale" in said[0]
    assert "baseline" not in calls[0] or calls[0]["baseline"] is None     # did not start from it
    # issue 17: the stale (unbeatable 10-cycle) record used to stay forever; the verified
    # result replaces it, with the cycles it simulates to (not the 5000 the result claims)
    b = lib.best(GemmWorkload(64, 64, 64))
    assert b.verified and b.cycles == small_record.cycles
    # a verified record is the starting point
    lib2 = Library(tmp_path / "two")
    lib2.add(small_record)
    r = opt_mod.optimize_with_library(GemmWorkload(64, 64, 64), library=lib2, budget=3, report=said.append)
    assert calls[-1]["baseline"] == small_record.schedule and r.stale_record is None
    assert "verified" in said[-1]


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def test_cli(tmp_path, capsys):
    from autocomp_exo.cli import main

    lib = Library(tmp_path / "lib")
    lib.add(rec(64, 64, 64, cycles=1000), verify=False)
    lib.add(rec(128, 64, 64, cycles=3000), verify=False)
    assert main(["library", "list", "--library", str(lib.path)]) == 0
    out = capsys.readouterr().out
    assert "gemm_64x64x64" in out and "gemm_128x64x64" in out and "1,000" in out
    assert main(["library", "best", "gemm", "64", "64", "64", "--library", str(lib.path)]) == 0
    assert "1,000" in capsys.readouterr().out
    assert main(["library", "best", "gemm", "16", "16", "16", "--library", str(lib.path)]) == 1
    capsys.readouterr()
    assert main(["library", "show", "gemm", "64", "64", "64", "--library", str(lib.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == 1000
    exp = tmp_path / "e.json"
    assert main(["library", "export", str(exp), "--library", str(lib.path)]) == 0
    assert main(["library", "import", str(exp), "--library", str(tmp_path / "other")]) == 0
    assert "2 added" in capsys.readouterr().out
    assert len(Library(tmp_path / "other").records()) == 2


def test_cli_fresh_process_reads_records_without_warnings(tmp_path):
    """Regression: Exo inspects the ``self`` of caller frames while it is first
    imported; a Library must not read its files when tested for truth."""
    import subprocess
    import sys

    lib = Library(tmp_path)
    lib.add(rec(64, 64, 64, cycles=1000), verify=False)
    p = subprocess.run([sys.executable, "-m", "autocomp_exo.cli", "library", "list", "--library", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "gemm_64x64x64" in p.stdout
    assert "warning" not in p.stderr, p.stderr


# --------------------------------------------------------------------------- #
# The shipped library
# --------------------------------------------------------------------------- #


def _shipped():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LibraryWarning)   # a shipped record must parse
        return builtin().records()


def test_shipped_records_are_well_formed():
    rs = _shipped()
    assert rs, "schedules/ has no records"
    for r in rs:
        assert r.hardware == HW
        assert r.baseline_cycles and r.cycles < r.baseline_cycles
        # every shipped record was found by the project's search (issue 7), with its budget
        assert r.provenance.get("source") == "search", (r.name, r.provenance.get("source"))
        assert r.provenance.get("agent") == "offline" and r.provenance.get("samples"), r.name
        for k in ("package", "exo", "date"):
            assert r.provenance.get(k), (r.name, k)
        assert all(s.menu for s in r.schedule.steps)


_ALL = os.environ.get("AUTOCOMP_EXO_ALL_RECORDS") == "1"


def _replay_set():
    rs = sorted(_shipped(), key=lambda r: r.M * r.N * r.K)
    return rs if _ALL else rs[:1]


@pytest.mark.parametrize("record", _replay_set(), ids=lambda r: r.name)
def test_shipped_record_replays_to_its_cycles(record):
    v = verify(record)
    assert v.ok, v.reason


# --------------------------------------------------------------------------- #
# Issue 17: records count only when verified
# --------------------------------------------------------------------------- #


def test_issue17_stale_verified_record_is_replaced_by_a_verified_result(tmp_path, small_record):
    lib = Library(tmp_path)
    # a record that once verified, but now claims 1 cycle (the timing model changed, say)
    bogus = Record.from_dict({**small_record.to_dict(), "cycles": 1,
                              "verification": {"cycles": 1, "seeds": [0], "date": "2026-01-01"}})
    assert bogus.verified
    lib.path.mkdir(parents=True, exist_ok=True)
    (lib.path / bogus.filename).write_text(bogus.to_json())
    assert lib.best(GemmWorkload(64, 64, 64)).cycles == 1
    # reproduction: by cycles alone the bogus record is "better" than any real result
    assert not lib.add(small_record, verify=False)
    # fixed: a verified add re-verifies the stored record, which no longer verifies: replaced
    with pytest.warns(LibraryWarning, match="no longer verifies"):
        assert lib.add(small_record)
    b = lib.best(GemmWorkload(64, 64, 64))
    assert b.verified and b.cycles == small_record.cycles and b.verification["seeds"]
    # a verified record is not replaced by a slower verified one, nor by an unverified faster one
    assert not lib.add(Record.from_dict({**small_record.to_dict(), "cycles": 5}), verify=False)
    assert lib.best(GemmWorkload(64, 64, 64)).cycles == small_record.cycles


def test_issue17_claimed_cycles_are_replaced_by_measured_ones(tmp_path, small_record):
    lib = Library(tmp_path)
    with pytest.warns(LibraryWarning, match="claims 1 cycles"):
        assert lib.add(Record.from_dict({**small_record.to_dict(), "cycles": 1}))
    assert lib.best(GemmWorkload(64, 64, 64)).cycles == small_record.cycles


def test_issue17_record_that_does_not_replay_is_refused(tmp_path, small_record):
    """The 4-step record of a search from a mapped proc (baseline=): its steps name
    the mapped proc's loops, so it does not replay on the workload's proc."""
    steps = [{"op": "divide_loop", "args": ["j_in_o", 2, ["jo", "ji"]], "kwargs": {"perfect": True},
              "menu": "tiling"}, {"op": "unroll_loop", "args": ["ji"], "menu": "unroll"}]
    r = Record(small_record.workload, HW, Schedule(steps), 900, 1000, "exo-unopt", None, 0, {"source": "search"})
    lib = Library(tmp_path)
    with pytest.raises(RecordError, match="does not replay"):
        lib.add(r)
    assert lib.best(GemmWorkload(64, 64, 64)) is None


def test_issue17_unchecked_steps_are_marked_and_verified_on_several_inputs(tmp_path, small_record):
    from autocomp_exo.library import VERIFY_SEEDS_UNCHECKED

    base = small_record.schedule[:len(small_record.schedule) - 2]
    s = base.extend([{"op": "fuse", "args": ["for k in _: _", "for k in _: _ #1"],
                      "kwargs": {"unsafe_disable_check": True}, "menu": "fuse"}])
    r = Record(small_record.workload, HW, s, 1000, None, "exo-unopt", None, 0, {"source": "test"})
    assert r.unchecked == [len(s) - 1] and r.to_dict()["unchecked"] == [len(s) - 1]
    lib = Library(tmp_path)
    with pytest.warns(LibraryWarning, match="unchecked steps"):
        assert lib.add(r)
    b = lib.best(GemmWorkload(64, 64, 64))
    assert len(b.verification["seeds"]) == VERIFY_SEEDS_UNCHECKED and "unchecked" in b.summary()


def test_issue17_verify_runs_under_the_timeout():
    from autocomp_exo.baselines import exo_unopt

    w = GemmWorkload(512, 512, 512)   # replaying and simulating it takes seconds
    big = Record(w.signature(), HW, exo_unopt.schedule(w), 1, None, "exo-unopt", 1.0, 0, {"source": "test"})
    v = verify(big, timeout=0.5)
    assert not v.ok and "in time" in v.reason and "timeout" in v.reason


def test_issue17_deep_or_huge_json_is_skipped_not_a_crash(tmp_path, capsys):
    from autocomp_exo.cli import main
    from autocomp_exo.transfer import similar_records

    lib = Library(tmp_path / "lib")
    lib.add(rec(64, 64, 64, cycles=1000), verify=False)
    (tmp_path / "lib" / "deep.json").write_text("[" * 200000)
    d = rec(64, 128, 64).to_dict()
    d["schedule"] = "CURSOR"
    cur = '{"parent": ' * 985 + '"i"' + "}" * 985
    text = json.dumps(d).replace('"CURSOR"', '[{"op": "unroll_loop", "args": [%s], "kwargs": {}}]' % cur)
    (tmp_path / "lib" / "cursor.json").write_text(text)
    (tmp_path / "lib" / "big.json").write_text(" " * (5 * 1024 * 1024) + "{}")
    with pytest.warns(LibraryWarning) as ws:
        rs = lib.records()
    assert [r.name for r in rs] == ["gemm_64x64x64"]
    msgs = " ".join(str(w.message) for w in ws)
    assert "nested" in msgs and "bytes" in msgs
    with pytest.warns(LibraryWarning):
        assert similar_records(lib, GemmWorkload(128, 64, 64)) == rs
    assert main(["library", "list", "--library", str(lib.path)]) == 0
    assert "gemm_64x64x64" in capsys.readouterr().out


def test_issue17_directory_import_counts_skipped_files_and_needs_a_target(tmp_path, capsys, monkeypatch):
    from autocomp_exo.cli import main

    src = tmp_path / "src"
    Library(src).add(rec(64, 64, 64), verify=False)
    for i in range(5):
        (src / f"bad{i}.json").write_text("{not json")
    with pytest.warns(LibraryWarning):
        c = Library(tmp_path / "dst").import_(src)
    assert c == {"added": 1, "kept": 0, "skipped": 5}
    # `library import` without --library no longer writes into the shipped schedules/
    monkeypatch.delenv("AUTOCOMP_EXO_LIBRARY", raising=False)
    before = sorted(p.name for p in builtin().path.iterdir())
    assert main(["library", "import", str(src)]) == 2
    assert "--library" in capsys.readouterr().err
    assert sorted(p.name for p in builtin().path.iterdir()) == before


def test_issue17_cli_library_verify(tmp_path, small_record, capsys):
    from autocomp_exo.cli import main

    lib = Library(tmp_path)
    lib.add(small_record, verify=False)
    assert main(["library", "verify", "gemm", "64", "64", "64", "--library", str(tmp_path)]) == 0
    assert "ok" in capsys.readouterr().out
    lib.add(Record.from_dict({**small_record.to_dict(), "cycles": 10}), verify=False)
    assert main(["library", "verify", "--library", str(tmp_path)]) == 1
    assert "STALE" in capsys.readouterr().out
    assert main(["library", "verify", "gemm", "60", "64", "64", "--library", str(tmp_path)]) == 2


def test_issue17_result_of_a_search_from_a_mapped_proc_is_refused(tmp_path):
    """The issue's reproduction: `lib.add(result)` of a search started with
    ``baseline=<mapped proc>`` stored a record that does not replay on the workload."""
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.optimize import optimize

    w = GemmWorkload(64, 64, 64)
    mapped = exo_unopt.schedule(w).apply(w.proc)
    r = optimize(None, baseline=mapped, budget=2, beam=1, plans=2, impls=1, workers=1, recheck=0)
    assert r.schedule.steps and r.cycles <= r.baseline_cycles
    lib = Library(tmp_path)
    with pytest.raises(RecordError, match="does not replay"):
        lib.add(r)
    assert lib.records() == []
