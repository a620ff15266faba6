"""GEMM workloads: the algorithm-level Exo proc and its recognition.

``gemm(M, N, K)`` is Exo's own Gemmini matmul app (int8 operands in DRAM,
int32 accumulation, ``acc_scale`` by a float32 scale, clamp to int8, ReLU
when the ``act`` argument is true) specialised to one shape with
``partial_eval``.  The proc is always built from the fixed algorithm below
(Exo's ``@proc`` reads the source of a real file), never from generated text.

``workload_of(proc)`` recognises a user's proc of the same form structurally:
same parameter types in the same order, same loop nest, same statements,
any names.  Scheduling then works on ``workload.proc`` (our names), which
computes the same function with the same parameter order and types.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from exo import proc, DRAM
from exo.API import Procedure
from exo.platforms.gemmini import acc_scale, clamp  # noqa: F401  (used in @proc)
from exo.libs.externs import relu  # noqa: F401  (used in @proc)

__all__ = [
    "DIM",
    "WorkloadError",
    "GemmWorkload",
    "gemm",
    "workload_of",
    "check_shape",
    "SUPPORTED",
]

DIM = 16
SUPPORTED = (
    "GEMMs C[M,N] = clamp(scale * (A[M,K] @ B[K,N])) with int8 A, B, C, int32 "
    "accumulation and optional ReLU, where M, N and K are positive multiples "
    f"of {DIM} (the systolic array size)"
)


class WorkloadError(ValueError):
    """A shape or proc that autocomp_exo cannot handle (the message says what is supported)."""


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


@dataclass(frozen=True)
class GemmWorkload:
    M: int
    N: int
    K: int
    relu: bool = False

    def __post_init__(self):
        check_shape(self.M, self.N, self.K)
        if not isinstance(self.relu, bool):
            raise WorkloadError(f"relu must be a bool, got {self.relu!r}")

    @property
    def name(self) -> str:
        return f"gemm_{self.M}x{self.N}x{self.K}" + ("_relu" if self.relu else "")

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K

    @property
    def proc(self) -> Procedure:
        return gemm(self.M, self.N, self.K, self.relu)

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
    def from_signature(cls, sig: dict) -> "GemmWorkload":
        if sig.get("kind", "gemm") != "gemm":
            raise WorkloadError(f"not a GEMM signature: {sig!r}")
        return cls(int(sig["M"]), int(sig["N"]), int(sig["K"]), bool(sig.get("relu", False)))


# --------------------------------------------------------------------------- #
# Structural recognition
# --------------------------------------------------------------------------- #


def _canon(ir) -> tuple:
    """An alpha-renamed, hashable description of a LoopIR proc: symbols are
    numbered in order of first appearance (parameters first, in order), so two
    procs with the same structure and any names give the same tuple."""
    from exo.core.LoopIR import LoopIR
    from exo.core.prelude import Sym

    names: dict = {}

    def sym(s):
        if s not in names:
            names[s] = len(names)
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

    args = tuple((sym(a.name), typ(a.type), mem(a.mem)) for a in ir.args)
    preds = tuple(expr(p) for p in ir.preds)
    return ("proc", args, preds, block(ir.body))


def workload_of(p: Procedure, relu: bool = False) -> GemmWorkload:
    """Recognise ``p`` as a GEMM of the form of ``gemm(M, N, K)``.

    Names of the proc, its parameters, loops and buffers are free; the
    parameter order and types, the loop nest and the statements must match
    (``acc_scale`` / ``clamp`` / ``relu`` from exo.platforms.gemmini and
    exo.libs.externs).  Sizes must be concrete (use ``partial_eval``).
    Raises WorkloadError saying why otherwise.
    """
    if not isinstance(p, Procedure):
        raise WorkloadError(f"expected an Exo Procedure, got {type(p).__name__}")
    ir = p._loopir_proc
    from exo.core.LoopIR import LoopIR

    args = list(ir.args)
    if any(isinstance(a.type, LoopIR.Size) for a in args):
        raise WorkloadError(
            f"proc {p.name()} has symbolic size parameters; specialise it with "
            "partial_eval(M, N, K) first"
        )
    if len(args) != 5:
        raise WorkloadError(
            f"proc {p.name()} has {len(args)} parameters; expected the GEMM form "
            "(scale: f32, act: bool, A: i8[M,K], B: i8[K,N], C: i8[M,N]) in that order"
        )
    shapes = []
    for a in args[2:]:
        t = a.type
        if not isinstance(t, LoopIR.Tensor) or len(t.hi) != 2:
            raise WorkloadError(
                f"parameter {a.name} of {p.name()} is not a 2-D tensor; expected "
                "(scale: f32, act: bool, A: i8[M,K], B: i8[K,N], C: i8[M,N])"
            )
        if not all(isinstance(e, LoopIR.Const) for e in t.hi):
            raise WorkloadError(f"parameter {a.name} of {p.name()} has a non-constant shape")
        shapes.append(tuple(int(e.val) for e in t.hi))
    (M, K), (K2, N), (M2, N2) = shapes
    if (M, N, K) != (M2, N2, K2):
        raise WorkloadError(
            f"inconsistent GEMM shapes in {p.name()}: A {shapes[0]}, B {shapes[1]}, C {shapes[2]}"
        )
    check_shape(M, N, K)
    ref = gemm(M, N, K)
    if _canon(ir) != _canon(ref._loopir_proc):
        raise WorkloadError(
            f"proc {p.name()} has GEMM-shaped parameters but its body is not the "
            f"supported GEMM algorithm (same loop nest and statements as "
            f"autocomp_exo.workloads.gemm({M}, {N}, {K}), any names); supported are {SUPPORTED}"
        )
    return GemmWorkload(M, N, K, relu)
