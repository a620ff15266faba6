"""A picture of a search: PNG plots and a one-page HTML report of a run directory.

::

    autocomp-exo report RUN_DIR [--out DIR]        # default DIR: RUN_DIR/report
    autocomp-exo optimize gemm 512 512 512 --run-dir runs/512 --report

    from autocomp_exo.report import write_report
    rep = write_report("runs/512")                 # {"files": {...}, "series": {...}, ...}

Everything is drawn from the run directory (`autocomp_exo.runs`):
``settings.json``, ``candidates.jsonl`` and ``best.json``. The files written:

- ``best_cycles.png``: the best correct cycles after each evaluated sample
  (samples in generation order, i.e. by candidate id; sample 0 is the start),
  with the four baselines (``swlib``, ``exo-unopt``, ``exo-opt``, ``fsm``,
  simulated by this command with `bench.measure_baseline` and kept in
  ``baselines.json``) and the ideal (MACs / DIM^2, every PE busy every
  cycle) as horizontal lines; a baseline that does not apply to the shape
  (``exo-opt`` has schedules for the six ResNet-50 GEMMs only) is left out
  and named in the HTML.
- ``candidates_per_iteration.png``: per iteration, the children that were
  accepted (correct and faster than their parent), rejected (correct, not
  faster) and failed (any failing stage, including proposals refused before
  evaluation).
- ``best_units.png``: the best candidate's per-unit busy cycles and stall
  cycles by cause (the simulator's ``units`` figures).
- ``lineage.png``: every accepted child against its parent, coloured by the
  menu option it came from, the best candidate's chain drawn bold.
- ``best_cycles.csv``: the plotted best-cycles series, as plain numbers.
- ``index.html``: one page with the summary, the four pictures, the best
  schedule's steps and its Gemmini C (regenerated from the schedule by Exo;
  the run stores the schedule, not the C).

Plots need matplotlib (``pip install 'autocomp_exo[plots]'``); it is drawn
with the Agg canvas, never through pyplot's global state.
"""
from __future__ import annotations

import csv
import html
import json
import os
from pathlib import Path
from typing import Any, Optional

__all__ = ["load_run", "evaluated", "best_series", "iteration_counts", "lineage", "measure_baselines",
           "write_report", "add_report_parser", "run_report", "PNGS"]

#: the pictures `write_report` draws (name -> what it shows)
PNGS = {
    "best_cycles": "best cycles against samples, with the baselines and the ideal",
    "candidates_per_iteration": "accepted / rejected / failed candidates per iteration",
    "best_units": "the best candidate's per-unit busy and stall cycles",
    "lineage": "the beam's lineage: which menu option each improvement came from",
}

BASELINE_NAMES = ("swlib", "exo-unopt", "exo-opt", "fsm")

# keys of a unit's figures that are not stall causes
_UNIT_TOTALS = ("busy", "idle", "commands")
# parts of the CPU's busy cycles (not stalls)
_BUSY_PARTS = {"cpu": ("rocc", "scalar")}


# --------------------------------------------------------------------------- #
# Reading a run
# --------------------------------------------------------------------------- #


def load_run(run_dir: Any) -> dict:
    """``{"path", "settings", "records", "best"}`` of a run directory (records in file order)."""
    path = Path(run_dir)
    cand = path / "candidates.jsonl"
    if not cand.is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no candidates.jsonl)")
    records = []
    for line in cand.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            break  # a truncated last line (a killed run)
        if isinstance(rec, dict) and "id" in rec:
            records.append(rec)
    settings = json.loads((path / "settings.json").read_text()) if (path / "settings.json").is_file() else {}
    best = json.loads((path / "best.json").read_text()) if (path / "best.json").is_file() else None
    return {"path": path, "settings": settings, "records": records, "best": best}


def _ok(rec: dict) -> bool:
    m = rec.get("measurement") or {}
    return bool(m.get("ok")) and m.get("cycles") is not None


def _cycles(rec: dict) -> Optional[int]:
    return (rec.get("measurement") or {}).get("cycles") if _ok(rec) else None


def _refused(rec: dict) -> bool:
    return str(rec.get("key", "")).startswith("rejected:")


def _by_id(records: list) -> dict:
    """The last record of each id (a resumed run may repeat none, but be safe)."""
    return {int(r["id"]): r for r in records}


def evaluated(records: list) -> list:
    """The evaluated candidates in generation order (by id): the start (no
    parent) first, then every evaluated child; proposals refused before
    evaluation are not samples."""
    out = [r for r in _by_id(records).values() if not _refused(r)]
    return sorted(out, key=lambda r: (r.get("parent") is not None, int(r["id"])))


