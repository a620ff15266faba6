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


# --------------------------------------------------------------------------- #
# Issue 17: the int32 and the unscaled-clamp variants mapped onto Gemmini
# --------------------------------------------------------------------------- #


# int8 output clamped without a scale, in a user's names and parameter order
@proc
def user_clamp(P: size, Q: size, R: size, out: i8[P, Q] @ DRAM, lhs: i8[P, R] @ DRAM,
               rhs: i8[R, Q] @ DRAM):
    for r in seq(0, P):
        for c in seq(0, Q):
            s: i32 @ DRAM
            s = 0.0
            for t in seq(0, R):
                s += lhs[r, t] * rhs[t, c]
            o: i8 @ DRAM
            clamp(s, o)
            out[r, c] = relu(o)


def _sim_run(c_source: str, entry: str, args: dict) -> dict:
    import sim

    return sim.compile_program(c_source, filename="t.c").run(entry, args).arrays


@pytest.mark.parametrize("acc", [True, False])
def test_int32_matmul_mapping_is_bit_exact_with_wraparound(acc):
    """Exo's mapping with st_acc_i32 (raw int32 mvout) and, accumulating, ld_acc_i32;
    checked against numpy computed here, int32 wraparound included."""
    import numpy as np

    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.exo_compile import to_c
    from autocomp_exo.proc_facts import facts
    from autocomp_exo.workloads import MatmulI32Workload

    w = MatmulI32Workload(32, 48, 32, accumulate=acc)
    p = exo_unopt.schedule(w).apply(w.proc)
    roles = {c.name: c.role for c in facts(p).calls()}
    assert roles["st_acc_i32"] == "store" and roles.get("ld_acc_i32", "load") == "load", roles
    assert ("ld_acc_i32" in roles) == acc and ("do_zero_acc_i32" in roles) != acc
    c, entry = to_c(p)
    assert "| 0x20000000" in c      # the raw (int32) accumulator read
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, (32, 32)).astype(np.int8)
    B = rng.integers(-128, 128, (32, 48)).astype(np.int8)
    C0 = np.full((32, 48), 2**31 - 5, np.int32)          # near the top: C + A @ B wraps
    got = _sim_run(c, entry, {"A": A, "B": B, "C": C0.copy()})["C"].reshape(32, 48)
    exact = A.astype(np.int64) @ B.astype(np.int64) + (C0.astype(np.int64) if acc else 0)
    want = ((exact + 2**31) % 2**32 - 2**31).astype(np.int32)
    assert (got == want).all()
    if acc:
        assert (exact > 2**31 - 1).any()              # the wraparound was exercised
    m = evaluate(w, proc=p, seeds=[1, 2])
    assert m.ok and m.seeds == [0, 1, 2], m.error
    # the check can fail: the same program reading the accumulator scaled (not raw) mismatches
    from autocomp_exo.evaluate import evaluate_c

    bad = evaluate_c(w, c.replace("| 0x20000000", ""), entry)
    assert not bad.ok and bad.stage in ("mismatch", "simulate"), bad.error


def test_clamp_variant_is_recognised_mapped_and_bit_exact():
    import numpy as np

    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate, evaluate_c
    from autocomp_exo.exo_compile import to_c
    from autocomp_exo.reference import clamp_reference
    from autocomp_exo.workloads import MatmulClampWorkload, matmul_clamp, recognise

    rec = recognise(user_clamp.partial_eval(32, 16, 64))
    assert rec.workload == MatmulClampWorkload(32, 16, 64, relu=True)
    assert workload_of(matmul_clamp(32, 16, 64)) == MatmulClampWorkload(32, 16, 64, relu=False)
    # the reference, by hand: saturate to int8, then ReLU
    A = np.array([[100, -100], [1, 2]], np.int8)
    B = np.array([[100, 1], [-1, 1]], np.int8)
    assert clamp_reference(A, B).tolist() == [[127, 0], [98, 3]]
    assert clamp_reference(-A, B, relu=True).tolist() == [[0, 0], [0, 0]]
    for relu_ in (False, True):
        w = MatmulClampWorkload(32, 16, 64, relu=relu_)
        ins = [w.inputs(s) for s in range(4)]
        refs = [w.reference(i) for i in ins]
        top = [(r == 127).mean() for r in refs]
        assert min(top) < 0.1 and max(top) > 0.4           # unsaturated seeds and saturated ones
        m = evaluate(w, exo_unopt.schedule(w), seeds=[1, 2, 3])
        assert m.ok and m.seeds == [0, 1, 2, 3], m.error
    # the check can fail: the ReLU-less program on the ReLU workload mismatches
    plain = MatmulClampWorkload(32, 16, 64)
    c, entry = to_c(exo_unopt.schedule(plain).apply(plain.proc))
    bad = evaluate_c(MatmulClampWorkload(32, 16, 64, relu=True), c, entry,
                     seed=next(s for s in range(8) if (MatmulClampWorkload(32, 16, 64, True).reference(
                         MatmulClampWorkload(32, 16, 64, True).inputs(s)) == 0).mean() > 0.3))
    assert not bad.ok and bad.stage == "mismatch"


