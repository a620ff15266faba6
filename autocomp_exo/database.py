"""`Database`: where evaluated schedules are kept (after TVM MetaSchedule's database).

Two implementations: the run log of one search (`runs.RunDir`: every
candidate, keyed by its schedule key) and the schedule library
(`library.Library`: the best verified record per workload signature and
hardware). Both answer the same three questions:

- ``commit(record)``: keep a record;
- ``lookup(key)``: the record under ``key`` (or None);
- ``top_k(workload_signature, hardware, k)``: the ``k`` fastest correct
  records for that workload and hardware, fastest first (ties by key).

A search (`search.beam_search`, `driver.Session`) keeps its candidates only
through ``lookup`` and ``commit``, and reports its best so far with
``write_best`` (a no-op unless the database keeps one, as a run log does).

This module imports nothing heavy (listing a library or a run stays fast).
"""
from __future__ import annotations

import abc
import json
from typing import Any, Iterable, Optional

__all__ = ["Database", "record_cycles", "rank"]


def record_cycles(rec: Any) -> Optional[int]:
    """The cycles of a correct record (a run-log dict or a library `Record`), else None."""
    if isinstance(rec, dict):
        m = rec.get("measurement") or {}
        return int(m["cycles"]) if m.get("ok") and m.get("cycles") is not None else None
    c = getattr(rec, "cycles", None)
    return int(c) if c is not None else None


def rank(records: Iterable[Any], k: int, key=lambda r: "") -> list:
    """The ``k`` fastest correct records, fastest first (ties by ``key``)."""
    ok = [r for r in records if record_cycles(r) is not None]
    ok.sort(key=lambda r: (record_cycles(r), str(key(r))))
    return ok[:max(0, int(k))]


def same_signature(a: Optional[dict], b: Optional[dict]) -> bool:
    """Two workload signatures name the same workload (a signature without
    "kind" is a GEMM, as `Workload.from_signature` reads it)."""
    if a is None or b is None:
        return a is b
    norm = lambda s: json.dumps({"kind": "gemm", **s}, sort_keys=True)   # noqa: E731
    return norm(a) == norm(b)


class Database(abc.ABC):
    """Keeps evaluated schedules; see the module doc."""

    @abc.abstractmethod
    def commit(self, record: Any) -> None:
        """Keep ``record``."""

    @abc.abstractmethod
    def lookup(self, key: Any) -> Optional[Any]:
        """The record under ``key``, or None."""

    @abc.abstractmethod
    def top_k(self, workload_signature: Optional[dict], hardware: Optional[str], k: int) -> list:
        """The ``k`` fastest correct records for the workload and hardware, fastest first."""

    def write_best(self, best: dict) -> None:
        """The search's best so far (a summary dict, rewritten as it improves);
        a database that keeps no such summary ignores it."""
