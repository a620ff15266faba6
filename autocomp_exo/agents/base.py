"""The agent interface: plan, then implement.

An agent looks at a :class:`Candidate` (its schedule, the scheduled proc's
text and its :class:`~autocomp_exo.measurement.Measurement`) and

- ``plan(candidate, menu, n, rng) -> [Plan]``: ``n`` plans, each one option
  of ``menu`` (the options left after dropout) with what to do;
- ``implement(candidate, plan, k, rng) -> [[step, ...], ...]``: up to ``k``
  schedule suffixes (lists of step dicts, each with its ``menu`` label) that
  realize the plan when appended to ``candidate.schedule``.

The offline agent (`autocomp_exo.agents.offline`) and an LLM agent are two
implementations. Agents must be deterministic functions of their inputs and
the ``rng`` they are given (the search derives every rng from the seed).
"""
from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..measurement import Measurement
from ..menu import MenuOption
from ..proc_facts import ProcFacts
from ..schedule import Schedule

__all__ = ["Candidate", "Plan", "Agent"]


@dataclass
class Candidate:
    """One point of the search: a schedule and what evaluating it gave."""

    id: int
    schedule: Schedule
    measurement: Optional[Measurement] = None
    proc_text: Optional[str] = None       # str() of the scheduled Exo proc
    parent: Optional[int] = None           # id of the parent candidate
    plan: Optional["Plan"] = None          # the plan that produced it
    iteration: int = 0
    workload: Any = None                   # the GemmWorkload (M, N, K)
    facts: Optional[dict] = None           # ProcFacts.to_json() of the scheduled proc (from the worker)
    config: Any = None                     # the search's GemminiConfig (None: the default)

    def proc_facts(self) -> Optional["ProcFacts"]:
        """The `ProcFacts` of the scheduled proc (from ``facts``; cached), or None."""
        if self.facts is None:
            return None
        cached = self.__dict__.get("_proc_facts")
        if cached is not None and cached[0] is self.facts:
            return cached[1]
        try:
            pf = ProcFacts.from_json(self.facts)
        except (ValueError, KeyError, TypeError):
            return None
        self.__dict__["_proc_facts"] = (self.facts, pf)
        return pf

    @property
    def ok(self) -> bool:
        return bool(self.measurement is not None and self.measurement.ok)

    @property
    def cycles(self) -> Optional[int]:
        return self.measurement.cycles if self.ok else None

    def bottleneck(self) -> str:
        """What limits this candidate, from the simulator's per-unit figures:
        "cpu" (the CPU does not issue commands fast enough), "load" (the DMA is
        busy), "dependency" (units wait for each other: reuse of local rows),
        "bank" (the array loses cycles to operands in one scratchpad bank or to
        DMA writes into the bank it reads), "execute" (the array is busy: close
        to the bound) or "unknown"."""
        m = self.measurement
        if m is None or not m.ok or not m.cycles:
            return "unknown"
        units = m.units or {}
        cyc = float(m.cycles)

        def busy(u):
            return float((units.get(u) or {}).get("busy", 0)) / cyc

        ex = units.get("execute") or {}
        stalls = m.stalls or {}
        # cycles the array spends on operands sharing a bank (or DMA writes
        # into the bank it reads) count as busy but are no work
        bank = float(ex.get("bank_conflict", 0)) / cyc
        exec_busy = busy("execute") - bank
        if bank > 0.05:
            return "bank"
        if exec_busy > 0.9:
            return "execute"
        dep = float(ex.get("dependency", 0)) / cyc
        issue = float(ex.get("cpu_issue", 0)) / cyc
        if busy("load") > 0.8:
            return "load"
        if dep > issue and dep > 0.05:
            return "dependency"
        if busy("cpu") > 0.85 or issue > 0.05:
            return "cpu"
        if float(stalls.get("dependency", 0)) / cyc > 0.05:
            return "dependency"
        return "unknown"


@dataclass(frozen=True)
class Plan:
    """One chosen menu option and what to do for it."""

    option: str                      # menu key (autocomp_exo.menu.KEYS)
    move: str = ""                   # agent-specific name of the transformation
    text: str = ""                   # what to do, in words
    params: dict = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict:
        return {"option": self.option, "move": self.move, "text": self.text, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["Plan"]:
        if d is None:
            return None
        return cls(d.get("option", "other"), d.get("move", ""), d.get("text", ""), dict(d.get("params") or {}))


class Agent(abc.ABC):
    """Base class: subclasses implement plan and implement.

    ``rejections``: answers the agent refused (each a dict with "stage",
    "reason", "steps" and optionally "request", the index of the request in a
    batch); the search reads the new entries after every request and records
    each as a failed candidate. ``notify(results)`` is called with the
    evaluated children of every iteration (no-op by default)."""

    name = "agent"

    @property
    def rejections(self) -> list:
        r = self.__dict__.get("_rejections")
        if r is None:
            r = self.__dict__["_rejections"] = []
        return r

    @rejections.setter
    def rejections(self, value: list) -> None:
        self.__dict__["_rejections"] = value

    def notify(self, results: Sequence[Candidate]) -> None:
        """The evaluated children of one search iteration (their measurements set)."""

    @abc.abstractmethod
    def plan(self, candidate: Candidate, menu: Sequence[MenuOption], n: int,
             rng: random.Random) -> list[Plan]:
        """`n` plans for `candidate`, each one option of `menu`."""

    @abc.abstractmethod
    def implement(self, candidate: Candidate, plan: Plan, k: int,
                  rng: random.Random) -> list[list[dict]]:
        """Up to `k` schedule suffixes (lists of step dicts) realizing `plan`."""

    # -- batched requests (additions: the search sends a whole round at once) ----
    #: True for agents whose plan_many / implement_many answer many requests
    #: concurrently (the LLM agent); the search then asks round by round
    #: (all plans, then all implementations, then re-asks) instead of one
    #: request at a time. The offline agent keeps the one-at-a-time loop.
    concurrent = False

    def plan_many(self, requests: Sequence[tuple]) -> list[list[Plan]]:
        """`plan` for each ``(candidate, menu, n, rng)``, results in request order."""
        return [self.plan(c, m, n, r) for c, m, n, r in requests]

    def implement_many(self, requests: Sequence[tuple]) -> list[list[list[dict]]]:
        """`implement` for each ``(candidate, plan, k, rng)``, results in request order."""
        return [self.implement(c, p, k, r) for c, p, k, r in requests]
