"""Lower a scheduled Exo proc to Gemmini C text.

``to_c(proc) -> (c_source, entry_name)`` calls
``exo.compile_procs_to_strings([proc], HEADER_NAME)`` with a fixed header
name, so the context struct is always ``autocomp_exo_gemmini_Context`` and the
``#include`` line is always the same.  Any failure (MemGenError, a proc that
still has DRAM-only statements on accelerator memory, ...) becomes a
:class:`CompileError` carrying Exo's message.
"""
from __future__ import annotations

__all__ = ["CompileError", "HEADER_NAME", "to_c", "to_c_and_header"]

HEADER_NAME = "autocomp_exo_gemmini.h"


class CompileError(Exception):
    """Exo could not lower the proc to C (message and original type kept)."""

    def __init__(self, message: str, kind: str = ""):
        self.message = str(message)
        self.kind = kind
        super().__init__(f"[{kind}] {self.message}" if kind else self.message)

    def __reduce__(self):
        return (CompileError, (self.message, self.kind))


def to_c_and_header(proc) -> tuple[str, str, str]:
    """(c_source, header_source, entry_name)."""
    from exo.API import Procedure

    if not isinstance(proc, Procedure):
        raise CompileError(f"expected an Exo Procedure, got {type(proc).__name__}", "TypeError")
    try:
        import exo

        c, h = exo.compile_procs_to_strings([proc], HEADER_NAME)
    except RecursionError as e:
        raise CompileError(f"recursion limit: {e}", "RecursionError") from None
    except Exception as e:  # MemGenError, TypeError, InternalError, ...
        raise CompileError(str(e).strip() or repr(e), type(e).__name__) from e
    return c, h, proc.name()


def to_c(proc) -> tuple[str, str]:
    """(c_source, entry_name) for a scheduled proc."""
    c, _h, entry = to_c_and_header(proc)
    return c, entry
