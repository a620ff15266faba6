"""GEMM workloads: the algorithm-level Exo proc and its recognition.

``gemm(M, N, K)`` is Exo's own Gemmini matmul app (int8 operands in DRAM,
int32 accumulation, ``acc_scale`` by a float32 scale, clamp to int8, ReLU
when the ``act`` argument is true) specialised to one shape with
``partial_eval``.  The proc is always built from the fixed algorithm below
(Exo's ``@proc`` reads the source of a real file), never from generated text.

``workload_of(proc)`` recognises a user's proc structurally as one of the
GEMM variants below, whatever its parameter order and names (proc, parameters,
loops, buffers): the Exo app form (`gemm`), the same without the staging
temporaries ``a``/``b``/``a2``/``b2``/``src_tmp``, and the plain int32 matmul
(``C: i32``, ``C[i, j] += A[i, k] * B[k, j]``, with or without ``C[i, j] = 0``
first), and the int8 matmul clamped without a scale (``clamp(res, tmp)``,
optionally ``C[i, j] = relu(tmp)``, or ``if act == True: tmp = relu(tmp)`` with
a run-time ``act``). Every variant is recognised with or without copy
temporaries (staging ``a = A[i, k]``, widening ``a2 = a``, ``src_tmp = res``,
a float ``f = res`` before ``clamp``): `proc_normal.inline_copies` inlines
them on both sides when the proc as written matches no form.
Each variant is a workload class with its own inputs and its own
independent numpy reference (``inputs(seed)``, ``reference(inputs)``).
A rejection names the first statement that differs from the closest form.

`recognise(proc)` also returns how the user's names map onto the variant's:
scheduling works on ``workload.proc`` (our names), and `Recognition.to_user`
renames a scheduled proc back (proc name, parameter names and order, loop and
buffer names); `UserSchedule` is a schedule that applies to the user's proc.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Optional

from exo import proc, DRAM
from exo.API import Procedure
from exo.platforms.gemmini import acc_scale, clamp  # noqa: F401  (used in @proc)
from exo.libs.externs import relu  # noqa: F401  (used in @proc)

from .workload_base import WORKLOAD_KINDS, Workload, WorkloadError

__all__ = [
    "DIM",
    "Workload",
    "WORKLOAD_KINDS",
    "WorkloadError",
    "GemmWorkload",
    "MatmulI32Workload",
    "MatmulClampWorkload",
    "gemm",
    "matmul_i32",
    "matmul_clamp",
    "workload_of",
    "recognise",
    "Recognition",
    "UserSchedule",
    "check_shape",
    "SUPPORTED",
    "ConvWorkload",
    "conv",
]

DIM = 16
SUPPORTED = (
    "GEMMs C[M,N] = clamp(scale * (A[M,K] @ B[K,N])) with int8 A, B, C, int32 "
    "accumulation and optional ReLU, where M, N and K are positive multiples "
    f"of {DIM} (the systolic array size); also without the staging temporaries, and the plain "
    "int32 matmul C[M,N] (+)= A[M,K] @ B[K,N], and int8 C[M,N] = clamp(A[M,K] @ B[K,N]) without a scale "
    "(optionally then ReLU, fixed or when a bool act is true); each with or without copy temporaries; "
    "parameters in any order, any names"
)


def _gemm_similarity(a: Any, b: Any) -> Optional[tuple]:
    """How GEMM ``b`` is similar to ``a``: None when not similar, else
    ``(rule, distance)``: rule 0 for the same shape, 1 for two shared
    dimensions, 2 for the same aspect ratio; distance is |log(volume ratio)|."""
    A = (int(a.M), int(a.N), int(a.K))
    B = (int(b.M), int(b.N), int(b.K))
    if A == B:
        return (0, 0.0)
    dist = abs(math.log((B[0] * B[1] * B[2]) / (A[0] * A[1] * A[2])))
    if sum(x == y for x, y in zip(A, B)) >= 2:
        return (1, dist)
    if A[0] * B[1] == B[0] * A[1] and A[0] * B[2] == B[0] * A[2]:
        return (2, dist)
    return None


# --------------------------------------------------------------------------- #
# The algorithm (Exo's Gemmini matmul app; sizes named as in C[M,N] = A[M,K] B[K,N])
# --------------------------------------------------------------------------- #


@proc
def _gemm_algorithm(
    M: size,
    N: size,
    K: size,
    scale: f32,
    act: bool,
    A: i8[M, K] @ DRAM,
    B: i8[K, N] @ DRAM,
    C: i8[M, N] @ DRAM,
):
    for i in seq(0, M):
        for j in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for k in seq(0, K):
                a: i8 @ DRAM
                a = A[i, k]
                b: i8 @ DRAM
                b = B[k, j]
                a2: i32
                b2: i32
                a2 = a
                b2 = b
                res += a2 * b2
            src_tmp: i32
            src_tmp = res
            tmp_res1: f32
            acc_scale(src_tmp, tmp_res1, scale)
            tmp_res2: i8
            clamp(tmp_res1, tmp_res2)
            if act == True:
                tmp_res2 = relu(tmp_res2)
            C[i, j] = tmp_res2


@proc
def _gemm_direct(
    M: size,
    N: size,
    K: size,
    scale: f32,
    act: bool,
    A: i8[M, K] @ DRAM,
    B: i8[K, N] @ DRAM,
    C: i8[M, N] @ DRAM,
):
    # the same function as _gemm_algorithm without the staging temporaries
    for i in seq(0, M):
        for j in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for k in seq(0, K):
                res += A[i, k] * B[k, j]
            tmp_res1: f32
            acc_scale(res, tmp_res1, scale)
            tmp_res2: i8
            clamp(tmp_res1, tmp_res2)
            if act == True:
                tmp_res2 = relu(tmp_res2)
            C[i, j] = tmp_res2


@proc
def _matmul_i32_acc(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM,
                    C: i32[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            for k in seq(0, K):
                C[i, j] += A[i, k] * B[k, j]


@proc
def _matmul_i32(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM,
                C: i32[M, N] @ DRAM):
    for i in seq(0, M):
        for j in seq(0, N):
            C[i, j] = 0.0
            for k in seq(0, K):
                C[i, j] += A[i, k] * B[k, j]


@proc
def _matmul_clamp(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM,
                  C: i8[M, N] @ DRAM):
    # int32 accumulation, then saturated to int8 without a scale
    for i in seq(0, M):
        for j in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for k in seq(0, K):
                res += A[i, k] * B[k, j]
            tmp: i8 @ DRAM
            clamp(res, tmp)
            C[i, j] = tmp


@proc
def _matmul_clamp_relu(M: size, N: size, K: size, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM,
                       C: i8[M, N] @ DRAM):
    # _matmul_clamp with a ReLU after the clamp
    for i in seq(0, M):
        for j in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for k in seq(0, K):
                res += A[i, k] * B[k, j]
            tmp: i8 @ DRAM
            clamp(res, tmp)
            C[i, j] = relu(tmp)


@proc
def _matmul_clamp_act(M: size, N: size, K: size, act: bool, A: i8[M, K] @ DRAM, B: i8[K, N] @ DRAM,
                      C: i8[M, N] @ DRAM):
    # _matmul_clamp with the ReLU chosen at run time (Exo's app: ``if act == True``)
    for i in seq(0, M):
        for j in seq(0, N):
            res: i32 @ DRAM
            res = 0.0
            for k in seq(0, K):
                res += A[i, k] * B[k, j]
            tmp: i8 @ DRAM
            clamp(res, tmp)
            if act == True:
                tmp = relu(tmp)
            C[i, j] = tmp


def check_shape(M: int, N: int, K: int) -> None:
    """Raise WorkloadError unless M, N, K are positive multiples of 16."""
    bad = [
        f"{n}={v!r}"
        for n, v in (("M", M), ("N", N), ("K", K))
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v % DIM
    ]
    if bad:
        raise WorkloadError(
            f"unsupported GEMM shape ({', '.join(bad)}): supported are {SUPPORTED}"
        )


@lru_cache(maxsize=64)
def _gemm_cached(M: int, N: int, K: int) -> Procedure:
    p = _gemm_algorithm.partial_eval(M, N, K)
    # rename is a checked Exo primitive; the name only affects C symbols
    from exo.stdlib.scheduling import rename

    return rename(p, f"gemm_{M}x{N}x{K}")


def gemm(M: int, N: int, K: int, relu: bool = False) -> Procedure:
    """The algorithm-level Exo proc for C[M,N] = A[M,K] x B[K,N].

    Signature: ``gemm_MxNxK(scale: f32, act: bool, A: i8[M,K], B: i8[K,N],
    C: i8[M,N])``.  ``relu`` does not change the proc: ReLU is applied at run
    time when ``act`` is true (it is recorded in the GemmWorkload).
    """
    check_shape(M, N, K)
    return _gemm_cached(M, N, K)


class _MatmulShape:
    """What the matmul-family workloads share: M, N, K (multiples of 16), MACs, dims."""

    M: int
    N: int
    K: int

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K

    @property
    def dims(self) -> dict:
        return {"M": self.M, "N": self.N, "K": self.K}

    def _check_shape(self) -> None:
        check_shape(self.M, self.N, self.K)
        if not isinstance(self.relu, bool):
            raise WorkloadError(f"relu must be a bool, got {self.relu!r}")


@dataclass(frozen=True)
class GemmWorkload(_MatmulShape, Workload):
    """The scaled int8 GEMM C = clamp(scale * A @ B) (ReLU when ``act``)."""

    kind: ClassVar[str] = "gemm"
    outputs: ClassVar[tuple] = ("C",)

    M: int
    N: int
    K: int
    relu: bool = False

    def __post_init__(self):
        self._check_shape()

    @property
    def name(self) -> str:
        return f"gemm_{self.M}x{self.N}x{self.K}" + ("_relu" if self.relu else "")

    @property
    def proc(self) -> Procedure:
        return gemm(self.M, self.N, self.K, self.relu)

    def similarity(self, other: Any) -> Optional[tuple]:
        """`_gemm_similarity` for another scaled GEMM (ReLU or not: the proc is the same)."""
        if not isinstance(other, GemmWorkload):
            return None
        return _gemm_similarity(self, other)

    def signature(self) -> dict:
        return {
            "kind": "gemm",
            "M": self.M,
            "N": self.N,
            "K": self.K,
            "relu": self.relu,
            "dtype": "int8",
            "acc": "int32",
        }

    @classmethod
    def from_signature(cls, sig: dict) -> "Workload":
        """`Workload.from_signature` (``GemmWorkload.from_signature`` of another kind is refused)."""
        if cls is GemmWorkload:
            return cls._from_signature(sig)
        return Workload.from_signature(sig)

    @classmethod
    def _from_signature(cls, sig: dict) -> "GemmWorkload":
        if sig.get("kind", "gemm") != "gemm":
            raise WorkloadError(f"not a GEMM signature: {sig!r}")
        if sig.get("acc", "int32") != "int32" or sig.get("dtype", "int8") != "int8":
            raise WorkloadError(f"not a scaled int8 GEMM signature: {sig!r}")
        return cls(int(sig["M"]), int(sig["N"]), int(sig["K"]), bool(sig.get("relu", False)))

    # -- inputs and the independent reference ------------------------------
    def inputs(self, seed: int = 0) -> dict:
        """Inputs drawn from ``seed``: A, B uniform int8, a scale around
        `reference.pick_scale` (a power of two, twice or half of it, or not a
        power of two at all), ``act`` true or false, and garbage in C (the output's
        initial contents), keyed by the proc's argument names."""
        import numpy as np

        from .reference import pick_scale

        rng = np.random.default_rng([int(seed), self.M, self.N, self.K, 8])
        A = rng.integers(-128, 128, size=(self.M, self.K), dtype=np.int16).astype(np.int8)
        B = rng.integers(-128, 128, size=(self.K, self.N), dtype=np.int16).astype(np.int8)
        C_init = rng.integers(-128, 128, size=(self.M, self.N), dtype=np.int16).astype(np.int8)
        base = pick_scale(self.K)
        kind = int(rng.integers(4))
        scale = (base, 2 * base, base / 2, float(np.float32(base * rng.uniform(0.6, 1.7))))[kind]
        return {"A": A, "B": B, "scale": float(np.float32(scale)), "act": bool(rng.integers(2)),
                "C": C_init}

    def reference(self, inputs: dict):
        from .reference import gemm_reference

        return gemm_reference(inputs["A"], inputs["B"], inputs["scale"], inputs["act"])


