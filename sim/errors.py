"""Errors the simulator raises. Every failure is a `SimError` subclass that
names the file, line and column of the C construct it concerns."""
from __future__ import annotations


class SimError(Exception):
    """Base class of every simulator error."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, source_line: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None or self.line is not None:
            where = f"{self.file or '<c>'}"
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        text = f"{where}{self.message}"
        if self.source_line:
            text += f"\n    {self.source_line.strip()}"
        return text

    def with_location(self, file: str | None, line: int | None, column: int | None,
                      source_line: str | None = None) -> "SimError":
        """Fill in a location the raiser did not know (keeps one already set)."""
        if self.line is None:
            self.file, self.line, self.column = file, line, column
            self.source_line = source_line
            self.args = (self._format(),)
        return self


class CParseError(SimError):
    """The C text does not parse: a syntax error, with what was expected."""


class UnsupportedError(SimError):
    """The C parses but uses a construct or type the simulator does not support."""


class UnknownFunctionError(UnsupportedError):
    """A call to a function that is neither defined in the file nor a Gemmini instruction."""


class ArgumentError(SimError):
    """The arguments given to `run` do not fit the entry function's parameters."""


class LocalAddressError(SimError):
    """A local (scratchpad/accumulator) address outside the memory or an operand too large."""


class InstructionLimitError(SimError):
    """A Gemmini instruction's rows/columns/flags exceed what the hardware accepts."""


class DramAccessError(SimError):
    """A DRAM access outside the array bound to the pointer, or through a bad pointer."""


class OutOfLocalMemoryError(SimError):
    """gemm_malloc / gemm_acc_malloc could not find enough free rows."""


class AllocatorError(SimError):
    """A free of an address that is not live."""


class BudgetExceededError(SimError):
    """The instruction budget ran out (a runaway loop)."""


class RuntimeCError(SimError):
    """Undefined behaviour met while running the C: division by zero, bad dereference."""
