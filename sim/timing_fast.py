"""The timing model of :mod:`sim.timing`, run in C.

``sim/timing_kernel.c`` is a faithful port of :class:`sim.timing.TimingModel`
(same state, same rules, same double arithmetic in the same order: the report
is identical, every float to the bit). This module builds it on first use with
the C compiler (``$CC``, else ``gcc``; ``-O2 -shared -fPIC -ffp-contract=off``,
plus ``-DTK_PYTHON -I<Python.h dir>`` when Python's headers are there) into a
cache directory (``$AUTOCOMP_EXO_CACHE``, else ``~/.cache/autocomp_exo``; the
temp directory if that is not writable), keyed by a hash of the source, the
flags, the compiler and the Python version. Several processes may build at
once: each compiles to its own temp file and ``os.replace``-s it into place.

The library is loaded with ctypes and, when it was built with Python.h, also
imported as the extension module ``_timing_kernel`` (the same file):
:class:`FastTimingModel`'s ``command`` / ``cpu`` / ``fence`` / ``fsm_begin`` /
``fsm_end`` are then the C methods themselves, so one call costs a C call
(no Python frame, nothing buffered). Without Python.h the calls append to a
Python list that is encoded to int64 records and handed to ``tk_run``
through ctypes every ``_FLUSH_AT`` records and before the state is read
(slower, same results).

``report()`` is built by :meth:`TimingModel.report` itself over the C state
(:class:`_ReportView`); like the Python model, ``report()`` and ``cycles``
fire the execute commands still waiting for their lookahead.
``FastTimingModel._snapshot()`` equals :func:`python_snapshot` of a Python
model fed the same calls (every raw float, bit for bit; the differential
tests compare them).

Differences from TimingModel:

- ``command()`` and ``fence()`` return None (the Python model returns the
  RS release / CPU time as far as known; the machine ignores it). ``now`` /
  ``cycles`` / ``report()`` are exact.
- ``dram_bytes``, ``rows``, ``cols``, ``dram_addr``, ``dram_stride``,
  ``flags`` and the ranges must be integers (as the machine passes them);
  ``bank_conflict`` is accepted and not used (nor is it by the Python model).
- Bad input (a range outside the scratchpad / accumulator, a space that is
  not 0 or 1) raises ``ValueError`` (``TypeError`` for non-integers): in the
  call itself with the extension, at the next flush on the ctypes path. The
  functional machine never produces it. Configs the Python model cannot run
  (a zero bank size, a DMA beat wider than the largest request, memory
  bandwidth <= 0: division by zero or an endless loop there) raise
  ``ValueError`` in the constructor (:func:`make_timing_model` then falls
  back to the Python model).

:func:`make_timing_model` returns a FastTimingModel when the library builds
and loads, else the Python TimingModel with one warning naming why.
``AUTOCOMP_EXO_PURE_TIMING=1`` forces the Python model.
"""
from __future__ import annotations

import ctypes
import hashlib
import operator
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

from .timing import _KIND, _UNIT_CLASS, TimingModel, TimingReport, _ceil

__all__ = ["FastTimingModel", "make_timing_model", "load_library", "kernel_status"]

_SRC = Path(__file__).with_name("timing_kernel.c")
# Records buffered in Python before they go to C. Small on purpose: the
# buffered tuples are young GC-tracked objects, and more than ~700 of them alive
# at once trigger cyclic-GC passes (a 4096-record buffer made the GC cost more
# than the whole model); a flush is one ctypes call (~1-2 us).
_FLUSH_AT = 256
_TK_VERSION = 3           # must match TK_VERSION in timing_kernel.c
_PURE_ENV = "AUTOCOMP_EXO_PURE_TIMING"

# record tags / markers (timing_kernel.c)
_TK_CPU, _TK_CPUF, _TK_FENCE, _TK_FSM_BEGIN, _TK_FSM_END, _TK_CMD = 0, 1, 2, 3, 4, 5
_M_FENCE, _M_FSM_BEGIN, _M_FSM_END = (1,), (2,), (3,)
_OTHER_KIND = (7, 4, 9)   # config-like kind of an unknown op, per RS class (load, execute, store)


