"""Functional semantics of every Gemmini instruction, bit-exact against numpy.

Written from the specification (``GEMMINI.md`` sections 1-3, ``EXO.md`` item 9),
not from the simulator. Every program is written once with the short-dialect
names and rendered into BOTH C dialects:

- ``short``: ``void solution(int8_t A[16][64], ...)`` with ``config_ld``,
  ``mvin``, ``preload``, ``&A[i][k]``, ...
- ``exo``: ``void kernel(kernel_Context *ctxt, const int8_t* A, ...)`` with
  ``gemmini_extended*`` names and flat addresses ``&A[(i) * (64) + (k)]``.

References are computed here with numpy; nothing is taken from ``sim``.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import sim

DIM = 16
DIALECTS = ["short", "exo"]
I8 = np.int8
I32 = np.int32

# --------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------


def sat8(x) -> np.ndarray:
    """Round half to even, then saturate to int8."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), -128, 127).astype(I8)


def f32_scale(x, scale: float) -> np.ndarray:
    """x * scale computed in float32 (the hardware's scale path)."""
    return np.asarray(x).astype(np.float32) * np.float32(scale)


def wrap32(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return (((x + 2**31) % 2**32) - 2**31).astype(I32)


def mm(a, b) -> np.ndarray:
    return np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)


def acc_to_i8(x, act: int = 0, scale: float = 1.0) -> np.ndarray:
    """mvout from the accumulator without bit 29: ReLU, scale (float32), RNE, saturate."""
    x = np.asarray(x, dtype=np.int64)
    if act:
        x = np.maximum(x, 0)
    return sat8(f32_scale(x, scale))


def rnd(rng, shape, lo=-128, hi=128, dtype=I8):
    return rng.integers(lo, hi, size=shape).astype(dtype)


# --------------------------------------------------------------------------
# rendering one program into both dialects
# --------------------------------------------------------------------------

_EXO_NAMES = {
    "mvin": "gemmini_extended_mvin",
    "mvin2": "gemmini_extended_mvin2",
    "mvin3": "gemmini_extended_mvin3",
    "preload": "gemmini_extended_preload",
    "compute_preloaded": "gemmini_extended_compute_preloaded",
    "compute_accumulated": "gemmini_extended_compute_accumulated",
    "mvout": "gemmini_extended_mvout",
    "fence": "gemmini_fence",
}
_CALL = re.compile(r"(?<![\w])(config_ld|config_ex|config_st|mvin2|mvin3|mvin|preload|"
                   r"compute_preloaded|compute_accumulated|mvout|fence)\s*\(")
_ADDR = re.compile(r"@(\w+)\[([^\[\]]+)\]\[([^\[\]]+)\]")
_ELEM = re.compile(r"\$(\w+)\[([^\[\]]+)\]\[([^\[\]]+)\]")


