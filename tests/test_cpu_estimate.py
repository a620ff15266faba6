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

# Kernels the estimate misses by more than 15% today, with the mechanism it lacks
# (measured with Debian gcc 12.2 -O2). They stay in the corpus and are reported.
KNOWN_MISSES = {
    "swlib_64x64x64_2d": "+21%: gcc peels and threads the library's 4-iteration i/j/k nest (copies of the loop "
                         "per first iteration) beyond the first-iteration tests the estimate models",
    "swlib_64x64x64_flat": "+21%: same kernel as swlib_64x64x64_2d with flat arrays",
    "record_256x256x256": "-16%: its unrolled 8-iteration body keeps ~350 values on a >2 KiB stack frame; "
                          "spill slots past sp+2047 cost lui/addi/add per access, which the estimate "
                          "leaves out (it cannot tell which slots gcc reuses)",
}


def _cases():
    for k in CORPUS:
        marks = [pytest.mark.xfail(reason=KNOWN_MISSES[k.name], strict=False)] if k.name in KNOWN_MISSES else []
        yield pytest.param(k, marks=marks, id=k.name)


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
@pytest.mark.parametrize("kern", list(_cases()))
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
