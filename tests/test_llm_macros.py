"""Macro moves through the LLM path (issue 14, item 3), through the real
`openai` client against the scripted server on 127.0.0.1: the prompts offer
the moves with the arguments valid on the proc and worked examples applied
to it; a macro answer is accepted and applied; the examples name a user
proc's own names; a wrong macro argument is sent back with the fix."""
from __future__ import annotations

import json
import math
import os
import random
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_openai_server import FakeOpenAIServer, text  # noqa: E402

from autocomp_exo.agents import prompts  # noqa: E402
from autocomp_exo.agents.base import Candidate, Plan  # noqa: E402
from autocomp_exo.agents.llm import LLMAgent, parse_steps  # noqa: E402
from autocomp_exo.menu import MENU  # noqa: E402

FAST = dict(backoff=0.001, backoff_max=0.01, timeout=30.0)


def _user(req) -> str:
    return next(m["content"] for m in req["messages"] if m["role"] == "user")


def _macro_section(u: str) -> str:
    i = u.index(prompts.MACRO_MARK)
    j = u.find("\n## ", i + 3)
    return u[i:j]


def _chain(u: str, operand: str) -> list:
    """The steps of the prompt's worked example that makes ``operand`` resident."""
    sec = _macro_section(u)
    block = sec.split(f"* make {operand} resident", 1)[1]
    line = next(ln for ln in block.splitlines() if ln.strip().startswith('{"steps"'))
    return json.loads(line)["steps"]


@pytest.fixture(scope="module")
def server():
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    for k in saved:
        os.environ[k] = ",".join(x for x in (saved[k], "127.0.0.1", "localhost") if x)
    try:
        with FakeOpenAIServer(lambda req: "OK") as s:
            yield s
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def srv(server):
    server.reset()
    return server


@pytest.fixture(scope="module")
def base64():
    import autocomp_exo as ax
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.proc_facts import facts

    w = ax.GemmWorkload(64, 64, 64)
    s = exo_unopt.schedule(w)
    m = evaluate(w, s)
    assert m.ok
    return Candidate(0, s, m, str(m.proc), None, None, 0, w, facts=facts(m.proc).to_json())


def make_agent(srv, **kw):
    return LLMAgent([srv.model_url("m1")], **{**FAST, "warn": lambda m: None, "show_c": False, **kw})


def _resident_operand(u: str) -> str:
    return re.search(r"\* make (\w+) resident", _macro_section(u)).group(1)


def test_a_macro_answer_is_accepted_and_applied(srv, base64):
    """The model copies the prompt's "make X resident" chain: one answer of a
    few move steps, accepted by Exo and faster on the simulator."""
    from autocomp_exo.moves import MOVES
    from autocomp_exo.proc_facts import facts

    def model(req):
        u = _user(req)
        if prompts.PLAN_MARK in u:
            assert "make " in u and "resident" in u        # the plan prompt lists the moves that apply
            return text("The loads repeat.\n\nChosen optimization: **scratchpad_reuse**\nPLAN: make it resident.")
        steps = _chain(u, _resident_operand(u)) + [{"op": "unroll_calls", "args": ["compute", 1]}]
        return text("Keep it resident:\n```json\n" + json.dumps({"steps": steps}) + "\n```")

    srv.responder = model
    a = make_agent(srv)
    plans = a.plan(base64, [o for o in MENU if o.key == "scratchpad_reuse"], 1, random.Random(0))
    assert plans and plans[0].option == "scratchpad_reuse"
    out = a.implement(base64, plans[0], 1, random.Random(1))
    assert out, a.rejections
    steps = out[0]
    assert all(s["op"] in MOVES for s in steps) and len(steps) <= 8
    assert srv.hits() == 2 and not a.rejections               # no retry needed
    u = _user(srv.requests[-1])
    assert "applied with Exo" in _macro_section(u)
    # applied: the resident operand's load runs fewer times (out of the tile loop it does not read)
    op = _resident_operand(u)

    def runs(f):
        return math.prod(lp.extent for lp in f.loads_of(op)[0].loops())

    after = facts(base64.schedule.extend(steps).apply(base64.workload.proc))
    assert runs(after) < runs(base64.proc_facts())


def test_worked_examples_name_the_procs_own_names(srv):
    """A user's GEMM whose operands, loops and buffers are not the standard
    names: the arguments and examples of the prompt are its own."""
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.proc_facts import facts
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.workloads import recognise
    from test_workloads import tensors_first

    rec = recognise(tensors_first.partial_eval(64, 64, 64))
    mine = rec.to_user(exo_unopt.schedule(rec.workload).apply(rec.workload.proc))
    f = facts(mine)
    loaded = [c.dram_operand().buffer for c in f.calls("load")]
    assert loaded == ["X", "Y"]
    cand = Candidate(0, Schedule([]), None, str(mine), None, None, 0, None, facts=f.to_json())
    srv.responder = lambda req: text("```json\n" + json.dumps({"steps": _chain(_user(req), "Y")}) + "\n```")
    a = make_agent(srv, base_proc=mine)
    out = a.implement(cand, Plan("scratchpad_reuse", "llm", "make Y resident"), 1, random.Random(0))
    sec = _macro_section(_user(srv.requests[0]))
    examples = [json.loads(ln.strip())["steps"] for ln in sec.splitlines() if ln.strip().startswith('{"steps"')]
    args = {json.dumps(a_) for ex in examples for s in ex for a_ in s["args"]}
    assert '"X"' in args and '"Y"' in args and '"row"' in args          # its operands and loops
    assert not {'"A"', '"B"', '"i"'} & args                            # not the standard names
    assert 'operand "X"' in sec and '"row" (' in sec                   # the valid arguments too
    assert "applied with Exo" in sec and "for row in seq(" in sec      # the nest after, from Exo
    assert out and out[0] == [dict(s, kwargs={}, menu="scratchpad_reuse") for s in _chain(_user(srv.requests[0]), "Y")]
    assert Schedule(out[0]).apply(mine) is not None


