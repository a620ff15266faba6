"""The `autocomp-exo` command line: one subcommand per job."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from sim.cli import add_sim_parser


def add_transfer_parser(subparsers):
    from .search import SearchSettings

    DEFAULTS = SearchSettings.defaults()

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
    p.add_argument("--budget", type=int, default=30, help="evaluated candidates over all phases (default 30)")
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
    p.set_defaults(func=_run_transfer, handler=_run_transfer)
    return p


def _run_transfer(args) -> int:
    from .transfer import run_transfer   # Exo is imported only when the command runs

    return run_transfer(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocomp-exo",
        description="Optimize Exo procs for the Gemmini accelerator by search, and simulate Gemmini C "
                    "bit-exactly with a cycle-approximate timing model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_sim_parser(sub)
    try:
        from .bench import add_bench_parser
    except ImportError:  # pragma: no cover - bench needs exo; sim must still work
        pass
    else:
        add_bench_parser(sub)
        from .optimize import add_demo_parser, add_optimize_parser; add_optimize_parser(sub); add_demo_parser(sub)
        from .library import add_library_parser; add_library_parser(sub)
        add_transfer_parser(sub)
    from .report import add_report_parser; add_report_parser(sub)
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
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