class KernelUnavailable(RuntimeError):
    """The C timing kernel could not be built or loaded."""


# ---- building and loading ------------------------------------------------
class _Kernel:
    """The loaded library: its ctypes signatures, and the extension module
    ``_timing_kernel`` from the same file when it was built with Python.h."""

    def __init__(self, path: Path):
        lib = ctypes.PyDLL(str(path))   # PyDLL: keeps the GIL, like the Python model
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
        lib.tk_snapshot_size.restype = None
        lib.tk_snapshot_size.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64),
                                         ctypes.POINTER(ctypes.c_int64)]
        lib.tk_finish.restype = ctypes.c_double
        lib.tk_finish.argtypes = [ctypes.c_void_p]
        lib.tk_now.restype = ctypes.c_double
        lib.tk_now.argtypes = [ctypes.c_void_p]
        lib.tk_calendar.restype = ctypes.c_int64
        lib.tk_calendar.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double), ctypes.c_int64]
        lib.tk_table_umax.restype = ctypes.c_int
        lib.tk_table_umax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_double]
        lib.tk_table_qmax.restype = ctypes.c_double
        lib.tk_table_qmax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_int64]
        self.ext: Any = None
        if lib.tk_has_python():
            from importlib.machinery import ExtensionFileLoader
            from importlib.util import module_from_spec, spec_from_file_location
            loader = ExtensionFileLoader("_timing_kernel", str(path))
            spec = spec_from_file_location("_timing_kernel", str(path), loader=loader)
            ext = module_from_spec(spec)
            loader.exec_module(ext)
            if ext.VERSION != _TK_VERSION:
                raise KernelUnavailable(f"{path}: extension version {ext.VERSION}, expected {_TK_VERSION}")
            self.ext = ext
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
            except ImportError as e:   # the extension did not import: no use retrying elsewhere
                errors.append(f"{type(e).__name__}: {e}")
                break
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
    return f"c ({k.path}{'' if k.ext is not None else ', records encoded in Python: no Python.h'})"


# ---- the model ------------------------------------------------------------
def _params(cfg: GemminiConfig) -> tuple[Any, Any]:
    """The kernel's parameters (layout: IP_* / DP_* in timing_kernel.c):
    integers the model uses as integers (with the max(1, n) sizes
    sim/timing.py takes), and ``float(cfg.x)`` of those it uses as floats,
    derived exactly as sim/timing.py derives them."""
    ip = (ctypes.c_int64 * 19)(
        cfg.sp_rows, cfg.acc_rows,
        max(1, cfg.rs_load), max(1, cfg.rs_execute), max(1, cfg.rs_store),
        max(1, cfg.frontend_slack), max(1, cfg.dma_mvins_in_flight), max(1, cfg.dma_read_ids),
        max(1, cfg.dma_write_ids), max(1, cfg.tlb_entries), max(1, cfg.fsm_concurrent_loops),
        cfg.dim, cfg.dma_beat_bytes, cfg.dma_max_request_bytes, cfg.sp_bank_rows, cfg.acc_bank_rows,
        cfg.acc_banks, cfg.exec_min_rows, cfg.mvout_buffer_rows)
    dp = (ctypes.c_double * 23)(
        float(cfg.cpu_rocc_cycles),
        float(cfg.rocc_replay_cycles),
        float(cfg.frontend_latency),
        float(cfg.rs_issue_latency),
        float(cfg.ld_queue_latency),
        float(cfg.ex_queue_latency),
        float(cfg.st_queue_latency),
        float(cfg.mvin_request_latency),
        float(cfg.mvin_write_latency),
        float(cfg.mvin_release_cycles),
        float(cfg.mvin_scaled_row_cycles),
        float(cfg.zero_fill_latency),
        float(cfg.mvout_read_latency),
        float(cfg.mvout_put_latency),
        float(cfg.mem_read_latency),
        float(cfg.mem_write_latency),
        float(cfg.mem_bytes_per_cycle),
        float(cfg.tlb_miss_cycles),
        float(cfg.exec_result_latency),
        float(cfg.acc_commit_cycles),
        float(cfg.config_ex_cycles),
        float(cfg.fence_tail_cycles),
        float(cfg.fsm_setup_commands) * float(cfg.cpu_rocc_cycles),   # fsm_begin's setup
    )
    return ip, dp


