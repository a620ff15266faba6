"""The baselines a GEMM is measured against (GEMMINI.md section 5).

- ``exo_unopt``: Exo's standard Gemmini mapping, as Schedule data (also the
  starting point of every search).
- ``exo_opt``: hand-optimized Schedules for the six ResNet-50 GEMMs.
- ``swlib`` / ``fsm``: C generators for the Gemmini software library's
  CPU-issued tiled matmul and the LOOP_WS hardware FSM.

Submodules are imported on use (Exo's Gemmini platform takes seconds to load).
"""

__all__ = ["exo_unopt", "exo_opt", "swlib", "fsm"]
