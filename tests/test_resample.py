"""Alternative decisions of moves on a new shape (`moves.resample`), and `transfer.adapt` replaying moves."""
from __future__ import annotations

import pytest

from autocomp_exo.moves.resample import alternatives, decisions_of
from autocomp_exo.workloads import GemmWorkload
from gemmini_isa import GemminiConfig


def _facts(M, N, K):
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.proc_facts import facts

    w = GemmWorkload(M, N, K)
    return facts(exo_unopt.schedule(w).apply(w.proc))


@pytest.fixture(scope="module")
def f64():
    return _facts(64, 64, 64)        # i: 4 row tiles; a: 64 rows, b: 256 rows, both inside i and j


@pytest.fixture(scope="module")
def f256():
    return _facts(256, 64, 64)       # i: 16 row tiles


def test_decisions_of_fills_the_defaults():
    assert decisions_of("unroll_calls", ["compute", 2]) == {"role": "compute", "depth": 2, "operand": None,
                                                            "simplify": True}
    assert decisions_of("tile_loop", ["i"], {"factor": 4}) == {"loop": "i", "factor": 4}


def test_tile_factors_are_divisors_of_the_new_extent(f64, f256):
    d = {"loop": "i", "factor": 3}
    assert alternatives(f256, "tile_loop", d) == [{"loop": "i", "factor": f} for f in (4, 2, 8)]
    # the recorded factor itself is not an alternative; with the old facts (i: 4 -> 16)
    # the factor scaled by the extent ratio (2 * 16/4 = 8) comes first
    d = {"loop": "i", "factor": 2}
    assert [a["factor"] for a in alternatives(f256, "tile_loop", d)] == [4, 8]
    assert [a["factor"] for a in alternatives(f256, "tile_loop", d, old_facts=f64)] == [8, 4]
    assert alternatives(f64, "tile_loop", {"loop": "nope", "factor": 2}) == []
    assert alternatives(f64, "tile_loop", {"loop": "j", "factor": 2}) == []     # 1 iteration: nothing to tile


def test_smaller_unrolls_hoists_stages_and_double_buffers(f64):
    d = decisions_of("unroll_calls", ["compute", 3])
    assert [a["depth"] for a in alternatives(f64, "unroll_calls", d)] == [2, 1]
    assert alternatives(f64, "unroll_calls", decisions_of("unroll_calls", ["compute"])) == []
    assert alternatives(f64, "hoist_load", {"operand": "B", "levels": 0}) == [{"operand": "B", "levels": 1}]
    assert alternatives(f64, "hoist_load", {"operand": "B", "levels": 1}) == []
    assert [a["expand"] for a in alternatives(f64, "stage_buffer", {"buffer": "b", "expand": ["i", "j"]})] == \
        [["i"], []]
    # loops the buffer is no longer inside go first
    assert [a["expand"] for a in alternatives(f64, "stage_buffer", {"buffer": "b", "expand": ["j", "ko"]})] == \
        [["j"], []]
    assert alternatives(f64, "double_buffer", {"buffer": "res", "factor": 4}) == [{"buffer": "res", "factor": 2}]
    assert alternatives(f64, "double_buffer", {"buffer": "res", "factor": 2}) == []
    assert alternatives(f64, "zero_into_compute", {}) == []
    assert alternatives(f64, "interchange_loops", {"outer": "i"}) == []


def test_bank_copies_follow_the_buffer_rows_now(f64):
    # b has 256 rows now: 16 copies fill a 4096-row bank
    assert alternatives(f64, "spread_banks", {"buffer": "b", "copies": 4}) == [{"buffer": "b", "copies": 16}]
    assert alternatives(f64, "spread_banks", {"buffer": "b", "copies": 16}) == []
    # a buffer that already fills a bank: no copies
    assert alternatives(f64, "spread_banks", {"buffer": "b", "copies": 4}, GemminiConfig(sp_bank_rows=256)) == []
    assert alternatives(f64, "spread_banks", {"buffer": "a", "copies": 2}, GemminiConfig(sp_bank_rows=256)) == \
        [{"buffer": "a", "copies": 4}]
    assert alternatives(f64, "spread_banks", {"buffer": "nope", "copies": 2}) == []


def test_adapt_replays_moves_with_resampled_decisions():
    """A record of moves on 128x128x128 adapted to 96x128x128: the row-tile loop
    has 6 iterations there, the recorded factor 4 does not tile it and a
    divisor of 6 is chosen (noted); the other moves keep their decisions and
    the adapted schedule runs bit-exact."""
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.library import Record, hardware_fingerprint
    from autocomp_exo.transfer import adapt

    src = GemmWorkload(128, 128, 128)
    moves = [{"op": "tile_loop", "args": ["i", 4], "menu": "tiling"},
             {"op": "hoist_load", "args": ["B", 1], "menu": "hoist"},
             {"op": "unroll_calls", "args": ["compute", 2], "menu": "unroll"}]
    rec = Record(src.signature(), hardware_fingerprint(), exo_unopt.schedule(src).extend(moves), 1000, 2000,
                 "exo-unopt", None, 0, {"source": "test"})
    dst = GemmWorkload(96, 128, 128)
    ads = adapt(rec, dst)
    assert ads and {a.policy for a in ads} <= {"keep", "scale"}
    a = ads[0]
    n = len(exo_unopt.schedule(dst))
    tail = a.schedule.steps[n:]
    assert [s.op for s in tail] == ["tile_loop", "hoist_load", "unroll_calls"], a.notes
    assert tail[0].args[1] == 3 and 6 % tail[0].args[1] == 0
    assert tail[1].to_dict() == {**moves[1], "kwargs": {}} and tail[2].to_dict() == {**moves[2], "kwargs": {}}
    assert "step 70 tile_loop 'i': factor 4 -> 3 (extent 6)" in a.notes, a.notes
    assert [s.menu for s in tail] == ["tiling", "hoist", "unroll"]
    m = evaluate(dst, a.schedule)
    assert m.ok, m.error
    # code past max_calls: fewer unrolled levels (25 calls with depth 2, 13 with depth 1)
    b = adapt(rec, dst, policies=("keep",), max_calls=20)[0]
    assert b.schedule.steps[-1].args[:2] == ["compute", 1]
    assert any(x.startswith("step 72 unroll_calls: depth 2 -> 1 (25 calls > 20") for x in b.notes), b.notes
