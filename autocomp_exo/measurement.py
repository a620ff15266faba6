"""`Measurement`: the result of evaluating one candidate (or baseline) program.

A measurement is data: a failed candidate is a ``Measurement(ok=False)`` with
the stage it failed in and the message, never an exception.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["Measurement", "STAGES"]

#: Where an evaluation can fail, in pipeline order.
STAGES = ("schedule", "compile", "parse", "simulate", "mismatch")


def _jsonable(x: Any) -> Any:
    """Turn numpy scalars, tuples and nested containers into JSON values."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


@dataclass
class Measurement:
    """What evaluating a workload with one program gave.

    ``ok`` is True only when the program ran and its output equals the numpy
    reference bit for bit. Otherwise ``stage`` says where it failed
    (one of `STAGES`) and ``error`` has the message.
    """

    ok: bool
    stage: Optional[str] = None          # failing stage, None when ok
    error: Optional[str] = None          # failure message
    workload: Optional[str] = None       # workload name, e.g. "gemm_512x512x512"
    label: Optional[str] = None          # what was measured, e.g. "swlib", "exo-unopt", a schedule id
    M: Optional[int] = None
    N: Optional[int] = None
    K: Optional[int] = None
    relu: Optional[bool] = None
    macs: Optional[int] = None
    seed: Optional[int] = None           # the input seed the figures come from
    seeds: list = field(default_factory=list)  # every input seed the program passed (bit-exact)
    cycles: Optional[int] = None         # simulated cycles (timing model)
    utilization: Optional[float] = None  # ideal cycles (macs / dim^2) / cycles
    baseline_cycles: Optional[int] = None
    speedup: Optional[float] = None      # baseline_cycles / cycles, when a baseline was given
    mismatches: Optional[int] = None     # elements of C that differ from the reference
    total_elements: Optional[int] = None
    first_mismatch: Optional[dict] = None  # {"index": [i, j], "got": g, "want": w}
    instructions: dict = field(default_factory=dict)  # simulator counts by op, with "total"
    units: dict = field(default_factory=dict)         # per unit busy/idle figures
    stalls: dict = field(default_factory=dict)        # stall cycles by cause
    dram_bytes: dict = field(default_factory=dict)
    sp_rows_used: Optional[int] = None
    acc_rows_used: Optional[int] = None
    entry: Optional[str] = None          # C function that was run
    c_source: Optional[str] = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)  # seconds per stage, and "total"
    proc: Any = field(default=None, repr=False, compare=False)  # the scheduled Exo proc (not serialised)

    @property
    def correct(self) -> bool:
        """The program ran and matched the reference (same as ``ok``)."""
        return self.ok

    def summary(self) -> str:
        """One line for logs."""
        name = self.label or self.workload or "candidate"
        if not self.ok:
            msg = (self.error or "").strip().splitlines()
            return f"{name}: FAILED at {self.stage}: {msg[0] if msg else ''}"
        s = f"{name}: {self.cycles} cycles"
        if self.utilization is not None:
            s += f", {100 * self.utilization:.1f}% utilization"
        if self.speedup is not None:
            s += f", {self.speedup:.2f}x over baseline"
        return s

    def to_dict(self, *, include_source: bool = True) -> dict:
        """JSON-ready dict of every field but ``proc`` (and ``c_source`` if not wanted)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "proc" or (f.name == "c_source" and not include_source):
                continue
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
