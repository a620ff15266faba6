"""`sim.run`: parse and compile C once, bind numpy arrays, execute, time, report."""
from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from gemmini_isa import GemminiConfig, default

from . import ctypes_model as ct
from .compiler import RUNTIME_HELPERS, CompiledProgram, Compiler, CpuParams, FuncInfo
from .errors import ArgumentError, RuntimeCError, SimError, UnsupportedError
from .machine import Machine, check_runtime
from .parser import parse
from .timing_fast import make_timing_model

_NP_OF = {
    (8, True): np.int8, (8, False): np.uint8, (16, True): np.int16, (16, False): np.uint16,
    (32, True): np.int32, (32, False): np.uint32, (64, True): np.int64, (64, False): np.uint64,
}


@dataclass
class RunResult:
    """What one simulation produced: arrays, cycles and per-unit figures."""

    cycles: int
    instructions: dict[str, int]
    units: dict[str, dict[str, int]]
    stalls: dict[str, int]
    dram_bytes: dict[str, int]
    sp_rows_used: int
    acc_rows_used: int
    sp_rows: int
    acc_rows: int
    arrays: dict[str, np.ndarray] = field(repr=False)
    dim: int = 16
    macs: int = 0
    timing: dict[str, Any] = field(default_factory=dict, repr=False)
    # estimated RISC-V instructions the CPU executed, one per RoCC command included
    # (comparable with benchmarks/riscv_reference.py's count of the gcc -O2 build)
    cpu_instructions: int = 0

    def utilization(self, macs: Optional[int] = None) -> float:
        """Ideal array cycles (macs / dim^2) over measured cycles; `macs` defaults
        to the multiply-accumulates the array actually performed."""
        macs = self.macs if macs is None else macs
        return (macs / (self.dim * self.dim)) / self.cycles if self.cycles else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "instructions": dict(self.instructions),
            "units": {k: dict(v) for k, v in self.units.items()},
            "stalls": dict(self.stalls),
            "dram_bytes": dict(self.dram_bytes),
            "sp_rows_used": self.sp_rows_used,
            "sp_rows": self.sp_rows,
            "acc_rows_used": self.acc_rows_used,
            "acc_rows": self.acc_rows,
            "macs": self.macs,
            "utilization": self.utilization(),
            "cpu_instructions": self.cpu_instructions,
        }


def _elem_dtype(t: ct.CType) -> Any:
    if t.kind == "int":
        return np.bool_ if t.is_bool else _NP_OF[(t.bits, t.signed)]
    if t.kind == "float":
        return np.float32 if t.bits == 32 else np.float64
    return None