def _check_config(cfg: GemminiConfig) -> None:
    """Configs the kernel refuses (the Python model divides by zero or loops
    forever on them)."""
    ints = ("sp_rows", "acc_rows", "dim", "dma_beat_bytes", "dma_max_request_bytes", "sp_bank_rows",
            "acc_bank_rows", "acc_banks", "exec_min_rows", "mvout_buffer_rows")
    for name in ints:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"FastTimingModel needs an integer {name} (got {v!r})")
    if min(cfg.dim, cfg.dma_beat_bytes, cfg.sp_bank_rows, cfg.acc_bank_rows, cfg.acc_banks) < 1:
        raise ValueError("FastTimingModel needs dim, dma_beat_bytes, sp/acc_bank_rows and acc_banks >= 1")
    if cfg.dma_beat_bytes > cfg.dma_max_request_bytes:
        raise ValueError("FastTimingModel needs dma_beat_bytes <= dma_max_request_bytes")
    if cfg.mvout_buffer_rows < 0 or cfg.sp_rows < 0 or cfg.acc_rows < 0:
        raise ValueError("FastTimingModel needs mvout_buffer_rows, sp_rows and acc_rows >= 0")
    bw = float(cfg.mem_bytes_per_cycle)
    if not (0.0 < bw < float("inf")):
        raise ValueError(f"FastTimingModel needs 0 < mem_bytes_per_cycle < inf (got {bw!r})")


# the raw state (tk_snapshot): names of the float scalars, of the 3-vectors, of the int scalars
_SNAP_D = ("cpu_t", "cpu_busy", "cpu_scalar", "stall_rs", "stall_fence", "last_alloc", "store_release",
           "last_end", "ex_free", "ex_drain", "bank_stall", "ld_free", "get_free", "wr_free", "last_ack",
           "fsm_last_issue", "run_start", "run_ld", "run_ex", "row_w")
_SNAP_D3 = ("busy", "busy_until", "st_dep", "st_issue", "last_issue", "fsm_next")
_SNAP_I = ("n_rocc", "fe_i", "dram_rd", "dram_wr", "in_fsm", "n_pending", "has_wait_pre")


def _unpack_snapshot(d: Any, iv: Any, cfg: GemminiConfig) -> dict:
    out: dict = {}
    k = 0
    for name in _SNAP_D:
        out[name] = d[k]
        k += 1
    for name in _SNAP_D3:
        out[name] = list(d[k:k + 3])
        k += 3
    sizes = (("fe_ring", max(1, cfg.frontend_slack)), ("rs_load", max(1, cfg.rs_load)),
             ("rs_execute", max(1, cfg.rs_execute)), ("rs_store", max(1, cfg.rs_store)),
             ("ld_slots", max(1, cfg.dma_mvins_in_flight)), ("rids", max(1, cfg.dma_read_ids)),
             ("wids", max(1, cfg.dma_write_ids)))
    for name, n in sizes:
        out[name] = list(d[k:k + n])
        k += n
    j = 0
    for name in _SNAP_I:
        out[name] = iv[j]
        j += 1
    runs_n, tlb_n = iv[j], iv[j + 1]
    j += 2
    out["runs"] = list(d[k:k + runs_n])
    out["n_cmd"] = list(iv[j:j + 3])
    out["tlb_last"] = list(iv[j + 3:j + 5])
    out["tlb"] = list(iv[j + 5:j + 5 + tlb_n])
    out["rs"] = [out.pop("rs_load"), out.pop("rs_execute"), out.pop("rs_store")]
    return out


