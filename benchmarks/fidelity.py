"""Fidelity of the timing model: our speedups over the software library beside
the published FireSim ones, the error of each cell (marked fit or validation:
the Exo hand-optimized schedules are never fitted), the FireSim anchor kernel
in absolute cycles, Kendall's tau between our and the published order, and the
fitted parameters.

Every "ours" number comes from a real simulation of the baseline in this run
(``autocomp_exo.bench``: functional run, bit-exact check, timing with the
default -- calibrated -- GemminiConfig). ``--replay`` re-times recorded traces
instead (seconds; what benchmarks/calibrate.py fits on).

    python benchmarks/fidelity.py [--jobs 2] [--shapes 512x512x512] [--replay] [--json]

Exit status 1 when a cell is off by more than 20% or the order
swlib < exo-unopt < exo-opt < fsm breaks on a shape.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calibrate as C  # noqa: E402
import trace_util as T  # noqa: E402

from autocomp_exo.bench import BASELINES, SHAPES, bench, parse_shapes  # noqa: E402
from gemmini_isa.config import GemminiConfig  # noqa: E402


def measure(shapes, jobs: int, replay: bool) -> dict:
    """{(shape, baseline): cycles}."""
    if replay:
        traces = T.load_traces(shapes, jobs=jobs, anchor=True)
        return T.replay_all(traces, GemminiConfig())
    rows = bench(shapes, BASELINES, jobs=jobs)
    out = {(T.ANCHOR[1], T.ANCHOR[0]): T.run_anchor()}
    for r in rows:
        if not r["correct"]:
            raise SystemExit(f"{r['M']}x{r['N']}x{r['K']} {r['baseline']} failed: {r['error']}")
        out[((r["M"], r["N"], r["K"]), r["baseline"])] = r["cycles"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=None, help="comma-separated MxNxK (default: the six GEMMs)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--replay", action="store_true", help="re-time recorded traces instead of simulating")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    shapes = parse_shapes(args.shapes) if args.shapes else list(SHAPES)
    cycles = measure(shapes, args.jobs, args.replay)
    errs = C.cell_errors(cycles)
    bad = C.order_violations(cycles)
    worst = max(errs, key=lambda k: abs(errs[k]))
    ok = abs(errs[worst]) <= C.TOLERANCE and not bad
    if args.json:
        rat = T.ratios(cycles)
        print(json.dumps({
            "cells": [{"shape": T.describe(s), "baseline": b, "cycles": cycles[(s, b)],
                       "speedup": rat.get((s, b)), "published": T.published(s, b),
                       "error": errs.get((s, b))} for (s, b) in cycles],
            "worst": {"shape": T.describe(worst[0]), "baseline": worst[1], "error": errs[worst]},
            "order_violations": [[T.describe(s), a, b] for s, a, b in bad],
            "anchor": {"cycles": cycles.get((T.ANCHOR[1], T.ANCHOR[0])), "firesim": T.ANCHOR_CYCLES,
                       "error": C.anchor_error(cycles)},
            "kendall_tau": C.kendall_tau(cycles),
            "ok": ok,
        }, indent=1))
    else:
        print(("replayed traces" if args.replay else "simulated") + ", default GemminiConfig "
              "(calibrated); published = FireSim, BENCHMARKS.md")
        print(C.format_table(cycles))
        cfg = GemminiConfig()
        print("fitted: " + ", ".join(f"{k} = {getattr(cfg, k)}" for k in C.SPACE))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
