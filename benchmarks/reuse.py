"""Schedule reuse: search a target GEMM with and without a recorded schedule of a similar shape.

    python benchmarks/reuse.py                                  # all four pairs, default budgets
    python benchmarks/reuse.py --pairs 1 --reuse-budget 30 --noreuse-budget 100 --workers 2

Pairs (source -> target): the paper's 1024^3 -> 512^3 and 12544x256x64 ->
12544x128x64, and two more: 128x1024x1024 -> 64x1024x1024 (two shared
dimensions) and 256^3 -> 512^3 (same aspect ratio).

For each pair:

- the source record is the best record for the source shape in ``--library``
  (default: the shipped schedules/); when there is none, a search with
  ``--source-budget`` samples is run on the source shape and its winner is
  added to the library (provenance: search);
- **without reuse**: `optimize(target)` from Exo's standard mapping with
  ``--noreuse-budget`` samples (default 300);
- **with reuse**: `transfer(source record, target)` with ``--reuse-budget``
  samples (default 100): adapted replay, guided phase, then the search.

"best after n" is the fewest cycles among the first n evaluated candidates,
in the order they finished (a candidate is one sample; the baseline is not).
Speedups are over Exo's standard mapping of the target. The target of the
issue: with reuse, within 30 samples, >= 95% of the speedup the search
without reuse reaches in 300. Results go to ``--out`` (JSON) as they finish.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAIRS = [
    ((1024, 1024, 1024), (512, 512, 512)),
    ((12544, 256, 64), (12544, 128, 64)),
    ((128, 1024, 1024), (64, 1024, 1024)),
    ((256, 256, 256), (512, 512, 512)),
]


def _best_after(hist, n):
    ok = [c for c in hist[:n] if c]
    return min(ok) if ok else None


def _history_of_run(path: Path) -> list:
    """Cycles (None when failed) of a run's evaluated candidates in the order
    they finished: the baseline and refused proposals are not samples."""
    hist = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("id") == 0 or str(rec.get("key", "")).startswith("rejected:"):
            continue
        m = rec.get("measurement") or {}
        hist.append(m.get("cycles") if m.get("ok") else None)
    return hist


def _name(s):
    return "x".join(map(str, s))


def run_pair(i, src, dst, a, lib, out):
    from autocomp_exo.library import record_from_result
    from autocomp_exo.optimize import optimize
    from autocomp_exo.transfer import transfer
    from autocomp_exo.workloads import GemmWorkload

    ws, wt = GemmWorkload(*src), GemmWorkload(*dst)
    row = {"pair": i, "source": _name(src), "target": _name(dst)}
    rec = lib.best(ws)
    if rec is None:   # a record of the same shape made for another hardware configuration (re-measured below)
        from autocomp_exo.transfer import similar_records

        rec = next(iter(similar_records(lib, ws, include_same=True, limit=1)), None)
        rec = rec if rec is not None and rec.workload == ws.signature() else None
    if rec is None and a.source == "hand":
        import sys as _sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from library_seed import hand

        hand(lib, [src])
        rec = lib.best(ws)
    if rec is None:
        t = time.time()
        r = optimize(ws, budget=a.source_budget, seed=a.seed, workers=a.workers)
        rec = record_from_result(r, agent="offline", seed=a.seed, source="search",
                                 note=f"benchmarks/reuse.py source search, budget {a.source_budget}")
        lib.add(rec)
        rec = lib.best(ws) or rec
        row["source_search_seconds"] = round(time.time() - t, 1)
    row["source_record"] = {"cycles": rec.cycles, "speedup": rec.speedup, "source": rec.source,
                            "menu": rec.menu}
    print(f"[pair {i}] source {rec.summary()}", flush=True)

    base = None
    if a.noreuse_budget > 0:
        hist = []

        def prog(ev):
            if ev.get("event") == "candidate":
                hist.append(ev.get("cycles") if ev.get("ok") else None)
                if len(hist) % 10 == 0:
                    print(f"[pair {i}] no reuse: {len(hist)} samples, best {_best_after(hist, len(hist))}", flush=True)

        t = time.time()
        run_dir = None
        if a.run_root:   # pairs with the same target share (and resume) one run
            run_dir = Path(a.run_root) / f"noreuse_{_name(dst)}_s{a.seed}_b{a.noreuse_budget}"
        r0 = optimize(wt, budget=a.noreuse_budget, seed=a.seed, workers=a.workers, progress=prog,
                      run_dir=str(run_dir) if run_dir else None)
        if run_dir is not None:   # finished order from the run file (resumed candidates emit no event)
            hist = _history_of_run(run_dir / "candidates.jsonl")
        base = r0.baseline_cycles
        row["noreuse"] = {"budget": a.noreuse_budget, "samples": len(hist), "seconds": round(time.time() - t, 1),
                          "baseline_cycles": base, "history": hist,
                          "best": {n: _best_after(hist, n) for n in (30, 100, 300)}}
        print(f"[pair {i}] no reuse: {r0.summary()} ({row['noreuse']['seconds']} s)", flush=True)
        if a.save_records:
            wrote = lib.add(record_from_result(r0, agent="offline", seed=a.seed, source="search",
                                               note=f"benchmarks/reuse.py pair {i}, no reuse"))
            print(f"[pair {i}] no-reuse winner {'added to' if wrote else 'not faster than the record in'} "
                  f"{lib.path}", flush=True)
        out(row)
    if a.reuse_budget > 0:
        t = time.time()
        n = [0]

        def prog1(ev):
            if ev.get("event") == "candidate":
                n[0] += 1
                if n[0] % 10 == 0 or ev.get("phase") == 1:
                    print(f"[pair {i}] reuse: sample {n[0]} (phase {ev.get('phase')}): "
                          f"{ev.get('cycles') if ev.get('ok') else 'failed'}", flush=True)

        r1 = transfer(rec, wt, budget=a.reuse_budget, seed=a.seed, workers=a.workers, baseline_cycles=base,
                      progress=prog1)
        base = base or r1.baseline_cycles
        row["reuse"] = {"budget": a.reuse_budget, "samples": r1.samples_used, "seconds": round(time.time() - t, 1),
                        "baseline_cycles": r1.baseline_cycles, "history": r1.history, "phases": r1.phases,
                        "notes": r1.notes, "best": {n: r1.best_after(n) for n in (1, 2, 30, 100)}}
        print(f"[pair {i}] reuse: {r1.summary()} ({row['reuse']['seconds']} s)", flush=True)
        if a.save_records:
            wrote = lib.add(record_from_result(r1, agent="offline", seed=a.seed,
                                               source=f"transfer from {rec.name} ({rec.source})",
                                               note=f"benchmarks/reuse.py pair {i}, with reuse"))
            print(f"[pair {i}] reuse winner {'added to' if wrote else 'not faster than the record in'} "
                  f"{lib.path}", flush=True)
    row["baseline_cycles"] = base
    out(row)
    return row


def table(rows):
    def sp(base, c):
        return f"{base / c:.2f}x" if base and c else "-"

    lines = ["| pair | no reuse @30 | @100 | @300 | reuse @30 | @100 | reuse@30 / no-reuse best | target met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        b = r.get("baseline_cycles")
        nr = (r.get("noreuse") or {}).get("best", {})
        ru = (r.get("reuse") or {}).get("best", {})
        nr_s = {n: (b / nr[n] if nr.get(n) and b else None) for n in nr}
        ru_s = {n: (b / ru[n] if ru.get(n) and b else None) for n in ru}
        ref_n = max([n for n in nr_s if nr_s[n]] or [0])
        ratio = ru_s.get(30) / nr_s[ref_n] if ref_n and ru_s.get(30) else None
        budget_nr = (r.get("noreuse") or {}).get("samples", 0)
        met = "-" if ratio is None else ("yes" if ratio >= 0.95 else "no")
        if ratio is not None and budget_nr < 300:
            met += f" (vs {budget_nr} samples, not 300)"
        lines.append(f"| {r['source']} -> {r['target']} | {sp(b, nr.get(30))} | {sp(b, nr.get(100))} | "
                     f"{sp(b, nr.get(300))} | {sp(b, ru.get(30))} | {sp(b, ru.get(100))} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} | {met} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="1,2,3,4", help="which pairs (1-based)")
    ap.add_argument("--reuse-budget", type=int, default=100)
    ap.add_argument("--noreuse-budget", type=int, default=300)
    ap.add_argument("--source-budget", type=int, default=60)
    ap.add_argument("--source", choices=("search", "hand"), default="search",
                    help="when the library has no record for the source shape: run a search (default) or "
                         "take the hand-optimized exo_opt schedule (recorded as hand-written)")
    ap.add_argument("--library", default=str(Path(__file__).resolve().parent.parent / "schedules"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default="reuse_results.json")
    ap.add_argument("--run-root", default=None,
                    help="keep the no-reuse searches as run directories here: resumable, and shared by the "
                         "pairs with the same target (1 and 4 both target 512^3)")
    ap.add_argument("--no-save-records", dest="save_records", action="store_false",
                    help="do not add the winners to --library (by default they are, if faster)")
    a = ap.parse_args(argv)
    from autocomp_exo.library import Library

    lib = Library(a.library)
    rows = []
    outp = Path(a.out)
    done = {}
    if outp.exists():
        try:
            done = {r["pair"]: r for r in json.loads(outp.read_text())}
        except Exception:
            done = {}

    def save(row):
        cur = {**done, **{r["pair"]: r for r in rows}, row["pair"]: row}
        outp.write_text(json.dumps([cur[k] for k in sorted(cur)], indent=1))

    for i in [int(x) for x in a.pairs.split(",")]:
        src, dst = PAIRS[i - 1]
        rows.append(run_pair(i, src, dst, a, lib, save))
        save(rows[-1])
    allrows = {**done, **{r["pair"]: r for r in rows}}
    print(table([allrows[k] for k in sorted(allrows)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
