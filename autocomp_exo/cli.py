"""The `autocomp-exo` command line: one subcommand per job."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from sim.cli import add_sim_parser


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
