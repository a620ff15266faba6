"""The numpy GEMM reference against a plain-Python computation."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest

from autocomp_exo.reference import compare, gemm_reference, pick_scale, random_inputs, requantize


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 (round-half-even), via struct."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _py_requant(acc: int, scale: float, act: bool) -> int:
    # int32 wrap-around
    acc = (acc + 2**31) % 2**32 - 2**31
    # float32(acc) * float32(scale): the exact product of two 24-bit mantissas fits a double,
    # so one rounding to float32 afterwards is the float32 multiply.
    y = _f32(_f32(float(acc)) * _f32(scale))
    r = round(y)  # Python's round is half-to-even
    r = max(-128, min(127, r))
    if act:
        r = max(0, r)
    return r


def _py_gemm(A, B, scale, act):
    M, K = len(A), len(A[0])
    N = len(B[0])
    return [[_py_requant(sum(int(A[i][k]) * int(B[k][j]) for k in range(K)), scale, act)
             for j in range(N)] for i in range(M)]


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25, 2.0 ** -7, 0.3, 1.0 / 3.0, 0.0123])
@pytest.mark.parametrize("act", [False, True])
def test_random_small_against_python(scale, act):
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, size=(5, 7)).astype(np.int8)
    B = rng.integers(-128, 128, size=(7, 6)).astype(np.int8)
    want = np.array(_py_gemm(A.tolist(), B.tolist(), scale, act), dtype=np.int8)
    got = gemm_reference(A, B, scale, act)
    assert got.dtype == np.int8 and got.shape == (5, 6)
    np.testing.assert_array_equal(got, want)


def test_rounding_ties_to_even():
    acc = np.array([1, 3, 5, 7, -1, -3, -5, 2, -2, 9], dtype=np.int32)
    # x * 0.5: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, -0.5 -> 0, -1.5 -> -2, -2.5 -> -2, 1, -1, 4.5 -> 4
    want = np.array([0, 2, 2, 4, 0, -2, -2, 1, -1, 4], dtype=np.int8)
    np.testing.assert_array_equal(requantize(acc, 0.5, False), want)
    for a, w in zip(acc.tolist(), want.tolist()):
        assert _py_requant(a, 0.5, False) == w


def test_saturation_and_relu():
    acc = np.array([1000, -1000, 127, 128, -128, -129, 0, -1, 2**31 - 1, -(2**31)], dtype=np.int32)
    np.testing.assert_array_equal(
        requantize(acc, 1.0, False),
        np.array([127, -128, 127, 127, -128, -128, 0, -1, 127, -128], dtype=np.int8))
    np.testing.assert_array_equal(
        requantize(acc, 1.0, True),
        np.array([127, 0, 127, 127, 0, 0, 0, 0, 127, 0], dtype=np.int8))


def test_gemm_hits_ties_saturation_relu():
    # A 1 x 2 by 2 x 4 GEMM built to hit a tie, saturation both ways and ReLU.
    A = np.array([[127, -128]], dtype=np.int8)
    B = np.array([[1, 127, -128, 0], [0, -128, 127, 1]], dtype=np.int8)
    # acc = [127, 127*127 + 128*128, -127*128 - 128*127, -128]
    s = 0.5
    want = np.array([[_py_requant(int(a), s, False) for a in [127, 127 * 127 + 128 * 128,
                                                              -127 * 128 - 128 * 127, -128]]],
                    dtype=np.int8)
    np.testing.assert_array_equal(gemm_reference(A, B, s, False), want)
    assert want.tolist() == [[64, 127, -128, -64]]
    np.testing.assert_array_equal(gemm_reference(A, B, s, True), np.maximum(want, 0))


def test_int32_wraparound_matches_python():
    # K large enough that K * 128 * 128 overflows int32: the accumulator wraps.
    K = 2**31 // (128 * 128) + 8
    A = np.full((1, K), -128, dtype=np.int8)
    B = np.full((K, 1), -128, dtype=np.int8)
    acc = K * 128 * 128
    want = _py_requant(acc, 2.0 ** -20, False)
    assert gemm_reference(A, B, 2.0 ** -20, False)[0, 0] == want


def test_random_inputs_seeded_and_spread():
    w = SimpleNamespace(M=64, N=48, K=128, relu=True)
    a = random_inputs(w, seed=3)
    b = random_inputs(w, seed=3)
    c = random_inputs(w, seed=4)
    for key in ("A", "B", "C_init"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["A"], c["A"])
    assert a["A"].shape == (64, 128) and a["B"].shape == (128, 48) and a["C_init"].shape == (64, 48)
    assert a["A"].dtype == np.int8 and a["act"] is True
    assert a["A"].min() == -128 and a["A"].max() == 127
    s = a["scale"]
    assert s == 2.0 ** round(np.log2(s))  # a power of two, exact in float32
    out = gemm_reference(a["A"], a["B"], s, False)
    inside = np.mean((out > -128) & (out < 127))
    assert inside > 0.9
    assert len(np.unique(out)) > 150  # the outputs span the int8 range


@pytest.mark.parametrize("K", [16, 64, 256, 512, 1024, 2048])
def test_pick_scale_keeps_most_outputs_unsaturated(K):
    w = SimpleNamespace(M=32, N=32, K=K, relu=False)
    x = random_inputs(w, seed=0)
    out = gemm_reference(x["A"], x["B"], x["scale"], False)
    assert np.mean((out > -128) & (out < 127)) > 0.8
    assert pick_scale(K) <= 1.0


def test_compare_reports_first_mismatch():
    want = np.zeros((3, 4), dtype=np.int8)
    got = want.copy()
    assert compare(got, want)["equal"]
    got[1, 2] = 5
    got[2, 0] = -1
    r = compare(got, want)
    assert not r["equal"] and r["mismatches"] == 2 and r["first"] == ((1, 2), 5, 0)