def best_series(records: list) -> tuple[list, list]:
    """(samples, best correct cycles so far): sample 0 is the start, sample i
    the i-th evaluated child by id."""
    xs, ys = [], []
    best = None
    for i, r in enumerate(evaluated(records)):
        c = _cycles(r)
        if c is not None and (best is None or c < best):
            best = c
        xs.append(i)
        ys.append(best)
    return xs, ys


def iteration_counts(records: list) -> dict:
    """``{iteration: {"accepted": n, "rejected": n, "failed": n}}`` over the children."""
    by_id = _by_id(records)
    out: dict[int, dict] = {}
    for r in by_id.values():
        if r.get("parent") is None:
            continue
        it = int(r.get("iteration") or 0)
        row = out.setdefault(it, {"accepted": 0, "rejected": 0, "failed": 0})
        c = _cycles(r)
        parent = by_id.get(int(r["parent"]))
        pc = _cycles(parent) if parent else None
        if c is None:
            row["failed"] += 1
        elif pc is not None and c < pc:
            row["accepted"] += 1
        else:
            row["rejected"] += 1
    return dict(sorted(out.items()))


def _menu_of(rec: dict) -> str:
    """The menu option a child came from (its plan's), "start" for the start."""
    if rec.get("parent") is None:
        return "start"
    menu = rec.get("menu") or []
    plan = rec.get("plan") or {}
    opt = plan.get("option") or plan.get("menu") or (menu[-1] if menu else None)
    return str(opt or "?")


def lineage(records: list, cid: Optional[int]) -> list:
    """The chain of records from the start to candidate ``cid``."""
    by_id = _by_id(records)
    chain = []
    seen = set()
    while cid is not None and cid in by_id and cid not in seen:
        seen.add(cid)
        chain.append(by_id[cid])
        p = by_id[cid].get("parent")
        cid = int(p) if p is not None else None
    return chain[::-1]


def _best_record(run: dict) -> Optional[dict]:
    ev = [r for r in evaluated(run["records"]) if _ok(r)]
    if not ev:
        return None
    return min(ev, key=lambda r: (_cycles(r), int(r["id"])))


# --------------------------------------------------------------------------- #
# Baselines and C (simulated / compiled here)
# --------------------------------------------------------------------------- #


def _workload(settings: dict) -> Any:
    from .workloads import GemmWorkload

    sig = settings.get("workload") or {}
    if hasattr(GemmWorkload, "from_signature"):
        return GemmWorkload.from_signature(sig)
    return GemmWorkload(int(sig["M"]), int(sig["N"]), int(sig["K"]), bool(sig.get("relu", False)))


def _config(settings: dict) -> Any:
    if not settings.get("config"):
        return None
    from gemmini_isa import GemminiConfig

    return GemminiConfig(**settings["config"])


def measure_baselines(settings: dict, cache: Optional[Path] = None) -> dict:
    """``{name: cycles or None, ...}`` and ``{"errors": {name: why}}`` for the four
    baselines of the run's workload, simulated now (cached in ``cache``)."""
    key = {"workload": settings.get("workload"), "config": settings.get("config")}
    if cache is not None and cache.is_file():
        try:
            old = json.loads(cache.read_text())
            if old.get("key") == key:
                return old
        except ValueError:
            pass
    from .bench import measure_baseline

    out: dict[str, Any] = {"key": key, "cycles": {}, "errors": {}, "source": "bench.measure_baseline"}
    try:
        w = _workload(settings)
        config = _config(settings)
    except Exception as e:
        out["errors"] = {b: f"{type(e).__name__}: {e}" for b in BASELINE_NAMES}
        return out
    for b in BASELINE_NAMES:
        m = measure_baseline(b, w.M, w.N, w.K, config=config)
        if m.ok:
            out["cycles"][b] = int(m.cycles)
        else:
            out["errors"][b] = f"{m.stage}: {(m.error or '').strip().splitlines()[0] if m.error else ''}"
    if cache is not None:
        cache.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return out


def _ideal_cycles(settings: dict) -> Optional[float]:
    sig = settings.get("workload") or {}
    try:
        macs = int(sig["M"]) * int(sig["N"]) * int(sig["K"])
    except (KeyError, TypeError, ValueError):
        return None
    dim = int((settings.get("config") or {}).get("dim") or 16)
    return macs / (dim * dim)


def _c_code(settings: dict, schedule: Any) -> tuple[Optional[str], str]:
    """(C, note): the Gemmini C of ``schedule`` on the run's workload, by Exo."""
    start = str(settings.get("start") or "")
    if start.startswith("base-"):
        return None, "the run started from a mapped Exo proc, which the run directory does not store"
    try:
        from .exo_compile import to_c
        from .schedule import Schedule

        w = _workload(settings)
        return to_c(Schedule.from_json(schedule).apply(w.proc))[0], ""
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"


