"""How Gemmini C runs: parse (Lark), compile to Python once, execute bit-exactly
on a functional model of Gemmini and time it with a cycle-approximate model."""
from .errors import (
    AllocatorError, ArgumentError, BudgetExceededError, CParseError, DramAccessError,
    InstructionLimitError, LocalAddressError, OutOfLocalMemoryError, RuntimeCError, SimError,
    UnknownFunctionError, UnsupportedError,
)
from .run import Program, RunResult, compile_program, run

__all__ = [
    "SimError", "CParseError", "UnsupportedError", "UnknownFunctionError", "ArgumentError",
    "LocalAddressError", "InstructionLimitError", "DramAccessError", "OutOfLocalMemoryError",
    "AllocatorError", "BudgetExceededError", "RuntimeCError",
    "Program", "RunResult", "compile_program", "run",
]
