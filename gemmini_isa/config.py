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

    # ---- DMA ------------------------------------------------------------
    dma_beat_bytes: int = _p(16, "Bytes the DMA moves per cycle (128-bit bus).", "sourced")
    dma_max_request_bytes: int = _p(64, "Largest single memory request.", "sourced")
    dma_max_inflight: int = _p(16, "Memory requests in flight each way.", "sourced")
    dma_mvins_in_flight: int = _p(2, "mvin instructions the DMA works on at once.", "sourced")
    dram_latency: int = _p(80, "Cycles from a DRAM request to its first data beat (40-150 seen).", "guessed")  # calibrate.py: no better value in range

    # ---- execute --------------------------------------------------------
    exec_rows_per_cycle: int = _p(1, "Rows the array streams per cycle; a dim^3 block takes dim cycles.", "sourced")
    exec_latency: int = _p(40, "Cycles from a compute's last A row to its results landing in the accumulator (GEMMINI.md: ~40 from the first row).", "guessed")  # calibrate.py: no better value in range
    bank_conflict_factor: float = _p(2.0, "Slowdown when two operands are read from one scratchpad bank in the "
                                     "same cycles (a compute's A and D; a preload's B while the previous "
                                     "compute still streams its A). benchmarks/calibrate.py searched 1.5-2.0 "
                                     "(above 2 the model is not monotone) and kept 2.0.", "calibrated")
    config_ex_cycles: int = _p(4, "Cycles of a config_ex after the array drained.", "guessed")  # calibrate.py: no better value in range
    preload_garbage_cycles: int = _p(1, "Cycles of a preload whose B is GARBAGE (keeps the weights, only sets C).", "guessed")  # calibrate.py: no better value in range

    # ---- store ----------------------------------------------------------
    store_pipeline: int = _p(8, "Depth of the accumulator-read/scale pipeline feeding mvout.", "guessed")  # calibrate.py: no better value in range
    store_rows_per_cycle: int = _p(1, "Accumulator rows read per cycle by mvout.", "sourced")
    store_ack_latency: int = _p(20, "Cycles from an mvout's last write beat to its completion (write responses back); the next mvout need not wait for it.", "guessed")  # calibrate.py: no better value in range
    config_unit_cycles: int = _p(1, "Cycles a config_ld / config_st occupies its unit.", "guessed")  # calibrate.py: no better value in range

    # ---- CPU ------------------------------------------------------------
    cpu_rocc_cycles: int = _p(2, "CPU cycles to issue one RoCC command (the operand arithmetic is counted as "
                              "scalar ops). Fitted by benchmarks/calibrate.py to the published FireSim speedups "
                              "of the four baselines on the six GEMMs (range 2-12; GEMMINI.md guessed 4-12, "
                              "4 leaves exo-opt on 512^3 at -30%).", "calibrated")
    cpu_op_cycles: float = _p(1.6, "CPU cycles per scalar operation (loop control, address math, if): an "
                              "in-order Rocket CPI with load-use and branch stalls. Fitted by "
                              "benchmarks/calibrate.py with cpu_rocc_cycles (range 0.75-2.0; it sets the "
                              "software library at ~16% utilization).", "calibrated")
    fence_round_trip: int = _p(40, "Cycles a fence costs after everything drained (memory round trip).", "guessed")  # calibrate.py: no better value in range
    fsm_issue_cycles: int = _p(1, "Cycles between instructions the LOOP_WS FSM issues itself.", "sourced")
    fsm_setup_cycles: int = _p(8, "CPU commands the FSM needs to be configured (gemmini_loop_ws is several RoCC words).", "sourced")

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
