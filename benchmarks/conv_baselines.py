"""Cycles of the conv baselines on the benchmark shapes (GEMMINI_CONV.md section 2).

Every run is checked bit-exact against the numpy reference (seed 0: the
harness's 0/1 data; ``--seed 1``: signed data). Prints one row per (shape,
baseline): cycles, array utilization, speedup over the software library
(CPU-issued) and the fraction of the conv FSM's speed.

    PYTHONPATH=. python3 benchmarks/conv_baselines.py [--shapes conv-56 conv-14] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time

from autocomp_exo.baselines import conv_exo, conv_exo_opt, conv_fsm, conv_swlib
from autocomp_exo.conv import BENCHMARK_SHAPES, ConvWorkload
from autocomp_exo.evaluate import evaluate_c

BASELINES = {"swlib": conv_swlib, "exo_unopt": conv_exo, "exo_opt": conv_exo_opt, "fsm": conv_fsm}


def measure(shape: str, seed: int) -> dict:
    """baseline name -> Measurement for one benchmark shape."""
    w = ConvWorkload(*BENCHMARK_SHAPES[shape])
    out = {}
    for name, gen in BASELINES.items():
        m = evaluate_c(w, *gen.generate(w), seed=seed)
        if not m.ok:
            raise SystemExit(f"{shape} {name}: {m.stage}: {m.error}")
        out[name] = m
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="*", default=list(BENCHMARK_SHAPES), choices=list(BENCHMARK_SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(f"{'shape':<12} {'baseline':<10} {'cycles':>10} {'util':>6} {'x swlib':>8} {'of FSM':>7}")
    t0 = time.perf_counter()
    for shape in a.shapes:
        ms = measure(shape, a.seed)
        lib, fsm = ms["swlib"].cycles, ms["fsm"].cycles
        for name, m in ms.items():
            print(f"{shape:<12} {name:<10} {m.cycles:>10} {m.utilization:>6.3f} {lib / m.cycles:>8.2f} "
                  f"{fsm / m.cycles:>7.2f}", flush=True)
    print(f"# all bit-exact (seed {a.seed}); {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
