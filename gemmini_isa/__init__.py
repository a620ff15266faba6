"""What the Gemmini hardware is: configuration and instruction set as data."""
from .config import GemminiConfig, default
from .instructions import (
    ACC_BIT, ACCUMULATE_BIT, CONSTANTS, GARBAGE_ADDR, INSTRUCTIONS, RAW_BIT, ROW_MASK,
    SPELLINGS, Instruction, LocalAddress, Param, Spelling, decode_local, resolve_args,
    spelling_for, spellings_by_name,
)

__all__ = [
    "GemminiConfig", "default", "ACC_BIT", "ACCUMULATE_BIT", "RAW_BIT", "ROW_MASK",
    "GARBAGE_ADDR", "CONSTANTS", "INSTRUCTIONS", "SPELLINGS", "Instruction", "Param",
    "Spelling", "LocalAddress", "decode_local", "resolve_args", "spelling_for",
    "spellings_by_name",
]
