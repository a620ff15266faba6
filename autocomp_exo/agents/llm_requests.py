"""The LLM agent's streamed requests: one search iteration's session (`streaming`).

Each plan or implement request runs in the agent's request threads as soon
as the search hands it over (the models are kept busy instead of waiting for
a round's slowest answer); the agent's own Exo check of a draft runs in that
thread too, so it overlaps with the other requests. What depends on the
order must not depend on arrival times, so

- a request's model is dealt from its slot number (``plan0 + slot``,
  ``impl0 + slot``: the search numbers slots in a fixed order), not from a
  counter bumped as requests arrive;
- the worked examples of a parent (`llm_moves.guide`) are built in the
  search's worker pool when it has one (``run_task``): they are the longest
  Exo work of a request and would otherwise hold the agent's Exo lock (the
  checks of the drafts, `llm_check`, run in the request's thread, or in the
  pool with ``check_in_pool``);
- its refusals come back with its own answer (a per-thread sink), not
  through the agent's shared ``rejections`` list;
- the answer log is put in (kind, slot, attempt) order when the session closes.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Optional

__all__ = ["LLMRequests"]

_KIND_ORDER = {"plan": 0, "implement": 1}


class LLMRequests:
    """One iteration's requests to an `LLMAgent` (the `streaming` session protocol)."""

    def __init__(self, agent: Any, run_task: Optional[Callable] = None):
        self.agent, self.run_task = agent, run_task
        with agent._lock:
            self.plan0, self.impl0 = agent._plan_n, agent._impl_n
            self.n0 = (len(agent.answers), len(agent.rejections))
        self.plan_hi = self.impl_hi = 0

    def plan(self, slot: int, candidate: Any, menu: list, rng: Any) -> Future:
        """Future of ``([Plan] or [], refusals)`` for plan slot ``slot``."""
        self.plan_hi = max(self.plan_hi, slot + 1)
        self.agent._guide_future(candidate, self.run_task)   # worked examples for the implement requests,
        # built meanwhile (in a worker process when the search has a pool)
        return self.agent._executor().submit(self._run, "plan", slot, self.plan0 + slot, candidate, list(menu), rng)

    def implement(self, slot: int, candidate: Any, plan: Any, rng: Any) -> Future:
        """Future of ``([steps] or [], refusals)`` for implement slot ``slot``."""
        self.impl_hi = max(self.impl_hi, slot + 1)
        return self.agent._executor().submit(self._run, "implement", slot, self.impl0 + slot, candidate, plan, rng)

    def _run(self, kind: str, slot: int, j: int, candidate: Any, what: Any, rng: Any) -> tuple[list, list]:
        a = self.agent
        local = a._batch
        local.sink, local.kind, local.run_task = [], kind, self.run_task   # drafts checked in the pool
        try:
            try:
                if kind == "plan":
                    jobs = a._plan_jobs(slot, candidate, what, 1, rng, j0=j)
                else:
                    jobs = a._impl_jobs(slot, candidate, what, 1, rng, j0=j)
            except Exception as e:  # noqa: BLE001 - an agent bug is a lost proposal, not a lost search
                a.warn(f"LLM agent: {'planning' if kind == 'plan' else 'implementing'} failed: "
                       f"{type(e).__name__}: {e}")
                jobs = []
            one = a._plan_job if kind == "plan" else a._impl_job
            values = []
            for job in jobs:
                local.tag = job["tag"]
                v = one(job)
                if v:
                    values.append(v)
            return values, local.sink
        finally:
            local.tag = local.sink = local.kind = local.run_task = None

    def result(self, f: Future) -> Any:
        return f.result()

    def close(self) -> None:
        """Advance the agent's dealing counters past this session's slots and put
        the answers logged during it in order."""
        a = self.agent

        def k(r: dict):
            return (_KIND_ORDER.get(r.get("kind"), 2), r.get("request", -1), r.get("job", -1),
                    r.get("attempt", -1), 0 if r.get("stage") == "truncated" else 1)

        with a._lock:
            a._plan_n = max(a._plan_n, self.plan0 + self.plan_hi)
            a._impl_n = max(a._impl_n, self.impl0 + self.impl_hi)
            n_ans, n_rej = self.n0
            a.answers[n_ans:] = sorted(a.answers[n_ans:], key=k)
            a.rejections[n_rej:] = sorted(a.rejections[n_rej:], key=k)
