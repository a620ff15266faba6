"""The simulator's CPU estimate against compiled RISC-V code, kernel by kernel.

For every kernel of the corpus (both C dialects: Exo baselines unoptimized and
hand-optimized at several shapes, the software library's loop, search winners
replayed from ``schedules/``, fully unrolled code, ``examples/*.c``, the
12544x256x64 anchor and its guarded variant), prints the RISC-V instructions
the gcc -O2 build really executes (``benchmarks/riscv_reference.py``), the
simulator's estimate (``RunResult.cpu_instructions``), the error, and the
static size of the compiled entry function.

    python benchmarks/cpu_fidelity.py            # the test corpus (small shapes)
    python benchmarks/cpu_fidelity.py --large    # plus large shapes and every search record
    python benchmarks/cpu_fidelity.py --only anchor --asm

``corpus()`` and ``measure()`` are what tests/test_cpu_estimate.py uses.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import riscv_reference  # noqa: E402

TOLERANCE = 0.15


@dataclass
class Kernel:
    name: str
    source: str
    entry: str
    header: Optional[str] = None    # Exo's header (the context struct), when the C comes from Exo
    dims: Optional[tuple] = None    # (M, N, K) of a GEMM: sizes the pointer arguments


def _exo(name: str, proc) -> Kernel:
    from autocomp_exo.exo_compile import to_c_and_header

    c, h, entry = to_c_and_header(proc)
    return Kernel(name, c, entry, h)


def _gemm_dims(w) -> tuple:
    return (w.M, w.N, w.K)


def exo_kernels(shapes: list, opt_shapes: list) -> list[Kernel]:
    from autocomp_exo.baselines import exo_opt, exo_unopt
    from autocomp_exo.workloads import GemmWorkload

    out = []
    for m, n, k in shapes:
        w = GemmWorkload(m, n, k)
        kern = _exo(f"exo_unopt_{m}x{n}x{k}", exo_unopt.schedule(w).apply(w.proc))
        kern.dims = (m, n, k)
        out.append(kern)
    for m, n, k in opt_shapes:
        w = GemmWorkload(m, n, k)
        kern = _exo(f"exo_opt_{m}x{n}x{k}", exo_opt.schedule(w).apply(w.proc))
        kern.dims = (m, n, k)
        out.append(kern)
    return out


def swlib_kernels(shapes: list) -> list[Kernel]:
    from autocomp_exo.baselines import swlib

    out = []
    for m, n, k in shapes:
        for arrays in ("2d", "flat"):
            out.append(Kernel(f"swlib_{m}x{n}x{k}_{arrays}", swlib.c_source(m, n, k, arrays=arrays),
                              swlib.ENTRY, dims=(m, n, k)))
    return out


def record_kernels(max_commands: Optional[int] = 20_000) -> list[Kernel]:
    """Search winners: each schedules/*.json record applied to its own workload
    (records whose kernel issues more than `max_commands` are skipped)."""
    from autocomp_exo.library import Record

    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "schedules", "gemm_*.json"))):
        with open(path) as f:
            rec = Record.from_json(f.read(), path)
        w = rec.gemm_workload()
        if max_commands is not None and (w.M * w.N * w.K) // (16 ** 3) * 2 > max_commands:
            continue
        kern = _exo(f"record_{w.M}x{w.N}x{w.K}", rec.schedule.apply(w.proc))
        kern.dims = _gemm_dims(w)
        out.append(kern)
    return out


def example_kernels(pattern: str = "*.c") -> list[Kernel]:
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", pattern))):
        with open(path) as f:
            src = f.read()
        names = [m.group(1) for m in riscv_reference._SIG.finditer(src)]
        out.append(Kernel(os.path.splitext(os.path.basename(path))[0], src, names[-1]))
    return out


def unrolled_short(m: int = 64, n: int = 64, k: int = 64) -> Kernel:
    """A short-dialect GEMM with every loop unrolled by hand (straight-line code)."""
    lines = ['#include "gemmini.h"',
             f"void solution(int8_t A[{m}][{k}], int8_t B[{k}][{n}], int8_t C[{m}][{n}]) {{",
             "  config_ex(WEIGHT_STATIONARY, NO_ACTIVATION, 1, false, false);",
             f"  config_st({n});", f"  config_ld({k}, 1.0f, 16, 0);", f"  config_ld({n}, 1.0f, 16, 1);"]
    kb, jb, ib = k // 16, n // 16, m // 16
    for kk in range(kb):
        for j4 in range(0, jb, 4):
            lines.append(f"  mvin2(&B[{16 * kk}][{16 * j4}], {8192 + (kk * jb + j4) * 16}, "
                         f"{16 * min(4, jb - j4)}, 16);")
    for i in range(ib):
        for k4 in range(0, kb, 4):
            lines.append(f"  mvin(&A[{16 * i}][{16 * k4}], {(i % 2) * 16 * kb + k4 * 16}, "
                         f"{16 * min(4, kb - k4)}, 16);")
        for j in range(jb):
            for kk in range(kb):
                acc = "" if kk == 0 else " | 0x40000000"
                lines.append(f"  preload({8192 + (kk * jb + j) * 16}, {(1 << 31) + j * 16}u{acc}, 16, 16, 16, 16);")
                lines.append(f"  compute_preloaded({(i % 2) * 16 * kb + kk * 16}, ~((uint32_t)0), 16, 16, 16, 16);")
        for j in range(jb):
            lines.append(f"  mvout(&C[{16 * i}][{16 * j}], {(1 << 31) + j * 16}u, 16, 16);")
    lines += ["  fence();", "}"]
    return Kernel(f"short_unrolled_{m}x{n}x{k}", "\n".join(lines) + "\n", "solution")


CORPUS_DIR = os.path.join(HERE, "cpu_corpus")


def generated_kernels(large: bool = False) -> list[Kernel]:
    """The kernels made by calling Exo (slow: tens of seconds), and the library's C."""
    ks: list[Kernel] = []
    ks += swlib_kernels([(64, 64, 64), (128, 256, 64), (256, 128, 512)] +
                        ([(512, 512, 512)] if large else []))
    ks += exo_kernels([(64, 64, 64), (128, 128, 128), (256, 64, 128), (64, 256, 256)] +
                      ([(512, 512, 512), (1024, 256, 128)] if large else []),
                      [(128, 128, 128), (256, 256, 256), (64, 512, 128)] +
                      ([(512, 512, 512)] if large else []))
    ks += record_kernels(None if large else 20_000)
    return ks


def save(ks: list[Kernel], directory: str = CORPUS_DIR) -> None:
    os.makedirs(directory, exist_ok=True)
    for k in ks:
        dims = " ".join(map(str, k.dims)) if k.dims else "-"
        with open(os.path.join(directory, f"{k.name}.c"), "w") as f:
            f.write(f"// cpu_fidelity corpus: entry {k.entry} dims {dims}\n{k.source}")
        if k.header is not None:
            with open(os.path.join(directory, f"{k.name}.h"), "w") as f:
                f.write(k.header)


def load(directory: str = CORPUS_DIR) -> list[Kernel]:
    ks = []
    for path in sorted(glob.glob(os.path.join(directory, "*.c"))):
        with open(path) as f:
            first, src = f.read().split("\n", 1)
        words = first.split()
        entry = words[words.index("entry") + 1]
        dims = words[words.index("dims") + 1:]
        hpath = path[:-2] + ".h"
        header = open(hpath).read() if os.path.exists(hpath) else None
        ks.append(Kernel(os.path.basename(path)[:-2], src, entry, header,
                         tuple(int(x) for x in dims) if dims != ["-"] else None))
    return ks


def corpus(large: bool = False, regenerate: bool = False) -> list[Kernel]:
    """The kernels the check runs on: examples/*.c, a hand-unrolled kernel, and the
    generated ones (Exo baselines, search records, the software library), kept as
    C text in benchmarks/cpu_corpus/ so the check needs no Exo (--regenerate
    rewrites them; --large makes big shapes without saving them)."""
    ks: list[Kernel] = []
    ks += example_kernels()
    ks.append(unrolled_short(64, 64, 64))
    if large:
        ks += generated_kernels(True)
    else:
        if regenerate or not glob.glob(os.path.join(CORPUS_DIR, "*.c")):
            save(generated_kernels(False))
        ks += load()
    return ks


def _args(prog, kern: Kernel) -> dict:
    """Zero-filled arguments for the entry (the control flow does not depend on data)."""
    from sim.run import _elem_dtype

    info = prog._entry(kern.entry)
    m, n, k = kern.dims or (0, 0, 0)
    flat = {"A": m * k, "B": k * n, "C": m * n}
    args: dict[str, Any] = {}
    for pname, pt in info.params:
        if pt.kind == "ctx":
            continue
        if pt.kind == "array":
            elem = pt.elem
            while elem.kind == "array":
                elem = elem.elem
            args[pname] = np.zeros(pt.dims, _elem_dtype(elem))
        elif pt.kind == "ptr":
            elem = pt.elem
            inner = 1
            while elem.kind == "array":
                inner *= int(np.prod(elem.dims))
                elem = elem.elem
            size = flat.get(pname) if kern.dims else (1 if pname == "scale" else 1 << 20)
            args[pname] = np.zeros(max(size or 1, inner), _elem_dtype(elem))
        elif pt.kind == "float":
            args[pname] = 1.0
        else:
            args[pname] = 0
    return args


def estimate(kern: Kernel, config: Any = None):
    """The simulator's RunResult for the kernel (functional only: the CPU estimate
    does not need the timing model)."""
    import sim

    prog = sim.compile_program(kern.source, f"{kern.name}.c", config)
    return prog.run(kern.entry, _args(prog, kern), config=config, timing=False)


def measure(kern: Kernel, config: Any = None) -> dict:
    ref = riscv_reference.count(kern.source, kern.entry, kern.header)
    res = estimate(kern, config)
    est = res.cpu_instructions
    return dict(name=kern.name, reference=ref.instructions, estimate=est,
                error=(est - ref.instructions) / ref.instructions, static_bytes=ref.static_bytes,
                rocc=ref.rocc, commands=res.instructions.get("total", 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="add large shapes and every search record")
    ap.add_argument("--only", help="kernels whose name contains this")
    ap.add_argument("--regenerate", action="store_true", help="remake benchmarks/cpu_corpus/ with Exo")
    ap.add_argument("--asm", action="store_true", help="print the disassembly of the selected kernels")
    args = ap.parse_args(argv)
    why = riscv_reference.missing()
    if why:
        print(f"cannot run the reference: {why}", file=sys.stderr)
        return 2
    t0 = time.time()
    ks = corpus(args.large, args.regenerate)
    if args.only:
        ks = [k for k in ks if args.only in k.name]
    print(f"{len(ks)} kernels ({time.time() - t0:.1f} s to build)")
    print(f"{'kernel':34s} {'reference':>11s} {'estimate':>11s} {'error':>8s} {'static B':>9s} {'RoCC':>8s}")
    worst = 0.0
    for kern in ks:
        if args.asm:
            print(riscv_reference.disassemble(kern.source, kern.entry, kern.header))
        r = measure(kern)
        worst = max(worst, abs(r["error"]))
        flag = "" if abs(r["error"]) <= TOLERANCE else "  <-- over 15%"
        print(f"{r['name']:34s} {r['reference']:11,d} {r['estimate']:11,d} {100 * r['error']:+7.1f}% "
              f"{r['static_bytes']:9,d} {r['rocc']:8,d}{flag}", flush=True)
    print(f"worst |error| {100 * worst:.1f}% ({time.time() - t0:.1f} s)")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
