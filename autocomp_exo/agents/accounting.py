"""Token, call, latency and cost accounting for the LLM agent.

Every request the agent makes (or replays from the response cache) is one
:class:`Accounting.record` call: model, phase (``plan``, ``implement``,
``fix`` for a retry with the error message), tokens in and out (the server's
``usage`` fields; estimated from the text length when a server sends none,
and marked so), latency, whether it was a cache replay, and the error for a
failed attempt.

Costs are *estimates* from prices the user gives (USD per million input and
output tokens, per model): nothing here knows what a model costs, and a model
without a price has cost ``None`` ("unknown"), never 0.

Files (when a directory is given)::

    DIR/llm_calls.jsonl   one line per request or cache replay
    DIR/llm_usage.json    totals per model and phase, rewritten by `write`
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

__all__ = ["Prices", "parse_price", "Accounting"]

_FIELDS = ("calls", "requests", "failures", "cached", "tokens_in", "tokens_out", "tokens_estimated",
           "latency_s")


class Prices:
    """USD per million tokens (input, output) by model name; unknown models have no price."""

    def __init__(self, prices: Optional[dict] = None):
        self._p: dict[str, tuple[float, float]] = {}
        for k, v in (prices or {}).items():
            self.set(k, *v)

    def set(self, model: str, usd_per_mtok_in: float, usd_per_mtok_out: float) -> None:
        a, b = float(usd_per_mtok_in), float(usd_per_mtok_out)
        if not (a >= 0 and b >= 0):
            raise ValueError(f"prices must be >= 0, got {a}, {b} for {model}")
        self._p[model] = (a, b)

    def get(self, model: str) -> Optional[tuple[float, float]]:
        return self._p.get(model)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> Optional[float]:
        p = self._p.get(model)
        if p is None:
            return None
        return (tokens_in * p[0] + tokens_out * p[1]) / 1e6

    def to_dict(self) -> dict:
        return {k: {"usd_per_mtok_in": a, "usd_per_mtok_out": b} for k, (a, b) in self._p.items()}


def parse_price(text: str) -> tuple[str, float, float]:
    """``"MODEL=IN,OUT"`` (USD per million tokens) -> (model, in, out).

    The model name may itself contain ``=`` (a URL): the last ``=`` splits.
    """
    model, sep, nums = text.rpartition("=")
    parts = nums.split(",")
    if not sep or not model or len(parts) != 2:
        raise ValueError(f"price must look like MODEL=IN,OUT (USD per million tokens), got {text!r}")
    try:
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"price must look like MODEL=IN,OUT (numbers), got {text!r}") from None
    if not (a >= 0 and b >= 0):
        raise ValueError(f"prices must be >= 0, got {text!r}")
    return model, a, b


def _zero() -> dict:
    return {k: 0 for k in _FIELDS} | {"latency_s": 0.0}


class Accounting:
    """Totals per (model, phase); optional JSONL log of every request."""

    def __init__(self, prices: Optional[Prices | dict] = None, directory: Optional[str | os.PathLike] = None):
        self.prices = prices if isinstance(prices, Prices) else Prices(prices)
        self.directory: Optional[Path] = None
        self._t: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()
        if directory is not None:
            self.set_directory(directory)

    def set_directory(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    # -- recording --------------------------------------------------------
    def record(self, model: str, phase: str, *, tokens_in: int = 0, tokens_out: int = 0,
               latency: float = 0.0, cached: bool = False, ok: bool = True, estimated: bool = False,
               error: Optional[str] = None, extra: Optional[dict] = None) -> None:
        """One HTTP request (``cached=False``) or one replay from the cache.

        A failed request (``ok=False``) counts as a request and a failure; its
        tokens are 0 unless the server reported some.
        """
        with self._lock:
            t = self._t.setdefault((model, phase), _zero())
            if cached:
                t["cached"] += 1
            else:
                t["requests"] += 1
                t["latency_s"] += float(latency)
                if ok:
                    t["calls"] += 1
                    t["tokens_in"] += int(tokens_in)
                    t["tokens_out"] += int(tokens_out)
                    if estimated:
                        t["tokens_estimated"] += 1
                else:
                    t["failures"] += 1
            if self.directory is not None:
                line = {"model": model, "phase": phase, "ok": ok, "cached": cached,
                        "tokens_in": int(tokens_in), "tokens_out": int(tokens_out),
                        "tokens_estimated": bool(estimated), "latency_s": round(float(latency), 4)}
                if error:
                    line["error"] = error[:500]
                if extra:
                    line.update(extra)
                with open(self.directory / "llm_calls.jsonl", "a") as fh:
                    fh.write(json.dumps(line, sort_keys=True) + "\n")

    # -- reporting --------------------------------------------------------
    def totals(self) -> dict:
        """``{"models": {m: {"phases": {p: {...}}, "total": {...}}}, "total": {...}}``

        Each ``{...}`` has calls (successful requests), requests (HTTP
        requests including failed attempts), failures, cached (replays, no
        request), tokens_in/out (of successful requests), latency_s (sum),
        and cost_usd (None when a price is missing).
        """
        with self._lock:
            items = {k: dict(v) for k, v in self._t.items()}
        out: dict[str, Any] = {"models": {}, "total": _zero() | {"cost_usd": 0.0}}
        unknown_cost = False
        order = {"plan": 0, "implement": 1, "fix": 2}
        for (model, phase), t in sorted(items.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][1])):
            cost = self.prices.cost(model, t["tokens_in"], t["tokens_out"])
            t["cost_usd"] = cost
            m = out["models"].setdefault(model, {"phases": {}, "total": _zero() | {"cost_usd": 0.0}})
            m["phases"][phase] = t
            for k in _FIELDS:
                m["total"][k] += t[k]
                out["total"][k] += t[k]
            if cost is None:
                m["total"]["cost_usd"] = None
                unknown_cost = True
            elif m["total"]["cost_usd"] is not None:
                m["total"]["cost_usd"] += cost
        if unknown_cost:
            out["total"]["cost_usd"] = None
        else:
            out["total"]["cost_usd"] = sum(m["total"]["cost_usd"] for m in out["models"].values())
        out["prices"] = self.prices.to_dict()
        return out

    def write(self, directory: Optional[str | os.PathLike] = None) -> Optional[Path]:
        """Write ``llm_usage.json`` (atomically) into ``directory`` or the log directory."""
        d = Path(directory) if directory is not None else self.directory
        if d is None:
            return None
        d.mkdir(parents=True, exist_ok=True)
        path = d / "llm_usage.json"
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".llm_usage.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.totals(), fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
        return path

    def summary(self) -> str:
        """A small table: one line per model and phase, and the total."""
        tot = self.totals()
        rows = [("model", "phase", "calls", "cached", "failed", "tokens in", "tokens out", "latency s", "cost USD")]

        def fmt_cost(c):
            return "unknown" if c is None else f"{c:.4f}"

        for model, m in tot["models"].items():
            for phase, t in m["phases"].items():
                rows.append((model, phase, str(t["calls"]), str(t["cached"]), str(t["failures"]),
                             f"{t['tokens_in']:,}", f"{t['tokens_out']:,}", f"{t['latency_s']:.1f}",
                             fmt_cost(t["cost_usd"])))
        t = tot["total"]
        rows.append(("total", "", str(t["calls"]), str(t["cached"]), str(t["failures"]), f"{t['tokens_in']:,}",
                     f"{t['tokens_out']:,}", f"{t['latency_s']:.1f}", fmt_cost(t["cost_usd"])))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(r[i].ljust(w[i]) if i < 2 else r[i].rjust(w[i]) for i in range(len(r))) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        if t["cost_usd"] is None:
            lines.append("cost: a price is missing for some model (give --llm-price MODEL=IN,OUT, USD per 1M tokens)")
        if t["tokens_estimated"]:
            lines.append(f"{t['tokens_estimated']} response(s) had no usage fields: tokens estimated from text length")
        return "\n".join(lines)