def python_snapshot(tm: TimingModel) -> dict:
    """The same raw state as :meth:`FastTimingModel._snapshot`, read from a
    Python :class:`~sim.timing.TimingModel` (for the differential tests)."""
    out: dict = {name: getattr(tm, name) for name in _SNAP_D}
    for name in _SNAP_D3:
        out[name] = list(getattr(tm, name))
    for name in ("fe_ring", "ld_slots", "rids", "wids", "runs", "n_cmd", "tlb_last", "tlb"):
        out[name] = list(getattr(tm, name))
    out["rs"] = [list(r) for r in tm.rs]
    out.update(n_rocc=tm.n_rocc, fe_i=tm.fe_i, dram_rd=tm.dram_rd, dram_wr=tm.dram_wr, in_fsm=int(tm.in_fsm),
               n_pending=len(tm.pending), has_wait_pre=int(tm.wait_pre is not None))
    return out


def python_calendar(tm: TimingModel) -> list:
    """The memory calendar's non-zero buckets, (bucket, bytes) in bucket order."""
    return sorted((float(b), u) for b, u in tm.cal.items() if u != 0.0)


class _ReportView:
    """What TimingModel.report() reads, from a snapshot: the report is built
    by the Python model's own code."""

    def __init__(self, snap: dict, end: float, config: GemminiConfig):
        self.__dict__.update(snap)
        self.config = config
        self._end = end

    def _finish_time(self) -> float:
        return self._end


def _encode(items: list) -> array:
    """The records of `items` (buffered calls) as int64 words for tk_run: the
    Python-side encoder, used when the kernel has no Python front end and by
    :class:`TraceRecorder`. A command is ``TK_CMD, kind, fsm, flags,
    dram_bytes, rows, cols, dram_addr, dram_stride, n_reads, n_writes`` then
    ``space, start, end`` per range; ``cpu(cycles)`` is ``TK_CPUF`` and the
    double's bits."""
    out = array("q")
    ext = out.extend
    index = operator.index   # integers only (TypeError for floats and strings), as the extension
    for it in items:
        if type(it) is tuple:
            if len(it) == 1:
                ext(((_TK_FENCE, _TK_FSM_BEGIN, _TK_FSM_END)[it[0] - 1],))
                continue
            op, unit, reads, writes, dram_bytes, rows, cols, fsm, flags, dram_addr, dram_stride = it
            kind = _KIND.get(op)
            if kind is None:
                cls = _UNIT_CLASS.get(unit)
                kind = 0 if cls is None else _OTHER_KIND[cls]
            reads = list(reads)
            writes = list(writes)
            ext((_TK_CMD, kind, 1 if fsm else 0, index(flags), index(dram_bytes), index(rows), index(cols),
                 index(dram_addr), index(dram_stride), len(reads), len(writes)))
            for r in reads:
                sp, a, b = r   # ValueError unless a triple
                ext((index(sp), index(a), index(b)))
            for w in writes:
                sp, a, b = w
                ext((index(sp), index(a), index(b)))
        else:
            ext((_TK_CPUF, struct.unpack("<q", struct.pack("<d", float(it)))[0]))
    return out


_KIND_NAME = {v: k for k, v in _KIND.items() if k not in ("compute_accumulated", "mvin_acc")}
_KIND_UNIT = {1: "execute", 2: "execute", 3: "execute", 4: "execute", 5: "load", 6: "load", 7: "load",
              8: "store", 9: "store"}
_KIND_NAME.update({4: "ex_other"})


