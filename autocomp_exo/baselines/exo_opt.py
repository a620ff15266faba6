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

from typing import Optional

from gemmini_isa import GemminiConfig

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



def _s(op, *args) -> dict:
    return {"op": op, "args": list(args), "kwargs": {}, "menu": MENU}


def plan(workload: GemmWorkload, config: Optional[GemminiConfig] = None) -> tuple[str, int]:
    """(flow, BI) for a workload: the table for the six GEMMs, else a rule
    (what fits the scratchpad and accumulator of ``config``)."""
    check_shape(workload.M, workload.N, workload.K)
    key = (workload.M, workload.N, workload.K)
    if key in SHAPES and config is None:
        return SHAPES[key]
    cfg = config or GemminiConfig()
    sp_rows, acc_rows = cfg.sp_rows, cfg.acc_rows
    tj, tk = exo_unopt.tiles(workload)
    if (tj, tk) != (64, 64):
        raise WorkloadError(
            f"exo_opt needs N and K multiples of 64 (got N={workload.N}, K={workload.K}); "
            "use exo_unopt for other multiples of 16"
        )
    mt = workload.M // 16
    N, K = workload.N, workload.K
    if mt % 2 == 0 and N * K // 16 + 2 * K <= sp_rows and 2 * N <= acc_rows:
        return ("resident_b", 2)
    for bi in (8, 7, 6, 5, 4, 3, 2, 1):
        if mt % bi == 0 and bi * K + 4 * K <= sp_rows and 64 * bi <= acc_rows:
            return ("blocked", bi)
    raise WorkloadError(f"no exo_opt plan fits the scratchpad for {workload.name}")


def _unrolls() -> list[dict]:
    """The innermost loops of every phase: j_in_o and k around the computes,
    k around the B loads, j_in_o around the zeroing and the stores."""
    return [
        _s("unroll_calls", "compute", 2, None, False),
        _s("unroll_calls", "load", 1, "B", False),
        _s("unroll_calls", "zero", 1, None, False),
        _s("unroll_calls", "store", 1, None, True),
    ]


# Straight-line code per i tile is capped: unroll j too only when a tile has
# at most this many 64-wide (j, ko) chunks.
SMALL_TILE_CHUNKS = 4


def _resident_b_steps(workload: GemmWorkload) -> list[dict]:
    """B resident (loaded once), A strip per pair of i tiles, A and res
    double-buffered over the pair; then the ko loops, for small tiles j, and
    the pair loop (constant scratchpad/accumulator offsets)."""
    s = [
        _s("tile_loop", "i", 2),               # i tiles in pairs: ii selects the buffer
        _s("hoist_load", "A", 1),              # an A strip once per i tile (out of j)
        _s("stage_buffer", "a", ["ii"]),       # double buffers over the pair, allocated first (B after it
        _s("hoist_load", "B", 0),              # in the same bank, as the hand schedule has it); B loaded once
        _s("stage_buffer", "res", ["ii"]),
    ] + _unrolls() + [
        _s("unroll_calls", "compute", 1, None, False),   # ko of the computes
        _s("unroll_calls", "load", 1, "A", False),       # ko of the A loads
    ]
    if (workload.N // 64) * (workload.K // 64) <= SMALL_TILE_CHUNKS:
        s.append(_s("unroll_calls", "compute", 1, None, False))   # j
    s.append(_s("unroll_calls", "load", 1, "A", True))           # ii: the two buffers
    return s


def _blocked_steps(bi: int) -> list[dict]:
    """i blocked by BI row tiles; j outside the block; A strips of the block
    resident; one B strip per (block, j) reused by the BI row tiles; one
    accumulator tile per row tile of the block."""
    return [
        _s("tile_loop", "i", bi),
        _s("interchange_loops", "ii"),         # j outside the row tiles (res: one j slice)
        _s("hoist_load", "B", 1),              # one B strip per (block, j)
        _s("hoist_load", "A", 1),              # the block's A strips once per block
        _s("stage_buffer", "res", ["ii"]),
    ] + _unrolls() + [_s("unroll_calls", "compute", 1, None, True)]   # ko of the computes


def steps(workload: GemmWorkload, flow: str | None = None, bi: int | None = None) -> list[dict]:
    """The steps added to exo_unopt's; ``flow``/``bi`` override plan()."""
    pflow, pbi = plan(workload)
    flow = flow or pflow
    mt = workload.M // 16
    if flow == "resident_b":
        if mt % 2:
            raise WorkloadError(f"resident_b needs an even number of 16-row tiles (M={workload.M})")
        return _resident_b_steps(workload)
    if flow == "blocked":
        bi = bi or (pbi if pflow == "blocked" else 2)
        if mt % bi:
            raise WorkloadError(f"blocked: BI={bi} does not divide M/16={mt}")
        return _blocked_steps(bi)
    raise WorkloadError(f"unknown exo_opt flow {flow!r} (resident_b or blocked)")


def schedule(workload: GemmWorkload, flow: str | None = None, bi: int | None = None) -> Schedule:
    """The hand-optimized schedule: exo_unopt's steps followed by ours.

    For the six GEMMs of BENCHMARKS.md the flow and block size come from
    SHAPES; for other shapes with N, K multiples of 64 from a fit rule.
    """
    if not isinstance(workload, GemmWorkload):
        raise WorkloadError(f"expected a GemmWorkload, got {type(workload).__name__}")
    return exo_unopt.schedule(workload).extend(steps(workload, flow, bi))
