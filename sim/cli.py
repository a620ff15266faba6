"""`autocomp-exo sim FILE.c --entry NAME`: run a Gemmini C file and report.

Array parameters declared with static sizes are filled with seeded random
int8/int32 values unless given; pointer parameters need `--arg NAME=FILE.npy`
(or a literal for a one-element pointer such as Exo's `const float* scale`);
scalars take literals; the Exo context struct needs nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import ctypes_model as ct
from .errors import ArgumentError, SimError
from .run import Program, RunResult, compile_program


def add_sim_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sim", help="simulate a Gemmini C file and report cycles and per-unit figures",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="the C file (Exo's output or the short dialect)")
    p.add_argument("--entry", required=True, help="the function to run")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="bind a parameter: NAME=FILE.npy, or a literal for scalars and one-element pointers "
                        "(repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random fill of unbound arrays (default 0)")
    p.add_argument("--save", metavar="DIR", help="write every array argument after the run as DIR/NAME.npy")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--macs", type=int, default=None,
                   help="the workload's multiply-accumulates, for utilization (default: what the array did)")
    p.add_argument("--no-timing", action="store_true", help="functional run only (faster, cycles = 0)")
    p.add_argument("--max-instructions", type=int, default=50_000_000,
                   help="stop with an error after this many Gemmini instructions (default 50M)")
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="stop with an error after this many seconds of wall-clock time (default 120; 0: none)")
    p.add_argument("--max-source-bytes", type=int, default=None,
                   help="refuse C files larger than this (default 8 MiB)")
    p.set_defaults(handler=main_sim)
    return p


def _literal(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(low, 0)
    except ValueError:
        pass
    try:
        return float(low.rstrip("f"))
    except ValueError:
        raise ArgumentError(f"'{text}' is neither a number nor a .npy file") from None


def build_args(prog: Program, entry: str, specs: list[str], seed: int) -> dict[str, Any]:
    """Turn --arg specs into run() arguments, filling static arrays at random."""
    params = dict(prog.entry_params(entry))
    given: dict[str, str] = {}
    for spec in specs:
        if "=" not in spec:
            raise ArgumentError(f"--arg {spec!r}: expected NAME=VALUE")
        name, value = spec.split("=", 1)
        if name not in params:
            raise ArgumentError(f"--arg {name}: {entry} has no parameter '{name}' "
                                f"(parameters: {', '.join(params)})")
        given[name] = value
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, t in params.items():
        if t.kind == "ctx":
            continue
        if name in given:
            value = given[name]
            if value.endswith(".npy"):
                try:
                    arr = np.load(value, allow_pickle=False)
                except (OSError, ValueError) as e:
                    raise ArgumentError(f"--arg {name}: cannot read {value}: {e}") from None
                out[name] = _fit(name, t, arr)
            else:
                lit = _literal(value)
                out[name] = lit
            continue
        if t.kind == "array":
            elem = t.elem
            while elem.kind == "array":
                elem = elem.elem
            out[name] = _random(rng, elem, tuple(t.dims))
        else:
            what = "a .npy file" if t.kind == "ptr" else "a literal"
            raise ArgumentError(f"parameter '{name}' ({t}) needs --arg {name}=... ({what})")
    return out


def _fit(name: str, t: ct.CType, arr: np.ndarray) -> np.ndarray:
    elem = t.elem
    while elem is not None and elem.kind == "array":
        elem = elem.elem
    if t.kind == "array":
        want = tuple(t.dims)
        if arr.size != int(np.prod(want)):
            raise ArgumentError(f"--arg {name}: {arr.size} elements, but {t} needs {int(np.prod(want))}")
    from .run import _elem_dtype
    dtype = _elem_dtype(elem) if elem is not None else None
    if dtype is not None and arr.dtype != dtype:
        if np.can_cast(arr.dtype, dtype, casting="same_kind") and np.array_equal(arr.astype(dtype), arr):
            arr = arr.astype(dtype)
        else:
            raise ArgumentError(f"--arg {name}: dtype {arr.dtype.name} does not fit {t}")
    return np.ascontiguousarray(arr)


def _random(rng: np.random.Generator, elem: ct.CType, shape: tuple[int, ...]) -> np.ndarray:
    if elem.kind == "float":
        return rng.standard_normal(shape).astype(np.float32 if elem.bits == 32 else np.float64)
    if elem.is_bool:
        return rng.integers(0, 2, shape).astype(np.bool_)
    lo, hi = (-128, 128) if elem.bits >= 8 and elem.signed else (0, 256)
    from .run import _elem_dtype
    return rng.integers(lo, hi, shape).astype(_elem_dtype(elem))


def format_report(path: str, entry: str, r: RunResult, macs: Optional[int] = None) -> str:
    lines = [f"{path}: {entry}", f"  cycles            {r.cycles:,}"]
    m = r.macs if macs is None else macs
    if m and r.cycles:
        lines.append(f"  utilization       {r.utilization(m):.1%}  ({m:,} MACs, ideal {m // (r.dim * r.dim):,} cycles)")
    ins = {k: v for k, v in sorted(r.instructions.items()) if k != "total"}
    lines.append(f"  instructions      {r.instructions.get('total', 0):,}  (" +
                 ", ".join(f"{k} {v:,}" for k, v in ins.items()) + ")")
    if r.cpu_instructions:
        lines.append(f"  cpu instructions  {r.cpu_instructions:,}  (RISC-V, estimated as gcc -O2 compiles the C; "
                     f"RoCC commands included)")
    if r.units:
        lines.append("  units             busy cycles (share of total)")
        for name, u in r.units.items():
            busy = u.get("busy", 0)
            share = busy / r.cycles if r.cycles else 0.0
            lines.append(f"    {name:<8} {busy:>14,}  {share:6.1%}")
    if r.stalls:
        lines.append("  stalls            " + ", ".join(f"{k} {v:,}" for k, v in r.stalls.items()))
    lines.append(f"  DRAM bytes        read {r.dram_bytes['read']:,}, written {r.dram_bytes['written']:,}")
    lines.append(f"  scratchpad rows   {r.sp_rows_used:,} of {r.sp_rows:,} touched")
    lines.append(f"  accumulator rows  {r.acc_rows_used:,} of {r.acc_rows:,} touched")
    return "\n".join(lines)


def main_sim(ns: argparse.Namespace) -> int:
    path = Path(ns.file)
    from .run import MAX_SOURCE_BYTES, time_limit

    limit = MAX_SOURCE_BYTES if ns.max_source_bytes is None else ns.max_source_bytes
    try:
        if ns.max_seconds is not None and ns.max_seconds < 0:
            raise ArgumentError(f"--max-seconds must be >= 0, got {ns.max_seconds}")
        try:
            size = path.stat().st_size
        except OSError as e:
            raise ArgumentError(f"cannot read {path}: {e}") from None
        if 0 < limit < size:
            from .run import InputTooLargeError

            raise InputTooLargeError(f"the C source is {size:,} bytes, more than the limit of {limit:,} "
                                     f"(--max-source-bytes)", file=str(path))
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ArgumentError(f"cannot read {path}: {e}") from None
        with time_limit(ns.max_seconds):   # parsing and compiling count too
            prog = compile_program(text, str(path), max_source_bytes=limit)
            args = build_args(prog, ns.entry, ns.arg, ns.seed)
            result = prog.run(ns.entry, args, timing=not ns.no_timing, max_instructions=ns.max_instructions)
    except SimError as e:  # one line: file:line:column: what went wrong
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"error: {path}: out of memory simulating it (try a smaller input, --max-source-bytes)",
              file=sys.stderr)
        return 2
    if ns.save:
        out = Path(ns.save)
        out.mkdir(parents=True, exist_ok=True)
        for name, arr in args.items():
            if isinstance(arr, np.ndarray):
                np.save(out / f"{name}.npy", arr)
    if ns.json:
        d = result.to_dict()
        d["file"], d["entry"] = str(path), ns.entry
        if ns.macs is not None:
            d["macs"], d["utilization"] = ns.macs, result.utilization(ns.macs)
        print(json.dumps(d))
    else:
        print(format_report(str(path), ns.entry, result, ns.macs))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Standalone entry: `python -m sim.cli FILE.c --entry NAME ...`."""
    parser = argparse.ArgumentParser(prog="sim")
    sub = parser.add_subparsers(dest="command", required=True)
    add_sim_parser(sub)
    ns = parser.parse_args(["sim"] + list(sys.argv[1:] if argv is None else argv))
    return ns.handler(ns)


if __name__ == "__main__":
    sys.exit(main())
