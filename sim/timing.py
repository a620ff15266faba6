"""Cycle-approximate timing model of Gemmini (GEMMINI.md section 4).

Event/scoreboard style: the functional machine reports every instruction in
program order and the model computes, from constraints only, when the
instruction enters the reservation station, when its unit starts it and when
it completes. There is no cycle-by-cycle loop, so one ``command()`` costs a
couple of microseconds of Python.

The pieces (every number comes from :class:`gemmini_isa.GemminiConfig`):

CPU
    ``cpu(ops)`` advances the CPU by ``ops * cpu_op_cycles``; each RoCC
    command costs ``cpu_rocc_cycles``. Commands enter the reservation station
    (RS) one per cycle in program order. The RS has a class per unit (load /
    execute / store with ``rs_load`` / ``rs_execute`` / ``rs_store``
    entries, config_* commands included); when the class is full the issuer
    stalls until the earliest entry of the class retires (an entry retires
    when its command completes). Tracked exactly with one min-heap of retire
    times per class.
Dependencies
    Per local row, per space (0 = scratchpad, 1 = accumulator; they never
    alias) three tables hold: when the last *load* writing the row completed,
    when the last *execute* writing it landed its results, and when the last
    reader (execute or store) finished reading it. An execute waits for loads
    writing what it reads or writes (RAW/WAW) and for stores still reading
    the rows it writes (WAR); a load waits for executes/stores reading or
    writing its destination (WAR/WAW); a store waits for the execute (or
    accumulator load) that produced its rows. Execute-after-execute is not a
    dependency: the array pipeline keeps its own order.
Load unit (DMA)
    One row request per cycle (a row is one request up to
    ``dma_max_request_bytes``), data back at ``dma_beat_bytes`` per cycle on a
    shared read bus after ``dram_latency``; at most ``dma_mvins_in_flight``
    mvins in flight. Zero-fill mvins write one local row per cycle with no
    DRAM traffic. config_ld takes ``config_unit_cycles``.
Execute unit
    WS array. A preload shifts DIM weight rows in (``dim`` cycles; a GARBAGE
    B costs ``preload_garbage_cycles``) into the shadow buffer, which frees
    once the previous compute has started, so a preload overlaps the previous
    compute: a steady preload+compute stream costs ``dim`` cycles per block.
    A compute streams its A rows (one per cycle, times
    ``bank_conflict_factor`` on a bank conflict) and lands its results in C
    ``exec_latency`` cycles after its last row. config_ex waits for the array
    to drain, then takes ``config_ex_cycles``.
Store unit
    mvout reads one local row per cycle through ``store_pipeline`` cycles and
    writes ``dma_beat_bytes`` per cycle; stores are serialized; each completes
    ``store_ack_latency`` after its last beat.
Fence
    The CPU waits for everything issued to complete, then pays
    ``fence_round_trip``.
FSM (LOOP_WS)
    Commands with ``fsm=True`` cost no CPU time. The FSM has one issue
    timeline per class (its load / execute / store sub-machines) at
    ``fsm_issue_cycles`` per command, each pausing while its RS class is full.
    A *run* starts at :meth:`TimingModel.fsm_begin`, or automatically at the
    first ``fsm=True`` command after a non-FSM command, a ``cpu(ops > 0)``
    call or a fence. Starting a run costs the CPU ``fsm_setup_cycles`` RoCC
    commands (``fsm_setup_cycles * cpu_rocc_cycles`` cycles, the config doc
    counts commands); the run's commands enter the RS no earlier than that.
    Callers that issue two ``gemmini_loop_ws`` back to back with nothing in
    between should call ``fsm_begin()`` for each.

Stall causes in the report:
``rs_full``     cycles the CPU (or an FSM sub-machine) waited for an RS entry;
``cpu_issue``   cycles a unit was free but its next command had not arrived yet;
``dependency``  cycles a unit was free, had its command, and waited for a
                dependency (after the command arrived);
``fence``       CPU cycles spent in fences (waiting plus the round trip).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from heapq import heappush, heapreplace
from typing import Any, Iterable

from gemmini_isa.config import GemminiConfig
from gemmini_isa.config import default as _default_config

__all__ = ["TimingModel", "TimingReport", "UNITS", "STALL_CAUSES"]

UNITS = ("cpu", "load", "execute", "store")
STALL_CAUSES = ("dependency", "rs_full", "cpu_issue", "fence")

# RS classes
_LOAD, _EXEC, _STORE = 0, 1, 2
_CLASS_NAMES = ("load", "execute", "store")
_UNIT_CLASS = {"load": _LOAD, "execute": _EXEC, "store": _STORE}

# op kinds
_K_PRELOAD, _K_COMPUTE, _K_CONFIG_EX, _K_EX_OTHER = 1, 2, 3, 4
_K_MVIN, _K_MVIN_ZERO, _K_LD_OTHER = 5, 6, 7
_K_MVOUT, _K_ST_OTHER = 8, 9
_OPS = {
    "preload": (_K_PRELOAD, _EXEC),
    "compute_preloaded": (_K_COMPUTE, _EXEC),
    "compute_accumulated": (_K_COMPUTE, _EXEC),
    "config_ex": (_K_CONFIG_EX, _EXEC),
    "mvin": (_K_MVIN, _LOAD),
    "mvin_acc": (_K_MVIN, _LOAD),
    "mvin_zero": (_K_MVIN_ZERO, _LOAD),
    "config_ld": (_K_LD_OTHER, _LOAD),
    "mvout": (_K_MVOUT, _STORE),
    "config_st": (_K_ST_OTHER, _STORE),
}
_OTHER_KIND = (_K_LD_OTHER, _K_EX_OTHER, _K_ST_OTHER)


# ---- the row scoreboard -------------------------------------------------
# A table is, per space, a list `blk` with the max over each 16-row block and a
# list `fine` holding either None (all 16 rows equal blk[k]) or the 16 row
# values. Updates are max-updates ("done after every earlier one"), so blk is
# exact; aligned 16-row ranges (the common case) touch one list slot.

def _qmax(blk: list, fine: list, a: int, b: int) -> float:
    """Max of rows [a, b) of a blocked table."""
    m = 0.0
    k = a >> 4
    kend = (b - 1) >> 4
    while k <= kend:
        lo = k << 4
        hi = lo + 16
        f = fine[k]
        if f is None or (a <= lo and b >= hi):
            v = blk[k]
        else:
            v = max(f[(a - lo if a > lo else 0):(b - lo if b < hi else 16)])
        if v > m:
            m = v
        k += 1
    return m


def _umax(blk: list, fine: list, a: int, b: int, t: float) -> None:
    """Rows [a, b) of a blocked table become max(row, t)."""
    k = a >> 4
    kend = (b - 1) >> 4
    while k <= kend:
        lo = k << 4
        hi = lo + 16
        bv = blk[k]
        f = fine[k]
        if a <= lo and b >= hi:
            if t >= bv:
                blk[k] = t
                fine[k] = None
            elif f is not None:
                fine[k] = [x if x > t else t for x in f]
        else:
            s = a - lo if a > lo else 0
            e = b - lo if b < hi else 16
            if t > bv:
                if f is None:
                    f = fine[k] = [bv] * 16
                f[s:e] = [t] * (e - s)
                blk[k] = t
            elif f is not None:
                for i in range(s, e):
                    if f[i] < t:
                        f[i] = t
        k += 1


def _table(rows: int) -> tuple[list, list]:
    n = (rows + 15) >> 4
    return [0.0] * n, [None] * n



@dataclass
class TimingReport:
    """What the timing model measured.

    ``units[name]`` has ``busy`` and ``idle`` cycles (busy = union of the
    intervals the unit was working; for the CPU the cycles it spent on scalar
    ops and RoCC issue), plus for load/execute/store ``commands`` and the
    unit's share of ``dependency`` / ``cpu_issue`` stalls.
    """

    cycles: int
    units: dict[str, dict[str, int]] = field(default_factory=dict)
    stalls: dict[str, int] = field(default_factory=dict)
    dram_bytes_read: int = 0
    dram_bytes_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ceil(x: float) -> int:
    return int(math.ceil(x - 1e-9))


class TimingModel:
    """Scoreboard timing model; see the module docstring for the rules."""

    def __init__(self, config: GemminiConfig | None = None):
        cfg = config if config is not None else _default_config()
        self.config = cfg
        # ---- parameters, as plain numbers
        self._rocc = float(cfg.cpu_rocc_cycles)
        self._op = float(cfg.cpu_op_cycles)
        self._rs_cap = (cfg.rs_load, cfg.rs_execute, cfg.rs_store)
        self._fsm_issue = float(cfg.fsm_issue_cycles)
        self._fsm_setup = float(cfg.fsm_setup_cycles) * self._rocc
        self._fence_rt = float(cfg.fence_round_trip)
        self._dim = cfg.dim
        self._exec_rpc = float(cfg.exec_rows_per_cycle)
        self._preload_cycles = cfg.dim / self._exec_rpc
        self._garbage_cycles = float(cfg.preload_garbage_cycles)
        self._exec_lat = float(cfg.exec_latency)
        self._bank_factor = float(cfg.bank_conflict_factor)
        self._config_ex = float(cfg.config_ex_cycles)
        self._config_unit = float(cfg.config_unit_cycles)
        self._beat = cfg.dma_beat_bytes
        self._max_req = cfg.dma_max_request_bytes
        self._dram_lat = float(cfg.dram_latency)
        self._n_slots = max(1, cfg.dma_mvins_in_flight)
        self._st_pipe = float(cfg.store_pipeline)
        self._st_rpc = float(cfg.store_rows_per_cycle)
        self._st_ack = float(cfg.store_ack_latency)
        # ---- per-row scoreboard, per space (0 scratchpad, 1 accumulator)
        sp, acc = cfg.sp_rows, cfg.acc_rows
        (s1, s2), (a1, a2) = _table(sp), _table(acc)
        self._wld_b, self._wld_f = (s1, a1), (s2, a2)   # last load write completed
        (s1, s2), (a1, a2) = _table(sp), _table(acc)
        self._wex_b, self._wex_f = (s1, a1), (s2, a2)   # last execute result landed
        (s1, s2), (a1, a2) = _table(sp), _table(acc)
        self._rd_b, self._rd_f = (s1, a1), (s2, a2)     # last read (execute/store) finished
        # ---- CPU / RS
        self._cpu_t = 0.0
        self._cpu_busy = 0.0
        self._last_rs_in = -1.0
        self._heaps: tuple[list[float], list[float], list[float]] = ([], [], [])
        self._in_fsm = False
        self._fsm_next = [0.0, 0.0, 0.0]
        # ---- load unit
        self._ld_req_free = 0.0
        self._ld_bus_free = 0.0
        self._ld_slots = [0.0] * self._n_slots
        self._ld_slot_i = 0
        # ---- execute unit
        self._pre_free = 0.0      # last preload finished shifting weights in
        self._comp_start = 0.0    # last compute started (frees the weight shadow buffer)
        self._comp_free = 0.0     # last compute streamed its last row
        self._ex_land = 0.0       # last result landed
        self._pending_c: Iterable = ()
        # ---- store unit
        self._st_free = 0.0
        # ---- accounting
        self._busy = [0.0, 0.0, 0.0]
        self._busy_until = [0.0, 0.0, 0.0]
        self._n_cmd = [0, 0, 0]
        self._st_dep = [0.0, 0.0, 0.0]
        self._st_issue = [0.0, 0.0, 0.0]
        self._stall_rs = 0.0
        self._stall_fence = 0.0
        self._last_end = 0.0
        self._dram_rd = 0
        self._dram_wr = 0

    # ------------------------------------------------------------------ CPU
    def cpu(self, ops: int) -> None:
        """The CPU executed `ops` scalar operations since the previous call."""
        if ops:
            c = ops * self._op
            self._cpu_t += c
            self._cpu_busy += c
            self._in_fsm = False

    @property
    def now(self) -> float:
        """Current CPU time (cycles)."""
        return self._cpu_t

    def fsm_begin(self) -> None:
        """Start an FSM (LOOP_WS) run: the CPU pays the setup commands."""
        setup = self._fsm_setup
        self._cpu_t += setup
        self._cpu_busy += setup
        start = self._cpu_t
        if self._last_rs_in + 1.0 > start:
            start = self._last_rs_in + 1.0
        nxt = self._fsm_next
        for c in (0, 1, 2):
            if nxt[c] < start:
                nxt[c] = start
        self._in_fsm = True

    def fence(self) -> float:
        """The CPU waits for every issued command to complete, then pays the
        round trip. Returns the CPU time after the fence."""
        self._in_fsm = False
        done = self._last_end
        cpu = self._cpu_t
        if done < cpu:
            done = cpu
        self._stall_fence += done - cpu + self._fence_rt
        self._cpu_t = done + self._fence_rt
        return self._cpu_t

    # -------------------------------------------------------------- command
    def command(self, op: str, unit: str, reads: Iterable = (), writes: Iterable = (),
                dram_bytes: int = 0, rows: int = 0, cols: int = 0,
                fsm: bool = False, bank_conflict: bool = False) -> float:
        """Time one Gemmini instruction; returns when it completes (retires).

        `reads` / `writes` are ``(space, start_row, end_row)`` tuples. Ops
        that are not Gemmini unit commands (e.g. "flush", unit "sync") only
        cost the CPU its RoCC issue.
        """
        kc = _OPS.get(op)
        if kc is None:
            cls = _UNIT_CLASS.get(unit)
            if cls is None:  # flush and friends: CPU only
                if not fsm:
                    self._in_fsm = False
                    self._cpu_t += self._rocc
                    self._cpu_busy += self._rocc
                return self._cpu_t
            kind = _OTHER_KIND[cls]
        else:
            kind, cls = kc

        # ---- into the reservation station
        if fsm:
            if not self._in_fsm:
                self.fsm_begin()
            t = self._fsm_next[cls]
        else:
            self._in_fsm = False
            rocc = self._rocc
            self._cpu_busy += rocc
            t = self._cpu_t + rocc
            r1 = self._last_rs_in + 1.0
            if r1 > t:
                t = r1
        heap = self._heaps[cls]
        full = len(heap) >= self._rs_cap[cls]
        if full:
            h = heap[0]
            if h > t:
                self._stall_rs += h - t
                t = h
        if fsm:
            self._fsm_next[cls] = t + self._fsm_issue
        else:
            self._cpu_t = t
        if t > self._last_rs_in:
            self._last_rs_in = t

        # ---- dependencies (row scoreboard, fast path: one aligned 16-row block)
        # and the unit's own availability
        dep = 0.0
        if cls == _EXEC:
            if kind == _K_COMPUTE:
                T = self._wld_b
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        m = T[sp][a >> 4]
                    elif b > a:
                        m = _qmax(T[sp], self._wld_f[sp], a, b)
                    else:
                        continue
                    if m > dep:
                        dep = m
                cw = writes if writes else self._pending_c
                self._pending_c = ()
                R = self._rd_b
                for sp, a, b in cw:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = T[sp][k]
                        m2 = R[sp][k]
                    elif b > a:
                        m = _qmax(T[sp], self._wld_f[sp], a, b)
                        m2 = _qmax(R[sp], self._rd_f[sp], a, b)
                    else:
                        continue
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
                avail = self._comp_free
                if self._pre_free > avail:
                    avail = self._pre_free
            elif kind == _K_PRELOAD:
                T = self._wld_b
                nb = 0
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        m = T[sp][a >> 4]
                    elif b > a:
                        m = _qmax(T[sp], self._wld_f[sp], a, b)
                    else:
                        continue
                    nb += b - a
                    if m > dep:
                        dep = m
                self._pending_c = writes
                avail = self._pre_free
                if self._comp_start > avail:
                    avail = self._comp_start
            elif kind == _K_CONFIG_EX:
                avail = self._ex_land
                if self._pre_free > avail:
                    avail = self._pre_free
                if self._comp_free > avail:
                    avail = self._comp_free
            else:
                avail = self._comp_free
                if self._pre_free > avail:
                    avail = self._pre_free
        elif cls == _LOAD:
            if kind != _K_LD_OTHER:
                T = self._wex_b
                R = self._rd_b
                nloc = 0
                for sp, a, b in writes:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = T[sp][k]
                        m2 = R[sp][k]
                    elif b > a:
                        m = _qmax(T[sp], self._wex_f[sp], a, b)
                        m2 = _qmax(R[sp], self._rd_f[sp], a, b)
                    else:
                        continue
                    nloc += b - a
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
            avail = self._ld_req_free
            if kind == _K_MVIN:
                s = self._ld_slots[self._ld_slot_i]
                if s > avail:
                    avail = s
        else:  # store
            if kind == _K_MVOUT:
                T = self._wex_b
                W = self._wld_b
                nloc = 0
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = T[sp][k]
                        m2 = W[sp][k]
                    elif b > a:
                        m = _qmax(T[sp], self._wex_f[sp], a, b)
                        m2 = _qmax(W[sp], self._wld_f[sp], a, b)
                    else:
                        continue
                    nloc += b - a
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
            avail = self._st_free

        # ---- start, with the unit's idle gap attributed to its cause
        start = avail
        if t > start or dep > start:
            if t >= dep:
                self._st_issue[cls] += t - avail
                start = t
            else:
                if t > avail:
                    self._st_issue[cls] += t - avail
                    self._st_dep[cls] += dep - t
                else:
                    self._st_dep[cls] += dep - avail
                start = dep

        # ---- the unit's work and the scoreboard updates
        if cls == _EXEC:
            if kind == _K_COMPUTE:
                cost = (rows if rows > 0 else self._dim) / self._exec_rpc
                if bank_conflict:
                    cost *= self._bank_factor
                end = start + cost
                land = end + self._exec_lat
                self._comp_start = start
                self._comp_free = end
                if land > self._ex_land:
                    self._ex_land = land
                R = self._rd_b
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        blk = R[sp]
                        k = a >> 4
                        if end >= blk[k]:
                            blk[k] = end
                            self._rd_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(R[sp], self._rd_f[sp], a, b, end)
                T = self._wex_b
                for sp, a, b in cw:
                    if b - a == 16 and not a & 15:
                        blk = T[sp]
                        k = a >> 4
                        if land >= blk[k]:
                            blk[k] = land
                            self._wex_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(T[sp], self._wex_f[sp], a, b, land)
                retire = land
            elif kind == _K_PRELOAD:
                end = start + (self._preload_cycles if nb else self._garbage_cycles)
                self._pre_free = end
                if nb:
                    R = self._rd_b
                    for sp, a, b in reads:
                        if b - a == 16 and not a & 15:
                            blk = R[sp]
                            k = a >> 4
                            if end >= blk[k]:
                                blk[k] = end
                                self._rd_f[sp][k] = None
                                continue
                        if b > a:
                            _umax(R[sp], self._rd_f[sp], a, b, end)
                retire = end
            elif kind == _K_CONFIG_EX:
                end = start + self._config_ex
                self._pre_free = self._comp_free = self._comp_start = end
                retire = end
            else:
                end = start + self._config_unit
                self._pre_free = self._comp_free = self._comp_start = end
                retire = end
        elif cls == _LOAD:
            if kind == _K_MVIN:
                reqs = rows if rows > 0 else 1
                r2 = -(-dram_bytes // self._max_req)
                if r2 > reqs:
                    reqs = r2
                ds = start + self._dram_lat
                if self._ld_bus_free > ds:
                    ds = self._ld_bus_free
                end = ds + -(-dram_bytes // self._beat)
                e2 = start + reqs + self._dram_lat
                if e2 > end:
                    end = e2
                self._ld_req_free = start + reqs
                self._ld_bus_free = end
                i = self._ld_slot_i
                self._ld_slots[i] = end
                i += 1
                self._ld_slot_i = 0 if i == self._n_slots else i
                self._dram_rd += dram_bytes
            elif kind == _K_MVIN_ZERO:
                end = start + (nloc if nloc else (rows if rows > 0 else 1))
                self._ld_req_free = end
            else:
                end = start + self._config_unit
                self._ld_req_free = end
            if kind != _K_LD_OTHER:
                W = self._wld_b
                for sp, a, b in writes:
                    if b - a == 16 and not a & 15:
                        blk = W[sp]
                        k = a >> 4
                        if end >= blk[k]:
                            blk[k] = end
                            self._wld_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(W[sp], self._wld_f[sp], a, b, end)
            retire = end
        else:
            if kind == _K_MVOUT:
                rc = (nloc if nloc else (rows if rows > 0 else 1)) / self._st_rpc
                beats = -(-dram_bytes // self._beat)
                pipe = self._st_pipe
                end = start + pipe + (rc if rc > beats else beats)
                read_done = end - pipe
                if start + rc > read_done:
                    read_done = start + rc
                self._st_free = end
                R = self._rd_b
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        blk = R[sp]
                        k = a >> 4
                        if read_done >= blk[k]:
                            blk[k] = read_done
                            self._rd_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(R[sp], self._rd_f[sp], a, b, read_done)
                self._dram_wr += dram_bytes
                retire = end + self._st_ack
            else:
                end = start + self._config_unit
                self._st_free = end
                retire = end

        # ---- accounting
        bu = self._busy_until[cls]
        if end > bu:
            self._busy[cls] += end - (start if start > bu else bu)
            self._busy_until[cls] = end
        self._n_cmd[cls] += 1
        if full:
            heapreplace(heap, retire)
        else:
            heappush(heap, retire)
        if retire > self._last_end:
            self._last_end = retire
        return retire

    # --------------------------------------------------------------- report
    @property
    def cycles(self) -> int:
        """Cycles until everything issued so far (and the CPU) has finished."""
        t = self._last_end if self._last_end > self._cpu_t else self._cpu_t
        return _ceil(t)

    def report(self) -> TimingReport:
        cycles = self.cycles
        cpu_busy = min(cycles, _ceil(self._cpu_busy))
        units = {"cpu": {"busy": cpu_busy, "idle": cycles - cpu_busy}}
        for c, name in enumerate(_CLASS_NAMES):
            busy = min(cycles, _ceil(self._busy[c]))
            units[name] = {
                "busy": busy,
                "idle": cycles - busy,
                "commands": self._n_cmd[c],
                "dependency": _ceil(self._st_dep[c]),
                "cpu_issue": _ceil(self._st_issue[c]),
            }
        stalls = {
            "dependency": _ceil(sum(self._st_dep)),
            "rs_full": _ceil(self._stall_rs),
            "cpu_issue": _ceil(sum(self._st_issue)),
            "fence": _ceil(self._stall_fence),
        }
        return TimingReport(cycles=cycles, units=units, stalls=stalls,
                            dram_bytes_read=int(self._dram_rd),
                            dram_bytes_written=int(self._dram_wr))


def _bench(n: int = 100_000) -> float:
    """Microseconds per command on a synthetic tiled-matmul stream."""
    import time

    tm = TimingModel()
    cmds = []
    for i in range(n // 5):
        a = (i * 16) % 8192
        b = 8192 + (i * 16) % 8192
        c = (i * 16) % 1024
        cmds.append(("mvin", "load", (), ((0, a, a + 16),), 256, 16, 16))
        cmds.append(("mvin", "load", (), ((0, b, b + 16),), 256, 16, 16))
        cmds.append(("preload", "execute", ((0, b, b + 16),), ((1, c, c + 16),), 0, 16, 16))
        cmds.append(("compute_preloaded", "execute", ((0, a, a + 16),), (), 0, 16, 16))
        cmds.append(("mvout", "store", ((1, c, c + 16),), (), 256, 16, 16))
    command, cpu = tm.command, tm.cpu
    t0 = time.perf_counter()
    for op, unit, r, w, nb, rows, cols in cmds:
        cpu(3)
        command(op, unit, r, w, nb, rows, cols)
    dt = time.perf_counter() - t0
    return dt / len(cmds) * 1e6


if __name__ == "__main__":  # pragma: no cover
    print(f"{_bench():.2f} us per command (cpu(3) + command)")
