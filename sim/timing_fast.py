"""The timing model of :mod:`sim.timing`, run in C.

``sim/timing_kernel.c`` is a faithful port of :class:`sim.timing.TimingModel`
(same state, same rules, same double arithmetic in the same order: the report
is identical to the cycle). This module builds it on first use with the C
compiler (``$CC``, else ``gcc``; ``-O2 -shared -fPIC -ffp-contract=off``) into
a cache directory (``$AUTOCOMP_EXO_CACHE``, else ``~/.cache/autocomp_exo``;
the temp directory if that is not writable), keyed by a hash of the source,
the compiler and the Python version, and loads it with ctypes. Several
processes may build at once: each compiles to its own temp file and
``os.replace``-s it into place.

:class:`FastTimingModel` has the TimingModel interface (``cpu``, ``command``,
``fence``, ``fsm_begin``, ``fsm_end``, ``report``, ``now``, ``cycles``), but
its calls only append to a Python list: ``cpu`` *is* ``list.append`` and
``command`` appends one tuple. The list goes to C in bulk (every
``_FLUSH_AT`` records, and before anything reads the state). Differences:

- ``command()`` and ``fence()`` return None (the Python model returns the
  completion / CPU time; the machine ignores it). ``now`` / ``cycles`` /
  ``report()`` are exact.
- Bad input (a range outside the scratchpad / accumulator, a space that is not
  0 or 1, a non-integer byte count) raises ``ValueError`` / ``TypeError`` at
  the next flush rather than in the call itself; the functional machine never
  produces it.
- ``rows`` and ``dram_bytes`` must be integers (as the machine passes them);
  ``cols`` is not used by the model.

:func:`make_timing_model` returns a FastTimingModel when the library builds
and loads, else the Python TimingModel with one warning naming why.
``AUTOCOMP_EXO_PURE_TIMING=1`` forces the Python model.

When the compiler works but Python's headers (Python.h) are missing, the
kernel is built without its Python front end and the records are encoded to
int64 words in Python at flush time (slower, same results).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
import weakref
from array import array
from pathlib import Path
from typing import Any, Optional

from gemmini_isa.config import GemminiConfig
from gemmini_isa.config import default as _default_config

from .timing import _KIND, _UNIT_CLASS, TimingModel, TimingReport

__all__ = ["FastTimingModel", "make_timing_model", "load_library", "kernel_status"]

_SRC = Path(__file__).with_name("timing_kernel.c")
_FLUSH_AT = 4096          # records buffered in Python before they go to C
_TK_VERSION = 1           # must match TK_VERSION in timing_kernel.c
_PURE_ENV = "AUTOCOMP_EXO_PURE_TIMING"

# record tags / markers (timing_kernel.c)
_TK_CPU, _TK_CPUF, _TK_FENCE, _TK_FSM_BEGIN, _TK_FSM_END, _TK_CMD = 0, 1, 2, 3, 4, 5
_M_FENCE, _M_FSM_BEGIN, _M_FSM_END = (1,), (2,), (3,)
_OTHER_KIND = (7, 4, 9)   # config-like kind of an unknown op, per RS class (load, execute, store)


class KernelUnavailable(RuntimeError):
    """The C timing kernel could not be built or loaded."""


# ---- building and loading ------------------------------------------------
class _Kernel:
    """The loaded library and its ctypes signatures."""

    def __init__(self, path: Path):
        lib = ctypes.PyDLL(str(path))   # PyDLL: keeps the GIL, checks the Python error flag
        lib.tk_version.restype = ctypes.c_int
        lib.tk_version.argtypes = []
        if lib.tk_version() != _TK_VERSION:
            raise KernelUnavailable(f"{path} is kernel version {lib.tk_version()}, expected {_TK_VERSION}")
        lib.tk_has_python.restype = ctypes.c_int
        lib.tk_has_python.argtypes = []
        lib.tk_new.restype = ctypes.c_void_p
        lib.tk_new.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_double)]
        lib.tk_free.restype = None
        lib.tk_free.argtypes = [ctypes.c_void_p]
        lib.tk_run.restype = ctypes.c_int
        lib.tk_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        lib.tk_error.restype = ctypes.c_char_p
        lib.tk_error.argtypes = [ctypes.c_void_p]
        lib.tk_snapshot.restype = None
        lib.tk_snapshot.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double),
                                    ctypes.POINTER(ctypes.c_int64)]
        lib.tk_table_umax.restype = ctypes.c_int
        lib.tk_table_umax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_double]
        lib.tk_table_qmax.restype = ctypes.c_double
        lib.tk_table_qmax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_int64]
        self.has_python = bool(lib.tk_has_python())
        if self.has_python:
            lib.tk_feed.restype = ctypes.c_int
            lib.tk_feed.argtypes = [ctypes.c_void_p, ctypes.py_object]
        self.lib = lib
        self.path = path


_LOCK = threading.Lock()
_LOADED: dict[tuple, Any] = {}   # key -> _Kernel or the reason (str) it is unavailable
_WARNED: set = set()


def _cache_dirs() -> list[Path]:
    env = os.environ.get("AUTOCOMP_EXO_CACHE")
    first = Path(env).expanduser() if env else Path.home() / ".cache" / "autocomp_exo"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return [first, Path(tempfile.gettempdir()) / f"autocomp_exo-{uid}"]


def _compiler() -> list[str]:
    cc = os.environ.get("CC", "").strip()
    return shlex.split(cc) if cc else ["gcc"]


def _python_include() -> Optional[str]:
    inc = sysconfig.get_paths().get("include")
    if inc and os.path.exists(os.path.join(inc, "Python.h")):
        return inc
    return None


def _build(cc: list[str], flags: list[str], src: bytes, cache: Path) -> Path:
    """The library for these flags, compiled into `cache` unless already there."""
    tag = "\0".join([*cc, *flags, sys.version, sys.platform, platform.machine(), str(_TK_VERSION)])
    key = hashlib.sha256(src + b"\0" + tag.encode()).hexdigest()[:20]
    path = cache / "sim" / f"timing_kernel-{key}.so"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".timing_kernel-{key}.", suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        # compile the bytes we hashed (the .c file could change under us)
        csrc = tmp[:-3] + ".c"
        Path(csrc).write_bytes(src)
        try:
            proc = subprocess.run([*cc, *flags, csrc, "-o", tmp], capture_output=True, text=True,
                                  timeout=300, stdin=subprocess.DEVNULL)
        finally:
            os.unlink(csrc)
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout or "").strip().splitlines()
            raise KernelUnavailable(f"{' '.join(cc)} failed (exit {proc.returncode}): "
                                    + (" | ".join(err[-3:]) if err else "no output"))
        os.replace(tmp, path)   # atomic: concurrent builders each put a complete file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _load_uncached() -> _Kernel:
    cc = _compiler()
    if shutil.which(cc[0]) is None:
        raise KernelUnavailable(f"no C compiler: {cc[0]!r} not found"
                                + (" (from $CC)" if os.environ.get("CC", "").strip() else " on PATH"))
    try:
        src = _SRC.read_bytes()
    except OSError as e:
        raise KernelUnavailable(f"cannot read {_SRC}: {e}") from None
    base = ["-O2", "-shared", "-fPIC", "-ffp-contract=off"]
    inc = _python_include()
    variants = ([base + ["-DTK_PYTHON", f"-I{inc}"]] if inc else []) + [base]
    errors: list[str] = []
    for cache in _cache_dirs():
        for flags in variants:
            try:
                return _Kernel(_build(cc, flags, src, cache))
            except KernelUnavailable as e:
                errors.append(str(e))
            except (OSError, subprocess.SubprocessError) as e:
                errors.append(f"{type(e).__name__}: {e}")
                break   # the cache directory is unusable: try the next one
    raise KernelUnavailable(errors[0] if errors else "unknown reason")


def load_library() -> _Kernel:
    """The C kernel, built and loaded once per process (per compiler and cache
    directory); raises :class:`KernelUnavailable` naming why it is not there."""
    key = (tuple(_compiler()), tuple(str(p) for p in _cache_dirs()), os.environ.get("PATH", ""))
    with _LOCK:
        got = _LOADED.get(key)
        if got is None:
            try:
                got = _load_uncached()
            except KernelUnavailable as e:
                got = str(e)
            _LOADED[key] = got
    if isinstance(got, str):
        raise KernelUnavailable(got)
    return got


def kernel_status() -> str:
    """One line: which timing model :func:`make_timing_model` would use, and why."""
    if os.environ.get(_PURE_ENV, "").strip() not in ("", "0"):
        return f"python ({_PURE_ENV} is set)"
    try:
        k = load_library()
    except KernelUnavailable as e:
        return f"python (C kernel unavailable: {e})"
    return f"c ({k.path}{'' if k.has_python else ', records encoded in Python: no Python.h'})"


# ---- the model ------------------------------------------------------------
def _params(cfg: GemminiConfig) -> tuple[Any, Any]:
    """The kernel's parameters, derived exactly as sim/timing.py derives them."""
    rocc = float(cfg.cpu_rocc_cycles)
    exec_rpc = float(cfg.exec_rows_per_cycle)
    dram_lat = float(cfg.dram_latency)
    ip = (ctypes.c_int64 * 9)(
        cfg.sp_rows, cfg.acc_rows, max(1, cfg.rs_load), max(1, cfg.rs_execute), max(1, cfg.rs_store),
        max(1, cfg.dma_mvins_in_flight), cfg.dim, cfg.dma_beat_bytes, cfg.dma_max_request_bytes)
    dp = (ctypes.c_double * 17)(
        rocc,                                       # DP_ROCC
        float(cfg.cpu_op_cycles),                   # DP_OP_CYCLES
        float(cfg.fsm_issue_cycles),                # DP_FSM_ISSUE
        float(cfg.fsm_setup_cycles) * rocc,         # DP_FSM_SETUP
        float(cfg.fence_round_trip),                # DP_FENCE_RT
        exec_rpc,                                   # DP_EXEC_RPC
        cfg.dim / exec_rpc,                         # DP_PRELOAD_CYCLES
        float(cfg.preload_garbage_cycles),          # DP_GARBAGE
        float(cfg.exec_latency),                    # DP_EXEC_LAT
        float(cfg.bank_conflict_factor),            # DP_BANK_FACTOR
        float(cfg.config_ex_cycles),                # DP_CONFIG_EX
        float(cfg.config_unit_cycles),              # DP_CONFIG_UNIT
        dram_lat,                                   # DP_DRAM_LAT
        dram_lat / max(1, cfg.dma_max_inflight),    # DP_REQ_OCC
        float(cfg.store_pipeline),                  # DP_ST_PIPE
        float(cfg.store_rows_per_cycle),            # DP_ST_RPC
        float(cfg.store_ack_latency),               # DP_ST_ACK
    )
    return ip, dp


