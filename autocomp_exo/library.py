"""The schedule library: one versioned JSON record per (workload, hardware).

A library is a directory of JSON files, one per workload signature and
hardware configuration (``gemm_512x512x512__<fingerprint>.json``).  Each file
holds one *record* (format ``autocomp_exo.library/1``)::

    {
      "format": "autocomp_exo.library/1",
      "workload": {"kind": "gemm", "M": 512, "N": 512, "K": 512, "relu": false,
                   "dtype": "int8", "acc": "int32"},       # GemmWorkload.signature()
      "hardware": "a2fbee3ee1234434",                      # GemminiConfig.fingerprint()
      "schedule": [{"op": ..., "args": [...], "kwargs": {...}, "menu": "unroll"}, ...],
      "menu": ["exo-unopt", "tiling", "unroll", ...],      # distinct menu options, in order
      "cycles": 889209,                                    # simulated, eval seed below
      "baseline": "exo-unopt", "baseline_cycles": 1352751,
      "speedup": 1.52, "utilization": 0.59, "eval_seed": 0,
      "provenance": {"source": "search" | "hand-written" | "transfer" | ...,
                     "package": "autocomp_exo 0.1.0", "exo": "exo-lang 1.0.0",
                     "agent": "offline", "models": [], "seed": 0, "samples": 120,
                     "date": "2026-11-25T11:30:00+00:00", "note": "..."}
    }

Rules:

- Records count only when verified. ``add(result_or_record)`` replays the
  schedule on its workload in a worker process (under a timeout), simulates
  it and checks it bit-exact on fresh inputs before storing; the record then
  carries ``"verification"`` (cycles, input seeds, date). A record that does
  not replay or run correctly is refused (`RecordError`); one whose cycles
  differ from its claim is stored with the measured cycles.
  ``add(..., verify=False)`` stores an *unverified* record: it never
  replaces a stored record, and any verified record replaces it.
- Between verified records the best (fewest cycles) is kept; when a new
  record is not faster, the stored one is verified again and replaced if it
  no longer verifies (a stale record does not stay forever).
- Records with unchecked steps (``add_unsafe_guard``, ``unsafe_disable_check(s)``:
  Exo did not prove them) are marked (``"unchecked"``: the step indices),
  warned about, and verified on several fresh inputs.
- Reading caps the size (`MAX_BYTES`) and nesting depth (`MAX_DEPTH`) of a
  file: a deeply nested or huge file is skipped with a warning, not a crash.
- Writes hold a lock on the library (``filelock``), write a temporary file in
  the same directory and ``os.replace`` it over the target: readers never see a
  half-written file, and several processes may add at once.
- A file that cannot be read or is not a valid record is skipped with a
  warning naming the file (``LibraryWarning``); it never stops a search.  When
  ``add`` meets a corrupt file for its own key it moves it aside
  (``*.corrupt-<time>``) before writing.
- ``export(path)`` writes every record into one JSON file
  (``{"format": "autocomp_exo.library-export/1", "records": [...]}``);
  ``import_(path)`` merges such a file (or a single record, or another
  library directory) by the same rule as ``add``.

Numbers in a record come from a simulation run by whoever added it; the
``provenance`` says by what.  ``verify(record)`` replays and simulates it
again (see `autocomp_exo.transfer` and `optimize`'s ``library=``), and a
record that no longer replays or no longer gives its cycles is reported as
stale (`StaleRecord`), not trusted.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
import os
import re
import secrets
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import gemmini_isa
from filelock import FileLock

from . import __version__
from .atomic_write import write_atomic
from .database import Database, rank
from .measurement import Measurement
from .schedule import Schedule, ScheduleError
from .shipped import shipped_dir
from .workers import Task, WorkerPool

__all__ = [
    "FORMAT", "EXPORT_FORMAT", "Record", "Library", "LibraryWarning", "RecordError", "StaleRecord",
    "record_from_result", "signature_of", "hardware_fingerprint", "verify", "builtin", "load_json",
    "fresh_seeds", "Verification", "MAX_BYTES", "MAX_DEPTH",
]

FORMAT = "autocomp_exo.library/1"
#: a record file larger than this, or nested deeper, is not read
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 48
#: fresh input seeds a record is verified on (records with unchecked steps: more)
VERIFY_SEEDS = 1
VERIFY_SEEDS_UNCHECKED = 4
EXPORT_FORMAT = "autocomp_exo.library-export/1"
LOCK_NAME = ".library.lock"

#: the shipped library: package data in an installed wheel, the checkout's
#: top-level schedules/ in a source checkout (`autocomp_exo.shipped`)
BUILTIN_DIR = shipped_dir("schedules")


class LibraryWarning(UserWarning):
    """A library file was skipped (unreadable, corrupt, or of an unknown format)."""


class RecordError(ValueError):
    """Data that is not a valid library record (the message says what is wrong)."""


class StaleRecord(RuntimeError):
    """A record that no longer replays, or no longer simulates to its cycles."""

    def __init__(self, record: "Record", reason: str, measured: Optional[int] = None):
        self.record = record
        self.reason = reason
        self.measured = measured
        super().__init__(f"stale library record for {record.name} ({record.cycles:,} cycles recorded): {reason}")


# --------------------------------------------------------------------------- #
# Bounded JSON
# --------------------------------------------------------------------------- #


def json_depth(text: str) -> int:
    """The bracket nesting depth of JSON text (strings skipped), without recursion."""

    depth = best = 0
    # strings first (they may hold brackets), then the structure
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        c = m.group(0)
        if c in "[{":
            depth += 1
            if depth > best:
                best = depth
        elif c in "]}":
            depth -= 1
    return best


def load_json(text: str | bytes, *, what: str = "record", max_bytes: Optional[int] = None,
              max_depth: Optional[int] = None) -> Any:
    """``json.loads`` with a size and a nesting-depth cap (RecordError beyond them)."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    if isinstance(text, bytes):
        text = text.decode()
    if len(text) > max_bytes:
        raise RecordError(f"{what} is {len(text):,} bytes, more than the {max_bytes:,} a {what} may have")
    d = json_depth(text)
    if d > max_depth:
        raise RecordError(f"{what} is nested {d} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise RecordError(f"{what} is nested too deeply") from None
    except ValueError as e:
        raise RecordError(f"invalid JSON: {e}") from None


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #


def hardware_fingerprint(config: Any = None) -> str:
    """The fingerprint of a GemminiConfig (the default design when None)."""
    if config is None:
        config = gemmini_isa.default()
    if isinstance(config, str):
        return config
    return config.fingerprint()


def signature_of(x: Any, relu: Optional[bool] = None) -> dict:
    """The workload signature of a GemmWorkload, an Exo GEMM proc, a Record or a signature dict."""
    if isinstance(x, Record):
        return dict(x.workload)
    if isinstance(x, dict):
        return _check_signature(x)
    if hasattr(x, "signature") and callable(x.signature):
        return x.signature()
    from .workloads import workload_of   # deferred: Exo (listing a library stays fast)

    return workload_of(x, relu=bool(relu)).signature()


def _check_signature(d: dict) -> dict:
    """A workload signature dict: a GEMM's (no "kind" is a GEMM: older records)
    checked and normalised like GemmWorkload.signature() (without importing Exo:
    listing a library stays fast); another kind's kept as it is (its
    `Workload.from_signature` checks it when the workload is built)."""
    kind = d.get("kind", "gemm")
    if not isinstance(kind, str) or not kind:
        raise RecordError(f"bad workload kind in {d!r}")
    if kind != "gemm":
        return json.loads(json.dumps(d, sort_keys=True))
    dims = {}
    for k in ("M", "N", "K"):
        v = d.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v % 16:
            raise RecordError(f"{k}={v!r}: M, N, K must be positive multiples of 16")
        dims[k] = v
    relu = d.get("relu", False)
    if not isinstance(relu, bool):
        raise RecordError(f"relu must be a bool, got {relu!r}")
    return {"kind": "gemm", **dims, "relu": relu, "dtype": d.get("dtype", "int8"), "acc": d.get("acc", "int32")}


def _sig_name(sig: dict) -> str:
    """A record's name (and file name stem): one per signature, so that two
    workloads that differ in any field (the int32 matmul with and without
    ``accumulate``, say) never share a file. ``kind_MxNxK``, then every other
    field: true flags by name (``_relu``), other values as ``_fieldvalue``."""
    kind = str(sig.get("kind", "gemm"))
    mnk = all(k in sig for k in ("M", "N", "K"))
    name = f"{kind}_{sig['M']}x{sig['N']}x{sig['K']}" if mnk else kind
    for k in sorted(sig):
        v = sig[k]
        if k in ("kind", "dtype", "acc") or (mnk and k in ("M", "N", "K")) or v is False or v is None:
            continue
        name += f"_{k}" if v is True else f"_{k}{v}"
    if sig.get("dtype", "int8") != "int8" or sig.get("acc", "int32") != "int32":
        name += f"_{sig.get('dtype')}_{sig.get('acc')}"
    return re.sub(r"[^\w.=-]+", "-", name)


def _versions() -> dict:

    try:
        exo_v = md.version("exo-lang")
    except Exception:  # pragma: no cover
        exo_v = "unknown"
    return {"package": f"autocomp_exo {__version__}", "exo": f"exo-lang {exo_v}"}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Record:
    """One library record (see the module doc for the JSON form)."""

    workload: dict
    hardware: str
    schedule: Any                 # autocomp_exo.Schedule
    cycles: int
    baseline_cycles: Optional[int] = None
    baseline: Optional[str] = "exo-unopt"
    utilization: Optional[float] = None
    eval_seed: int = 0
    provenance: dict = field(default_factory=dict)
    path: Optional[str] = None    # the file it was read from (not serialised)
    #: None (never verified) or {"cycles", "seeds", "date", "package"}: the
    #: replay, simulation and bit-exact check `Library.add` ran before storing
    verification: Optional[dict] = None

    @property
    def verified(self) -> bool:
        return bool(self.verification)

    @property
    def unchecked(self) -> list[int]:
        """Indices of steps Exo did not prove (unsafe flags, ``add_unsafe_guard``)."""
        return [i for i, s in enumerate(self.schedule.steps) if s.unsafe]

    # -- derived -----------------------------------------------------------
    @property
    def name(self) -> str:
        return _sig_name(self.workload)

    @property
    def key(self) -> tuple:
        return (json.dumps(self.workload, sort_keys=True), self.hardware)

    @property
    def filename(self) -> str:
        return f"{self.name}__{self.hardware}.json"

    @property
    def M(self) -> int:
        return int(self.workload["M"])

    @property
    def N(self) -> int:
        return int(self.workload["N"])

    @property
    def K(self) -> int:
        return int(self.workload["K"])

    @property
    def speedup(self) -> Optional[float]:
        return self.baseline_cycles / self.cycles if self.baseline_cycles and self.cycles else None

    @property
    def menu(self) -> list[str]:
        """The distinct menu options of the schedule's steps, in order of first use."""
        return list(dict.fromkeys(s.menu for s in self.schedule.steps if s.menu))

    @property
    def source(self) -> str:
        return str(self.provenance.get("source", "unknown"))

    def gemm_workload(self):
        """The record's workload (`Workload.from_signature`; a signature without "kind" is a GEMM)."""
        from .workloads import Workload   # deferred: Exo (listing a library stays fast)

        return Workload.from_signature(self.workload)

    workload_object = gemm_workload

    def better_than(self, other: Optional["Record"]) -> bool:
        """Strictly fewer cycles than ``other`` (None: always better)."""
        return other is None or self.cycles < other.cycles

    # -- JSON --------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "workload": dict(self.workload),
            "hardware": self.hardware,
            "schedule": self.schedule.to_list(),
            "menu": self.menu,
            "cycles": int(self.cycles),
            "baseline": self.baseline,
            "baseline_cycles": None if self.baseline_cycles is None else int(self.baseline_cycles),
            "speedup": self.speedup,
            "utilization": self.utilization,
            "eval_seed": int(self.eval_seed),
            "provenance": dict(self.provenance),
            "verification": None if self.verification is None else dict(self.verification),
            "unchecked": self.unchecked,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Any, path: Optional[str] = None) -> "Record":
        if not isinstance(d, dict):
            raise RecordError(f"a record is a JSON object, got {type(d).__name__}")
        fmt = d.get("format")
        if fmt != FORMAT:
            raise RecordError(f"unknown record format {fmt!r} (this version reads {FORMAT!r})")
        for k in ("workload", "hardware", "schedule", "cycles"):
            if k not in d:
                raise RecordError(f"record has no {k!r}")
        try:
            sig = signature_of(d["workload"])
        except Exception as e:
            raise RecordError(f"bad workload signature {d['workload']!r}: {e}") from None
        if not isinstance(d["hardware"], str) or not d["hardware"]:
            raise RecordError(f"bad hardware fingerprint {d['hardware']!r}")
        cyc = d["cycles"]
        if not isinstance(cyc, int) or isinstance(cyc, bool) or cyc <= 0:
            raise RecordError(f"bad cycles {cyc!r}")
        try:
            sched = Schedule.from_json(d["schedule"])
        except ScheduleError as e:
            raise RecordError(f"bad schedule: {e}") from None
        bc = d.get("baseline_cycles")
        if bc is not None and (not isinstance(bc, int) or isinstance(bc, bool) or bc <= 0):
            raise RecordError(f"bad baseline_cycles {bc!r}")
        prov = d.get("provenance") or {}
        if not isinstance(prov, dict):
            raise RecordError("provenance must be an object")
        ver = d.get("verification")
        if ver is not None and not (isinstance(ver, dict) and isinstance(ver.get("cycles"), int)
                                    and isinstance(ver.get("seeds"), list)):
            raise RecordError(f"bad verification {ver!r}")
        return cls(workload=sig, hardware=d["hardware"], schedule=sched, cycles=cyc, baseline_cycles=bc,
                   baseline=d.get("baseline"), utilization=d.get("utilization"),
                   eval_seed=int(d.get("eval_seed", 0) or 0), provenance=dict(prov), path=path,
                   verification=None if ver is None else dict(ver))

    @classmethod
    def from_json(cls, text: str, path: Optional[str] = None) -> "Record":
        return cls.from_dict(load_json(text), path)

    def summary(self) -> str:
        sp = f", {self.speedup:.2f}x over {self.baseline}" if self.speedup else ""
        ut = f", {100 * self.utilization:.1f}% utilization" if self.utilization else ""
        ver = "verified" if self.verified else "unverified"
        un = f", {len(self.unchecked)} unchecked steps" if self.unchecked else ""
        return f"{self.name}: {self.cycles:,} cycles{sp}{ut} [{self.source}; {ver}{un}]"


