"""The LLM agent end to end, through the real `openai` client, against a scripted
OpenAI-compatible server on 127.0.0.1 (tests/fake_openai_server.py).

Covers: a full search where the scripted model's steps improve a 64x64x64
GEMM; the cache replaying that search with zero requests; ensemble splitting;
retry with the error message; 429 / 500 / timeouts retried with backoff;
dropping a failing model and stopping cleanly when none is left; accounting
totals and costs; every kind of hostile answer.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_openai_server import Action, FakeOpenAIServer, status, text  # noqa: E402

from autocomp_exo.agents import prompts  # noqa: E402
from autocomp_exo.agents.accounting import Accounting, parse_price  # noqa: E402
from autocomp_exo.agents.base import Candidate, Plan  # noqa: E402
from autocomp_exo.agents.llm import AnswerError, LLMAgent, parse_plan, parse_steps  # noqa: E402
from autocomp_exo.agents.llm_cache import ResponseCache, cache_key  # noqa: E402
from autocomp_exo.agents.llm_client import LLMClient, LLMConfigError, ModelSpec  # noqa: E402
from autocomp_exo.menu import MENU, dropout, option  # noqa: E402

FAST = dict(backoff=0.001, backoff_max=0.01, timeout=5.0)


# --------------------------------------------------------------------------- scripted model

_MENU_LINE = re.compile(r"^- \[(\w+)\]", re.M)
_LOOP = re.compile(r"^\s*for (\w+) in seq\(0, (\d+)\):", re.M)


def _user(req) -> str:
    return req["messages"][-1]["content"] if req["messages"][-1]["role"] == "user" else ""


def _first_user(req) -> str:
    return next(m["content"] for m in req["messages"] if m["role"] == "user")


def kind(req) -> str:
    u = _first_user(req)
    if prompts.PLAN_MARK in u:
        return "plan"
    if prompts.IMPLEMENT_MARK in u:
        return "implement"
    return "?"


def good_model(req):
    """Plans: the first option offered (preferring unroll). Code: unroll a small loop of the proc shown."""
    u = _first_user(req)
    if kind(req) == "?":
        return text("OK")
    if kind(req) == "plan":
        offered = _MENU_LINE.findall(u.split("## Optimization menu", 1)[1])
        key = "unroll" if "unroll" in offered else offered[0]
        return text(f"OPTION: {key}\nPLAN: fully unroll a small inner loop so the CPU issues straight-line "
                    "commands.")
    proc = u.split("## Current program", 1)[1].split("## Scheduling ops", 1)[0]
    names = list(dict.fromkeys(n for n, e in _LOOP.findall(proc) if 2 <= int(e) <= 4))
    if not names:
        return text('{"steps": [{"op": "simplify", "args": []}]}')
    name = names[int(req.get("seed", 0)) % len(names)]
    return text("Here you go:\n```json\n" + json.dumps({"steps": [{"op": "unroll_loop", "args": [name]}]})
                + "\n```")


@pytest.fixture(scope="module")
def server():
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    for k in saved:   # a proxy configured on the machine must not see the local test server
        os.environ[k] = ",".join(x for x in (saved[k], "127.0.0.1", "localhost") if x)
    try:
        with FakeOpenAIServer(good_model) as s:
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
    server.responder = good_model
    return server


@pytest.fixture(scope="module")
def base64():
    """The 64x64x64 GEMM under Exo's standard mapping, evaluated once."""
    import autocomp_exo as ax
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.evaluate import evaluate

    from autocomp_exo.proc_facts import facts

    w = ax.GemmWorkload(64, 64, 64)
    s = exo_unopt.schedule(w)
    m = evaluate(w, s)
    assert m.ok
    return Candidate(0, s, m, str(m.proc), None, None, 0, w, facts=facts(m.proc).to_json())


