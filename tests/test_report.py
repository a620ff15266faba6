"""`autocomp-exo report` and `optimize --report --json`: the PNGs exist and hold the
run's data (the plotted best-cycles series is checked against candidates.jsonl),
the HTML links them with the best schedule and its C, and with --json nothing
but one JSON object goes to stdout."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the report's plots need matplotlib (pip install -e '.[plots]')")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_stubs import run_stub_search  # noqa: E402

from autocomp_exo.cli import main  # noqa: E402
from autocomp_exo.report import PNGS, write_report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expected_series(run_dir: Path) -> tuple[list, list]:
    """Best correct cycles after each evaluated sample, straight from candidates.jsonl."""
    recs = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines() if line.strip()]
    ev = [r for r in recs if not r["key"].startswith("rejected:")]
    ev.sort(key=lambda r: (r["parent"] is not None, r["id"]))
    best, ys = None, []
    for r in ev:
        m = r["measurement"]
        if m.get("ok") and m.get("cycles") is not None:
            best = m["cycles"] if best is None else min(best, m["cycles"])
        ys.append(best)
    return list(range(len(ev))), ys


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real search of a 64x64x64 GEMM through the CLI, with --report and --json (in this
    process: one Exo warm-up for the search and the report's baselines)."""
    run_dir = tmp_path_factory.mktemp("run") / "r"
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["optimize", "gemm", "64", "64", "64", "--budget", "3", "--beam", "1", "--plans", "3",
                   "--impls", "1", "--workers", "0", "--run-dir", str(run_dir), "--report", "--json"])
    assert rc == 0, err.getvalue()
    return run_dir, out.getvalue(), err.getvalue()


def test_json_is_all_that_goes_to_stdout_and_the_bar_stays(real_run):
    run_dir, out, err = real_run
    d = json.loads(out)   # the whole of stdout is one JSON object
    assert out.strip().count("\n") == 0
    assert d["samples_used"] == 3 and d["cycles"] <= d["baseline_cycles"] and d["run_dir"] == str(run_dir)
    assert "cand" in err and "best" in err   # the progress bar (samples, best cycles, speedup) on stderr
    assert "report written to" in err


def test_report_files_hold_the_runs_data(real_run, tmp_path):
    run_dir, out, _ = real_run
    rep_dir = run_dir / "report"
    for name in PNGS:
        data = (rep_dir / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
    xs, ys = expected_series(run_dir)
    assert len(xs) == 4 and ys[0] == json.loads(out)["baseline_cycles"] and ys[-1] == json.loads(out)["cycles"]
    # the CSV the CLI wrote is the plotted series
    rows = (rep_dir / "best_cycles.csv").read_text().splitlines()
    assert rows[0] == "sample,best_cycles"
    assert [tuple(map(int, r.split(","))) for r in rows[1:]] == list(zip(xs, ys))
    # and the series as matplotlib drew it (read back from the line), drawn again into another directory
    rep = write_report(run_dir, tmp_path / "again", baselines=False, c_code=False)
    assert rep["series"]["samples"] == [float(x) for x in xs]
    assert rep["series"]["cycles"] == [float(y) for y in ys]
    counts = rep["counts"]
    assert sum(sum(v.values()) for v in counts.values()) == 3
    # baselines measured for the shape, and the ideal
    base = json.loads((rep_dir / "baselines.json").read_text())
    assert set(base["cycles"]) == {"swlib", "exo-unopt", "exo-opt", "fsm"}
    assert base["cycles"]["exo-unopt"] == ys[0]   # the search started from Exo's standard mapping


def test_report_html_links_pictures_schedule_and_c(real_run):
    run_dir, out, _ = real_run
    page = (run_dir / "report" / "index.html").read_text()
    for name in PNGS:
        assert f'src="{name}.png"' in page
    best = json.loads((run_dir / "best.json").read_text())
    assert f"{best['cycles']:,}" in page
    assert all(s["op"] in page for s in best["schedule"])
    assert "gemmini_extended" in page or "gemmini_" in page   # the best's C


def test_report_cli_on_a_stub_run_and_on_a_missing_run(tmp_path, capsys):
    run_stub_search(run_dir=tmp_path / "stub", workers=0, budget=10)
    rc = main(["report", str(tmp_path / "stub"), "--out", str(tmp_path / "out"), "--no-baselines", "--json"])
    o, e = capsys.readouterr()
    assert rc == 0, e
    files = json.loads(o)["files"]
    assert all(Path(files[k]).read_bytes().startswith(PNG_MAGIC) for k in PNGS)
    assert "Search report" in Path(files["html"]).read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_optimize_report_argument(real_run, tmp_path):
    import shutil

    import autocomp_exo as ax
    from search_stubs import StubAgent, fake_eval

    from autocomp_exo.optimize import optimize

    with pytest.raises(ValueError, match="run_dir"):
        optimize(ax.gemm(64, 64, 64), agent=StubAgent(), evaluate_fn=fake_eval, workers=0, budget=2, report=True)
    (tmp_path / "pictures").mkdir()   # the same shape's baselines, measured once (the report's cache)
    shutil.copy(real_run[0] / "report" / "baselines.json", tmp_path / "pictures" / "baselines.json")
    r = optimize(ax.gemm(64, 64, 64), agent=StubAgent(), evaluate_fn=fake_eval, workers=0, budget=4,
                 run_dir=str(tmp_path / "run"), report=str(tmp_path / "pictures"))
    assert r.samples_used == 4
    assert (tmp_path / "pictures" / "index.html").is_file()
    assert all((tmp_path / "pictures" / f"{k}.png").read_bytes().startswith(PNG_MAGIC) for k in PNGS)
