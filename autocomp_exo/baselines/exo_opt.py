"""Hand-optimized Exo schedules for the six ResNet-50 GEMMs (Schedule data).

Each extends the ``exo_unopt`` schedule (Exo's standard mapping) with what the
Exo paper's experts did, written as explicit primitive steps:

- **bigger i tiles**: the 16-row i loop is split into blocks (``io``/``ii``);
- **operands resident in the scratchpad, loaded once**: the loads are moved
  out of the loops whose counters they do not depend on (``reorder_stmts`` to
  the top of the loop body, ``fission`` after them, ``remove_loop``: Exo checks
  each step).  That is the checked form of guarding a load with ``if`` on an
  outer loop counter: the load runs once per value of the counters it uses;
- **double buffering** (resident-B flow): the A tile and the accumulator tile
  get a leading dimension of 2 indexed by the inner counter of a 2-way split
  of i (no ``%`` in indices: EXO.md pitfall 8);
- **loops re-fused**: the zero / compute / store phases of an output tile stay
  in one loop body after the loads are pulled out;
- **inner loops unrolled** (k, j_in_o, ko; and j and the 2-way ii loop for
  small tiles): straight-line preload/compute pairs with constant scratchpad
  offsets, so the CPU spends fewer cycles on address arithmetic per command
  (in the simulator the CPU issue rate is what limits the unrolled code).

Two flows, chosen by what fits in the 16384-row scratchpad:

``resident_b`` (all of B fits, N*K/16 + 2*K rows): B is loaded once at the
top; each i tile loads its A strip once (double-buffered) and runs all j.

``blocked`` (B does not fit: 512^3, 784x1024x256): i is blocked by BI row
tiles; the A strips of the block stay resident (BI*K rows) while j runs
outside the block; each B strip (K x 64, 4K rows) is loaded once per (block,
j) and reused by the BI row tiles.
"""
from __future__ import annotations

from ..schedule import Schedule
from ..workloads import GemmWorkload, WorkloadError, check_shape
from . import exo_unopt

__all__ = ["schedule", "plan", "SHAPES", "MENU"]

MENU = "exo-opt"

# The six ResNet-50 GEMMs of BENCHMARKS.md: (M, N, K) -> (flow, BI)
SHAPES = {
    (512, 512, 512): ("blocked", 8),
    (12544, 256, 64): ("resident_b", 2),
    (12544, 64, 256): ("resident_b", 2),
    (3136, 512, 128): ("resident_b", 2),
    (3136, 128, 512): ("resident_b", 2),
    (784, 1024, 256): ("blocked", 7),
}

SP_ROWS = 16384
ACC_ROWS = 1024

LDA = "do_ld_i8_block_id1(_)"
LDB = "do_ld_i8_block_id2(_)"
MM = "do_matmul_acc_i8(_)"
ZERO = "do_zero_acc_i32(_)"
ST = "do_st_acc_i8(_)"


def _s(op, *args, **kwargs):
    return {"op": op, "args": list(args), "kwargs": kwargs, "menu": MENU}


def _up(c, n=1):
    """The n-th enclosing statement of cursor c."""
    for _ in range(n):
        c = {"parent": c}
    return c


def _after(c):
    return {"gap": "after", "stmt": c}


def plan(workload: GemmWorkload) -> tuple[str, int]:
    """(flow, BI) for a workload: the table for the six GEMMs, else a rule."""
    check_shape(workload.M, workload.N, workload.K)
    key = (workload.M, workload.N, workload.K)
    if key in SHAPES:
        return SHAPES[key]
    tj, tk = exo_unopt.tiles(workload)
    if (tj, tk) != (64, 64):
        raise WorkloadError(
            f"exo_opt needs N and K multiples of 64 (got N={workload.N}, K={workload.K}); "
            "use exo_unopt for other multiples of 16"
        )
    mt = workload.M // 16
    N, K = workload.N, workload.K
    if mt % 2 == 0 and N * K // 16 + 2 * K <= SP_ROWS and 2 * N <= ACC_ROWS:
        return ("resident_b", 2)
    for bi in (8, 7, 6, 5, 4, 3, 2, 1):
        if mt % bi == 0 and bi * K + 4 * K <= SP_ROWS:
            return ("blocked", bi)
    raise WorkloadError(f"no exo_opt plan fits the scratchpad for {workload.name}")  # pragma: no cover


def _unrolls() -> list[dict]:
    """Unroll the innermost loops of every phase (k and j_in_o)."""
    return [
        _s("unroll_loop", _up(MM)),  # j_in_o
        _s("unroll_loop", _up(MM)),  # k
        _s("unroll_loop", _up(LDB)),  # k of the B loads
        _s("unroll_loop", _up(ZERO)),  # j_in_o of zeroing
        _s("unroll_loop", _up(ST)),  # j_in_o of stores
        _s("simplify"),
    ]


# Straight-line code per i tile is capped (the simulator parses the C; Exo's
# simplify recurses on long bodies): unroll j and the 2-way ii loop too only
# when a tile has at most this many 64-wide (j, ko) chunks.
SMALL_TILE_CHUNKS = 4