def replay_python(words: Any, tm: Any) -> Any:
    """Feed int64 records (:func:`_encode`) to a model with the Python API."""
    w = [int(x) for x in (words.tolist() if hasattr(words, "tolist") else words)]
    i, n = 0, len(w)
    while i < n:
        tag = w[i]
        if tag == _TK_CPUF:
            tm.cpu(struct.unpack("<d", struct.pack("<q", w[i + 1]))[0])
            i += 2
        elif tag == _TK_CPU:
            tm.cpu(w[i + 1])
            i += 2
        elif tag == _TK_FENCE:
            tm.fence()
            i += 1
        elif tag == _TK_FSM_BEGIN:
            tm.fsm_begin()
            i += 1
        elif tag == _TK_FSM_END:
            tm.fsm_end()
            i += 1
        elif tag == _TK_CMD:
            kind, fsm, flags, nb, rows, cols, addr, stride, nr, nw = w[i + 1:i + 11]
            i += 11
            reads = tuple(tuple(w[i + 3 * j:i + 3 * j + 3]) for j in range(nr))
            i += 3 * nr
            writes = tuple(tuple(w[i + 3 * j:i + 3 * j + 3]) for j in range(nw))
            i += 3 * nw
            if kind == 0:
                tm.command("flush", "sync", (), (), 0, 0, 0, bool(fsm))
            else:
                tm.command(_KIND_NAME[kind], _KIND_UNIT[kind], reads, writes, nb, rows, cols, bool(fsm),
                           False, addr, stride, flags)
        else:
            raise ValueError(f"bad trace record tag {tag} at word {i}")
    return tm


class FastTimingModel:
    """The scoreboard timing model of :mod:`sim.timing`, run in C (see the
    module docstring). Raises :class:`KernelUnavailable` if the kernel is not
    there (use :func:`make_timing_model` to fall back).

    ``encode_in_python=True`` uses the ctypes path (records buffered in Python
    and encoded to int64 words) even when the extension is there (tests)."""

    def __init__(self, config: GemminiConfig | None = None, *, encode_in_python: bool = False):
        cfg = config if config is not None else _default_config()
        _check_config(cfg)
        self.config = cfg
        kernel = load_library()
        lib = self._lib = kernel.lib
        ip, dp = _params(cfg)
        if kernel.ext is not None and not encode_in_python:
            # every call goes straight into C: the methods are the model
            m = self._m = kernel.ext.new(bytes(ip), bytes(dp))
            self._st = m.address()
            self.command = m.command
            self.cpu = m.cpu
            self.fence = m.fence
            self.fsm_begin = m.fsm_begin
            self.fsm_end = m.fsm_end
            self.flush = _nothing
            return
        self._m = None
        st = lib.tk_new(ip, dp)
        if not st:
            raise ValueError("timing: tk_new refused the parameters (or out of memory)")
        self._st = st
        self._fin = weakref.finalize(self, lib.tk_free, st)
        buf: list = []
        self._buf = buf
        app = buf.append
        ln = len
        limit = _FLUSH_AT
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
                    rows: int = 0, cols: int = 0, fsm: bool = False, bank_conflict: bool = False,
                    dram_addr: int = 0, dram_stride: int = 0, flags: int = 0) -> None:
            app((op, unit, reads, writes, dram_bytes, rows, cols, fsm, flags, dram_addr, dram_stride))
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
        self.cpu = app   # cpu(cycles): just the record
        self.fence = fence
        self.fsm_begin = fsm_begin
        self.fsm_end = fsm_end
        self.flush = flush

    # ---- results (TimingModel's, over the C state) ----------------------------------
    def _finish_time(self) -> float:
        """TimingModel._finish_time: fires the pending executes, like the Python model."""
        if self._m is not None:
            return self._m.finish()
        self.flush()
        return self._lib.tk_finish(self._st)

    @property
    def now(self) -> float:
        """Current CPU time (cycles)."""
        if self._m is not None:
            return self._m.now()
        self.flush()
        return self._lib.tk_now(self._st)

    @property
    def cycles(self) -> int:
        """Cycles until everything issued so far (and the CPU) has finished."""
        return _ceil(self._finish_time())

    def report(self) -> TimingReport:
        """The same report as TimingModel.report() (built by its code)."""
        end = self._finish_time()
        return TimingModel.report(_ReportView(self._snapshot(), end, self.config))  # type: ignore[arg-type]

    def _snapshot(self) -> dict:
        """The raw state (the same dict as :func:`python_snapshot` of the Python model)."""
        if self._m is not None:
            d, i = self._m.snapshot()
        else:
            self.flush()
            nd, ni = ctypes.c_int64(), ctypes.c_int64()
            self._lib.tk_snapshot_size(self._st, ctypes.byref(nd), ctypes.byref(ni))
            d = (ctypes.c_double * nd.value)()
            i = (ctypes.c_int64 * ni.value)()
            self._lib.tk_snapshot(self._st, d, i)
        return _unpack_snapshot(d, i, self.config)

    def _calendar(self) -> list:
        """The memory calendar's non-zero buckets (as :func:`python_calendar`)."""
        self.flush()
        n = self._lib.tk_calendar(self._st, None, 0)
        buf = (ctypes.c_double * max(1, 2 * n))()
        self._lib.tk_calendar(self._st, buf, n)
        return [(buf[2 * k], buf[2 * k + 1]) for k in range(n)]


