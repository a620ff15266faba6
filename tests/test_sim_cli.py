"""`autocomp-exo sim`: arguments, random fill, --save, --json, and exit status 2 on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autocomp_exo.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHORT = ROOT / "examples" / "short_matmul_64.c"
EXO = ROOT / "examples" / "exo_matmul_64.c"


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_short_dialect_random_fill_json_and_save(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "sim", str(SHORT), "--entry", "solution", "--seed", "7", "--json",
                           "--save", str(tmp_path))
    assert rc == 0, err
    d = json.loads(out)
    assert d["cycles"] > 0 and d["instructions"]["preload"] == 64 and d["instructions"]["total"] == 157
    assert {"cpu", "load", "execute", "store"} <= set(d["units"])
    A, B, C = (np.load(tmp_path / f"{n}.npy") for n in "ABC")
    assert A.shape == (64, 64) and A.dtype == np.int8
    assert np.array_equal(C, np.clip(A.astype(np.int32) @ B.astype(np.int32), -128, 127).astype(np.int8))
    # the same seed fills the same inputs
    rc, out2, _ = run_cli(capsys, "sim", str(SHORT), "--entry", "solution", "--seed", "7", "--json")
    assert json.loads(out2)["cycles"] == d["cycles"]


def test_exo_dialect_with_npy_and_literal_args(capsys, tmp_path):
    rng = np.random.default_rng(3)
    A = rng.integers(-128, 128, (64, 64), dtype=np.int8)
    B = rng.integers(-128, 128, (64, 64), dtype=np.int8)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B.reshape(-1))  # any shape with the right element count
    np.save(tmp_path / "C.npy", np.zeros((64, 64), np.int8))
    out_dir = tmp_path / "out"
    rc, out, err = run_cli(capsys, "sim", str(EXO), "--entry", "matmul_64x64x64",
                           "--arg", f"A={tmp_path / 'A.npy'}", "--arg", f"B={tmp_path / 'B.npy'}",
                           "--arg", f"C={tmp_path / 'C.npy'}", "--arg", "scale=0.0078125", "--arg", "act=1",
                           "--save", str(out_dir))
    assert rc == 0, err
    assert "cycles" in out and "scratchpad rows" in out
    C = np.load(out_dir / "C.npy")
    ref = np.rint((A.astype(np.int32) @ B.astype(np.int32)).astype(np.float32) * np.float32(0.0078125))
    ref = np.maximum(np.clip(ref, -128, 127), 0).astype(np.int8)
    assert np.array_equal(C, ref)
    assert np.load(out_dir / "B.npy").shape == (4096,)  # saved in the shape it was given


@pytest.mark.parametrize("argv,needle", [
    (["--entry", "matmul_64x64x64"], "needs --arg scale"),
    (["--entry", "nope"], "no function 'nope'"),
    (["--entry", "matmul_64x64x64", "--arg", "zzz=1"], "no parameter 'zzz'"),
    (["--entry", "matmul_64x64x64", "--arg", "scale=abc"], "neither a number"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, needle):
    rc, out, err = run_cli(capsys, "sim", str(EXO), *argv)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1


def test_syntax_error_names_file_line_and_column(capsys, tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("void f(int8_t A[16][16]) {\n  int x = 1 +;\n}\n")
    rc, out, err = run_cli(capsys, "sim", str(bad), "--entry", "f")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    first = err.splitlines()[0]
    assert f"{bad}:2:" in first and "syntax error" in first


def test_missing_file(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "sim", str(tmp_path / "missing.c"), "--entry", "f")
    assert rc == 2 and "cannot read" in err


def test_console_script_help_and_exit_status():
    r = subprocess.run([sys.executable, "-m", "autocomp_exo.cli", "sim", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--entry" in r.stdout and "--save" in r.stdout
    r = subprocess.run([sys.executable, "-m", "autocomp_exo.cli", "sim", str(SHORT)], capture_output=True, text=True)
    assert r.returncode == 2 and "--entry" in r.stderr
