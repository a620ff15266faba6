"""An independent numpy reference of the GEMM semantics, and seeded inputs.

The semantics are those of Exo's Gemmini matmul apps (GEMMINI.md section 3,
``mvout`` from the accumulator):

1. ``acc = A @ B`` in int32 (int8 operands, int32 accumulation, wrap-around);
2. ``y = float32(acc) * float32(scale)`` (a float32 multiply);
3. round half to even, saturate to int8;
4. ``max(y, 0)`` if ``act`` (ReLU).

This module never touches the simulator: it is what the simulator's output is
checked against.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["gemm_reference", "clamp_reference", "requantize", "random_inputs", "pick_scale", "compare"]


def _dims(workload: Any) -> tuple[int, int, int, bool]:
    """(M, N, K, relu) of a workload object (anything with those attributes)."""
    return int(workload.M), int(workload.N), int(workload.K), bool(getattr(workload, "relu", False))


def matmul_i32(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """int32 A @ B of int8 matrices (wrapping like the accumulator would).

    Uses float64 BLAS when the result is provably exact (|acc| < 2^53),
    int64 otherwise; either way the result is the exact integer product,
    then wrapped to int32.
    """
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul shapes do not fit: {A.shape} x {B.shape}")
    K = A.shape[1]
    if K * 128 * 128 < 2**53:
        acc = (A.astype(np.float64) @ B.astype(np.float64)).astype(np.int64)
    else:  # pragma: no cover - absurdly large K
        acc = A.astype(np.int64) @ B.astype(np.int64)
    return acc.astype(np.int32)  # wrap-around modulo 2^32, as int32 accumulation


def requantize(acc: np.ndarray, scale: float, act: bool) -> np.ndarray:
    """int32 accumulator values -> int8 output: float32 scale, round-half-even, saturate, ReLU."""
    y = np.asarray(acc, dtype=np.int32).astype(np.float32) * np.float32(scale)
    y = np.rint(y)                      # round half to even (IEEE default)
    y = np.clip(y, -128, 127).astype(np.int8)
    if act:
        y = np.maximum(y, np.int8(0))
    return y


def gemm_reference(A: np.ndarray, B: np.ndarray, scale: float, act: bool = False) -> np.ndarray:
    """C = requantize(A @ B) for int8 A[M,K], B[K,N]: int8 C[M,N]."""
    A = np.asarray(A)
    B = np.asarray(B)
    if A.dtype != np.int8 or B.dtype != np.int8:
        raise TypeError(f"A and B must be int8, got {A.dtype} and {B.dtype}")
    return requantize(matmul_i32(A, B), scale, act)


def clamp_reference(A: np.ndarray, B: np.ndarray, relu: bool = False) -> np.ndarray:
    """C = saturate_int8(A @ B) (then max(C, 0) if ``relu``) for int8 A[M,K],
    B[K,N], with no scale: the exact integer product (int64), wrapped to
    int32 as the accumulator would, clipped to [-128, 127]."""
    A = np.asarray(A)
    B = np.asarray(B)
    if A.dtype != np.int8 or B.dtype != np.int8:
        raise TypeError(f"A and B must be int8, got {A.dtype} and {B.dtype}")
    acc = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)
    y = np.clip(acc, -128, 127).astype(np.int8)
    return np.maximum(y, np.int8(0)) if relu else y


def pick_scale(K: int) -> float:
    """A power-of-two scale for uniform int8 inputs with inner dimension K.

    A product of two uniform int8 values has a standard deviation of about
    128^2 / 3 ~ 5461; a sum of K of them about 5461 * sqrt(K). The scale
    brings that to about 48, so roughly 99 % of the outputs land strictly
    inside (-128, 127) and the output values still span the int8 range. A
    power of two is exact in float32, and makes exact rounding ties (a
    fractional part of exactly 1/2) occur regularly.
    """
    if K <= 0:
        raise ValueError(f"K must be positive, got {K}")
    target = math.sqrt(K) * (128.0 * 128.0 / 3.0) / 48.0
    return float(2.0 ** -max(0, round(math.log2(target))))


def random_inputs(workload: Any, seed: int = 0) -> dict:
    """Seeded inputs for a GEMM workload.

    Returns ``{"A": int8[M,K], "B": int8[K,N], "scale": float, "act": bool,
    "C_init": int8[M,N]}``: A and B uniform over the whole int8 range
    (-128..127), a power-of-two scale from `pick_scale`, ``act`` the
    workload's ReLU flag, and ``C_init`` random garbage to fill the output
    buffer with before a run (so unwritten outputs show up as mismatches).
    """
    M, N, K, relu = _dims(workload)
    rng = np.random.default_rng([int(seed), M, N, K])
    A = rng.integers(-128, 128, size=(M, K), dtype=np.int16).astype(np.int8)
    B = rng.integers(-128, 128, size=(K, N), dtype=np.int16).astype(np.int8)
    C_init = rng.integers(-128, 128, size=(M, N), dtype=np.int16).astype(np.int8)
    return {"A": A, "B": B, "scale": pick_scale(K), "act": relu, "C_init": C_init}


def compare(got: np.ndarray, want: np.ndarray) -> dict:
    """Bit-exact comparison: ``{"equal", "mismatches", "total", "first": (index, got, want) | None}``."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        got = got.reshape(want.shape) if got.size == want.size else got
    if got.shape != want.shape:
        return {"equal": False, "mismatches": int(want.size), "total": int(want.size),
                "first": None, "shape": (tuple(got.shape), tuple(want.shape))}
    bad = got != want
    n = int(np.count_nonzero(bad))
    first = None
    if n:
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        first = (idx, int(got[idx]), int(want[idx]))
    return {"equal": n == 0, "mismatches": n, "total": int(want.size), "first": first}
