"""The offline agent: a policy over the move library. Plans stay within the
(dropped-out) menu, steps are valid labelled move ops naming only what the
proc has, decisions follow structure (not names), every proposal fits the
search's config, and what it proposes stays bit-exact in the simulator."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from gemmini_isa import GemminiConfig

from autocomp_exo.agents import Candidate, OfflineAgent, Plan
from autocomp_exo.agents.offline import OPTION_TACTICS, TACTICS
from autocomp_exo.baselines import exo_unopt
from autocomp_exo.menu import KEYS, MENU, dropout
from autocomp_exo.moves import MOVES
from autocomp_exo.proc_facts import facts
from autocomp_exo.schedule import Schedule, Step
from autocomp_exo.workloads import GemmWorkload

W128 = GemmWorkload(128, 128, 128)


@pytest.fixture(scope="module")
def mapped():
    """(schedule, proc, facts) of Exo's standard mapping of the 128^3 GEMM."""
    s = exo_unopt.schedule(W128)
    p = s.apply(W128.proc)
    return s, p, facts(p)


def _cand(mapped, config=None, workload=W128):
    s, _p, f = mapped
    return Candidate(0, s, None, None, workload=workload, facts=f.to_json(), config=config)


def _names(f) -> set:
    return ({a["name"] for a in f.args} | f.loop_names() | {a.name for a in f.allocs()})


def test_every_menu_option_has_tactics_and_every_tactic_an_option():
    assert set(OPTION_TACTICS) == set(KEYS)
    assert all(OPTION_TACTICS[k] for k in KEYS)
    assert {t for ts in OPTION_TACTICS.values() for t in ts} == set(TACTICS)


def test_applicable_tactics_on_the_standard_mapping(mapped):
    app = set(OfflineAgent().applicable(_cand(mapped)))
    assert {"reuse", "hoist", "tile", "interchange", "spread"} <= app
    assert "zero" not in app            # the loads still sit in the compute nest


def test_plans_stay_within_the_menu_and_steps_are_valid_move_ops(mapped):
    ag = OfflineAgent()
    rng = random.Random(3)
    f = mapped[2]
    seen_ops = set()
    for _ in range(25):
        menu = dropout(MENU, 0.7, rng)
        for plan in ag.plan(_cand(mapped), menu, 2, rng):
            assert plan.option in {o.key for o in menu}
            assert plan.move in OPTION_TACTICS[plan.option]
            for suffix in ag.implement(_cand(mapped), plan, 2, rng):
                assert suffix
                for d in suffix:
                    assert d["menu"] == plan.option
                    st = Step.from_dict(d)         # whitelisted op, checked arguments
                    assert st.op in MOVES
                    seen_ops.add(st.op)
                # the first step of a plan names only what the proc has
                first = Step.from_dict(suffix[0])
                for a in first.args:
                    if isinstance(a, str) and a not in ("compute", "load", "zero", "store"):
                        assert a in _names(f), (first, sorted(_names(f)))
    assert {"tile_loop", "hoist_load", "unroll_calls"} <= seen_ops


def test_agent_is_deterministic_given_the_rng(mapped):
    ag = OfflineAgent()
    p1 = ag.plan(_cand(mapped), MENU, 3, random.Random(5))
    p2 = ag.plan(_cand(mapped), MENU, 3, random.Random(5))
    assert p1 == p2
    assert ag.implement(_cand(mapped), p1[0], 2, random.Random(9)) == \
        ag.implement(_cand(mapped), p1[0], 2, random.Random(9))


def test_no_plan_without_facts_or_proc():
    class NoProc:
        M = N = K = 128

    c = Candidate(0, Schedule([]), None, None, workload=NoProc())
    assert OfflineAgent().plan(c, MENU, 2, random.Random(0)) == []