@dataclass(frozen=True)
class MatmulI32Workload(_MatmulShape, Workload):
    """The plain matmul a new Exo user writes: ``C: i32[M,N]``,
    ``C[i, j] += A[i, k] * B[k, j]`` with int8 A, B (``accumulate``: into C's
    old contents; otherwise C is zeroed first). No scale, no clamp."""

    kind: ClassVar[str] = "matmul_i32"
    outputs: ClassVar[tuple] = ("C",)

    M: int
    N: int
    K: int
    accumulate: bool = True
    relu: bool = False   # (no ReLU in this variant; kept for the common fields)

    def __post_init__(self):
        check_shape(self.M, self.N, self.K)
        if self.relu:
            raise WorkloadError("the int32 matmul has no ReLU")

    @property
    def name(self) -> str:
        return f"matmul_i32_{self.M}x{self.N}x{self.K}" + ("_acc" if self.accumulate else "")

    @property
    def proc(self) -> Procedure:
        return _matmul_cached(self.M, self.N, self.K, self.accumulate)

    def similarity(self, other: Any) -> Optional[tuple]:
        if not isinstance(other, MatmulI32Workload) or other.accumulate != self.accumulate:
            return None
        return _gemm_similarity(self, other)

    @classmethod
    def _from_signature(cls, sig: dict) -> "MatmulI32Workload":
        return cls(int(sig["M"]), int(sig["N"]), int(sig["K"]), bool(sig.get("accumulate", True)))

    def signature(self) -> dict:
        return {"kind": "matmul_i32", "M": self.M, "N": self.N, "K": self.K, "relu": False, "dtype": "int8",
                "acc": "int32", "accumulate": self.accumulate}

    def inputs(self, seed: int = 0) -> dict:
        import numpy as np

        rng = np.random.default_rng([int(seed), self.M, self.N, self.K, 32])
        A = rng.integers(-128, 128, size=(self.M, self.K), dtype=np.int16).astype(np.int8)
        B = rng.integers(-128, 128, size=(self.K, self.N), dtype=np.int16).astype(np.int8)
        C_init = rng.integers(-2**31, 2**31, size=(self.M, self.N), dtype=np.int64).astype(np.int32)
        return {"A": A, "B": B, "C": C_init}

    def reference(self, inputs: dict):
        """Exact integer products summed in int64, then wrapped to int32 (as the accumulator)."""
        import numpy as np

        acc = inputs["A"].astype(np.int64) @ inputs["B"].astype(np.int64)
        if self.accumulate:
            acc = acc + inputs["C"].astype(np.int64)
        return acc.astype(np.int32)


