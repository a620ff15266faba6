"""Record the timing-model traces of the bench cells once, re-time them under
any configuration (used by calibrate.py and fidelity.py).

A trace is the stream of calls the functional machine makes to the timing
model (``sim.timing_fast.TraceRecorder``); it does not depend on the timing
parameters, so re-timing a cell is a replay through the C kernel
(~0.2 us per command) instead of a 0.3-3 s simulation.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autocomp_exo.bench import BASELINES, PUBLISHED, SHAPES  # noqa: E402
from gemmini_isa.config import GemminiConfig  # noqa: E402
from sim.timing_fast import TraceRecorder, replay_trace  # noqa: E402

__all__ = ["record_cell", "load_traces", "replay_all", "ratios", "trace_dir"]


def trace_dir() -> Path:
    env = os.environ.get("AUTOCOMP_EXO_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "autocomp_exo"
    return base / "traces"


def _sources_key() -> str:
    """Hash of the files that decide a trace (baselines, machine, compiler, Exo
    lowering): a stale trace is re-recorded when any of them changes."""
    h = hashlib.sha256()
    files = sorted((ROOT / "autocomp_exo" / "baselines").glob("*.py"))
    files += [ROOT / "sim" / n for n in ("machine.py", "compiler.py", "loop_ws.py", "run.py")]
    files += [ROOT / "autocomp_exo" / n for n in ("evaluate.py", "exo_compile.py", "workloads.py")]
    files += [ROOT / "gemmini_isa" / "config.py", ANCHOR_FILE]
    for f in files:
        if f.exists():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


#: the FireSim anchor of BENCHMARKS.md (absolute cycles), written from its description
ANCHOR = ("anchor", (12544, 256, 64))
ANCHOR_CYCLES = 3_435_455
ANCHOR_FILE = ROOT / "examples" / "anchor_12544x256x64.c"


def run_anchor(config: Optional[GemminiConfig] = None) -> int:
    """Cycles of the anchor kernel (zero inputs: its control flow and timing do
    not depend on data)."""
    import sim
    args = {"A": np.zeros((12544, 64), np.int8), "B": np.zeros((64, 256), np.int8),
            "C": np.zeros((12544, 256), np.int8)}
    return int(sim.run(ANCHOR_FILE.read_text(), "solution", args, config=config,
                       filename=str(ANCHOR_FILE)).cycles)


def record_cell(baseline: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """Simulate one bench cell (or the anchor kernel, baseline "anchor") with a
    TraceRecorder as its timing model. Returns (trace words, cycles the run
    reported under the default config)."""
    import sim.run  # noqa: F401
    simrun = sys.modules["sim.run"]
    from autocomp_exo.bench import measure_baseline

    recs: list[TraceRecorder] = []
    orig = simrun.make_timing_model

    def make(config: Optional[GemminiConfig] = None) -> TraceRecorder:
        r = TraceRecorder(config)
        recs.append(r)
        return r

    simrun.make_timing_model = make
    try:
        if baseline == ANCHOR[0]:
            cycles = run_anchor()
        else:
            m = measure_baseline(baseline, *shape)
            if not m.ok:
                raise RuntimeError(f"{baseline} {shape}: {m.stage}: {m.error}")
            cycles = int(m.cycles)
    finally:
        simrun.make_timing_model = orig
    if len(recs) != 1:
        raise RuntimeError(f"{baseline} {shape}: {len(recs)} timing models made, expected 1")
    return np.frombuffer(recs[0].words(), dtype=np.int64).copy(), cycles


def _record_to_file(args: tuple) -> str:
    baseline, shape, path = args
    words, cycles = record_cell(baseline, shape)
    tmp = Path(str(path) + ".tmp.npy")
    np.save(tmp, words)
    os.replace(tmp, path)
    return f"{baseline} {shape}: {len(words)} words, {cycles} cycles"


def load_traces(shapes: Iterable[tuple[int, int, int]] = SHAPES, baselines: Iterable[str] = BASELINES,
                *, jobs: int = 2, refresh: bool = False, verbose: bool = True,
                anchor: bool = False) -> dict[tuple, np.ndarray]:
    """{(shape, baseline): trace}, recording the missing ones (in `jobs` processes)."""
    d = trace_dir() / _sources_key()
    d.mkdir(parents=True, exist_ok=True)
    cells = [(tuple(s), b) for s in shapes for b in baselines]
    if anchor:
        cells.append((ANCHOR[1], ANCHOR[0]))
    path = {c: d / f"{c[1]}_{'x'.join(map(str, c[0]))}.npy" for c in cells}
    todo = [(b, s, path[(s, b)]) for s, b in cells if refresh or not path[(s, b)].exists()]
    if todo:
        if verbose:
            print(f"recording {len(todo)} trace(s) into {d} ...", file=sys.stderr, flush=True)
        if jobs > 1 and len(todo) > 1:
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=jobs) as ex:
                for msg in ex.map(_record_to_file, todo):
                    if verbose:
                        print("  " + msg, file=sys.stderr, flush=True)
        else:
            for t in todo:
                msg = _record_to_file(t)
                if verbose:
                    print("  " + msg, file=sys.stderr, flush=True)
    return {c: np.load(path[c]) for c in cells}


def replay_all(traces: dict[tuple, np.ndarray], config: GemminiConfig) -> dict[tuple, int]:
    """Cycles of every cell under `config`."""
    return {c: replay_trace(w, config).cycles for c, w in traces.items()}


def ratios(cycles: dict[tuple, int]) -> dict[tuple, float]:
    """{(shape, baseline): speedup over swlib of that shape} (swlib itself omitted)."""
    out = {}
    for (s, b), c in cycles.items():
        if b not in ("swlib", ANCHOR[0]) and (s, "swlib") in cycles:
            out[(s, b)] = cycles[(s, "swlib")] / c
    return out


def published(shape: tuple[int, int, int], baseline: str) -> Optional[float]:
    return PUBLISHED.get(tuple(shape), {}).get(baseline)


def describe(x: Any) -> str:
    return "x".join(map(str, x)) if isinstance(x, tuple) else str(x)
