"""Stub agent and evaluator for the search tests (importable by worker processes and subprocesses).

The stub evaluator gives every schedule a deterministic cycle count derived
from its steps (no Exo, no simulator), so search rules can be tested fast.
Step names ending in ``crash`` kill the worker process, ``hang`` sleep past
any timeout, ``bad`` give an incorrect candidate.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

from autocomp_exo.agents.base import Agent, Plan


def _h(*parts) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def stub_cycles(schedule: list) -> int:
    c = 10_000
    for i, s in enumerate(schedule):
        if s["op"] == "rename":
            c += _h(s["args"][0], i) % 60 - 35
    return c


def fake_eval(task: dict) -> dict:
    sched = task["schedule"]
    key = json.dumps([[s["op"], s["args"]] for s in sched])
    log = task.get("log")
    if log:
        with open(log, "a") as fh:
            fh.write(key + "\n")
    last = sched[-1]["args"][0] if sched and sched[-1]["op"] == "rename" else ""
    if last.endswith("crash"):
        os._exit(3)
    if last.endswith("hang"):
        time.sleep(60)
    time.sleep(task.get("sleep", 0.0) + (_h(key) % 5) * task.get("jitter", 0.0))
    m = {"ok": True, "cycles": stub_cycles(sched), "M": task["M"], "N": task["N"], "K": task["K"],
         "macs": task["M"] * task["N"] * task["K"], "utilization": 0.5}
    if last.endswith("bad"):
        m.update(ok=False, stage="mismatch", error="stub: wrong output", cycles=None)
    return {"measurement": m, "proc_text": "stub proc", "seconds": 0.0}


class StubAgent(Agent):
    """Proposes one `rename` step with a random name; some names are special."""

    name = "stub"

    def __init__(self, width: int = 6, special: tuple = (), same: bool = False):
        self.width = width
        self.special = special
        self.same = same
        self.plans_seen = []

    def plan(self, candidate, menu, n, rng):
        self.plans_seen.append([o.key for o in menu])
        return [Plan(menu[rng.randrange(len(menu))].key, "rename") for _ in range(n)]

    def implement(self, candidate, plan, k, rng):
        out = []
        for _ in range(k):
            if self.same:
                name = "p_same"
            else:
                name = f"p{rng.randrange(self.width)}"
                if self.special and rng.random() < 0.3:
                    name += "_" + rng.choice(self.special)
            out.append([{"op": "rename", "args": [name], "kwargs": {}, "menu": plan.option}])
        return out


def run_stub_search(run_dir=None, workers=2, budget=40, seed=0, sleep=0.0, jitter=0.0, log=None,
                    special=(), timeout=30.0, beam=3, plans=3, impls=2):
    from autocomp_exo.runs import RunDir
    from autocomp_exo.schedule import Schedule
    from autocomp_exo.search import SearchSettings, beam_search
    from autocomp_exo.workers import WorkerPool
    from autocomp_exo.workloads import GemmWorkload

    w = GemmWorkload(64, 64, 64)
    s = SearchSettings(beam=beam, plans=plans, impls=impls, budget=budget, seed=seed)
    run = None
    if run_dir is not None:
        run = RunDir(run_dir)
        run.start({"workload": w.signature(), "agent": "stub", "start": "empty", **s.to_dict()})
    extra = {"sleep": sleep, "jitter": jitter}
    if log:
        extra["log"] = log
    with WorkerPool(workers, timeout, fn=fake_eval) as pool:
        return beam_search(w, Schedule([]), StubAgent(special=special), s, pool=pool, run=run, task_extra=extra)


if __name__ == "__main__":  # used by the resume test: run, then print the result as JSON
    import sys

    r = run_stub_search(run_dir=sys.argv[1], workers=2, budget=int(sys.argv[2]), sleep=float(sys.argv[3]),
                        log=sys.argv[4])
    print(json.dumps({"best": r.best.id, "cycles": r.best.cycles, "trace": r.trace_key(),
                      "beams": r.trace, "samples": r.samples_used}))
