"""autocomp_exo: search-based optimization of Exo procs for Gemmini."""
__version__ = "0.1.0"

# Exo front end: workloads, schedules as data, lowering to C
from . import schedule, exo_compile, workloads  # noqa: E402
from .schedule import Schedule, Step, ScheduleError  # noqa: E402
from .workloads import GemmWorkload, WorkloadError, gemm, workload_of  # noqa: E402
from .exo_compile import CompileError, to_c  # noqa: E402
