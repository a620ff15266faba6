"""The offline agent: reading proc text, plans within the (dropped-out) menu, valid labelled steps,
moves that Exo accepts and that stay correct on a small GEMM."""
from __future__ import annotations

import random

import pytest

from autocomp_exo.agents import Candidate, OfflineAgent, Plan
from autocomp_exo.agents.offline import MOVES, OPTION_MOVES
from autocomp_exo.agents.proctext import parse
from autocomp_exo.menu import KEYS, MENU, dropout
from autocomp_exo.schedule import Schedule, Step

TEXT = '''def gemm_128x128x128(scale: f32 @ DRAM, act: bool @ DRAM,
                     A: i8[128, 128] @ DRAM, B: i8[128, 128] @ DRAM,
                     C: i8[128, 128] @ DRAM):
    config_st_acc_i8(scale, stride(C, 0), act)
    config_zero()
    for i in seq(0, 8):
        res: i32[2, 4, 16, 16] @ GEMM_ACCUM
        for j in seq(0, 2):
            for j_in_o in seq(0, 4):
                do_zero_acc_i32(16, 16, res[j, j_in_o, 0:16, 0:16])
            a: i8[2, 4, 16, 16] @ GEMM_SCRATCH
            b: i8[2, 4, 4, 16, 16] @ GEMM_SCRATCH
            for ko in seq(0, 2):
                do_ld_i8_block_id1(16, 4, A[16 * i:16 + 16 * i,
                                            64 * ko:64 + 64 * ko],
                                   a[ko, 0:4, 0:16, 0:16])
                for k in seq(0, 4):
                    do_ld_i8_block_id2(
                        16, 4, B[16 * k + 64 * ko:16 + 16 * k + 64 * ko,
                                 64 * j:64 + 64 * j], b[ko, k, 0:4, 0:16,
                                                        0:16])
                for k in seq(0, 4):
                    for j_in_o in seq(0, 4):
                        do_matmul_acc_i8(16, 16, 16, a[ko, k, 0:16, 0:16],
                                         b[ko, k, j_in_o, 0:16,
                                           0:16], res[j, j_in_o, 0:16, 0:16])
            for j_in_o in seq(0, 4):
                do_st_acc_i8(
                    16, 16, res[j, j_in_o, 0:16, 0:16],
                    C[16 * i:16 + 16 * i,
                      16 * j_in_o + 64 * j:16 + 16 * j_in_o + 64 * j])
'''


class _W:
    M = N = K = 128
    relu = False


def _cand(text=TEXT):
    return Candidate(0, Schedule([]), None, text, workload=_W())


def test_proctext_reads_loops_buffers_and_calls():
    f = parse(TEXT)
    assert [l.name for l in f.loops()][:3] == ["i", "j", "j_in_o"]
    ldb = f.first_call("do_ld_i8_block_id2")
    assert [l.name for l in ldb.loops()] == ["i", "j", "ko", "k"]
    assert ldb.mentions("k") and ldb.mentions("j") and not ldb.mentions("i")
    a = f.alloc("a")
    assert a.dims == (2, 4, 16, 16) and a.mem == "GEMM_SCRATCH" and f.rows(a) == 128
    assert f.alloc("res").mem == "GEMM_ACCUM"
    assert f.loops("i")[0].extent == 8
    assert f.n_calls() == 7  # 2 configs + 5 instructions


def test_applicable_moves_on_the_standard_mapping():
    app = set(OfflineAgent().applicable(_cand()))
    assert {"tile_rows", "resident_b", "blocked", "hoist_load", "bank_spread"} <= app
    assert "zero_into_compute" not in app   # the loads still sit in the compute nest


def test_every_menu_option_has_moves_and_every_move_an_option():
    assert set(OPTION_MOVES) == set(KEYS)
    assert all(OPTION_MOVES[k] for k in KEYS)
    covered = {m for ms in OPTION_MOVES.values() for m in ms}
    assert covered == set(MOVES)


def test_plans_stay_within_the_menu_and_steps_are_valid_and_labelled():
    ag = OfflineAgent()
    rng = random.Random(3)
    for _ in range(40):
        menu = dropout(MENU, 0.7, rng)
        for plan in ag.plan(_cand(), menu, 2, rng):
            assert plan.option in {o.key for o in menu}
            assert plan.move in OPTION_MOVES[plan.option]
            for suffix in ag.implement(_cand(), plan, 2, rng):
                assert suffix
                for d in suffix:
                    assert d["menu"] == plan.option
                    Step.from_dict(d)  # whitelisted op, well-formed arguments


def test_agent_is_deterministic_given_the_rng():
    ag = OfflineAgent()
    p1 = ag.plan(_cand(), MENU, 3, random.Random(5))
    p2 = ag.plan(_cand(), MENU, 3, random.Random(5))
    assert p1 == p2
    i1 = ag.implement(_cand(), p1[0], 2, random.Random(9))
    i2 = ag.implement(_cand(), p1[0], 2, random.Random(9))
    assert i1 == i2


def test_no_plan_without_proc_text():
    assert OfflineAgent().plan(Candidate(0, Schedule([]), None, None, workload=_W()), MENU, 2,
                               random.Random(0)) == []


@pytest.mark.parametrize("seq", [
    ["resident_b", "zero_into_compute", "unroll"],
    ["tile_rows", "hoist_load", "double_buffer"],
])
def test_moves_compose_and_stay_correct_in_the_simulator(seq):
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.workloads import GemmWorkload

    w = GemmWorkload(32, 64, 128)
    s = exo_unopt.schedule(w)
    p = s.apply(w.proc)
    ag = OfflineAgent()
    rng = random.Random(0)
    applied = []
    for mv in seq:
        cand = Candidate(0, s, None, str(p), workload=w)
        if mv not in ag.applicable(cand):
            continue
        suffix = ag.implement(cand, Plan("other", mv), 1, rng)[0]
        s = s.extend(suffix)
        p = s.apply(w.proc)
        applied.append(mv)
    assert len(applied) >= 2
    m = evaluate(w, s)
    assert m.ok, m.error


