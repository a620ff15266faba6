"""A disk cache of LLM responses: a rerun with the same seed replays with no calls.

The key is the SHA-256 of the canonical JSON of (model identity, messages,
sampling settings, sample index). The model identity is the endpoint URL and
the model name (never the API key). The sample index is chosen by the agent
from the search's rng, so the same search with the same seed asks for the
same samples in the same order.

Layout: ``DIR/ab/abcdef....json``, one file per response, written to a
temporary file and renamed into place under a `filelock.FileLock`, so several
processes (parallel searches sharing one cache) can write at once and a
reader never sees half a file. Only successful responses are stored.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from filelock import FileLock

from ..atomic_write import write_atomic

__all__ = ["ResponseCache", "cache_key"]

VERSION = 1


def cache_key(model: str, messages: list, settings: dict, sample: int) -> str:
    blob = json.dumps({"v": VERSION, "model": model, "messages": messages, "settings": settings,
                       "sample": sample}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.directory / ".lock"), timeout=60)
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[dict]:
        p = self._path(key)
        try:
            with open(p) as fh:
                rec = json.load(fh)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError):  # unreadable/corrupt entry: treat as missing
            self.misses += 1
            return None
        if not isinstance(rec, dict) or rec.get("key") != key or not isinstance(rec.get("response"), dict):
            self.misses += 1
            return None
        self.hits += 1
        return rec["response"]

    def put(self, key: str, response: dict, meta: Optional[dict] = None) -> None:
        p = self._path(key)
        rec: dict[str, Any] = {"key": key, "response": response, "created": time.time()}
        if meta:
            rec["meta"] = meta
        with self._lock:
            p.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(p, json.dumps(rec, sort_keys=True))
        self.writes += 1

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json"))

    def stats(self) -> dict:
        return {"directory": str(self.directory), "hits": self.hits, "misses": self.misses, "writes": self.writes}