def make_agent(srv, models=("m1", "m2"), **kw):
    warnings = []
    kw = {**FAST, "warn": warnings.append, **kw}
    a = LLMAgent([srv.model_url(m) for m in models], **kw)
    a.warnings = warnings
    return a


# --------------------------------------------------------------------------- names, keys

def test_model_names_and_keys(srv, monkeypatch):
    s = ModelSpec.parse("http://127.0.0.1:8000/v1::Qwen/Qwen2.5-Coder-7B")
    assert (s.base_url, s.model) == ("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-Coder-7B")
    assert ModelSpec.parse("http://localhost:11434/v1::qwen2.5-coder:7b").model == "qwen2.5-coder:7b"
    assert ModelSpec.parse("gpt-4o").base_url is None
    for bad in ("", "http://x:1/v1", "ftp://x::m"):
        with pytest.raises(LLMConfigError):
            ModelSpec.parse(bad)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        LLMClient(["gpt-4o"])
    with pytest.raises(LLMConfigError, match="twice"):
        LLMClient([srv.model_url("m"), srv.model_url("m")])
    # the OpenAI key is never sent to a server named by URL
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-openai")
    c = LLMClient([srv.model_url("m")], **FAST)
    assert c.complete(0, [{"role": "user", "content": "hi"}], phase="plan", sample=1).text
    assert "sk-secret" not in (srv.requests[-1]["_auth"] or "")
    monkeypatch.setenv("AUTOCOMP_EXO_LLM_API_KEY", "local-key")
    c = LLMClient([srv.model_url("m")], **FAST)
    c.complete(0, [{"role": "user", "content": "hi"}], phase="plan", sample=1)
    assert srv.requests[-1]["_auth"] == "Bearer local-key"


# --------------------------------------------------------------------------- prompts

def test_prompts_are_generated_from_the_tables(base64):
    from gemmini_isa import INSTRUCTIONS, SPELLINGS, default
    from autocomp_exo.schedule import OPS

    menu = dropout(MENU, 0.7, random.Random(3))
    msgs = prompts.plan_messages(proc_text=base64.proc_text, c_source=base64.measurement.c_source,
                                 measurement=base64.measurement, menu=menu, iteration=2, iterations=15,
                                 bottleneck=base64.bottleneck())
    u = msgs[-1]["content"]
    for ins in INSTRUCTIONS.values():
        if ins.unit not in ("runtime", "fsm"):
            assert f"- {ins.op} [{ins.unit}]" in u and ins.doc in u
    # only what ops can produce (no LOOP_WS FSM), no internal calibration notes
    assert "loop_ws" not in u and "fsm_" not in u
    assert not re.search(r"Fitted|calibrat|benchmarks/|GEMMINI\.md", u)
    for sp in SPELLINGS:
        fsm = sp.op in INSTRUCTIONS and INSTRUCTIONS[sp.op].unit == "fsm"   # no op produces the FSMs
        if sp.dialect == "exo" and not fsm and sp.op not in ("gemm_malloc", "gemm_free", "gemm_acc_malloc",
                                                             "gemm_acc_free"):
            assert sp.name in u
        elif fsm:
            assert sp.name not in u
    cfg = default()
    assert f"{cfg.sp_rows} rows" in u and f"cpu_rocc_cycles = {cfg.cpu_rocc_cycles}" in u
    assert base64.proc_text in u
    assert f"cycles: {base64.measurement.cycles:,}" in u and "scratchpad rows used" in u and "busy" in u
    assert "iteration 2 of 15" in u
    offered = {o.key for o in menu}
    assert set(_MENU_LINE.findall(u)) == offered                     # only the options left after dropout
    assert "do_matmul_acc_i8(N,M,K,A,B,C)  ->  gemmini_extended_preload" in u
    imp = prompts.implement_messages(plan_option="unroll", plan_title=option("unroll").title,
                                     plan_text="unroll j_in_o", proc_text=base64.proc_text,
                                     facts=base64.proc_facts())[-1]["content"]
    for name, spec in OPS.items():
        if "*" in spec.unsafe:
            assert f"- {name}(" not in imp                           # unchecked ops are not offered
        elif name not in ("reorder_loops", "expand_dim"):
            assert spec.signature() in imp and json.dumps(spec.example) in imp
    # the examples are valid as written: no % in an index, a loop pair of this proc
    assert '"ko % 2"' not in imp and '{"op": "expand_dim", "args": ["a", 4, "ko"]}' in imp
    pair = re.search(r'\{"op": "reorder_loops", "args": \["(\w+) (\w+)"\]\}', imp)
    assert pair and f"for {pair.group(1)} in" in base64.proc_text and f"for {pair.group(2)} in" in base64.proc_text
    # a short reasoning section is allowed; the plan hint names no option
    assert "reason briefly first" in imp and "reason briefly first" in u and "e.g. " + menu[0].key not in u
    assert '{"steps": [{"op": "<op name>"' in imp and "GEMM_SCRATCH" in imp and "ld_i8_block_id1" in imp


