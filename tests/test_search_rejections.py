"""Proposals refused before evaluation (hostile or invalid agent answers, steps
the whitelist refuses) become failed candidates with their reason, in the
search's results and in the run directory, without costing samples."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autocomp_exo.agents.base import Agent, Plan  # noqa: E402
from autocomp_exo.runs import RunDir  # noqa: E402
from autocomp_exo.schedule import Schedule  # noqa: E402
from autocomp_exo.search import SearchSettings, beam_search  # noqa: E402
from autocomp_exo.workers import WorkerPool  # noqa: E402
from autocomp_exo.workloads import GemmWorkload  # noqa: E402
from search_stubs import fake_eval  # noqa: E402


class HostileAgent(Agent):
    """Every other answer is refused by the agent itself; the rest are steps the
    whitelist refuses, or valid renames."""

    name = "hostile"

    def __init__(self):
        self.rejections: list[dict] = []
        self.n = 0

    def plan(self, candidate, menu, n, rng):
        return [Plan(menu[0].key, "x", "try something")]

    def implement(self, candidate, plan, k, rng):
        self.n += 1
        if self.n % 3 == 1:
            self.rejections.append({"stage": "parse", "reason": "answer contains '__import__'"})
            return []
        if self.n % 3 == 2:
            return [[{"op": "os.system", "args": ["rm -rf /"], "kwargs": {}, "menu": plan.option}]]
        return [[{"op": "rename", "args": [f"p{self.n}"], "kwargs": {}, "menu": plan.option}]]


def test_refused_answers_are_failed_candidates_with_reasons(tmp_path):
    w = GemmWorkload(64, 64, 64)
    s = SearchSettings(beam=2, plans=2, impls=1, budget=20, seed=0, iterations=3)
    run = RunDir(tmp_path / "run")
    r = beam_search(w, Schedule([]), HostileAgent(), s, pool=WorkerPool(0, fn=fake_eval), run=run)
    failed = [c for c in r.candidates if not c.ok]
    stages = {c.measurement.stage for c in failed}
    assert {"parse", "schedule"} <= stages
    assert any("__import__" in c.measurement.error for c in failed)
    assert any("os.system" in c.measurement.error for c in failed)
    evaluated = [c for c in r.candidates if c.measurement.stage is None or c.ok]
    assert r.samples_used == len(evaluated)  # refusals cost no samples
    lines = [json.loads(x) for x in (tmp_path / "run" / "candidates.jsonl").read_text().splitlines()]
    rejected = [x for x in lines if x["key"].startswith("rejected:")]
    assert rejected and all(x["measurement"]["ok"] is False and x["measurement"]["error"] for x in rejected)
