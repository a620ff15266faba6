"""Re-time the shipped schedule library under the current timing model.

Each record of `schedules/` is replayed, simulated and checked bit-exact on
fresh inputs (`library.verify`, in a worker under the timeout); its cycles,
Exo's standard mapping's cycles and the hardware fingerprint are replaced by
what this model measures, and `provenance.retimed` keeps the old figures and
says which model re-timed them. The schedules themselves are not re-searched
(that is the search issue's job): a record that is no faster than Exo's
mapping under this model is dropped and listed.

    python benchmarks/retime_library.py [--dir schedules] [--jobs 2] [--dry-run]
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autocomp_exo import library as L  # noqa: E402


def retime(path: str) -> tuple[str, str, dict | None]:
    """(path, message, new record dict or None to drop)."""
    from autocomp_exo.bench import measure_baseline

    rec = L.Record.from_json(Path(path).read_text(), path)
    hw = L.hardware_fingerprint()
    probe = L.Record.from_dict({**rec.to_dict(), "hardware": hw})
    v = L.verify(probe, tolerance=float("inf"), timeout=1800.0)
    if not v.ok or v.measured is None:
        return path, f"{rec.name}: does not verify: {v.reason}", None
    base = measure_baseline("exo-unopt", rec.M, rec.N, rec.K)
    if not base.ok:
        return path, f"{rec.name}: Exo's mapping fails: {base.error}", None
    d = rec.to_dict()
    old = {"cycles": rec.cycles, "baseline_cycles": rec.baseline_cycles, "hardware": rec.hardware}
    d.update(hardware=hw, cycles=int(v.measured), baseline_cycles=int(base.cycles),
             speedup=base.cycles / v.measured, utilization=(rec.M * rec.N * rec.K / 256) / v.measured)
    d["provenance"] = {**d.get("provenance", {}),
                       "retimed": {"model": "timing v2 (sim/timing.py)", "date": L._now(), "previous": old,
                                   "note": "schedule found under timing v1, cycles measured under v2"}}
    d["verification"] = {"cycles": int(v.measured), "seeds": list(v.seeds), "date": L._now()}
    msg = (f"{rec.name}: {rec.cycles:,} -> {v.measured:,} cycles; Exo mapping {rec.baseline_cycles:,} -> "
           f"{base.cycles:,}; speedup {base.cycles / v.measured:.2f}x")
    if v.measured >= base.cycles:
        return path, msg + "  (dropped: not faster than Exo's mapping under this model)", None
    return path, msg, d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=str(ROOT / "schedules"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    files = sorted(str(p) for p in Path(args.dir).glob("*.json"))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for path, msg, d in ex.map(retime, files):
            print(msg, flush=True)
            if args.dry_run:
                continue
            p = Path(path)
            if d is None:
                p.unlink()
                continue
            new = L.Record.from_dict(d)
            (p.parent / new.filename).write_text(new.to_json())
            if (p.parent / new.filename) != p:
                p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
