"""The baselines a workload is measured against (GEMMINI.md section 5, GEMMINI_CONV.md sections 4-5).

GEMMs:

- ``exo_unopt``: Exo's standard Gemmini mapping, as Schedule data (also the
  starting point of every search).
- ``exo_opt``: hand-optimized Schedules for the six ResNet-50 GEMMs.
- ``swlib`` / ``fsm``: C generators for the Gemmini software library's
  CPU-issued tiled matmul and the LOOP_WS hardware FSM.

Convolutions (C generators; ``conv_tiling`` is the library's tile heuristic):

- ``conv_exo`` / ``conv_exo_opt``: Exo's unoptimized conv mapping and the Exo
  paper's hand-optimized conv schedule;
- ``conv_swlib`` / ``conv_fsm``: the library's CPU-issued ``tiled_conv`` and
  the LOOP_CONV_WS hardware FSM driven by it.

Submodules are imported on use (Exo's Gemmini platform takes seconds to load).
"""

__all__ = ["exo_unopt", "exo_opt", "swlib", "fsm", "conv_tiling", "conv_exo", "conv_exo_opt", "conv_swlib",
           "conv_fsm"]
