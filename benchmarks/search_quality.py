"""Search quality: the offline agent on the six ResNet-50 GEMMs.

For each shape: simulate the software library, Exo unoptimized, our
hand-optimized Exo and the hardware FSM (`autocomp_exo.bench`), run
`optimize` with the offline agent from Exo's standard mapping with at most
``--budget`` samples (default 300), and print the best speedup over swlib,
over Exo unoptimized and over hand-optimized Exo, and the fraction of the
FSM's speed (FSM cycles / best cycles). Targets (issue 5): >= 0.90 of the FSM
on every shape, >= 1.4x over hand-optimized Exo in geometric mean.

    python benchmarks/search_quality.py [--budget 300] [--shapes 512x512x512,...]
        [--workers N] [--seed 0] [--timeout 120] [--run-root DIR] [--json]

``--convs``: the conv benchmarks instead (GEMMINI_CONV.md section 2; ``--shapes
conv-14x128,...`` picks some), against the conv baselines of
``benchmarks/conv_baselines.py`` (the library's CPU-issued tiled conv, Exo's
unoptimized and hand-optimized mappings, the conv FSM); targets (issue 15):
>= 1.1x over hand-optimized Exo and >= 2.7x over the library in geometric
mean.

Every number comes from simulations run by this script (or from the run
directories under --run-root, which make it resumable).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    from autocomp_exo.bench import SHAPES, measure_baseline, parse_shapes
    from autocomp_exo.optimize import optimize
    from autocomp_exo.search import SearchSettings
    from autocomp_exo.workloads import GemmWorkload

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    bench = SearchSettings.defaults(preset="benchmark")   # the benchmarks' settings, in one place
    ap.add_argument("--beam", type=int, default=bench["beam"])
    ap.add_argument("--plans", type=int, default=bench["plans"])
    ap.add_argument("--impls", type=int, default=bench["impls"])
    ap.add_argument("--budget", type=int, default=bench["budget"])
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per candidate (a slower one fails)")
    ap.add_argument("--run-root", default="runs/search_quality")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--convs", action="store_true", help="the conv benchmarks (--shapes: their names)")
    a = ap.parse_args(argv)
    if a.convs:
        return conv_main(a)
    shapes = parse_shapes(a.shapes) if a.shapes else list(SHAPES)
    rows = []
    for (M, N, K) in shapes:
        t0 = time.time()
        base = {b: measure_baseline(b, M, N, K) for b in ("swlib", "exo-unopt", "exo-opt", "fsm")}
        for b, m in base.items():
            if not m.ok:
                print(f"{M}x{N}x{K} {b} failed: {m.error}", file=sys.stderr)
        run_dir = Path(a.run_root) / f"gemm_{M}x{N}x{K}_s{a.seed}_B{a.beam}N{a.plans}K{a.impls}"

        r = optimize(GemmWorkload(M, N, K), budget=a.budget, seed=a.seed, workers=a.workers,
                     beam=a.beam, plans=a.plans, impls=a.impls, run_dir=str(run_dir),
                     progress=_progress(f"{M}x{N}x{K}"),
                     timeout=a.timeout)
        cyc = {b: (m.cycles if m.ok else None) for b, m in base.items()}
        row = {
            "M": M, "N": N, "K": K, "best_cycles": r.cycles, "samples": r.samples_used,
            "utilization": r.utilization,
            "over_swlib": cyc["swlib"] / r.cycles if cyc["swlib"] else None,
            "over_exo_unopt": cyc["exo-unopt"] / r.cycles if cyc["exo-unopt"] else None,
            "over_exo_opt": cyc["exo-opt"] / r.cycles if cyc["exo-opt"] else None,
            "fsm_fraction": cyc["fsm"] / r.cycles if cyc["fsm"] else None,
            "baselines": cyc, "seconds": round(time.time() - t0, 1),
            "menu": list(dict.fromkeys(s.menu for s in r.schedule.steps if s.menu not in ("exo-unopt",))),
        }
        rows.append(row)
        print(f"{M}x{N}x{K}: best {r.cycles:,} cycles, {row['over_exo_opt']:.2f}x over exo-opt, "
              f"{row['fsm_fraction']:.2f} of FSM ({row['seconds']} s)", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps({"rows": rows}, indent=1))
        return 0
    head = (f"{'GEMM (MxNxK)':<15} {'samples':>7} {'best cycles':>12} {'util':>6} {'/swlib':>7} "
            f"{'/exo-unopt':>10} {'/exo-opt':>8} {'FSM frac':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['M']}x{r['N']}x{r['K']:<{15 - len(str(r['M'])) - len(str(r['N'])) - 2}} {r['samples']:>7} "
              f"{r['best_cycles']:>12,} {100 * r['utilization']:>5.1f}% {r['over_swlib']:>6.2f}x "
              f"{r['over_exo_unopt']:>9.2f}x {r['over_exo_opt']:>7.2f}x {r['fsm_fraction']:>8.2f}")

    print("-" * len(head))
    print(f"{'geomean':<15} {'':>7} {'':>12} {'':>6} {_geo(rows, 'over_swlib'):>6.2f}x {_geo(rows, 'over_exo_unopt'):>9.2f}x "
          f"{_geo(rows, 'over_exo_opt'):>7.2f}x {_geo(rows, 'fsm_fraction'):>8.2f}")
    ok_fsm = all(r["fsm_fraction"] and r["fsm_fraction"] >= 0.90 for r in rows)
    print(f"targets: >= 0.90 of FSM on every shape: {'met' if ok_fsm else 'NOT met'}; "
          f">= 1.4x over exo-opt (geomean): {'met' if _geo(rows, 'over_exo_opt') >= 1.4 else 'NOT met'}")
    return 0


def _progress(shape: str):
    """The per-iteration progress line on stderr."""
    def progress(ev):
        if ev["event"] == "iteration":
            print(f"  {shape} it {ev['iteration']}: {ev['samples']} samples, best {ev['best_cycles']:,} "
                  f"({ev['speedup']:.2f}x over exo-unopt), accepted {ev['accepted']}", file=sys.stderr, flush=True)
    return progress


def _geo(rows: list, k: str) -> float:
    v = [r[k] for r in rows if r[k]]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def conv_main(a) -> int:
    """``--convs``: the search on the conv benchmarks against the conv baselines."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conv_baselines import measure   # the baselines' one measurement (bit-exact checked there)

    from autocomp_exo.conv import BENCHMARK_SHAPES, ConvWorkload
    from autocomp_exo.optimize import optimize

    names = a.shapes.split(",") if a.shapes else list(BENCHMARK_SHAPES)
    unknown = [n for n in names if n not in BENCHMARK_SHAPES]
    if unknown:
        raise SystemExit(f"unknown conv shapes {unknown}; known: {', '.join(BENCHMARK_SHAPES)}")
    rows = []
    for name in names:
        t0 = time.time()
        w = ConvWorkload(*BENCHMARK_SHAPES[name])
        cyc = {b: m.cycles for b, m in measure(name, 0).items()}
        run_dir = Path(a.run_root) / f"{w.name}_s{a.seed}_B{a.beam}N{a.plans}K{a.impls}"

        r = optimize(w, budget=a.budget, seed=a.seed, workers=a.workers, beam=a.beam, plans=a.plans,
                     impls=a.impls, run_dir=str(run_dir), progress=_progress(name), timeout=a.timeout)
        row = {"shape": name, "best_cycles": r.cycles, "samples": r.samples_used, "utilization": r.utilization,
               "start_cycles": r.baseline_cycles,
               "over_swlib": cyc["swlib"] / r.cycles, "over_exo_unopt": cyc["exo_unopt"] / r.cycles,
               "over_exo_opt": cyc["exo_opt"] / r.cycles, "fsm_fraction": cyc["fsm"] / r.cycles,
               "baselines": cyc, "seconds": round(time.time() - t0, 1),
               "moves": list(dict.fromkeys(s.op for s in r.schedule.steps if s.menu != "exo-unopt"))}
        rows.append(row)
        print(f"{name}: best {r.cycles:,} cycles, {row['over_exo_opt']:.2f}x over exo-opt, "
              f"{row['fsm_fraction']:.2f} of FSM ({row['seconds']} s)", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps({"rows": rows}, indent=1))
        return 0
    head = (f"{'conv':<12} {'samples':>7} {'start':>10} {'best cycles':>12} {'util':>6} {'/swlib':>7} "
            f"{'/exo-unopt':>10} {'/exo-opt':>8} {'FSM frac':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['shape']:<12} {r['samples']:>7} {r['start_cycles']:>10,} {r['best_cycles']:>12,} "
              f"{100 * r['utilization']:>5.1f}% {r['over_swlib']:>6.2f}x {r['over_exo_unopt']:>9.2f}x "
              f"{r['over_exo_opt']:>7.2f}x {r['fsm_fraction']:>8.2f}")
    print("-" * len(head))
    print(f"{'geomean':<12} {'':>7} {'':>10} {'':>12} {'':>6} {_geo(rows, 'over_swlib'):>6.2f}x "
          f"{_geo(rows, 'over_exo_unopt'):>9.2f}x {_geo(rows, 'over_exo_opt'):>7.2f}x "
          f"{_geo(rows, 'fsm_fraction'):>8.2f}")
    print(f"targets: >= 2.7x over swlib (geomean): {'met' if _geo(rows, 'over_swlib') >= 2.7 else 'NOT met'}; "
          f">= 1.1x over exo-opt (geomean): {'met' if _geo(rows, 'over_exo_opt') >= 1.1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