def _split_args(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += (ch in "([") - (ch in ")]")
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _exo_call(name: str, args: list[str]) -> str:
    if name == "config_ld":
        if len(args) == 4:
            s, sc, bs, i = args
            return f"gemmini_extended4_config_ld({s}, {sc}, false, {bs}, {i})"
        s, sc, i = args
        return f"gemmini_extended3_config_ld({s}, {sc}, 0, {i})"
    if name == "config_ex":
        df, act, ast, at, bt = args
        return f"gemmini_extended_config_ex({df}, {act}, 0, {ast}, {at}, {bt})"
    if name == "config_st":
        if len(args) == 1:
            return f"gemmini_config_st({args[0]})"
        return f"gemmini_extended_config_st({', '.join(args)})"
    return f"{_EXO_NAMES[name]}({', '.join(args)})"


def _rewrite_calls(body: str) -> str:
    out, pos = [], 0
    while True:
        m = _CALL.search(body, pos)
        if not m:
            out.append(body[pos:])
            return "".join(out)
        out.append(body[pos:m.start()])
        depth, i = 1, m.end()
        while depth:
            depth += (body[i] == "(") - (body[i] == ")")
            i += 1
        out.append(_exo_call(m.group(1), _split_args(body[m.end():i - 1])))
        pos = i


def render(body: str, params: dict[str, np.ndarray], dialect: str) -> tuple[str, str]:
    """(C source, entry name). `params` maps names to the numpy arrays (for types/shapes).

    In the body, ``@X[i][k]`` is the DRAM address of element (i, k) of 2-D array X;
    ``$X[i][k]`` is that element itself; ``ACC``, ``ACCUM``, ``RAW`` and ``GARB`` are uint32_t locals with bits 31, 30, 29
    and the garbage address.
    """
    ctype = {np.dtype(I8): "int8_t", np.dtype(I32): "int32_t"}
    if dialect == "short":
        sig = ", ".join(f"{ctype[a.dtype]} {n}" + "".join(f"[{d}]" for d in a.shape)
                        for n, a in params.items())
        prelude = ("  uint32_t ACC = 1 << 31;\n  uint32_t ACCUM = 1 << 30;\n"
                   "  uint32_t RAW = 1 << 29;\n  uint32_t GARB = ~((uint32_t)0);\n")
        text = _ADDR.sub(lambda m: f"&{m.group(1)}[{m.group(2)}][{m.group(3)}]", body)
        text = _ELEM.sub(lambda m: f"{m.group(1)}[{m.group(2)}][{m.group(3)}]", text)
        return f"void solution({sig}) {{\n{prelude}{text}\n}}\n", "solution"
    cols = {n: a.shape[-1] for n, a in params.items()}
    sig = ", ".join(["kernel_Context *ctxt"] + [f"{ctype[a.dtype]}* {n}" for n, a in params.items()])
    prelude = ("  uint32_t ACC = 0x80000000;\n  uint32_t ACCUM = 0x40000000;\n"
               "  uint32_t RAW = 0x20000000;\n  uint32_t GARB = ~((uint32_t)0);\n")
    text = _ADDR.sub(lambda m: f"&{m.group(1)}[({m.group(2)}) * ({cols[m.group(1)]}) + ({m.group(3)})]", body)
    text = _ELEM.sub(lambda m: f"{m.group(1)}[({m.group(2)}) * ({cols[m.group(1)]}) + ({m.group(3)})]", text)
    text = _rewrite_calls(text)
    head = '#include <include/gemmini.h>\n#include "gemm_malloc.h"\n\n'
    return f"{head}void kernel({sig}) {{\n{prelude}{text}\n}}\n", "kernel"


def run_both(body: str, arrays: dict[str, np.ndarray], dialect: str, **kw):
    """Render and run; arrays are modified in place (flat views are passed to Exo code)."""
    src, entry = render(body, arrays, dialect)
    args = {n: (a.reshape(-1) if dialect == "exo" else a) for n, a in arrays.items()}
    try:
        res = sim.run(src, entry, args, **kw)
    except sim.SimError as e:
        e.add_note("--- C source ---\n" + src)
        raise
    for n, a in arrays.items():
        assert np.shares_memory(args[n], a)
    return res


# --------------------------------------------------------------------------
# mvin / mvout through the scratchpad
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_mvout_scratchpad_roundtrip(dialect):
    rng = np.random.default_rng(1)
    A = rnd(rng, (16, 16))
    C = np.zeros((16, 16), I8)
    D = np.full((16, 16), -5, I8)
    body = """
  config_ld(16, 1.0, 0);
  config_st(16);
  mvin(@A[0][0], 0, 16, 16);
  mvout(@C[0][0], 0, 16, 16);
  mvin(@A[0][0], 100, 10, 7);
  mvout(@D[2][3], 100, 10, 7);
  fence();
"""
    res = run_both(body, {"A": A, "C": C, "D": D}, dialect)
    np.testing.assert_array_equal(C, A)
    want = np.full((16, 16), -5, I8)
    want[2:9, 3:13] = A[:7, :10]
    np.testing.assert_array_equal(D, want)
    # the result object exposes the same arrays
    np.testing.assert_array_equal(np.asarray(res.arrays["C"]).reshape(16, 16), A)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_dram_stride_in_bytes(dialect):
    rng = np.random.default_rng(2)
    A = rnd(rng, (40, 48))
    C = np.zeros((16, 16), I8)
    E = np.zeros((16, 16), I8)
    body = """
  config_ld(96, 1.0, 0);
  mvin(@A[3][5], 0, 16, 16);
  config_ld(48, 1.0, 0);
  mvin(@A[20][30], 16, 16, 16);
  config_st(16);
  mvout(@C[0][0], 0, 16, 16);
  mvout(@E[0][0], 16, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "C": C, "E": E}, dialect)
    np.testing.assert_array_equal(C, A[3:35:2, 5:21])  # stride 96 bytes = every other row
    np.testing.assert_array_equal(E, A[20:36, 30:46])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_wide_default_block_stride(dialect):
    """64 columns with the 3-argument config_ld: block b lands at local + r + 16*b."""
    rng = np.random.default_rng(3)
    A = rnd(rng, (16, 64))
    C = np.zeros((16, 64), I8)
    E = np.zeros((16, 64), I8)
    body = """
  config_ld(64, 1.0, 0);
  mvin(@A[0][0], 32, 64, 16);
  config_ld(64, 1.0, 16, 1);
  mvin2(@A[0][0], 512, 48, 16);
  config_st(64);
  for (int_fast32_t b = 0; b < 4; b++) {
    mvout(@C[0][16 * b], 32 + 16 * b, 16, 16);
  }
  for (int_fast32_t b = 0; b < 3; b++) {
    mvout(@E[0][16 * b], 512 + 16 * b, 16, 16);
  }
  fence();
"""
    run_both(body, {"A": A, "C": C, "E": E}, dialect)
    np.testing.assert_array_equal(C, A)
    np.testing.assert_array_equal(E[:, :48], A[:, :48])
    np.testing.assert_array_equal(E[:, 48:], 0)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_block_stride_not_dim(dialect):
    """4-argument config_ld with block_stride 40: column c of row r -> row local + r + (c/16)*40."""
    rng = np.random.default_rng(4)
    A = rnd(rng, (16, 64))
    C = np.full((16, 64), 7, I8)
    Z = np.full((32, 16), 99, I8)
    body = """
  config_ld(64, 1.0, 0);
  for (int_fast32_t r = 0; r < 12; r++) {
    mvin(0, 96 + 16 * r, 16, 16);
  }
  config_ld(64, 1.0, 40, 0);
  mvin(@A[0][0], 100, 64, 10);
  config_st(64);
  for (int_fast32_t b = 0; b < 4; b++) {
    mvout(@C[0][16 * b], 100 + 40 * b, 16, 10);
  }
  config_st(16);
  mvout(@Z[0][0], 110, 16, 16);
  mvout(@Z[16][0], 190, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "C": C, "Z": Z}, dialect)
    want = np.full((16, 64), 7, I8)
    want[:10] = A[:10]
    np.testing.assert_array_equal(C, want)
    # rows 110..125 and 190..205 lie in the gaps between blocks: still zero
    np.testing.assert_array_equal(Z, 0)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_zero_fill_with_dram_address_0(dialect):
    rng = np.random.default_rng(5)
    A = rnd(rng, (16, 16), 1, 100)
    X = rnd(rng, (16, 16), -10**9, 10**9, I32)
    C = np.zeros((16, 16), I8)
    E = np.zeros((16, 16), I8)
    O = np.zeros((16, 16), I32)
    body = """
  config_ld(16, 1.0, 0);
  mvin(@A[0][0], 200, 16, 16);
  mvin(0, 204, 16, 8);
  mvin(@A[0][0], 300, 16, 16);
  mvin(0, 302, 6, 3);
  config_ld(64, 1.0, 1);
  mvin2(@X[0][0], ACC | 32, 16, 16);
  mvin2(0, ACC | 36, 16, 4);
  config_st(16);
  mvout(@C[0][0], 200, 16, 16);
  mvout(@E[0][0], 300, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW | 32, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "X": X, "C": C, "E": E, "O": O}, dialect)
    want = A.copy()
    want[4:12] = 0
    np.testing.assert_array_equal(C, want)
    want = A.copy()
    want[2:5, :6] = 0  # only `cols` columns of each row are written
    np.testing.assert_array_equal(E, want)
    want = X.copy()
    want[4:8] = 0
    np.testing.assert_array_equal(O, want)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_stride0_broadcast(dialect):
    """Stride 0 repeats one DRAM row: an int32 bias row into the accumulator, an int8 row into the scratchpad."""
    rng = np.random.default_rng(6)
    bias = rnd(rng, (1, 16), -2**31, 2**31 - 1, I32)
    bias[0, 0], bias[0, 1] = 2**31 - 1, -2**31
    row = rnd(rng, (1, 16))
    O = np.zeros((16, 16), I32)
    C = np.zeros((16, 16), I8)
    body = """
  config_ld(0, 1.0, 0);
  mvin(@bias[0][0], ACC | 64, 16, 16);
  mvin(@row[0][0], 300, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW | 64, 16, 16);
  config_st(16);
  mvout(@C[0][0], 300, 16, 16);
  fence();
