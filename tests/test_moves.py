"""The move library: macro ops with checked decisions, expansions that stay
bit-exact, predictions that agree with what Exo produces, clear refusals."""
from __future__ import annotations

import pytest

from autocomp_exo.baselines import exo_unopt
from autocomp_exo.moves import MOVES
from autocomp_exo.moves.predict import predict, unrolled_calls
from autocomp_exo.proc_facts import facts
from autocomp_exo.schedule import OPS, Schedule, ScheduleError, Step
from autocomp_exo.workloads import GemmWorkload

W = GemmWorkload(128, 128, 128)


def S(op, *args):
    return {"op": op, "args": list(args), "kwargs": {}}


@pytest.fixture(scope="module")
def base():
    s = exo_unopt.schedule(W)
    return s, s.apply(W.proc)


def _shape(f):
    """Loops (name, extent) in program order, allocations, and the loop
    counters around each load: what the agent reads from predictions."""
    return ([(n.name, n.extent) for n in f.loops()],
            sorted((a.name, tuple(a.dims), a.mem) for a in f.allocs()),
            [[lp.name for lp in c.loops()] for c in f.calls("load")],
            [[sorted(ix) for ix in c.local_operand().index] for c in f.calls("load")])


def test_moves_are_whitelisted_ops_with_checked_arguments():
    assert set(MOVES) <= set(OPS)
    for name, m in MOVES.items():
        Step.from_dict(m.example)
        assert OPS[name].doc.startswith("Move:")
    with pytest.raises(ScheduleError, match="expected one of"):
        Step("unroll_calls", ["preload", 2])
    with pytest.raises(ScheduleError, match="integer >= 1|expected"):
        Step("tile_loop", ["i", 0])


@pytest.mark.parametrize("steps", [
    [S("tile_loop", "i", 2)],
    [S("tile_loop", "i", 4), S("interchange_loops", "ii")],
    [S("hoist_load", "B", 0)],
    [S("hoist_load", "A", 1), S("hoist_load", "B", 1)],
    [S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("stage_buffer", "a", ["ii"]), S("stage_buffer", "res", [])],
    [S("tile_loop", "i", 4), S("interchange_loops", "ii"), S("hoist_load", "B", 1), S("hoist_load", "A", 1),
     S("stage_buffer", "res", ["ii"]), S("spread_banks", "b", 16)],
    [S("double_buffer", "res", 2)],
    # a copy of a per row tile, each padded to a bank, then every copy's loads before the computes
    [S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("spread_banks", "a", 16), S("stage_buffer", "a", ["ii"]),
     S("hoist_load", "B", 0), S("stage_buffer", "res", ["ii"]), S("split_loads", "A")],
    # j outside i: all of A resident, a B strip per j
    [S("interchange_loops", "i"), S("hoist_load", "B", 1), S("hoist_load", "A", 1)],
    # the staged copies of a padded one by one (each in banks of its own)
    [S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("stage_buffer", "a", ["ii"]), S("spread_banks", "a", 8, 1)],
])
def test_predictions_agree_with_exo(base, steps):
    s, p = base
    f = facts(p)
    for d in steps:
        f = predict(f, d["op"], dict(zip([q.name for q in OPS[d["op"]].params], d["args"])))
    real = facts(s.extend(steps).apply(W.proc))
    assert _shape(f) == _shape(real)
    assert f.rows_used("GEMM_SCRATCH") == real.rows_used("GEMM_SCRATCH")


def test_unrolled_calls_counts_the_copies(base):
    s, p = base
    f = facts(p)
    for role, depth in (("compute", 2), ("load", 1), ("store", 1), ("compute", 4)):
        real = facts(s.extend([S("unroll_calls", role, depth, None, False)]).apply(W.proc))
        assert unrolled_calls(f, role, depth) == real.n_calls()


#: B resident, the row tiles in pairs (iio, iii), a copy of a and res per
#: tile with the two copies of a pair in different banks, A loaded one step ahead
PIPELINED = [S("tile_loop", "i", 8), S("tile_loop", "ii", 2), S("interchange_loops", "iio"),
             S("hoist_load", "B", 0), S("hoist_load", "A", 1), S("stage_buffer", "res", ["iio", "iii"]),
             S("stage_buffer", "a", ["iio", "iii"]), S("interchange_loops", "iii"), S("spread_banks", "a", 8, 1),
             S("zero_into_compute"), S("prefetch_loads", "A")]


