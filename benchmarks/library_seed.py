"""Fill the shipped schedule library (schedules/) with verified records.

    python benchmarks/library_seed.py hand                 # exo_opt for the six ResNet-50 GEMMs
    python benchmarks/library_seed.py search --budget 40 --shapes 256x256x256,1024x1024x1024
    python benchmarks/library_seed.py search --budget 200 --run-root runs/search_quality   # reuse those runs

``hand``: each hand-optimized Exo schedule (`baselines.exo_opt`) is evaluated
(replayed, simulated, checked bit-exact) and stored with provenance
``"source": "hand-written"``; they were NOT found by the search.

``search``: runs the project's search (`optimize`, offline agent) with the
given budget per shape and stores the winner with provenance
``"source": "search"`` (agent, seed, samples, date). A record is only written
when it beats the one already stored (`Library.add`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESNET = [(512, 512, 512), (12544, 256, 64), (12544, 64, 256), (3136, 512, 128), (3136, 128, 512),
          (784, 1024, 256)]
REUSE = [(32, 2048, 2048), (1024, 1024, 1024), (256, 256, 256), (6272, 256, 64), (12544, 128, 64),
         (12544, 256, 128), (128, 1024, 1024), (64, 1024, 1024), (32, 1024, 1024)]


def _shapes(text):
    if not text:
        return None
    return [tuple(int(x) for x in s.split("x")) for s in text.split(",")]


def hand(lib, shapes) -> None:
    from autocomp_exo.baselines import exo_opt, exo_unopt
    from autocomp_exo.evaluate import evaluate
    from autocomp_exo.library import Record, _now, _versions, hardware_fingerprint
    from autocomp_exo.workloads import GemmWorkload

    for M, N, K in shapes:
        w = GemmWorkload(M, N, K)
        t = time.time()
        base = evaluate(w, exo_unopt.schedule(w))
        s = exo_opt.schedule(w)
        m = evaluate(w, s, baseline_cycles=base.cycles)
        if not (base.ok and m.ok):
            print(f"{w.name}: FAILED {base.summary()} / {m.summary()}", flush=True)
            continue
        flow, bi = exo_opt.plan(w)
        rec = Record(w.signature(), hardware_fingerprint(), s, m.cycles, base.cycles, "exo-unopt", m.utilization,
                     0, {"source": "hand-written", **_versions(), "agent": None, "models": [], "seed": None,
                         "samples": None, "date": _now(),
                         "note": f"autocomp_exo.baselines.exo_opt (flow {flow}, BI {bi}): the project's "
                                 "hand-optimized Exo schedule, verified by simulation; not found by search"})
        wrote = lib.add(rec)
        print(f"{rec.summary()} ({'written' if wrote else 'kept the stored, faster record'}) "
              f"{time.time() - t:.0f}s", flush=True)


def search(lib, shapes, budget, seed, workers, a=None) -> None:
    from autocomp_exo.library import record_from_result
    from autocomp_exo.optimize import optimize
    from autocomp_exo.workloads import GemmWorkload

    for M, N, K in shapes:
        w = GemmWorkload(M, N, K)
        t = time.time()
        kw = {}
        if a is not None and a.run_root:
            # the run directories of benchmarks/search_quality.py (same naming): a finished run is
            # read back without evaluating anything again, an unfinished one resumes
            kw = dict(beam=a.beam, plans=a.plans, impls=a.impls, timeout=a.timeout,
                      run_dir=str(Path(a.run_root) / f"gemm_{M}x{N}x{K}_s{seed}_B{a.beam}N{a.plans}K{a.impls}"))
        r = optimize(w, budget=budget, seed=seed, workers=workers, **kw)
        rec = record_from_result(r, agent="offline", seed=seed, source="search",
                                 note=f"benchmarks/library_seed.py search --budget {budget}")
        wrote = lib.add(rec)
        print(f"{rec.summary()} ({'written' if wrote else 'kept the stored, faster record'}) "
              f"{time.time() - t:.0f}s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("hand", "search"))
    ap.add_argument("--library", default=str(Path(__file__).resolve().parent.parent / "schedules"))
    ap.add_argument("--shapes", default=None, help="MxNxK,... (default: the six ResNet-50 GEMMs for hand, "
                                                   "the six and the nine reuse shapes for search)")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--run-root", default=None, help="keep (and resume) the search runs under this directory, "
                                                     "named as benchmarks/search_quality.py names them")
    from autocomp_exo.search import SearchSettings

    bench = SearchSettings.defaults(preset="benchmark")   # the benchmarks' settings, in one place
    ap.add_argument("--beam", type=int, default=bench["beam"])
    ap.add_argument("--plans", type=int, default=bench["plans"])
    ap.add_argument("--impls", type=int, default=bench["impls"])
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per candidate")
    a = ap.parse_args(argv)
    from autocomp_exo.library import Library

    lib = Library(a.library)
    if a.what == "hand":
        hand(lib, _shapes(a.shapes) or RESNET)
    else:
        search(lib, _shapes(a.shapes) or RESNET + REUSE, a.budget, a.seed, a.workers, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