# --------------------------------------------------------------------------- full search + replay

def test_full_search_improves_a_gemm_then_replays_from_the_cache(srv, tmp_path):
    import autocomp_exo as ax

    cache = tmp_path / "cache"
    results = []
    for run in ("run1", "run2"):
        srv.reset()
        agent = make_agent(srv, cache_dir=str(cache), log_dir=str(tmp_path / run),
                           prices={srv.model_url("m1"): (1.0, 2.0), srv.model_url("m2"): (3.0, 4.0)})
        r = ax.optimize(ax.GemmWorkload(64, 64, 64), agent=agent, budget=6, beam=2, plans=2, impls=1,
                        seed=7, workers=0, run_dir=str(tmp_path / run), progress=agent.observe)
        results.append((r, agent, srv.hits(), [dict(q) for q in srv.requests]))
    (r1, a1, hits1, reqs1), (r2, a2, hits2, _) = results
    # the scripted model's unrolling makes the GEMM faster
    assert r1.cycles < r1.baseline_cycles and r1.speedup > 1.0
    assert any(s["op"] == "unroll_loop" for s in r1.schedule.to_list()[len(r1.search.baseline.schedule):])
    assert r1.samples_used >= 2
    # every model both planned and wrote code
    by = {(q["model"], kind(q)) for q in reqs1}
    assert {("m1", "plan"), ("m2", "plan"), ("m1", "implement"), ("m2", "implement")} <= by
    # accounting written into the run directory
    usage = json.loads((tmp_path / "run1" / "llm_usage.json").read_text())
    assert usage["total"]["calls"] == hits1 and usage["total"]["cached"] == 0
    assert usage["total"]["tokens_in"] == 100 * hits1 and usage["total"]["tokens_out"] == 20 * hits1
    assert usage["total"]["cost_usd"] > 0
    assert (tmp_path / "run1" / "llm_calls.jsonl").exists() and (tmp_path / "run1" / "llm_answers.jsonl").exists()
    assert "total" in a1.summary()
    # the rerun with the same seed replays: zero requests, the same search
    assert hits1 > 0 and hits2 == 0
    assert r2.search.trace_key() == r1.search.trace_key() and r2.cycles == r1.cycles
    usage2 = a2.accounting.totals()["total"]
    assert usage2["requests"] == 0 and usage2["cached"] == hits1


# --------------------------------------------------------------------------- ensemble

def test_plans_and_implementations_are_split_across_the_ensemble(srv, base64):
    a = make_agent(srv, models=("a", "b", "c"))
    plans = a.plan(base64, MENU, 6, random.Random(0))
    assert len(plans) == 6
    assert [p.params["model"].rsplit("::", 1)[1] for p in plans] == ["a", "b", "c", "a", "b", "c"]
    impls = a.implement(base64, plans[0], 6, random.Random(1))
    assert len(impls) == 6
    assert all(s["menu"] == plans[0].option for i in impls for s in i)
    hits = {(q["model"], kind(q)) for q in srv.requests}
    assert hits == {(m, k) for m in "abc" for k in ("plan", "implement")}
    assert all(srv.hits(m) == 4 for m in "abc")
    # one plan per call (how the search asks) still rotates
    one = [a.plan(base64, MENU, 1, random.Random(i))[0].params["model"][-1] for i in range(3)]
    assert one == ["a", "b", "c"]


