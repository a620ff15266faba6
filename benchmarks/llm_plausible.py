"""A search through the LLM path against a scripted "plausible model" (issue 14).

The scripted server (tests/fake_openai_server.py, on 127.0.0.1, through the
real ``openai`` client) answers like a hosted model: plans in free prose
ending with "Chosen optimization: **key**", step lists as fenced JSON with
prose around them (now and then a draft fence first, or a misspelt op that
the retry names and the model fixes). What it proposes is the offline agent's
moves for the proc shown (an oracle for *what* to do: the point is that the
LLM path -- prompts, parsing, repairs, retries, concurrency, checks -- carries
the long primitive chains those moves need, without macro moves).

    python benchmarks/llm_plausible.py                 # 512^3, 72 samples (one B=6 N=6 K=2 iteration)
    python benchmarks/llm_plausible.py --budget 144 --iterations 2

Prints the speedup over Exo's standard mapping.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_openai_server import FakeOpenAIServer, text  # noqa: E402

from autocomp_exo.agents import prompts  # noqa: E402
from autocomp_exo.agents.base import Plan  # noqa: E402
from autocomp_exo.agents.llm import LLMAgent  # noqa: E402
from autocomp_exo.agents.offline import OfflineAgent  # noqa: E402
from autocomp_exo.menu import option  # noqa: E402

_MENU_LINE = re.compile(r"^- \[(\w+)\]", re.M)
_PROC = re.compile(r"## Current program: the Exo proc[^\n]*\n(.*?)\n## ", re.S)
_MOVE = re.compile(r"\(move ([a-z_]+)\)")

_KNOWN: dict = {}            # proc text -> the Candidate the agent was asked about
_LOCK = threading.Lock()


class Agent(LLMAgent):
    """The LLM agent, remembering which candidate each proc text is (for the oracle)."""

    def _context(self, candidate):
        out = super()._context(candidate)
        with _LOCK:
            _KNOWN[(out[0] or "").strip()] = candidate
        return out


OFFLINE = OfflineAgent()


def model(req):
    u = next(m["content"] for m in req["messages"] if m["role"] == "user")
    seed = int(req.get("seed", 0))
    rng = random.Random(seed)
    m = _PROC.search(u)
    cand = _KNOWN.get(m.group(1).strip()) if m else None
    if cand is None:
        return text("I cannot tell what this proc is.")
    if prompts.PLAN_MARK in u:
        offered = _MENU_LINE.findall(u.split("## Optimization menu", 1)[1])
        plans = OFFLINE.plan(cand, [option(k) for k in offered], 1, rng)
        if not plans:
            return text(f"Nothing structural is left; I would unroll.\nChosen optimization: **{offered[0]}**")
        p = plans[0]
        return text(f"The proc is {cand.bottleneck()}-bound, so I would go for {option(p.option).title.lower()}.\n\n"
                    f"Chosen optimization: **{p.option}**\nPLAN: {p.text} (move {p.move})")
    plan_text = u.split("## Plan", 1)[1].split("## Current program", 1)[0]
    mv = _MOVE.search(plan_text)
    key = re.search(r"option: (\w+)", plan_text)
    if not mv or not key:
        return text("```json\n{\"steps\": [{\"op\": \"simplify\"}]}\n```")
    impls = OFFLINE.implement(cand, Plan(key.group(1), mv.group(1), ""), 1, rng)
    if not impls:
        return text("```json\n{\"steps\": [{\"op\": \"simplify\"}]}\n```")
    steps = [{k: v for k, v in s.items() if k != "menu"} for s in impls[0]]
    fixing = prompts.FIX_MARK in req["messages"][-1]["content"]
    if not fixing and seed % 5 == 0 and steps[0]["op"].endswith("_loop"):
        steps[0] = dict(steps[0], op=steps[0]["op"] + "s")          # a misspelt op; the retry names the fix
    body = json.dumps({"steps": steps}, indent=1)
    draft = "" if seed % 3 else "A first idea:\n```json\n{\"steps\": [{\"op\": \"simplify\"}]}\n```\nBetter:\n"
    return text(f"Here are the {len(steps)} steps, in order.\n{draft}```json\n{body}\n```\nEach applies to the "
                "proc after the previous one.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(512, 512, 512), metavar=("M", "N", "K"))
    ap.add_argument("--budget", type=int, default=72)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import autocomp_exo as ax

    for k in ("NO_PROXY", "no_proxy"):
        os.environ[k] = ",".join(x for x in (os.environ.get(k), "127.0.0.1", "localhost") if x)
    with FakeOpenAIServer(model) as srv, tempfile.TemporaryDirectory() as tmp:
        agent = Agent([srv.model_url("plausible-1"), srv.model_url("plausible-2")], warn=lambda m: None,
                      timeout=600.0)
        t0 = time.monotonic()
        r = ax.optimize(ax.GemmWorkload(*args.shape), agent=agent, budget=args.budget, beam=6, plans=6, impls=2,
                        iterations=args.iterations, seed=args.seed, workers=args.workers,
                        run_dir=str(Path(tmp) / "run"), progress=agent.observe)
        dt = time.monotonic() - t0
        rej = {}
        for x in agent.rejections:
            k = x.get("stage", "?")
            rej[k] = rej.get(k, 0) + 1
        n_steps = len(r.schedule) - len(r.search.baseline.schedule)
        print(f"{r.workload if hasattr(r, 'workload') else args.shape}: {r.samples_used} samples, "
              f"{r.cycles:,} cycles vs Exo's mapping {r.baseline_cycles:,}: {r.speedup:.2f}x "
              f"({n_steps} steps on top of the mapping)")
        print(f"  requests {srv.hits()}, answers rejected by stage {rej}, wall {dt:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
