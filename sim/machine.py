"""The functional Gemmini: DRAM bound to numpy arrays, scratchpad, accumulator,
and every instruction implemented bit-exactly on whole tiles with numpy.

Each instruction method takes, first, the number of scalar CPU operations the
C code executed since the previous instruction, forwards it and the
instruction's resource use to the timing model, and returns 0 (the compiled
code resets its counter with the return value).
"""
from __future__ import annotations

import struct
from typing import Any, Optional

import numpy as np

from gemmini_isa import GARBAGE_ADDR, GemminiConfig

from .allocator import RowAllocator
from .timing import FLAG_ACCUMULATE, FLAG_RAW, FLAG_SCALED
from .errors import (
    SimError, BudgetExceededError, DramAccessError, InstructionLimitError, LocalAddressError, RuntimeCError,
    UnsupportedError,
)

SLOT_SHIFT = 40
OFF_MASK = (1 << SLOT_SHIFT) - 1
ROWMASK = (1 << 29) - 1
_STRUCTS = {c: struct.Struct("<" + c) for c in "bBhHiIqQfd"}


class Dram:
    """Arrays bound to C pointers. A pointer is the integer (slot << 40) + byte offset."""

    def __init__(self) -> None:
        self.bufs: list[Optional[np.ndarray]] = [None]  # slot 0 = NULL / local "pointers"
        self.names: list[str] = ["NULL"]
        self.sites: dict[str, int] = {}

    def bind(self, name: str, array: np.ndarray) -> int:
        """Bind a C-contiguous array; returns its base address."""
        self.bufs.append(array.reshape(-1).view(np.uint8))
        self.names.append(name)
        return (len(self.bufs) - 1) << SLOT_SHIFT

    def site_array(self, site: str, nbytes: int) -> int:
        """A local C array: one buffer per declaration site (like a stack slot)."""
        slot = self.sites.get(site)
        if slot is None:
            base = self.bind(f"local array {site}", np.zeros(nbytes, np.uint8))
            self.sites[site] = base >> SLOT_SHIFT
            return base
        return slot << SLOT_SHIFT

    def _buf(self, addr: int, what: str) -> tuple[np.ndarray, int, str]:
        slot = addr >> SLOT_SHIFT
        if addr <= 0 or slot <= 0 or slot >= len(self.bufs):
            kind = "NULL" if addr == 0 else ("a scratchpad/accumulator address" if 0 < addr < (1 << 32)
                                             else "not inside any array argument")
            raise DramAccessError(f"{what}: DRAM address {addr:#x} is {kind}")
        return self.bufs[slot], addr & OFF_MASK, self.names[slot]

    def view(self, addr: int, rows: int, cols: int, itemsize: int, stride: int, dtype: Any,
             what: str) -> np.ndarray:
        """A (rows, cols) strided view of DRAM: rows `stride` bytes apart."""
        buf, off, name = self._buf(addr, what)
        row_bytes = cols * itemsize
        if stride < 0:
            raise DramAccessError(f"{what}: negative DRAM stride {stride}")
        last = off + (rows - 1) * stride + row_bytes
        if last > buf.size:
            raise DramAccessError(
                f"{what}: {rows} rows x {row_bytes} bytes with stride {stride} starting at byte {off} of "
                f"'{name}' run past its end ({buf.size} bytes)")
        return np.ndarray((rows, cols), dtype, buffer=buf, offset=off, strides=(stride, itemsize))

    def load(self, addr: int, code: str) -> Any:
        buf, off, name = self._buf(addr, "CPU load")
        s = _STRUCTS[code]
        if off + s.size > buf.size:
            raise DramAccessError(f"CPU load: byte {off} of '{name}' is past its end ({buf.size} bytes)")
        return s.unpack_from(buf, off)[0]

    def store(self, addr: int, code: str, value: Any) -> None:
        buf, off, name = self._buf(addr, "CPU store")
        s = _STRUCTS[code]
        if off + s.size > buf.size:
            raise DramAccessError(f"CPU store: byte {off} of '{name}' is past its end ({buf.size} bytes)")
        if code in "fd":
            s.pack_into(buf, off, float(value))
        else:
            bits = s.size * 8
            v = int(value) & ((1 << bits) - 1)
            if code.islower() and v >= 1 << (bits - 1):
                v -= 1 << bits
            s.pack_into(buf, off, v)


def _compute_method(name: str, preloaded: bool) -> Any:
    """compute_preloaded / compute_accumulated: the common case (a full 16x16
    WS block from the scratchpad into the accumulator) is queued for a batched
    matmul; everything else goes through Machine._compute."""

    def method(self: "Machine", ops: int, a: int, dd: int, a_cols: int, a_rows: int, d_cols: int,
               d_rows: int) -> int:
        self._count(name, ops)
        tm = self.tm
        out = self.out
        w = self.w_row
        d = self.dim
        if (out is not None and w is not None and a_rows == d and a_cols == d and out[1] == d
                and out[2] == d and (dd & 0xFFFFFFFF) == GARBAGE_ADDR and self.a_stride == 1):
            c = out[0]
            a &= 0xFFFFFFFF
            if c >> 31 and c != GARBAGE_ADDR and not a >> 31 and (a & ROWMASK) + d <= self.sp_rows:
                arow = a & ROWMASK
                crow = c & ROWMASK
                self.out = None
                self._enqueue(arow, w, crow, c & 0x40000000)
                if tm is not None:
                    tm.command(name, "execute", ((0, arow, arow + d),), (), 0, d, d, False, False)
                return 0
        self._compute(a, dd, a_cols, a_rows, d_cols, d_rows, preloaded, False)
        return 0

    method.__name__ = name
    method.__doc__ = f"{name}(A, D, A cols, A rows, D cols, D rows)."
    return method