# --------------------------------------------------------------------------- #
# Plots
# --------------------------------------------------------------------------- #


def _figure(w: float = 7.5, h: float = 4.2):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("the report's plots need matplotlib: pip install 'autocomp_exo[plots]' "
                          "(or pip install matplotlib)") from e
    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


_BASE_STYLE = {"swlib": ("tab:gray", ":"), "exo-unopt": ("tab:orange", "--"), "exo-opt": ("tab:green", "--"),
               "fsm": ("tab:purple", "-."), "ideal": ("black", ":")}


def plot_best_cycles(run: dict, baselines: dict, path: Path) -> dict:
    xs, ys = best_series(run["records"])
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    line = None
    if pts:
        line, = ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="tab:blue", lw=2,
                        label="best found", marker=".", ms=3)
    for name, c in (baselines.get("cycles") or {}).items():
        color, ls = _BASE_STYLE.get(name, ("gray", "--"))
        ax.axhline(c, color=color, ls=ls, lw=1.2, label=f"{name} ({c:,})")
    ideal = _ideal_cycles(run["settings"])
    if ideal:
        ax.axhline(ideal, color="black", ls=":", lw=1, label=f"ideal ({ideal:,.0f})")
    ax.set_xlabel("samples (evaluated candidates)")
    ax.set_ylabel("cycles")
    _axes_format(ax)
    ax.set_title(f"{_name(run)}: best cycles against samples")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plotted = {"samples": [float(v) for v in line.get_xdata()], "cycles": [float(v) for v in line.get_ydata()]} \
        if line is not None else {"samples": [], "cycles": []}
    return plotted


