"""The software-library and loop-FSM baselines: tile heuristic, and bit-exact C."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from autocomp_exo.baselines import fsm, swlib
from autocomp_exo.reference import gemm_reference, random_inputs


@pytest.mark.parametrize("shape, tiles", [
    ((512, 512, 512), (5, 6, 32)),
    ((12544, 256, 64), (5, 6, 4)),
    ((12544, 64, 256), (8, 4, 16)),
    ((64, 64, 64), (4, 4, 4)),
    ((16, 16, 16), (1, 1, 1)),
    ((112, 112, 48), (5, 6, 3)),
    ((96, 80, 832), (5, 5, 51)),
])
def test_tile_heuristic(shape, tiles):
    assert swlib.tile_sizes(*shape) == tiles


@pytest.mark.parametrize("shape", [(512, 512, 512), (12544, 256, 64), (12544, 64, 256), (3136, 512, 128),
                                   (3136, 128, 512), (784, 1024, 256), (16, 4096, 16), (4096, 16, 4096)])
def test_tiles_fit_half_of_local_memories(shape):
    ti, tj, tk = swlib.tile_sizes(*shape)
    assert (ti * tk + tk * tj) * 16 <= 8192
    assert ti * tj * 16 <= 512
    t = swlib.tiling(*shape)
    M, N, K = shape
    assert (t.I0 - 1) * ti + t.last_I == M // 16 and 0 < t.last_I <= ti
    assert (t.J0 - 1) * tj + t.last_J == N // 16 and 0 < t.last_J <= tj
    assert (t.K0 - 1) * tk + t.last_K == K // 16 and 0 < t.last_K <= tk


def test_tiling_rejects_non_multiples():
    with pytest.raises(ValueError, match="multiples of 16"):
        swlib.tiling(100, 64, 64)


# 64^3 (one tile), 112x112x48 (last I and J tiles partial), 96x80x832 (two K tiles,
# the last one partial: exercises accumulation across tiles).
SHAPES = [(64, 64, 64, False), (112, 112, 48, True), (96, 80, 832, False)]


def _cases():
    return [pytest.param(*shape, arrays, id=f"{shape[0]}x{shape[1]}x{shape[2]}-{arrays}")
            for shape in SHAPES for arrays in ("flat", "2d")]


def _run(gen, M, N, K, relu, seed=0, arrays="flat"):
    sim = pytest.importorskip("sim")
    c, entry = gen.generate(SimpleNamespace(M=M, N=N, K=K), arrays=arrays)
    w = SimpleNamespace(M=M, N=N, K=K, relu=relu)
    x = random_inputs(w, seed)
    C = x["C_init"].copy()
    r = sim.run(c, entry, {"A": x["A"].copy(), "B": x["B"].copy(), "C": C,
                           "scale": np.array([x["scale"]], dtype=np.float32), "act": relu})
    want = gemm_reference(x["A"], x["B"], x["scale"], relu)
    got = np.asarray(r.arrays.get("C", C)).reshape(M, N)
    return r, got, want


@pytest.mark.parametrize("M, N, K, relu, arrays", _cases())
def test_swlib_bit_exact(M, N, K, relu, arrays):
    r, got, want = _run(swlib, M, N, K, relu, arrays=arrays)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} mismatches"
    t = swlib.tiling(M, N, K)
    n_blocks = (M // 16) * (N // 16) * (K // 16)
    ins = r.instructions
    assert ins.get("preload", 0) == n_blocks
    assert ins.get("compute_preloaded", 0) + ins.get("compute_accumulated", 0) == n_blocks
    # B is preloaded once per (k, j) block of each tile: computes with i == 0
    assert ins.get("compute_preloaded", 0) == t.I0 * (N // 16) * (K // 16)
    assert r.cycles > n_blocks * 16


@pytest.mark.parametrize("M, N, K, relu, arrays", _cases())
def test_fsm_bit_exact(M, N, K, relu, arrays):
    r, got, want = _run(fsm, M, N, K, relu, arrays=arrays)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} mismatches"
    assert r.cycles > (M * N * K) // 256


def test_fsm_faster_than_swlib():
    r_sw, _, _ = _run(swlib, 112, 112, 48, False)
    r_fsm, _, _ = _run(fsm, 112, 112, 48, False)
    assert r_fsm.cycles < r_sw.cycles


def test_generated_c_shape():
    c = swlib.c_source(512, 512, 512)
    assert "void swlib_gemm(const int8_t A[512][512], const int8_t B[512][512], int8_t C[512][512]," in c
    for name in ("gemmini_extended_config_ex", "gemmini_extended4_config_ld", "gemmini_extended_mvin(",
                 "gemmini_extended_mvin2(", "gemmini_extended_preload", "gemmini_extended_compute_preloaded",
                 "gemmini_extended_compute_accumulated", "gemmini_extended_config_st",
                 "gemmini_extended_mvout", "gemmini_fence", "1 << 31", "0x40000000", "~((uint32_t)0)"):
        assert name in c, name
    assert c.count("gemmini_extended_preload") == 1  # loops, not an unrolled list
    f = fsm.c_source(512, 512, 512)
    assert "gemmini_loop_ws(" in f and "gemmini_fence();" in f
    flat = swlib.c_source(512, 512, 512, arrays="flat")
    assert "void swlib_gemm(const int8_t* A, const int8_t* B, int8_t* C, const float* scale, bool act)" in flat
    assert "&A[((a_row + i) * 16) * 512 + (a_col + k) * 16]" in flat
    with pytest.raises(ValueError):
        swlib.c_source(64, 64, 64, arrays="3d")
