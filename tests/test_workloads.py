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
    with pytest.raises(WorkloadError, match=r"statement `y = Y\[col, red\]` differs from the expected"):
        workload_of(p)


def test_workload_of_rejects_symbolic_sizes_and_bad_shapes():
    with pytest.raises(WorkloadError, match="partial_eval"):
        workload_of(my_matmul)
    with pytest.raises(WorkloadError, match="multiples of 16"):
        workload_of(my_matmul.partial_eval(40, 32, 32))
    with pytest.raises(WorkloadError):
        workload_of("gemm")


# --------------------------------------------------------------------------- #
# Issue 17: user procs in other parameter orders, without temporaries, int32
# --------------------------------------------------------------------------- #


# the same GEMM with its tensors before ``scale, act`` (the issue's first refusal)
@proc
def tensors_first(R: size, S: size, T: size, X: i8[R, T] @ DRAM, Y: i8[T, S] @ DRAM, Z: i8[R, S] @ DRAM,
                  sc: f32, use_relu: bool):
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


# the plain matmul a new Exo user writes (the issue: "has 3 parameters")
@proc
def plain_matmul(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM, C: i32[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            for k in seq(0, K):
                C[i, j] += A[i, k] * B[k, j]


@proc
def plain_matmul_zeroed(M: size, N: size, K: size, C: i32[M, N] @ DRAM, B: i8[K, N] @ DRAM,
                        A: i8[M, K] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            C[i, j] = 0.0
            for k in seq(0, K):
                C[i, j] += A[i, k] * B[k, j]


# the scaled GEMM without the a / b temporaries
@proc
def no_temps(M: size, N: size, K: size, s: f32, r: bool, P: i8[M, K] @ DRAM, Q: i8[K, N] @ DRAM,
             O: i8[M, N] @ DRAM):
    for m in seq(0, M):
        for n in seq(0, N):
            acc: i32 @ DRAM
            acc = 0.0
            for kk in seq(0, K):
                acc += P[m, kk] * Q[kk, n]
            f: f32
            acc_scale(acc, f, s)
            o: i8
            clamp(f, o)
            if r == True:
                o = relu(o)
            O[m, n] = o


# the int32 matmul with a bug: B read transposed
@proc
def plain_wrong(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[N, K] @ DRAM, C: i32[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            for k in seq(0, K):
                C[i, j] += A[i, k] * B[j, k]


def test_issue17_parameter_order_is_free():
    # reproduction: "parameter scale ... is not a 2-D tensor"; fixed: recognised
    w = workload_of(tensors_first.partial_eval(48, 32, 64))
    assert w == GemmWorkload(48, 32, 64)


def test_issue17_plain_int32_matmul_is_its_own_workload():
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.workloads import MatmulI32Workload

    w = workload_of(plain_matmul.partial_eval(32, 16, 16))
    assert w == MatmulI32Workload(32, 16, 16, accumulate=True)
    w0 = workload_of(plain_matmul_zeroed.partial_eval(32, 16, 16))
    assert w0 == MatmulI32Workload(32, 16, 16, accumulate=False)
    # its own independent reference: int32 output, C's old contents added (or not)
    inp = w.inputs(3)
    assert w.reference(inp).dtype.name == "int32"
    assert (w.reference(inp) - w0.reference(inp) == inp["C"]).all()
    # the algorithm proc runs on the simulator and matches that reference
    for x in (w, w0):
        m = evaluate(x, None, seed=5)
        assert m.ok, m.error


def test_issue17_no_staging_temporaries():
    assert workload_of(no_temps.partial_eval(64, 32, 16)) == GemmWorkload(64, 32, 16)


def test_issue17_rejection_names_the_statement():
    with pytest.raises(WorkloadError, match=r"statement `C\[i, j\] \+= A\[i, k\] \* B\[j, k\]`"):
        workload_of(plain_wrong.partial_eval(32, 32, 32))


def test_issue17_inputs_vary_with_the_seed():
    w = GemmWorkload(64, 64, 64)
    xs = [w.inputs(s) for s in range(16)]
    assert len({x["scale"] for x in xs}) > 2            # not one power-of-two scale
    assert {x["act"] for x in xs} == {True, False}       # act is drawn, not the workload's flag
    assert (xs[0]["A"] != xs[1]["A"]).any()
    assert (w.inputs(7)["A"] == w.inputs(7)["A"]).all()  # and reproducible


def test_issue17_user_names_come_back_and_the_schedule_applies_to_the_user_proc():
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.exo_compile import to_c
    from autocomp_exo.workloads import UserSchedule, recognise

    user = tensors_first.partial_eval(64, 64, 64)
    rec = recognise(user)
    w = rec.workload
    sched = exo_unopt.schedule(w)
    # reproduction: the plain schedule does not apply to the user's proc
    with pytest.raises(Exception, match="failed to find matches|find"):
        sched.apply(user)
    # fixed: results come back in the user's names, and the schedule applies to the user's proc
    mine = rec.to_user(sched.apply(w.proc))
    assert mine.name() == "tensors_first"
    assert [str(a.name()) for a in mine.args()] == ["X", "Y", "Z", "sc", "use_relu"]
    text = str(mine)
    assert "for row" in text and "for col" in text and "red" in text and " acc" in text
    for ours in ("for i ", "for j ", " A[", " B[", "scale"):
        assert ours not in text, ours
    us = UserSchedule(sched.steps)
    again = us.apply(user)
    assert str(again) == text
    assert str(us.apply(w.proc)) == str(sched.apply(w.proc))     # and still to ours
    c, entry = to_c(mine)
    assert entry == "tensors_first" and "const int8_t* X" in c
