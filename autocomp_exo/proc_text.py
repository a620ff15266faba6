"""The text of a scheduled Exo proc, fast.

``str(proc)`` in Exo 1.0.0 runs the printed proc through yapf, which takes
seconds to minutes on long straight-line bodies (14 s for a fully unrolled
3136x512x128 tile, 500x the printing itself). The search shows the text
of every candidate (to the LLM agent, in the run logs), so ``proc_text``
uses Exo's own printer without the reformatting and spaces allocations and
arguments the way ``str(proc)`` does (``a: i8[4, 16] @ GEMM_SCRATCH``).
Statements stay one per line, indented two spaces a level.

The text is for reading only: what a proc is made of comes from
`autocomp_exo.proc_facts` (Exo's cursors). Printing without yapf needs
Exo's private printer on ``proc._loopir_proc``; with `workloads._renamed`
and `workloads.recognise`'s structural comparison it is the only use of
Exo's internals outside the scheduling library.
"""
from __future__ import annotations

import re

__all__ = ["proc_text"]

_DECL = re.compile(r"(\w) : ")
_MEM = re.compile(r"@(\w)")


def proc_text(proc) -> str:
    """Exo's text of ``proc`` without yapf (falls back to ``str(proc)``)."""
    try:
        from exo.core.LoopIR_pprint import PrintEnv, _print_proc

        raw = "\n".join(_print_proc(proc._loopir_proc, PrintEnv(), ""))
    except Exception:  # noqa: BLE001 - an Exo version without these internals
        return str(proc)
    return _MEM.sub(r"@ \1", _DECL.sub(r"\1: ", raw))