def _resident_unrolls(workload: GemmWorkload) -> list[dict]:
    """After _unrolls: the ko loops (A loads, computes), then for small tiles
    the j loop, and the ii loop (constant scratchpad/accumulator offsets)."""
    s = [
        _s("unroll_loop", _up(MM)),  # ko of the computes
        _s("unroll_loop", _up(LDA)),  # ko of the A loads
    ]
    chunks = (workload.N // 64) * (workload.K // 64)
    if chunks <= SMALL_TILE_CHUNKS:
        s.append(_s("unroll_loop", _up(MM)))  # j
    s.append(_s("unroll_loop", _up(LDA)))  # ii: the two buffers
    s.append(_s("simplify"))
    return s


def _blocked_unrolls() -> list[dict]:
    return [_s("unroll_loop", _up(MM)), _s("simplify")]  # ko of the computes


def _resident_b_steps() -> list[dict]:
    """B resident (loaded once), A strip per i tile, A and res double-buffered."""
    s = [
        # i tiles in pairs: ii in {0, 1} selects the buffer
        _s("divide_loop", "i", 2, ["io", "ii"], perfect=True),
        # a: out of j, then a dimension for ii (double buffer), out of io
        _s("lift_alloc", "a", 1),
        _s("autolift_alloc", "a", 1, "row", None, True),
        _s("lift_alloc", "a", 1),
        # b: a dimension for j (all of B), then out of ii and io
        _s("autolift_alloc", "b", 1, "row", None, True),
        _s("lift_alloc", "b", 2),
        # res: a dimension for ii (double buffer), out of io
        _s("autolift_alloc", "res", 1, "row", None, True),
        _s("lift_alloc", "res", 1),
        # A loads: out of the ko loop they share with the computes, to the top
        # of the j body, out of j (loaded once per i tile)
        _s("fission", _after(LDA)),
        _s("reorder_stmts", {"block": _up(LDA), "expand": [1, 0]}),
        _s("fission", _after(_up(LDA))),
        _s("remove_loop", _up(LDA, 2)),
        # B loads: out of ko, to the top of the j body, split off j, then to
        # the top of the ii body and out of ii and io (loaded once)
        _s("fission", _after(_up(LDB))),
        _s("reorder_stmts", {"block": _up(LDB, 2), "expand": [1, 0]}),
        _s("fission", _after(_up(LDB, 2))),
        _s("reorder_stmts", {"block": _up(LDB, 3), "expand": [1, 0]}),
        _s("fission", _after(_up(LDB, 3))),
        _s("remove_loop", _up(LDB, 4)),
        _s("fission", _after(_up(LDB, 3))),
        _s("remove_loop", _up(LDB, 4)),
    ]
    return s + _unrolls()


def _blocked_steps(bi: int) -> list[dict]:
    """i blocked by BI row tiles; j outside the block; A strips of the block
    resident; one B strip per (block, j) reused by the BI row tiles."""
    s = [
        _s("divide_loop", "i", bi, ["io", "ii"], perfect=True),
        # res: into the j loop, shrunk to one 16 x 64 tile
        _s("sink_alloc", "res"),
        _s("resize_dim", "res", 0, 1, "j"),
        # a: out of j, a dimension for ii, out of ... (io body)
        _s("lift_alloc", "a", 1),
        _s("autolift_alloc", "a", 1, "row", None, True),
        # j outside the row tiles of the block
        _s("reorder_loops", "ii j"),
        # b: one strip per j, out of ii
        _s("lift_alloc", "b", 1),
        # split the ko body: A loads / B loads / computes
        _s("fission", _after(LDA)),
        _s("fission", _after(_up(LDB))),
        # B loads to the top of the ii body (past the A loads, the zeroing and
        # res), split off ii: once per (block, j)
        _s("reorder_stmts", {"block": _up(LDB, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(LDB, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(LDB, 2), "expand": [1, 0]}),
        _s("fission", _after(_up(LDB, 2))),
        _s("remove_loop", _up(LDB, 3)),
        # A loads to the top of the ii body, split off ii, then to the top of
        # the j body and out of j: once per block
        _s("reorder_stmts", {"block": _up(LDA), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(LDA), "expand": [1, 0]}),
        _s("fission", _after(_up(LDA))),
        # (past the B loads and the allocation of b)
        _s("reorder_stmts", {"block": _up(LDA, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(LDA, 2), "expand": [1, 0]}),
        _s("fission", _after(_up(LDA, 2))),
        _s("remove_loop", _up(LDA, 3)),
        # one accumulator tile per row tile of the block (no WAR between the
        # stores of a tile and the zeroing of the next), allocated once
        _s("autolift_alloc", "res", 1, "row", None, True),
        _s("lift_alloc", "res", 2),
        _s("simplify"),
    ]
    return s + _unrolls()


def steps(workload: GemmWorkload, flow: str | None = None, bi: int | None = None) -> list[dict]:
    """The steps added to exo_unopt's; ``flow``/``bi`` override plan()."""
    pflow, pbi = plan(workload)
    flow = flow or pflow
    mt = workload.M // 16
    if flow == "resident_b":
        if mt % 2:
            raise WorkloadError(f"resident_b needs an even number of 16-row tiles (M={workload.M})")
        return _resident_b_steps() + _resident_unrolls(workload)
    if flow == "blocked":
        bi = bi or (pbi if pflow == "blocked" else 2)
        if mt % bi:
            raise WorkloadError(f"blocked: BI={bi} does not divide M/16={mt}")
        return _blocked_steps(bi) + _blocked_unrolls()
    raise WorkloadError(f"unknown exo_opt flow {flow!r} (resident_b or blocked)")


def schedule(workload: GemmWorkload, flow: str | None = None, bi: int | None = None) -> Schedule:
    """The hand-optimized schedule: exo_unopt's steps followed by ours.

    For the six GEMMs of BENCHMARKS.md the flow and block size come from
    SHAPES; for other shapes with N, K multiples of 64 from a fit rule.
    """
    if not isinstance(workload, GemmWorkload):
        raise WorkloadError(f"expected a GemmWorkload, got {type(workload).__name__}")
    return exo_unopt.schedule(workload).extend(steps(workload, flow, bi))