@lru_cache(maxsize=16)
def _matmul_cached(M: int, N: int, K: int, accumulate: bool) -> Procedure:
    from exo.stdlib.scheduling import rename

    p = (_matmul_i32_acc if accumulate else _matmul_i32).partial_eval(M, N, K)
    return rename(p, f"matmul_i32_{M}x{N}x{K}" + ("_acc" if accumulate else ""))


def matmul_i32(M: int, N: int, K: int, accumulate: bool = True) -> Procedure:
    """The algorithm-level proc of `MatmulI32Workload` (``(A, B, C)``)."""
    check_shape(M, N, K)
    return _matmul_cached(M, N, K, accumulate)


@dataclass(frozen=True)
class MatmulClampWorkload(_MatmulShape, Workload):
    """int8 A @ B accumulated in int32 and saturated to int8 with no scale:
    ``clamp(res, tmp); C[i, j] = tmp`` (``relu``: ``C[i, j] = relu(tmp)``,
    the ReLU part of the algorithm). ``act``: the proc has a run-time
    ``act: bool`` parameter and applies the ReLU when it is true (``if act ==
    True: tmp = relu(tmp)``, as Exo's app does), so ``relu`` stays False."""

    kind: ClassVar[str] = "matmul_clamp_i8"
    outputs: ClassVar[tuple] = ("C",)

    M: int
    N: int
    K: int
    relu: bool = False
    act: bool = False

    def __post_init__(self):
        self._check_shape()
        if not isinstance(self.act, bool):
            raise WorkloadError(f"act must be a bool, got {self.act!r}")
        if self.act and self.relu:
            raise WorkloadError("a clamped matmul with a run-time act flag has no fixed ReLU (relu=False)")

    @property
    def name(self) -> str:
        return f"matmul_clamp_{self.M}x{self.N}x{self.K}" + ("_relu" if self.relu else "") + \
            ("_act" if self.act else "")

    @property
    def proc(self) -> Procedure:
        return _clamp_cached(self.M, self.N, self.K, self.relu, self.act)

    def similarity(self, other: Any) -> Optional[tuple]:
        if not isinstance(other, MatmulClampWorkload) or (other.relu, other.act) != (self.relu, self.act):
            return None
        return _gemm_similarity(self, other)

    @classmethod
    def _from_signature(cls, sig: dict) -> "MatmulClampWorkload":
        return cls(int(sig["M"]), int(sig["N"]), int(sig["K"]), bool(sig.get("relu", False)),
                   bool(sig.get("act", False)))

    def signature(self) -> dict:
        sig = {"kind": self.kind, "M": self.M, "N": self.N, "K": self.K, "relu": self.relu,
               "dtype": "int8", "acc": "int32"}
        if self.act:          # (only when set: the signatures of records without it stay as they were)
            sig["act"] = True
        return sig

    def inputs(self, seed: int = 0) -> dict:
        """Inputs drawn from ``seed``: on half the seeds A, B uniform over int8
        (nearly every output saturates), on the others uniform in [-w, w] with
        w such that an output's spread (about sqrt(K) w^2 / 3) is ~60, so most
        land inside (-128, 127) and both signs occur; garbage in C."""
        import numpy as np

        rng = np.random.default_rng([int(seed), self.M, self.N, self.K, 88])
        w = 128 if rng.integers(2) else max(1, int(round(math.sqrt(180.0 / math.sqrt(self.K)))))
        hi = min(w + 1, 128)
        A = rng.integers(-w, hi, size=(self.M, self.K), dtype=np.int16).astype(np.int8)
        B = rng.integers(-w, hi, size=(self.K, self.N), dtype=np.int16).astype(np.int8)
        C_init = rng.integers(-128, 128, size=(self.M, self.N), dtype=np.int16).astype(np.int8)
        out = {"A": A, "B": B, "C": C_init}
        if self.act:
            out["act"] = bool(rng.integers(2))
        return out

    def reference(self, inputs: dict):
        """Exact products summed in int64, wrapped to int32, saturated to int8, then ReLU
        (``relu``, or ``act`` and the input's ``act``)."""
        from .reference import clamp_reference

        return clamp_reference(inputs["A"], inputs["B"], self.relu or (self.act and bool(inputs["act"])))


