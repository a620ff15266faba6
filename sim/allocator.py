"""gemm_malloc / gemm_acc_malloc with their intended meaning (EXO.md item 9).

Exo's shipped C allocator gives every accumulator buffer row 0 and reserves
4x too many rows; ours hands out distinct rows: scratchpad rows = bytes / 16,
accumulator rows = bytes / 64, first fit, and a clear error when full.
"""
from __future__ import annotations

import bisect

from .errors import AllocatorError, OutOfLocalMemoryError


class RowAllocator:
    """First-fit allocator over `capacity` rows of one local memory."""

    def __init__(self, capacity: int, bytes_per_row: int, name: str):
        self.capacity = capacity
        self.bytes_per_row = bytes_per_row
        self.name = name
        self.starts: list[int] = []   # sorted starts of live blocks
        self.sizes: dict[int, int] = {}
        self.peak = 0

    def alloc(self, nbytes: int) -> int:
        rows = max(1, -(-int(nbytes) // self.bytes_per_row))
        pos = 0
        for s in self.starts:
            if s - pos >= rows:
                break
            pos = max(pos, s + self.sizes[s])
        if pos + rows > self.capacity:
            live = sum(self.sizes.values())
            raise OutOfLocalMemoryError(
                f"out of {self.name} memory: {nbytes} bytes need {rows} rows, but only "
                f"{self.capacity - live} of {self.capacity} rows are free "
                f"({len(self.starts)} live buffers, largest free run too small)")
        bisect.insort(self.starts, pos)
        self.sizes[pos] = rows
        self.peak = max(self.peak, pos + rows)
        return pos

    def free(self, row: int) -> None:
        if row not in self.sizes:
            raise AllocatorError(f"free of {self.name} row {row}, which is not the start of a live buffer")
        del self.sizes[row]
        self.starts.remove(row)

    def live_rows(self) -> int:
        return sum(self.sizes.values())
