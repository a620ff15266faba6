"""`autocomp-exo bench`: the six ResNet-50 GEMMs x the four baselines.

For each shape and each baseline ("swlib", "exo-unopt", "exo-opt", "fsm")
the program is simulated, checked bit-exactly against the numpy reference
and timed; the table shows cycles, utilization, correctness and the speedup
over the software library, beside the speedups published for FireSim
(BENCHMARKS.md). Every number in the table comes from a simulation run in
this process, except the ``published`` column, which is quoted from
`PUBLISHED`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Iterable, Optional

from .measurement import Measurement

__all__ = [
    "BASELINES", "SHAPES", "PUBLISHED", "PUBLISHED_SOURCE", "parse_shapes", "measure_baseline",
    "bench", "format_table", "add_bench_parser", "run_bench", "main",
]

#: The baselines, in table order.
BASELINES = ("swlib", "exo-unopt", "exo-opt", "fsm")

#: The six ResNet-50 GEMMs (M, N, K) of the Exo and Autocomp papers.
SHAPES = (
    (512, 512, 512),
    (12544, 256, 64),
    (12544, 64, 256),
    (3136, 512, 128),
    (3136, 128, 512),
    (784, 1024, 256),
)

PUBLISHED_SOURCE = ("Autocomp paper, FireSim cycle-exact RTL, speedup over the Gemmini software "
                    "library (BENCHMARKS.md, 'Published results')")

#: (M, N, K) -> {baseline: published speedup over the software library}.
PUBLISHED: dict[tuple[int, int, int], dict[str, float]] = {
    (512, 512, 512):   {"swlib": 1.0, "exo-unopt": 2.6, "exo-opt": 5.2, "autocomp": 5.2, "fsm": 6.0},
    (12544, 256, 64):  {"swlib": 1.0, "exo-unopt": 1.9, "exo-opt": 4.2, "autocomp": 5.6, "fsm": 6.5},
    (12544, 64, 256):  {"swlib": 1.0, "exo-unopt": 1.7, "exo-opt": 2.5, "autocomp": 5.5, "fsm": 5.9},
    (3136, 512, 128):  {"swlib": 1.0, "exo-unopt": 1.9, "exo-opt": 4.5, "autocomp": 5.7, "fsm": 6.3},
    (3136, 128, 512):  {"swlib": 1.0, "exo-unopt": 1.9, "exo-opt": 4.3, "autocomp": 5.5, "fsm": 5.9},
    (784, 1024, 256):  {"swlib": 1.0, "exo-unopt": 1.8, "exo-opt": 4.0, "autocomp": 5.8, "fsm": 6.2},
}


#: Parameter style of the generated swlib/fsm C: flat row-major pointers, as the
#: library itself and Exo's C use (the generators also write 2-D array parameters).
C_ARRAYS = "flat"


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    """``"512x512x512,12544x256x64"`` -> [(512, 512, 512), (12544, 256, 64)]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        dims = part.split("x")
        if len(dims) != 3 or not all(d.strip().isdigit() for d in dims):
            raise ValueError(f"bad shape {part!r}: expected MxNxK, e.g. 512x512x512")
        M, N, K = (int(d) for d in dims)
        if min(M, N, K) <= 0 or M % 16 or N % 16 or K % 16:
            raise ValueError(f"bad shape {part!r}: M, N and K must be positive multiples of 16")
        out.append((M, N, K))
    if not out:
        raise ValueError("no shapes given")
    return out


def _workload(M: int, N: int, K: int) -> Any:
    from .workloads import GemmWorkload

    return GemmWorkload(M, N, K, False)