"""
    run_both(body, {"bias": bias, "row": row, "O": O, "C": C}, dialect)
    np.testing.assert_array_equal(O, np.repeat(bias, 16, axis=0))
    np.testing.assert_array_equal(C, np.repeat(row, 16, axis=0))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("scale", [0.5, 3.0, 0.25, -1.0, 0.3, 1.0])
def test_mvin_scale_round_half_even_saturate(dialect, scale):
    """round_half_even(float32(x) * float32(scale)), saturated to int8; other ids unaffected."""
    A = np.arange(-128, 128).astype(I8).reshape(16, 16)
    C = np.zeros((16, 16), I8)
    D = np.zeros((16, 16), I8)
    body = f"""
  config_ld(16, {scale!r}, 16, 0);
  config_ld(16, 1.0, 1);
  mvin(@A[0][0], 0, 16, 16);
  mvin2(@A[0][0], 16, 16, 16);
  config_st(16);
  mvout(@C[0][0], 0, 16, 16);
  mvout(@D[0][0], 16, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "C": C, "D": D}, dialect)
    want = sat8(f32_scale(A, scale))
    if scale == 0.5:  # spot checks of the rule itself
        assert want[(A == 1)][0] == 0 and want[(A == 3)][0] == 2 and want[(A == 5)][0] == 2
        assert want[(A == -3)][0] == -2 and want[(A == -1)][0] == 0
    if scale == 0.3:  # float32: 15 * 0.3f rounds to exactly 4.5 in float32 -> 4
        assert want[(A == 15)][0] == 4
    np.testing.assert_array_equal(C, want)
    np.testing.assert_array_equal(D, A)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_config_ld_ids_are_independent(dialect):
    """Each id (mvin, mvin2, mvin3) keeps its own stride, scale and block stride."""
    rng = np.random.default_rng(7)
    A = rnd(rng, (32, 64))
    O = np.zeros((56, 16), I8)
    body = """
  config_ld(32, 1.0, 16, 0);
  config_ld(16, 2.0, 20, 1);
  config_ld(64, 0.5, 24, 2);
  mvin3(@A[2][0], 200, 48, 8);
  mvin2(@A[1][0], 100, 32, 8);
  mvin(@A[0][0], 0, 32, 8);
  config_st(16);
  mvout(@O[0][0], 0, 16, 8);
  mvout(@O[8][0], 16, 16, 8);
  mvout(@O[16][0], 100, 16, 8);
  mvout(@O[24][0], 120, 16, 8);
  mvout(@O[32][0], 200, 16, 8);
  mvout(@O[40][0], 224, 16, 8);
  mvout(@O[48][0], 248, 16, 8);
  fence();
"""
    run_both(body, {"A": A, "O": O}, dialect)
    flat = A.reshape(-1)
    rows0 = np.stack([flat[32 * r:32 * r + 32] for r in range(8)])
    rows1 = sat8(f32_scale(np.stack([flat[64 + 16 * r:64 + 16 * r + 32] for r in range(8)]), 2.0))
    rows2 = sat8(f32_scale(np.stack([flat[128 + 64 * r:128 + 64 * r + 48] for r in range(8)]), 0.5))
    want = np.concatenate([rows0[:, :16], rows0[:, 16:], rows1[:, :16], rows1[:, 16:],
                           rows2[:, :16], rows2[:, 16:32], rows2[:, 32:]])
    np.testing.assert_array_equal(O, want)


# --------------------------------------------------------------------------
# mvin into the accumulator (int32, 4-byte elements)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvin_accumulator_overwrite_and_accumulate(dialect):
    rng = np.random.default_rng(8)
    X = rnd(rng, (16, 16), -2**29, 2**29, I32)
    Y = rnd(rng, (16, 16), -2**29, 2**29, I32)
    O1, O2, O3 = (np.zeros((16, 16), I32) for _ in range(3))
    body = """
  config_ld(64, 1.0, 0);
  mvin(@X[0][0], ACC | 0, 16, 16);
  mvin(@Y[0][0], ACC | ACCUM | 0, 16, 16);
  mvin(@X[0][0], ACC | 16, 16, 16);
  mvin(@Y[0][0], ACC | 16, 16, 16);
  mvin(@X[0][0], ACC | 40, 16, 16);
  mvin(@Y[2][3], ACC | ACCUM | 43, 5, 3);
  config_st(64);
  mvout(@O1[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O2[0][0], ACC | RAW | 16, 16, 16);
  mvout(@O3[0][0], ACC | RAW | 40, 16, 16);
  fence();
"""
    run_both(body, {"X": X, "Y": Y, "O1": O1, "O2": O2, "O3": O3}, dialect)
    np.testing.assert_array_equal(O1, X + Y)
    np.testing.assert_array_equal(O2, Y)
    want = X.copy()
    want[3:6, :5] += Y[2:5, 3:8]
    np.testing.assert_array_equal(O3, want)


# --------------------------------------------------------------------------
# preload / compute (weight-stationary)
# --------------------------------------------------------------------------