def _gather_blocks(mem: np.ndarray, starts: np.ndarray, d: int) -> np.ndarray:
    """mem[start:start + d] for every start in an index array: shape starts.shape + (d, d)."""
    if not (starts % d).any():
        return mem.reshape(-1, d, d)[starts // d]
    return mem[starts[..., None] + np.arange(d)]

def _scale_to(x: np.ndarray, scale: float, lo: int, hi: int, dtype: Any) -> np.ndarray:
    """round-half-even(float32(x) * float32(scale)), saturated to [lo, hi]."""
    y = np.rint(x.astype(np.float32) * np.float32(scale))
    return np.clip(y, lo, hi).astype(dtype)


class Machine:
    """Gemmini's architectural state and instruction semantics."""

    def __init__(self, config: GemminiConfig, timing: Any = None, max_instructions: Optional[int] = None,
                 max_iterations: Optional[int] = None):
        self.cfg = config
        d = self.dim = config.dim
        self.sp_rows, self.acc_rows = config.sp_rows, config.acc_rows
        self.sp = np.zeros((self.sp_rows, d), np.int8)
        self.acc = np.zeros((self.acc_rows, d), np.int32)
        self.dram = Dram()
        self.load, self.store, self.site_array = self.dram.load, self.dram.store, self.dram.site_array
        self.ctx: dict[str, Any] = {}
        self.pend = 0   # CPU cycles of scalar code not yet given to the timing model
        self.ni = 0     # estimated RISC-V instructions the CPU executed (RoCC commands included)
        self.tm = timing
        self.n = 0
        self.budget = max_instructions if max_instructions is not None else 1 << 62
        if max_iterations is None:
            max_iterations = max(100 * self.budget, 1_000_000) if max_instructions is not None else 1 << 62
        self.iter_budget = max_iterations
        self.iterations = 0
        self.counts: dict[str, int] = {}
        # load / execute / store configuration
        self.ld = [[0, 1.0, 0, d] for _ in range(3)]  # stride, scale, shrunk, block stride
        self.dataflow, self.ex_act, self.ex_shift, self.a_stride = 1, 0, 0, 1
        self.a_transpose = self.b_transpose = 0
        self.st_stride, self.st_act, self.st_scale = 0, 0, 1.0
        self.weights = np.zeros((d, d), np.int32)
        self.os_d = np.zeros((d, d), np.int32)      # OS: initial partial sums from the last preload
        self.os_sums = np.zeros((d, d), np.int32)   # OS: partial sums held in the array
        self.out: Optional[tuple[int, int, int]] = None  # C operand named by the last preload
        # Deferred work: full 16x16 WS computes into the accumulator are queued and
        # executed as one batched matmul when anything else touches local memory.
        self.w_row: Optional[int] = None  # scratchpad row of the weights not yet read
        self.q: list[tuple[int, int, int, int]] = []  # (A row, B row, C row, accumulate)
        self.q_sp_blocks: set[int] = set()   # 16-row blocks the queue reads (scratchpad)
        self.q_acc_blocks: set[int] = set()  # 16-row blocks the queue writes (accumulator)
        self._q_last_a = self._q_last_w = self._q_last_c = -1  # rows already marked in the block sets
        self.n_pairs_pre = self.n_pairs_acc = 0  # fused fast-path pairs (added to counts at the end)
        self._ar = np.arange(d)
        self.sp_touch: set[tuple[int, int]] = set()
        self.acc_touch: set[tuple[int, int]] = set()
        self.sp_alloc = RowAllocator(self.sp_rows, d, "scratchpad")
        self.acc_alloc = RowAllocator(self.acc_rows, 4 * d, "accumulator")
        self.fsm_calls = 0
        self.fsm_acc_half = 1  # the first fresh loop_ws call uses accumulator half 0
        self.conv_calls = 0     # loop_conv_ws calls so far (their loop slot alternates)
        self.conv_acc_base = 0  # loop_conv_ws's accumulator base (flips after a call that stores)
        self.macs = 0  # multiply-accumulates the array performed (useful rows x cols x depth)
        self.dram_read = self.dram_written = 0

    # ---- bookkeeping -----------------------------------------------------
    def _count(self, op: str, ops: int) -> None:
        n = self.n = self.n + 1
        if n > self.budget:
            raise BudgetExceededError(
                f"instruction budget of {self.budget} Gemmini instructions exhausted (a runaway loop?)")
        counts = self.counts
        counts[op] = counts.get(op, 0) + 1
        tm = self.tm
        if tm is not None:
            if self.pend:
                ops += self.pend
                self.pend = 0
            if ops:
                tm.cpu(ops)

    def _enqueue(self, arow: int, w: int, crow: int, accumulate: int) -> None:
        """Queue one full-block WS compute (A rows, weight rows, C rows in the
        accumulator) and mark the 16-row blocks it reads and writes."""
        d = self.dim
        q = self.q
        q.append((arow, w, crow, accumulate))
        self.macs += d * d * d
        if arow != self._q_last_a:
            self._q_last_a = arow
            self.q_sp_blocks.update((arow >> 4, (arow + d - 1) >> 4))
        if w != self._q_last_w:
            self._q_last_w = w
            self.q_sp_blocks.update((w >> 4, (w + d - 1) >> 4))
        if crow != self._q_last_c:
            self._q_last_c = crow
            self.q_acc_blocks.update((crow >> 4, (crow + d - 1) >> 4))
        if len(q) >= 1024:
            self._run_queue()

    def _barrier(self) -> None:
        """Run the queued computes (before anything that must see their results
        or could change what they read)."""
        if self.q:
            self._run_queue()

    def _sp_write(self, r0: int, r1: int) -> None:
        """About to write scratchpad rows [r0, r1): keep the queue and the lazily
        read weights consistent with the rows as they were when issued."""
        if self.q:
            blocks = self.q_sp_blocks
            for blk in range(r0 >> 4, ((r1 - 1) >> 4) + 1):
                if blk in blocks:
                    self._run_queue()
                    break
        w = self.w_row
        if w is not None and r0 < w + self.dim and w < r1:
            self.weights = self.sp[w:w + self.dim].astype(np.int32)
            self.w_row = None

    def _acc_touch(self, r0: int, r1: int) -> None:
        """About to read or write accumulator rows [r0, r1) outside the queue."""
        blocks = self.q_acc_blocks
        for blk in range(r0 >> 4, ((r1 - 1) >> 4) + 1):
            if blk in blocks:
                self._run_queue()
                return

    def _run_queue(self) -> None:
        """Execute the queued computes, applying their overwrite/accumulate
        effects on the accumulator as if one by one in issue order.

        Results are grouped by output block: a block's final value is its last
        overwrite (or its old value) plus every later accumulation, and the sum
        of products A_1 B_1 + ... + A_m B_m is one matmul of the A blocks side by
        side with the B blocks stacked, done for all outputs at once (float64:
        exact for int8 products)."""
        d, sp, acc = self.dim, self.sp, self.acc
        q = self.q
        self.q = []
        self.q_sp_blocks = set()
        self.q_acc_blocks = set()
        self._q_last_a = self._q_last_w = self._q_last_c = -1
        groups: dict[int, list] = {}
        fresh: set[int] = set()  # outputs whose old value is overwritten
        for a, w, c, accumulate in q:
            g = groups.get(c)
            if g is None:
                groups[c] = [(a, w)]
            elif accumulate:
                g.append((a, w))
            else:
                g.clear()
                g.append((a, w))
            if not accumulate:
                fresh.add(c)
        outs = sorted(groups)
        if len(outs) > 1 and min(b - a for a, b in zip(outs, outs[1:])) < d:
            self._run_queue_in_order(q)  # partially overlapping outputs
            return
        self.acc_touch.update((c, c + d) for c in outs)
        m = max(len(g) for g in groups.values())
        G = len(outs)
        ia = np.zeros((G, m), np.int64)
        ib = np.zeros((G, m), np.int64)
        pad = None
        for gi, c in enumerate(outs):
            g = groups[c]
            k = len(g)
            ia[gi, :k] = [x[0] for x in g]
            ib[gi, :k] = [x[1] for x in g]
            if k < m:
                if pad is None:
                    pad = np.zeros((G, m), bool)
                pad[gi, k:] = True
        A = _gather_blocks(sp, ia, d)              # (G, m, d, d) int8
        B = _gather_blocks(sp, ib, d)
        if pad is not None:
            A[pad] = 0
        A = A.astype(np.float64).transpose(0, 2, 1, 3).reshape(G, d, m * d)
        B = B.astype(np.float64).reshape(G, m * d, d)
        sums = np.matmul(A, B).astype(np.int64)
        rows = np.asarray(outs)[:, None] + self._ar
        if fresh:
            keep = np.array([c not in fresh for c in outs])
            sums[keep] += acc[rows[keep]]
        else:
            sums += acc[rows]
        acc[rows] = sums.astype(np.int32)  # int32 wrap-around

    def _run_queue_in_order(self, q: list) -> None:
        d, sp, acc = self.dim, self.sp, self.acc
        for a, w, c, accumulate in q:
            r = sp[a:a + d].astype(np.int32) @ sp[w:w + d].astype(np.int32)
            self.acc_touch.add((c, c + d))
            if accumulate:
                acc[c:c + d] += r
            else:
                acc[c:c + d] = r

    def iters(self, n: int) -> None:
        self.iterations += n
        if self.iterations > self.iter_budget:
            raise BudgetExceededError(
                f"loop iteration budget of {self.iter_budget} exhausted (a runaway loop?)")

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > self.iter_budget:
            raise BudgetExceededError(
                f"loop iteration budget of {self.iter_budget} exhausted (a runaway loop?)")

    def finish(self) -> None:
        self._barrier()
        counts = self.counts
        for name, n in (("preload", self.n_pairs_pre + self.n_pairs_acc), ("compute_preloaded", self.n_pairs_pre),
                        ("compute_accumulated", self.n_pairs_acc)):
            if n:
                counts[name] = counts.get(name, 0) + n
        self.n_pairs_pre = self.n_pairs_acc = 0
        if self.tm is not None and self.pend:
            self.tm.cpu(self.pend)
        self.pend = 0

    def _rows_cols(self, name: str, rows: int, cols: int, max_cols: int) -> None:
        if not 1 <= rows <= self.dim:
            raise InstructionLimitError(f"{name}: {rows} rows; must be 1..{self.dim}")
        if not 1 <= cols <= max_cols:
            raise InstructionLimitError(f"{name}: {cols} columns; must be 1..{max_cols} here")

    def _sp_range(self, name: str, row: int, end: int) -> None:
        if end > self.sp_rows:
            raise LocalAddressError(f"{name}: scratchpad rows {row}..{end - 1} are outside the scratchpad "
                                    f"(0..{self.sp_rows - 1})")

    def _acc_range(self, name: str, row: int, end: int) -> None:
        if end > self.acc_rows:
            raise LocalAddressError(f"{name}: accumulator rows {row}..{end - 1} are outside the accumulator "
                                    f"(0..{self.acc_rows - 1})")

    # ---- configuration -----------------------------------------------------
    def config_ex(self, ops: int, dataflow: int, act: int, shift: int, a_stride: int, a_t: int, b_t: int) -> int:
        self._count("config_ex", ops)
        self._barrier()
        if dataflow not in (0, 1):
            raise InstructionLimitError(f"config_ex: dataflow {dataflow}; must be 0 (OS) or 1 (WS)")
        if a_stride < 1:
            raise InstructionLimitError(f"config_ex: A stride {a_stride}; must be >= 1")
        if a_t or b_t:
            raise UnsupportedError("config_ex: transposed A or B is not supported by the simulator")
        self.dataflow, self.ex_act, self.ex_shift, self.a_stride = dataflow, act, shift, a_stride
        if self.tm is not None:
            self.tm.command("config_ex", "execute", (), (), 0, 0, 0)
        return 0

    def config_ld(self, ops: int, stride: int, scale: float, shrunk: int, block_stride: int, ident: int) -> int:
        self._count("config_ld", ops)
        if ident not in (0, 1, 2):
            raise InstructionLimitError(f"config_ld: load id {ident}; must be 0, 1 or 2")
        if block_stride < 0:
            raise InstructionLimitError(f"config_ld: negative block stride {block_stride}")
        self.ld[ident] = [stride, float(scale), shrunk, block_stride]
        if self.tm is not None:
            self.tm.command("config_ld", "load", (), (), 0, 0, 0)
        return 0

    def config_st(self, ops: int, stride: int, act: int, scale: float) -> int:
        self._count("config_st", ops)
        self.st_stride, self.st_act, self.st_scale = stride, act, float(scale)
        if self.tm is not None:
            self.tm.command("config_st", "store", (), (), 0, 0, 0)
        return 0

    # ---- data movement ---------------------------------------------------
    def mvin(self, ops: int, ident: int, dram: int, local: int, cols: int, rows: int) -> int:
        self._count("mvin", ops)
        stride, scale, shrunk, bs = self.ld[ident]
        d = self.dim
        local &= 0xFFFFFFFF
        nblk = (cols + d - 1) // d
        if (dram and not local >> 31 and scale == 1.0 and 1 <= rows <= d and 1 <= cols <= self.cfg.max_mvin_cols_sp
                and (nblk == 1 or (bs == rows and cols == nblk * d))):
            # fast path: DRAM rows into one contiguous run of scratchpad rows
            row = local & ROWMASK
            end = row + nblk * rows
            if end <= self.sp_rows:
                src = self.dram.view(dram, rows, cols, 1, stride, np.int8, "mvin")
                if self.q or self.w_row is not None:
                    self._sp_write(row, end)
                if nblk == 1:
                    self.sp[row:end, :cols] = src
                else:
                    self.sp[row:end].reshape(nblk, rows, d)[...] = src.reshape(rows, nblk, d).transpose(1, 0, 2)
                self.sp_touch.add((row, end))
                self.dram_read += rows * cols
                if self.tm is not None:
                    self.tm.command("mvin", "load", (), ((0, row, end),), rows * cols, rows, cols, False, False,
                                    dram, stride, 0)
                return 0
        self._mvin(dram, local, cols, rows, stride, scale, shrunk, bs, False)
        return 0

    def _mvin(self, dram: int, local: int, cols: int, rows: int, stride: int, scale: float, shrunk: int,
              bs: int, fsm: bool) -> None:
        local &= 0xFFFFFFFF
        if local == GARBAGE_ADDR:
            raise LocalAddressError("mvin: the destination is the garbage address")
        row = local & ROWMASK
        d = self.dim
        if local >> 31:  # accumulator
            itemsize = 1 if shrunk else 4
            self._rows_cols("mvin (accumulator)", rows, cols, self.cfg.max_mvin_cols_acc)
            self._acc_range("mvin", row, row + rows)
            if dram == 0:
                src = np.zeros((rows, cols), np.int32)
            else:
                src = self.dram.view(dram, rows, cols, itemsize, stride, np.int8 if shrunk else np.int32,
                                     "mvin").astype(np.int32)
                self.dram_read += rows * cols * itemsize
            if scale != 1.0:
                src = _scale_to(src, scale, -(1 << 31), (1 << 31) - 1, np.int32)
            if self.q:
                self._acc_touch(row, row + rows)
            dst = self.acc[row:row + rows, :cols]
            if (local >> 30) & 1:
                dst += src
            else:
                dst[...] = src
            self.acc_touch.add((row, row + rows))
            if self.tm is not None:
                self.tm.command("mvin_zero" if dram == 0 else "mvin_acc", "load", (),
                                ((1, row, row + rows),), 0 if dram == 0 else rows * cols * itemsize,
                                rows, cols, fsm, False, dram, stride, 0)
            return
        self._rows_cols("mvin", rows, cols, self.cfg.max_mvin_cols_sp)
        nblk = (cols + d - 1) // d
        end = row + (nblk - 1) * bs + rows
        self._sp_range("mvin", row, end)
        if dram == 0:
            src = None
        else:
            src = self.dram.view(dram, rows, cols, 1, stride, np.int8, "mvin")
            self.dram_read += rows * cols
            if scale != 1.0:
                src = _scale_to(src, scale, -128, 127, np.int8)
        sp = self.sp
        if self.q or self.w_row is not None:
            if bs == rows or nblk == 1:
                self._sp_write(row, end)
            else:
                for b in range(nblk):
                    self._sp_write(row + b * bs, row + b * bs + rows)
        if nblk == 1:
            if src is None:
                sp[row:row + rows, :cols] = 0
            else:
                sp[row:row + rows, :cols] = src
            writes = ((0, row, row + rows),)
        elif bs == rows and cols == nblk * d:
            blocks = sp[row:row + nblk * rows].reshape(nblk, rows, d)
            if src is None:
                blocks[...] = 0
            else:
                blocks[...] = src.reshape(rows, nblk, d).transpose(1, 0, 2)
            writes = ((0, row, row + nblk * rows),)
        else:
            w = []
            for b in range(nblk):
                c0 = b * d
                c1 = min(cols, c0 + d)
                r0 = row + b * bs
                if src is None:
                    sp[r0:r0 + rows, :c1 - c0] = 0
                else:
                    sp[r0:r0 + rows, :c1 - c0] = src[:, c0:c1]
                w.append((0, r0, r0 + rows))
            writes = tuple(w)
        for _, a, b in writes:
            self.sp_touch.add((a, b))
        if self.tm is not None:
            self.tm.command("mvin_zero" if src is None else "mvin", "load", (), writes,
                            0 if src is None else rows * cols, rows, cols, fsm, False, dram, stride,
                            FLAG_SCALED if (src is not None and scale != 1.0) else 0)

    def mvout(self, ops: int, dram: int, local: int, cols: int, rows: int) -> int:
        self._count("mvout", ops)
        self._mvout(dram, local, cols, rows, self.st_stride, self.st_act, self.st_scale, False)
        return 0

    def _mvout(self, dram: int, local: int, cols: int, rows: int, stride: int, act: int, scale: float,
               fsm: bool) -> None:
        local &= 0xFFFFFFFF
        if local == GARBAGE_ADDR:
            raise LocalAddressError("mvout: the source is the garbage address")
        row = local & ROWMASK
        d = self.dim
        if local >> 31:
            if self.q:
                self._acc_touch(row, row + (((cols + d - 1) // d) - 1) * d + rows)
            raw = (local >> 29) & 1
            if raw:
                self._rows_cols("mvout (raw int32)", rows, cols, self.cfg.max_mvout_cols_raw)
                self._acc_range("mvout", row, row + rows)
                dst = self.dram.view(dram, rows, cols, 4, stride, np.int32, "mvout")
                dst[...] = self.acc[row:row + rows, :cols]
                reads = ((1, row, row + rows),)
                nbytes = rows * cols * 4
            else:
                self._rows_cols("mvout", rows, cols, self.cfg.max_mvout_cols)
                nblk = (cols + d - 1) // d
                self._acc_range("mvout", row, row + (nblk - 1) * d + rows)
                dst = self.dram.view(dram, rows, cols, 1, stride, np.int8, "mvout")
                if nblk == 1:
                    v = self.acc[row:row + rows, :cols]
                    reads = ((1, row, row + rows),)
                else:
                    v = np.concatenate([self.acc[row + b * d: row + b * d + rows] for b in range(nblk)],
                                       axis=1)[:, :cols]
                    reads = ((1, row, row + nblk * d),) if rows == d else \
                        tuple((1, row + b * d, row + b * d + rows) for b in range(nblk))
                if act == 1:
                    v = np.maximum(v, 0)
                if scale == 1.0:
                    dst[...] = np.clip(v, -128, 127)
                else:
                    dst[...] = _scale_to(v, scale, -128, 127, np.int8)
                nbytes = rows * cols
        else:
            self._rows_cols("mvout (scratchpad)", rows, cols, self.cfg.max_mvout_cols)
            nblk = (cols + d - 1) // d
            self._sp_range("mvout", row, row + (nblk - 1) * d + rows)
            dst = self.dram.view(dram, rows, cols, 1, stride, np.int8, "mvout")
            if nblk == 1:
                dst[...] = self.sp[row:row + rows, :cols]
            else:
                dst[...] = np.concatenate([self.sp[row + b * d: row + b * d + rows] for b in range(nblk)],
                                          axis=1)[:, :cols]
            reads = tuple((0, row + b * d, row + b * d + rows) for b in range(nblk))
            nbytes = rows * cols
        self.dram_written += nbytes
        if self.tm is not None:
            self.tm.command("mvout", "store", reads, (), nbytes, rows, cols, fsm, False, dram, stride,
                            FLAG_RAW if (local >> 31 and (local >> 29) & 1) else 0)

    # ---- execute ---------------------------------------------------------
    def preload(self, ops: int, b: int, c: int, b_cols: int, b_rows: int, c_cols: int, c_rows: int) -> int:
        self._count("preload", ops)
        d = self.dim
        if b_cols == d and b_rows == d and c_cols == d and c_rows == d and self.dataflow == 1:
            # fast path: a full block of weights from the scratchpad (or kept), full output
            b &= 0xFFFFFFFF
            c &= 0xFFFFFFFF
            if b == GARBAGE_ADDR:
                reads: tuple = ()
            elif not b >> 31:
                brow = b & ROWMASK
                if brow + d > self.sp_rows:
                    self._sp_range("preload", brow, brow + d)
                self.w_row = brow
                reads = ((0, brow, brow + d),)
            else:
                self._preload(b, c, b_cols, b_rows, c_cols, c_rows, False)
                return 0
            if c == GARBAGE_ADDR:
                writes: tuple = ()
            else:
                crow = c & ROWMASK
                if c >> 31:
                    if crow + d > self.acc_rows:
                        self._acc_range("preload (C)", crow, crow + d)
                    writes = ((1, crow, crow + d),)
                else:
                    if crow + d > self.sp_rows:
                        self._sp_range("preload (C)", crow, crow + d)
                    writes = ((0, crow, crow + d),)
            self.out = (c, d, d)
            if self.tm is not None:
                self.tm.command("preload", "execute", reads, writes, 0, d if reads else 0, d, False, False,
                                0, 0, FLAG_ACCUMULATE if (c >> 31 and (c >> 30) & 1) else 0)
            return 0
        self._preload(b, c, b_cols, b_rows, c_cols, c_rows, False)
        return 0

    def _preload(self, b: int, c: int, b_cols: int, b_rows: int, c_cols: int, c_rows: int, fsm: bool) -> None:
        d = self.dim
        b &= 0xFFFFFFFF
        c &= 0xFFFFFFFF
        self._rows_cols("preload (C)", c_rows, c_cols, d)
        reads: tuple = ()
        if b != GARBAGE_ADDR:
            self._rows_cols("preload (B)", b_rows, b_cols, d)
            brow = b & ROWMASK
            if b >> 31:
                self._acc_range("preload", brow, brow + b_rows)
                self._barrier()
                src = self.acc[brow:brow + b_rows, :b_cols]
                reads = ((1, brow, brow + b_rows),)
                self.w_row = None
            else:
                self._sp_range("preload", brow, brow + b_rows)
                reads = ((0, brow, brow + b_rows),)
                if b_rows == d and b_cols == d:
                    self.w_row = brow  # read lazily (see _barrier)
                    src = None
                else:
                    src = self.sp[brow:brow + b_rows, :b_cols]
                    self.w_row = None
            if self.dataflow == 0:  # OS: B names the initial partial sums (D)
                if src is None:
                    src = self.sp[brow:brow + b_rows, :b_cols]
                    self.w_row = None
                dmat = np.zeros((d, d), np.int32)
                dmat[:b_rows, :b_cols] = src
                self.os_d = dmat
            elif src is not None:
                w = np.zeros((d, d), np.int32)
                w[:b_rows, :b_cols] = src
                self.weights = w
        elif self.dataflow == 0:
            self.os_d = np.zeros((d, d), np.int32)
        writes: tuple = ()
        if c != GARBAGE_ADDR:
            crow = c & ROWMASK
            if c >> 31:
                self._acc_range("preload (C)", crow, crow + c_rows)
                writes = ((1, crow, crow + c_rows),)
            else:
                self._sp_range("preload (C)", crow, crow + c_rows)
                writes = ((0, crow, crow + c_rows),)
        self.out = (c, c_cols, c_rows)
        if self.tm is not None:
            self.tm.command("preload", "execute", reads, writes, 0, b_rows if reads else 0, b_cols, fsm, False,
                            0, 0, FLAG_ACCUMULATE if (c >> 31 and (c >> 30) & 1) else 0)

    def block_pair(self, ops: int, b: int, c: int, ops2: int, a: int, preloaded: int) -> int:
        """preload(B, C) + compute(A, no bias) of full dim x dim blocks: the
        compiler emits this when the sizes are constants (the common case)."""
        # (the compiler passes b, c, a already reduced to 32 bits)
        if (self.dataflow == 1 and self.a_stride == 1 and c >> 31 and c != GARBAGE_ADDR and not a >> 31
                and self.n + 2 <= self.budget):
            if b == GARBAGE_ADDR:
                w = self.w_row
            elif not b >> 31:
                w = b & ROWMASK
            else:
                w = None
            d = self.dim
            arow = a & ROWMASK
            crow = c & ROWMASK
            if (w is not None and w + d <= self.sp_rows and arow + d <= self.sp_rows
                    and crow + d <= self.acc_rows):
                self.n += 2
                if preloaded:
                    self.n_pairs_pre += 1
                else:
                    self.n_pairs_acc += 1
                self.w_row = w
                self.out = None
                self._enqueue(arow, w, crow, c & 0x40000000)
                tm = self.tm
                if tm is not None:
                    if self.pend:
                        ops += self.pend
                        self.pend = 0
                    tm.cpu(ops)
                    tm.command("preload", "execute", () if b == GARBAGE_ADDR else ((0, w, w + d),),
                               ((1, crow, crow + d),), 0, 0 if b == GARBAGE_ADDR else d, d, False, False,
                               0, 0, FLAG_ACCUMULATE if c & 0x40000000 else 0)
                    tm.cpu(ops2)
                    tm.command("compute_preloaded" if preloaded else "compute_accumulated", "execute",
                               ((0, arow, arow + d),), (), 0, d, d, False, False)
                return 0
        d = self.dim
        return self._pair_one_by_one(ops, b, c, d, d, d, d, ops2, a, GARBAGE_ADDR, d, d, d, d, preloaded)

    def preload_compute(self, ops: int, b: int, c: int, b_cols: int, b_rows: int, c_cols: int, c_rows: int,
                        ops2: int, a: int, dd: int, a_cols: int, a_rows: int, d_cols: int, d_rows: int,
                        preloaded: int) -> int:
        """A preload immediately followed by a compute (the compiler fuses the
        pair into one call) whose sizes are only known at run time."""
        d = self.dim
        if (b_cols == d and b_rows == d and c_cols == d and c_rows == d and a_cols == d and a_rows == d
                and (dd & 0xFFFFFFFF) == GARBAGE_ADDR):
            return self.block_pair(ops, b & 0xFFFFFFFF, c & 0xFFFFFFFF, ops2, a & 0xFFFFFFFF, preloaded)
        return self._pair_one_by_one(ops, b, c, b_cols, b_rows, c_cols, c_rows, ops2, a, dd, a_cols, a_rows,
                                     d_cols, d_rows, preloaded)

    def _pair_one_by_one(self, ops: int, b: int, c: int, b_cols: int, b_rows: int, c_cols: int, c_rows: int,
                         ops2: int, a: int, dd: int, a_cols: int, a_rows: int, d_cols: int, d_rows: int,
                         preloaded: int) -> int:
        self.preload(ops, b, c, b_cols, b_rows, c_cols, c_rows)
        try:
            if preloaded:
                self.compute_preloaded(ops2, a, dd, a_cols, a_rows, d_cols, d_rows)
            else:
                self.compute_accumulated(ops2, a, dd, a_cols, a_rows, d_cols, d_rows)
        except SimError as e:
            e.fused_second = True  # the error belongs to the compute's line
            raise
        return 0

    compute_preloaded = _compute_method("compute_preloaded", True)
    compute_accumulated = _compute_method("compute_accumulated", False)

    def _compute(self, a: int, dd: int, a_cols: int, a_rows: int, d_cols: int, d_rows: int,
                 preloaded: bool, fsm: bool) -> None:
        name = "compute_preloaded" if preloaded else "compute_accumulated"
        if self.out is None:
            raise UnsupportedError(f"{name}: no preload since the previous compute (every compute needs a "
                                   f"preload naming its output)")
        d = self.dim
        a &= 0xFFFFFFFF
        dd &= 0xFFFFFFFF
        c, c_cols, c_rows = self.out
        if a != GARBAGE_ADDR:
            self.macs += a_rows * a_cols * c_cols
        self._barrier()
        if self.w_row is not None:
            self.weights = self.sp[self.w_row:self.w_row + d].astype(np.int32)
            self.w_row = None
        reads = []
        if a == GARBAGE_ADDR:
            amat = np.zeros((d, d), np.int32)
        else:
            self._rows_cols(name + " (A)", a_rows, a_cols, d)
            arow = a & ROWMASK
            st = self.a_stride
            end = arow + (a_rows - 1) * st + 1
            if a >> 31:
                raise LocalAddressError(f"{name}: A must be in the scratchpad, got an accumulator address")
            self._sp_range(name, arow, end)
            src = self.sp[arow:end:st, :a_cols]
            if a_rows == d and a_cols == d:
                amat = src.astype(np.int32)
            else:
                amat = np.zeros((d, d), np.int32)
                amat[:a_rows, :a_cols] = src
            reads.append((0, arow, end))
        bank_conflict = False
        if dd != GARBAGE_ADDR:
            self._rows_cols(name + (" (B)" if self.dataflow == 0 else " (D)"), d_rows, d_cols, d)
            drow = dd & ROWMASK
            if dd >> 31:
                self._acc_range(name, drow, drow + d_rows)
                dsrc = self.acc[drow:drow + d_rows, :d_cols]
                reads.append((1, drow, drow + d_rows))
            else:
                self._sp_range(name, drow, drow + d_rows)
                dsrc = self.sp[drow:drow + d_rows, :d_cols]
                reads.append((0, drow, drow + d_rows))
                if a != GARBAGE_ADDR and self.cfg.sp_bank(drow) == self.cfg.sp_bank(a & ROWMASK):
                    bank_conflict = True
            dmat = np.zeros((d, d), np.int32)
            dmat[:d_rows, :d_cols] = dsrc
        else:
            dmat = None
        if self.dataflow == 1:  # WS: C = A x weights (+ D)
            res = amat @ self.weights
            if dmat is not None:
                res += dmat
        else:
            # OS: the second operand is B; partial sums stay in the array: a
            # preloaded compute starts from the preload's D, an accumulated one
            # adds to what the array holds. Rounding shift and activation on the way out.
            prod = amat @ (dmat if dmat is not None else np.zeros((d, d), np.int32))
            self.os_sums = (self.os_d + prod) if preloaded else (self.os_sums + prod)
            res = self.os_sums
            if self.ex_shift:
                sh = self.ex_shift
                res = (res.astype(np.int64) + (1 << (sh - 1))) >> sh
                res = res.astype(np.int32)
            if self.ex_act == 1:
                res = np.maximum(res, 0)
        self.out = None
        if c != GARBAGE_ADDR:
            crow = c & ROWMASK
            if c >> 31:
                dst = self.acc[crow:crow + c_rows, :c_cols]
                if (c >> 30) & 1:
                    dst += res[:c_rows, :c_cols]
                else:
                    dst[...] = res[:c_rows, :c_cols]
                self.acc_touch.add((crow, crow + c_rows))
            else:
                self._sp_write(crow, crow + c_rows)
                self.sp[crow:crow + c_rows, :c_cols] = np.clip(res[:c_rows, :c_cols], -128, 127)
                self.sp_touch.add((crow, crow + c_rows))
        if self.tm is not None:
            self.tm.command(name, "execute", tuple(reads), (), 0, a_rows if a != GARBAGE_ADDR else d, a_cols,
                            fsm, bank_conflict)

    # ---- synchronization ---------------------------------------------------
    def fence(self, ops: int) -> int:
        self._count("fence", ops)
        self._barrier()
        if self.tm is not None:
            self.tm.fence()
        return 0

    def flush(self, ops: int, skip: int) -> int:
        self._count("flush", ops)
        return 0

    # ---- runtime allocators ------------------------------------------------
    def gemm_malloc(self, nbytes: int) -> int:
        return self.sp_alloc.alloc(nbytes)

    def gemm_free(self, addr: int) -> None:
        self.sp_alloc.free(addr & ROWMASK if addr < (1 << 32) else addr)

    def gemm_acc_malloc(self, nbytes: int) -> int:
        return self.acc_alloc.alloc(nbytes) | 0x80000000

    def gemm_acc_free(self, addr: int) -> None:
        if not (addr & 0x80000000):
            raise LocalAddressError(f"gemm_acc_free of {addr:#x}, which is not an accumulator address")
        self.acc_alloc.free(addr & ROWMASK)

    # ---- the hardware FSM --------------------------------------------------
    def loop_ws(self, ops: int, *args: int) -> int:
        self._count("loop_ws", ops)
        from .loop_ws import run_loop_ws
        run_loop_ws(self, *args)
        return 0

    def loop_conv_ws(self, ops: int, *args: int) -> int:
        self._count("loop_conv_ws", ops)
        from .loop_conv_ws import run_loop_conv_ws
        run_loop_conv_ws(self, *args)
        return 0

    # ---- report helpers ----------------------------------------------------
    @staticmethod
    def _union(ranges: set[tuple[int, int]]) -> int:
        total, cur_a, cur_b = 0, None, None
        for a, b in sorted(ranges):
            if cur_b is None or a > cur_b:
                if cur_b is not None:
                    total += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_b is not None:
            total += cur_b - cur_a
        return total

    def rows_used(self) -> tuple[int, int]:
        return self._union(self.sp_touch), self._union(self.acc_touch)


def check_runtime(cond: Any, line: int) -> None:
    if not cond:
        raise RuntimeCError(f"assertion failed (line {line})")