def _sample_flow(shape, move, want, seeds=300):
    """(workload, exo_unopt schedule, params, steps) of the first sample of a
    flow move on Exo's standard mapping whose params satisfy ``want``."""
    from autocomp_exo.agents import offline as O
    from autocomp_exo.agents.proctext import parse
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.workloads import GemmWorkload

    w = GemmWorkload(*shape)
    s = exo_unopt.schedule(w)
    p = s.apply(w.proc)
    ctx = O.Ctx(parse(str(p)), Candidate(0, s, None, str(p), workload=w), *shape)
    for seed in range(seeds):
        params, steps = O.MOVES[move].sample(ctx, random.Random(seed))
        if want(params):
            return w, s, params, steps
    pytest.fail(f"{move} never sampled the wanted variant")


def test_blocked_pair_accumulators_and_raw_unroll_stay_correct():
    """The 'pair' accumulator variant of the blocked flow (two tiles alternating
    over pairs of row tiles) and an unroll without simplify: bit-exact, and the
    unrolled accumulator operands no longer mention a loop counter."""
    from autocomp_exo.agents import offline as O
    from autocomp_exo.agents.proctext import parse
    from autocomp_exo.evaluate import evaluate

    w, s, params, steps = _sample_flow((64, 128, 128), "blocked",
                                       lambda q: q["res"] == "pair" and "unrolled" not in q)
    s = s.extend([dict(d, menu="tiling") for d in steps])
    p = s.apply(w.proc)
    assert parse(str(p)).alloc("res").dims[0] == 2
    for seed in range(200):
        ctx = O.Ctx(parse(str(p)), Candidate(0, s, None, str(p), workload=w), 64, 128, 128)
        params, steps = O.MOVES["unroll"].sample(ctx, random.Random(seed))
        if params["call"] == "do_matmul_acc_i8" and not params["simplify"] and params["levels"] == 3:
            break
    else:
        pytest.fail("no raw 3-level unroll of the computes was sampled")
    s = s.extend([dict(d, menu="unroll") for d in steps])
    # the inner pair (iii) too: now the accumulator operand is a constant
    s = s.extend([{"op": "unroll_loop", "args": [{"parent": "do_matmul_acc_i8(_)"}], "kwargs": {},
                   "menu": "unroll"}])
    m = evaluate(w, s)
    assert m.ok, m.error
    assert "simplify" not in [d.op for d in s.steps[-4:]]
    import re
    mm = [l for l in m.proc.__str__().splitlines() if "do_matmul_acc_i8" in l or "res[" in l]
    assert not any(re.search(r"res\[iii", l) for l in mm)


@pytest.mark.parametrize("move", ["resident_b", "blocked"])
def test_flow_with_zero_folded_and_deep_unroll_is_bit_exact(move):
    """The flows' ending that folds the zeroing into the first compute of each
    tile and unrolls the tile: correct, no zeroing left, fewer commands."""
    from autocomp_exo.evaluate import evaluate

    w, s, params, steps = _sample_flow((64, 128, 128), move, lambda q: q.get("zero_into_compute"))
    m = evaluate(w, s.extend([dict(d, menu="fuse") for d in steps]))
    assert m.ok, m.error
    base = evaluate(w, s)
    zeroing = "gemmini_extended_mvin( 0,"          # Exo's zero-mvin of an accumulator tile
    assert zeroing in base.c_source and zeroing not in m.c_source
    assert m.instructions["total"] < base.instructions["total"]
    assert m.cycles < base.cycles


def test_blocked_flow_with_interleaved_b_loads_is_bit_exact():
    """The blocked flow's ending that peels the first row tile and fuses its ko
    loop with the B-strip loads: correct, and the loads of a strip are no
    longer one burst (computes follow the first loads directly)."""
    from autocomp_exo.evaluate import evaluate

    w, s, params, steps = _sample_flow((64, 128, 256), "blocked", lambda q: q.get("interleave"))
    m = evaluate(w, s.extend([dict(d, menu="fuse") for d in steps]))
    assert m.ok, m.error
    body = m.c_source[m.c_source.index("gemmini_extended_mvin3( &B"):]
    first_compute = body.index("gemmini_extended_compute_preloaded(")
    assert body[:first_compute].count("gemmini_extended_mvin3( &B") == 4   # one k group of B, then computes
    assert m.cycles < evaluate(w, s).cycles


def test_blocked_flow_with_prefetched_b_loads_is_bit_exact():
    """The blocked flow's software-pipelined ending: the B loads of step ko+1
    come before the computes of step ko, so a strip's first computes are
    preceded by two steps of loads (not one); correct, fully unrolled, and
    faster than Exo's standard mapping."""
    from autocomp_exo.evaluate import evaluate

    w, s, params, steps = _sample_flow((128, 128, 256), "blocked",
                                       lambda q: q.get("prefetch") and q["factor"] == 4)
    m = evaluate(w, s.extend([dict(d, menu="pipeline") for d in steps]))
    assert m.ok, m.error
    body = m.c_source[m.c_source.index("for (int_fast32_t j = 0;"):]
    first_compute = body.index("gemmini_extended_compute_preloaded(")
    assert body[:first_compute].count("gemmini_extended_mvin3( &B") == 8   # steps 0 and 1 of the strip
    assert [l.split("=")[0].split()[-1] for l in m.c_source.splitlines() if "for (int_fast32_t" in l] == ["io", "j"]
    assert m.cycles < evaluate(w, s).cycles