@lru_cache(maxsize=16)
def _clamp_cached(M: int, N: int, K: int, relu: bool, act: bool = False) -> Procedure:
    from exo.stdlib.scheduling import rename

    p = (_matmul_clamp_act if act else _matmul_clamp_relu if relu else _matmul_clamp).partial_eval(M, N, K)
    return rename(p, f"matmul_clamp_{M}x{N}x{K}" + ("_relu" if relu else "") + ("_act" if act else ""))


def matmul_clamp(M: int, N: int, K: int, relu: bool = False, act: bool = False) -> Procedure:
    """The algorithm-level proc of `MatmulClampWorkload` (``(A, B, C)``; ``(act, A, B, C)`` with ``act``)."""
    check_shape(M, N, K)
    return _clamp_cached(M, N, K, relu, act)


# --------------------------------------------------------------------------- #
# Structural recognition
# --------------------------------------------------------------------------- #


def _canon(ir, args=None) -> tuple:
    """An alpha-renamed, hashable description of a LoopIR proc: symbols are
    numbered in order of first appearance (parameters first, in the order of
    ``args``, default the proc's), so two procs with the same structure and
    any names give the same tuple."""
    return _Canon().proc(ir, args)


class _Canon:
    """`_canon` with its symbol numbering kept (``order``: the symbols in
    order of number), so two matching procs give a symbol-to-symbol map."""

    def __init__(self):
        self.names: dict = {}
        self.order: list = []

    def proc(self, ir, args=None):
        from exo.core.LoopIR import LoopIR

        names, order = self.names, self.order
        canon = self

        def sym(s):
            if s not in names:
                names[s] = len(names)
                order.append(s)
            return ("sym", names[s])

        def typ(t):
            if isinstance(t, LoopIR.Tensor):
                return ("tensor", tuple(expr(e) for e in t.hi), t.is_window, typ(t.type))
            if isinstance(t, LoopIR.WindowType):
                return ("window", typ(t.as_tensor))
            return type(t).__name__

        def mem(m):
            return None if m is None else m.name()

        def expr(e):
            if isinstance(e, LoopIR.Read):
                return ("read", sym(e.name), tuple(expr(i) for i in e.idx))
            if isinstance(e, LoopIR.Const):
                v = e.val
                if isinstance(v, bool):
                    return ("const", "bool", v)
                return ("const", float(v))
            if isinstance(e, LoopIR.USub):
                return ("neg", expr(e.arg))
            if isinstance(e, LoopIR.BinOp):
                return ("binop", str(e.op), expr(e.lhs), expr(e.rhs))
            if isinstance(e, LoopIR.Extern):
                return ("extern", e.f.name(), tuple(expr(a) for a in e.args))
            if isinstance(e, LoopIR.WindowExpr):
                return ("window", sym(e.name), tuple(waccess(w) for w in e.idx))
            if isinstance(e, LoopIR.StrideExpr):
                return ("stride", sym(e.name), e.dim)
            if isinstance(e, LoopIR.ReadConfig):
                return ("readcfg", e.config.name(), e.field)
            raise WorkloadError(f"unexpected expression {e}")

        def waccess(w):
            if isinstance(w, LoopIR.Interval):
                return ("interval", expr(w.lo), expr(w.hi))
            return ("point", expr(w.pt))

        def stmt(s):
            if isinstance(s, (LoopIR.Assign, LoopIR.Reduce)):
                return (
                    type(s).__name__,
                    sym(s.name),
                    typ(s.type),
                    tuple(expr(i) for i in s.idx),
                    expr(s.rhs),
                )
            if isinstance(s, LoopIR.Alloc):
                return ("alloc", sym(s.name), typ(s.type), mem(s.mem))
            if isinstance(s, LoopIR.Free):
                return ("free", sym(s.name))
            if isinstance(s, LoopIR.For):
                return (
                    "for",
                    sym(s.iter),
                    expr(s.lo),
                    expr(s.hi),
                    type(s.loop_mode).__name__,
                    block(s.body),
                )
            if isinstance(s, LoopIR.If):
                return ("if", expr(s.cond), block(s.body), block(s.orelse))
            if isinstance(s, LoopIR.Call):
                # callee compared by name and (recursively) by body shape
                return ("call", s.f.name, tuple(expr(a) for a in s.args))
            if isinstance(s, LoopIR.Pass):
                return ("pass",)
            if isinstance(s, LoopIR.WindowStmt):
                return ("winstmt", sym(s.name), expr(s.rhs))
            if isinstance(s, LoopIR.WriteConfig):
                return ("writecfg", s.config.name(), s.field, expr(s.rhs))
            raise WorkloadError(f"unexpected statement {s}")

        def block(b):
            return tuple(stmt(s) for s in b)

        self.stmt, self.block = stmt, block
        argl = ir.args if args is None else args
        a = tuple((sym(x.name), typ(x.type), mem(x.mem)) for x in argl)
        preds = tuple(expr(p) for p in ir.preds)
        return ("proc", a, preds, block(ir.body))