def test_a_workload_without_a_mapping_is_refused_by_name():
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.workloads import Workload

    class Elsewise(Workload):
        name = "x"
        dims = {"M": 16, "N": 16, "K": 16}
        macs = 1
        proc = None

        def signature(self):
            return {"kind": "elsewise"}

        def inputs(self, seed=0):
            return {}

        def reference(self, inputs):
            return None

    with pytest.raises(WorkloadError, match="no Gemmini mapping for a Elsewise"):
        exo_unopt.schedule(Elsewise())


def test_sim_reads_exo_window_literals():
    """Exo passes a window argument of an instruction's C as a compound literal
    (``((struct exo_win_2i32){ &C[..], { 64, 1 } }).strides[0]``)."""
    import sim
    from sim.errors import UnsupportedError

    src = ("void f(int32_t *p) { *((struct exo_win_1i32){ &p[3], { 1 } }).data = "
           "((struct exo_win_2i32){ &p[3], { 64, 1 } }).strides[0] * 4 "
           "+ ((struct exo_win_2i32){ &p[3], { 64, 1 } }).strides[1]; }\n")
    prog = sim.compile_program(src, filename="w.c")
    assert prog.run("f", {"p": __import__("numpy").zeros(8, "int32")}).arrays["p"].tolist() == \
        [0, 0, 0, 257, 0, 0, 0, 0]
    for bad in ("((struct exo_win_2i32){ &p[3], { 64, 1 } }).strides[2]",
                "((struct point){ 1, { 2, 3 } }).strides[0]",
                "((struct exo_win_2i32){ &p[3], { 64, 1 } }).size"):
        with pytest.raises(UnsupportedError):
            sim.compile_program(f"int f(int *p) {{ return {bad}; }}\n", filename="w.c")


def _optimized_matches_numpy(r, args: dict, out: str, want) -> None:
    """The winner's C, run here on our own inputs, leaves the numpy ``want`` in ``out``."""
    import numpy as np

    got = _sim_run(r.c_code, r.proc.name(), {k: np.array(v, copy=True) for k, v in args.items()})
    assert (got[out].reshape(want.shape) == want).all()


def test_optimize_user_int32_matmul_is_faster_and_bit_exact():
    """The issue: optimize refused the plain int32 matmul ("maps only the scaled int8 GEMM")."""
    import numpy as np

    from autocomp_exo.optimize import optimize
    from autocomp_exo.workloads import MatmulI32Workload

    user = plain_matmul.partial_eval(32, 32, 64)
    r = optimize(user, budget=1, beam=1, plans=1, impls=1, workers=0, recheck=1)
    assert r.workload == MatmulI32Workload(32, 32, 64, accumulate=True)
    assert r.cycles < r.baseline_cycles and r.speedup > 1.0
    assert r.proc.name() == "plain_matmul" and [str(a.name()) for a in r.proc.args()] == ["A", "B", "C"]
    rng = np.random.default_rng(7)
    A = rng.integers(-128, 128, (32, 64)).astype(np.int8)
    B = rng.integers(-128, 128, (64, 32)).astype(np.int8)
    C = rng.integers(-2**31, 2**31, (32, 32)).astype(np.int32)
    want = ((A.astype(np.int64) @ B.astype(np.int64) + C + 2**31) % 2**32 - 2**31).astype(np.int32)
    _optimized_matches_numpy(r, {"A": A, "B": B, "C": C}, "C", want)