def _nothing() -> None:
    pass


class TraceRecorder:
    """A timing-model stand-in that records every call (the machine's
    ``command`` / ``cpu`` / ``fence`` / ``fsm_begin`` / ``fsm_end`` stream) as
    the kernel's int64 records, so one simulation can be re-timed under many
    configurations with :func:`replay_trace` (calibration, parameter sweeps).
    The recorded stream does not depend on the timing parameters: the
    functional machine never reads the model's results. ``report()`` replays
    the trace under the recorder's own config (same report as the real model).
    """

    def __init__(self, config: GemminiConfig | None = None):
        self.config = config if config is not None else _default_config()
        self._chunks: list[array] = []
        buf: list = []
        self._buf = buf
        app = buf.append
        ln = len
        limit = 4096

        def command(op: str, unit: str, reads: Any = (), writes: Any = (), dram_bytes: int = 0,
                    rows: int = 0, cols: int = 0, fsm: bool = False, bank_conflict: bool = False,
                    dram_addr: int = 0, dram_stride: int = 0, flags: int = 0) -> None:
            app((op, unit, tuple(reads), tuple(writes), int(dram_bytes), int(rows), int(cols), fsm, int(flags),
                 int(dram_addr), int(dram_stride)))
            if ln(buf) >= limit:
                self._flush()

        self.command = command
        self.cpu = app
        self.fence = lambda: app(_M_FENCE)
        self.fsm_begin = lambda: app(_M_FSM_BEGIN)
        self.fsm_end = lambda: app(_M_FSM_END)

    def _flush(self) -> None:
        if self._buf:
            self._chunks.append(_encode(self._buf))
            self._buf.clear()

    def words(self) -> array:
        """The whole trace as int64 records (``array('q')``)."""
        self._flush()
        out = array("q")
        for c in self._chunks:
            out.extend(c)
        self._chunks = [out]
        return out

    def report(self) -> TimingReport:
        return replay_trace(self.words(), self.config)

    @property
    def cycles(self) -> int:
        return self.report().cycles


def replay_trace(words: Any, config: GemminiConfig | None = None) -> TimingReport:
    """Time a recorded trace (:meth:`TraceRecorder.words`: an ``array('q')``,
    a numpy int64 array or bytes) under `config` with the C kernel (the Python
    model when the kernel is unavailable); the report equals the one the live
    model gives for the same run."""
    try:
        load_library()
    except KernelUnavailable:
        import numpy as np
        arr = np.frombuffer(words, dtype=np.int64) if isinstance(words, (bytes, bytearray)) else words
        return replay_python(arr, TimingModel(config)).report()
    fm = FastTimingModel(config, encode_in_python=True)
    if isinstance(words, array):
        ptr, n = words.buffer_info()
        keep = words
    else:
        import numpy as np
        keep = np.ascontiguousarray(np.frombuffer(words, dtype=np.int64) if isinstance(words, (bytes, bytearray))
                                    else words, dtype=np.int64)
        ptr, n = keep.ctypes.data, len(keep)
    if fm._lib.tk_run(fm._st, ptr, n):
        raise ValueError(fm._lib.tk_error(fm._st).decode(errors="replace"))
    del keep
    return fm.report()


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


__all__ += ["KernelUnavailable", "TimingReport", "TraceRecorder", "replay_trace"]