_LOAD_ABD = """
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(16, 1.0, 0);
  mvin(@A[0][0], 0, 16, 16);
  mvin(@B[0][0], 16, 16, 16);
  mvin(@D[0][0], 32, 16, 16);
"""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_matmul_full_tile_and_bias(dialect):
    rng = np.random.default_rng(9)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    O1, O2 = np.zeros((16, 16), I32), np.zeros((16, 16), I32)
    body = _LOAD_ABD + """
  preload(16, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(16, ACC | 16, 16, 16, 16, 16);
  compute_preloaded(0, 32, 16, 16, 16, 16);
  config_st(64);
  mvout(@O1[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O2[0][0], ACC | RAW | 16, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "O1": O1, "O2": O2}, dialect)
    np.testing.assert_array_equal(O1, mm(A, B))
    np.testing.assert_array_equal(O2, mm(A, B) + D)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_accumulate_bit_and_int32_wraparound(dialect):
    rng = np.random.default_rng(10)
    A = np.full((16, 16), 100, I8)
    A[8:] = -100
    B = rnd(rng, (16, 16), 90, 128)
    D = rnd(rng, (16, 16))
    X = np.empty((16, 16), I32)
    X[:8] = 2**31 - 1 - rng.integers(0, 1000, (8, 16))   # + positive products: wraps to negative
    X[8:] = -2**31 + rng.integers(0, 1000, (8, 16))      # + negative products: wraps to positive
    O1, O2, O3 = (np.zeros((16, 16), I32) for _ in range(3))
    body = _LOAD_ABD + """
  config_ld(64, 1.0, 1);
  mvin2(@X[0][0], ACC | 0, 16, 16);
  mvin2(@X[0][0], ACC | 16, 16, 16);
  mvin2(@X[0][0], ACC | 48, 16, 16);
  preload(16, ACC | ACCUM | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(16, ACC | 16, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(16, ACC | ACCUM | 48, 16, 16, 16, 16);
  compute_preloaded(0, 32, 16, 16, 16, 16);
  config_st(64);
  mvout(@O1[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O2[0][0], ACC | RAW | 16, 16, 16);
  mvout(@O3[0][0], ACC | RAW | 48, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "X": X, "O1": O1, "O2": O2, "O3": O3}, dialect)
    want = wrap32(X.astype(np.int64) + mm(A, B))
    assert (want[:8] < 0).all() and (want[8:] > 0).all()  # the reference really wraps
    np.testing.assert_array_equal(O1, want)
    np.testing.assert_array_equal(O2, mm(A, B))
    np.testing.assert_array_equal(O3, wrap32(X.astype(np.int64) + mm(A, B) + D))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_partial_rows_cols_zero_padded(dialect):
    """A 5x7, B 10x9 (rows/cols beyond are zeros, whatever the scratchpad holds),
    D 4x6; only C_rows x C_cols of the accumulator are written."""
    rng = np.random.default_rng(11)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    P = rnd(rng, (16, 16), -10**6, 10**6, I32)
    O1, O2 = np.zeros((16, 16), I32), np.zeros((16, 16), I32)
    body = _LOAD_ABD + """
  config_ld(64, 1.0, 1);
  mvin2(@P[0][0], ACC | 100, 16, 16);
  mvin2(@P[0][0], ACC | 200, 16, 16);
  preload(16, ACC | 100, 9, 10, 9, 5);
  compute_preloaded(0, 32, 7, 5, 6, 4);
  preload(16, ACC | 200, 9, 10, 4, 3);
  compute_preloaded(0, GARB, 7, 5, 16, 16);
  config_st(64);
  mvout(@O1[0][0], ACC | RAW | 100, 16, 16);
  mvout(@O2[0][0], ACC | RAW | 200, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "P": P, "O1": O1, "O2": O2}, dialect)
    Ap = np.zeros((16, 16), np.int64)
    Ap[:5, :7] = A[:5, :7]
    Bp = np.zeros((16, 16), np.int64)
    Bp[:10, :9] = B[:10, :9]
    Dp = np.zeros((16, 16), np.int64)
    Dp[:4, :6] = D[:4, :6]
    want = P.copy()
    want[:5, :9] = (Ap @ Bp + Dp)[:5, :9]
    np.testing.assert_array_equal(O1, want)
    want = P.copy()
    want[:3, :4] = (Ap @ Bp)[:3, :4]
    np.testing.assert_array_equal(O2, want)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_garbage_b_with_compute_accumulated_keeps_weights(dialect):
    rng = np.random.default_rng(12)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    A2 = rnd(rng, (16, 16))
    O = np.zeros((48, 16), I32)
    body = _LOAD_ABD + """
  mvin(@A2[0][0], 48, 16, 16);
  preload(16, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(GARB, ACC | 16, 16, 16, 16, 16);
  compute_accumulated(48, GARB, 16, 16, 16, 16);
  preload(GARB, ACC | 32, 16, 16, 16, 16);
  compute_accumulated(48, 32, 16, 16, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O[16][0], ACC | RAW | 16, 16, 16);
  mvout(@O[32][0], ACC | RAW | 32, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "A2": A2, "O": O}, dialect)
    np.testing.assert_array_equal(O[:16], mm(A, B))
    np.testing.assert_array_equal(O[16:32], mm(A2, B))
    np.testing.assert_array_equal(O[32:], mm(A2, B) + D)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_garbage_b_with_compute_preloaded_keeps_weights(dialect):
    """GEMMINI.md section 2/3, literally: 'as a preload's B in WS it means keep the current weights'."""
    rng = np.random.default_rng(13)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    A2 = rnd(rng, (16, 16))
    O = np.zeros((32, 16), I32)
    body = _LOAD_ABD + """
  mvin(@A2[0][0], 48, 16, 16);
  preload(16, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(GARB, ACC | 16, 16, 16, 16, 16);
  compute_preloaded(48, GARB, 16, 16, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O[16][0], ACC | RAW | 16, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "A2": A2, "O": O}, dialect)
    np.testing.assert_array_equal(O[:16], mm(A, B))
    np.testing.assert_array_equal(O[16:], mm(A2, B))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_garbage_c_discards_result_but_loads_weights(dialect):
    rng = np.random.default_rng(14)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    A2 = rnd(rng, (16, 16))
    O = np.full((32, 16), 5, I32)
    S = np.zeros((64, 16), I8)
    body = _LOAD_ABD + """
  mvin(@A2[0][0], 48, 16, 16);
  config_ld(64, 1.0, 1);
  mvin2(0, ACC | 0, 16, 16);
  mvin2(0, ACC | 16, 16, 16);
  preload(16, GARB, 16, 16, 16, 16);
  compute_preloaded(0, 32, 16, 16, 16, 16);
  preload(GARB, ACC | 16, 16, 16, 16, 16);
  compute_accumulated(48, GARB, 16, 16, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O[16][0], ACC | RAW | 16, 16, 16);
  config_st(16);
  for (int_fast32_t t = 0; t < 4; t++) {
    mvout(@S[16 * t][0], 16 * t, 16, 16);
  }
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "A2": A2, "O": O, "S": S}, dialect)
    np.testing.assert_array_equal(O[:16], 0)
    np.testing.assert_array_equal(O[16:], mm(A2, B))
    np.testing.assert_array_equal(S, np.concatenate([A, B, D, A2]))  # scratchpad untouched


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ws_result_into_scratchpad_saturates(dialect):
    rng = np.random.default_rng(15)
    A, B = rnd(rng, (16, 16), -12, 12), rnd(rng, (16, 16), -12, 12)
    D = rnd(rng, (16, 16))
    C1, C2 = np.zeros((16, 16), I8), np.zeros((16, 16), I8)
    body = _LOAD_ABD + """
  preload(16, 64, 16, 16, 16, 16);
  compute_preloaded(0, 32, 16, 16, 16, 16);
  preload(16, 80, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  config_st(16);
  mvout(@C1[0][0], 64, 16, 16);
  mvout(@C2[0][0], 80, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "C1": C1, "C2": C2}, dialect)
    want = mm(A, B) + D
    assert (want > 127).any() and (want < -128).any() and (np.abs(want) < 100).any()
    np.testing.assert_array_equal(C1, np.clip(want, -128, 127).astype(I8))
    np.testing.assert_array_equal(C2, np.clip(mm(A, B), -128, 127).astype(I8))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_config_ex_a_stride(dialect):
    """config_ex A_stride = 2: compute reads A row r at A + 2r."""
    rng = np.random.default_rng(16)
    A = rnd(rng, (32, 16))
    B = rnd(rng, (16, 16))
    O = np.zeros((16, 16), I32)
    body = """
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 2, false, false);
  config_ld(16, 1.0, 0);
  mvin(@A[0][0], 0, 16, 16);
  mvin(@A[16][0], 16, 16, 16);
  mvin(@B[0][0], 64, 16, 16);
  preload(64, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  config_st(64);
  mvout(@O[0][0], ACC | RAW, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "O": O}, dialect)
    np.testing.assert_array_equal(O, mm(A[::2], B))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_os_dataflow_matmul(dialect):
    """Output-stationary (gemmini.h convention, GEMMINI.md is thin here): preload(D, C) sets the
    initial partial sums (GARBAGE = zeros), compute_preloaded(A, B) -> C = A x B + D."""
    rng = np.random.default_rng(17)
    A, B, D = rnd(rng, (16, 16)), rnd(rng, (16, 16)), rnd(rng, (16, 16))
    O1, O2 = np.zeros((16, 16), I32), np.zeros((16, 16), I32)
    body = """
  config_ex(OUTPUT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(16, 1.0, 0);
  mvin(@A[0][0], 0, 16, 16);
  mvin(@B[0][0], 16, 16, 16);
  mvin(@D[0][0], 32, 16, 16);
  preload(GARB, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, 16, 16, 16, 16, 16);
  preload(32, ACC | 16, 16, 16, 16, 16);
  compute_preloaded(0, 16, 16, 16, 16, 16);
  config_st(64);
  mvout(@O1[0][0], ACC | RAW | 0, 16, 16);
  mvout(@O2[0][0], ACC | RAW | 16, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "O1": O1, "O2": O2}, dialect)
    np.testing.assert_array_equal(O1, mm(A, B))
    np.testing.assert_array_equal(O2, mm(A, B) + D)


# --------------------------------------------------------------------------
# mvout from the accumulator
# --------------------------------------------------------------------------

_FILL_ACC = """
  config_ld(64, 1.0, 0);
  for (int_fast32_t b = 0; b < 4; b++) {
    mvin(@X[16 * b][0], ACC | (128 + 16 * b), 16, 16);
  }
