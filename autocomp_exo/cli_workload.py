"""The workload a CLI command names: ``gemm M N K`` or ``conv ...``.

``conv`` takes a benchmark name (``conv-56``, ``conv-28``, ``conv-14``,
``conv-14x128``: GEMMINI_CONV.md section 2) or four sizes ``BATCH OUT_DIM
IN_CH OUT_CH``, with ``--kernel`` and ``--stride``. Every refusal is a
`WorkloadError` naming what is wrong, for the CLI to print (exit 2)."""
from __future__ import annotations

from typing import Any, Sequence

from .workload_base import WorkloadError

__all__ = ["KINDS", "workload_from_args", "USAGE"]

KINDS = ("gemm", "conv")

#: (no Exo import here: the parser stays fast; the shapes' names are in `conv.BENCHMARK_SHAPES`)
USAGE = {"gemm": "gemm M N K", "conv": "conv BATCH OUT_DIM IN_CH OUT_CH, or conv NAME (a benchmark shape, e.g. conv-56)"}


def _ints(kind: str, dims: Sequence[str], n: int, names: str) -> list[int]:
    if len(dims) != n:
        raise WorkloadError(f"{kind} needs {n} sizes ({names}), got {len(dims)}: {' '.join(dims) or 'none'}; "
                            f"usage: {USAGE[kind]}")
    out = []
    for name, d in zip(names.split(), dims):
        try:
            out.append(int(d))
        except ValueError:
            raise WorkloadError(f"{kind} {name} must be an integer, got {d!r}; usage: {USAGE[kind]}") from None
    return out


def workload_from_args(kind: str, dims: Sequence[str], relu: bool = False, kernel: int = 3,
                       stride: int = 1) -> Any:
    """The `GemmWorkload` or `ConvWorkload` named by ``kind`` and ``dims`` (strings)."""
    from .conv import BENCHMARK_SHAPES, ConvWorkload
    from .workloads import GemmWorkload
    if kind == "gemm":
        if (kernel, stride) != (3, 1):
            raise WorkloadError("--kernel and --stride are conv options; gemm takes M N K")
        return GemmWorkload(*_ints(kind, dims, 3, "M N K"), relu)
    if kind == "conv":
        if len(dims) == 1 and not dims[0].isdigit():
            if dims[0] not in BENCHMARK_SHAPES:
                raise WorkloadError(f"unknown conv benchmark {dims[0]!r}; known: {', '.join(BENCHMARK_SHAPES)}")
            return ConvWorkload(*BENCHMARK_SHAPES[dims[0]], kernel, stride, relu)
        return ConvWorkload(*_ints(kind, dims, 4, "BATCH OUT_DIM IN_CH OUT_CH"), kernel, stride, relu)
    raise WorkloadError(f"unknown workload kind {kind!r}; kinds: {', '.join(KINDS)}")
