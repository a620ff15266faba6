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
    dependency: the array pipeline keeps its own order. Updates are
    max-updates (a row is free once *every* earlier user is done). The tables
    keep one value per 16-row block plus per-row detail only for blocks that
    were touched unaligned, so aligned 16-row operands cost one list slot.
Load unit (DMA)
    One row request per cycle (a row is one request up to
    ``dma_max_request_bytes``), data back at ``dma_beat_bytes`` per cycle on a
    shared read bus after ``dram_latency``; at most ``dma_mvins_in_flight``
    mvins in flight. At most ``dma_max_inflight`` requests are in flight, so
    a stream of mvins gets at most that many requests per ``dram_latency``
    cycles (modelled as the read bus staying occupied ``requests *
    dram_latency / dma_max_inflight`` cycles when that exceeds the beats: an
    isolated mvin still takes latency + beats). With the defaults a stream
    of 16 x 64 int8 mvins is window-bound (12.8 B/cycle), of 16 x 16 ones
    much more so (3.2 B/cycle): wide rows matter. Zero-fill mvins write one
    local row per cycle with no DRAM traffic. config_ld takes
    ``config_unit_cycles``.
Execute unit
    WS array. A preload shifts DIM weight rows in (``dim`` cycles; a GARBAGE
    B costs ``preload_garbage_cycles``) into the shadow buffer, which frees
    once the previous compute has started, so a preload overlaps the previous
    compute: a steady preload+compute stream costs ``dim`` cycles per block.
    A compute streams its A rows (one per cycle, times
    ``bank_conflict_factor`` when the machine flags a conflict between its
    own operands, A and D) and lands its results in C ``exec_latency``
    cycles after its last row. Bank conflicts across the overlap: a preload
    whose B rows are in a scratchpad bank (``row // sp_bank_rows``) that the
    still-streaming previous compute reads its A from shares that bank's one
    read port, so the overlapped part of the preload costs
    ``bank_conflict_factor`` x (with 2.0 a stream of same-bank pairs runs at
    2 x dim cycles per block; A and B in different banks keep dim). config_ex
    waits for the array to drain, then takes ``config_ex_cycles``.
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
    A *run* starts at :meth:`TimingModel.fsm_begin` (``sim/loop_ws.py`` calls
    it once per ``gemmini_loop_ws``), or automatically at the first
    ``fsm=True`` command after a non-FSM command, a ``cpu(ops > 0)`` call, a
    fence or ``fsm_end()``. Starting a run costs the CPU ``fsm_setup_cycles``
    RoCC commands (``fsm_setup_cycles * cpu_rocc_cycles`` cycles: the config
    doc counts commands); the run's commands enter the RS no earlier than
    that. Each sub-machine continues from where the previous run left it, so
    consecutive runs overlap (next tile's loads during this tile's compute).
    CPU commands after a run enter the RS after the run's last command.

Stall causes in the report:
``rs_full``     cycles the CPU waited for an RS entry (FSM sub-machines that
                run ahead and wait for entries are not counted);
``cpu_issue``   cycles a unit was free but its next command had not arrived yet;
``dependency``  cycles a unit was free, had its command, and waited for a
                dependency (after the command arrived);
``fence``       CPU cycles spent in fences (waiting plus the round trip).
Besides, ``units["execute"]["bank_conflict"]`` counts the execute cycles
added by bank conflicts, and ``units["cpu"]`` splits the CPU's busy cycles
into ``rocc`` (command issue) and ``scalar`` (scalar operations).

The default parameters are calibrated (``benchmarks/calibrate.py``) so the
four baselines reproduce the published FireSim speedups over the software
library within 30% (``benchmarks/fidelity.py`` prints the table).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from heapq import heapreplace
from typing import Any

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
_KIND = {
    "preload": _K_PRELOAD,
    "compute_preloaded": _K_COMPUTE,
    "compute_accumulated": _K_COMPUTE,
    "config_ex": _K_CONFIG_EX,
    "mvin": _K_MVIN,
    "mvin_acc": _K_MVIN,
    "mvin_zero": _K_MVIN_ZERO,
    "config_ld": _K_LD_OTHER,
    "mvout": _K_MVOUT,
    "config_st": _K_ST_OTHER,
}
_CLASS_OF = (None, _EXEC, _EXEC, _EXEC, _EXEC, _LOAD, _LOAD, _LOAD, _STORE, _STORE)
_OTHER_KIND = (_K_LD_OTHER, _K_EX_OTHER, _K_ST_OTHER)


# ---- the row scoreboard -------------------------------------------------
# A table is, per space, a list `blk` with the max over each 16-row block and a
# list `fine` holding either None (all 16 rows equal blk[k]) or the 16 row
# values. Updates are max-updates ("done after every earlier one"), so blk is
# exact; aligned 16-row ranges (the common case) touch one list slot.

def _qmax(blk: list, fine: list, a: int, b: int) -> float:
    """Max of rows [a, b) of a blocked table."""
    m = 0.0
    if not a & 15 and not b & 15:  # whole blocks: blk is exact
        for v in blk[a >> 4:b >> 4]:
            if v > m:
                m = v
        return m
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
    if not a & 15 and not b & 15:  # whole blocks
        for k in range(a >> 4, b >> 4):
            if t >= blk[k]:
                blk[k] = t
                fine[k] = None
            elif fine[k] is not None:
                fine[k] = [x if x > t else t for x in fine[k]]
        return
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
    unit's share of ``dependency`` / ``cpu_issue`` stalls. The CPU also has
    ``commands`` (RoCC commands it issued; the FSM's are not counted),
    ``rocc`` / ``scalar`` (its busy cycles split into command issue and
    scalar operations, the FSM setup counted in neither) and the cycles it
    stalled on a full reservation station (``rs_full``) and in fences
    (``fence``); the execute unit also has ``bank_conflict``: cycles its work
    took longer because two operands were read from one scratchpad bank.
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
    """Scoreboard timing model; see the module docstring for the rules.

    ``command``, ``cpu``, ``fence``, ``fsm_begin`` and ``fsm_end`` are
    closures over the model's state (built once per model, so a model does
    not pickle): closure-variable access keeps one ``command()`` at 1-2
    microseconds (``python -c "from sim.timing import _bench; print(_bench())"``).

    - ``cpu(ops)``: the CPU executed `ops` scalar operations since the previous call.
    - ``command(op, unit, reads, writes, dram_bytes, rows, cols, fsm=False,
      bank_conflict=False) -> float``: time one instruction; returns when it
      completes (retires). Ops that are not unit commands ("flush", unit
      "sync") cost the CPU one RoCC issue only.
    - ``fence() -> float``: the CPU waits for everything issued, then pays the
      round trip; returns the CPU time after the fence.
    - ``fsm_begin()``: start an FSM (LOOP_WS) run explicitly (the CPU pays the setup).
    - ``fsm_end()``: end it (optional: any CPU command, ``cpu(ops > 0)`` or
      fence ends it too); the next ``fsm=True`` command starts a new run.
    """

    def __init__(self, config: GemminiConfig | None = None):
        cfg = config if config is not None else _default_config()
        self.config = cfg
        (self.command, self.cpu, self.fence, self.fsm_begin, self.fsm_end,
         self._now, self._snapshot) = _build(cfg)

    @property
    def now(self) -> float:
        """Current CPU time (cycles)."""
        return self._now()

    @property
    def cycles(self) -> int:
        """Cycles until everything issued so far (and the CPU) has finished."""
        s = self._snapshot()
        return _ceil(max(s["cpu_t"], s["last_end"]))

    def report(self) -> TimingReport:
        s = self._snapshot()
        cycles = _ceil(max(s["cpu_t"], s["last_end"]))
        cpu_busy = min(cycles, _ceil(s["cpu_busy"]))
        n_rocc = int(s["n_rocc"])
        units = {"cpu": {"busy": cpu_busy, "idle": cycles - cpu_busy,
                         "commands": n_rocc,
                         "rocc": _ceil(n_rocc * float(self.config.cpu_rocc_cycles)),
                         "scalar": _ceil(s["cpu_ops"]),
                         "rs_full": _ceil(s["stall_rs"]),
                         "fence": _ceil(s["stall_fence"])}}
        for c, name in enumerate(_CLASS_NAMES):
            busy = min(cycles, _ceil(s["busy"][c]))
            units[name] = {
                "busy": busy,
                "idle": cycles - busy,
                "commands": s["n_cmd"][c],
                "dependency": _ceil(s["st_dep"][c]),
                "cpu_issue": _ceil(s["st_issue"][c]),
            }
        units["execute"]["bank_conflict"] = _ceil(s["bank_stall"])
        stalls = {
            "dependency": _ceil(sum(s["st_dep"])),
            "rs_full": _ceil(s["stall_rs"]),
            "cpu_issue": _ceil(sum(s["st_issue"])),
            "fence": _ceil(s["stall_fence"]),
        }
        return TimingReport(cycles=cycles, units=units, stalls=stalls,
                            dram_bytes_read=int(s["dram_rd"]),
                            dram_bytes_written=int(s["dram_wr"]))


def _build(cfg: GemminiConfig):
    """The model's state as closure variables and the functions over it."""
    # ---- parameters, as plain numbers
    rocc = float(cfg.cpu_rocc_cycles)
    op_cycles = float(cfg.cpu_op_cycles)
    fsm_issue = float(cfg.fsm_issue_cycles)
    fsm_setup = float(cfg.fsm_setup_cycles) * rocc
    fence_rt = float(cfg.fence_round_trip)
    dim = cfg.dim
    exec_rpc = float(cfg.exec_rows_per_cycle)
    preload_cycles = dim / exec_rpc
    garbage_cycles = float(cfg.preload_garbage_cycles)
    exec_lat = float(cfg.exec_latency)
    bank_factor = float(cfg.bank_conflict_factor)
    bank_rows = max(1, cfg.sp_bank_rows)
    config_ex_cycles = float(cfg.config_ex_cycles)
    config_unit = float(cfg.config_unit_cycles)
    beat = cfg.dma_beat_bytes
    max_req = cfg.dma_max_request_bytes
    dram_lat = float(cfg.dram_latency)
    req_occ = dram_lat / max(1, cfg.dma_max_inflight)   # window-limited cycles per request
    n_slots = max(1, cfg.dma_mvins_in_flight)
    st_pipe = float(cfg.store_pipeline)
    st_rpc = float(cfg.store_rows_per_cycle)
    st_ack = float(cfg.store_ack_latency)

    # ---- per-row scoreboard, per space (0 scratchpad, 1 accumulator)
    (s1, s2), (a1, a2) = _table(cfg.sp_rows), _table(cfg.acc_rows)
    wld_b, wld_f = (s1, a1), (s2, a2)   # last load write completed
    (s1, s2), (a1, a2) = _table(cfg.sp_rows), _table(cfg.acc_rows)
    wex_b, wex_f = (s1, a1), (s2, a2)   # last execute result landed
    (s1, s2), (a1, a2) = _table(cfg.sp_rows), _table(cfg.acc_rows)
    rd_b, rd_f = (s1, a1), (s2, a2)     # last read (execute/store) finished

    # ---- CPU / RS
    cpu_t = 0.0
    cpu_busy = 0.0
    last_rs_in = -1.0
    # retire times of the RS entries, per class: a min-heap kept at the class's
    # capacity (0.0 = a free entry), so a new command takes the slot of the
    # earliest retiring one
    heaps = tuple([0.0] * max(1, n) for n in (cfg.rs_load, cfg.rs_execute, cfg.rs_store))
    in_fsm = False
    fsm_next = [0.0, 0.0, 0.0]                    # FSM sub-machine issue timelines
    # ---- load unit
    ld_req_free = 0.0
    ld_bus_free = 0.0
    ld_slots = [0.0] * n_slots
    ld_slot_i = 0
    # ---- execute unit
    pre_free = 0.0      # last preload finished shifting weights in
    comp_start = 0.0    # last compute started (frees the weight shadow buffer)
    comp_banks = 0      # scratchpad banks the last compute reads (bit k = bank k % 64)
    comp_free = 0.0     # last compute streamed its last row
    ex_land = 0.0       # last result landed
    pending_c: Any = ()  # the C rows of the last preload, for its compute
    # ---- store unit
    st_free = 0.0
    # ---- accounting
    busy = [0.0, 0.0, 0.0]
    busy_until = [0.0, 0.0, 0.0]
    n_cmd = [0, 0, 0]
    st_dep = [0.0, 0.0, 0.0]
    st_issue = [0.0, 0.0, 0.0]
    stall_rs = 0.0
    stall_fence = 0.0
    bank_stall = 0.0    # execute cycles added by scratchpad bank conflicts
    cpu_ops_t = 0.0     # CPU cycles spent on scalar operations
    n_rocc = 0          # commands the CPU issued (RoCC), FSM ones excluded
    last_end = 0.0
    dram_rd = 0
    dram_wr = 0

    def cpu(ops: int) -> None:
        nonlocal cpu_t, cpu_busy, in_fsm, cpu_ops_t
        if ops:
            c = ops * op_cycles
            cpu_t += c
            cpu_busy += c
            cpu_ops_t += c
            in_fsm = False

    def fsm_begin() -> None:
        nonlocal cpu_t, cpu_busy, in_fsm
        cpu_t += fsm_setup
        cpu_busy += fsm_setup
        # each sub-machine continues from where the previous run left it
        # (consecutive runs overlap: the next tile's loads start as soon as
        # the load sub-machine is done with this tile's)
        for c in (0, 1, 2):
            if fsm_next[c] < cpu_t:
                fsm_next[c] = cpu_t
        in_fsm = True

    def fsm_end() -> None:
        nonlocal in_fsm
        in_fsm = False

    def fence() -> float:
        nonlocal cpu_t, in_fsm, stall_fence
        in_fsm = False
        done = last_end if last_end > cpu_t else cpu_t
        stall_fence += done - cpu_t + fence_rt
        cpu_t = done + fence_rt
        return cpu_t

    def now() -> float:
        return cpu_t

    def snapshot() -> dict:
        return dict(cpu_t=cpu_t, last_end=last_end, cpu_busy=cpu_busy, busy=list(busy),
                    n_cmd=list(n_cmd), st_dep=list(st_dep), st_issue=list(st_issue),
                    stall_rs=stall_rs, stall_fence=stall_fence, dram_rd=dram_rd, dram_wr=dram_wr,
                    bank_stall=bank_stall, cpu_ops=cpu_ops_t, n_rocc=n_rocc)

    # hot-path names as closure variables; in command() the op kinds and RS
    # classes are literals: classes 0 load, 1 execute, 2 store; kinds 1 preload,
    # 2 compute, 3 config_ex, 4 other execute, 5 mvin/mvin_acc, 6 mvin_zero,
    # 7 config_ld, 8 mvout, 9 config_st (the _K_* constants)
    kind_of = _KIND.get
    class_of = _CLASS_OF
    class_of_unit = _UNIT_CLASS.get
    other_kind = _OTHER_KIND
    hreplace = heapreplace

    def command(op: str, unit: str, reads: Any = (), writes: Any = (), dram_bytes: int = 0,
                rows: int = 0, cols: int = 0, fsm: bool = False, bank_conflict: bool = False) -> float:
        nonlocal cpu_t, cpu_busy, last_rs_in, in_fsm, ld_req_free, ld_bus_free, ld_slot_i
        nonlocal pre_free, comp_start, comp_free, comp_banks, ex_land, pending_c, st_free
        nonlocal bank_stall, n_rocc
        nonlocal stall_rs, last_end, dram_rd, dram_wr
        kind = kind_of(op)
        if kind is None:
            cls = class_of_unit(unit)
            if cls is None:  # flush and friends: CPU only
                if not fsm:
                    in_fsm = False
                    cpu_t += rocc
                    cpu_busy += rocc
                return cpu_t
            kind = other_kind[cls]
        else:
            cls = class_of[kind]

        # ---- into the reservation station
        if fsm:
            if not in_fsm:
                fsm_begin()
            t = fsm_next[cls]
        else:
            in_fsm = False
            cpu_busy += rocc
            n_rocc += 1
            t = cpu_t + rocc
            if last_rs_in + 1.0 > t:
                t = last_rs_in + 1.0
        heap = heaps[cls]
        h = heap[0]
        if h > t:
            if not fsm:  # an FSM sub-machine running ahead is not a stall
                stall_rs += h - t
            t = h
        if fsm:
            fsm_next[cls] = t + fsm_issue
        else:
            cpu_t = t
        if t > last_rs_in:
            last_rs_in = t

        # ---- dependencies (row scoreboard; fast path: one aligned 16-row block)
        # and the unit's own availability
        dep = 0.0
        if cls == 1:  # execute
            if kind == 2:  # compute
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        m = wld_b[sp][a >> 4]
                    elif b > a:
                        m = _qmax(wld_b[sp], wld_f[sp], a, b)
                    else:
                        continue
                    if m > dep:
                        dep = m
                cw = writes if writes else pending_c
                pending_c = ()
                for sp, a, b in cw:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = wld_b[sp][k]
                        m2 = rd_b[sp][k]
                    elif b > a:
                        m = _qmax(wld_b[sp], wld_f[sp], a, b)
                        m2 = _qmax(rd_b[sp], rd_f[sp], a, b)
                    else:
                        continue
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
                avail = comp_free if comp_free > pre_free else pre_free
            elif kind == 1:  # preload
                nb = 0
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        m = wld_b[sp][a >> 4]
                    elif b > a:
                        m = _qmax(wld_b[sp], wld_f[sp], a, b)
                    else:
                        continue
                    nb += b - a
                    if m > dep:
                        dep = m
                pending_c = writes
                avail = pre_free if pre_free > comp_start else comp_start
            elif kind == 3:  # config_ex
                avail = ex_land
                if pre_free > avail:
                    avail = pre_free
                if comp_free > avail:
                    avail = comp_free
            else:
                avail = comp_free if comp_free > pre_free else pre_free
        elif cls == 0:  # load
            if kind != 7:  # not config_ld
                nloc = 0
                for sp, a, b in writes:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = wex_b[sp][k]
                        m2 = rd_b[sp][k]
                    elif b > a:
                        m = _qmax(wex_b[sp], wex_f[sp], a, b)
                        m2 = _qmax(rd_b[sp], rd_f[sp], a, b)
                    else:
                        continue
                    nloc += b - a
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
            avail = ld_req_free
            if kind == 5:  # mvin
                s = ld_slots[ld_slot_i]
                if s > avail:
                    avail = s
        else:  # store
            if kind == 8:  # mvout
                nloc = 0
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        k = a >> 4
                        m = wex_b[sp][k]
                        m2 = wld_b[sp][k]
                    elif b > a:
                        m = _qmax(wex_b[sp], wex_f[sp], a, b)
                        m2 = _qmax(wld_b[sp], wld_f[sp], a, b)
                    else:
                        continue
                    nloc += b - a
                    if m2 > m:
                        m = m2
                    if m > dep:
                        dep = m
            avail = st_free

        # ---- start, with the unit's idle gap attributed to its cause
        start = avail
        if t > start or dep > start:
            if t >= dep:
                st_issue[cls] += t - avail
                start = t
            else:
                if t > avail:
                    st_issue[cls] += t - avail
                    st_dep[cls] += dep - t
                else:
                    st_dep[cls] += dep - avail
                start = dep

        # ---- the unit's work and the scoreboard updates (max-updates)
        if cls == 1:  # execute
            if kind == 2:  # compute
                cost = (rows if rows > 0 else dim) / exec_rpc
                if bank_conflict:
                    bank_stall += cost * bank_factor - cost
                    cost *= bank_factor
                end = start + cost
                retire = end + exec_lat   # results land
                comp_start = start
                comp_free = end
                mask = 0
                for sp, a, b in reads:
                    if not sp and b > a:
                        k = a // bank_rows
                        kend = (b - 1) // bank_rows
                        while k <= kend:
                            mask |= 1 << (k & 63)
                            k += 1
                comp_banks = mask
                if retire > ex_land:
                    ex_land = retire
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        blk = rd_b[sp]
                        k = a >> 4
                        if end >= blk[k]:
                            blk[k] = end
                            rd_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(rd_b[sp], rd_f[sp], a, b, end)
                for sp, a, b in cw:
                    if b - a == 16 and not a & 15:
                        blk = wex_b[sp]
                        k = a >> 4
                        if retire >= blk[k]:
                            blk[k] = retire
                            wex_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(wex_b[sp], wex_f[sp], a, b, retire)
            elif kind == 1:  # preload
                if nb:
                    end = start + preload_cycles
                    if comp_banks and comp_free > start:
                        # B streams in while the previous compute still reads its
                        # A: reads of one scratchpad bank in the same cycles
                        # serialize (the overlapped part costs bank_factor x)
                        mask = 0
                        for sp, a, b in reads:
                            if not sp and b > a:
                                k = a // bank_rows
                                kend = (b - 1) // bank_rows
                                while k <= kend:
                                    mask |= 1 << (k & 63)
                                    k += 1
                        if mask & comp_banks:
                            ov = comp_free - start
                            if ov > preload_cycles:
                                ov = preload_cycles
                            x = (bank_factor - 1.0) * ov
                            if x > 0.0:
                                end += x
                                bank_stall += x
                    for sp, a, b in reads:
                        if b - a == 16 and not a & 15:
                            blk = rd_b[sp]
                            k = a >> 4
                            if end >= blk[k]:
                                blk[k] = end
                                rd_f[sp][k] = None
                                continue
                        if b > a:
                            _umax(rd_b[sp], rd_f[sp], a, b, end)
                else:
                    end = start + garbage_cycles
                pre_free = end
                retire = end
            else:
                end = start + (config_ex_cycles if kind == 3 else config_unit)  # 3: config_ex
                pre_free = comp_free = comp_start = end
                comp_banks = 0
                retire = end
        elif cls == 0:  # load
            if kind == 5:  # mvin
                reqs = rows if rows > 0 else 1
                r2 = -(-dram_bytes // max_req)
                if r2 > reqs:
                    reqs = r2
                ds = start + dram_lat
                if ld_bus_free > ds:
                    ds = ld_bus_free
                beats = -(-dram_bytes // beat)
                end = ds + beats
                e2 = start + reqs + dram_lat
                if e2 > end:
                    end = e2
                ld_req_free = start + reqs
                # the request window: a stream of mvins gets at most
                # dma_max_inflight requests per dram_latency cycles
                occ = reqs * req_occ
                ld_bus_free = ds + occ if occ > beats else end
                ld_slots[ld_slot_i] = end
                ld_slot_i += 1
                if ld_slot_i == n_slots:
                    ld_slot_i = 0
                dram_rd += dram_bytes
            elif kind == 6:  # mvin_zero
                end = start + (nloc if nloc else (rows if rows > 0 else 1))
                ld_req_free = end
            else:
                end = start + config_unit
                ld_req_free = end
            if kind != 7:  # not config_ld
                for sp, a, b in writes:
                    if b - a == 16 and not a & 15:
                        blk = wld_b[sp]
                        k = a >> 4
                        if end >= blk[k]:
                            blk[k] = end
                            wld_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(wld_b[sp], wld_f[sp], a, b, end)
            retire = end
        else:
            if kind == 8:  # mvout
                rc = (nloc if nloc else (rows if rows > 0 else 1)) / st_rpc
                beats = -(-dram_bytes // beat)
                end = start + st_pipe + (rc if rc > beats else beats)
                read_done = end - st_pipe
                if start + rc > read_done:
                    read_done = start + rc
                st_free = end
                for sp, a, b in reads:
                    if b - a == 16 and not a & 15:
                        blk = rd_b[sp]
                        k = a >> 4
                        if read_done >= blk[k]:
                            blk[k] = read_done
                            rd_f[sp][k] = None
                            continue
                    if b > a:
                        _umax(rd_b[sp], rd_f[sp], a, b, read_done)
                dram_wr += dram_bytes
                retire = end + st_ack
            else:
                end = start + config_unit
                st_free = end
                retire = end

        # ---- accounting
        bu = busy_until[cls]
        if end > bu:
            busy[cls] += end - (start if start > bu else bu)
            busy_until[cls] = end
        n_cmd[cls] += 1
        hreplace(heap, retire)
        if retire > last_end:
            last_end = retire
        return retire

    return command, cpu, fence, fsm_begin, fsm_end, now, snapshot


def _bench(n: int = 100_000) -> float:
    """Microseconds per ``command()`` on a synthetic CPU-issued tiled-matmul
    stream (16 x 64 mvins of A and B, preload/compute pairs, mvouts, scalar
    ops between commands); the cost of looping over the stream is subtracted."""
    import time

    cmds = []
    i = 0
    while len(cmds) < n:
        a = (i * 64) % 8192
        b = 8192 + (i * 64) % 8192
        c = (i * 64) % 1024
        cmds.append(("mvin", "load", (), ((0, a, a + 64),), 1024, 16, 64))
        cmds.append(("mvin", "load", (), ((0, b, b + 64),), 1024, 16, 64))
        for k in range(4):
            cmds.append(("preload", "execute", ((0, b + 16 * k, b + 16 * k + 16),),
                         ((1, c + 16 * k, c + 16 * k + 16),), 0, 16, 16))
            cmds.append(("compute_preloaded", "execute", ((0, a + 16 * k, a + 16 * k + 16),), (), 0, 16, 16))
        for k in range(4):
            cmds.append(("mvout", "store", ((1, c + 16 * k, c + 16 * k + 16),), (), 256, 16, 16))
        i += 1

    def go(command, cpu):
        t0 = time.perf_counter()
        for op, unit, r, w, nb, rows, cols in cmds:
            cpu(3)
            command(op, unit, r, w, nb, rows, cols)
        return time.perf_counter() - t0

    def nop(*args):
        return 0.0

    best = float("inf")
    for _ in range(5):
        tm = TimingModel()
        best = min(best, go(tm.command, tm.cpu) - go(nop, nop))
    return best / len(cmds) * 1e6


if __name__ == "__main__":  # pragma: no cover
    print(f"{_bench():.2f} us per command (plus its cpu() call), loop overhead subtracted")
