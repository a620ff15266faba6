"""GEMM workloads: the algorithm proc, shapes, structural recognition."""
from __future__ import annotations

import dataclasses

import pytest
from exo import DRAM, proc
from exo.libs.externs import relu
from exo.platforms.gemmini import acc_scale, clamp  # noqa: F401  (used by @proc)

from autocomp_exo.workloads import GemmWorkload, WorkloadError, gemm, workload_of


# A user's own copy of the algorithm: every name differs from ours, and the
# parameters are called differently too.
@proc
def my_matmul(
    R: size,
    S: size,
    T: size,
    sc: f32,
    use_relu: bool,
    X: i8[R, T] @ DRAM,
    Y: i8[T, S] @ DRAM,
    Z: i8[R, S] @ DRAM,
):
    for row in seq(0, R):
        for col in seq(0, S):
            acc: i32 @ DRAM
            acc = 0.0
            for red in seq(0, T):
                x: i8 @ DRAM
                x = X[row, red]
                y: i8 @ DRAM
                y = Y[red, col]
                x32: i32
                y32: i32
                x32 = x
                y32 = y
                acc += x32 * y32
            t0: i32
            t0 = acc
            t1: f32
            acc_scale(t0, t1, sc)
            t2: i8
            clamp(t1, t2)
            if use_relu == True:
                t2 = relu(t2)
            Z[row, col] = t2


# Same parameters, different computation (B read transposed).
@proc
def not_a_gemm(
    R: size,
    S: size,
    T: size,
    sc: f32,
    use_relu: bool,
    X: i8[R, T] @ DRAM,
    Y: i8[T, S] @ DRAM,
    Z: i8[R, S] @ DRAM,
):
    assert S == T
    for row in seq(0, R):
        for col in seq(0, S):
            acc: i32 @ DRAM
            acc = 0.0
            for red in seq(0, T):
                x: i8 @ DRAM
                x = X[row, red]
                y: i8 @ DRAM
                y = Y[col, red]
                x32: i32
                y32: i32
                x32 = x
                y32 = y
                acc += x32 * y32
            t0: i32
            t0 = acc
            t1: f32
            acc_scale(t0, t1, sc)
            t2: i8
            clamp(t1, t2)
            if use_relu == True:
                t2 = relu(t2)
            Z[row, col] = t2


def test_gemm_proc_signature():
    p = gemm(32, 48, 64)
    assert p.name() == "gemm_32x48x64"
    args = [(a.name(), str(a.type())) for a in p.args()]
    names = [n for n, _ in args]
    assert names == ["scale", "act", "A", "B", "C"]
    text = str(p)
    assert "A: i8[32, 64]" in text and "B: i8[64, 48]" in text and "C: i8[32, 48]" in text
    assert "acc_scale(" in text and "clamp(" in text and "relu(" in text
    # the same object for the same shape (procs are cached)
    assert gemm(32, 48, 64) is p


@pytest.mark.parametrize("shape", [(60, 64, 64), (64, 8, 64), (64, 64, 100), (0, 16, 16), (-16, 16, 16)])
def test_unsupported_shapes_have_a_clear_error(shape):
    with pytest.raises(WorkloadError) as e:
        gemm(*shape)
    msg = str(e.value)
    assert "multiples of 16" in msg
    bad = [n for n, v in zip("MNK", shape) if v % 16 or v <= 0]
    assert all(f"{n}=" in msg for n in bad)
    with pytest.raises(WorkloadError):
        GemmWorkload(*shape)


def test_workload_dataclass():
    w = GemmWorkload(512, 256, 64)
    assert w.name == "gemm_512x256x64"
    assert GemmWorkload(512, 256, 64, relu=True).name == "gemm_512x256x64_relu"
    assert w.macs == 512 * 256 * 64
    sig = w.signature()
    assert sig["M"] == 512 and sig["N"] == 256 and sig["K"] == 64 and sig["relu"] is False
    assert GemmWorkload.from_signature(sig) == w
    assert hash(w) == hash(GemmWorkload(512, 256, 64))
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.M = 16
    assert w.proc is gemm(512, 256, 64)


def test_workload_of_recognizes_our_proc():
    assert workload_of(gemm(32, 48, 64)) == GemmWorkload(32, 48, 64)
    assert workload_of(gemm(32, 48, 64), relu=True) == GemmWorkload(32, 48, 64, True)


def test_workload_of_recognizes_a_renamed_copy():
    p = my_matmul.partial_eval(48, 32, 64)
    assert workload_of(p) == GemmWorkload(48, 32, 64)


def test_workload_of_rejects_a_different_proc():
    p = not_a_gemm.partial_eval(32, 32, 32)
    with pytest.raises(WorkloadError, match="not the supported GEMM algorithm"):
        workload_of(p)


def test_workload_of_rejects_symbolic_sizes_and_bad_shapes():
    with pytest.raises(WorkloadError, match="partial_eval"):
        workload_of(my_matmul)
    with pytest.raises(WorkloadError, match="multiples of 16"):
        workload_of(my_matmul.partial_eval(40, 32, 32))
    with pytest.raises(WorkloadError):
        workload_of("gemm")
