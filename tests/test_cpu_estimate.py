"""The simulator's CPU estimate against the RISC-V instructions a gcc -O2 build
of the same C really executes (benchmarks/riscv_reference.py), kernel by kernel
(benchmarks/cpu_fidelity.py's corpus: examples/*.c, the 12544x256x64 anchor and
its guarded variant, a hand-unrolled kernel, and benchmarks/cpu_corpus/: Exo
baselines, search winners and the software library's loop, both dialects)."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import cpu_fidelity  # noqa: E402
import riscv_reference  # noqa: E402

WHY = riscv_reference.missing()
needs_toolchain = pytest.mark.skipif(WHY is not None, reason=f"RISC-V reference unavailable: {WHY}")

CORPUS = cpu_fidelity.corpus()


def test_corpus_is_broad():
    names = [k.name for k in CORPUS]
    assert len(names) >= 20
    for part in ("anchor_12544x256x64", "anchor_12544x256x64_guarded", "short_unrolled", "swlib_", "exo_unopt",
                 "exo_opt", "record_", "exo_matmul_64", "short_matmul"):
        assert any(part in n for n in names), part
    assert any(k.header is not None for k in CORPUS) and any(k.header is None for k in CORPUS)  # both dialects


def test_estimate_needs_no_toolchain():
    """The estimate is the simulator's own (search time needs no compiler)."""
    k = next(k for k in CORPUS if k.name == "short_matmul_64")
    r = cpu_fidelity.estimate(k)
    assert r.cpu_instructions > r.instructions["total"]  # RoCC commands plus their scalar code
    assert r.to_dict()["cpu_instructions"] == r.cpu_instructions


@needs_toolchain
@pytest.mark.parametrize("kern", CORPUS, ids=[k.name for k in CORPUS])
def test_estimate_within_15_percent(kern):
    r = cpu_fidelity.measure(kern)
    assert abs(r["error"]) <= cpu_fidelity.TOLERANCE, (
        f"{kern.name}: estimate {r['estimate']:,} vs {r['reference']:,} RISC-V instructions executed by the "
        f"gcc -O2 build ({100 * r['error']:+.1f}%, limit 15%)")


@needs_toolchain
def test_reference_counts_rocc_commands():
    """Each Gemmini command is one stand-in instruction: the reference sees as many
    RoCC instructions as the simulator issues commands (fence is a plain fence)."""
    k = next(k for k in CORPUS if k.name == "short_matmul_64")
    r = cpu_fidelity.measure(k)
    assert r["rocc"] == r["commands"] - 1