"""


def _acc_values(rng, lo=-600, hi=600):
    X = rnd(rng, (64, 16), lo, hi, I32)
    X[0, :8] = [2**31 - 1, -2**31, 2**30 + 1, -(2**30) - 3, 255, 257, -255, -257]
    X[1, :8] = [1, 3, 5, -1, -3, -5, 7, -7]
    # > 2^24: float32(x) drops the +1, so x * 2^-18 is exactly 100.5 -> 100 (float64 would say 101)
    X[2, :4] = [201 * 2**17 + 1, -(201 * 2**17 + 1), 203 * 2**17 + 1, 2**24 + 1]
    return X


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("act,scale", [(0, 1.0), (1, 1.0), (0, 0.5), (1, 0.5), (0, 0.3),
                                       (1, 0.0078125), (0, 3.0), (0, 2.0 ** -18), (1, 2.0 ** -18)])
def test_mvout_acc_relu_scale_round_half_even_saturate(dialect, act, scale):
    rng = np.random.default_rng(18)
    X = _acc_values(rng)
    C = np.zeros((16, 16), I8)
    body = _FILL_ACC + f"""
  config_st(16, {act}, {scale!r});
  mvout(@C[0][0], ACC | 128, 16, 16);
  fence();
"""
    run_both(body, {"X": X, "C": C}, dialect)
    want = acc_to_i8(X[:16], act, scale)
    if scale == 2.0 ** -18:
        assert want[2, 0] == 100 and want[2, 2] == 102 and want[2, 1] == (0 if act else -100)
    np.testing.assert_array_equal(C, want)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvout_acc_raw_int32_ignores_scale_and_relu(dialect):
    rng = np.random.default_rng(19)
    X = _acc_values(rng, -2**31, 2**31 - 1)
    O = np.zeros((16, 16), I32)
    O2 = np.full((16, 16), 3, I32)
    body = _FILL_ACC + """
  config_st(64, RELU, 0.5);
  mvout(@O[0][0], ACC | RAW | 144, 16, 16);
  mvout(@O2[1][2], ACC | RAW | 128, 9, 5);
  fence();
"""
    run_both(body, {"X": X, "O": O, "O2": O2}, dialect)
    np.testing.assert_array_equal(O, X[16:32])
    want = np.full((16, 16), 3, I32)
    want[1:6, 2:11] = X[:5, :9]
    np.testing.assert_array_equal(O2, want)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvout_acc_64_columns_in_blocks_of_16_rows(dialect):
    """Block b of a 64-column mvout is read from local + b*16 + r."""
    rng = np.random.default_rng(20)
    X = _acc_values(rng, -200, 200)
    W = np.zeros((16, 64), I8)
    W2 = np.full((16, 64), -9, I8)
    body = _FILL_ACC + """
  config_st(64, NO_ACTIVATION, 1.0);
  mvout(@W[0][0], ACC | 128, 64, 16);
  mvout(@W2[2][0], ACC | 128, 40, 10);
  fence();