def workload_of(p: Procedure, relu: bool = False) -> Any:
    """Recognise ``p`` as one of the GEMM variants (see the module doc).

    Names of the proc, its parameters, loops and buffers are free, and so is
    the parameter order; the statements must be those of one variant
    (``acc_scale`` / ``clamp`` / ``relu`` from exo.platforms.gemmini and
    exo.libs.externs).  Sizes must be concrete (use ``partial_eval``).
    Raises WorkloadError saying why otherwise (naming the first statement
    that differs from the closest variant).
    """
    return recognise(p, relu=relu).workload


# the variants: (description, algorithm proc, workload factory, parameter roles)
def _variants():
    return (
        ("Exo's Gemmini matmul app (scale, act, A, B, C; staging temporaries a, b, a2, b2, src_tmp)",
         _gemm_algorithm, lambda M, N, K, relu: GemmWorkload(M, N, K, relu)),
        ("the scaled GEMM without staging temporaries (res += A[i, k] * B[k, j])",
         _gemm_direct, lambda M, N, K, relu: GemmWorkload(M, N, K, relu)),
        ("the int32 matmul accumulating into C (C: i32, C[i, j] += A[i, k] * B[k, j])",
         _matmul_i32_acc, lambda M, N, K, relu: MatmulI32Workload(M, N, K, True, relu)),
        ("the int32 matmul (C: i32, C[i, j] = 0, then C[i, j] += A[i, k] * B[k, j])",
         _matmul_i32, lambda M, N, K, relu: MatmulI32Workload(M, N, K, False, relu)),
        ("the int8 matmul clamped without a scale (res: i32 += A[i, k] * B[k, j]; clamp(res, tmp); "
         "C[i, j] = tmp)",
         _matmul_clamp, lambda M, N, K, relu: MatmulClampWorkload(M, N, K, False)),
        ("the int8 matmul clamped without a scale, then ReLU (clamp(res, tmp); C[i, j] = relu(tmp))",
         _matmul_clamp_relu, lambda M, N, K, relu: MatmulClampWorkload(M, N, K, True)),
        ("the int8 matmul clamped without a scale, ReLU when act (clamp(res, tmp); if act == True: "
         "tmp = relu(tmp); C[i, j] = tmp)",
         _matmul_clamp_act, lambda M, N, K, relu: MatmulClampWorkload(M, N, K, False, True)),
    )