def measure_baseline(baseline: str, M: int, N: int, K: int, *, config: Any = None,
                     seed: int = 0) -> Measurement:
    """Simulate and check one baseline on one shape (never raises)."""
    from .evaluate import evaluate, evaluate_c

    t0 = time.perf_counter()

    def failed(stage: str, e: BaseException) -> Measurement:
        return Measurement(ok=False, stage=stage, error=f"{type(e).__name__}: {e}", label=baseline,
                           M=M, N=N, K=K, macs=M * N * K, seed=seed,
                           timings={"total": time.perf_counter() - t0})

    if baseline in ("swlib", "fsm"):
        try:
            if baseline == "swlib":
                from .baselines import swlib as gen
            else:
                from .baselines import fsm as gen
            c_source, entry = gen.generate(_Dims(M, N, K), arrays=C_ARRAYS)
        except Exception as e:
            return failed("compile", e)
        try:
            w = _workload(M, N, K)
        except Exception:
            w = _Dims(M, N, K)  # the C baselines only need the dimensions
        return evaluate_c(w, c_source, entry, config=config, seed=seed, label=baseline)
    if baseline in ("exo-unopt", "exo-opt"):
        try:
            w = _workload(M, N, K)
            if baseline == "exo-unopt":
                from .baselines import exo_unopt as mod
            else:
                from .baselines import exo_opt as mod
            sched = mod.schedule(w)
        except Exception as e:
            return failed("schedule", e)
        return evaluate(w, sched, config=config, seed=seed, label=baseline)
    return failed("schedule", ValueError(f"unknown baseline {baseline!r}; known: {', '.join(BASELINES)}"))


def _measure_portable(baseline: str, M: int, N: int, K: int, config: Any = None, seed: int = 0) -> Measurement:
    """`measure_baseline` for a worker process: drops the Exo proc (not picklable)."""
    m = measure_baseline(baseline, M, N, K, config=config, seed=seed)
    m.proc = None
    return m


class _Dims:
    """A stand-in workload with only the dimensions (for the C baselines)."""

    def __init__(self, M: int, N: int, K: int, relu: bool = False):
        self.M, self.N, self.K, self.relu = M, N, K, relu
        self.name = f"gemm_{M}x{N}x{K}"
        self.macs = M * N * K


def _row(M: int, N: int, K: int, baseline: str, m: Measurement, sw_cycles: Optional[int]) -> dict:
    speedup = None
    if m.ok and sw_cycles and m.cycles:
        speedup = sw_cycles / m.cycles
    return {
        "M": M, "N": N, "K": K, "baseline": baseline,
        "cycles": m.cycles if m.ok else None,
        "utilization": m.utilization if m.ok else None,
        "correct": bool(m.ok),
        "speedup": speedup,
        "published_speedup": PUBLISHED.get((M, N, K), {}).get(baseline),
        "stage": m.stage,
        "error": m.error,
        "instructions": (m.instructions or {}).get("total"),
        "seconds": round(float(m.timings.get("total", 0.0)), 3),
    }