"""
    run_both(body, {"X": X, "W": W, "W2": W2}, dialect)
    want = np.concatenate([acc_to_i8(X[16 * b:16 * b + 16]) for b in range(4)], axis=1)
    np.testing.assert_array_equal(W, want)
    want2 = np.full((16, 64), -9, I8)
    want2[2:12, :40] = want[:10, :40]
    np.testing.assert_array_equal(W2, want2)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mvout_dram_stride_in_bytes(dialect):
    rng = np.random.default_rng(21)
    X = _acc_values(rng, -100, 100)
    C = np.zeros((40, 20), I8)
    body = _FILL_ACC + """
  config_st(40);
  mvout(@C[1][3], ACC | 128, 16, 16);
  fence();
"""
    run_both(body, {"X": X, "C": C}, dialect)
    want = np.zeros((40, 20), I8)
    want[1:33:2, 3:19] = acc_to_i8(X[:16])   # 40 bytes = two rows of C
    np.testing.assert_array_equal(C, want)


# --------------------------------------------------------------------------
# allocators (EXO.md item 9: the intended meaning, not Exo's buggy C)
# --------------------------------------------------------------------------

def _run_exo(src, entry, args, **kw):
    try:
        return sim.run(src, entry, args, **kw)
    except sim.SimError as e:
        e.add_note("--- C source ---\n" + src)
        raise


_ALLOC_SRC = """
void alloc(alloc_Context *ctxt, int32_t* out) {
  int8_t *a = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * sizeof(int8_t)));
  int8_t *b = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 4 * 4 * sizeof(int8_t)));
  int8_t *c = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 2 * sizeof(int8_t)));
  int32_t *r = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * 4 * sizeof(int32_t)));
  int32_t *s = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * 2 * sizeof(int32_t)));
  int32_t *t = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
  out[0] = (uint32_t)((uint64_t)a);
  out[1] = (uint32_t)((uint64_t)b);
  out[2] = (uint32_t)((uint64_t)c);
  out[3] = (uint32_t)(r);
  out[4] = (uint32_t)(s);
  out[5] = (uint32_t)(t);
  gemm_free((uint64_t)(b));
  int8_t *d = (int8_t*) ((uint64_t)gemm_malloc (16 * 16 * 3 * sizeof(int8_t)));
  out[6] = (uint32_t)((uint64_t)d);
  gemm_acc_free((uint32_t)(s));
  int32_t *u = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
  out[7] = (uint32_t)(u);
  gemm_free((uint64_t)(a));
  gemm_free((uint64_t)(c));
  gemm_free((uint64_t)(d));
  gemm_acc_free((uint32_t)(r));
  gemm_acc_free((uint32_t)(t));
  gemm_acc_free((uint32_t)(u));
}
"""


def _disjoint(intervals):
    iv = sorted(intervals)
    return all(a_end <= b_start for (_, a_end), (b_start, _) in zip(iv, iv[1:]))


def test_gemm_malloc_live_buffers_never_overlap():
    out = np.zeros(8, I32)
    _run_exo(_ALLOC_SRC, "alloc", {"out": out})
    v = out.view(np.uint32).astype(np.int64)
    sp = {"a": (v[0], 16), "b": (v[1], 64), "c": (v[2], 32), "d": (v[6], 48)}
    for name, (start, rows) in sp.items():
        assert 0 <= start and start + rows <= 16384, (name, start)
        assert not start & 0x80000000
    # live at the same time: a, b, c; then a, c, d
    assert _disjoint([(sp[k][0], sp[k][0] + sp[k][1]) for k in "abc"])
    assert _disjoint([(sp[k][0], sp[k][0] + sp[k][1]) for k in "acd"])
    acc = {"r": (v[3], 64), "s": (v[4], 32), "t": (v[5], 16), "u": (v[7], 16)}
    for name, (addr, rows) in acc.items():
        assert addr & 0x80000000, (name, hex(addr))  # row | 0x80000000
        row = addr & 0x1FFFFFFF
        assert 0 <= row and row + rows <= 1024, (name, row)
    ivs = {k: ((a & 0x1FFFFFFF), (a & 0x1FFFFFFF) + n) for k, (a, n) in acc.items()}
    assert _disjoint([ivs[k] for k in "rst"])
    assert _disjoint([ivs[k] for k in "rtu"])


def test_gemm_acc_malloc_rows_are_bytes_over_64():
    """64 accumulator buffers of 16x16 int32 (1024 bytes = 16 rows) fill the 1024 rows exactly."""
    src = """
void fill(fill_Context *ctxt, int32_t* out) {
  for (int_fast32_t i = 0; i < 64; i++) {
    int32_t *r = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
    out[i] = (uint32_t)(r);
  }
}
"""
    out = np.zeros(64, I32)
    _run_exo(src, "fill", {"out": out})
    rows = np.sort(out.view(np.uint32).astype(np.int64) & 0x1FFFFFFF)
    np.testing.assert_array_equal(rows, np.arange(0, 1024, 16))


def test_gemm_malloc_whole_scratchpad_then_reuse_after_free():
    src = """
void whole(whole_Context *ctxt, int32_t* out) {
  for (int_fast32_t i = 0; i < 3; i++) {
    int8_t *a = (int8_t*) ((uint64_t)gemm_malloc (16384 * 16));
    out[i] = (uint32_t)((uint64_t)a);
    gemm_free((uint64_t)(a));
  }
  int32_t *r = (int32_t*) ((uint32_t)gemm_acc_malloc (1024 * 64));
  out[3] = (uint32_t)(r);
  gemm_acc_free((uint32_t)(r));
  r = (int32_t*) ((uint32_t)gemm_acc_malloc (1024 * 64));
  out[4] = (uint32_t)(r);
}
"""
    out = np.full(5, -1, I32)
    _run_exo(src, "whole", {"out": out})
    v = out.view(np.uint32)
    assert list(v[:3]) == [0, 0, 0]
    assert list(v[3:]) == [0x80000000, 0x80000000]


def test_gemm_malloc_buffers_hold_their_own_data():
    """Data written through distinct live buffers does not clobber each other."""
    rng = np.random.default_rng(22)
    A = rnd(rng, (64, 64))
    X = rnd(rng, (48, 16), -10**6, 10**6, I32)
    C = np.zeros((64, 64), I8)
    O = np.zeros((48, 16), I32)
    src = """