# --------------------------------------------------------------------------- retry with the error

def test_failed_answer_is_retried_once_with_the_error(srv, base64, tmp_path):
    plan = Plan("unroll", "llm", "unroll j_in_o")
    srv.queue("m1", '{"steps": [{"op": "unrol_loop", "args": ["j_in_o"]}]}')
    a = make_agent(srv, models=("m1",), log_dir=str(tmp_path))
    out = a.implement(base64, plan, 1, random.Random(0))
    assert out and out[0][0]["op"] == "unroll_loop"
    assert srv.hits() == 2
    fix = srv.requests[1]["messages"]
    assert prompts.FIX_MARK in fix[-1]["content"] and "unknown op 'unrol_loop'" in fix[-1]["content"]
    assert fix[-2] == {"role": "assistant", "content": '{"steps": [{"op": "unrol_loop", "args": ["j_in_o"]}]}'}
    assert a.accounting.totals()["models"][srv.model_url("m1")]["phases"]["fix"]["calls"] == 1
    # Exo errors come back too, with the step and Exo's message
    srv.reset()
    srv.queue("m1", '{"steps": [{"op": "unroll_loop", "args": ["no_such_loop"]}]}')
    out = a.implement(base64, plan, 1, random.Random(1))
    assert out and out[0][0]["op"] == "unroll_loop" and out[0][0]["args"] != ["no_such_loop"]
    assert "Exo rejected step 0 (unroll_loop)" in srv.requests[1]["messages"][-1]["content"]
    # retries=0: no second request; an answer that is not steps gives nothing
    srv.reset()
    srv.queue("m1", "no idea")
    a0 = make_agent(srv, models=("m1",), retries=0)
    assert a0.implement(base64, plan, 1, random.Random(2)) == []
    assert srv.hits() == 1 and "no JSON" in a0.rejections[-1]["reason"]
    # an answer that still fails in Exo after the retry is returned, for the search to record as failed
    srv.reset()
    bad = '{"steps": [{"op": "unroll_loop", "args": ["no_such_loop"]}]}'
    srv.queue("m1", bad, bad)
    out = a.implement(base64, plan, 1, random.Random(3))
    assert out == [[{"op": "unroll_loop", "args": ["no_such_loop"], "kwargs": {}, "menu": "unroll"}]]


def test_check_evaluate_catches_what_exo_accepts(srv, base64):
    # Exo accepts moving the accumulator tile to DRAM; compiling it fails: the retry hears why
    srv.queue("m1", '{"steps": [{"op": "set_memory", "args": ["res", {"mem": "DRAM"}]}]}')
    a = make_agent(srv, models=("m1",), check="evaluate")
    out = a.implement(base64, Plan("other", "llm", "x"), 1, random.Random(0))
    assert out and out[0][0]["op"] == "unroll_loop" and srv.hits() == 2
    assert "the program failed at compile" in srv.requests[1]["messages"][-1]["content"]
    assert a.rejections[0]["stage"] == "evaluate"


