"""Median time to evaluate a one-step child of the 512x512x512 Exo baseline.

The search evaluates children of already-scheduled parents; the prefix cache
makes Exo re-apply only the child's new step. This prints the median over
--children children (each one different step appended to the baseline), split
into Exo (applying the schedule), compile (Exo lowering to C), parse (the
simulator's parse + compile of the C) and simulation (functional + timing, plus
the bit-exact check). Target on the 2-core reference machine: 1.5 s or less.

    python benchmarks/evaluate_latency.py [--children 7] [--size 512]
"""
from __future__ import annotations

import argparse
import statistics
import time

from autocomp_exo.baselines import exo_unopt
from autocomp_exo.evaluate import evaluate
from autocomp_exo.workloads import GemmWorkload

# One-step children: each is valid on the baseline proc and changes the program a little.
CHILD_STEPS = [
    {"op": "unroll_loop", "args": ["j_in_o #0"], "kwargs": {}, "menu": "unrolling"},
    {"op": "unroll_loop", "args": ["j_in_o #1"], "kwargs": {}, "menu": "unrolling"},
    {"op": "unroll_loop", "args": ["j_in_o #2"], "kwargs": {}, "menu": "unrolling"},
    {"op": "unroll_loop", "args": ["k #0"], "kwargs": {}, "menu": "unrolling"},
    {"op": "unroll_loop", "args": ["k #1"], "kwargs": {}, "menu": "unrolling"},
    {"op": "simplify", "args": [], "kwargs": {}, "menu": "simplifying arithmetic"},
    {"op": "reorder_loops", "args": ["k j_in_o"], "kwargs": {}, "menu": "loop reordering"},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=len(CHILD_STEPS))
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    w = GemmWorkload(args.size, args.size, args.size)
    base = exo_unopt.schedule(w)
    t0 = time.perf_counter()
    parent = evaluate(w, base)  # warms the prefix cache with the parent's proc
    print(f"parent (cold, whole baseline): {time.perf_counter() - t0:.2f} s, ok={parent.ok}, "
          f"{parent.cycles:,} cycles")
    rows = []
    for step in CHILD_STEPS[: args.children]:
        child = base.extend([step])
        t0 = time.perf_counter()
        m = evaluate(w, child, baseline_cycles=parent.cycles)
        total = time.perf_counter() - t0
        t = m.timings
        rows.append({"total": total, "exo": t.get("schedule", 0.0), "compile": t.get("compile", 0.0),
                     "parse": t.get("parse", 0.0),
                     "simulation": t.get("simulate", 0.0) + t.get("compare", 0.0)})
        status = f"{m.cycles:,} cycles" if m.ok else f"FAILED at {m.stage}: {m.error}"
        print(f"  child + {step['op']}({', '.join(map(str, step['args']))}): {total:.2f} s  {status}")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"median over {len(rows)} one-step children: {med['total']:.2f} s  "
          f"(Exo {med['exo']:.2f} s, compile {med['compile']:.2f} s, parse {med['parse']:.2f} s, "
          f"simulation {med['simulation']:.2f} s); target <= 1.5 s")


if __name__ == "__main__":
    main()
