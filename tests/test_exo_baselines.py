"""The Exo baselines as Schedule data: they apply, compile, and are bit-exact.

Exo costs several seconds per mapping, so results are shared through
module-scoped fixtures and the shapes are small (the six ResNet-50 GEMMs are
measured by ``autocomp-exo bench``).
"""
from __future__ import annotations

import re

import pytest

from gemmini_isa import GemminiConfig

from autocomp_exo.moves import MOVES

from autocomp_exo.baselines import exo_opt, exo_unopt
from autocomp_exo.evaluate import evaluate
from autocomp_exo.exo_compile import to_c
from autocomp_exo.schedule import Schedule
from autocomp_exo.workloads import GemmWorkload, WorkloadError

SQUARE = GemmWorkload(64, 64, 64)
NONSQUARE = GemmWorkload(32, 128, 64)
SMALL_TILES = GemmWorkload(32, 96, 48, relu=True)  # N, K not multiples of 64


@pytest.fixture(scope="module")
def results():
    """Measurements keyed by (workload, baseline[, flow])."""
    out = {}
    for w, name, sched in [
        (SQUARE, "unopt", exo_unopt.schedule(SQUARE)),
        (SQUARE, "opt", exo_opt.schedule(SQUARE)),  # resident_b
        (SQUARE, "opt-blocked", exo_opt.schedule(SQUARE, flow="blocked", bi=2)),
        (NONSQUARE, "unopt", exo_unopt.schedule(NONSQUARE)),
        (NONSQUARE, "opt", exo_opt.schedule(NONSQUARE)),
        (SMALL_TILES, "unopt", exo_unopt.schedule(SMALL_TILES)),
    ]:
        out[(w, name)] = evaluate(w, sched)
    return out


def _ok(m):
    assert m.ok, (m.stage if hasattr(m, "stage") else None, getattr(m, "error", None), m)
    assert m.mismatches == 0 and m.total_elements > 0


@pytest.mark.parametrize(
    "key",
    [
        (SQUARE, "unopt"),
        (SQUARE, "opt"),
        (SQUARE, "opt-blocked"),
        (NONSQUARE, "unopt"),
        (NONSQUARE, "opt"),
        (SMALL_TILES, "unopt"),
    ],
    ids=lambda k: f"{k[0].name}-{k[1]}",
)
def test_bit_exact(results, key):
    _ok(results[key])