def record_from_result(result: Any, *, config: Any = None, agent: Any = None, models: Any = None,
                       seed: Optional[int] = None, source: str = "search", note: Optional[str] = None,
                       baseline: Optional[str] = None, eval_seed: int = 0) -> Record:
    """A Record from an `optimize` Result (or a Record / record dict, returned as a Record)."""
    if isinstance(result, Record):
        return result
    if isinstance(result, dict):
        return Record.from_dict(result)
    w = getattr(result, "workload", None)
    if w is None:
        raise RecordError("the result has no workload")
    sched = result.schedule if isinstance(result.schedule, Schedule) else Schedule.from_json(result.schedule)
    prov = {"source": source, **_versions(), "date": _now()}
    if agent is not None or getattr(result, "search", None) is not None:
        a = agent
        prov["agent"] = a if isinstance(a, str) or a is None else getattr(a, "name", type(a).__name__)
        ms = models if models is not None else getattr(a, "models", None)
        prov["models"] = list(ms) if ms else []
    if seed is not None:
        prov["seed"] = seed
    prov["samples"] = getattr(result, "samples_used", None)
    if getattr(result, "run_dir", None):
        prov["run_dir"] = str(result.run_dir)
    if note:
        prov["note"] = note
    util = getattr(result, "utilization", None)
    if util is not None and util != util:  # NaN
        util = None
    return Record(workload=w.signature(), hardware=hardware_fingerprint(config), schedule=sched,
                  cycles=int(result.cycles), baseline_cycles=getattr(result, "baseline_cycles", None),
                  baseline=baseline or "exo-unopt", utilization=util, eval_seed=eval_seed, provenance=prov)