def test_optimize_user_clamp_matmul_is_bit_exact():
    import numpy as np

    from autocomp_exo.optimize import optimize
    from autocomp_exo.workloads import MatmulClampWorkload

    r = optimize(user_clamp.partial_eval(32, 32, 64), budget=1, beam=1, plans=1, impls=1, workers=0, recheck=1)
    assert r.workload == MatmulClampWorkload(32, 32, 64, relu=True) and r.cycles <= r.baseline_cycles
    assert "st_acc_i8_clamp_relu" in str(r.proc) and r.proc.name() == "user_clamp"
    rng = np.random.default_rng(3)
    lhs = rng.integers(-4, 5, (32, 64)).astype(np.int8)
    rhs = rng.integers(-4, 5, (64, 32)).astype(np.int8)
    want = np.maximum(np.clip(lhs.astype(np.int64) @ rhs.astype(np.int64), -128, 127), 0).astype(np.int8)
    assert 0.2 < ((want > 0) & (want < 127)).mean()
    _optimized_matches_numpy(r, {"lhs": lhs, "rhs": rhs, "out": np.zeros((32, 32), np.int8)}, "out", want)


# --------------------------------------------------------------------------- #
# Issue 17: the clamp and int32 variants with staging temporaries, a float
# temporary, a run-time act flag (`proc_normal.inline_copies`)
# --------------------------------------------------------------------------- #


# the clamp without a scale, written with Exo's staging temporaries
@proc
def clamp_staged(P: size, Q: size, R: size, lhs: i8[P, R] @ DRAM, rhs: i8[R, Q] @ DRAM, out: i8[P, Q] @ DRAM):
    for r in seq(0, P):
        for c in seq(0, Q):
            s: i32 @ DRAM
            s = 0.0
            for t in seq(0, R):
                x: i8 @ DRAM
                x = lhs[r, t]
                y: i8 @ DRAM
                y = rhs[t, c]
                x2: i32
                y2: i32
                x2 = x
                y2 = y
                s += x2 * y2
            s2: i32
            s2 = s
            o: i8 @ DRAM
            clamp(s2, o)
            out[r, c] = o


