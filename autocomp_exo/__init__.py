"""autocomp_exo: search-based optimization of Exo procs for Gemmini."""
__version__ = "0.1.0"
