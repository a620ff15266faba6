"""A wheel carries the shipped library and the examples: build it, install it into a
fresh venv, and use it from outside the checkout (`autocomp-exo library list`,
`autocomp-exo sim` on a shipped example)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _source_files() -> list[Path]:
    """The checkout's files (tracked and untracked, not ignored), or everything but build output."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout
        files = [ROOT / f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "dist", "__pycache__"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not (set(p.relative_to(ROOT).parts) & skip)]
    return [f for f in files if f.is_file()]


def _run(cmd, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.timeout(900)
def test_wheel_ships_library_and_examples_into_a_fresh_venv(tmp_path):
    # a copy of the checkout, so the build writes nothing into it
    src = tmp_path / "src"
    for f in _source_files():
        dest = src / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src], cwd=tmp_path)
    (whl,) = dist.glob("autocomp_exo-*.whl")

    names = zipfile.ZipFile(whl).namelist()
    shipped = sorted(p.name for p in (ROOT / "schedules").glob("*.json"))
    assert shipped and sorted(Path(n).name for n in names
                              if n.startswith("autocomp_exo/_shipped/schedules/") and n.endswith(".json")) == shipped
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.c"))
    assert sorted(Path(n).name for n in names if n.startswith("autocomp_exo/_shipped/examples/")) == examples
    assert "sim/gemmini_c.lark" in names
    meta = zipfile.ZipFile(whl).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: <3.13,>=3.9" in meta or "Requires-Python: >=3.9,<3.13" in meta

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", whl], cwd=tmp_path)

    work = tmp_path / "elsewhere"   # not the checkout: nothing can come from it
    work.mkdir()
    where = _run([py, "-c", "import autocomp_exo, autocomp_exo.shipped as s; "
                            "print(autocomp_exo.__file__); print(s.schedules_dir()); "
                            "print(s.example('short_matmul_64'))"], cwd=work).stdout.split()
    assert all(Path(p).resolve().is_relative_to(env_dir.resolve()) for p in where), where
    assert "_shipped" in where[1]

    listing = _run([bindir / "autocomp-exo", "library", "list"], cwd=work).stdout
    assert "gemm_512x512x512" in listing
    assert sum(line.startswith("gemm_") for line in listing.splitlines()) == len(shipped)

    out = _run([bindir / "autocomp-exo", "sim", where[2], "--entry", "solution", "--json"], cwd=work).stdout
    d = json.loads(out)
    assert d["cycles"] > 0 and d["instructions"]["preload"] == 64