class Program:
    """A compiled C file: its functions, ready to run many times."""

    def __init__(self, compiled: CompiledProgram, code: Any):
        self.compiled = compiled
        self.filename = compiled.filename
        self.functions: dict[str, FuncInfo] = {k: v for k, v in compiled.functions.items() if v.node is not None}
        self._code = code
        self._code_name = code.co_filename

    @property
    def python_source(self) -> str:
        return self.compiled.source

    def _namespace(self) -> dict[str, Any]:
        ns: dict[str, Any] = dict(RUNTIME_HELPERS)
        ns["_assert"] = check_runtime
        exec(self._code, ns)  # noqa: S102 - our own generated code, never user text
        return ns

    def entry_params(self, entry: str) -> list[tuple[str, ct.CType]]:
        return list(self._entry(entry).params)

    def _entry(self, entry: str) -> FuncInfo:
        info = self.functions.get(entry)
        if info is None:
            names = ", ".join(sorted(self.functions)) or "none"
            raise ArgumentError(f"no function '{entry}' in {self.filename} (functions: {names})")
        return info

    def bind(self, m: Machine, info: FuncInfo, args: dict[str, Any]) -> tuple[list[Any], dict[str, np.ndarray],
                                                                           list[tuple[np.ndarray, np.ndarray]]]:
        args = dict(args or {})
        values: list[Any] = []
        arrays: dict[str, np.ndarray] = {}
        copy_back: list[tuple[np.ndarray, np.ndarray]] = []
        for pname, pt in info.params:
            if pt.kind == "ctx":
                args.pop(pname, None)
                values.append(None)
                continue
            if pname not in args:
                raise ArgumentError(f"missing argument '{pname}' ({pt}) of {info.name}")
            v = args.pop(pname)
            if pt.kind in ("ptr", "array"):
                elem = pt.elem
                while elem.kind == "array":
                    elem = elem.elem
                dtype = _elem_dtype(elem)
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and dtype is not None:
                    v = np.array([v], dtype=dtype)
                if not isinstance(v, np.ndarray):
                    raise ArgumentError(f"argument '{pname}' ({pt}) needs a numpy array, got {type(v).__name__}")
                if dtype is not None and v.dtype != dtype:
                    raise ArgumentError(f"argument '{pname}' ({pt}) needs dtype {np.dtype(dtype).name}, "
                                        f"got {v.dtype.name}")
                if pt.kind == "array":
                    want = tuple(pt.dims)
                    if v.shape != want and v.size != int(np.prod(want)):
                        raise ArgumentError(f"argument '{pname}' is declared {pt} but the array has shape "
                                            f"{v.shape}")
                elif pt.elem.kind == "array":
                    inner = int(np.prod(pt.elem.dims))
                    if v.size % inner:
                        raise ArgumentError(f"argument '{pname}' ({pt}) needs a multiple of {inner} elements, "
                                            f"got {v.size}")
                if v.size == 0:
                    raise ArgumentError(f"argument '{pname}' is an empty array")
                if v.flags.c_contiguous and v.flags.writeable:
                    buf = v
                else:
                    buf = np.ascontiguousarray(v).copy()
                    if v.flags.writeable:
                        copy_back.append((v, buf))
                values.append(m.dram.bind(pname, buf))
                arrays[pname] = v
            elif pt.kind == "int":
                if isinstance(v, np.ndarray) and v.size == 1:
                    v = v.reshape(-1)[0]
                if not isinstance(v, (int, bool, np.integer, np.bool_)):
                    raise ArgumentError(f"argument '{pname}' ({pt}) needs an integer, got {type(v).__name__}")
                iv = int(v)
                if pt.is_bool:
                    iv = 1 if iv else 0
                elif not pt.lo <= iv <= pt.hi:
                    raise ArgumentError(f"argument '{pname}' = {iv} does not fit {pt}")
                values.append(iv)
            elif pt.kind == "float":
                if isinstance(v, np.ndarray) and v.size == 1:
                    v = v.reshape(-1)[0]
                if not isinstance(v, (int, float, np.number)):
                    raise ArgumentError(f"argument '{pname}' ({pt}) needs a number, got {type(v).__name__}")
                fv = float(v)
                if pt.bits == 32:
                    fv = float(np.float32(fv))
                values.append(fv)
            else:
                raise ArgumentError(f"parameter '{pname}' has unsupported type {pt}")
        if args:
            raise ArgumentError(f"{info.name} has no parameter(s) {', '.join(sorted(args))} "
                                f"(parameters: {', '.join(p for p, _ in info.params)})")
        return values, arrays, copy_back

    def run(self, entry: str, args: dict[str, Any], *, config: Optional[GemminiConfig] = None,
            timing: bool = True, max_instructions: Optional[int] = 50_000_000,
            max_seconds: Optional[float] = None) -> RunResult:
        """``max_seconds``: a wall-clock limit (`TimeLimitError`; main thread only)."""
        config = config or default()
        info = self._entry(entry)
        tm = make_timing_model(config) if timing else None
        m = Machine(config, tm, max_instructions)
        values, arrays, copy_back = self.bind(m, info, args)
        ns = self._namespace()
        fn = ns[info.py]
        try:
            with time_limit(max_seconds):
                fn(m, *values)
                m.finish()
        except SimError as e:
            raise self._locate(e, sys.exc_info()[2]) from None
        except (ZeroDivisionError, ValueError, OverflowError, RecursionError, IndexError, TypeError,
                KeyError, AttributeError, MemoryError) as e:
            msg = {ZeroDivisionError: "division by zero", RecursionError: "recursion too deep"}.get(
                type(e), f"{type(e).__name__}: {e}")
            raise self._locate(RuntimeCError(msg), sys.exc_info()[2]) from None
        finally:
            for orig, buf in copy_back:
                orig[...] = buf
        sp_used, acc_used = m.rows_used()
        counts = dict(m.counts)
        counts["total"] = m.n
        if tm is not None:
            rep = tm.report()
            rd = rep.to_dict()
            cycles = int(rep.cycles)
            units = rd.get("units", {})
            stalls = rd.get("stalls", {})
        else:
            rd, cycles, units, stalls = {}, 0, {}, {}
        return RunResult(cycles=cycles, instructions=counts, units=units, stalls=stalls,
                         dram_bytes={"read": m.dram_read, "written": m.dram_written},
                         sp_rows_used=sp_used, acc_rows_used=acc_used, sp_rows=config.sp_rows,
                         acc_rows=config.acc_rows, arrays=arrays, dim=config.dim, macs=m.macs, timing=rd,
                         cpu_instructions=int(m.ni))

    def _locate(self, err: SimError, tb: Any) -> SimError:
        """Attach the C line of the innermost generated-code frame to the error."""
        line = col = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._code_name:
                idx = tb.tb_lineno - 1
                if 0 <= idx < len(self.compiled.linemap):
                    line, col = self.compiled.linemap[idx]
                    if getattr(err, "fused_second", False) and idx in self.compiled.second:
                        line, col = self.compiled.second[idx]  # the compute of a fused pair
            tb = tb.tb_next
        lines = self.compiled.c_lines
        src = lines[line - 1] if line and 0 < line <= len(lines) else None
        return err.with_location(self.filename, line or None, col or None, src)


