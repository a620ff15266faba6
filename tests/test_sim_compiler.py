"""Compiler details that the instruction tests do not reach: fused preload/compute
pairs, loop-invariant hoisting, scalars in memory cells, error positions."""
from __future__ import annotations

import numpy as np
import pytest

import sim

PAIR = """\
void f(int8_t A[16][16], int8_t B[16][16], int32_t C[16][16], int bad) {
  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);
  config_ld(16, 1.0f, 0);
  config_ld(16, 1.0f, 1);
  mvin(&A[0][0], 0, 16, 16);
  mvin2(&B[0][0], 16, 16, 16);
  preload(16, 1 << 31, 16, 16, 16, 16);
  compute_preloaded(bad ? 20000 : 0, ~((uint32_t)0), 16, 16, 16, 16);
  config_st(64);
  mvout(&C[0][0], (1 << 31) | (1 << 29), 16, 16);
  fence();
}
"""


def test_fused_pair_runs_and_errors_point_at_the_compute_line():
    rng = np.random.default_rng(0)
    A = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    B = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    C = np.zeros((16, 16), np.int32)
    prog = sim.compile_program(PAIR, "pair.c")
    assert "_m.block_pair(" in prog.python_source  # the pair became one machine call
    r = prog.run("f", {"A": A, "B": B, "C": C, "bad": 0})
    assert np.array_equal(C, A.astype(np.int32) @ B.astype(np.int32))
    assert r.instructions["preload"] == 1 and r.instructions["compute_preloaded"] == 1
    with pytest.raises(sim.LocalAddressError) as e:
        prog.run("f", {"A": A, "B": B, "C": C, "bad": 1})
    assert e.value.line == 8 and e.value.file == "pair.c" and "compute_preloaded" in str(e.value)


HOIST = """\
void f(int32_t out[64]) {
  int32_t base = 3;
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < 4; j++) {
      out[i * 16 + j * 4 + 0] = base * 100 + i * 10 + j;
      if (j == 2) {
        base = base + 1;      // base changes inside the j loop: not invariant there
      }
      out[i * 16 + j * 4 + 1] = base * 100 + i * 10;
    }
    uint32_t u = (uint32_t)(i - 2);   // wraps for i < 2
    for (int k = 0; k < 2; k++) {
      out[i * 16 + k * 4 + 2] = (int32_t)((u + k) / 2u);
      out[i * 16 + k * 4 + 3] = (int32_t)(((i * 32 + k * 16) / 16) + u % 7u);
    }
  }
}
"""


def _hoist_reference() -> np.ndarray:
    out = np.zeros(64, np.int64)
    base = 3
    for i in range(4):
        for j in range(4):
            out[i * 16 + j * 4 + 0] = base * 100 + i * 10 + j
            if j == 2:
                base += 1
            out[i * 16 + j * 4 + 1] = base * 100 + i * 10
        u = (i - 2) & 0xFFFFFFFF
        for k in range(2):
            out[i * 16 + k * 4 + 2] = ((u + k) & 0xFFFFFFFF) // 2  # < 2^31: fits int32
            v = ((i * 32 + k * 16) // 16 + u % 7) & 0xFFFFFFFF       # unsigned arithmetic
            out[i * 16 + k * 4 + 3] = v - (1 << 32) if v >= 1 << 31 else v
    return out.astype(np.int32)


def test_hoisting_respects_variables_changed_in_the_loop():
    out = np.zeros(64, np.int32)
    prog = sim.compile_program(HOIST, "hoist.c")
    assert "_h" in prog.python_source  # something was hoisted
    prog.run("f", {"out": out})
    assert np.array_equal(out, _hoist_reference())


def test_scalar_whose_address_is_taken_lives_in_memory():
    src = """
    static void bump(int32_t *p, int32_t by) { p[0] += by; *p = *p * 2; }
    void f(int32_t out[2]) {
      int32_t x = 5;
      bump(&x, 3);
      out[0] = x;
      int64_t y = -1;
      int64_t *q = &y;
      *q = *q - 1;
      out[1] = (int32_t)y;
    }
    """
    out = np.zeros(2, np.int32)
    sim.run(src, "f", {"out": out})
    assert out.tolist() == [16, -2]


def test_runtime_error_in_a_helper_names_the_helper_line():
    src = "static int32_t div(int32_t a, int32_t b) {\n  return a / b;\n}\nvoid f(int32_t out[1]) {\n  out[0] = div(7, 0);\n}\n"
    with pytest.raises(sim.RuntimeCError) as e:
        sim.run(src, "f", {"out": np.zeros(1, np.int32)}, filename="h.c")
    assert e.value.line == 2 and "division by zero" in str(e.value)