def test_a_wrong_macro_argument_is_sent_back_with_the_fix(srv, base64):
    """hoist_load given the local buffer instead of the DRAM operand: the
    retry names the operands it accepts; the corrected answer is used."""
    def model(req):
        last = req["messages"][-1]["content"]
        u = _user(req)
        ops = re.findall(r'operand "(\w+)": its load', _macro_section(u))
        if prompts.FIX_MARK in last:
            op = re.search(r'operand "(\w+)": its load', last).group(1)
            return text('```json\n{"steps": [{"op": "hoist_load", "args": ["%s", 1]}]}\n```' % op)
        assert ops
        return text('```json\n{"steps": [{"op": "hoist_load", "args": ["%s_tile", 1]}]}\n```' % ops[0].lower())

    srv.responder = model
    a = make_agent(srv)
    out = a.implement(base64, Plan("hoist", "llm", "hoist a load"), 1, random.Random(0))
    assert srv.hits() == 2
    fix = srv.requests[1]["messages"][-1]["content"]
    assert "Exo rejected step 0 (hoist_load)" in fix and "loaded operands:" in fix
    assert "Arguments hoist_load accepts on this proc:" in fix and 'operand "' in fix
    assert out and out[0][0]["op"] == "hoist_load" and not out[0][0]["args"][0].endswith("_tile")


def test_macro_forms_are_repaired_or_named():
    """A move by its verb gets the nearest op named; expand as a string is a list."""
    from autocomp_exo.agents.llm import AnswerError

    with pytest.raises(AnswerError, match="did you mean 'hoist_load'"):
        parse_steps('{"steps": [{"op": "hoist", "args": ["B", 1]}]}', "hoist")
    notes: list = []
    got = parse_steps('{"steps": [{"op": "stage_buffer", "args": ["res", "ii, jo"]}, '
                      '{"op": "unroll_calls", "args": {"role": "compute", "depth": "2", "operand": "null"}}]}',
                      "tiling", notes=notes)
    assert got[0]["args"] == ["res", ["ii", "jo"]]
    assert got[1]["args"][:3] == ["compute", 2, None]
    with pytest.raises(AnswerError, match="macro moves"):
        parse_steps(json.dumps({"steps": [{"op": "simplify"}] * 65}), "other")


def test_the_guide_and_the_checks_in_a_worker_are_the_ones_made_here():
    """The search's worker pool builds a parent's worked examples (`guide_task`)
    and checks drafts (`check_task`), `workers.TASK_KINDS` kinds: the prompt
    text and the retry messages are the in-process ones."""
    import autocomp_exo as ax
    from autocomp_exo.agents import llm_moves
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.proc_facts import facts
    from autocomp_exo.workers import Task, WorkerPool

    w = ax.GemmWorkload(64, 64, 64)
    s = exo_unopt.schedule(w)
    p = s.apply(w.proc)
    here = llm_moves.guide(facts(p), None, p).text()
    drafts = [[{"op": "simplify", "args": []}, {"op": "unroll_loop", "args": ["nope"]}],
              [{"op": "hoist_load", "kwargs": {"operand": "nope", "levels": 1}}],
              [{"op": "simplify", "args": []}]]
    agent = LLMAgent(["http://127.0.0.1:9/v1::m"], warn=lambda m: None)
    parent = Candidate(0, s, None, None, None, None, 0, w)
    with WorkerPool(1) as pool:
        r = pool.submit({**Task.of(w, s).to_dict(), "kind": "guide"}).result(timeout=120)
        bad = pool.submit({**Task.of(w, s).to_dict(), "schedule": [{"op": "nope"}], "kind": "guide"}).result()
        checked = [pool.submit({**Task.of(w, s).to_dict(), "kind": "check", "steps": d, "mode": "exo"}).result()
                   for d in drafts]
    assert r["measurement"]["ok"] and r["text"] == here and "e.g." in here
    assert not bad["measurement"]["ok"] and bad["measurement"]["stage"] == "guide"
    mine = [agent._check_locked(parent, d) for d in drafts]
    assert [c["error"] for c in checked] == mine
    assert "Steps 0..0 applied" in mine[0] and "Arguments hoist_load accepts" in mine[1] and mine[2] is None