def test_unopt_is_exos_standard_mapping(results):
    m = results[(SQUARE, "unopt")]
    c = m.c_source
    body = c[c.index("void gemm_64x64x64(") :]
    first_loop = body.index("for (")
    # configs hoisted above every loop
    for call in ("gemmini_extended_config_st", "gemmini_extended_config_ex", "gemmini_extended3_config_ld"):
        assert call in body[:first_loop] and call not in body[first_loop:], call
    # per 16x64 tile: zero, A by mvin2, B by mvin3, preload+compute, mvout
    for call in ("gemmini_extended_mvin(", "gemmini_extended_mvin2(", "gemmini_extended_mvin3(",
                 "gemmini_extended_preload(", "gemmini_extended_compute_preloaded(", "gemmini_extended_mvout("):
        assert call in body, call
    assert "gemm_malloc" in body and "gemm_acc_malloc" in body
    # 4x4 preload/compute pairs per k chunk: one pair per 16^3 block
    assert m.instructions["preload"] == (64 // 16) ** 3


def test_unopt_small_tiles_for_other_multiples_of_16():
    assert exo_unopt.tiles(SMALL_TILES) == (48, 48)
    assert exo_unopt.tiles(GemmWorkload(16, 80, 32)) == (16, 32)
    assert exo_unopt.tiles(SQUARE) == (64, 64)


def test_unopt_schedule_is_shape_independent_data():
    a = exo_unopt.schedule(GemmWorkload(512, 512, 512))
    b = exo_unopt.schedule(GemmWorkload(12544, 256, 64))
    assert a == b  # the same steps: shapes only change the proc
    assert all(s.menu == "exo-unopt" for s in a)
    ops = {s.op for s in a}
    assert {"divide_loop", "reorder_loops", "autolift_alloc", "autofission", "replace",
            "set_memory", "call_eqv", "inline", "inline_window", "lift_config", "simplify"} <= ops


def test_unopt_keeps_one_accumulator_tile_when_the_row_does_not_fit():
    """N > 1024: Exo's N-row accumulator buffer would not fit the 1024-row
    accumulator, so the mapping keeps one 16 x 64 tile per j step (one
    autolift fewer); it runs bit-exact, and the offline agent has plans for it."""
    from autocomp_exo.agents import OfflineAgent
    from autocomp_exo.agents.base import Candidate
    from autocomp_exo.proc_facts import facts

    wide = GemmWorkload(16, 1088, 64)
    s = exo_unopt.schedule(wide)
    assert len(s) == len(exo_unopt.schedule(SQUARE)) - 1
    m = evaluate(wide, s)
    assert m.ok, m.error
    f = facts(s.apply(wide.proc))
    assert f.alloc("res").dims[0] == 4 and len(f.alloc("res").dims) == 3
    app = OfflineAgent().applicable(Candidate(0, s, m, None, workload=wide, facts=f.to_json()))
    assert "unroll" in app and "hoist" in app


def test_opt_extends_unopt_and_is_faster(results):
    for w in (SQUARE, NONSQUARE):
        s = exo_opt.schedule(w)
        base = exo_unopt.schedule(w)
        assert base.is_prefix_of(s) and len(s) > len(base)
        assert all(st.menu == "exo-opt" for st in s[len(base):])
        u, o = results[(w, "unopt")], results[(w, "opt")]
        # the same 16^3 blocks, fewer loads (A and B loaded once), fewer cycles
        assert o.instructions["preload"] == u.instructions["preload"]
        assert o.instructions["mvin"] < u.instructions["mvin"]
        assert o.cycles < u.cycles, (o.cycles, u.cycles)
    blocked = results[(SQUARE, "opt-blocked")]
    assert blocked.cycles < results[(SQUARE, "unopt")].cycles


def test_opt_unrolls_and_guards_loads(results):
    c = results[(SQUARE, "opt")].c_source
    c = c[c.index("void gemm_64x64x64("):]
    # unrolled inner loops: the 16 computes of a 64-wide chunk, for each of
    # the two buffers (ii), are straight-line code; only the io loop is left
    assert c.count("gemmini_extended_compute_preloaded(") == 2 * 16
    io = c.index("for (int_fast32_t io")
    assert re.findall(r"for \(int_fast32_t (\w+)", c[io:]) == ["io"]
    # B loads are outside the i loops: before the loop over io, once
    first_io = c.index("for (int_fast32_t io")
    assert "gemmini_extended_mvin3(" in c[:first_io]
    assert "gemmini_extended_mvin3(" not in c[first_io:]
    # the blocked flow keeps a loop over the row tiles of a block
    b = results[(SQUARE, "opt-blocked")].c_source
    assert "for (int_fast32_t ii" in b and "for (int_fast32_t j" in b


def test_opt_plans_for_the_six_gemms():
    for (M, N, K), (flow, bi) in exo_opt.SHAPES.items():
        w = GemmWorkload(M, N, K)
        assert exo_opt.plan(w) == (flow, bi)
        s = exo_opt.schedule(w)
        assert Schedule.from_json(s.to_json()) == s
        # what stays resident fits the 16384-row scratchpad
        cfg = GemminiConfig()
        if flow == "resident_b":
            assert N * K // 16 + 2 * K <= cfg.sp_rows and 2 * N <= cfg.acc_rows
        else:
            assert bi * K + 4 * K <= cfg.sp_rows and (M // 16) % bi == 0
        # written with the move library: every step after the mapping is a move
        assert all(st.op in MOVES for st in s[len(exo_unopt.schedule(w)):])


def test_opt_rejects_unsupported_shapes():
    with pytest.raises(WorkloadError, match="multiples of 64"):
        exo_opt.schedule(GemmWorkload(32, 96, 64))
    with pytest.raises(WorkloadError, match="BI=3"):
        exo_opt.schedule(SQUARE, flow="blocked", bi=3)


def test_compiles_with_stable_names(results):
    m = results[(NONSQUARE, "unopt")]
    assert m.entry == "gemm_32x128x64"
    assert '#include "autocomp_exo_gemmini.h"' in m.c_source
    assert re.search(r"void gemm_32x128x64\( autocomp_exo_gemmini_Context \*ctxt", m.c_source)


def test_compile_error_carries_exos_message():
    from autocomp_exo.exo_compile import CompileError
    from autocomp_exo.workloads import gemm

    p = Schedule([{"op": "set_memory", "args": ["res", {"mem": "GEMM_SCRATCH"}]}]).apply(gemm(32, 32, 32))
    with pytest.raises(CompileError) as e:
        to_c(p)
    assert e.value.kind == "MemGenError" and "res" in e.value.message
    c, entry = to_c(gemm(32, 32, 32))
    assert entry == "gemm_32x32x32" and "void gemm_32x32x32(" in c