# --------------------------------------------------------------------------- #
# The library
# --------------------------------------------------------------------------- #


def _warn(msg: str) -> None:
    warnings.warn(msg, LibraryWarning, stacklevel=3)


class Library(Database):
    """A directory of records (created on first write). See the module doc."""

    def __init__(self, path: str | os.PathLike, *, lock_timeout: float = 60.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Library({str(self.path)!r})"

    # -- locking / atomic files ------------------------------------------------
    def _lock(self):
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / LOCK_NAME), timeout=self.lock_timeout)

    # -- reading ---------------------------------------------------------------
    def _files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("*.json") if not p.name.startswith("."))

    @staticmethod
    def _read(p: Path, warn: bool = True) -> Optional[Record]:
        try:
            if p.stat().st_size > MAX_BYTES:
                raise RecordError(f"{p.stat().st_size:,} bytes, more than the {MAX_BYTES:,} a record may have")
            text = p.read_text()
            return Record.from_json(text, str(p))
        except (OSError, UnicodeDecodeError, RecordError, RecursionError) as e:
            if warn:
                _warn(f"skipping library record {p}: {e}")
            return None

    def records(self, *, hardware: Optional[str] = None, skipped: Optional[list] = None) -> list[Record]:
        """Every readable record (corrupt files skipped with a LibraryWarning;
        their paths appended to ``skipped`` when given)."""
        out = []
        for p in self._files():
            r = self._read(p)
            if r is None and skipped is not None:
                skipped.append(str(p))
            if r is not None and (hardware is None or r.hardware == hardware):
                out.append(r)
        return out

    def __bool__(self) -> bool:
        # always true: truth tests (Exo inspects the ``self`` of caller frames) must not read the files
        return True

    def get(self, workload: Any, config: Any = None) -> Optional[Record]:
        return self.best(workload, config=config)

    def best(self, proc_or_workload: Any, *, config: Any = None, relu: Optional[bool] = None) -> Optional[Record]:
        """The stored record for this workload (GemmWorkload, GEMM proc, signature) and hardware, or None."""
        sig = signature_of(proc_or_workload, relu)
        hw = hardware_fingerprint(config)
        p = self.path / Record(sig, hw, None, 1).filename
        if p.exists():
            r = self._read(p)
            if r is not None and r.workload == sig and r.hardware == hw:
                return r
        # a record stored under another file name (copied by hand): scan
        best = None
        for r in self.records(hardware=hw):
            if r.workload == sig and r.better_than(best):
                best = r
        return best

    # -- writing ---------------------------------------------------------------
    def add(self, result_or_record: Any, *, verify: bool = True, config: Any = None,
            timeout: Optional[float] = 600.0, pool: Any = None, seeds: Optional[list] = None, **kw) -> bool:
        """Verify and store a record (see the module doc). Returns True when written.

        ``verify=True``: the record is replayed, simulated and checked on fresh
        inputs in a worker (``pool`` or a new one, ``timeout`` seconds); a
        record that fails is refused with `RecordError`; its measured cycles
        are the ones stored. ``verify=False``: stored as unverified, only when
        nothing is stored for its key (or an unverified, slower record).
        ``kw`` go to `record_from_result` when a Result is given."""
        rec = record_from_result(result_or_record, config=config, **kw) \
            if not isinstance(result_or_record, Record) else result_or_record
        if rec.unchecked:
            _warn(f"record for {rec.name} has unchecked steps {rec.unchecked} (not proven by Exo); "
                  + (f"verifying it on {VERIFY_SEEDS_UNCHECKED} fresh inputs" if verify else "stored unverified"))
        vkw = dict(config=config, timeout=timeout, pool=pool)
        if verify:
            if rec.hardware != hardware_fingerprint(config):
                raise RecordError(f"record for {rec.name} is for hardware {rec.hardware}: verify it with that "
                                  "configuration (config=)")
            v = globals()["verify"](rec, seeds=seeds, **vkw)
            if not v.ok and not v.replays:
                raise RecordError(f"refused: the record for {rec.name} does not replay on its workload "
                                  f"({v.reason})")
            meas = v.measured
            if meas != rec.cycles:
                _warn(f"record for {rec.name} claims {rec.cycles:,} cycles, it simulates to {meas:,}: "
                      "storing the measured cycles")
            mm = v.measurement
            rec = Record(rec.workload, rec.hardware, rec.schedule, int(meas), rec.baseline_cycles, rec.baseline,
                         (mm.utilization if mm is not None and mm.utilization is not None else rec.utilization),
                         (v.seeds[0] if v.seeds else rec.eval_seed), dict(rec.provenance), None,
                         {"cycles": int(meas), "seeds": list(v.seeds), "date": _now(), **_versions()})
        else:
            rec = Record(rec.workload, rec.hardware, rec.schedule, rec.cycles, rec.baseline_cycles, rec.baseline,
                         rec.utilization, rec.eval_seed, dict(rec.provenance), None, None)
        target = self.path / rec.filename
        with self._lock():
            old = None
            if target.exists():
                old = self._read(target, warn=False)
                if old is None:
                    aside = target.with_name(f"{target.name}.corrupt-{int(time.time() * 1000)}")
                    _warn(f"library record {target} is unreadable; moved aside to {aside.name}")
                    try:
                        os.replace(target, aside)
                    except OSError:  # pragma: no cover
                        pass
            if old is not None and not self._replaces(rec, old, vkw):
                return False
            write_atomic(target, rec.to_json())
            return True

    def _replaces(self, new: Record, old: Record, vkw: dict) -> bool:
        """Does ``new`` replace the stored ``old``? (the rules of the module doc)"""
        if not new.verified:
            return not old.verified and new.better_than(old)
        if not old.verified:
            return True
        if new.better_than(old):
            return True
        # not faster than a verified record: is the stored one still true?
        v = verify(old, **vkw)
        if not v.ok:
            _warn(f"the stored record for {old.name} no longer verifies ({v.reason}): replaced")
            return True
        return False

    # -- the Database interface ----------------------------------------------------
    def commit(self, record: "Record") -> None:
        """`add` the record without re-verifying it (kept only if faster)."""
        self.add(record, verify=False)

    def lookup(self, key: Any) -> Optional["Record"]:
        """The record under ``key``: a ``(signature, hardware)`` pair (`Record.key`) or a signature."""
        if isinstance(key, tuple) and len(key) == 2:
            sig, hw = key
        else:
            sig, hw = key, None
        sig = signature_of(json.loads(sig) if isinstance(sig, str) else sig)
        hw = hw or hardware_fingerprint(None)
        for r in self.records(hardware=hw):
            if r.workload == sig:
                return r
        return None

    def top_k(self, workload_signature: Optional[dict], hardware: Optional[str] = None, k: int = 1) -> list:
        """The ``k`` fastest records for the signature (None: any) and hardware (None: this one)."""
        hw = hardware or hardware_fingerprint(None)
        sig = None if workload_signature is None else signature_of(workload_signature)
        recs = [r for r in self.records(hardware=hw) if sig is None or r.workload == sig]
        return rank(recs, k, key=lambda r: r.name)

    def remove(self, workload: Any, config: Any = None) -> bool:
        sig = signature_of(workload)
        target = self.path / Record(sig, hardware_fingerprint(config), None, 1).filename
        with self._lock():
            if target.exists():
                target.unlink()
                return True
        return False

    # -- export / import ---------------------------------------------------------
    def export(self, path: str | os.PathLike) -> int:
        """Write every record to one JSON file. Returns the number of records."""
        recs = self.records()
        doc = {"format": EXPORT_FORMAT, "exported": _now(), **_versions(),
               "records": [r.to_dict() for r in recs]}
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return len(recs)

    def import_(self, path: str | os.PathLike, *, verify: bool = False, **kw) -> dict:
        """Merge an export file, a single record file or a library directory by
        the rule of `add` (``verify``: each record verified first; a record
        that does not replay is skipped). Returns counts {"added", "kept",
        "skipped"}."""
        src = Path(path)
        counts = {"added": 0, "kept": 0, "skipped": 0}
        recs: list[Record] = []
        if src.is_dir():
            bad: list = []
            recs = Library(src).records(skipped=bad)
            counts["skipped"] += len(bad)
        else:
            try:
                if src.stat().st_size > 64 * MAX_BYTES:
                    raise RecordError(f"{src.stat().st_size:,} bytes")
                doc = load_json(src.read_text(), what="library export", max_bytes=64 * MAX_BYTES)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                raise RecordError(f"cannot read {src}: {e}") from None
            items = doc.get("records") if isinstance(doc, dict) and doc.get("format") == EXPORT_FORMAT else [doc]
            if not isinstance(items, list):
                raise RecordError(f"{src}: 'records' is not a list")
            for i, d in enumerate(items):
                try:
                    recs.append(Record.from_dict(d, f"{src}#{i}"))
                except RecordError as e:
                    _warn(f"skipping record {i} of {src}: {e}")
                    counts["skipped"] += 1
        for r in recs:
            r.path = None
            try:
                added = self.add(r, verify=verify, **kw)
            except RecordError as e:
                _warn(f"skipping record for {r.name}: {e}")
                counts["skipped"] += 1
                continue
            counts["added" if added else "kept"] += 1
        return counts

    # alias for people who type it
    import_from = import_