def _encode(items: list) -> array:
    """The records of `items` (what FastTimingModel buffered) as int64 words
    for tk_run: the Python-side encoder, used when the kernel has no Python
    front end."""
    out = array("q")
    ext = out.extend
    for it in items:
        if type(it) is tuple:
            if len(it) == 1:
                ext(((_TK_FENCE, _TK_FSM_BEGIN, _TK_FSM_END)[it[0] - 1],))
                continue
            op, unit, reads, writes, dram_bytes, rows, fsm, bank_conflict = it
            kind = _KIND.get(op)
            if kind is None:
                cls = _UNIT_CLASS.get(unit)
                kind = 0 if cls is None else _OTHER_KIND[cls]
            reads = list(reads)
            writes = list(writes)
            ext((_TK_CMD, kind, 1 if fsm else 0, 1 if bank_conflict else 0, dram_bytes, rows,
                 len(reads), len(writes)))
            for r in reads:
                ext(tuple(r))
            for w in writes:
                ext(tuple(w))
        elif isinstance(it, int):
            ext((_TK_CPU, it))
        else:
            ext((_TK_CPUF, struct.unpack("<q", struct.pack("<d", float(it)))[0]))
    return out


class FastTimingModel:
    """The scoreboard timing model of :mod:`sim.timing`, run in C (see the
    module docstring). Raises :class:`KernelUnavailable` if the kernel is not
    there (use :func:`make_timing_model` to fall back)."""

    report = TimingModel.report     # the same report code, over our snapshot
    cycles = TimingModel.cycles
    now = TimingModel.now

    def __init__(self, config: GemminiConfig | None = None, *, encode_in_python: bool = False):
        cfg = config if config is not None else _default_config()
        if cfg.dma_beat_bytes < 1 or cfg.dma_max_request_bytes < 1:
            raise ValueError("FastTimingModel needs dma_beat_bytes and dma_max_request_bytes >= 1")
        self.config = cfg
        kernel = load_library()
        lib = kernel.lib
        st = lib.tk_new(*_params(cfg))
        if not st:
            raise MemoryError("tk_new failed")
        self._st = st
        self._lib = lib
        self._fin = weakref.finalize(self, lib.tk_free, st)
        buf: list = []
        self._buf = buf
        app = buf.append
        ln = len
        limit = _FLUSH_AT

        if kernel.has_python and not encode_in_python:
            tk_feed = lib.tk_feed

            def flush() -> None:
                if buf:
                    tk_feed(st, buf)   # empties buf (also when it raises)
        else:
            tk_run = lib.tk_run
            tk_error = lib.tk_error

            def flush() -> None:
                if buf:
                    try:
                        words = _encode(buf)
                    finally:
                        buf.clear()
                    if tk_run(st, words.buffer_info()[0], len(words)):
                        raise ValueError(tk_error(st).decode(errors="replace"))

        def command(op: str, unit: str, reads: Any = (), writes: Any = (), dram_bytes: int = 0,
                    rows: int = 0, cols: int = 0, fsm: bool = False, bank_conflict: bool = False) -> None:
            app((op, unit, reads, writes, dram_bytes, rows, fsm, bank_conflict))
            if ln(buf) >= limit:
                flush()

        def fence() -> None:
            app(_M_FENCE)
            if ln(buf) >= limit:
                flush()

        def fsm_begin() -> None:
            app(_M_FSM_BEGIN)

        def fsm_end() -> None:
            app(_M_FSM_END)
            if ln(buf) >= limit:
                flush()

        self.command = command
        self.cpu = app   # cpu(ops): just the record
        self.fence = fence
        self.fsm_begin = fsm_begin
        self.fsm_end = fsm_end
        self.flush = flush

    def _now(self) -> float:
        return self._snapshot()["cpu_t"]

    def _snapshot(self) -> dict:
        self.flush()
        d = (ctypes.c_double * 14)()
        i = (ctypes.c_int64 * 5)()
        self._lib.tk_snapshot(self._st, d, i)
        return dict(cpu_t=d[0], last_end=d[1], cpu_busy=d[2], busy=list(d[3:6]), n_cmd=list(i[0:3]),
                    st_dep=list(d[6:9]), st_issue=list(d[9:12]), stall_rs=d[12], stall_fence=d[13],
                    dram_rd=i[3], dram_wr=i[4])


def make_timing_model(config: GemminiConfig | None = None) -> "FastTimingModel | TimingModel":
    """FastTimingModel when the C kernel builds and loads, else the Python
    TimingModel (with one warning per reason and process naming why).
    ``AUTOCOMP_EXO_PURE_TIMING=1`` forces the Python model."""
    if os.environ.get(_PURE_ENV, "").strip() not in ("", "0"):
        return TimingModel(config)
    try:
        return FastTimingModel(config)
    except (KernelUnavailable, ValueError, MemoryError, OSError, AttributeError) as e:
        why = str(e) or type(e).__name__
        with _LOCK:
            first = why not in _WARNED
            _WARNED.add(why)
        if first:
            warnings.warn(f"sim: using the slower Python timing model: the C timing kernel is unavailable "
                          f"({why}); set {_PURE_ENV}=1 to silence this", RuntimeWarning, stacklevel=2)
        return TimingModel(config)


__all__ += ["KernelUnavailable", "TimingReport"]
