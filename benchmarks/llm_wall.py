"""Wall time of one paper-settings iteration (B=6, N=6, K=2) of the LLM agent
against a model with a fixed latency.

The model is the tests' scripted OpenAI-compatible server on 127.0.0.1
(tests/fake_openai_server.py) answering like a hosted model (reasoning before
the answer, prose around fenced JSON, now and then a misspelt op that the
retry fixes) after sleeping ``--latency`` seconds per request. Everything
goes through the real ``openai`` client and the real search: 36 plan
requests at once, each slot's 2 implement requests as soon as its plan is
back, fixes and re-asks as soon as they are needed, and each new child
evaluated as soon as its answer arrives (`autocomp_exo.streaming`).

    python benchmarks/llm_wall.py                       # 10 s a call, 2 models x 8 in flight, 512^3
    python benchmarks/llm_wall.py --models 1 --latency 10
    python benchmarks/llm_wall.py --latency 1 --shape 64 64 64   # quick

Prints when each kind of request was sent, when the last answer came, the
wall time of the whole iteration (with the evaluation of the children,
which overlaps the requests), the requests sent and the most in flight at
the server. Target (issue 14): under 2 minutes at 10 s a call.
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


def phase(req) -> str:
    """plan, implement, or fix (a retry with the error) of a request."""
    u = next(m["content"] for m in req["messages"] if m["role"] == "user")
    last = req["messages"][-1]
    if last["role"] == "user" and prompts.FIX_MARK in last["content"] and len(req["messages"]) > 2:
        return "fix"
    return "plan" if prompts.PLAN_MARK in u else "implement"


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
    from autocomp_exo import workers

    marks = {}
    started = []   # when each child was handed to the worker pool
    submit = workers.WorkerPool.submit

    def logged_submit(self, task):
        if "kind" not in task:   # an evaluation (not a worker task of another kind: the worked examples)
            started.append(time.monotonic())
        return submit(self, task)

    workers.WorkerPool.submit = logged_submit

    def progress(ev):
        agent.observe(ev)

    arrivals = []   # (seconds since the search started, phase) of every request, at the server

    def timed(req):
        arrivals.append((time.monotonic(), phase(req)))
        return plausible(req)

    with FakeOpenAIServer(timed) as srv, tempfile.TemporaryDirectory() as tmp:
        srv.latency = args.latency
        agent = LLMAgent([srv.model_url(f"model{i}") for i in range(args.models)], max_in_flight=args.in_flight,
                         timeout=max(60.0, 4 * args.latency), warn=lambda m: None)
        w = ax.GemmWorkload(*args.shape)
        t_start = time.monotonic()
        r = ax.optimize(w, agent=agent, budget=72, beam=6, plans=6, impls=2, iterations=1, seed=args.seed,
                        workers=args.workers, run_dir=str(Path(tmp) / "run"),
                        progress=lambda ev: (progress(ev), marks.setdefault(ev.get("event"), time.monotonic())))
        t_end = time.monotonic()
        t0 = marks.get("start", t_start)
        total = t_end - t0
        phases: dict[str, list[float]] = {}
        for t, ph in arrivals:
            phases.setdefault(ph, []).append(t - t0)
        print(f"one paper-settings iteration (B=6 N=6 K=2) on {w.name}: {args.models} model(s) x "
              f"{args.in_flight} in flight, {args.latency:g} s per request")
        print(f"  requests: {srv.hits()} ({', '.join(f'{k} {len(v)}' for k, v in sorted(phases.items()))}); "
              f"most in flight at the server: {srv.max_in_flight}")
        print(f"  children evaluated: {r.samples_used}; best {r.cycles:,} cycles ({r.speedup:.2f}x over Exo's "
              "mapping)")
        last = max((t for v in phases.values() for t in v), default=0.0) + args.latency
        print("  requests sent (s after the start, first-last): "
              + ", ".join(f"{k} {min(v):.0f}-{max(v):.0f}" for k, v in sorted(phases.items()))
              + f"; last answer at about {last:.0f} s")
        early = sum(t - t0 < last for t in started)
        print(f"  wall time of the iteration: {total:.1f} s ({len(started)} children handed to the worker pool "
              f"as their answers came, {early} before the last answer, the first at "
              f"{(min(started) - t0) if started else float('nan'):.0f} s; the iteration ended {total - last:.1f} s "
              f"after the last answer; evaluation on {args.workers if args.workers is not None else 'all'} "
              f"worker(s)); baseline evaluation before it: {t0 - t_start:.1f} s")
        print(f"  the requests alone: {srv.hits() * args.latency:.0f} s one at a time, "
              f"{srv.hits() * args.latency / max(1, srv.max_in_flight):.0f} s at {srv.max_in_flight} in flight "
              "without gaps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