def builtin() -> Library:
    """The project's shipped library (``schedules/``)."""
    return Library(BUILTIN_DIR)


# --------------------------------------------------------------------------- #
# Re-verification
# --------------------------------------------------------------------------- #


@dataclass
class Verification:
    record: Record
    ok: bool
    measured: Optional[int]
    reason: str = ""
    measurement: Any = None
    seeds: list = field(default_factory=list)   # the input seeds it passed
    replays: bool = True                         # False: the schedule no longer applies / runs

    def __bool__(self) -> bool:
        return self.ok


def fresh_seeds(n: int) -> list[int]:
    """``n`` input seeds nobody chose (so no schedule can be tuned to them)."""
    return [secrets.randbelow(2**31) for _ in range(max(1, int(n)))]


def verify(record: Record, *, config: Any = None, tolerance: float = 0.0, measurement: Any = None,
           seeds: Optional[list] = None, timeout: Optional[float] = 600.0, pool: Any = None,
           workers: int = 1) -> Verification:
    """Replay the record's schedule, simulate it, check it bit-exact on fresh
    inputs and compare the cycles with the record's (within ``tolerance``, a
    fraction). The hardware fingerprint must match ``config``'s.

    The replay runs in a worker process (``pool``, or a one-worker
    `WorkerPool`) under ``timeout`` seconds, like any candidate. ``seeds``:
    the input seeds (default: `fresh_seeds`, `VERIFY_SEEDS_UNCHECKED` of them
    for a record with unchecked steps). Never raises for a bad record:
    ``Verification.ok`` is False with the reason."""
    hw = hardware_fingerprint(config)
    if record.hardware != hw:
        return Verification(record, False, None, f"recorded for hardware {record.hardware}, this is {hw}",
                            replays=False)
    try:
        w = record.gemm_workload()
    except Exception as e:
        return Verification(record, False, None, f"bad workload: {e}", replays=False)
    if seeds is None:
        seeds = fresh_seeds(VERIFY_SEEDS_UNCHECKED if record.unchecked else VERIFY_SEEDS)
    m = measurement
    if m is None:
        cfg = config.to_dict() if config is not None and not isinstance(config, str) else None
        task = Task.of(w, record.schedule, seeds=[int(x) for x in seeds], label=f"verify {record.name}",
                       config=cfg).to_dict()
        own = pool is None
        if own:
            pool = WorkerPool(workers, timeout)
        try:
            res = pool.run([task])[0]
        finally:
            if own:
                pool.close()
        m = Measurement.from_dict(res.get("measurement") or {"ok": False, "stage": "worker",
                                                             "error": "no measurement"})
    if not m.ok:
        msg = (m.error or "").strip().splitlines()
        what = {"schedule": "replays", "timeout": "replays in time", "worker": "replays"}.get(m.stage, "runs")
        return Verification(record, False, m.cycles, f"no longer {what}: {m.stage}: {msg[0] if msg else ''}", m,
                            replays=False)
    if abs(m.cycles - record.cycles) > tolerance * record.cycles:
        return Verification(record, False, m.cycles,
                            f"simulates to {m.cycles:,} cycles, the record says {record.cycles:,}", m,
                            list(m.seeds or []))
    return Verification(record, True, m.cycles, "", m, list(m.seeds or []))