_TEMPLATES: dict = {}


def _template(alg: Procedure, M: int, N: int, K: int) -> Procedure:
    key = (alg.name(), M, N, K)
    if key not in _TEMPLATES:
        if len(_TEMPLATES) > 64:
            _TEMPLATES.clear()
        _TEMPLATES[key] = alg.partial_eval(M, N, K)
    return _TEMPLATES[key]


_INLINED: dict = {}


def _inlined_template(alg: Procedure, M: int, N: int, K: int):
    """The LoopIR of `_template` with its copy temporaries inlined."""
    from .proc_normal import inline_copies

    key = (alg.name(), M, N, K)
    if key not in _INLINED:
        if len(_INLINED) > 64:
            _INLINED.clear()
        _INLINED[key] = inline_copies(_template(alg, M, N, K)._loopir_proc)
    return _INLINED[key]


def _is_size(a) -> bool:
    """Whether the ArgCursor ``a`` is a ``size`` parameter."""
    return not a.is_tensor() and a.type().name == "Size"


def _kind(a) -> str:
    """The kind of a parameter (an ArgCursor): ``tensor<rank>`` or its scalar type."""
    if a.is_tensor():
        return f"tensor{len(a.shape())}"
    return a.type().name


def _dim_text(e) -> str:
    from exo.API_cursors import LiteralCursor, ReadCursor

    if isinstance(e, LiteralCursor):
        return str(e.value())
    if isinstance(e, ReadCursor):
        return e.name()
    return "?"


def _arg_text(a) -> str:
    """``name: type[dims]`` of a parameter (an ArgCursor), as Exo writes it."""
    t = a.type().name.lower()
    if a.is_tensor():
        t += "[" + ", ".join(_dim_text(e) for e in a.shape()) + "]"
    return f"{a.name()}: {t}"


