"""Cycle-approximate timing model of Gemmini, rule by rule from the RTL
(``GEMMINI_RTL.md``; every number is a :class:`gemmini_isa.GemminiConfig` field).

Event/scoreboard style: the functional machine reports every instruction in
program order and the model computes, from constraints only, when it reaches
the reservation station (RS), when the RS issues it, when its unit runs it and
when its RS entry is released. No cycle-by-cycle loop. Each unit is one
method of :class:`TimingModel`:

``cpu`` / ``_frontend``
    The CPU clock advances by the cycles the compiled scalar code costs
    (``cpu(cycles)``, estimated by the compiler) plus ``cpu_rocc_cycles`` per
    RoCC command. Commands pass ``frontend_slack`` commands of queues
    (``frontend_latency`` cycles) before the RS allocates them, one per cycle,
    in program order, into a free entry of their class (load / execute / store:
    ``rs_load`` / ``rs_execute`` / ``rs_store``). A full class blocks the
    whole in-order stream; the CPU stalls only when the front-end queues are
    full too, and then pays ``rocc_replay_cycles`` once for the episode.
``_issue``
    The RS issues an entry ``rs_issue_latency`` after allocation, in order
    within its class, once the older entries it depends on released it
    (overlapping row ranges; mvin ranges span whole block-stride gaps). The
    entry reaches its unit ``ex_queue_latency`` / ``ld_queue_latency`` /
    ``st_queue_latency`` later.
``_execute``
    Operations are a preload alone, a compute alone, or a compute merged with
    the next preload; merging needs that preload and one more command in the
    execute queue when the compute fires, and a preload alone waits until the
    command after it arrived. Rows per operation: ``dim`` with a real-B
    preload, else max(rows, ``exec_min_rows``). Operands that share a
    scratchpad bank serialize (2 or 3 cycles a row); DMA writes into a bank the
    array reads steal one cycle per row. Results reach the accumulator
    ``exec_result_latency`` after the row read and commit
    ``acc_commit_cycles`` later. RS release: a compute when its rows are read;
    a preload with a real C when the following compute's results landed (so a
    mvin overwriting its weights or a mvout of its C waits that long).
    config_ex waits for the array to drain, then takes ``config_ex_cycles``.
``_load``
    One row request per cycle; each row splits into 16/32/64-byte Gets by its
    DRAM address alignment; a Get needs one of ``dma_read_ids`` IDs (held
    until its data is back), the TLB, and room on the shared memory data path
    (``mem_bytes_per_cycle``) after ``mem_read_latency``; a row is written
    ``mvin_write_latency`` after its last beat (``mvin_scaled_row_cycles`` a
    row through the scaler when the scale is not 1.0); at most
    ``dma_mvins_in_flight`` mvins hold data; stride-0 loads read one row.
    Zero fills write one 16-column block per cycle.
``_store``
    mvouts are strictly serial in the RS. Accumulator reads (one block per
    cycle, ``mvout_read_latency`` after issue, refused while computes
    accumulate into the same bank) feed the writer ``mvout_put_latency`` later;
    the writer sends one Put per row (16/32/64 bytes by alignment) at its
    cadence (blocks + beats - 1 cycles a row), each holding one of
    ``dma_write_ids`` IDs until its acknowledgement (``mem_write_latency``
    after its data). The RS entry is released at the last SRAM read (later if
    more than ``mvout_buffer_rows`` rows wait for the writer); fences wait for
    the acknowledgements.
``_tlb``
    ``tlb_entries`` shared LRU entries behind a last-page filter per client
    (reader, writer); a miss costs ``tlb_miss_cycles``.
``_mem``
    The shared data path to memory: a calendar of 16-cycle buckets each
    holding ``16 * mem_bytes_per_cycle`` bytes, shared by read and write data,
    never faster than one 16-byte beat a cycle per transfer.
``fence``
    Waits until every RS entry is released, every acknowledgement is back and
    the array drained, then ``fence_tail_cycles``.
FSM (LOOP_WS)
    ``fsm_begin`` costs the CPU ``fsm_setup_commands`` RoCC commands; at most
    ``fsm_concurrent_loops`` runs are not fully issued (the CPU waits for the
    older one). FSM commands cost no CPU time; each sub-machine (load,
    execute, store) has its own timeline but all of them together issue one
    command per cycle; executes come after the loads issued before them and
    stores after the executes. CPU commands after a run wait until it issued
    everything.

Stall causes in the report: ``rs_full`` (CPU cycles lost because the front
end was full, replays included), ``cpu_issue`` (a unit was free and its next
command had not arrived for lack of CPU issue), ``dependency`` (it had not
arrived because it waited for an older entry), ``fence`` (CPU cycles in fences).
``units["execute"]["bank_conflict"]`` counts execute cycles added by bank
sharing and DMA writes; ``units["cpu"]`` splits the CPU's busy cycles into
``rocc`` and ``scalar``.

``sim/timing_kernel.c`` is the same model in C (``sim/timing_fast.py``), checked
identical to this one on random streams and on real programs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gemmini_isa.config import GemminiConfig
from gemmini_isa.config import default as _default_config

__all__ = ["TimingModel", "TimingReport", "UNITS", "STALL_CAUSES", "FLAG_SCALED", "FLAG_ACCUMULATE", "FLAG_RAW"]

UNITS = ("cpu", "load", "execute", "store")
STALL_CAUSES = ("dependency", "rs_full", "cpu_issue", "fence")

#: ``command(flags=...)`` bits the machine passes
FLAG_SCALED = 1       # mvin: int8 into the scratchpad with a scale that is not 1.0
FLAG_ACCUMULATE = 2   # preload: its C accumulates (bit 30)
FLAG_RAW = 4          # mvout: raw int32 rows (bit 29)

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

_INF = float("inf")
_BUCKET = 16          # cycles per bucket of the memory calendar
_PAGE_SHIFT = 12      # 4 KiB pages
_WINDOWS = 8          # recent DMA-write / accumulate windows kept per bank
_CLIENT_WRITER, _CLIENT_READER = 0, 1


# ---- the row scoreboard -------------------------------------------------
# A table is, per space, a list `blk` with the max over each 16-row block and a
# list `fine` holding either None (all 16 rows equal blk[k]) or the 16 row
# values. Updates are max-updates ("released after every earlier one"), so blk
# is exact; aligned 16-row ranges touch one list slot.

def _qmax(blk: list, fine: list, a: int, b: int) -> float:
    """Max of rows [a, b) of a blocked table."""
    m = 0.0
    if b <= a:
        return m
    if not a & 15 and not b & 15:
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
    if b <= a:
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


class _Table:
    """Per local row, per space (0 scratchpad, 1 accumulator): the latest
    release time of one kind of RS entry touching it."""

    def __init__(self, cfg: GemminiConfig):
        self.blk = ([0.0] * ((cfg.sp_rows + 15) >> 4), [0.0] * ((cfg.acc_rows + 15) >> 4))
        self.fine = ([None] * ((cfg.sp_rows + 15) >> 4), [None] * ((cfg.acc_rows + 15) >> 4))

    def query(self, ranges: Any) -> float:
        m = 0.0
        for sp, a, b in ranges:
            v = _qmax(self.blk[sp], self.fine[sp], a, b)
            if v > m:
                m = v
        return m

    def update(self, ranges: Any, t: float) -> None:
        for sp, a, b in ranges:
            _umax(self.blk[sp], self.fine[sp], a, b, t)


def _hull(ranges: Any) -> tuple:
    """The RTL's operand range of a multi-block command: from its first row to
    its last, gaps between blocks included (one range per space)."""
    if len(ranges) <= 1:
        return tuple(ranges)
    out = {}
    for sp, a, b in ranges:
        if b <= a:
            continue
        cur = out.get(sp)
        out[sp] = (a, b) if cur is None else (min(cur[0], a), max(cur[1], b))
    return tuple((sp, a, b) for sp, (a, b) in sorted(out.items()))


def _requests(addr: int, nbytes: int, max_bytes: int, beat: int) -> list:
    """TileLink requests for one row: (address, size); each takes the size
    (beat .. max_bytes, powers of two, aligned) that covers the most remaining
    bytes from the current address, the smallest on a tie."""
    out = []
    a = addr
    rem = nbytes
    while rem > 0:
        best = 0
        best_s = beat
        s = beat
        while s <= max_bytes:
            cover = s - (a % s)
            if cover > rem:
                cover = rem
            if cover > best:
                best = cover
                best_s = s
            s <<= 1
        out.append((a - (a % best_s), best_s))
        a += best
        rem -= best
    return out


@dataclass
class TimingReport:
    """What the timing model measured.

    ``units[name]`` has ``busy`` and ``idle`` cycles, plus for
    load/execute/store ``commands`` and the unit's ``dependency`` /
    ``cpu_issue`` stalls. The CPU also has ``commands`` (RoCC commands it
    issued; the FSM's are not counted), ``rocc`` / ``scalar`` (its busy cycles
    split into command issue and scalar code), ``rs_full`` and ``fence``; the
    execute unit also has ``bank_conflict``.
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
    """The readable reference model; see the module docstring for the rules.

    - ``cpu(cycles)``: the CPU spent `cycles` on scalar code since the previous call.
    - ``command(op, unit, reads, writes, dram_bytes, rows, cols, fsm=False,
      bank_conflict=False, dram_addr=0, dram_stride=0, flags=0) -> float``:
      time one instruction; returns its RS release time as far as known now.
      ``bank_conflict`` is accepted and ignored: the banks are read from the ranges.
      Ops that are not unit commands ("flush", unit "sync") cost the CPU one
      RoCC issue only.
    - ``fence() -> float``: the CPU waits for Gemmini to go idle.
    - ``fsm_begin()`` / ``fsm_end()``: one LOOP_WS run.
    """

    def __init__(self, config: GemminiConfig | None = None):
        cfg = config if config is not None else _default_config()
        if cfg.dma_beat_bytes < 1 or cfg.dma_beat_bytes > cfg.dma_max_request_bytes:
            raise ValueError(f"dma_beat_bytes must be 1..dma_max_request_bytes, got {cfg.dma_beat_bytes}")
        if not cfg.mem_bytes_per_cycle > 0:
            raise ValueError(f"mem_bytes_per_cycle must be > 0, got {cfg.mem_bytes_per_cycle}")
        if cfg.mvout_buffer_rows < 0 or cfg.sp_bank_rows < 1 or cfg.acc_bank_rows < 1:
            raise ValueError("mvout_buffer_rows must be >= 0 and bank sizes >= 1")
        self.config = cfg
        self.dim = cfg.dim
        # ---- CPU and command path
        self.cpu_t = 0.0
        self.cpu_busy = 0.0
        self.cpu_scalar = 0.0
        self.n_rocc = 0
        self.stall_rs = 0.0
        self.stall_fence = 0.0
        self.fe_ring = [0.0] * max(1, cfg.frontend_slack)
        self.fe_i = 0
        self.last_alloc = -1.0
        self.rs = tuple([0.0] * max(1, n) for n in (cfg.rs_load, cfg.rs_execute, cfg.rs_store))
        self.last_issue = [-1.0, -1.0, -1.0]
        self.store_release = 0.0        # every older store must be released first
        self.last_end = 0.0             # latest RS release of anything
        # ---- scoreboard
        self.t_ldw = _Table(cfg)   # loads writing the row
        self.t_exr = _Table(cfg)   # execute entries reading the row (A, D, B)
        self.t_exc = _Table(cfg)   # preloads whose C covers the row
        self.t_str = _Table(cfg)   # mvouts reading the row
        # ---- execute unit
        self.ex_free = 0.0
        self.ex_drain = 0.0
        self.pending: list = []         # execute commands not yet fired
        self.wait_pre: Any = None       # a fired real-C preload waiting for its compute's results
        self.last_pre: Any = None       # the preload whose C the next compute writes
        self.ex_ops: list = []          # recent fired ops: (start, end, banks) for DMA-write stealing
        self.bank_stall = 0.0
        # ---- load unit
        self.ld_free = 0.0
        self.ld_slots = [0.0] * max(1, cfg.dma_mvins_in_flight)
        self.get_free = 0.0
        self.row_w = -_INF
        self.rids = [0.0] * max(1, cfg.dma_read_ids)
        self.sp_writes: dict = {}       # bank -> recent (first, last, rows) DMA-write windows
        # ---- store unit
        self.wr_free = 0.0
        self.wids = [0.0] * max(1, cfg.dma_write_ids)
        self.last_ack = 0.0
        self.acc_windows: dict = {}     # accumulator bank -> recent accumulate windows
        # ---- memory and TLB
        self.cal: dict = {}
        self.tlb: list = []
        self.tlb_last = [-1, -1]
        # ---- FSM
        self.in_fsm = False
        self.fsm_next = [0.0, 0.0, 0.0]
        self.fsm_used: set = set()
        self.fsm_last_issue = 0.0       # latest FSM issue of any run
        self.run_start = 0.0
        self.run_ld = 0.0
        self.run_ex = 0.0
        self.runs: list = []            # last issue time of each run (the two newest)
        # ---- accounting
        self.busy = [0.0, 0.0, 0.0]
        self.busy_until = [0.0, 0.0, 0.0]
        self.n_cmd = [0, 0, 0]
        self.st_dep = [0.0, 0.0, 0.0]
        self.st_issue = [0.0, 0.0, 0.0]
        self.dram_rd = 0
        self.dram_wr = 0

    # ---- CPU --------------------------------------------------------------
    def cpu(self, cycles: float) -> None:
        if cycles:
            c = float(cycles)
            self.cpu_t += c
            self.cpu_busy += c
            self.cpu_scalar += c
            self.in_fsm = False

    @property
    def now(self) -> float:
        """Current CPU time (cycles)."""
        return self.cpu_t

    def _frontend(self, cls: int) -> float:
        """A CPU-issued command: its RoCC cycle, the front-end queues, the RS
        allocation. Returns the allocation time."""
        cfg = self.config
        rocc = float(cfg.cpu_rocc_cycles)
        wb = self.cpu_t + rocc
        self.cpu_busy += rocc
        self.n_rocc += 1
        k = self.fe_i
        older = self.fe_ring[k]          # allocation of the command `slack` commands earlier
        if older > wb:
            stalled = older + float(cfg.rocc_replay_cycles)
            self.stall_rs += stalled - wb
            wb = stalled
        self.cpu_t = wb
        t = wb + float(cfg.frontend_latency)
        if self.last_alloc + 1.0 > t:
            t = self.last_alloc + 1.0
        if self.fsm_last_issue + 1.0 > t:   # a loop still issuing holds the CPU's commands
            t = self.fsm_last_issue + 1.0
        t = self._rs_slot_time(cls, t)
        self.fe_ring[k] = t
        self.fe_i = k + 1 if k + 1 < len(self.fe_ring) else 0
        self.last_alloc = t
        return t

    def _rs_slot_time(self, cls: int, t: float) -> float:
        rel = self.rs[cls]
        m = min(rel)
        return m if m > t else t

    def _rs_take(self, cls: int) -> int:
        """The RS entry the new command takes (the earliest released)."""
        rel = self.rs[cls]
        return rel.index(min(rel))

    def _release(self, cls: int, slot: int, t: float) -> None:
        self.rs[cls][slot] = t
        if cls == _STORE and t > self.store_release:
            self.store_release = t
        if t > self.last_end:
            self.last_end = t

    # ---- FSM ----------------------------------------------------------------
    def fsm_begin(self) -> None:
        cfg = self.config
        setup = float(cfg.fsm_setup_commands) * float(cfg.cpu_rocc_cycles)
        self.cpu_t += setup
        self.cpu_busy += setup
        loops = max(1, cfg.fsm_concurrent_loops)
        if len(self.runs) >= loops and self.runs[-loops] > self.cpu_t:
            self.stall_rs += self.runs[-loops] - self.cpu_t
            self.cpu_t = self.runs[-loops]
        self.run_start = self.cpu_t + float(cfg.frontend_latency)
        for c in (0, 1, 2):
            if self.fsm_next[c] < self.run_start:
                self.fsm_next[c] = self.run_start
        self.run_ld = self.run_ex = self.run_start
        self.runs.append(self.run_start)
        if len(self.runs) > 4:
            del self.runs[0]
        self.in_fsm = True

    def fsm_end(self) -> None:
        self.in_fsm = False

    def _fsm_alloc(self, cls: int) -> float:
        t = self.fsm_next[cls]
        if cls == _EXEC and self.run_ld > t:
            t = self.run_ld
        elif cls == _STORE and self.run_ex > t:
            t = self.run_ex
        t = self._rs_slot_time(cls, t)
        # all sub-machines together issue one command per cycle
        c = math.ceil(t)
        used = self.fsm_used
        while c in used:
            c += 1
        used.add(c)
        t = float(c)
        self.fsm_next[cls] = t + 1.0
        if cls == _LOAD:
            self.run_ld = t
        elif cls == _EXEC:
            self.run_ex = t
        if t > self.runs[-1]:
            self.runs[-1] = t
        if t > self.fsm_last_issue:
            self.fsm_last_issue = t
        return t + 1.0   # through unrolled_cmd into the RS

    # ---- RS issue -------------------------------------------------------------
    def _issue(self, cls: int, alloc: float, dep: float) -> tuple[float, float]:
        """(issue, arrival at the unit) of an allocated entry."""
        cfg = self.config
        t = alloc + float(cfg.rs_issue_latency)
        li = self.last_issue[cls] + 1.0
        if li > t:
            t = li
        if dep > t:
            t = dep
        self.last_issue[cls] = t
        lat = (cfg.ld_queue_latency, cfg.ex_queue_latency, cfg.st_queue_latency)[cls]
        return t, t + float(lat)

    def _account(self, cls: int, free: float, arrival: float, held: bool, start: float, end: float) -> None:
        if arrival > free:
            if held:
                self.st_dep[cls] += arrival - free
            else:
                self.st_issue[cls] += arrival - free
        bu = self.busy_until[cls]
        if end > bu:
            self.busy[cls] += end - (start if start > bu else bu)
            self.busy_until[cls] = end
        self.n_cmd[cls] += 1

    # ---- memory, TLB ------------------------------------------------------------
    def _mem(self, t: float, nbytes: int) -> float:
        """Move `nbytes` over the shared memory data path from time `t`;
        returns when the last byte is through."""
        bw = float(self.config.mem_bytes_per_cycle)
        cap = bw * _BUCKET
        b = int(t // _BUCKET)
        rem = float(nbytes)
        cal = self.cal
        u = 0.0
        while True:
            u = cal.get(b, 0.0)
            room = cap - u
            if room > 0.0:
                take = room if room < rem else rem
                u += take
                cal[b] = u
                rem -= take
                if rem <= 0.0:
                    break
            b += 1
        fin = b * float(_BUCKET) + u / bw
        link = t + float(-(-nbytes // self.config.dma_beat_bytes))
        return fin if fin > link else link

    def _tlb(self, client: int, addr: int, t: float) -> float:
        page = addr >> _PAGE_SHIFT
        if self.tlb_last[client] == page:
            return t
        self.tlb_last[client] = page
        tlb = self.tlb
        if page in tlb:
            tlb.remove(page)
            tlb.append(page)
            return t
        tlb.append(page)
        if len(tlb) > max(1, self.config.tlb_entries):
            del tlb[0]
        return t + float(self.config.tlb_miss_cycles)

    @staticmethod
    def _id(ids: list, t: float) -> tuple[int, float]:
        m = min(ids)
        return ids.index(m), (m if m > t else t)

    # ---- bank sharing ---------------------------------------------------------------
    def _banks(self, ranges: Any) -> list:
        """Scratchpad banks read by each operand range (-1: the accumulator)."""
        br = self.config.sp_bank_rows
        out = []
        for sp, a, b in ranges:
            if b > a:
                out.append(-1 if sp else a // br)
        return out

    def _note_dma_write(self, bank: int, first: float, last: float, rows: int) -> None:
        """A DMA write window into a scratchpad bank: it steals a cycle per row
        from any execute op reading that bank meanwhile (the DMA write wins)."""
        w = self.sp_writes.setdefault(bank, [])
        w.append((first, last, rows))
        if len(w) > _WINDOWS:
            del w[0]
        # ops already timed that read the bank in this window lose the cycles now
        steal = 0.0
        for s, e, banks in self.ex_ops:
            if bank in banks:
                steal += self._overlap_rows(first, last, rows, s, e)
        if steal > 0.0 and self.ex_free > first:
            self.ex_free += steal
            self.bank_stall += steal

    @staticmethod
    def _overlap_rows(first: float, last: float, rows: int, s: float, e: float) -> float:
        lo = first if first > s else s
        hi = last + 1.0 if last + 1.0 < e else e
        if hi <= lo:
            return 0.0
        span = last + 1.0 - first
        return (hi - lo) * (rows / span) if span > 0.0 else 0.0

    def _steal(self, banks: list, s: float, e: float) -> float:
        steal = 0.0
        seen = []
        for bk in banks:
            if bk < 0 or bk in seen:
                continue
            seen.append(bk)
            for first, last, rows in self.sp_writes.get(bk, ()):
                steal += self._overlap_rows(first, last, rows, s, e)
        return steal

    def _acc_reads(self, bank: int, t: float, n: int) -> float:
        """Accumulator reads of a mvout: `n` cycles from `t`, refused while
        computes accumulate into the bank. Returns when the last read is done."""
        cur = t
        need = float(n)
        for ws, we in self.acc_windows.get(bank, ()):
            if we <= cur:
                continue
            if ws >= cur + need:
                break
            done = ws - cur if ws > cur else 0.0
            need -= done
            cur = we
        return cur + need

    # ---- execute ---------------------------------------------------------------------
    def _settle(self, ranges: Any) -> None:
        """A command depends on `ranges`: fire the pending execute commands
        (and resolve the waiting preload) if they touch them."""
        if not self.pending and self.wait_pre is None:
            return
        hit = False
        for cmd in self.pending:
            if _touches(cmd[4], ranges) or _touches(cmd[5], ranges):
                hit = True
                break
        if not hit and self.wait_pre is not None:
            wp = self.wait_pre
            hit = _touches(wp[1], ranges) or _touches(wp[2], ranges)
        if hit:
            self._fire_all()

    def _fire_all(self) -> None:
        while self.pending:
            self._fire(force=True)
        if self.wait_pre is not None:   # no compute follows: its entry goes at its rows' end
            self._resolve_pre(self.wait_pre[3] + 1.0)

    def _execute(self, kind: int, slot: int, arrival: float, held: bool, reads: Any, writes: Any,
                 rows: int, flags: int) -> None:
        self.pending.append((kind, slot, arrival, held, tuple(reads), tuple(writes), rows, flags))
        while self.pending and self._fire(force=False):
            pass

    def _fire(self, force: bool) -> bool:
        """Fire the head of the execute queue if its lookahead is known (or `force`)."""
        p = self.pending
        kind = p[0][0]
        if kind == _K_PRELOAD:
            if len(p) < 2 and not force:
                return False
            nxt = p[1][2] if len(p) > 1 else _INF
            self._fire_preload(p.pop(0), nxt)
            return True
        if kind == _K_COMPUTE:
            merge_with = None
            if len(p) > 1 and p[1][0] == _K_PRELOAD:
                if len(p) < 3 and not force:
                    return False
                third = p[2][2] if len(p) > 2 else _INF
                merge_with = (p[1], third)
            elif len(p) < 2 and not force:
                return False
            if self._fire_compute(p.pop(0), merge_with):
                p.pop(0)
            return True
        self._fire_other(p.pop(0))
        return True

    def _rows(self, rows: int) -> float:
        m = self.config.exec_min_rows
        return float(rows if rows > m else m)

    def _fire_preload(self, cmd: tuple, next_arrival: float) -> None:
        kind, slot, arrival, held, reads, writes, rows, flags = cmd
        free = self.ex_free
        s = free if free > arrival else arrival
        if next_arrival > s and next_arrival != _INF:   # a preload waits for the command after it
            s = next_arrival
        real_b = bool(reads)
        n = float(self.dim) if real_b else float(self.config.exec_min_rows)
        banks = self._banks(reads)
        e0 = s + n
        steal = self._steal(banks, s, e0)
        e = e0 + steal
        self.bank_stall += steal
        self.ex_free = e
        self._remember_op(s, e, banks)
        self._account(_EXEC, free, arrival, held, s, e)
        self._after_preload(slot, reads, writes, flags, e)

    def _after_preload(self, slot: int, reads: tuple, writes: tuple, flags: int, fed: float) -> None:
        if self.wait_pre is not None:   # two preloads in a row: the first one's C is never written
            self._resolve_pre(fed)
        if writes:
            self.wait_pre = (slot, reads, writes, fed, flags)
            self.rs[_EXEC][slot] = _INF
        else:
            rel = fed + 1.0
            self.t_exr.update(reads, rel)
            self._release(_EXEC, slot, rel)
            self.wait_pre = None
        self.last_pre = (writes, flags)

    def _resolve_pre(self, t: float) -> None:
        slot, reads, writes, fed, flags = self.wait_pre
        self.wait_pre = None
        self.t_exr.update(reads, t)
        self.t_exc.update(writes, t)
        self._release(_EXEC, slot, t)

    def _fire_compute(self, cmd: tuple, merge_with: Any) -> bool:
        """Fire a compute, merged with the next preload when that preload and
        the command after it were already queued; returns whether it merged."""
        kind, slot, arrival, held, reads, writes, rows, flags = cmd
        cfg = self.config
        free = self.ex_free
        s = free if free > arrival else arrival
        n = self._rows(rows)
        banks = self._banks(reads)
        pre = None
        if merge_with is not None:
            pcmd, third = merge_with
            if pcmd[2] <= s and third <= s:
                pre = pcmd
                if pcmd[4]:
                    n = float(self.dim)
                    banks = banks + self._banks(pcmd[4])
        factor = 1
        for bk in banks:
            c = banks.count(bk)
            if c > factor:
                factor = c
        e0 = s + n * factor
        steal = self._steal(banks, s, e0)
        e = e0 + steal
        self.bank_stall += (e - s) - n
        self.ex_free = e
        self._remember_op(s, e, banks)
        self._account(_EXEC, free, arrival, held, s, e)
        # results of this compute land in the C of the preload before it
        land = e - 1.0 + float(cfg.exec_result_latency)
        drain = land + float(cfg.acc_commit_cycles)
        if drain > self.ex_drain:
            self.ex_drain = drain
        if self.last_pre is not None:
            cw, cflags = self.last_pre
            if cflags & FLAG_ACCUMULATE:
                for sp, a, b in cw:
                    if sp and b > a:
                        bank = cfg.acc_bank(a)
                        w = self.acc_windows.setdefault(bank, [])
                        ws = s + float(cfg.exec_result_latency)
                        if w and w[-1][1] >= ws:
                            w[-1] = (w[-1][0], land + 1.0)
                        else:
                            w.append((ws, land + 1.0))
                            if len(w) > _WINDOWS:
                                del w[0]
        if self.wait_pre is not None:
            self._resolve_pre(land + 1.0)
        self.last_pre = None
        rel = e + 1.0
        self.t_exr.update(reads, rel)
        self._release(_EXEC, slot, rel)
        if pre is not None:   # the merged preload: its rows were fed with this compute's
            pkind, pslot, parr, pheld, preads, pwrites, prows, pflags = pre
            self.n_cmd[_EXEC] += 1
            self._after_preload(pslot, preads, pwrites, pflags, e)
        return pre is not None

    def _fire_other(self, cmd: tuple) -> None:
        kind, slot, arrival, held, reads, writes, rows, flags = cmd
        free = self.ex_free
        s = free if free > arrival else arrival
        if kind == _K_CONFIG_EX and self.ex_drain > s:
            s = self.ex_drain
        e = s + float(self.config.config_ex_cycles)
        self.ex_free = e
        self._account(_EXEC, free, arrival, held, s, e)
        self._release(_EXEC, slot, e)

    def _remember_op(self, s: float, e: float, banks: list) -> None:
        ops = self.ex_ops
        ops.append((s, e, tuple(b for b in banks if b >= 0)))
        if len(ops) > _WINDOWS:
            del ops[0]

    # ---- load -------------------------------------------------------------------------
    def _load(self, kind: int, slot: int, arrival: float, held: bool, writes: Any, dram_bytes: int,
              rows: int, cols: int, dram_addr: int, dram_stride: int, flags: int) -> None:
        cfg = self.config
        free = self.ld_free
        if kind == _K_LD_OTHER:   # config_ld: one cycle, released at issue
            s = free if free > arrival else arrival
            e = s + 1.0
            self.ld_free = e
            self._account(_LOAD, free, arrival, held, s, e)
            return
        rows = rows if rows > 0 else 1
        if kind == _K_MVIN_ZERO:
            s = free if free > arrival else arrival
            blocks = -(-cols // self.dim) if cols > 0 else 1
            n = float(rows * blocks)
            e = s + n + float(cfg.zero_fill_latency)
            self.ld_free = s + n
            for sp, a, b in writes:
                if not sp and b > a:
                    self._note_dma_write(a // cfg.sp_bank_rows, s, s + n - 1.0, b - a)
            self._account(_LOAD, free, arrival, held, s, e)
            self._finish_load(slot, writes, e + 1.0)
            return
        # a DMA mvin
        slots = self.ld_slots
        si = slots.index(min(slots))
        s = free if free > arrival else arrival
        if slots[si] > s:
            s = slots[si]
        row_bytes = dram_bytes // rows if rows else dram_bytes
        if row_bytes <= 0:
            row_bytes = 1
        n_read = 1 if (dram_stride == 0 and rows > 1) else rows
        get_t = self.get_free
        t0 = s + float(cfg.mvin_request_latency)
        if get_t < t0:
            get_t = t0
        scaled = bool(flags & FLAG_SCALED)
        prev_w = self.row_w     # the merger / scaler / write path is shared by all mvins
        first_w = _INF
        rids = self.rids
        for r in range(n_read):
            addr = dram_addr + r * dram_stride
            t_row = t0 + r
            if get_t > t_row:
                t_row = get_t
            data_end = 0.0
            for a, size in _requests(addr, row_bytes, cfg.dma_max_request_bytes, cfg.dma_beat_bytes):
                t = self._tlb(_CLIENT_READER, a, t_row)
                i, t = self._id(rids, t)
                back = self._mem(t + float(cfg.mem_read_latency), size)
                rids[i] = back
                t_row = t + 1.0
                if back > data_end:
                    data_end = back
            get_t = t_row
            w = data_end + float(cfg.mvin_write_latency)
            step = float(cfg.mvin_scaled_row_cycles) if scaled else 1.0
            if prev_w + step > w:
                w = prev_w + step
            prev_w = w
            if w < first_w:
                first_w = w
        last_w = prev_w + float(rows - n_read)   # stride 0: the row repeats, one per cycle
        self.row_w = last_w
        self.get_free = get_t
        self.ld_free = s + float(rows)
        slots[si] = last_w
        for sp, a, b in writes:
            if not sp and b > a:
                self._note_dma_write(a // cfg.sp_bank_rows, first_w, last_w, b - a)
        self.dram_rd += dram_bytes if n_read == rows else row_bytes
        self._account(_LOAD, free, arrival, held, s, last_w)
        self._finish_load(slot, writes, last_w + float(cfg.mvin_release_cycles))

    def _finish_load(self, slot: int, writes: Any, rel: float) -> None:
        self.t_ldw.update(_hull(writes), rel)
        self._release(_LOAD, slot, rel)

    # ---- store ---------------------------------------------------------------------------
    def _store(self, kind: int, slot: int, issue: float, arrival: float, held: bool, reads: Any,
               dram_bytes: int, rows: int, cols: int, dram_addr: int, dram_stride: int, flags: int) -> None:
        cfg = self.config
        free = self.busy_until[_STORE]
        if kind == _K_ST_OTHER:   # config_st: released at issue
            s = arrival
            self._account(_STORE, free, arrival, held, s, s + 1.0)
            self._release(_STORE, slot, issue + 1.0)
            return
        rows = rows if rows > 0 else 1
        raw = bool(flags & FLAG_RAW)
        blocks = 1 if raw else (-(-cols // self.dim) if cols > 0 else 1)
        n_reads = rows * blocks
        r0 = issue + float(cfg.mvout_read_latency)
        bank = -1
        for sp, a, b in reads:
            if sp and b > a:
                bank = cfg.acc_bank(a)
                break
        r_end = self._acc_reads(bank, r0, n_reads) if bank >= 0 else r0 + n_reads
        read_last = r_end - 1.0
        row_bytes = dram_bytes // rows if rows else dram_bytes
        if row_bytes <= 0:
            row_bytes = 1
        beats = -(-row_bytes // cfg.dma_beat_bytes)
        cadence = float(blocks + beats - 1)
        span = r_end - r0
        p = self.wr_free
        puts = []
        wids = self.wids
        for r in range(rows):
            ready = r0 + span * (r + 1) / rows - 1.0 + float(cfg.mvout_put_latency)
            if ready > p:
                p = ready
            addr = dram_addr + r * dram_stride
            for a, size in _requests(addr, row_bytes, cfg.dma_max_request_bytes, cfg.dma_beat_bytes):
                t = self._tlb(_CLIENT_WRITER, a, p)
                i, t = self._id(wids, t)
                done = self._mem(t, size)
                ack = done + float(cfg.mem_write_latency)
                wids[i] = ack
                if ack > self.last_ack:
                    self.last_ack = ack
                p = t
            puts.append(p)
            p += cadence
        self.wr_free = p
        rel = read_last + 1.0
        buf = cfg.mvout_buffer_rows
        if rows > buf:
            waiting = puts[rows - 1 - buf] + 1.0
            if waiting > rel:
                rel = waiting
        self.t_str.update(_hull(reads), rel)
        self.dram_wr += dram_bytes
        self._account(_STORE, free, arrival, held, r0, p)
        self._release(_STORE, slot, rel)

    # ---- the entry point -------------------------------------------------------------------
    def command(self, op: str, unit: str, reads: Any = (), writes: Any = (), dram_bytes: int = 0,
                rows: int = 0, cols: int = 0, fsm: bool = False, bank_conflict: bool = False,
                dram_addr: int = 0, dram_stride: int = 0, flags: int = 0) -> float:
        kind = _KIND.get(op)
        if kind is None:
            cls = _UNIT_CLASS.get(unit)
            if cls is None:   # flush and friends: CPU only
                if not fsm:
                    self.in_fsm = False
                    rocc = float(self.config.cpu_rocc_cycles)
                    self.cpu_t += rocc
                    self.cpu_busy += rocc
                return self.cpu_t
            kind = _OTHER_KIND[cls]
        else:
            cls = _CLASS_OF[kind]
        # dependencies: fire pending executes this command waits for
        if cls == _LOAD:
            deps_on = _hull(writes)
        elif cls == _STORE:
            deps_on = _hull(reads)
        else:
            deps_on = ()
        if deps_on:
            self._settle(deps_on)
        if min(self.rs[cls]) == _INF:   # every entry waits for commands not yet seen
            self._fire_all()
        # into the reservation station
        if fsm:
            if not self.in_fsm:
                self.fsm_begin()
            alloc = self._fsm_alloc(cls)
        else:
            self.in_fsm = False
            alloc = self._frontend(cls)
        slot = self._rs_take(cls)
        self.rs[cls][slot] = _INF
        dep = 0.0
        if cls == _EXEC:
            if kind == _K_COMPUTE or kind == _K_PRELOAD:
                dep = self.t_ldw.query(reads)
                if kind == _K_PRELOAD and writes:
                    d2 = self.t_ldw.query(writes)
                    d3 = self.t_str.query(writes)
                    dep = max(dep, d2, d3)
        elif cls == _LOAD:
            if kind != _K_LD_OTHER:
                dep = max(self.t_exr.query(deps_on), self.t_exc.query(deps_on), self.t_str.query(deps_on))
        else:
            if self.store_release > dep:
                dep = self.store_release
            if kind == _K_MVOUT:
                dep = max(dep, self.t_ldw.query(deps_on), self.t_exc.query(deps_on))
        issue, arrival = self._issue(cls, alloc, dep)
        held = dep > alloc + float(self.config.rs_issue_latency)
        if cls == _EXEC:
            self._execute(kind, slot, arrival, held, reads, writes, rows, flags)
            return self.rs[cls][slot]
        if cls == _LOAD:
            self._load(kind, slot, arrival, held, writes, dram_bytes, rows, cols, dram_addr, dram_stride, flags)
            if kind == _K_LD_OTHER:
                self._release(_LOAD, slot, issue + 1.0)
        else:
            self._store(kind, slot, issue, arrival, held, reads, dram_bytes, rows, cols, dram_addr,
                        dram_stride, flags)
        return self.rs[cls][slot]

    def fence(self) -> float:
        self.in_fsm = False
        self._fire_all()
        done = max(self.last_end, self.last_ack, self.ex_drain, self.cpu_t)
        tail = float(self.config.fence_tail_cycles)
        self.stall_fence += done - self.cpu_t + tail
        self.cpu_t = done + tail
        return self.cpu_t

    # ---- results -----------------------------------------------------------------------------
    def _finish_time(self) -> float:
        self._fire_all()
        return max(self.cpu_t, self.last_end, self.last_ack, self.ex_drain)

    @property
    def cycles(self) -> int:
        """Cycles until everything issued so far (and the CPU) has finished."""
        return _ceil(self._finish_time())

    def report(self) -> TimingReport:
        end = self._finish_time()
        cycles = _ceil(end)
        cpu_busy = min(cycles, _ceil(self.cpu_busy))
        units = {"cpu": {"busy": cpu_busy, "idle": cycles - cpu_busy, "commands": self.n_rocc,
                         "rocc": _ceil(self.n_rocc * float(self.config.cpu_rocc_cycles)),
                         "scalar": _ceil(self.cpu_scalar),
                         "rs_full": _ceil(self.stall_rs), "fence": _ceil(self.stall_fence)}}
        for c, name in enumerate(_CLASS_NAMES):
            busy = min(cycles, _ceil(self.busy[c]))
            units[name] = {"busy": busy, "idle": cycles - busy, "commands": self.n_cmd[c],
                           "dependency": _ceil(self.st_dep[c]), "cpu_issue": _ceil(self.st_issue[c])}
        units["execute"]["bank_conflict"] = _ceil(self.bank_stall)
        stalls = {"dependency": _ceil(sum(self.st_dep)), "rs_full": _ceil(self.stall_rs),
                  "cpu_issue": _ceil(sum(self.st_issue)), "fence": _ceil(self.stall_fence)}
        return TimingReport(cycles=cycles, units=units, stalls=stalls,
                            dram_bytes_read=int(self.dram_rd), dram_bytes_written=int(self.dram_wr))


def _touches(a: Any, b: Any) -> bool:
    for sa, a0, a1 in a:
        for sb, b0, b1 in b:
            if sa == sb and a0 < b1 and b0 < a1:
                return True
    return False