# --------------------------------------------------------------------------- #
# CLI: `autocomp-exo library list|show|best|export|import`
# --------------------------------------------------------------------------- #


def _default_path() -> str:
    return os.environ.get("AUTOCOMP_EXO_LIBRARY") or str(BUILTIN_DIR)


def add_library_parser(subparsers):
    p = subparsers.add_parser(
        "library", help="list, show, export and import schedule library records",
        description="The schedule library: one JSON record per GEMM shape and hardware configuration. "
                    "Default library: $AUTOCOMP_EXO_LIBRARY or the shipped schedules/.")
    sub = p.add_subparsers(dest="library_command", metavar="ACTION")
    sub.required = True

    def common(q):
        q.add_argument("--library", default=None, help="library directory (default: $AUTOCOMP_EXO_LIBRARY "
                                                       "or the shipped schedules/)")
        return q

    def shape(q):
        q.add_argument("kind", choices=("gemm",))
        q.add_argument("M", type=int)
        q.add_argument("N", type=int)
        q.add_argument("K", type=int)
        q.add_argument("--relu", action="store_true")
        return q

    common(sub.add_parser("list", help="one line per record"))
    q = shape(common(sub.add_parser("show", help="a record in full (schedule with menu options)")))
    q.add_argument("--json", action="store_true", help="the record's JSON")
    shape(common(sub.add_parser("best", help="the best record for a shape (exit 1 if none)")))
    q = common(sub.add_parser("export", help="write every record to one JSON file"))
    q.add_argument("file")
    q = common(sub.add_parser("import", help="merge an export file, a record file or a library directory "
                                             "into --library (a record is kept only if faster)"))
    q.add_argument("file")
    q.add_argument("--verify", action="store_true",
                   help="replay and simulate each record first (unverified records never replace others)")
    q = common(sub.add_parser("verify", help="replay, simulate and check records on fresh inputs "
                                             "(exit 1 if any is stale)"))
    q.add_argument("shape", nargs="*", metavar="gemm M N K", help="one shape (default: every record)")
    q.add_argument("--timeout", type=float, default=600.0, help="seconds per record (default 600)")
    q.add_argument("--seeds", type=int, default=None, help="fresh input seeds per record")
    p.set_defaults(func=run_library, handler=run_library)
    return p