def _stmt_text(s) -> str:
    text = str(s).strip().splitlines()
    return text[0].rstrip(":") if text else type(s).__name__


@dataclass
class Recognition:
    """How a user's proc is one of the variants: the workload, which user
    parameter plays which role, and the map from the variant's symbol names
    to the user's (parameters, loops, buffers)."""

    workload: Any
    variant: str
    user_proc: Procedure
    names: dict          # variant name -> user name
    order: list          # the user's parameter names, in the user's order

    @property
    def is_canonical(self) -> bool:
        return self.user_proc.name() == self.workload.proc.name() and all(
            k == v for k, v in self.names.items()) and self.order == [
            a.name() for a in self.workload.proc.args()]

    def to_user(self, scheduled: Procedure) -> Procedure:
        """``scheduled`` (a schedule of ``workload.proc``) with the user's proc
        name, parameter names and order, loop and buffer names."""
        if self.is_canonical:
            return scheduled
        return _renamed(scheduled, self.names, self.order, self.user_proc.name())


def _renamed(p: Procedure, names: dict, order: list, proc_name: str) -> Procedure:
    import re

    import attrs
    from asdl_adt.adt import _AsdlAdtBase
    from exo.core.LoopIR import LoopIR
    from exo.core.prelude import Sym

    # Exo 1.0 has no public API to rename loop counters, buffers or parameters:
    # the renaming rewrites the LoopIR (Syms) directly
    ir = p._loopir_proc
    loops = sorted((k for k in names if k not in {str(a.name) for a in ir.args}), key=len, reverse=True)
    new: dict = {}

    def ren(s: Sym, is_loop: bool = False) -> Sym:
        if s in new:
            return new[s]
        nm = s.name()
        to = names.get(nm)
        if to is None and is_loop:
            for k in loops:
                rest = nm[len(k):]
                if nm.startswith(k) and re.fullmatch(r"(_\w*|[oi]+\w*)", rest or "-"):
                    to = names[k] + rest
                    break
        if to is None or to == nm:
            new[s] = s
            return s
        t = object.__new__(Sym)
        t._nm, t._id = to, s._id
        new[s] = t
        return t

    skip = {"srcinfo", "f", "config", "mem", "loop_mode", "instr"}

    def walk(x):
        if isinstance(x, Sym):
            return ren(x)
        if isinstance(x, list):
            ys = [walk(v) for v in x]
            return ys if any(a is not b for a, b in zip(ys, x)) else x
        if isinstance(x, tuple):
            ys = tuple(walk(v) for v in x)
            return ys if any(a is not b for a, b in zip(ys, x)) else x
        if isinstance(x, _AsdlAdtBase):
            if isinstance(x, LoopIR.For):
                ren(x.iter, True)
            ch = {}
            for f in attrs.fields(type(x)):
                if f.name in skip:
                    continue
                v = getattr(x, f.name)
                nv = walk(v)
                if nv is not v:
                    ch[f.name] = nv
            return x.update(**ch) if ch else x
        return x

    body = walk(ir.body)
    args = walk(ir.args)
    by_name = {str(a.name): a for a in args}
    if sorted(by_name) == sorted(order):
        args = [by_name[n] for n in order]
    preds = walk(ir.preds)
    from exo.API import Procedure as _P

    return _P(ir.update(name=proc_name, args=args, preds=preds, body=body))