def plot_iterations(run: dict, path: Path) -> dict:
    counts = iteration_counts(run["records"])
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    its = list(counts)
    bottom = [0] * len(its)
    for kind, color in (("accepted", "tab:green"), ("rejected", "tab:gray"), ("failed", "tab:red")):
        vals = [counts[i][kind] for i in its]
        ax.bar(its, vals, bottom=bottom, color=color, label=kind)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("iteration")
    ax.set_ylabel("candidates")
    ax.set_title(f"{_name(run)}: candidates per iteration")
    if its:
        ax.set_xticks(its)
        ax.set_xlim(its[0] - 1, its[-1] + 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return counts


def plot_units(rec: Optional[dict], run: dict, path: Path) -> dict:
    m = (rec or {}).get("measurement") or {}
    units = m.get("units") or {}
    fig = _figure(7.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    names = list(units)
    data: dict[str, dict] = {}
    palette = ["tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    causes: list[str] = []
    for u in names:
        f = units[u]
        busy = {k: f.get(k, 0) for k in _BUSY_PARTS.get(u, ())} or {"busy": f.get("busy", 0)}
        stalls = {k: v for k, v in f.items() if k not in _UNIT_TOTALS and k not in _BUSY_PARTS.get(u, ())
                  and isinstance(v, (int, float))}
        other = max(0, f.get("idle", 0) - sum(stalls.values()))
        data[u] = {"busy": busy, "stalls": stalls, "idle (other)": other}
        for k in stalls:
            if k not in causes:
                causes.append(k)
    colors = {c: palette[i % len(palette)] for i, c in enumerate(causes)}
    labelled = set()
    for y, u in enumerate(names):
        left = 0
        segs = [(f"busy: {k}" if k != "busy" else "busy", v, "tab:blue" if i == 0 else "tab:cyan")
                for i, (k, v) in enumerate(data[u]["busy"].items())]
        segs += [(f"stall: {k}", v, colors[k]) for k, v in data[u]["stalls"].items()]
        segs.append(("idle (other)", data[u]["idle (other)"], "#dddddd"))
        for label, v, color in segs:
            if not v:
                continue
            ax.barh(y, v, left=left, color=color, label=None if label in labelled else label)
            labelled.add(label)
            left += v
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("cycles")
    _axes_format(ax, x=True)
    cyc = m.get("cycles")
    ax.set_title(f"best candidate #{(rec or {}).get('id', '-')}: {cyc:,} cycles, per unit" if cyc else
                 "best candidate: no measurement")
    if labelled:
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    return data


def plot_lineage(run: dict, best: Optional[dict], path: Path) -> dict:
    by_id = _by_id(run["records"])
    acc = []
    for r in by_id.values():
        if r.get("parent") is None or _cycles(r) is None:
            continue
        p = by_id.get(int(r["parent"]))
        if p is not None and _cycles(p) is not None and _cycles(r) < _cycles(p):
            acc.append((p, r))
    chain = lineage(run["records"], int(best["id"]) if best else None)
    chain_ids = {int(r["id"]) for r in chain}
    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    options = sorted({_menu_of(r) for _, r in acc})
    cmap = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
            "tab:gray", "tab:olive", "tab:cyan"]
    color = {o: cmap[i % len(cmap)] for i, o in enumerate(options)}
    labelled = set()
    for p, r in acc:
        o = _menu_of(r)
        bold = int(r["id"]) in chain_ids and int(p["id"]) in chain_ids
        ax.plot([p.get("iteration") or 0, r.get("iteration") or 0], [_cycles(p), _cycles(r)],
                color=color[o], lw=3 if bold else 1, alpha=1 if bold else 0.5, zorder=3 if bold else 2)
        ax.scatter([r.get("iteration") or 0], [_cycles(r)], color=color[o], s=30 if bold else 12, zorder=4,
                   label=None if o in labelled else o)
        labelled.add(o)
    if chain:
        ax.scatter([chain[0].get("iteration") or 0], [_cycles(chain[0])], color="black", marker="s", zorder=5,
                   label="start")
        for r in chain[1:]:
            ax.annotate(f"#{r['id']} {_menu_of(r)}", (r.get("iteration") or 0, _cycles(r)), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cycles")
    _axes_format(ax)
    ax.set_title(f"{_name(run)}: accepted children by menu option (bold: the best's chain)", fontsize=10)
    ax.grid(True, alpha=0.3)
    if labelled or chain:
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    return {"chain": [(int(r["id"]), _menu_of(r), _cycles(r)) for r in chain], "accepted": len(acc)}


def _axes_format(ax, x: bool = False) -> None:
    """Integer ticks; cycles with thousands separators."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    cyc = FuncFormatter(lambda v, _: f"{v:,.0f}")
    if x:
        ax.xaxis.set_major_formatter(cyc)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(cyc)


def _name(run: dict) -> str:
    sig = run["settings"].get("workload") or {}
    if {"M", "N", "K"} <= set(sig):
        return f"{sig.get('kind', 'gemm')} {sig['M']}x{sig['N']}x{sig['K']}"
    return str(run["path"].name)


# --------------------------------------------------------------------------- #
# The report
# --------------------------------------------------------------------------- #


def write_report(run_dir: Any, out: Any = None, *, baselines: bool = True, c_code: bool = True) -> dict:
    """Write the PNGs, ``best_cycles.csv`` and ``index.html`` of a run (see the module doc).

    Returns ``{"out", "files": {name: path}, "series": {"samples", "cycles"}, "counts", "lineage",
    "baselines"}`` where ``series`` is the best-cycles data as plotted."""
    run = load_run(run_dir)
    out = Path(out) if out is not None else run["path"] / "report"
    out.mkdir(parents=True, exist_ok=True)
    base = measure_baselines(run["settings"], out / "baselines.json") if baselines else {"cycles": {}, "errors": {}}
    best = _best_record(run)
    files = {k: out / f"{k}.png" for k in PNGS}
    series = plot_best_cycles(run, base, files["best_cycles"])
    counts = plot_iterations(run, files["candidates_per_iteration"])
    units = plot_units(best, run, files["best_units"])
    lin = plot_lineage(run, best, files["lineage"])
    files["csv"] = out / "best_cycles.csv"
    with open(files["csv"], "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["sample", "best_cycles"])
        for x, y in zip(series["samples"], series["cycles"]):
            wr.writerow([int(x), int(y)])
    c, note = (_c_code(run["settings"], best["schedule"]) if (best and c_code) else (None, "not generated"))
    files["html"] = out / "index.html"
    files["html"].write_text(_html(run, best, base, counts, lin, c, note, files))
    return {"out": out, "files": files, "series": series, "counts": counts, "lineage": lin, "baselines": base,
            "units": units}


def _html(run, best, base, counts, lin, c, note, files) -> str:
    e = html.escape
    s = run["settings"]
    ev = evaluated(run["records"])
    start = ev[0] if ev else None
    sc, bc = (_cycles(start) if start else None), (_cycles(best) if best else None)
    m = (best or {}).get("measurement") or {}
    rows = [
        ("workload", _name(run)),
        ("agent", s.get("agent", "-")),
        ("start", s.get("start", "-")),
        ("settings", ", ".join(f"{k}={s.get(k)}" for k in ("beam", "plans", "impls", "iterations", "dropout",
                                                          "budget", "seed") if k in s)),
        ("samples evaluated", str(max(0, len(ev) - 1))),
        ("start cycles", f"{sc:,}" if sc else "-"),
        ("best cycles", f"{bc:,} (candidate #{best['id']}, iteration {best.get('iteration')})" if bc else "-"),
        ("speedup over the start", f"{sc / bc:.2f}x" if sc and bc else "-"),
        ("utilization", f"{100 * m['utilization']:.1f}%" if m.get("utilization") is not None else "-"),
    ]
    for b in BASELINE_NAMES:
        cyc = (base.get("cycles") or {}).get(b)
        why = (base.get("errors") or {}).get(b)
        if cyc:
            rows.append((f"baseline {b}", f"{cyc:,} cycles" + (f" (the best's speedup over it: {cyc / bc:.2f}x)"
                                                              if bc else "")))
        elif why:
            rows.append((f"baseline {b}", f"not plotted: {why}"))
    now = (base.get("cycles") or {}).get(s.get("start"))
    if now and sc and now != sc:   # the start measured again by the report, under today's timing model
        rows.append(("note", f"the start ({s.get('start')}) simulates to {now:,} cycles now and took {sc:,} in "
                             f"the run: the simulator changed since, so the baselines do not compare exactly"))
    table = "\n".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    imgs = "\n".join(f'<figure><a href="{e(files[k].name)}"><img src="{e(files[k].name)}" alt="{e(v)}"></a>'
                     f"<figcaption>{e(v)}</figcaption></figure>" for k, v in PNGS.items())
    steps = []
    for i, st in enumerate((best or {}).get("schedule") or []):
        args = json.dumps(st.get("args", []))
        kw = json.dumps(st.get("kwargs", {})) if st.get("kwargs") else ""
        steps.append(f"<tr><td>{i}</td><td>{e(str(st.get('menu') or ''))}</td><td><code>{e(st.get('op', ''))}"
                     f"</code></td><td><code>{e(args)}</code> <code>{e(kw)}</code></td></tr>")
    chain = " &rarr; ".join(e(f"#{i} {o} ({cy:,})" if cy else f"#{i} {o}") for i, o, cy in lin["chain"])
    c_block = f"<pre>{e(c)}</pre>" if c else f"<p>C not available: {e(note)}</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>autocomp-exo report: {e(_name(run))}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; vertical-align: top; }}
tr:nth-child(even) {{ background: #f4f4f4; }}
.figs {{ display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }} img {{ width: 100%; }}
figure {{ margin: 0; }} figcaption {{ font-size: 85%; color: #555; }}
pre {{ background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 80%; max-height: 40em; }}
</style></head><body>
<h1>Search report: {e(_name(run))}</h1>
<p>Run directory <code>{e(str(run['path']))}</code>. Every number comes from the run's
<code>candidates.jsonl</code>, except the baselines, simulated by the report
(<code>{e(base.get('source', '-'))}</code>, kept in <code>baselines.json</code>).
Data: <a href="{e(files['csv'].name)}">{e(files['csv'].name)}</a>.</p>
<table>{table}</table>
<h2>Pictures</h2><div class="figs">{imgs}</div>
<h2>The best's lineage</h2><p>{chain or '-'}</p>
<h2>Best schedule ({len(steps)} steps)</h2>
<table><tr><th>#</th><th>menu option</th><th>op</th><th>arguments</th></tr>
{''.join(steps)}</table>
<h2>Best Gemmini C</h2>{c_block}
</body></html>
"""


# --------------------------------------------------------------------------- #
# CLI: `autocomp-exo report RUN_DIR [--out DIR]`
# --------------------------------------------------------------------------- #


def add_report_parser(subparsers):
    p = subparsers.add_parser("report", help="plots and a one-page HTML report of a search's run directory",
                              description="Draw a run directory: best cycles against samples with the "
                                          "baselines and the ideal, candidates per iteration, the best's "
                                          "per-unit breakdown, the lineage, and index.html (needs matplotlib: "
                                          "pip install 'autocomp_exo[plots]').")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/report)")
    p.add_argument("--no-baselines", action="store_true", help="do not simulate the four baselines")
    p.add_argument("--json", action="store_true", help="print the files written as JSON")
    p.set_defaults(func=run_report, handler=run_report)
    return p


def run_report(args) -> int:
    import sys

    try:
        rep = write_report(args.run_dir, args.out, baselines=not args.no_baselines)
    except (FileNotFoundError, ImportError) as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"out": str(rep["out"]), "files": {k: str(v) for k, v in rep["files"].items()}}))
    else:
        print(f"report written to {rep['out']}{os.sep}index.html")
    return 0