def _list_key(r: Record) -> tuple:
    """`library list` order: by kind, then size (M N K when the kind has them), then name."""
    w = r.workload
    size = w["M"] * w["N"] * w["K"] if all(isinstance(w.get(k), int) for k in ("M", "N", "K")) else 0
    return (str(w.get("kind", "gemm")), size, r.name)


def run_library(args) -> int:
    lib = Library(args.library or _default_path())
    cmd = args.library_command
    if cmd in ("list", "verify", "show", "best", "export") and not lib.path.is_dir():
        # a mistyped path is not an empty library ("0 of 0 records verified")
        print(f"autocomp-exo: error: no library directory {lib.path}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("always", LibraryWarning)
        warnings.showwarning = lambda m, *a, **k: print(f"warning: {m}", file=sys.stderr)
        if cmd == "list":
            rs = lib.records()
            if not rs:
                print(f"no records in {lib.path}")
                return 0
            rows = [("workload", "cycles", "baseline", "speedup", "util", "source", "date")]
            for r in sorted(rs, key=_list_key):
                rows.append((r.name, f"{r.cycles:,}", f"{r.baseline_cycles:,}" if r.baseline_cycles else "-",
                             f"{r.speedup:.2f}x" if r.speedup else "-",
                             f"{100 * r.utilization:.1f}%" if r.utilization else "-", r.source,
                             str(r.provenance.get("date", "-"))[:10]))
            wd = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
            for x in rows:
                print("  ".join(c.ljust(wd[i]) if i in (0, 5, 6) else c.rjust(wd[i]) for i, c in enumerate(x)))
            print(f"{len(rs)} records in {lib.path}")
            return 0
        if cmd in ("show", "best"):
            from .workloads import GemmWorkload, WorkloadError   # deferred: Exo (`library list` stays fast)

            try:
                w = GemmWorkload(args.M, args.N, args.K, args.relu)
            except WorkloadError as e:
                print(f"autocomp-exo: error: {e}", file=sys.stderr)
                return 2
            r = lib.best(w)
            if r is None:
                print(f"no record for {w.name} in {lib.path}")
                return 1
            if cmd == "best":
                print(r.summary())
                return 0
            if args.json:
                print(r.to_json(), end="")
                return 0
            print(r.summary())
            for k, v in sorted(r.provenance.items()):
                print(f"  {k}: {v}")
            v = r.verification
            print(f"  verification: " + (f"{v['cycles']:,} cycles on input seeds {v['seeds']} ({v.get('date', '-')})"
                                         if v else "none (unverified)"))
            if r.unchecked:
                print(f"  unchecked steps (not proven by Exo): {r.unchecked}")
            print(f"  menu options: {', '.join(r.menu)}")
            print(f"  schedule ({len(r.schedule)} steps):")
            for i, s in enumerate(r.schedule.steps):
                args_ = json.dumps(s.args)[1:-1]
                kw = "".join(f", {k}={json.dumps(v)}" for k, v in s.kwargs.items())
                print(f"  {i:4d} [{s.menu}] {s.op}({args_}{kw})")
            return 0
        if cmd == "export":
            n = lib.export(args.file)
            print(f"exported {n} records to {args.file}")
            return 0
        if cmd == "verify":
            if args.timeout is not None and args.timeout <= 0:
                print("autocomp-exo: error: --timeout must be positive", file=sys.stderr)
                return 2
            rs = lib.records()
            if args.shape:
                from .workloads import GemmWorkload, WorkloadError   # deferred: Exo

                try:
                    if len(args.shape) != 4 or args.shape[0] != "gemm":
                        raise WorkloadError("expected: gemm M N K")
                    sig = GemmWorkload(*(int(x) for x in args.shape[1:])).signature()
                except (ValueError, WorkloadError) as e:
                    print(f"autocomp-exo: error: shape {' '.join(args.shape)}: {e}", file=sys.stderr)
                    return 2
                rs = [r for r in rs if r.workload == sig]
                if not rs:
                    print(f"no record for {_sig_name(sig)} in {lib.path}")
                    return 1
            bad = 0
            for r in rs:
                seeds = fresh_seeds(args.seeds) if args.seeds else None
                v = verify(r, timeout=args.timeout, seeds=seeds)
                if v.ok:
                    print(f"ok     {r.name}: {v.measured:,} cycles on input seeds {v.seeds}")
                else:
                    bad += 1
                    print(f"STALE  {r.name}: {v.reason}")
            print(f"{len(rs) - bad} of {len(rs)} records verified in {lib.path}")
            return 1 if bad else 0
        if cmd == "import":
            if args.library is None and not os.environ.get("AUTOCOMP_EXO_LIBRARY"):
                print("autocomp-exo: error: library import needs --library DIR (or $AUTOCOMP_EXO_LIBRARY): "
                      "it does not write into the shipped schedules/", file=sys.stderr)
                return 2
            try:
                c = lib.import_(args.file, verify=args.verify)
            except RecordError as e:
                print(f"autocomp-exo: error: {e}", file=sys.stderr)
                return 2
            print(f"{c['added']} added, {c['kept']} kept (not faster than the stored record), "
                  f"{c['skipped']} skipped; library {lib.path}")
            return 0
    return 2  # pragma: no cover