def test_plan_answers(srv, base64):
    menu = [option("unroll"), option("tiling"), option("hoist")]
    assert parse_plan("OPTION: unroll\nPLAN: do it", menu) == ("unroll", "do it")
    assert parse_plan("**Option:** [tiling] loop tiling\n**Plan:** split i", menu)[0] == "tiling"
    assert parse_plan('{"option": "hoisting redundant operations out of loops", "plan": "x"}', menu)[0] == "hoist"
    assert parse_plan("I pick [hoist] because ...", menu)[0] == "hoist"
    for bad, why in [("OPTION: reorder\nPLAN: x", "not offered"), ("OPTION: teleport\nPLAN: x", "not a menu option"),
                     ("I like [unroll] and [tiling]", "exactly one"), ("", "empty")]:
        with pytest.raises(AnswerError, match=why):
            parse_plan(bad, menu)
    # a plan answer naming an option that was dropped is retried with the reason
    srv.queue("m1", "OPTION: reorder\nPLAN: swap loops")
    a = make_agent(srv, models=("m1",))
    p = a.plan(base64, [option("unroll")], 1, random.Random(0))
    assert [x.option for x in p] == ["unroll"] and srv.hits() == 2
    assert "not offered" in srv.requests[1]["messages"][-1]["content"]


# --------------------------------------------------------------------------- transport failures