@pytest.mark.parametrize("steps", [
    # j outside the row tiles, B per (block, j), loads interleaved with the first tile's computes
    [S("tile_loop", "i", 4), S("interchange_loops", "ii"), S("hoist_load", "B", 1), S("hoist_load", "A", 1),
     S("stage_buffer", "res", ["ii"]), S("interleave_loads", "B"), S("unroll_calls", "compute", 2, None, False)],
    # all of B resident, A and res double-buffered, banks spread, zeroing folded in, unrolled
    [S("tile_loop", "i", 2), S("hoist_load", "B", 0), S("hoist_load", "A", 1), S("stage_buffer", "a", ["ii"]),
     S("stage_buffer", "res", ["ii"]), S("spread_banks", "a", 16), S("zero_into_compute"),
     S("unroll_calls", "compute", 3), S("unroll_calls", "store", 1)],
    [S("double_buffer", "res", 2), S("hoist_load", "A", 1), S("unroll_calls", "load", 2, "B")],
    # B resident, a copy of a per row tile in its own bank, each copy's loads ahead of the computes
    [S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("spread_banks", "a", 16), S("stage_buffer", "a", ["ii"]),
     S("hoist_load", "B", 0), S("stage_buffer", "res", ["ii"]), S("zero_into_compute"), S("split_loads", "A")],
    # the same with the staged copies padded after staging
    [S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("stage_buffer", "a", ["ii"]), S("hoist_load", "B", 0),
     S("stage_buffer", "res", ["ii"]), S("spread_banks", "a", 16, 1), S("split_loads", "A")],
    # A resident (j outside i), its loads interleaved with the first strip's computes
    [S("interchange_loops", "i"), S("hoist_load", "B", 1), S("hoist_load", "A", 1), S("zero_into_compute"),
     S("interleave_loads", "A")],
    # B resident; A tiles in pairs, the pair's copies in two banks, loaded one pair ahead
    PIPELINED + [S("unroll_calls", "compute", 1, None, False)],
])
def test_compositions_are_bit_exact_and_faster(base, steps):
    from autocomp_exo.evaluate import evaluate

    s, _p = base
    m0 = evaluate(W, s)
    m = evaluate(W, s.extend(steps))
    assert m.ok, m.error
    assert m.cycles < m0.cycles


def test_prefetch_loads_issues_each_pair_one_step_ahead(base):
    """In the pipelined loop over pairs, each body issues a load, then the
    computes of the other copy, then the second load, then its computes; the
    pair's copies of a start a bank apart; loads are not duplicated."""
    from autocomp_exo.evaluate import evaluate
    from gemmini_isa import GemminiConfig

    s, p = base
    f = facts(s.extend(PIPELINED).apply(W.proc))
    plain = facts(s.extend(PIPELINED[:-1]).apply(W.proc))
    steady = [lp for lp in f.loops() if lp.name == "iio" and lp.extent == 3]
    assert len(steady) == 1
    order = [n.role for n in steady[0].walk() if n.kind == "call" and n.role in ("load", "compute")]
    firsts = [r for i, r in enumerate(order) if i == 0 or order[i - 1] != r]
    assert firsts == ["load", "compute", "load", "compute"]
    a = f.alloc("a")
    assert a.dims[0] == 2 and f.rows(a) // 2 == GemminiConfig().sp_bank_rows
    assert len(f.calls("load")) == len(plain.calls("load")) + 2   # peeled: step 0's and the steady loop's pair
    m0, m = evaluate(W, s.extend(PIPELINED[:-1])), evaluate(W, s.extend(PIPELINED))
    assert m.ok and m0.ok, (m.error, m0.error)
    assert m.cycles < m0.cycles


def test_prefetch_loads_refusals_say_why(base):
    s, _p = base
    with pytest.raises(ScheduleError, match="does not depend on loop"):
        s.extend([S("tile_loop", "i", 2), S("hoist_load", "A", 1), S("prefetch_loads", "A")]).apply(W.proc)
    with pytest.raises(ScheduleError, match="no loop around the load of A|is not the whole body"):
        s.extend([S("prefetch_loads", "A")]).apply(W.proc)


def test_zero_into_compute_uses_the_overwriting_twin(base):
    s, _p = base
    steps = [S("tile_loop", "i", 2), S("hoist_load", "B", 0), S("hoist_load", "A", 1), S("zero_into_compute")]
    f = facts(s.extend(steps).apply(W.proc))
    assert not f.calls("zero")
    computes = f.calls("compute")
    assert any(not c.accumulate for c in computes) and any(c.accumulate for c in computes)


def test_refusals_say_why(base):
    s, p = base
    cases = [
        (S("tile_loop", "i", 3), "factor 3 does not divide loop i (8 iterations)"),
        (S("tile_loop", "q", 2), "no loop 'q'"),
        (S("hoist_load", "Q", 1), "no load of Q; loaded operands: A, B"),
        (S("stage_buffer", "res", ["ko"]), "not allocated inside loop(s) ko"),
        (S("zero_into_compute"), "not a perfect nest"),
        (S("interchange_loops", "ko"), "not one loop"),
    ]
    hoisted = Schedule([S("hoist_load", "A", 1)]).apply(p)
    with pytest.raises(ScheduleError, match="stage a over i first"):
        Schedule([S("split_loads", "A")]).apply(hoisted)
    for step, msg in cases:
        with pytest.raises(ScheduleError, match="MoveError") as e:
            Schedule([step]).apply(p)
        assert msg in e.value.message, e.value.message
        assert e.value.op == step["op"] and e.value.index == 0
