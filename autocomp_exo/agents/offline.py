"""The offline agent: menu options realized as parameterized Exo step sequences.

No LLM. The agent parses the candidate's proc text (`proctext.parse`): loops
with their extents, allocations with shapes and memories, Gemmini calls with
the loops around them. A family of *moves* (several per menu option) looks at
those facts, decides whether it applies, samples its parameters with the rng
and writes concrete whitelisted steps (patterns relative to the instruction
calls, so they keep working after earlier moves renamed or split loops):

``tile_rows``      divide the 16-row i loop into io / ii blocks (tiling)
``resident_b``     all of B resident (loaded once), A strip per i tile loaded
                   once and double-buffered with the accumulator tile over ii
``blocked``        j outside the ii row tiles of an io block; the block's A
                   strips resident, one B strip per (block, j) reused; its
                   endings interleave the strip's loads with the first tile's
                   computes or software-pipeline them (loads of k step s+1
                   issued before the computes of step s)
``hoist_load``     move an mvin out of the loops whose counters it does not
                   use (lift / autolift its buffer, fission, reorder_stmts,
                   remove_loop: the checked form of an ``if``-guarded load)
``double_buffer``  split the loop around a buffer's allocation in 2 (or 4)
                   and give the buffer a dimension for the inner counter, so
                   consecutive tiles use distinct local rows
``unroll``         fully unroll the innermost loop around the first call of an
                   instruction (preload/compute, mvin, zero, mvout) + simplify
``reorder``        swap two perfectly nested loops

Which option a plan takes is biased by what limits the candidate
(`Candidate.bottleneck`: CPU issue -> unrolling and fewer commands, load ->
residency, dependency stalls -> double buffering). Every step is labelled
with the plan's menu option.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..menu import MENU, MenuOption
from .base import Agent, Candidate, Plan
from .proctext import Node, ProcFacts, parse

__all__ = ["OfflineAgent", "MOVES", "OPTION_MOVES"]

SP_ROWS = 16384
ACC_ROWS = 1024
BANK_ROWS = 4096         # scratchpad rows per bank (4 banks)
MAX_CALLS = 320          # straight-line code cap when the unrolled code is simplified
MAX_CALLS_RAW = 800      # cap without simplify (Exo's simplify is what gets slow on long bodies;
                         # the simulator folds the constant sub-expressions unrolling leaves)

LDA = "do_ld_i8_block_id1"
LDB = "do_ld_i8_block_id2"
MM = "do_matmul_acc_i8"
MM0 = "do_matmul_i8"
ZERO = "do_zero_acc_i32"
ST = "do_st_acc_i8"
LOADS = (LDA, LDB)
CALLS = (MM, MM0, LDA, LDB, ZERO, ST)


def _pat(name: str) -> str:
    return f"{name}(_)"


def _up(c, n=1):
    for _ in range(n):
        c = {"parent": c}
    return c


def _after(c):
    return {"gap": "after", "stmt": c}


def _before(c):
    return {"gap": "before", "stmt": c}


def _s(op, *args, **kwargs):
    return {"op": op, "args": list(args), "kwargs": kwargs}


def _divisors(n: int, lo: int = 2, hi: int = 16) -> list[int]:
    return [d for d in range(lo, min(n, hi) + 1) if n % d == 0]


@dataclass
class Ctx:
    facts: ProcFacts
    cand: Candidate
    M: int
    N: int
    K: int


# --------------------------------------------------------------------------- #
# Moves: applicable(ctx) -> bool; sample(ctx, rng) -> (params, steps) | None
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Move:
    name: str
    text: str
    applicable: Callable[[Ctx], bool]
    sample: Callable[[Ctx, random.Random], Optional[tuple[dict, list]]]
    weight: float = 1.0


def _unmodified_nest(f: ProcFacts) -> Optional[str]:
    """The loop nest of Exo's standard mapping ("split": with i split into
    io/ii; "plain": i not split yet; None: something else)."""
    ldb = f.first_call(LDB)
    lda = f.first_call(LDA)
    mm = f.first_call(MM)
    if not (ldb and lda and mm) or len(f.calls(LDB)) != 1 or len(f.calls(LDA)) != 1:
        return None
    res = f.alloc("res")
    if res is None or len(res.dims) != 4:   # the flows resize the accumulator row lifted over j
        return None
    lb = [l.name for l in ldb.loops()]
    la = [l.name for l in lda.loops()]
    if lb == ["io", "ii", "j", "ko", "k"] and la == ["io", "ii", "j", "ko"]:
        return "split"
    if lb == ["i", "j", "ko", "k"] and la == ["i", "j", "ko"]:
        return "plain"
    return None


def _block_factors(c: "Ctx", ok) -> list[int]:
    """ii extents the flow can use: the current one, or factors of M/16 to split i by."""
    st = _unmodified_nest(c.facts)
    if st == "split":
        ii = c.facts.loops("ii")[0].extent or 0
        return [ii] if ok(ii) else []
    if st == "plain":
        return [d for d in _divisors(c.M // 16, 2, 16) if ok(d)]
    return []


def _split_prefix(c: "Ctx", rng, fs: list[int], weights: Optional[list[float]] = None) -> tuple[dict, list]:
    if _unmodified_nest(c.facts) == "split":
        return {"factor": fs[0]}, []
    d = rng.choices(fs, weights)[0] if weights else rng.choice(fs)
    return {"factor": d}, [_s("divide_loop", "i", d, ["io", "ii"], perfect=True)]


# ---- tiling ------------------------------------------------------------------

def _tile_ok(c: Ctx) -> bool:
    f = c.facts
    ls = f.loops("i")
    return bool(ls) and "io" not in f.loop_names() and ls[0].extent and len(_divisors(ls[0].extent)) > 0


def _tile_sample(c: Ctx, rng):
    ext = c.facts.loops("i")[0].extent
    ds = _divisors(ext, 2, 16)
    # prefer factors whose A block / accumulator tiles fit the flows below
    fit = [d for d in ds if d * c.K + 4 * c.K <= SP_ROWS and 64 * d <= ACC_ROWS] or ds
    d = rng.choice(fit)
    return {"factor": d}, [_s("divide_loop", "i", d, ["io", "ii"], perfect=True)]


# ---- resident B (loaded once), A per i tile, double-buffered over ii ---------

def _resident_fit(c: Ctx):
    return lambda ii: c.N * c.K // 16 + ii * c.K <= SP_ROWS and ii * c.N <= ACC_ROWS


def _resident_ok(c: Ctx) -> bool:
    return bool(_block_factors(c, _resident_fit(c)))


def _resident_sample(c: Ctx, rng):
    params, pre = _split_prefix(c, rng, _block_factors(c, _resident_fit(c)))
    s = pre + [
        _s("lift_alloc", "a", 1),
        _s("autolift_alloc", "a", 1, "row", None, True),
        _s("lift_alloc", "a", 1),
        _s("autolift_alloc", "b", 1, "row", None, True),
        _s("lift_alloc", "b", 2),
        _s("autolift_alloc", "res", 1, "row", None, True),
        _s("lift_alloc", "res", 1),
        _s("fission", _after(_pat(LDA))),
        _s("reorder_stmts", {"block": _up(_pat(LDA)), "expand": [1, 0]}),
        _s("fission", _after(_up(_pat(LDA)))),
        _s("remove_loop", _up(_pat(LDA), 2)),
        _s("fission", _after(_up(_pat(LDB)))),
        _s("reorder_stmts", {"block": _up(_pat(LDB), 2), "expand": [1, 0]}),
        _s("fission", _after(_up(_pat(LDB), 2))),
        _s("reorder_stmts", {"block": _up(_pat(LDB), 3), "expand": [1, 0]}),
        _s("fission", _after(_up(_pat(LDB), 3))),
        _s("remove_loop", _up(_pat(LDB), 4)),
        _s("fission", _after(_up(_pat(LDB), 3))),
        _s("remove_loop", _up(_pat(LDB), 4)),
    ]
    f = params["factor"]
    chain = [4, 4, max(1, c.K // 64), max(1, c.N // 64), f]
    return params, s + _finish(c, rng, params, f * c.K, c.N * c.K // 16, chain)


# ---- how a flow ends: bank spread and unrolling ----------------------------------

RAW_UNROLL_CALLS = 700   # computes a flow may unroll into straight-line code (no simplify)


def _spread(rng, params: dict, a_rows: int, b_rows: int, p: float = 0.7) -> list:
    """Sampled (probability ``p``): pad the A buffer (``a_rows`` rows) to a
    whole bank when it still fits beside the B buffer (``b_rows``), so A and
    B operands of a compute sit in different banks."""
    if not 0 < a_rows < BANK_ROWS or rng.random() >= p:
        return []
    n = -(-BANK_ROWS // a_rows)
    if a_rows * n + b_rows > SP_ROWS:
        return []
    params["spread"] = n
    return [_s("expand_dim", "a", n, "0")]


def _levels_within(chain: list[int], calls: int) -> int:
    """How many loops of ``chain`` (extents, innermost first) can be unrolled
    around a body of ``calls`` calls within ``RAW_UNROLL_CALLS``."""
    levels = 0
    for e in chain:
        if calls * e > RAW_UNROLL_CALLS:
            break
        calls *= e
        levels += 1
    return levels


def _finish(c: Ctx, rng, params: dict, a_rows: int, b_rows: int, chain: list[int]) -> list:
    """The end of a structural flow, sampled: `_spread`, then either
    nothing, two unrolled levels + simplify, or
    the loops around the computes (extents ``chain``, innermost first)
    unrolled as far as ``RAW_UNROLL_CALLS`` allows, simplified before but not
    after (simplify is slow on long bodies), so that
    the scratchpad and accumulator operands become constants."""
    s = _spread(rng, params, a_rows, b_rows)
    r = rng.random()
    if r < 0.35 and chain[:2] == [4, 4]:
        return s + _zero_deep(params, chain)
    if r < 0.7:
        levels = _levels_within(chain, 1)
        if levels:
            # simplify while the code is short (normal index forms: fewer
            # scalar operations per address), not after the deep levels
            first = min(levels, 2)
            s += [_s("unroll_loop", _up(_pat(MM))) for _ in range(first)]
            # the zeroing and store loops of a tile too: copied by the deep
            # levels, a loop counter there costs more than its few commands
            s += [_s("unroll_loop", _up(_pat(ZERO))), _s("unroll_loop", _up(_pat(ST)))]
            s.append(_s("simplify"))
            s += [_s("unroll_loop", _up(_pat(MM))) for _ in range(levels - first)]
            params["unrolled"] = levels
            params["simplify"] = False
            return s
    if r < 0.9:
        s += [_s("unroll_loop", _up(_pat(MM))), _s("unroll_loop", _up(_pat(MM))),
              _s("unroll_loop", _up(_pat(ZERO))), _s("unroll_loop", _up(_pat(ST)))]
        params["unrolled"] = 2
    s.append(_s("simplify"))
    return s


def _zero_deep(params: dict, chain: list[int]) -> list:
    """A flow's compute nest (j_in_o 4, k 4, ko ``chain[2]``) with the zeroing
    folded into the first compute of each tile (`_zero_steps`), then every
    loop of the tile unrolled, and the outer levels of ``chain`` as far as
    ``RAW_UNROLL_CALLS`` allows (no simplify after)."""
    eko = chain[2]
    s = _zero_steps([(0, eko), (0, 4), (0, 4)], "res", "a", "b", "res")
    s.append(_s("unroll_loop", _up(_pat(MM0))))                               # first k step
    s += [_s("unroll_loop", _up(_pat(MM))), _s("unroll_loop", _up(_pat(MM)))]  # the rest of ko 0
    if eko > 1:
        rest = f"{MM}(_) #12"                                                  # ko 1.. after 12 computes
        s += [_s("unroll_loop", _up(rest)) for _ in range(3)]
    s.append(_s("unroll_loop", _up(_pat(ST))))
    levels = _levels_within(chain[3:], 16 * eko + 4)
    s += [_s("unroll_loop", _up(_pat(MM0))) for _ in range(levels)]
    params.update(zero_into_compute=True, unrolled=3 + levels, simplify=False)
    return s


# ---- blocked: j outside the row tiles of a block -----------------------------

def _blocked_fit(c: Ctx):
    return lambda bi: bi * c.K + 4 * c.K <= SP_ROWS and 64 * bi <= ACC_ROWS


def _blocked_ok(c: Ctx) -> bool:
    return bool(_block_factors(c, _blocked_fit(c)))


def _blocked_sample(c: Ctx, rng):
    L, B = _pat(LDA), _pat(LDB)
    fs = _block_factors(c, _blocked_fit(c))
    # blocks the pipelined ending can take and unroll whole are twice as likely
    params, pre = _split_prefix(c, rng, fs, [2.0 if _prefetch_ok(c, f) and _prefetch_calls(c, f) <= RAW_UNROLL_CALLS
                                             else 1.0 for f in fs])
    pipelined = _prefetch_ok(c, params["factor"]) and rng.random() < 0.5
    s = pre + [
        _s("sink_alloc", "res"),
        _s("resize_dim", "res", 0, 1, "j"),
        _s("lift_alloc", "a", 1),
        _s("autolift_alloc", "a", 1, "row", None, True),
        _s("reorder_loops", "ii j"),
        _s("lift_alloc", "b", 1),
        _s("fission", _after(L)),
        _s("fission", _after(_up(B))),
        _s("reorder_stmts", {"block": _up(B, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(B, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(B, 2), "expand": [1, 0]}),
        _s("fission", _after(_up(B, 2))),
        _s("remove_loop", _up(B, 3)),
        _s("reorder_stmts", {"block": _up(L), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(L), "expand": [1, 0]}),
        _s("fission", _after(_up(L))),
        _s("reorder_stmts", {"block": _up(L, 2), "expand": [1, 0]}),
        _s("reorder_stmts", {"block": _up(L, 2), "expand": [1, 0]}),
        _s("fission", _after(_up(L, 2))),
        _s("remove_loop", _up(L, 3)),
    ]
    if not pipelined and params["factor"] % 2 == 0 and rng.random() < 0.3:
        # two accumulator tiles alternating over pairs of row tiles: once the
        # inner pair is unrolled, the accumulator operand is a constant and
        # only the A operand still carries a loop counter (cheaper addresses)
        params["res"] = "pair"
        s += [
            _s("divide_loop", _up("res : _"), 2, ["iio", "iii"], perfect=True),
            _s("autolift_alloc", "res : _", 1, "row", None, True),
            _s("lift_alloc", "res : _", 2),
        ]
    else:
        # one accumulator tile per row tile of the block (no WAR between the
        # stores of a tile and the zeroing of the next)
        params["res"] = "per_tile"
        s += [
            _s("autolift_alloc", "res", 1, "row", None, True),
            _s("lift_alloc", "res", 2),
        ]
    bi = params["factor"]
    if pipelined:
        return params, s + _prefetched(c, rng, params, bi)
    if params["res"] == "per_tile" and bi > 1 and rng.random() < 0.7:
        return params, s + _interleaved(c, rng, params, bi)
    chain = [4, 4, max(1, c.K // 64)] + ([2, bi // 2] if params["res"] == "pair" else [bi])
    return params, s + _finish(c, rng, params, bi * c.K, 4 * c.K, chain)


def _interleaved(c: Ctx, rng, params: dict, bi: int) -> list:
    """The blocked flow with the B strip's loads interleaved with the first
    row tile's computes: the first tile of the block is peeled and its ko
    loop fused with the ko loop of the B loads, so the CPU issues 4 loads,
    16 computes, 4 loads, ... instead of the whole strip's loads in one burst
    (which fills the 8-entry load queue and stalls the in-order CPU while the
    array runs dry). Then a bank spread, and every loop unrolled by name
    (j_in_o: zero/compute/store of the peeled and the other tiles; k; ko: the
    A loads, the fused loop, the other tiles; ii: the A loads, the other
    tiles when they fit ``RAW_UNROLL_CALLS``), without simplify after."""
    B = _pat(LDB)
    s = [
        _s("cut_loop", _up(_pat(MM), 4), 1),
        _s("unroll_loop", _up(_pat(MM), 4)),
        _s("reorder_stmts", {"block": _up(B, 2), "expand": [0, 1]}),
        _s("fuse", _up(B, 2), {"next": _up(B, 2)}),
        _s("simplify"),
    ]
    s += _spread(rng, params, bi * c.K, 4 * c.K)
    computes = bi * 16 * max(1, c.K // 64)
    n_ii = 2 if computes + 8 * bi <= RAW_UNROLL_CALLS else 1
    for name, n in (("j_in_o", 6), ("k", 3), ("ko", 3), ("ii", n_ii)):
        s += [_s("unroll_loop", name) for _ in range(n)]
    params.update(interleave=True, unrolled="all", simplify=False)
    return s


def _prefetch_ok(c: Ctx, bi: int) -> bool:
    # two or more tiles on each side of the cut (Exo drops one-trip loops,
    # which would shift the unroll counts) and two or more ko steps
    return bi >= 4 and bi % 2 == 0 and c.K // 64 >= 2


def _prefetch_calls(c: Ctx, bi: int) -> int:
    """Calls of the pipelined block once unrolled: computes, zero + store, B and A loads."""
    eko = c.K // 64
    return bi * (16 * eko + 8) + 4 * eko + bi * eko


def _prefetched(c: Ctx, rng, params: dict, bi: int) -> list:
    """The blocked flow software-pipelined over the B strip: the first half
    of the block's row tiles is computed ko-step by ko-step (for ko: for k:
    for ii), and the B loads of step ko+1 are issued before the computes of
    step ko. A load then has a whole step of computes (half a block of
    tiles) to arrive in, instead of the few the 16-entry execute queue lets
    the in-order CPU run ahead, and half a block of computes per B row
    outpaces the DMA (a 16x64 mvin streams in ~80 cycles, one tile's four
    computes take 64). The other half of the tiles follows as before. Then
    a bank spread and every loop but io and j unrolled (the second half's
    tiles when they fit ``RAW_UNROLL_CALLS``)."""
    n, eko = bi // 2, c.K // 64
    B, M = _pat(LDB), _pat(MM)
    B1 = f"{LDB}(_) #1"
    s = [
        _s("cut_loop", _up(M, 4), n),                       # ii: [0, n) and [n, bi)
        _s("fission", _after(_up(_pat(ZERO)))),             # first half: zero | compute | store
        _s("fission", _after(_up(M, 3))),
        _s("reorder_loops", _up(M, 4)),                     # ii ko -> ko ii
        _s("reorder_loops", _up(M, 3)),                     # ii k -> k ii
        _s("reorder_stmts", {"block": _up(B, 2), "expand": [0, 1]}),   # zeroing before the B loads
        _s("cut_loop", _up(B, 2), 1),                       # B loads: step 0 | steps 1..
        _s("shift_loop", _up(B1, 2), 0),                    # ... as ko + 1 for ko in [0, eko-1)
        _s("cut_loop", _up(M, 4), eko - 1),                 # computes: steps 0..eko-2 | last
        _s("fuse", _up(B1, 2), {"next": _up(B1, 2)}),       # loads of ko+1 with computes of ko
        _s("simplify"),
    ]
    # always spread: back-to-back computes of one B row from the same bank as
    # their A rows run at half speed (512^3: 1.08M cycles instead of 567k)
    s += _spread(rng, params, bi * c.K, 4 * c.K, p=1.0)
    rest_unrolled = _prefetch_calls(c, bi) <= RAW_UNROLL_CALLS
    # loops by name, innermost first; the counts follow the nest built above:
    # j_in_o: zero/compute/compute-last/store of the first half, zero/compute/store of the rest;
    # ii: A loads, zero, compute, compute-last, store (+ the rest); k: first loads, fused loads,
    # fused computes, last computes, the rest's; ko: A loads per tile, first loads, fused, last, rest
    copies = bi - n if rest_unrolled else 1
    for name, k in (("j_in_o", 7), ("ii", 5 + rest_unrolled), ("k", 4 + copies), ("ko", bi + 3 + copies)):
        s += [_s("unroll_loop", name) for _ in range(k)]
    params.update(prefetch=n, unrolled="all" if rest_unrolled else "first half", simplify=False)
    return s


# ---- generic load hoisting ---------------------------------------------------

def _buffer_of(call: Node) -> Optional[str]:
    # the destination is the last argument: "..., a[ko, 0:4, 0:16, 0:16])"
    import re

    m = re.search(r",\s*(\w+)\[[^\[\]]*\]\)$", call.text)
    return m.group(1) if m else None


def _hoist_target(c: Ctx, name: str):
    f = c.facts
    calls = f.calls(name)
    if len(calls) != 1:
        return None
    x = calls[0]
    chain = x.loops()
    if any(a.kind == "if" for a in x.ancestors()):
        return None
    m = None
    for idx in range(len(chain) - 1, -1, -1):
        if not x.mentions(chain[idx].name):
            m = idx
            break
    if m is None:
        return None
    buf = _buffer_of(x)
    al = f.alloc(buf) if buf else None
    if al is None:
        return None
    return x, chain, m, buf, al


# Exo's fission / reorder / lift recurse over the statements of a block: on the
# long straight-line bodies deep unrolling leaves they hit the recursion limit
RESTRUCTURE_MAX_CALLS = 120


def _short(c: Ctx) -> bool:
    return c.facts.n_calls() <= RESTRUCTURE_MAX_CALLS


def _hoist_ok(c: Ctx) -> bool:
    return _short(c) and any(_hoist_target(c, n) is not None for n in LOADS)


def _hoist_sample(c: Ctx, rng):
    names = [n for n in LOADS if _hoist_target(c, n) is not None]
    if not names:
        return None
    name = rng.choice(names)
    x, chain, m, buf, al = _hoist_target(c, name)
    f = c.facts
    P = _pat(name)
    n = len(chain)              # X sits in the body of chain[n-1]
    steps = []
    # 1. the buffer must live outside chain[m]: lift it, adding a dimension for
    #    every loop it leaves whose counter the load uses
    al_loops = al.loops()
    grow = 1
    lm = chain[m]
    if lm in al_loops:
        k = al_loops.index(lm)
        for lp in reversed(al_loops[k:]):
            if lp is lm or not x.mentions(lp.name):
                steps.append(_s("lift_alloc", buf, 1))
            else:
                steps.append(_s("autolift_alloc", buf, 1, "row", None, True))
                grow *= lp.extent or 1
        if al.parent is not lm and al.parent.kind != "for":
            return None
    mem = al.mem
    if mem == "GEMM_SCRATCH" and f.rows_used(mem) + f.rows(al) * (grow - 1) > SP_ROWS:
        return None
    # 2. level by level (innermost first) move the load's ancestor A_d to the
    #    top of chain[d]'s body and split it off; at chain[m] remove the loop
    split_below = False
    for d in range(n - 1, m - 1, -1):
        node = x
        for _ in range(n - 1 - d):
            node = node.parent
        a_d = _up(P, n - 1 - d)
        body = [q for q in node.parent.body if not (q.kind == "alloc" and q.name == buf)]
        idx = body.index(node)
        for _ in range(idx):
            steps.append(_s("reorder_stmts", {"block": a_d, "expand": [1, 0]}))
        if idx + 1 < len(body) or split_below:
            steps.append(_s("fission", _after(a_d)))
            split_below = True
        else:
            split_below = False
        if d == m:
            steps.append(_s("remove_loop", _up(a_d)))
    return {"load": name, "out_of": lm.name, "buffer": buf}, steps


# ---- double buffering --------------------------------------------------------

def _db_targets(c: Ctx) -> list:
    f = c.facts
    out = []
    for al in f.allocs():
        if al.mem not in ("GEMM_SCRATCH", "GEMM_ACCUM"):
            continue
        p = al.parent
        if p is None or p.kind != "for" or not p.extent or p.extent < 2:
            continue
        if not any(n.kind == "call" and _buffer_of(n) == al.name for n in p.walk()):
            # the buffer must be written inside the loop (a load or a zeroing)
            continue
        cap = SP_ROWS if al.mem == "GEMM_SCRATCH" else ACC_ROWS
        fs = [d for d in (2, 4) if p.extent % d == 0 and f.rows_used(al.mem) + f.rows(al) * (d - 1) <= cap]
        if fs:
            out.append((al, fs))
    return out


def _db_ok(c: Ctx) -> bool:
    return _short(c) and bool(_db_targets(c))


def _db_sample(c: Ctx, rng):
    al, fs = rng.choice(_db_targets(c))
    d = fs[0] if rng.random() < 0.75 else rng.choice(fs)
    loop = al.parent.name
    apat = f"{al.name} : _"
    names = [loop + "o", loop + "i"]
    used = c.facts.loop_names()
    while names[0] in used or names[1] in used:
        names = [n + "x" for n in names]
    return {"buffer": al.name, "loop": loop, "factor": d}, [
        _s("divide_loop", _up(apat), d, names, perfect=True),
        _s("autolift_alloc", apat, 1, "row", None, True),
    ]


# ---- unrolling -------------------------------------------------------------------

def _unroll_levels(c: Ctx, name: str, cap: int = MAX_CALLS) -> int:
    """How many loops around the first ``name`` call can be unrolled one after
    the other (innermost first) within the code-size cap."""
    f = c.facts
    x = f.first_call(name)
    if x is None:
        return 0
    total = f.n_calls()
    lp = x.parent
    n = 0
    inner = 0   # calls added inside the current loop by unrolling the levels below
    while lp is not None and lp.kind == "for" and lp.extent and lp.extent <= 64:
        body_calls = lp.count("call") + inner
        grow = body_calls * (lp.extent - 1)
        if total + grow > cap:
            break
        total += grow
        inner += grow
        n += 1
        lp = lp.parent
    return n


def _unroll_targets(c: Ctx, cap: int = MAX_CALLS) -> list:
    out = []
    for name in CALLS:
        n = _unroll_levels(c, name, cap)
        if n:
            out.append((name, n))
    return out


def _unroll_ok(c: Ctx) -> bool:
    return bool(_unroll_targets(c, MAX_CALLS_RAW))


def _unroll_sample(c: Ctx, rng):
    # without simplify the code may grow further (simplify is the slow part
    # on long bodies; constants left by unrolling cost nothing at run time)
    simplify = rng.random() < 0.5
    ts = _unroll_targets(c, MAX_CALLS if simplify else MAX_CALLS_RAW)
    if not ts:
        simplify = False
        ts = _unroll_targets(c, MAX_CALLS_RAW)
    # computes first: they are most of the commands
    w = [4.0 if t[0] in (MM, MM0) else 1.0 for t in ts]
    name, n = rng.choices(ts, weights=w)[0]
    levels = rng.choice([1, 1, 2, 3])
    levels = min(levels, n)
    steps = [_s("unroll_loop", _up(_pat(name))) for _ in range(levels)]
    if simplify:
        steps.append(_s("simplify"))
    return {"call": name, "levels": levels, "simplify": simplify}, steps


# ---- substitution: the first compute of a tile overwrites (no zeroing) ---------

def _args_buffers(call: Node) -> list:
    import re

    return re.findall(r"(\w+)\[", call.text.split("(", 1)[1])


def _zero_target(c: Ctx):
    f = c.facts
    z = f.first_call(ZERO)
    mm = f.first_call(MM)
    if z is None or mm is None or len(f.calls(ZERO)) != 1:
        return None
    zl = z.parent
    if zl is None or zl.kind != "for" or len(zl.body) != 1 or not zl.extent:
        return None
    sib = zl.parent.body
    i = sib.index(zl)
    skip = 0
    while i + 1 + skip < len(sib) and sib[i + 1 + skip].kind == "alloc":
        skip += 1   # allocations between the zeroing and the computes: moved past
    if i + 1 + skip >= len(sib):
        return None
    l1 = sib[i + 1 + skip]
    if l1.kind != "for" or mm not in list(l1.walk()):
        return None
    chain = []
    n = mm.parent
    while n is not None and n is not zl.parent:
        if n.kind != "for" or n.lo is None or n.hi is None:
            return None
        chain.append(n)
        n = n.parent
    chain.reverse()  # l1 ... mm.parent
    if len(mm.parent.body) != 1 or mm.parent.extent != zl.extent:
        return None
    if any(len(lp.body) != 1 for lp in chain):   # the compute nest alone (no loads inside)
        return None
    bz = _args_buffers(z)
    bm = _args_buffers(mm)
    if len(bz) != 1 or len(bm) != 3 or bz[0] != bm[2]:
        return None
    return z, mm, chain, bz[0], bm, skip


def _zero_ok(c: Ctx) -> bool:
    return _zero_target(c) is not None


def _zero_sample(c: Ctx, rng):
    z, mm, chain, bz, (ba, bb, bc), skip = _zero_target(c)
    steps = _zero_steps([(lp.lo, lp.extent) for lp in chain], bz, ba, bb, bc, skip)
    return {"peeled": [l.name for l in chain]}, steps


def _zero_steps(chain: list, bz: str, ba: str, bb: str, bc: str, skip: int = 0) -> list:
    """Peel the first iteration of every loop of the compute nest (``chain``:
    (lo, extent) outermost first) and turn the zeroing + first compute of each
    accumulator tile into one overwriting compute (``do_matmul_i8``)."""
    P = _pat(MM)
    steps = []
    q = len(chain)
    for d in range(q, 1, -1):
        lo, ext = chain[q - d]
        if ext > 1:
            steps.append(_s("cut_loop", _up(P, d), lo + 1))
        steps.append(_s("unroll_loop", _up(P, d)))
    Z = _pat(ZERO)
    zs = f"{bz}[_] = 0.0"
    steps += [_s("reorder_stmts", {"block": _up(Z), "expand": [0, 1]}) for _ in range(skip)]
    steps += [
        _s("fuse", _up(Z), {"next": _up(Z)}),
        _s("inline", Z),
        _s("inline", P),
        _s("inline_window", f"_ = {bz}[_] #0"),
        _s("inline_window", f"_ = {ba}[_]"),
        _s("inline_window", f"_ = {bb}[_]"),
        _s("inline_window", f"_ = {bc}[_]"),
        _s("fuse", _up(zs, 2), {"next": _up(zs, 2)}),
        _s("fuse", _up(zs, 1), {"next": _up(zs, 1)}),
        _s("replace", _up(zs, 2), {"instr": "do_matmul_i8"}),
        _s("simplify"),
    ]
    return steps


# ---- scratchpad banks: A and B operands in different banks ---------------------



def _bank_targets(c: Ctx) -> list:
    f = c.facts
    out = []
    names = []
    for call in (f.first_call(LDA), f.first_call(LDB)):
        b = _buffer_of(call) if call is not None else None
        if b and b not in names:
            names.append(b)
    for b in names:
        al = f.alloc(b)
        if al is None or al.mem != "GEMM_SCRATCH":
            continue
        rows = f.rows(al)
        if rows >= BANK_ROWS or rows <= 0:
            continue
        n = -(-BANK_ROWS // rows)
        if f.rows_used("GEMM_SCRATCH") + rows * (n - 1) <= SP_ROWS:
            out.append((b, n))
    return out


def _bank_ok(c: Ctx) -> bool:
    # before deep unrolling (expand_dim on long straight-line code hits Exo's recursion limit)
    return c.facts.n_calls() <= 80 and bool(_bank_targets(c))


def _bank_sample(c: Ctx, rng):
    b, n = rng.choice(_bank_targets(c))
    return {"buffer": b, "copies": n}, [_s("expand_dim", b, n, "0")]


# ---- loop reordering -------------------------------------------------------------

def _reorder_targets(c: Ctx) -> list:
    out = []
    seen = set()
    for lp in c.facts.loops():
        if len(lp.body) == 1 and lp.body[0].kind == "for":
            key = (lp.name, lp.body[0].name)
            if key in seen or lp.name == lp.body[0].name:
                continue
            seen.add(key)
            # only pairs the name pattern finds first
            if c.facts.loops(lp.name)[0] is lp:
                out.append(key)
    return out


def _reorder_ok(c: Ctx) -> bool:
    return _short(c) and bool(_reorder_targets(c))


def _reorder_sample(c: Ctx, rng):
    o, i = rng.choice(_reorder_targets(c))
    return {"outer": o, "inner": i}, [_s("reorder_loops", f"{o} {i}")]


MOVES: dict[str, Move] = {m.name: m for m in [
    Move("tile_rows", "split the 16-row i loop into io blocks of ii row tiles", _tile_ok, _tile_sample, 1.0),
    Move("resident_b", "keep all of B resident in the scratchpad (loaded once); load each A strip once per "
         "row tile; double-buffer the A strip and the accumulator tile over ii", _resident_ok, _resident_sample, 6.0),
    Move("blocked", "put j outside the row tiles of an i block; keep the block's A strips resident; load "
         "each B strip once per (block, j), its loads interleaved with or issued a k step ahead of the "
         "computes", _blocked_ok, _blocked_sample, 6.0),
    Move("hoist_load", "move an mvin out of the loops whose counters it does not use (load once, reuse)",
         _hoist_ok, _hoist_sample, 0.7),
    Move("double_buffer", "give a local buffer a dimension for the inner half of its loop so consecutive "
         "tiles use distinct rows", _db_ok, _db_sample, 0.5),
    Move("unroll", "fully unroll the innermost loop around an instruction call, then simplify",
         _unroll_ok, _unroll_sample, 2.5),
    Move("reorder", "swap two perfectly nested loops", _reorder_ok, _reorder_sample, 0.2),
    Move("bank_spread", "pad an operand buffer to a whole scratchpad bank (4096 rows) so the A and B "
         "operands of a compute sit in different banks (no read-port conflict)", _bank_ok, _bank_sample, 3.0),
    Move("zero_into_compute", "peel the first k step of every output tile and let its compute overwrite the "
         "accumulator (matmul without accumulate) instead of zeroing it first: one command less per tile",
         _zero_ok, _zero_sample, 3.0),
]}

#: menu option -> the moves that realize it
OPTION_MOVES: dict[str, tuple[str, ...]] = {
    "tiling": ("tile_rows", "double_buffer", "blocked"),
    "reorder": ("blocked", "reorder"),
    "split": ("hoist_load",),
    "fuse": ("zero_into_compute", "resident_b"),
    "simplify": ("unroll", "zero_into_compute"),
    "reorder_stmts": ("hoist_load", "resident_b"),
    "unroll": ("unroll",),
    "double_buffer": ("double_buffer", "resident_b"),
    "scratchpad_reuse": ("resident_b", "blocked", "hoist_load"),
    "spread": ("bank_spread", "double_buffer", "resident_b"),
    "guarded_loads": ("hoist_load", "resident_b", "blocked"),
    "hoist": ("hoist_load",),
    "substitute": ("zero_into_compute", "bank_spread"),
    "pipeline": ("double_buffer", "resident_b", "bank_spread"),
    "min_data_movement": ("resident_b", "blocked", "hoist_load", "bank_spread"),
    "min_loop_overhead": ("unroll", "zero_into_compute"),
    "other": tuple(MOVES),
}

#: the structural flows (they need Exo's standard loop nest)
FLOWS = ("resident_b", "blocked")

#: bottleneck -> move weight multipliers
BIAS = {
    "cpu": {"zero_into_compute": 2.0, "unroll": 2.0, "resident_b": 2.0, "blocked": 2.0},
    "load": {"resident_b": 3.0, "blocked": 3.0, "hoist_load": 3.0, "tile_rows": 2.0, "double_buffer": 1.5},
    "dependency": {"double_buffer": 4.0, "resident_b": 2.0, "tile_rows": 1.5},
    "execute": {},
    "unknown": {},
}


class OfflineAgent(Agent):
    """Plans and implements menu options without an LLM (see the module doc)."""

    name = "offline"

    def __init__(self, moves: Optional[dict] = None, option_moves: Optional[dict] = None):
        self.moves = dict(MOVES if moves is None else moves)
        self.option_moves = dict(OPTION_MOVES if option_moves is None else option_moves)

    def _ctx(self, cand: Candidate) -> Optional[Ctx]:
        if not cand.proc_text:
            return None
        w = cand.workload
        m = cand.measurement
        M = getattr(w, "M", None) or (m.M if m else None)
        N = getattr(w, "N", None) or (m.N if m else None)
        K = getattr(w, "K", None) or (m.K if m else None)
        return Ctx(parse(cand.proc_text), cand, int(M), int(N), int(K))

    def applicable(self, cand: Candidate) -> list[str]:
        c = self._ctx(cand)
        if c is None:
            return []
        return [n for n, mv in self.moves.items() if mv.applicable(c)]

    def plan(self, candidate: Candidate, menu: Sequence[MenuOption], n: int,
             rng: random.Random) -> list[Plan]:
        c = self._ctx(candidate)
        if c is None:
            return []
        app = {n_: mv for n_, mv in self.moves.items() if mv.applicable(c)}
        bias = dict(BIAS.get(candidate.bottleneck(), {}))
        if any(m in app for m in ("zero_into_compute", "bank_spread", "resident_b", "blocked")):
            # these need the loop nests that unrolling takes apart: they go first
            bias["unroll"] = bias.get("unroll", 1.0) * 0.1
        choices = []   # (option, move, weight)
        for opt in menu:
            ms = [m for m in self.option_moves.get(opt.key, ()) if m in app]
            for m in ms:
                choices.append((opt.key, m, app[m].weight * bias.get(m, 1.0) / len(ms)))
        flows = [ch for ch in choices if ch[1] in FLOWS]
        if flows:
            # the flows apply only to the standard nest (the search's start):
            # every plan there samples one (their parameters and endings vary
            # most); the other moves refine what a flow produced
            choices = flows
        plans = []
        if not choices:
            return plans
        for _ in range(n):
            opt, mv, _w = rng.choices(choices, weights=[x[2] for x in choices])[0]
            plans.append(Plan(opt, mv, self.moves[mv].text, {"bottleneck": candidate.bottleneck()}))
        return plans

    def implement(self, candidate: Candidate, plan: Plan, k: int,
                  rng: random.Random) -> list[list[dict]]:
        c = self._ctx(candidate)
        mv = self.moves.get(plan.move)
        if c is None or mv is None or not mv.applicable(c):
            return []
        out, seen = [], set()
        tries = 0
        while len(out) < k and tries < 4 * k:
            tries += 1
            r = mv.sample(c, rng)
            if r is None:
                continue
            params, steps = r
            import json

            key = json.dumps(steps, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            out.append([dict(s, menu=plan.option) for s in steps])
        return out