def recognise(p: Procedure, relu: bool = False) -> Recognition:
    """`workload_of` with the name map (see `Recognition`)."""
    import itertools

    from exo.API_cursors import LiteralCursor

    from .proc_normal import inline_copies

    if not isinstance(p, Procedure):
        raise WorkloadError(f"expected an Exo Procedure, got {type(p).__name__}")
    args = list(p.args())
    if any(_is_size(a) for a in args):
        raise WorkloadError(
            f"proc {p.name()} has symbolic size parameters; specialise it with "
            "partial_eval(M, N, K) first"
        )
    for a in args:
        if a.is_tensor():
            if len(a.shape()) != 2:
                raise WorkloadError(f"parameter {a.name()} of {p.name()} is a {len(a.shape())}-D tensor; a GEMM "
                                    f"has 2-D A[M,K], B[K,N], C[M,N]; supported are {SUPPORTED}")
            if not all(isinstance(e, LiteralCursor) for e in a.shape()):
                raise WorkloadError(f"parameter {a.name()} of {p.name()} has a non-constant shape")
    arg_kinds = [_kind(a) for a in args]
    kinds = sorted(arg_kinds)
    # the structural comparison (`_Canon`) reads the LoopIR: Exo's cursors do
    # not expose a proc's preconditions, loop modes or symbol identities
    ir = p._loopir_proc
    closest = None   # (depth of agreement, message)
    shape_error = None
    inlined = None   # the user's LoopIR with its copy temporaries inlined (once, when needed)
    for label, alg, make in _variants():
        targs = [a for a in alg.args() if not _is_size(a)]
        tkinds = [_kind(a) for a in targs]
        if sorted(tkinds) != kinds:
            continue
        for perm in itertools.permutations(range(len(args))):
            if [arg_kinds[i] for i in perm] != tkinds:
                continue
            roles = {t.name(): args[i] for t, i in zip(targs, perm)}
            shapes = {r: tuple(int(e.value()) for e in roles[r].shape()) for r in ("A", "B", "C")}
            (M, K), (K2, N), (M2, N2) = shapes["A"], shapes["B"], shapes["C"]
            if (M, N, K) != (M2, N2, K2):
                shape_error = shape_error or (
                    f"inconsistent GEMM shapes in {p.name()}: A {shapes['A']}, B {shapes['B']}, C {shapes['C']}")
                continue
            check_shape(M, N, K)
            t = _template(alg, M, N, K)
            if inlined is None:
                inlined = inline_copies(ir)
            # as written, then with the copy temporaries of both inlined (`proc_normal`)
            for uir, tir in ((ir, t._loopir_proc), (inlined, _inlined_template(alg, M, N, K))):
                cu, ct = _Canon(), _Canon()
                if cu.proc(uir, [uir.args[i] for i in perm]) == ct.proc(tir):
                    names = {}
                    for a, b in zip(ct.order, cu.order):
                        names.setdefault(a.name(), b.name())
                    order = [a.name() for a in args]
                    return Recognition(make(M, N, K, relu), label, p, names, order)
                depth, where = _first_difference(cu, ct, uir.body, tir.body)
                if closest is None or depth > closest[0]:
                    closest = (depth, f"{where} (closest supported form: {label})")
    if closest is not None:
        raise WorkloadError(f"proc {p.name()} is not a supported GEMM: {closest[1]}; supported are {SUPPORTED}")
    if shape_error:
        raise WorkloadError(shape_error)
    forms = "; ".join(f"({', '.join(_arg_text(a) for a in alg.args() if not _is_size(a))})"
                      for _, alg, _ in _variants()[1:3])
    raise WorkloadError(
        f"proc {p.name()} has parameters ({', '.join(_arg_text(a) for a in args)}), which fit no GEMM "
        f"variant; expected parameters like {forms}, in any order; supported are {SUPPORTED}")


def _first_difference(cu: "_Canon", ct: "_Canon", ub, tb, depth: int = 0) -> tuple:
    """(statements that agree, message) for the first statement of ``ub`` (the
    user's) that differs from ``tb`` (the variant's)."""
    from exo.core.LoopIR import LoopIR

    for n, (us, ts) in enumerate(zip(ub, tb)):
        if cu.stmt(us) == ct.stmt(ts):
            depth += 1
            continue
        if isinstance(us, LoopIR.For) and isinstance(ts, LoopIR.For) and \
                cu.stmt(us)[:5] == ct.stmt(ts)[:5]:
            return _first_difference(cu, ct, us.body, ts.body, depth + 1)
        if isinstance(us, LoopIR.If) and isinstance(ts, LoopIR.If) and cu.stmt(us)[1] == ct.stmt(ts)[1]:
            return _first_difference(cu, ct, us.body, ts.body, depth + 1)
        return depth, f"statement `{_stmt_text(us)}` differs from the expected `{_stmt_text(ts)}`"
    if len(ub) > len(tb):
        return depth, f"statement `{_stmt_text(ub[len(tb)])}` is extra"
    if len(ub) < len(tb):
        where = f" after `{_stmt_text(ub[-1])}`" if len(ub) else ""
        return depth, f"statement `{_stmt_text(tb[len(ub)])}` is missing{where}"
    return depth, "the parameters differ in type or memory"


def _user_schedule_class():
    from .schedule import Schedule

    class UserSchedule(Schedule):
        """A schedule of a variant's proc that also applies to a user's proc of
        that variant: the user's proc is recognised, the steps are applied to
        the variant's proc, and the result is renamed back to the user's names."""

        __slots__ = ()

        def apply(self, proc, cache=True):
            rec = recognise(proc)
            if rec.is_canonical:
                return Schedule.apply(self, proc, cache)
            return rec.to_user(Schedule.apply(self, rec.workload.proc, cache))

    return UserSchedule


_USER_SCHEDULE = None


def UserSchedule(steps=()):  # noqa: N802  (a class made on first use: schedule.py imports Exo)
    global _USER_SCHEDULE
    if _USER_SCHEDULE is None:
        _USER_SCHEDULE = _user_schedule_class()
    return _USER_SCHEDULE(steps)



# the conv workloads (their own module; imported here so the "conv" kind is registered)
from .conv import ConvWorkload, conv  # noqa: E402,F401
