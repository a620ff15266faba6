"""The `autocomp-exo` command line: one subcommand per job.

The parsers are built without Exo (``autocomp-exo sim`` and ``--help`` stay
fast); each search command's handler imports the search when it runs.
Defaults of the search settings come from `search.SearchSettings` (and its
presets) only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Optional

from sim.cli import add_sim_parser

from .agents.llm import LLMConfigError, add_llm_args, agent_from_args
from .bench import add_bench_parser
from .cli_workload import KINDS, USAGE
from .executors import EXECUTORS
from .library import Library, RecordError, _default_path, add_library_parser, record_from_result
from .report import add_report_parser, write_report
from .search import SearchSettings

#: the defaults (`SearchSettings`, their single home) and the presets the CLI offers
DEFAULTS = SearchSettings.defaults()
PAPER = SearchSettings.defaults(preset="paper")
DEMO = dict(M=256, N=256, K=256, **SearchSettings.defaults("budget", "beam", "plans", "impls", preset="demo"))
TRANSFER_BUDGET = SearchSettings.defaults("budget", preset="transfer")["budget"]


# --------------------------------------------------------------------------- #
# `autocomp-exo optimize gemm M N K ...` and `autocomp-exo demo`
# --------------------------------------------------------------------------- #


def _add_search_args(p, budget: int) -> None:
    p.add_argument("--budget", type=int, default=budget, help=f"evaluated candidates (default {budget})")
    p.add_argument("--beam", type=int, default=DEFAULTS["beam"], help="beam width B")
    p.add_argument("--plans", type=int, default=DEFAULTS["plans"], help="plans per beam entry N")
    p.add_argument("--impls", type=int, default=DEFAULTS["impls"], help="implementations per plan K")
    p.add_argument("--iterations", type=int, default=None, help="iterations T (default: until the budget)")
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help="menu dropout p")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per candidate")
    p.add_argument("--run-dir", default=None, help="run directory (resumes if it exists)")
    p.add_argument("--start", default="exo-unopt", choices=("exo-unopt", "exo-opt"),
                   help="schedule to start from")
    p.add_argument("--paper", action="store_true", help="the paper's settings: B={beam} N={plans} K={impls} "
                   "T={iterations}".format(**PAPER))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--library", default=None, metavar="DIR",
                   help="schedule library: start from its (re-verified) record for this shape, save the winner")
    p.add_argument("--reuse", default=None, metavar="DIR",
                   help="library of similar shapes to transfer from when there is no record for this shape")


def add_optimize_parser(subparsers):
    p = subparsers.add_parser("optimize", help="search for a fast Gemmini schedule of a GEMM or a conv",
                              description="Beam search with the offline agent from Exo's standard mapping. "
                                          "Workloads: " + "; ".join(USAGE.values()) + ".")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("dims", nargs="+", metavar="DIM", help="gemm: M N K; conv: BATCH OUT_DIM IN_CH OUT_CH or a "
                   "benchmark name")
    p.add_argument("--relu", action="store_true")
    p.add_argument("--kernel", type=int, default=3, help="conv kernel size (1 or 3; default 3)")
    p.add_argument("--stride", type=int, default=1, help="conv stride (default 1)")
    p.add_argument("--show-c", action="store_true", help="print the best C")
    p.add_argument("--show-proc", action="store_true", help="print the best Exo proc")
    _add_search_args(p, DEFAULTS["budget"])
    # ---- executor, report, JSON (issue 16: autocomp_exo/executors.py, autocomp_exo/report.py) ----
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where candidates are evaluated: local worker processes, or Ray tasks")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join (ray.init(address=ADDR), e.g. auto or ray://head:10001; "
                        "default $RAY_ADDRESS or a new local instance)")
    p.add_argument("--report", nargs="?", const=True, default=None, metavar="DIR",
                   help="write the plots and HTML report at the end (default RUN_DIR/report; needs --run-dir)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (the result) and nothing else on stdout")
    # ---- LLM agent options (--llm MODEL ..., issue 6: autocomp_exo/agents/llm.py) ----
    add_llm_args(p)
    p.set_defaults(func=run_optimize, handler=run_optimize)
    return p


def add_demo_parser(subparsers):
    p = subparsers.add_parser("demo", help="a real search that finishes in a few minutes",
                              description=f"Optimize a {DEMO['M']}x{DEMO['N']}x{DEMO['K']} GEMM from Exo's "
                                          f"standard mapping with the offline agent ({DEMO['budget']} samples).")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None)
    p.add_argument("--budget", type=int, default=DEMO["budget"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_demo, handler=run_demo)
    return p


def _table(r) -> str:
    rows = [("", "cycles", "utilization", "speedup")]
    from gemmini_isa import GemminiConfig

    base_util = GemminiConfig().ideal_cycles(r.workload.macs) / r.baseline_cycles
    rows.append(("baseline (Exo standard mapping)", f"{r.baseline_cycles:,}", f"{100 * base_util:.1f}%", "1.00x"))
    rows.append(("best found", f"{r.cycles:,}", f"{100 * r.utilization:.1f}%", f"{r.speedup:.2f}x"))
    w = [max(len(x[i]) for x in rows) for i in range(4)]
    lines = ["  ".join(x[i].ljust(w[i]) if i == 0 else x[i].rjust(w[i]) for i in range(4)) for x in rows]
    lines.insert(1, "-" * len(lines[0]))
    menu = [s.menu for s in r.schedule.steps if s.menu not in (None, "exo-unopt", "exo-opt")]
    used = list(dict.fromkeys(menu))
    lines.append(f"samples used: {r.samples_used}; menu options in the best schedule: "
                 f"{', '.join(used) if used else '-'}")
    if r.run_dir:
        lines.append(f"run directory: {r.run_dir}")
    return "\n".join(lines)


def _run(args, kind: str, dims: list, relu=False, start="exo-unopt") -> tuple:
    # deferred: the search loads Exo (seconds); `autocomp-exo sim` and the parser stay fast
    from .cli_workload import workload_from_args
    from .driver import Bar, SettingsError, one_line, result_json, validate_settings
    from .optimize import optimize
    from .workloads import WorkloadError

    try:
        w = workload_from_args(kind, [str(d) for d in dims], relu, getattr(args, "kernel", 3),
                               getattr(args, "stride", 1))
        if kind == "conv" and start != "exo-unopt":
            raise WorkloadError(f"--start {start} is not available for convs (their search starts from "
                                "Exo's unoptimized mapping, exo-unopt)")
    except WorkloadError as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    kw = dict(budget=args.budget, beam=getattr(args, "beam", DEFAULTS["beam"]),
              plans=getattr(args, "plans", DEFAULTS["plans"]), impls=getattr(args, "impls", DEFAULTS["impls"]),
              iterations=getattr(args, "iterations", None), dropout=getattr(args, "dropout", DEFAULTS["dropout"]))
    if getattr(args, "paper", False):
        kw.update({k: PAPER[k] for k in ("beam", "plans", "impls", "iterations")})
    if hasattr(args, "_demo"):
        kw.update(args._demo)
    # ---- LLM agent (issue 6): --llm MODEL replaces the offline agent ----
    agent = None
    if getattr(args, "llm", None) or getattr(args, "llm_plan", None) or getattr(args, "llm_code", None):
        try:
            agent = agent_from_args(args, run_dir=args.run_dir, iterations=kw["iterations"])
        except (LLMConfigError, ValueError) as e:
            print(f"autocomp-exo: error: {e}", file=sys.stderr)
            return 2, None
    report = getattr(args, "report", None)
    if report and not args.run_dir:
        print("autocomp-exo: error: --report needs --run-dir (the report is drawn from the run directory)",
              file=sys.stderr)
        return 2, None
    as_json = getattr(args, "json", False)
    try:
        validate_settings(workers=getattr(args, "workers", None), timeout=getattr(args, "timeout", 600.0), **kw)
    except SettingsError as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    lib_kw = {k: getattr(args, k) for k in ("library", "reuse") if getattr(args, k, None)}
    bar = Bar(kw["budget"], args.quiet)   # tqdm writes to stderr: stdout stays for the result
    try:
        r = optimize(w, seed=args.seed, workers=args.workers, run_dir=args.run_dir, **lib_kw,
                     baseline=None if start == "exo-unopt" else start,
                     timeout=getattr(args, "timeout", 600.0),
                     progress=bar if agent is None else agent.progress(bar), agent=agent,
                     executor=getattr(args, "executor", "local"), ray_address=getattr(args, "ray_address", None),
                     **kw)
    except ImportError as e:   # --executor ray without Ray installed
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2, None
    except (ValueError, RuntimeError) as e:   # SettingsMismatch, SettingsError, WorkloadError, a failed baseline
        print(f"autocomp-exo: error: {one_line(e)}", file=sys.stderr)
        return 2, None
    finally:
        bar.close()
    out = sys.stderr if as_json else sys.stdout
    if as_json:
        print(json.dumps(result_json(r), sort_keys=True))
    else:
        print(_table(r))
    if agent is not None:
        print(agent.finish(quiet=True), file=out)
    if report:
        rep = write_report(args.run_dir, None if report is True else report)
        print(f"report written to {rep['files']['html']}", file=out)
    return 0, r


def run_optimize(args) -> int:
    rc, r = _run(args, args.kind, args.dims, args.relu, args.start)
    if r is not None and args.show_proc and not args.json:
        print(r.proc)
    if r is not None and args.show_c and not args.json:   # the JSON has "c_code"
        print(r.c_code)
    return rc


def run_demo(args) -> int:
    print(f"demo: optimizing gemm {DEMO['M']}x{DEMO['N']}x{DEMO['K']} from Exo's standard Gemmini mapping "
          f"with the offline agent ({args.budget} samples)")
    args._demo = {k: DEMO[k] for k in ("beam", "plans", "impls")}
    rc, _ = _run(args, "gemm", [DEMO["M"], DEMO["N"], DEMO["K"]])
    return rc


# --------------------------------------------------------------------------- #
# `autocomp-exo transfer gemm M N K --from DIR`
# --------------------------------------------------------------------------- #


def add_transfer_parser(subparsers):
    p = subparsers.add_parser(
        "transfer", help="search for a GEMM starting from library records of similar shapes",
        description="Adapt the records of similar shapes to this one, then search from the best "
                    "(autocomp_exo.transfer); every replay runs in a worker under --timeout.")
    p.add_argument("kind", choices=("gemm",))
    p.add_argument("M", type=int)
    p.add_argument("N", type=int)
    p.add_argument("K", type=int)
    p.add_argument("--relu", action="store_true")
    p.add_argument("--from", dest="source", default=None, metavar="DIR",
                   help="library to transfer from (default: $AUTOCOMP_EXO_LIBRARY or the shipped schedules/)")
    p.add_argument("--library", default=None, metavar="DIR", help="save the winner (verified) to this library")
    p.add_argument("--budget", type=int, default=TRANSFER_BUDGET,
                   help=f"evaluated candidates over all phases (default {TRANSFER_BUDGET})")
    p.add_argument("--beam", type=int, default=DEFAULTS["beam"])
    p.add_argument("--plans", type=int, default=DEFAULTS["plans"])
    p.add_argument("--impls", type=int, default=DEFAULTS["impls"])
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per candidate or replay")
    p.add_argument("--run-dir", default=None, help="run directory (every candidate, best.json, best.c)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the result)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_transfer, handler=run_transfer)
    return p


def run_transfer(args) -> int:
    # deferred: the search loads Exo (seconds); `autocomp-exo sim` and the parser stay fast
    from .driver import Bar, SettingsError, one_line, result_json, validate_settings
    from .transfer import similar_records, transfer
    from .workloads import GemmWorkload, WorkloadError

    try:
        w = GemmWorkload(args.M, args.N, args.K, args.relu)
        validate_settings(budget=args.budget, beam=args.beam, plans=args.plans, impls=args.impls,
                          dropout=args.dropout, workers=args.workers, timeout=args.timeout)
    except (WorkloadError, SettingsError) as e:
        print(f"autocomp-exo: error: {e}", file=sys.stderr)
        return 2
    src = Library(args.source or _default_path())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Warning)
        sources = similar_records(src, w)
    if not sources:
        print(f"autocomp-exo: error: no record in {src.path} is similar to {w.name}", file=sys.stderr)
        return 2
    bar = Bar(args.budget, args.quiet or args.json)
    try:
        r = transfer(src, w, budget=args.budget, beam=args.beam, plans=args.plans, impls=args.impls,
                     dropout=args.dropout, seed=args.seed, workers=args.workers, timeout=args.timeout,
                     run_dir=args.run_dir, progress=bar)
    except (ValueError, RuntimeError) as e:
        print(f"autocomp-exo: error: {one_line(e)}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    if args.library:
        try:
            Library(args.library).add(record_from_result(r, source="transfer from " + ", ".join(
                x.name for x in r.sources), agent="offline", seed=args.seed), timeout=args.timeout)
        except RecordError as e:
            print(f"autocomp-exo: warning: not saved: {e}", file=sys.stderr)
    if args.json:
        d = result_json(r)
        d.update({"sources": [x.name for x in r.sources], "phases": r.phases, "notes": r.notes})
        print(json.dumps(d, sort_keys=True, default=str))
    else:
        print(r.summary())
        for n in r.notes:
            print(f"  note: {n}")
        if r.run_dir:
            print(f"run directory: {r.run_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocomp-exo",
        description="Optimize Exo procs for the Gemmini accelerator by search, and simulate Gemmini C "
                    "bit-exactly with a cycle-approximate timing model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_sim_parser(sub)
    add_bench_parser(sub)
    add_optimize_parser(sub)
    add_demo_parser(sub)
    add_library_parser(sub)
    add_transfer_parser(sub)
    add_report_parser(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.handler(ns) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and friends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
