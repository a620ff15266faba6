"""The Gemmini hardware configuration: sizes, queue depths and timing parameters.

Every number the simulator and the timing model use lives here, with where it
comes from: ``sourced`` (Gemmini RTL, gemmini.h or the docs), ``guessed`` (an
educated estimate awaiting calibration) or ``calibrated`` (fitted against the
published FireSim results).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def _p(default: Any, doc: str, source: str) -> Any:
    """A config field carrying its documentation and provenance as metadata."""
    assert source in ("sourced", "guessed", "calibrated", "derived")
    return field(default=default, metadata={"doc": doc, "source": source})


@dataclass(frozen=True)
class GemminiConfig:
    """One Gemmini design point. Frozen so it can key caches and records."""

    # ---- geometry -------------------------------------------------------
    dim: int = _p(16, "Systolic array is dim x dim PEs; one local row holds dim elements.", "sourced")
    sp_banks: int = _p(4, "Scratchpad banks (bank = row >> 12 by default).", "sourced")
    sp_bank_rows: int = _p(4096, "Rows per scratchpad bank (row = dim int8).", "sourced")
    acc_banks: int = _p(2, "Accumulator banks (bank = (row >> 9) & 1).", "sourced")
    acc_bank_rows: int = _p(512, "Rows per accumulator bank (row = dim int32).", "sourced")
    max_mvin_cols_sp: int = _p(64, "Widest int8 mvin into the scratchpad (4 x dim).", "sourced")
    max_mvin_cols_acc: int = _p(16, "Widest int32 mvin into the accumulator (dim).", "sourced")
    max_mvout_cols: int = _p(64, "Widest scaled int8 mvout from the accumulator (4 x dim).", "sourced")
    max_mvout_cols_raw: int = _p(16, "Widest raw int32 mvout (bit 29 set) (dim).", "sourced")
    max_rows: int = _p(16, "Most rows one mvin/mvout/preload/compute moves (dim).", "sourced")

    # ---- queues ---------------------------------------------------------
    rs_load: int = _p(8, "Reservation-station entries for loads (mvin, config_ld).", "sourced")
    rs_execute: int = _p(16, "Reservation-station entries for execute (preload, compute, config_ex).", "sourced")
    rs_store: int = _p(4, "Reservation-station entries for stores (mvout, config_st).", "sourced")

    # ---- command path (GEMMINI_RTL.md section 1) -----------------------
    frontend_slack: int = _p(10, "Commands the five 2-entry queues between Rocket and the RS hold: the CPU "
                             "stalls only when they are full.", "sourced")
    frontend_latency: int = _p(5, "Cycles from a RoCC write-back to RS allocation (five queue stages).", "sourced")
    rocc_replay_cycles: int = _p(5, "Cycles a RoCC instruction refused at write-back costs (pipeline flush and "
                                 "refetch), once per blocked episode (RTL estimate).", "guessed")
    rs_issue_latency: int = _p(1, "Cycles from RS allocation to the earliest issue.", "sourced")
    ex_queue_latency: int = _p(2, "Cycles from RS issue to the execute controller (unroller queue, then the "
                               "3-head queue).", "sourced")
    ld_queue_latency: int = _p(1, "Cycles from RS issue to the load controller.", "sourced")
    st_queue_latency: int = _p(1, "Cycles from RS issue to the store controller.", "sourced")

    # ---- DMA and memory (sections 2, 4, 6) --------------------------------
    dma_beat_bytes: int = _p(16, "Bytes per TileLink beat (128-bit port): one beat per cycle per transfer.", "sourced")
    dma_max_request_bytes: int = _p(64, "Largest Get/Put (16, 32 or 64 bytes, aligned).", "sourced")
    dma_read_ids: int = _p(16, "Read transaction IDs: Gets without their data back.", "sourced")
    dma_write_ids: int = _p(16, "Write transaction IDs: Puts without their acknowledgement.", "sourced")
    dma_mvins_in_flight: int = _p(2, "mvins the load controller tracks at once (DMACommandTracker).", "sourced")
    mvin_request_latency: int = _p(5, "Cycles from a mvin's RS issue to its first Get on the port.", "sourced")
    mvin_write_latency: int = _p(5, "Cycles from a row's last data beat to its scratchpad write.", "sourced")
    mvin_release_cycles: int = _p(2, "Cycles from a mvin's last row write to its RS release.", "sourced")
    mvin_scaled_row_cycles: int = _p(4, "Cycles per row through the mvin scaler (int8 with scale != 1.0).", "sourced")
    zero_fill_latency: int = _p(3, "Pipeline cycles of a zero-fill mvin (one 16-column block per cycle).", "sourced")
    mvout_read_latency: int = _p(2, "Cycles from a mvout's RS issue to its first accumulator read.", "sourced")
    mvout_put_latency: int = _p(13, "Cycles from an accumulator read to its Put leaving (scaler 8 + queues).", "sourced")
    mvout_buffer_rows: int = _p(8, "Rows that fit between the SRAM reads and the writer.", "sourced")
    mem_read_latency: int = _p(130, "Cycles from a Get leaving Gemmini to its first data beat back (memory "
                               "pipe, L2, crossings).", "calibrated")
    mem_write_latency: int = _p(40, "Cycles from a Put's data to its AccessAck back (write round trip).", "calibrated")
    mem_bytes_per_cycle: float = _p(15.0, "Bytes per cycle the memory side moves, read and write data together "
                                    "(the 16-byte port caps it at 16).", "calibrated")
    tlb_entries: int = _p(4, "Shared TLB entries (reader and writer), behind a last-page filter each.", "sourced")
    tlb_miss_cycles: int = _p(0, "Cycles a TLB miss costs a request (a page walk; 0 for bare-metal runs).", "guessed")

    # ---- execute (section 3) ---------------------------------------------
    exec_min_rows: int = _p(4, "Fewest rows an execute operation feeds when no real-B preload takes part.", "sourced")
    exec_result_latency: int = _p(35, "Cycles from a row's read request to its result at the accumulator "
                                  "write port.", "sourced")
    acc_commit_cycles: int = _p(2, "Cycles from the write port to the accumulator commit.", "sourced")
    config_ex_cycles: int = _p(1, "Cycles of a config_ex after the array drained.", "sourced")
    fence_tail_cycles: int = _p(2, "Cycles a fence costs after Gemmini went idle (RTL estimate 1-3).", "sourced")

    # ---- LOOP_WS FSM (section 5) ---------------------------------------------
    fsm_setup_commands: int = _p(6, "RoCC commands of one gemmini_loop_ws (BOUNDS, ADDRS_AB, ADDRS_DC, "
                                 "STRIDES_AB, STRIDES_DC, LOOP_WS).", "sourced")
    fsm_concurrent_loops: int = _p(2, "LOOP_WS runs not yet fully issued at once.", "sourced")

    # ---- CPU ------------------------------------------------------------
    cpu_rocc_cycles: int = _p(1, "CPU cycles of one accepted RoCC instruction (operand packing is scalar "
                              "code, counted by the compiler's estimate).", "sourced")
    # The compiler (sim/compiler.py) estimates the RISC-V instructions gcc -O2 emits
    # for the scalar code and turns them into the cycles it hands to the timing model
    # with these Rocket facts (GEMMINI_RTL.md section 6); benchmarks/cpu_fidelity.py
    # checks the instruction count against a real RISC-V build.
    cpu_cpi: float = _p(1.0, "Rocket cycles per scalar instruction without stalls (single-issue, in "
                        "order, 5 stages).", "guessed")
    cpu_mul_cycles: float = _p(10.0, "Cycles of a 64-bit multiply that stays after strength reduction: the "
                               "unpipelined multiplier does 8 bits per cycle (8 iterations) plus ~2 of request "
                               "and response.", "sourced")
    cpu_div_cycles: float = _p(66.0, "Cycles of a divide or remainder by a variable: 1 bit per cycle (64 "
                               "iterations) plus ~2, before early exit.", "sourced")
    cpu_branch_cycles: float = _p(3.0, "Cycles a mispredicted branch costs (charged once per loop exit: the "
                                  "BHT predicts the back branch taken).", "guessed")
    icache_bytes: int = _p(16384, "Rocket L1 I-cache (WithNBigCores: 64 sets x 4 ways x 64 B); code larger "
                           "than this misses on every pass.", "sourced")
    icache_line_bytes: int = _p(64, "I-cache line.", "sourced")
    icache_refill_cycles: float = _p(25.0, "Cycles to refill one I-cache line from the L2 (a hit; the L2 hit "
                                     "latency was not read from the RTL).", "guessed")

    # ---- derived --------------------------------------------------------
    @property
    def sp_rows(self) -> int:
        return self.sp_banks * self.sp_bank_rows

    @property
    def acc_rows(self) -> int:
        return self.acc_banks * self.acc_bank_rows

    def sp_bank(self, row: int) -> int:
        return row // self.sp_bank_rows

    def acc_bank(self, row: int) -> int:
        return (row // self.acc_bank_rows) % self.acc_banks

    def ideal_cycles(self, macs: int) -> float:
        """Cycles the array needs for `macs` multiply-accumulates at full use."""
        return macs / (self.dim * self.dim)

    def replace(self, **changes: Any) -> "GemminiConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Stable short hash of every field, for library records and caches."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str, str]]:
        """(name, default, source, doc) for every parameter, for docs and prompts."""
        return [
            (f.name, f.default, f.metadata.get("source", ""), f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls)
        ]


def default() -> GemminiConfig:
    """The 16x16 int8 design (GEMMINI.md section 1)."""
    return GemminiConfig()
