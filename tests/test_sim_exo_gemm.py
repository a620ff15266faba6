"""Exo-generated Gemmini C for whole GEMMs, simulated bit-exactly.

The C is produced by calling Exo in the test (Exo's standard Gemmini mapping
as our Schedule data); the expected output is computed with numpy alone.
"""
from __future__ import annotations

import numpy as np
import pytest

import sim
from autocomp_exo.baselines import exo_unopt
from autocomp_exo.exo_compile import to_c
from autocomp_exo.workloads import GemmWorkload


def numpy_gemm(A: np.ndarray, B: np.ndarray, scale: float, relu: bool) -> np.ndarray:
    acc = A.astype(np.int64) @ B.astype(np.int64)  # exact, no wrap at these sizes
    y = np.rint(acc.astype(np.float32) * np.float32(scale))  # float32 scale, half to even
    y = np.clip(y, -128, 127)
    if relu:
        y = np.maximum(y, 0)
    return y.astype(np.int8)


@pytest.fixture(scope="module", params=[(64, 64, 64), (512, 512, 512)], ids=["64^3", "512^3"])
def exo_c(request):
    M, N, K = request.param
    w = GemmWorkload(M, N, K)
    proc = exo_unopt.schedule(w).apply(w.proc)
    c_src, entry = to_c(proc)
    return (M, N, K), c_src, entry


@pytest.mark.parametrize("seed,scale,act", [(0, 1 / 1024, False), (1, 1 / 4096, True), (2, 0.75 / 2048, False)])
def test_exo_gemm_bit_exact(exo_c, seed, scale, act):
    (M, N, K), c_src, entry = exo_c
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (M, K), dtype=np.int8)
    B = rng.integers(-128, 128, (K, N), dtype=np.int8)
    C = np.full((M, N), 99, np.int8)
    r = sim.run(c_src, entry, {"scale": scale, "act": act, "A": A, "B": B, "C": C}, filename=f"{entry}.c")
    ref = numpy_gemm(A, B, scale, act)
    assert np.array_equal(C, ref), f"{np.count_nonzero(C != ref)} of {C.size} elements differ"
    # the inputs were chosen so the output is neither all saturated nor all zero
    assert 0.05 < np.mean((C != 127) & (C != -128)) and np.count_nonzero(C) > C.size // 4


def test_exo_gemm_instruction_counts_and_report(exo_c):
    (M, N, K), c_src, entry = exo_c
    A = np.ones((M, K), np.int8)
    B = np.ones((K, N), np.int8)
    C = np.zeros((M, N), np.int8)
    r = sim.run(c_src, entry, {"scale": 1.0, "act": False, "A": A, "B": B, "C": C})
    assert np.all(C == min(K, 127))
    tiles = (M // 16) * (N // 64)
    blocks = (M // 16) * (N // 16) * (K // 16)
    ins = r.instructions
    assert ins["preload"] == blocks and ins["compute_preloaded"] == blocks
    # per 16x64 output tile: 4 zero-fills; per 64-wide k chunk one A mvin and four B mvins
    assert ins["mvin"] == tiles * 4 + tiles * (K // 64) * 5
    assert ins["mvout"] == tiles * 4
    assert ins["total"] == sum(v for k, v in ins.items() if k != "total")
    assert r.cycles >= blocks * 16  # never faster than the array itself
    assert 0 < r.utilization(M * N * K) <= 1.0
    assert r.acc_rows_used == 64 * (N // 64) and r.sp_rows_used > 0
    assert r.dram_bytes["written"] == M * N
    assert set(r.units) >= {"cpu", "load", "execute", "store"}


@pytest.mark.parametrize("act", [False, True])
def test_exo_cpu_only_algorithm_runs_bit_exact(act):
    """The unscheduled algorithm: Exo's CPU-side C (static helpers such as
    _relu_int8_t, ACC_SCALE, scalars passed by address, `void *ctxt`)."""
    from autocomp_exo.workloads import gemm
    c_src, entry = to_c(gemm(16, 32, 48))
    rng = np.random.default_rng(5)
    A = rng.integers(-128, 128, (16, 48), dtype=np.int8)
    B = rng.integers(-128, 128, (48, 32), dtype=np.int8)
    C = np.zeros((16, 32), np.int8)
    r = sim.run(c_src, entry, {"scale": 1 / 256, "act": act, "A": A, "B": B, "C": C})
    assert np.array_equal(C, numpy_gemm(A, B, 1 / 256, act))
    assert r.instructions["total"] == 0 and r.cycles > 16 * 32 * 48  # scalar CPU work only
