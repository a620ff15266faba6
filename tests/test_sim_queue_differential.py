"""Random instruction streams against a plain sequential model of the same
instructions: the simulator queues full-block computes and runs them batched,
so every interleaving of loads, overwrites, accumulations, kept weights and
stores must still give the results of running them one by one."""
from __future__ import annotations

import random

import numpy as np
import pytest

import sim

GARBAGE = 0xFFFFFFFF
SP_ROWS = 256   # the programs only touch the first rows (aligned and unaligned)
ACC_ROWS = 96


def random_program(seed: int, n: int = 120) -> tuple[str, list]:
    """C text and the same instruction list for the reference model."""
    r = random.Random(seed)
    ops, lines = [], []
    weights_loaded = False
    for _ in range(n):
        k = r.random()
        if k < 0.15:   # load a 16x16 block of X into the scratchpad
            src = r.randrange(0, 64 - 16 + 1)
            dst = r.choice([r.randrange(0, SP_ROWS - 16), 16 * r.randrange(SP_ROWS // 16)])
            ops.append(("mvin_sp", src, dst))
            lines.append(f"  mvin(&X[{src}][0], {dst}, 16, 16);")
        elif k < 0.22:  # load int32 rows into the accumulator (overwrite or accumulate)
            src = r.randrange(0, 64 - 16 + 1)
            dst = r.randrange(0, ACC_ROWS - 16)
            accum = r.random() < 0.5
            ops.append(("mvin_acc", src, dst, accum))
            flag = " | 0x40000000" if accum else ""
            lines.append(f"  mvin2(&Y[{src}][0], (1 << 31){flag} | {dst}, 16, 16);")
        elif k < 0.3:   # store raw int32 accumulator rows
            srow = r.randrange(0, ACC_ROWS - 16)
            slot = len([o for o in ops if o[0] == "mvout"])
            if slot >= 16:
                continue
            ops.append(("mvout", srow, slot))
            lines.append(f"  mvout(&Z[{slot * 16}][0], (1 << 31) | (1 << 29) | {srow}, 16, 16);")
        else:           # preload (+ compute)
            keep = weights_loaded and r.random() < 0.4
            b = GARBAGE if keep else r.choice([r.randrange(0, SP_ROWS - 16), 16 * r.randrange(SP_ROWS // 16)])
            c = r.choice([16 * r.randrange(ACC_ROWS // 16), r.randrange(0, ACC_ROWS - 16)])
            if r.random() < 0.1:
                c = GARBAGE
            accum = r.random() < 0.6
            a = r.choice([r.randrange(0, SP_ROWS - 16), 16 * r.randrange(SP_ROWS // 16)])
            pre = r.random() < 0.5
            weights_loaded = True
            ops.append(("pair", b, c, accum, a, pre))
            bc = "~((uint32_t)0)" if b == GARBAGE else str(b)
            cc = "~((uint32_t)0)" if c == GARBAGE else f"(1 << 31){' | 0x40000000' if accum else ''} | {c}"
            lines.append(f"  preload({bc}, {cc}, 16, 16, 16, 16);")
            fn = "compute_preloaded" if pre else "compute_accumulated"
            lines.append(f"  {fn}({a}, ~((uint32_t)0), 16, 16, 16, 16);")
    src = ("void f(int8_t X[64][16], int32_t Y[64][16], int32_t Z[256][16]) {\n"
           "  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);\n"
           "  config_ld(16, 1.0f, 0);\n  config_ld(64, 1.0f, 1);\n  config_st(64);\n"
           + "\n".join(lines) + "\n  fence();\n}\n")
    return src, ops


def reference(ops: list, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    sp = np.zeros((16384, 16), np.int64)
    acc = np.zeros((1024, 16), np.int64)
    Z = np.zeros((256, 16), np.int64)
    W = np.zeros((16, 16), np.int64)
    for op in ops:
        if op[0] == "mvin_sp":
            sp[op[2]:op[2] + 16] = X[op[1]:op[1] + 16]
        elif op[0] == "mvin_acc":
            v = Y[op[1]:op[1] + 16].astype(np.int64)
            acc[op[2]:op[2] + 16] = (acc[op[2]:op[2] + 16] + v) if op[3] else v
        elif op[0] == "mvout":
            Z[op[2] * 16:op[2] * 16 + 16] = acc[op[1]:op[1] + 16]
        else:
            _, b, c, accum, a, _ = op
            if b != GARBAGE:
                W = sp[b:b + 16].copy()
            res = sp[a:a + 16] @ W
            if c != GARBAGE:
                acc[c:c + 16] = (acc[c:c + 16] + res) if accum else res
        acc = ((acc + 2**31) % 2**32) - 2**31  # int32 wrap-around
    return Z.astype(np.int32)


@pytest.mark.parametrize("seed", range(25))
def test_random_streams_match_sequential_semantics(seed):
    src, ops = random_program(seed)
    rng = np.random.default_rng(seed)
    X = rng.integers(-128, 128, (64, 16), dtype=np.int8)
    Y = rng.integers(-2**31, 2**31, (64, 16), dtype=np.int64).astype(np.int32)
    Z = np.zeros((256, 16), np.int32)
    sim.run(src, "f", {"X": X, "Y": Y, "Z": Z})
    want = reference(ops, X, Y)
    assert np.array_equal(Z, want), f"{np.count_nonzero(Z != want)} values differ (seed {seed})"