def test_decisions_follow_structure_not_names(mapped):
    """A user's GEMM with other argument and loop names (tensors first):
    with the same rng the agent makes the same decisions as on the canonical
    proc, written with the user's names, and they apply to the user's proc."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_workloads import tensors_first

    from autocomp_exo.workloads import recognise

    rec = recognise(tensors_first.partial_eval(128, 128, 128))
    assert not rec.is_canonical
    mine = rec.to_user(mapped[1])
    fu = facts(mine)
    user = Candidate(0, Schedule([]), None, None, workload=rec.workload, facts=fu.to_json())
    ag = OfflineAgent()
    for seed in range(6):
        a = ag.implement(_cand(mapped), Plan("other", "reuse"), 1, random.Random(seed))
        b = ag.implement(user, Plan("other", "reuse"), 1, random.Random(seed))
        assert len(a) == len(b) == 1
        assert [d["op"] for d in a[0]] == [d["op"] for d in b[0]]
        ints = lambda steps: [[x for x in d["args"] if isinstance(x, int)] for d in steps]  # noqa: E731
        assert ints(a[0]) == ints(b[0])
        operands = {x for d in b[0] if d["op"] == "hoist_load" for x in d["args"][:1]}
        assert operands <= {"X", "Y"}
        if seed < 2:
            Schedule(b[0]).apply(mine)        # the user's names are the proc's


def test_every_proposal_fits_half_the_scratchpad(mapped):
    """With half the scratchpad (2048-row banks) the agent never proposes
    buffers that do not fit; its bank spreads pad to the smaller banks."""
    half = GemminiConfig(sp_bank_rows=2048)
    ag = OfflineAgent()
    rng = random.Random(1)
    s, _p, _f = mapped
    checked = 0
    copies = set()
    for tactic in ("reuse", "hoist", "stage", "spread", "double_buffer"):
        for suffix in ag.implement(_cand(mapped, half), Plan("other", tactic), 3, rng):
            p = s.extend(suffix).apply(W128.proc)
            assert facts(p).over_capacity(half) == "", suffix
            copies |= {d["args"][1] for d in suffix if d["op"] == "spread_banks"}
            checked += 1
    assert checked >= 8
    default_copies = {d["args"][1] for d in ag.implement(_cand(mapped), Plan("other", "spread"), 3,
                                                        random.Random(1))[0] if d["op"] == "spread_banks"}
    assert copies and default_copies and max(copies) < max(default_copies)


@pytest.mark.parametrize("relu,config", [(False, None), (True, None), (False, GemminiConfig(sp_bank_rows=2048))])
def test_proposals_are_bit_exact_and_some_are_faster(relu, config):
    """Reuse plans on a 64x128x128 GEMM (with ReLU; with half the scratchpad):
    every one runs bit-exact against the reference and the best is faster than
    Exo's standard mapping."""
    from autocomp_exo.evaluate import evaluate

    w = GemmWorkload(64, 128, 128, relu=relu)
    s = exo_unopt.schedule(w)
    p = s.apply(w.proc)
    base = evaluate(w, s, config=config)
    assert base.ok, base.error
    c = Candidate(0, s, base, None, workload=w, facts=facts(p).to_json(), config=config)
    best = base.cycles
    suffixes = OfflineAgent().implement(c, Plan("scratchpad_reuse", "reuse"), 3, random.Random(2))
    assert len(suffixes) == 3
    for suffix in suffixes:
        m = evaluate(w, s.extend(suffix), config=config)
        assert m.ok, (suffix, m.error)
        best = min(best, m.cycles)
    assert best < base.cycles


def test_a_move_exo_refused_is_not_proposed_again(mapped):
    """notify() with a child that failed at a schedule step: the agent no
    longer proposes that move (same op, same first decision) after that
    prefix; other moves still come."""
    from autocomp_exo.measurement import Measurement

    s, _p, _f = mapped
    ag = OfflineAgent()
    parent = _cand(mapped)

    def first_moves():
        outs = ag.implement(parent, Plan("hoist", "hoist"), 8, random.Random(3))
        return {(o[0]["op"], o[0]["args"][0]) for o in outs}

    before = first_moves()
    assert ("hoist_load", "B") in before and ("hoist_load", "A") in before
    n = len(s.steps)
    child = Candidate(1, s.extend([{"op": "hoist_load", "args": ["B", 1]}]),
                      Measurement(ok=False, stage="schedule",
                                  error=f"ScheduleError: step {n} (hoist_load) [SchedulingError]: Cannot fission loop"),
                      None, 0, workload=W128)
    ag.notify([child])
    after = first_moves()
    assert ("hoist_load", "B") not in after and ("hoist_load", "A") in after
    # another parent (a different prefix) is not affected
    other = Candidate(2, s.extend([{"op": "tile_loop", "args": ["i", 2]}]), None, None, workload=W128)
    outs = ag.implement(other, Plan("hoist", "hoist"), 8, random.Random(3))
    assert any(o[0]["args"][0] == "B" for o in outs)


def test_reuse_sometimes_pipelines_and_the_pipelined_plan_is_bit_exact_and_faster():
    """On a tall GEMM (B fits, many row tiles) some reuse plans software-pipeline
    the A tiles (`prefetch_loads` after a copy per tile, the pair's copies a bank
    apart); such a plan is bit-exact and beats the standard mapping."""
    from autocomp_exo.agents.offline import _reuse, _view
    from autocomp_exo.evaluate import evaluate

    w = GemmWorkload(256, 64, 128)
    s = exo_unopt.schedule(w)
    v = _view(Candidate(0, s, None, None, workload=w, facts=facts(s.apply(w.proc)).to_json()))
    plans = [c for c in (_reuse(v, random.Random(i)) for i in range(300)) if c is not None]
    piped = [c for c in plans if "prefetch_loads" in [op for op, _d in c.steps]]
    assert piped and len(piped) < len(plans)
    steps = piped[0].step_dicts()
    ops = [d["op"] for d in steps]
    assert ops.index("stage_buffer") < ops.index("prefetch_loads") and "spread_banks" in ops
    m0, m = evaluate(w, s), evaluate(w, s.extend(steps))
    assert m.ok, m.error
    assert m.cycles < m0.cycles