void bufs(bufs_Context *ctxt, const int8_t* A, const int32_t* X, int8_t* C, int32_t* O) {
  gemmini_extended3_config_ld((64), 1.0f, 0, 0);
  gemmini_extended3_config_ld((64), 1.0f, 0, 1);
  gemmini_config_st((64));
  int8_t *bufs0 = (int8_t*) ((uint64_t)gemm_malloc (16 * 64 * sizeof(int8_t)));
  int8_t *bufs1 = (int8_t*) ((uint64_t)gemm_malloc (16 * 64 * sizeof(int8_t)));
  int8_t *bufs2 = (int8_t*) ((uint64_t)gemm_malloc (16 * 64 * sizeof(int8_t)));
  int8_t *bufs3 = (int8_t*) ((uint64_t)gemm_malloc (16 * 64 * sizeof(int8_t)));
  int32_t *acc0 = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
  int32_t *acc1 = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
  int32_t *acc2 = (int32_t*) ((uint32_t)gemm_acc_malloc (16 * 16 * sizeof(int32_t)));
  gemmini_extended_mvin( &A[(0) * (64)], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs0)) + (0)/16))), 64, 16 );
  gemmini_extended_mvin( &A[(16) * (64)], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs1)) + (0)/16))), 64, 16 );
  gemmini_extended_mvin( &A[(32) * (64)], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs2)) + (0)/16))), 64, 16 );
  gemmini_extended_mvin( &A[(48) * (64)], ((uint64_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs3)) + (0)/16))), 64, 16 );
  gemmini_extended_mvin2( &X[(0) * (16)], ((uint64_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc0)) + (0)/16))), 16, 16 );
  gemmini_extended_mvin2( &X[(16) * (16)], ((uint64_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc1)) + (0)/16))), 16, 16 );
  gemmini_extended_mvin2( &X[(32) * (16)], ((uint64_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc2)) + (0)/16))), 16, 16 );
  for (int_fast32_t b = 0; b < 4; b++) {
    gemmini_extended_mvout( ((uint64_t) &C[(0) * (64) + 16 * b]), (uint32_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs0)) + (b * 256)/16)), (16), (16) );
    gemmini_extended_mvout( ((uint64_t) &C[(16) * (64) + 16 * b]), (uint32_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs1)) + (b * 256)/16)), (16), (16) );
    gemmini_extended_mvout( ((uint64_t) &C[(32) * (64) + 16 * b]), (uint32_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs2)) + (b * 256)/16)), (16), (16) );
    gemmini_extended_mvout( ((uint64_t) &C[(48) * (64) + 16 * b]), (uint32_t) &*(int8_t*)((uint64_t)( ((uint32_t)((uint64_t)bufs3)) + (b * 256)/16)), (16), (16) );
  }
  gemmini_config_st((64));
  gemmini_extended_mvout( ((uint64_t) &O[(0) * (16)]), (uint32_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc0)) + (0)/16)) | 0x20000000, (16), (16) );
  gemmini_extended_mvout( ((uint64_t) &O[(16) * (16)]), (uint32_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc1)) + (0)/16)) | 0x20000000, (16), (16) );
  gemmini_extended_mvout( ((uint64_t) &O[(32) * (16)]), (uint32_t) &*(int32_t*)((uint64_t)( ((uint32_t)((uint64_t)acc2)) + (0)/16)) | 0x20000000, (16), (16) );
  gemmini_fence();
  gemm_free((uint64_t)(bufs3));
  gemm_free((uint64_t)(bufs2));
  gemm_free((uint64_t)(bufs1));
  gemm_free((uint64_t)(bufs0));
  gemm_acc_free((uint32_t)(acc2));
  gemm_acc_free((uint32_t)(acc1));
  gemm_acc_free((uint32_t)(acc0));
}
"""
    _run_exo(src, "bufs", {"A": A, "X": X, "C": C, "O": O})
    np.testing.assert_array_equal(C, A)
    np.testing.assert_array_equal(O, X)


# --------------------------------------------------------------------------
# gemmini_loop_ws (the LOOP_WS hardware FSM)
# --------------------------------------------------------------------------


def _tiles(n):
    t = -(-n // DIM)
    return t, t * DIM - n


def _loop_ws_body(M, N, K, D, C, d_stride, full_c, act, c_stride_bytes, scale):
    I, pI = _tiles(M)
    J, pJ = _tiles(N)
    KK, pK = _tiles(K)
    dptr = "NULL" if D is None else "@D[0][0]"
    return f"""
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st({c_stride_bytes}, {act}, {scale!r});
  gemmini_loop_ws({I}, {J}, {KK}, {pI}, {pJ}, {pK}, @A[0][0], @B[0][0], {dptr}, @C[0][0],
                  {K}, {N}, {d_stride}, {N}, false, false, {full_c}, false, false, {act}, 1, 2, false);
  fence();