def bench(shapes: Iterable[tuple[int, int, int]] = SHAPES, baselines: Iterable[str] = BASELINES, *,
          config: Any = None, seed: int = 0, jobs: int = 1,
          progress: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """Measure every (shape, baseline) cell; rows in shape-major, baseline order.

    ``speedup`` is over the software library of the same shape (None when
    swlib was not measured or failed). ``jobs > 1`` runs cells in worker
    processes.
    """
    shapes = [tuple(int(x) for x in s) for s in shapes]
    baselines = list(baselines)
    cells = [(s, b) for s in shapes for b in baselines]
    results: dict[tuple, Measurement] = {}
    if jobs > 1 and len(cells) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as ex:
            futs = {(s, b): ex.submit(_measure_portable, b, *s, config=config, seed=seed) for s, b in cells}
            for key, f in futs.items():
                try:
                    results[key] = f.result()
                except Exception as e:  # a worker died
                    results[key] = Measurement(ok=False, stage="simulate", error=f"{type(e).__name__}: {e}",
                                               label=key[1])
                if progress:
                    progress({"M": key[0][0], "N": key[0][1], "K": key[0][2], "baseline": key[1],
                              "measurement": results[key]})
    else:
        for s, b in cells:
            results[(s, b)] = measure_baseline(b, *s, config=config, seed=seed)
            if progress:
                progress({"M": s[0], "N": s[1], "K": s[2], "baseline": b, "measurement": results[(s, b)]})
    rows = []
    for s in shapes:
        sw = results.get((s, "swlib"))
        sw_cycles = sw.cycles if (sw is not None and sw.ok) else None
        for b in baselines:
            rows.append(_row(*s, b, results[(s, b)], sw_cycles))
    return rows


def _fmt(x: Any, spec: str, none: str = "-") -> str:
    return none if x is None else format(x, spec)


def format_table(rows: list[dict]) -> str:
    """A plain-text table of bench rows."""
    import math

    head = (f"{'GEMM (MxNxK)':<16} {'baseline':<10} {'cycles':>11} {'util':>7} {'correct':>7} "
            f"{'speedup':>8} {'published':>9}")
    lines = [head, "-" * len(head)]
    prev = None
    for r in rows:
        shape = f"{r['M']}x{r['N']}x{r['K']}"
        if prev is not None and shape != prev:
            lines.append("")
        prev = shape
        util = "-" if r["utilization"] is None else f"{100 * r['utilization']:.1f}%"
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        pub = "-" if r["published_speedup"] is None else f"{r['published_speedup']:.1f}x"
        lines.append(
            f"{shape:<16} {r['baseline']:<10} {_fmt(r['cycles'], ',d'):>11} {util:>7} "
            f"{('yes' if r['correct'] else 'NO'):>7} {sp:>8} {pub:>9}")
        if not r["correct"] and r.get("error"):
            msg = str(r["error"]).strip().splitlines()[0][:150]
            lines.append(f"{'':<16}   failed at {r.get('stage')}: {msg}")
    # geometric means of the speedups per baseline, over the shapes where both exist
    geo = []
    for b in dict.fromkeys(r["baseline"] for r in rows):
        pairs = [(r["speedup"], r["published_speedup"]) for r in rows
                 if r["baseline"] == b and r["speedup"]]
        if not pairs or b == "swlib":
            continue
        g = math.exp(sum(math.log(x) for x, _ in pairs) / len(pairs))
        text = f"{b} {g:.2f}x"
        pub = [p for _, p in pairs if p]
        if len(pub) == len(pairs):
            text += f" (published {math.exp(sum(math.log(p) for p in pub) / len(pub)):.2f}x)"
        geo.append(text)
    if geo:
        lines.append("")
        lines.append("geometric-mean speedup over swlib: " + "; ".join(geo))
    lines.append("published = " + PUBLISHED_SOURCE + "; every other number was simulated in this run")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on an argparse subparsers object (handler in ``func``)."""
    p = subparsers.add_parser(
        "bench", help="simulate the four baselines on the ResNet-50 GEMMs",
        description="Cycles, utilization, correctness and speedup over the Gemmini software library "
                    "of the four baselines, beside the published FireSim speedups.")
    p.add_argument("--shapes", default=None,
                   help="comma-separated MxNxK shapes (default: the six ResNet-50 GEMMs)")
    p.add_argument("--baselines", default=",".join(BASELINES),
                   help=f"comma-separated subset of {','.join(BASELINES)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default: min(2, CPUs))")
    p.add_argument("--json", action="store_true", help='print {"rows": [...]} as JSON')
    p.add_argument("--quiet", action="store_true", help="no per-cell progress lines on stderr")
    p.set_defaults(func=run_bench, handler=run_bench)
    return p


def run_bench(args: argparse.Namespace) -> int:
    """The ``bench`` subcommand: returns the exit status (2 on bad arguments)."""
    try:
        shapes = parse_shapes(args.shapes) if args.shapes else list(SHAPES)
        baselines = [b.strip() for b in str(args.baselines).split(",") if b.strip()]
        unknown = [b for b in baselines if b not in BASELINES]
        if unknown or not baselines:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {', '.join(BASELINES)}")
    except ValueError as e:
        print(f"autocomp-exo bench: error: {e}", file=sys.stderr)
        return 2

    def progress(cell: dict) -> None:  # to stderr, so --json output stays clean
        if not getattr(args, "quiet", False):
            print(f"  {cell['M']}x{cell['N']}x{cell['K']} {cell['baseline']}: {cell['measurement'].summary()}",
                  file=sys.stderr, flush=True)

    rows = bench(shapes, baselines, seed=args.seed, jobs=max(1, int(args.jobs)), progress=progress)
    if args.json:
        print(json.dumps({"rows": rows, "published_source": PUBLISHED_SOURCE}, indent=1))
    else:
        print(format_table(rows))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m autocomp_exo.bench`` (same options as ``autocomp-exo bench``)."""
    parser = argparse.ArgumentParser(prog="autocomp-exo")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return run_bench(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
