"""A search through the LLM path against a scripted "plausible model" (issue 14).

The scripted server (tests/fake_openai_server.py, on 127.0.0.1, through the
real ``openai`` client) answers like a hosted model that reads the prompts it
is sent, and nothing else:

- plans in free prose ending with "Chosen optimization: **key**": it picks
  one of the macro moves the plan prompt lists for the proc ("make B
  resident", unrolling, the zeroing folded, ...) and a menu option offered
  that fits it;
- steps as fenced JSON with prose around them, composed from the worked
  examples of the implement prompt (the chain that makes the operand
  resident, a tile factor taken from the arguments listed, then some of the
  moves listed as applying after it); now and then a draft fence first, a
  misspelt op name or a wrong macro argument (the local buffer for the DRAM
  operand), which the retry message names and the model fixes; a move that
  Exo refuses is dropped on the retry.

No oracle: the model sees no candidate object, only the prompt text.

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
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_openai_server import FakeOpenAIServer, text  # noqa: E402

from autocomp_exo.agents import prompts  # noqa: E402
from autocomp_exo.agents.llm import LLMAgent  # noqa: E402

_MENU_LINE = re.compile(r"^- \[(\w+)\]", re.M)
_RESIDENT = re.compile(r"make (\w+) resident")

#: the menu options a plausible model would file each intent under, best first
OPTIONS = {
    "resident": ("scratchpad_reuse", "min_data_movement", "tiling", "hoist", "guarded_loads", "reorder", "other"),
    "unroll_calls": ("unroll", "min_loop_overhead", "simplify", "other"),
    "zero_into_compute": ("substitute", "fuse", "min_loop_overhead", "other"),
    "spread_banks": ("spread", "substitute", "other"),
    "interleave_loads": ("pipeline", "reorder_stmts", "fuse", "other"),
    "double_buffer": ("double_buffer", "pipeline", "other"),
}
WORDS = {"unroll_calls": "unroll the computes", "zero_into_compute": "fold the zeroing into the first compute",
         "spread_banks": "spread the operands over the banks", "interleave_loads": "interleave the loads",
         "double_buffer": "double-buffer"}


def _user(req) -> str:
    return next(m["content"] for m in req["messages"] if m["role"] == "user")


def _section(u: str, title: str) -> str:
    i = u.find("## " + title)
    if i < 0:
        return ""
    j = u.find("\n## ", i + 3)
    return u[i:j if j > 0 else len(u)]


def _json_values(s: str) -> list:
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        i = s.find("{", i)
        if i < 0:
            return out
        try:
            v, i = dec.raw_decode(s, i)
            out.append(v)
        except ValueError:
            i += 1


# --------------------------------------------------------------------------- plans

def plan(u: str, rng: random.Random) -> str:
    offered = _MENU_LINE.findall(_section(u, "Optimization menu"))
    macros = _section(u, "Macro moves that apply")
    intents = [f"resident:{o}" for o in _RESIDENT.findall(macros)]
    intents += [op for op in WORDS if f"- {op}(" in macros]
    rng.shuffle(intents)
    res = [i for i in intents if i.startswith("resident")]
    rest = [i for i in intents if not i.startswith("resident")]
    for it in (res + rest) if rng.random() < 0.8 else (rest + res):     # mostly a structural change first
        kind = it.split(":")[0]
        key = next((k for k in OPTIONS[kind] if k in offered), None)
        if key is None:
            continue
        if kind == "resident":
            o = it.split(":")[1]
            ends = [WORDS[e] for e in ("spread_banks", "interleave_loads", "zero_into_compute", "unroll_calls")
                    if rng.random() < 0.5]
            what = f"make {o} resident" + (", then " + " and ".join(ends) if ends else "")
            why = f"{o}'s tiles are loaded again for every tile of the other operand"
        else:
            what, why = WORDS[kind], "the CPU issues many small commands and the array waits for them"
        return (f"Looking at the feedback, {why}. I would {what}.\n\nChosen optimization: **{key}**\n"
                f"PLAN: {what}.")
    return f"Nothing structural is left.\n\nChosen optimization: **{offered[0]}**\nPLAN: unroll the computes."


# --------------------------------------------------------------------------- steps

def _chains(macros: str) -> dict:
    """operand -> (steps, follow-up steps) of each "make X resident" example."""
    out = {}
    for block in re.split(r"\n(?=\* )", macros):
        m = _RESIDENT.match(block[2:]) if block.startswith("* ") else None
        if not m:
            continue
        vals = _json_values(block.split("after it", 1)[0])
        follow = block.split("steps that also apply after it:", 1)
        follow = [v for v in _json_values(follow[1].split("\n", 1)[0]) if "op" in v] if len(follow) > 1 else []
        out[m.group(1)] = (vals[0]["steps"] if vals else [], follow)
    return out


def _single(macros: str, op: str) -> Optional[list]:
    m = re.search(rf"^- {op}\(.*?(?=^- |\Z)", macros, re.S | re.M)
    vals = [v for v in _json_values(m.group(0)) if "steps" in v] if m else []
    return vals[0]["steps"] if vals else None


def _factors(macros: str, loop: str) -> list[int]:
    m = re.search(rf'"{re.escape(loop)}" \(\d+\): ([\d, ]+)', macros)
    return [int(x) for x in m.group(1).split(",")] if m else []


def steps_for(u: str, rng: random.Random) -> list:
    """The steps the plan asks for, from the implement prompt's worked examples."""
    plan_text = _section(u, "Plan")
    macros = _section(u, prompts.MACRO_MARK[3:])
    m = _RESIDENT.search(plan_text)
    chains = _chains(macros)
    if m and m.group(1) in chains:
        steps, follow = chains[m.group(1)]
        steps = [dict(s) for s in steps]
        if steps and steps[0]["op"] == "tile_loop" and rng.random() < 0.5:     # another tile size
            smaller = [f for f in _factors(macros, steps[0]["args"][0]) if f < steps[0]["args"][1]]
            if smaller:
                steps[0] = {"op": "tile_loop", "args": [steps[0]["args"][0], rng.choice(smaller)]}
        for f in follow:
            if WORDS.get(f["op"], "?") in plan_text:
                steps.append(f)
        return steps
    for op, words in WORDS.items():
        if words in plan_text:
            return _single(macros, op) or []
    return _single(macros, "unroll_calls") or []