"""


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("M,N,K", [(30, 20, 24), (64, 64, 64), (16, 48, 80)])
def test_loop_ws_int8_output_no_bias(dialect, M, N, K):
    rng = np.random.default_rng(23)
    A, B = rnd(rng, (M, K), -20, 20), rnd(rng, (K, N), -20, 20)
    C = np.full((M, N), 3, I8)
    body = _loop_ws_body(M, N, K, None, C, 0, "false", 0, N, 1.0)
    run_both(body, {"A": A, "B": B, "C": C}, dialect)
    np.testing.assert_array_equal(C, acc_to_i8(mm(A, B)))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loop_ws_int8_output_relu_and_config_st_scale(dialect):
    """Scale for the FSM's stores comes from config_st (gemmini.h's convention); act from the call."""
    M, N, K = 30, 20, 24
    rng = np.random.default_rng(24)
    A, B = rnd(rng, (M, K)), rnd(rng, (K, N))
    C = np.zeros((M, N), I8)
    body = _loop_ws_body(M, N, K, None, C, 0, "false", 1, N, 0.0078125)
    run_both(body, {"A": A, "B": B, "C": C}, dialect)
    np.testing.assert_array_equal(C, acc_to_i8(mm(A, B), 1, 0.0078125))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loop_ws_broadcast_int32_bias_full_c(dialect):
    """D int32 with D_stride 0 (one row broadcast), full_C: raw int32 C = A x B + D."""
    M, N, K = 30, 20, 24
    rng = np.random.default_rng(25)
    A, B = rnd(rng, (M, K)), rnd(rng, (K, N))
    D = rnd(rng, (1, N), -10**6, 10**6, I32)
    C = np.zeros((M, N), I32)
    body = _loop_ws_body(M, N, K, D, C, 0, "true", 0, 4 * N, 1.0)
    run_both(body, {"A": A, "B": B, "D": D, "C": C}, dialect)
    np.testing.assert_array_equal(C, mm(A, B) + D)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loop_ws_full_int32_bias_int8_output(dialect):
    M, N, K = 40, 36, 48
    rng = np.random.default_rng(26)
    A, B = rnd(rng, (M, K), -16, 16), rnd(rng, (K, N), -16, 16)
    D = rnd(rng, (M, N), -300, 300, I32)
    C = np.zeros((M, N), I8)
    body = _loop_ws_body(M, N, K, D, C, N, "false", 0, N, 1.0)
    run_both(body, {"A": A, "B": B, "D": D, "C": C}, dialect)
    np.testing.assert_array_equal(C, acc_to_i8(mm(A, B) + D))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_program_order_hazards(dialect):
    """Instructions take effect in program order, whatever the simulator batches:
    overwriting A/B after a compute, B after its preload, zeroing or mvin-accumulating an
    accumulator tile right after a compute wrote it, reading a compute's scratchpad output as
    the next compute's A, and the CPU reading DRAM right after an mvout."""
    rng = np.random.default_rng(30)
    A, B, A2, B2 = (rnd(rng, (16, 16), -11, 11) for _ in range(4))
    X = rnd(rng, (16, 16), -10**5, 10**5, I32)
    O = np.zeros((96, 16), I32)
    S = np.zeros((1, 4), I32)
    body = """
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(16, 1.0, 0);
  config_ld(64, 1.0, 1);
  config_st(64);
  mvin2(0, ACC | 32, 16, 16);
  mvin2(0, ACC | 48, 16, 16);
  mvin(@A[0][0], 0, 16, 16);
  mvin(@B[0][0], 16, 16, 16);
  preload(16, ACC | 0, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  mvin(@A2[0][0], 0, 16, 16);
  mvin(@B2[0][0], 16, 16, 16);
  preload(16, ACC | 16, 16, 16, 16, 16);
  mvin(@B[0][0], 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(16, ACC | ACCUM | 32, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  mvin2(0, ACC | 32, 16, 16);
  preload(16, ACC | ACCUM | 48, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  mvin2(@X[0][0], ACC | ACCUM | 48, 16, 16);
  preload(16, ACC | 64, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  mvout(@O[64][0], ACC | RAW | 64, 16, 16);
  $S[0][0] = $O[64][5];
  $S[0][1] = $O[79][15] + 1;
  preload(16, 128, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  preload(16, ACC | 80, 16, 16, 16, 16);
  compute_preloaded(128, GARB, 16, 16, 16, 16);
  for (int_fast32_t t = 0; t < 4; t++) {
    mvout(@O[16 * t][0], ACC | RAW | (16 * t), 16, 16);
  }
  mvout(@O[80][0], ACC | RAW | 80, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "A2": A2, "B2": B2, "X": X, "O": O, "S": S}, dialect)
    a2b = mm(A2, B)
    np.testing.assert_array_equal(O[0:16], mm(A, B))
    np.testing.assert_array_equal(O[16:32], mm(A2, B2))   # weights read at preload time
    np.testing.assert_array_equal(O[32:48], 0)
    np.testing.assert_array_equal(O[48:64], a2b + X)
    np.testing.assert_array_equal(O[64:80], a2b)
    np.testing.assert_array_equal(O[80:96], mm(np.clip(a2b, -128, 127), B))
    assert S[0, 0] == a2b[0, 5] and S[0, 1] == a2b[15, 15] + 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loop_ws_low_d_int8_bias(dialect):
    """low_D: the bias D is int8 (D_stride in elements)."""
    M, N, K = 32, 32, 32
    rng = np.random.default_rng(31)
    A, B = rnd(rng, (M, K), -8, 8), rnd(rng, (K, N), -8, 8)
    D = rnd(rng, (M, N))
    C = np.zeros((M, N), I32)
    body = """
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(128, 0, 1.0);
  gemmini_loop_ws(2, 2, 2, 0, 0, 0, @A[0][0], @B[0][0], @D[0][0], @C[0][0],
                  32, 32, 32, 32, false, false, true, true, false, 0, 1, 2, false);
  fence();
"""
    run_both(body, {"A": A, "B": B, "D": D, "C": C}, dialect)
    np.testing.assert_array_equal(C, mm(A, B) + D)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loop_ws_consecutive_calls_and_mixed_with_manual_instructions(dialect):
    """Two FSM calls in a row (ping-ponging halves) and manual instructions afterwards."""
    rng = np.random.default_rng(32)
    A, B = rnd(rng, (48, 32), -9, 9), rnd(rng, (32, 48), -9, 9)
    A2, B2 = rnd(rng, (32, 64), -9, 9), rnd(rng, (64, 16), -9, 9)
    C = np.zeros((48, 48), I8)
    C2 = np.zeros((32, 16), I8)
    E = np.zeros((16, 16), I32)
    body = """
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_st(48, 0, 1.0);
  gemmini_loop_ws(3, 3, 2, 0, 0, 0, @A[0][0], @B[0][0], NULL, @C[0][0],
                  32, 48, 0, 48, false, false, false, false, false, 0, 1, 2, false);
  config_st(16, 0, 1.0);
  gemmini_loop_ws(2, 1, 4, 0, 0, 0, @A2[0][0], @B2[0][0], NULL, @C2[0][0],
                  64, 16, 0, 16, false, false, false, false, false, 0, 1, 2, false);
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(64, 1.0, 0);
  config_ld(16, 1.0, 1);
  mvin(@A2[0][0], 0, 16, 16);
  mvin2(@B2[0][0], 16, 16, 16);
  preload(16, ACC | 900, 16, 16, 16, 16);
  compute_preloaded(0, GARB, 16, 16, 16, 16);
  config_st(64, 0, 1.0);
  mvout(@E[0][0], ACC | RAW | 900, 16, 16);
  fence();
"""
    run_both(body, {"A": A, "B": B, "A2": A2, "B2": B2, "C": C, "C2": C2, "E": E}, dialect)
    np.testing.assert_array_equal(C, acc_to_i8(mm(A, B)))
    np.testing.assert_array_equal(C2, acc_to_i8(mm(A2, B2)))
    np.testing.assert_array_equal(E, mm(A2[:16, :16], B2[:16]))