def test_429_500_and_timeouts_are_retried_with_backoff(srv):
    sleeps = []
    c = LLMClient([srv.model_url("m")], attempts=4, backoff=0.01, backoff_max=0.5, timeout=0.5,
                  sleep=sleeps.append, warn=lambda m: None)
    srv.queue("m", status(429, headers={"Retry-After": "0.2"}), status(500), Action("late", delay=1.5), "fine")
    r = c.complete(0, [{"role": "user", "content": "x"}], phase="plan", sample=0)
    assert r.text == "fine" and srv.hits("m") == 4
    # Retry-After, then exponential backoff with jitter (each delay in [50%, 100%] of 0.02, 0.04)
    assert sleeps[0] == pytest.approx(0.2) and 0.01 <= sleeps[1] <= 0.02 and 0.02 <= sleeps[2] <= 0.04
    t = c.accounting.totals()["total"]
    assert (t["requests"], t["failures"], t["calls"]) == (4, 3, 1)
    assert c.alive == [0]
    # the rate-limit reset headers are honoured too (the largest wait)
    sleeps.clear()
    srv.queue("m", status(429, headers={"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "20ms"}),
              "fine")
    assert c.complete(0, [{"role": "user", "content": "y"}], phase="plan", sample=0).text == "fine"
    assert sleeps == [pytest.approx(1.0)]


def test_requests_adapt_to_reasoning_model_parameters(srv):
    c = LLMClient([srv.model_url("o")], **FAST, warn=lambda m: None)
    msg = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
           "Use 'max_completion_tokens' instead.")
    srv.queue("o", Action(msg, status=400), Action("Unsupported value: 'temperature' does not support 0.7", status=400),
              "fine")
    assert c.complete(0, [{"role": "user", "content": "x"}], phase="plan", sample=3).text == "fine"
    last = srv.requests[-1]
    assert "max_tokens" not in last and last["max_completion_tokens"] == 2048 and "temperature" not in last
    # other 400s fail the call without retries
    srv.queue("o", Action("bad request", status=400))
    assert c.complete(0, [{"role": "user", "content": "y"}], phase="plan", sample=4) is None
    assert srv.hits("o") == 4 and c.alive == [0]


def test_a_failing_model_is_dropped_and_the_others_go_on(srv, base64):
    srv.responder = lambda req: status(500) if req["model"] == "bad" else good_model(req)
    # an outage longer than `outage` suspends a model; max_suspensions outages in a row drop it
    a = make_agent(srv, models=("bad", "good"), attempts=2, outage=0.0, max_suspensions=1)
    plans = a.plan(base64, MENU, 4, random.Random(0))
    assert len(plans) == 4 and all(p.params["model"].endswith("::good") for p in plans)
    assert a.client.alive == [1] and "bad" in next(iter(a.client.dropped()))
    assert any("dropping model" in w and "going on with" in w for w in a.warnings)
    n_bad = srv.hits("bad")
    assert 1 <= n_bad <= 2   # the requests sent to it at once (j = 0, 2); failing past the outage: dropped
    a.implement(base64, plans[0], 2, random.Random(1))
    assert srv.hits("bad") == n_bad      # never asked again
    # a wrong model name / key (404, 401) drops at once
    srv.responder = lambda req: status(404) if req["model"] == "typo" else good_model(req)
    b = make_agent(srv, models=("typo", "good"))
    assert len(b.plan(base64, MENU, 2, random.Random(0))) == 2 and srv.hits("typo") == 1
    assert b.client.alive == [1]


def test_search_stops_cleanly_when_no_model_is_left(srv, tmp_path):
    import autocomp_exo as ax

    srv.responder = lambda req: status(503)
    agent = make_agent(srv, models=("x", "y"), attempts=1, outage=0.0, max_suspensions=1, log_dir=str(tmp_path))
    r = ax.optimize(ax.GemmWorkload(64, 64, 64), agent=agent, budget=8, beam=2, plans=2, impls=1, seed=1,
                    workers=0, run_dir=str(tmp_path), progress=agent.observe)
    assert r.samples_used == 0 and r.cycles == r.baseline_cycles   # the baseline is kept
    assert agent.exhausted and 2 <= srv.hits() <= 8   # the first round (4 requests at once, each failing over), then none
    assert any("no LLM model is left" in w for w in agent.warnings)
    assert json.loads((tmp_path / "llm_usage.json").read_text())["total"]["failures"] == srv.hits()


# --------------------------------------------------------------------------- accounting and cache

def test_accounting_totals_and_costs(srv, tmp_path):
    m = srv.model_url("m")
    c = LLMClient([m], accounting=Accounting({m: (2.0, 8.0)}, tmp_path), **FAST, warn=lambda s: None)
    usage = {"prompt_tokens": 1000, "completion_tokens": 200}
    srv.queue("m", text("a", usage=usage), text("b", usage=usage), text("c", usage=usage), status(500),
              text("d" * 40, usage=None))
    for i, ph in enumerate(("plan", "implement", "implement")):
        c.complete(0, [{"role": "user", "content": "q"}], phase=ph, sample=i)
    r = c.complete(0, [{"role": "user", "content": "q" * 400}], phase="fix", sample=9)
    assert r.estimated and r.tokens_out == 10 and r.tokens_in == 100       # no usage fields: len / 4
    tot = c.accounting.totals()
    ph = tot["models"][m]["phases"]
    assert ph["plan"]["cost_usd"] == pytest.approx((1000 * 2 + 200 * 8) / 1e6)
    assert ph["implement"]["calls"] == 2 and ph["implement"]["tokens_in"] == 2000
    assert ph["fix"]["failures"] == 1 and ph["fix"]["requests"] == 2 and ph["fix"]["tokens_estimated"] == 1
    assert tot["total"]["calls"] == 4 and tot["total"]["tokens_in"] == 3100 and tot["total"]["tokens_out"] == 610
    assert tot["total"]["cost_usd"] == pytest.approx((3100 * 2 + 610 * 8) / 1e6)
    c.accounting.write()
    assert json.loads((tmp_path / "llm_usage.json").read_text()) == json.loads(json.dumps(tot))
    assert len((tmp_path / "llm_calls.jsonl").read_text().splitlines()) == 5
    assert "estimated" in c.accounting.summary()
    # no price: cost unknown, not zero
    assert Accounting().totals()["total"]["cost_usd"] == 0.0
    a = Accounting()
    a.record("x", "plan", tokens_in=5, tokens_out=5)
    assert a.totals()["total"]["cost_usd"] is None and "unknown" in a.summary()
    assert parse_price("http://h:1/v1::m=0.5,1.5") == ("http://h:1/v1::m", 0.5, 1.5)
    with pytest.raises(ValueError):
        parse_price("gpt-4o=1")


def test_cache_keys_and_concurrent_writers(tmp_path):
    k = cache_key("u::m", [{"role": "user", "content": "x"}], {"temperature": 0.7}, 1)
    assert k != cache_key("u::m", [{"role": "user", "content": "x"}], {"temperature": 0.7}, 2)
    assert k != cache_key("u::m", [{"role": "user", "content": "x"}], {"temperature": 0.2}, 1)
    assert k != cache_key("u::n", [{"role": "user", "content": "x"}], {"temperature": 0.7}, 1)
    import threading

    caches = [ResponseCache(tmp_path) for _ in range(4)]
    ths = [threading.Thread(target=lambda c=c, i=i: [c.put(f"{j:064x}", {"text": f"{i}"}) for j in range(30)])
           for i, c in enumerate(caches)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    assert len(caches[0]) == 30 and all(caches[0].get(f"{j:064x}")["text"] in "0123" for j in range(30))
    (tmp_path / k[:2]).mkdir(exist_ok=True)
    (tmp_path / k[:2] / f"{k}.json").write_text("{half")                  # a corrupt entry is a miss
    assert caches[0].get(k) is None


# --------------------------------------------------------------------------- hostile answers

CANARY = "/tmp/autocomp_exo_llm_canary"

HOSTILE = [
    ('{"steps": [{"op": "__import__", "args": ["os"]}]}', "double-underscore"),
    ('{"steps": [{"op": "os.system", "args": ["touch %s"]}]}' % CANARY, "unknown op 'os.system'"),
    ('{"steps": [{"op": "unroll_loop", "args": ["__import__(\'os\').system(\'touch %s\')"]}]}' % CANARY,
     "double-underscore"),
    ('{"steps": [{"op": "unroll_loop", "args": ["os.system(\'touch %s\')"]}]}' % CANARY, "Exo rejected step 0"),
    ('{"steps": [{"op": "replace", "args": ["for i in _: _", {"instr": "os.system"}]}]}', "not whitelisted"),
    ('{"steps": [{"op": "replace", "args": ["for i in _: _", {"instr": "exo.API.compile_procs"}]}]}',
     "not whitelisted"),
    ('{"steps": [{"op": "set_memory", "args": ["a", {"mem": "../../etc/passwd"}]}]}', "not whitelisted"),
    ('{"steps": [{"op": "rename", "args": ["/etc/passwd"]}]}', "expected an identifier"),
    ('{"steps": [{"op": "unroll_loop", "args": ["/etc/passwd"]}]}', "Exo rejected step 0"),
    ('{"steps": [{"op": "stage_mem", "args": ["for k in _: _", "open(\'/etc/passwd\').read()", "x"]}]}',
     "Exo rejected step 0"),
    ('{"steps": [{"op": "divide_loop", "args": ["i", 99999999999999999999999999, ["io", "ii"]]}]}', "too large"),
    ('{"steps": [{"op": "divide_loop", "args": ["i", %s, ["io", "ii"]]}]}' % ("9" * 5000), "too large"),
    ('{"steps": [{"op": "divide_loop", "args": ["i", 100000000, ["io", "ii"]]}]}', "out of range"),
    ('{"steps": [{"op": "divide_loop", "args": ["i", 1e400, ["io", "ii"]]}]}', "not finite"),
    ('{"steps": [{"op": "divide_loop", "args": ["i", 2.5, ["io", "ii"]]}]}', "not an integer"),
    ('{"steps": [{"op": "unroll_loop", "args": [NaN]}]}', "NaN is not a JSON value"),
    ('{"steps": [{"op": "unroll_loop", "args": ["j_in_o"]', "invalid JSON"),
    ("Sure! I would unroll the j_in_o loop.", "no JSON"),
    ('{"steps": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
    ('{"steps": [{"op": "unroll_loop", "args": ["j_in_o"], "exec": "rm -rf /"}]}', "unexpected step keys"),
    ('{"steps": [{"op": "fission", "args": [{"gap": "after", "stmt": "config_zero()"}], '
     '"kwargs": {"unsafe_disable_checks": true}}]}', "unsafe steps"),
    ('{"steps": [{"op": "unroll_loop", "args": ["j\\u0000_in_o"]}]}', "control characters"),
    ('{"steps": [{"op": "unroll_loop", "args": [{"__class__": "x"}]}]}', "not allowed"),
    ('{"steps": []}', "no steps"),
    ('{"plan": "unroll"}', 'expected {"steps"'),
    ('{"steps": "unroll_loop(j_in_o)"}', "must be a list"),
    ('{"steps": [{"op": "unroll_loop", "args": ["' + "x" * 1000 + '"]}]}', "characters (at most"),
    ("x" * 70000, "too long"),
]


@pytest.mark.parametrize("answer,why", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_answers_are_rejected_with_a_reason(srv, base64, answer, why):
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    srv.responder = lambda req: text(answer)
    a = make_agent(srv, models=("evil",))
    out = a.implement(base64, Plan("unroll", "llm", "x"), 1, random.Random(0))
    assert srv.hits() == 2                                  # the answer and its retry
    assert len(a.rejections) == 2 and all(why in r["reason"] for r in a.rejections), a.rejections[0]["reason"]
    if "Exo rejected" in why:   # valid steps Exo refuses: returned, the search records a failed candidate
        assert len(out) == 1
    else:
        assert out == []
    assert not os.path.exists(CANARY)


def test_parse_steps_labels_with_the_plan_option():
    s = parse_steps('```json\n{"steps": [{"op": "unroll_loop", "args": ["k"], "menu": "other"}]}\n```', "unroll")
    assert s == [{"op": "unroll_loop", "args": ["k"], "kwargs": {}, "menu": "unroll"}]
    assert parse_steps('[{"op": "simplify"}]', "simplify")[0]["op"] == "simplify"


def test_a_search_with_a_hostile_model_goes_on(srv, tmp_path):
    import autocomp_exo as ax

    answers = [h[0] for h in HOSTILE]

    def evil(req):
        if kind(req) == "plan":
            return good_model(req)
        return text(answers[int(req.get("seed", 0)) % len(answers)])

    srv.responder = evil
    agent = make_agent(srv, models=("evil", "evil2"), retries=0)
    r = ax.optimize(ax.GemmWorkload(64, 64, 64), agent=agent, budget=4, beam=1, plans=2, impls=2, seed=3,
                    iterations=2, workers=0, run_dir=str(tmp_path), progress=agent.observe)
    assert r.cycles == r.baseline_cycles
    assert agent.rejections and all(rec["reason"] for rec in agent.rejections)
    for c in r.search.candidates:   # every proposal failed, each with its reason
        assert not c.ok and c.measurement.error
    # the answers the agent refused are failed candidates of the search too
    assert any(c.measurement.stage != "schedule" for c in r.search.candidates)
    assert not os.path.exists(CANARY)


# --------------------------------------------------------------------------- CLI

def test_optimize_cli_with_llm(srv, tmp_path, capsys, monkeypatch):
    from autocomp_exo.cli import main

    args = ["optimize", "gemm", "64", "64", "64", "--budget", "2", "--beam", "1", "--plans", "1", "--impls", "2",
            "--workers", "0", "--quiet", "--seed", "5", "--run-dir", str(tmp_path / "run"),
            "--llm", srv.model_url("m1"), "--llm", srv.model_url("m2"), "--llm-cache", str(tmp_path / "cache"),
            "--llm-price", f"{srv.model_url('m1')}=1,2", "--llm-price", f"{srv.model_url('m2')}=1,2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best found" in out and "LLM usage" in out and "total" in out
    usage = json.loads((tmp_path / "run" / "llm_usage.json").read_text())
    assert usage["total"]["calls"] == srv.hits() > 0 and usage["total"]["cost_usd"] > 0
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["optimize", "gemm", "64", "64", "64", "--llm", "gpt-4o", "--quiet"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