# the clamp through a float temporary, then a fixed ReLU
@proc
def clamp_float_relu(M: size, N: size, K: size, C: i8[M, N] @ DRAM, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            acc: i32 @ DRAM
            acc = 0.0
            for k in seq(0, K):
                acc += A[i, k] * B[k, j]
            f: f32
            f = acc
            o: i8
            clamp(f, o)
            C[i, j] = relu(o)


# Exo's app without acc_scale: staging temporaries, a float temporary, ReLU when act
@proc
def app_no_scale(M: size, N: size, K: size, X: i8[M, K] @ DRAM, use_relu: bool, Y: i8[K, N] @ DRAM,
                 Z: i8[M, N] @ DRAM):
    for row in seq(0, M):
        for col in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for red in seq(0, K):
                a: i8 @ DRAM
                a = X[row, red]
                b: i8 @ DRAM
                b = Y[red, col]
                a2: i32
                b2: i32
                a2 = a
                b2 = b
                res += a2 * b2
            src_tmp: i32
            src_tmp = res
            t1: f32
            t1 = src_tmp
            t2: i8
            clamp(t1, t2)
            if use_relu == True:
                t2 = relu(t2)
            Z[row, col] = t2


# the int32 matmul with int8 staging temporaries
@proc
def i32_staged(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM, C: i32[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            for k in seq(0, K):
                a: i8 @ DRAM
                a = A[i, k]
                b: i8 @ DRAM
                b = B[k, j]
                C[i, j] += a * b


# not the clamp: the int32 sum is narrowed to int8 (wrapped) before the clamp
@proc
def clamp_narrowed(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM, C: i8[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            acc: i32 @ DRAM
            acc = 0.0
            for k in seq(0, K):
                acc += A[i, k] * B[k, j]
            n8: i8
            n8 = acc
            o: i8
            clamp(n8, o)
            C[i, j] = o


_TILE_I = [{"op": "divide_loop", "args": ["i", 16, ["io", "ii"]], "kwargs": {"perfect": True}, "menu": "tiling"},
           {"op": "reorder_loops", "args": ["ii j"], "menu": "reorder"}]


@pytest.mark.parametrize("name,want,names", [
    ("clamp_staged", dict(relu=False), {"i": "r", "j": "c", "k": "t", "res": "s", "tmp": "o"}),
    ("clamp_float_relu", dict(relu=True), {"i": "i", "res": "acc", "tmp": "o"}),
    ("app_no_scale", dict(act=True), {"act": "use_relu", "A": "X", "i": "row", "k": "red", "tmp": "t2"}),
    ("i32_staged", dict(kind="i32"), {"i": "i", "C": "C"}),
])
def test_issue17_variants_with_temporaries_come_back_in_user_names(name, want, names):
    """The issue: "the GEMM family ... with or without staging temporaries"; was:
    'statement `x: i8 @ DRAM` differs' (only `clamp(res, tmp)` as written was known)."""
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.workloads import MatmulClampWorkload, MatmulI32Workload, UserSchedule, recognise

    user = globals()[name].partial_eval(32, 16, 64)
    rec = recognise(user)
    expect = MatmulI32Workload(32, 16, 64) if want.get("kind") == "i32" else MatmulClampWorkload(32, 16, 64, **want)
    assert rec.workload == expect
    assert {k: rec.names[k] for k in names} == names
    # a schedule of the variant's proc applies to the user's proc, in the user's names
    mine = UserSchedule(_TILE_I).apply(user)
    assert str(mine) == str(rec.to_user(Schedule(_TILE_I).apply(rec.workload.proc)))
    assert mine.name() == name and [str(a.name()) for a in mine.args()] == [str(a.name()) for a in user.args()]
    assert f"for {names['i']}o in seq(0, 2)" in str(mine) and f"for {names['i']}i in seq(0, 16)" in str(mine)


def test_issue17_copy_temporaries_that_change_the_value_are_not_inlined():
    """A narrowing copy (the int32 sum wrapped to int8 before the clamp) is a
    different function: refused, naming the statement."""
    with pytest.raises(WorkloadError, match=r"statement `n8 = acc` differs from the expected `clamp\(res, tmp\)`"):
        workload_of(clamp_narrowed.partial_eval(32, 16, 64))
    from autocomp_exo.proc_normal import inline_copies

    # the float temporary is inlined only before Exo's clamp (saturation hides float32 rounding)
    text = str(__import__("exo.API", fromlist=["Procedure"]).Procedure(
        inline_copies(clamp_float_relu.partial_eval(32, 16, 64)._loopir_proc)))
    assert "clamp(acc, o)" in text and "f: f32" not in text
    kept = str(__import__("exo.API", fromlist=["Procedure"]).Procedure(
        inline_copies(clamp_narrowed.partial_eval(32, 16, 64)._loopir_proc)))
    assert "n8 = acc" in kept


def test_issue17_clamp_with_a_runtime_act_is_its_own_workload():
    """Its own signature, inputs (act drawn) and reference; the Gemmini mapping,
    bit-exact and a failing check: test_issue17.test_clamp_act_optimize_library_verify_and_transfer."""
    from autocomp_exo.reference import clamp_reference
    from autocomp_exo.workloads import MatmulClampWorkload, matmul_clamp

    w = MatmulClampWorkload(32, 16, 64, act=True)
    assert w.signature()["act"] is True and Workload_from(w.signature()) == w
    assert "act" not in MatmulClampWorkload(32, 16, 64).signature()      # older records keep their signature
    assert [a.name() for a in w.proc.args()] == ["act", "A", "B", "C"] and w.proc is matmul_clamp(32, 16, 64, act=True)
    ins = [w.inputs(s) for s in range(8)]
    assert {i["act"] for i in ins} == {True, False}
    for i in ins:
        assert (w.reference(i) == clamp_reference(i["A"], i["B"], relu=i["act"])).all()
    assert any(i["act"] and (w.reference(i) != MatmulClampWorkload(32, 16, 64).reference(i)).any() for i in ins)
    with pytest.raises(WorkloadError, match="no fixed ReLU"):
        MatmulClampWorkload(32, 16, 64, relu=True, act=True)


def Workload_from(sig):   # noqa: N802
    from autocomp_exo.workloads import Workload

    return Workload.from_signature(sig)