def _mistake(steps: list, seed: int) -> list:
    """Now and then a misspelt op or the local buffer for a DRAM operand."""
    steps = [dict(s) for s in steps]
    if seed % 5 == 0:
        steps[0]["op"] += "s"
    elif seed % 7 == 3:
        for s in steps:
            if s["op"] == "hoist_load":
                s["args"] = [s["args"][0].lower() + "_buf"] + s["args"][1:]
                break
    return steps


def implement(req) -> str:
    u, seed = _user(req), int(req.get("seed", 0))
    steps = steps_for(u, random.Random(seed))
    if not steps:
        return "```json\n{\"steps\": [{\"op\": \"simplify\"}]}\n```"
    last = req["messages"][-1]["content"]
    if prompts.FIX_MARK in last:
        failed = re.search(r"Exo rejected step (\d+)", last)
        sent = _json_values(req["messages"][-2]["content"].rsplit("```json", 1)[-1])
        sent = sent[-1]["steps"] if sent and "steps" in sent[-1] else []
        if failed and int(failed.group(1)) < len(sent) and sent[int(failed.group(1))] == steps[int(failed.group(1))]:
            steps.pop(int(failed.group(1)))          # a move that does not apply here: drop it
            intro = "That move does not apply here; without it:"
        else:
            intro = "Corrected:"
    else:
        steps = _mistake(steps, seed)
        intro = f"Here are the {len(steps)} steps, in order."
    body = json.dumps({"steps": steps}, indent=1)
    draft = "" if seed % 3 else "A first idea:\n```json\n{\"steps\": [{\"op\": \"simplify\"}]}\n```\nBetter:\n"
    return f"{intro}\n{draft}```json\n{body}\n```\nEach applies to the proc after the previous one."


def model(req):
    try:
        return _model(req)
    except Exception:  # a bug of the script must show, not become a 500 retried for ever
        import traceback

        traceback.print_exc()
        raise


def _model(req):
    u = _user(req)
    if prompts.PLAN_MARK in u:
        return text(plan(u, random.Random(int(req.get("seed", 0)))))
    if prompts.IMPLEMENT_MARK in u:
        return text(implement(req))
    return text("OK")


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
        agent = LLMAgent([srv.model_url("plausible-1"), srv.model_url("plausible-2")], warn=lambda m: None,
                         timeout=600.0)
        t0 = time.monotonic()
        r = ax.optimize(ax.GemmWorkload(*args.shape), agent=agent, budget=args.budget, beam=6, plans=6, impls=2,
                        iterations=args.iterations, seed=args.seed, workers=args.workers,
                        run_dir=str(Path(tmp) / "run"), progress=agent.observe)
        dt = time.monotonic() - t0
        rej: dict = {}
        for x in agent.rejections:
            k = x.get("stage", "?")
            rej[k] = rej.get(k, 0) + 1
        n_steps = len(r.schedule) - len(r.search.baseline.schedule)
        moves = [s.op for s in r.schedule.steps[len(r.search.baseline.schedule):]]
        print(f"{args.shape}: {r.samples_used} samples, {r.cycles:,} cycles vs Exo's mapping "
              f"{r.baseline_cycles:,}: {r.speedup:.2f}x ({n_steps} steps on top of the mapping: {', '.join(moves)})")
        print(f"  requests {srv.hits()}, answers rejected by stage {rej}, wall {dt:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
