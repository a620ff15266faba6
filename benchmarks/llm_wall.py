"""Wall time of one paper-settings iteration (B=6, N=6, K=2) of the LLM agent
against a model with a fixed latency.

The model is the tests' scripted OpenAI-compatible server on 127.0.0.1
(tests/fake_openai_server.py) answering like a hosted model (reasoning before
the answer, prose around fenced JSON, now and then a misspelt op that the
retry fixes) after sleeping ``--latency`` seconds per request. Everything
goes through the real ``openai`` client and the real search: 36 plan
requests at once, then 72 implement requests, then fixes and re-asks, then
the evaluation of the new children.

    python benchmarks/llm_wall.py                       # 10 s a call, 2 models x 8 in flight, 512^3
    python benchmarks/llm_wall.py --models 1 --latency 10
    python benchmarks/llm_wall.py --latency 1 --shape 64 64 64   # quick

Prints the time of the LLM request rounds (plan round, implement rounds),
the wall time of the whole iteration (with the evaluation of the children,
which on a small machine can take longer than the requests), the requests
sent and the most in flight at the server. Target (issue 14): under 2
minutes at 10 s a call.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_openai_server import FakeOpenAIServer, text  # noqa: E402

from autocomp_exo.agents import prompts  # noqa: E402

_MENU_LINE = re.compile(r"^- \[(\w+)\]", re.M)
_LOOP = re.compile(r"^\s*for (\w+) in seq\(0, (\d+)\):", re.M)


def plausible(req):
    u = next(m["content"] for m in req["messages"] if m["role"] == "user")
    seed = int(req.get("seed", 0))
    if prompts.PLAN_MARK in u:
        offered = _MENU_LINE.findall(u.split("## Optimization menu", 1)[1])
        key = "unroll" if "unroll" in offered else offered[seed % len(offered)]
        return text(f"The CPU issues every command inside small loops.\n\nChosen optimization: **{key}**\n"
                    "PLAN: unroll a small inner loop.")
    if prompts.IMPLEMENT_MARK not in u:
        return text("OK")
    proc = u.split("## Current program", 1)[1].split("## Scheduling ops", 1)[0]
    loops = list(dict.fromkeys((n, int(e)) for n, e in _LOOP.findall(proc)))
    # distinct valid answers: unroll a short loop, or split a loop by a factor that divides it
    moves = [("unroll_loop", [n]) for n, e in loops if 2 <= e <= 8]
    tag = seed % 10007   # names of its own: every sample a distinct program (no re-asks for duplicates)
    moves += [("divide_loop", [n, f, [f"{n}_o{tag}", f"{n}_i{tag}"]]) for n, e in loops for f in (2, 4, 8)
              if e > f and e % f == 0 and "_i" not in n and "_o" not in n]
    if not moves:
        return text('```json\n{"steps": [{"op": "simplify", "args": []}]}\n```')
    unrolls = [mv for mv in moves if mv[0] == "unroll_loop"]
    splits = [mv for mv in moves if mv[0] == "divide_loop"]
    pick = unrolls if (seed % 4 == 0 and unrolls) or not splits else splits
    op, a = pick[(seed // 4) % len(pick)]
    fixing = prompts.FIX_MARK in req["messages"][-1]["content"]
    if not fixing and seed % 5 == 0:
        op = op.replace("_loop", "_loops")          # a misspelt op, fixed when the retry names the right one
    kw = ', "kwargs": {"perfect": true}' if op == "divide_loop" else ""
    step = f'{{"op": "{op}", "args": {json.dumps(a)}{kw}}}'
    return text(f"Looking at the loop nest, `{a[0]}` is the one to change.\n```json\n{{\"steps\": [{step}]}}\n```")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=10.0, help="seconds per request (default 10)")
    ap.add_argument("--models", type=int, default=2, help="models in the ensemble (default 2)")
    ap.add_argument("--in-flight", type=int, default=8, help="requests in flight per model (default 8)")
    ap.add_argument("--shape", type=int, nargs=3, default=(512, 512, 512), metavar=("M", "N", "K"))
    ap.add_argument("--workers", type=int, default=None, help="evaluation workers (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import autocomp_exo as ax
    from autocomp_exo.agents.llm import LLMAgent

    for k in ("NO_PROXY", "no_proxy"):
        os.environ[k] = ",".join(x for x in (os.environ.get(k), "127.0.0.1", "localhost") if x)
    marks = {}

    def progress(ev):
        agent.observe(ev)
        if ev.get("event") == "candidate" and "first_child" not in marks:
            marks["first_child"] = time.monotonic()

    with FakeOpenAIServer(plausible) as srv, tempfile.TemporaryDirectory() as tmp:
        srv.latency = args.latency
        agent = LLMAgent([srv.model_url(f"model{i}") for i in range(args.models)], max_in_flight=args.in_flight,
                         timeout=max(60.0, 4 * args.latency), warn=lambda m: None)
        rounds = []   # (kind, requests in the round, seconds)

        def timed(name, fn):
            def run(requests):
                t = time.monotonic()
                try:
                    return fn(requests)
                finally:
                    rounds.append((name, len(requests), time.monotonic() - t))
            return run

        agent.plan_many = timed("plan", agent.plan_many)
        agent.implement_many = timed("implement", agent.implement_many)
        w = ax.GemmWorkload(*args.shape)
        t_start = time.monotonic()
        r = ax.optimize(w, agent=agent, budget=72, beam=6, plans=6, impls=2, iterations=1, seed=args.seed,
                        workers=args.workers, run_dir=str(Path(tmp) / "run"),
                        progress=lambda ev: (progress(ev), marks.setdefault(ev.get("event"), time.monotonic())))
        t_end = time.monotonic()
        t0 = marks.get("start", t_start)
        total = t_end - t0
        phases = {}
        for q in srv.requests:
            u = next(m["content"] for m in q["messages"] if m["role"] == "user")
            ph = "fix" if q["messages"][-1]["role"] == "user" and prompts.FIX_MARK in q["messages"][-1]["content"] \
                else ("plan" if prompts.PLAN_MARK in u else "implement")
            phases[ph] = phases.get(ph, 0) + 1
        print(f"one paper-settings iteration (B=6 N=6 K=2) on {w.name}: {args.models} model(s) x "
              f"{args.in_flight} in flight, {args.latency:g} s per request")
        print(f"  requests: {srv.hits()} ({', '.join(f'{k} {v}' for k, v in sorted(phases.items()))}); "
              f"most in flight at the server: {srv.max_in_flight}")
        print(f"  children evaluated: {r.samples_used}; best {r.cycles:,} cycles ({r.speedup:.2f}x over Exo's "
              "mapping)")
        llm_s = sum(r[2] for r in rounds)
        print(f"  LLM request rounds: {llm_s:.1f} s ("
              + ", ".join(f"{k} x{n} {t:.0f} s" for k, n, t in rounds) + "; fixes run inside their round)")
        print(f"  wall time of the iteration: {total:.1f} s (the rounds, then the children's evaluation on "
              f"{args.workers if args.workers is not None else 'all'} worker(s), which overlaps the re-ask rounds); "
              f"baseline evaluation before it: {t0 - t_start:.1f} s")
        print(f"  one request at a time would take {srv.hits() * args.latency:.0f} s for the requests alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
