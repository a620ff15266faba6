"""Run directories: a search's settings, every candidate, the best so far.

::

    RUN/settings.json      what was searched and how (checked on resume)
    RUN/candidates.jsonl   one JSON object per evaluated candidate, appended
                           (and flushed) as each finishes: id, key, parent,
                           iteration, plan, menu options, schedule,
                           measurement, proc text, seconds
    RUN/best.json          the best correct candidate so far (rewritten
                           atomically after every iteration)

Resuming opens the same directory: finished candidates are looked up by
their schedule key (the canonical JSON of the steps without menu labels) and
never evaluated again; a half-written last line (process killed mid-write)
is ignored.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from .database import Database, rank, same_signature

__all__ = ["RunDir", "SettingsMismatch", "schedule_key"]


class SettingsMismatch(ValueError):
    """Resuming a run directory with different search settings."""


def schedule_key(schedule: Any) -> str:
    """Dedup/resume key: the steps' canonical JSON without their menu labels
    (two schedules that differ only in labels are the same program)."""
    return "[" + ",".join(s.program_key() for s in schedule) + "]"


#: a candidates.jsonl line longer than this is not read (as a truncated line)
_MAX_LINE = 64 * 1024 * 1024

#: settings that must match to resume (others, e.g. workers, may change)
#: (the budget may change: a resumed run with a larger budget replays the
#: finished candidates and goes on)
_RESUME_KEYS = ("workload", "seed", "beam", "plans", "impls", "dropout", "iterations",
                "agent", "start", "eval_seed", "config")


class RunDir(Database):
    """One search's run log; a `Database` of its candidates (key: schedule key).
    Its records belong to the workload and hardware of ``settings.json``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict] = {}
        self._load()

    @property
    def settings_path(self) -> Path:
        return self.path / "settings.json"

    @property
    def candidates_path(self) -> Path:
        return self.path / "candidates.jsonl"

    @property
    def best_path(self) -> Path:
        return self.path / "best.json"

    def _load(self) -> None:
        p = self.candidates_path
        if not p.exists():
            return
        with open(p, "rb") as fh:
            data = fh.read()
        good = 0
        for line in data.split(b"\n"):
            if not line.strip():
                good += len(line) + 1
                continue
            try:
                if len(line) > _MAX_LINE:
                    raise ValueError("line too long")
                rec = json.loads(line)
            except (ValueError, RecursionError):
                break  # a truncated last line (or one no reader could take): drop it
            good += len(line) + 1
            if isinstance(rec, dict) and "key" in rec:
                self.records[rec["key"]] = rec
        if good < len(data):  # cut the partial line so appends stay valid JSONL
            with open(p, "r+b") as fh:
                fh.truncate(min(good, len(data)))
                if good and not data[:good].endswith(b"\n"):
                    fh.seek(0, 2)
                    fh.write(b"\n")

    # -- settings --------------------------------------------------------------
    def settings(self) -> Optional[dict]:
        if not self.settings_path.exists():
            return None
        return json.loads(self.settings_path.read_text())

    def start(self, settings: dict) -> bool:
        """Write settings (new run) or check them (resume). Returns True when resuming."""
        old = self.settings()
        if old is None:
            self._atomic_write(self.settings_path, settings)
            return False
        diff = {k: (old.get(k), settings.get(k)) for k in _RESUME_KEYS if old.get(k) != settings.get(k)}
        if diff:
            raise SettingsMismatch(
                f"{self.path} holds a run with other settings {diff}; use a new --run-dir")
        return True

    # -- candidates --------------------------------------------------------------
    def lookup(self, key: str) -> Optional[dict]:
        return self.records.get(key)

    def commit(self, record: dict) -> None:
        """`append` (the `Database` name)."""
        self.append(record)

    def top_k(self, workload_signature: Optional[dict] = None, hardware: Optional[str] = None,
              k: int = 1) -> list:
        """The ``k`` fastest correct candidates of the run (empty when the run is of
        another workload; ``hardware`` is checked against the run's config when given)."""
        st = self.settings() or {}
        if workload_signature is not None and st.get("workload") is not None and \
                not same_signature(st.get("workload"), workload_signature):
            return []
        if hardware is not None and "hardware" in st and st["hardware"] != hardware:
            return []
        return rank(self.records.values(), k, key=lambda r: r.get("key", ""))

    def append(self, record: dict) -> None:
        self.records[record["key"]] = record
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        with open(self.candidates_path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def __len__(self) -> int:
        return len(self.records)

    # -- best ------------------------------------------------------------------
    def write_best(self, best: dict) -> None:
        self._atomic_write(self.best_path, best)

    def best(self) -> Optional[dict]:
        if not self.best_path.exists():
            return None
        return json.loads(self.best_path.read_text())

    @staticmethod
    def _atomic_write(path: Path, obj: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