_CACHE: "OrderedDict[str, Program]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def compile_program(c_source: str, filename: str = "<c>", config: Optional[GemminiConfig] = None,
                    max_source_bytes: Optional[int] = None) -> Program:
    """Parse and compile C text once (cached on the exact text and file name).
    Text longer than ``max_source_bytes`` (default `MAX_SOURCE_BYTES`) is
    refused with `InputTooLargeError` before parsing."""
    check_source_size(c_source, filename, max_source_bytes)
    dim = (config or default()).dim
    cpu = CpuParams.of(config or default())  # the CPU estimate is compiled in: part of the key
    if not isinstance(c_source, str):
        from .errors import CParseError
        raise CParseError(f"C source must be text, got {type(c_source).__name__}", file=filename)
    key = hashlib.sha256(f"{filename}\0{dim}\0{cpu}\0{c_source}".encode("utf-8", "surrogatepass")).hexdigest()
    with _CACHE_LOCK:
        prog = _CACHE.get(key)
        if prog is not None:
            _CACHE.move_to_end(key)
            return prog
    tree, defines = parse(c_source, filename)
    try:
        compiled = Compiler(tree, defines, filename, c_source, dim=dim, cpu=cpu).compile()
    except RecursionError:
        raise UnsupportedError("expression nested too deeply", file=filename) from None
    except SimError:
        raise
    except Exception as e:  # a compiler bug must still surface as a SimError
        raise UnsupportedError(f"internal error compiling the C: {type(e).__name__}: {e}",
                               file=filename) from e
    code_name = f"<sim:{filename}:{key[:8]}>"
    try:
        code = compile(compiled.source, code_name, "exec")
    except (SyntaxError, RecursionError) as e:  # should not happen; report as unsupported C
        raise UnsupportedError(f"could not compile the C to Python: {e}", file=filename) from None
    prog = Program(compiled, code)
    with _CACHE_LOCK:
        _CACHE[key] = prog
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prog


def run(c_source: str, entry: str, args: dict[str, Any], *, config: Optional[GemminiConfig] = None,
        filename: str = "<c>", timing: bool = True, max_instructions: Optional[int] = 50_000_000) -> RunResult:
    """Simulate `entry` of the C text with `args` (numpy arrays bound by reference)."""
    prog = compile_program(c_source, filename, config)
    return prog.run(entry, args, config=config, timing=timing, max_instructions=max_instructions)


# --------------------------------------------------------------------------- #
# Limits: input size and wall clock
# --------------------------------------------------------------------------- #

#: C text longer than this is refused before parsing (a 50 MB file takes minutes and gigabytes)
MAX_SOURCE_BYTES = 8 * 1024 * 1024


class InputTooLargeError(SimError):
    """The C source is larger than the limit."""


class TimeLimitError(SimError):
    """The run took longer than its wall-clock limit."""


def check_source_size(c_source: Any, filename: str = "<c>", limit: Optional[int] = None) -> None:
    limit = MAX_SOURCE_BYTES if limit is None else int(limit)
    n = len(c_source) if isinstance(c_source, (str, bytes)) else 0
    if limit > 0 and n > limit:
        raise InputTooLargeError(f"the C source is {n:,} bytes, more than the limit of {limit:,} "
                                 f"(--max-source-bytes)", file=filename)


class time_limit:  # noqa: N801  (a context manager)
    """Raise `TimeLimitError` in the block after ``seconds`` of wall-clock time
    (SIGALRM; a no-op off the main thread, where signals cannot be delivered)."""

    def __init__(self, seconds: Optional[float]):
        self.seconds = seconds
        self.armed = False

    def __enter__(self):
        import signal

        if not self.seconds or self.seconds <= 0 or not hasattr(signal, "setitimer") or \
                threading.current_thread() is not threading.main_thread():
            return self
        secs = float(self.seconds)

        def on_alarm(signum, frame):
            raise TimeLimitError(f"the run took longer than its wall-clock limit of {secs:g} s (--max-seconds)")

        self._old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, secs)
        self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False
