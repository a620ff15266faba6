"""Evaluate a program for a workload: apply, compile, simulate, check, time.

``evaluate(workload, schedule)`` applies an Exo `Schedule` to
``workload.proc``, lowers it to Gemmini C with Exo, runs the C on the
simulator with seeded random inputs, compares C bit for bit with the numpy
reference (`autocomp_exo.reference`) and reports the simulator's cycles and
figures. ``evaluate_c`` does the last three steps for C written by other
means (the software-library and FSM baselines, an LLM's C).

Every failure becomes ``Measurement(ok=False, stage=..., error=...)``:
"schedule" (Exo refused a step), "compile" (Exo could not lower the proc),
"parse" (the simulator could not parse/compile the C), "simulate" (the run
raised), "mismatch" (the output differs from the reference). Nothing escapes.
"""
from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from typing import Any, Optional

import numpy as np

from .measurement import Measurement
from .reference import compare, gemm_reference, random_inputs

__all__ = ["evaluate", "evaluate_c", "inputs_and_reference", "bind_arguments"]

_CACHE_SIZE = 4
_ref_cache: "OrderedDict[tuple, tuple[dict, np.ndarray]]" = OrderedDict()


def _message(e: BaseException) -> str:
    msg = str(e).strip()
    name = type(e).__name__
    if not msg:
        # keep something useful: the last frames of the traceback
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return f"{name}: " + "".join(tb[-3:]).strip()
    return msg if msg.startswith(name) else f"{name}: {msg}"


def inputs_and_reference(workload: Any, seed: int = 0) -> tuple[dict, Any]:
    """Seeded inputs and the reference output (cached: treat both as read-only).

    A `Workload` (``inputs(seed)`` keyed by the proc's argument names and an
    independent ``reference(inputs)``) draws its own inputs and computes its
    own reference; anything else with M, N, K gets `reference.random_inputs`
    and `reference.gemm_reference` (the scaled GEMM)."""
    sig = workload.signature() if callable(getattr(workload, "signature", None)) else None
    dims = _dims(workload)
    key = (type(workload).__name__, repr(sig), repr(sorted(dims.items())),
           bool(getattr(workload, "relu", False)), int(seed))
    hit = _ref_cache.get(key)
    if hit is not None:
        _ref_cache.move_to_end(key)
        return hit
    if callable(getattr(workload, "inputs", None)) and callable(getattr(workload, "reference", None)):
        inp = dict(workload.inputs(seed))
        ref = workload.reference(inp)
    else:
        inp = random_inputs(workload, seed)
        inp["C"] = inp.pop("C_init")
        ref = gemm_reference(inp["A"], inp["B"], inp["scale"], inp["act"])
    refs = ref.values() if isinstance(ref, dict) else [ref]
    for a in list(inp.values()) + list(refs):
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    _ref_cache[key] = (inp, ref)
    while len(_ref_cache) > _CACHE_SIZE:
        _ref_cache.popitem(last=False)
    return inp, ref


def _dims(workload: Any) -> dict:
    d = getattr(workload, "dims", None)
    if isinstance(d, dict):
        return {k: int(v) for k, v in d.items()}
    return {k: int(getattr(workload, k)) for k in ("M", "N", "K")}


def _outputs(workload: Any) -> tuple:
    return tuple(getattr(workload, "outputs", None) or ("C",))


def bind_arguments(workload: Any, inputs: dict) -> dict:
    """The simulator's arguments from a workload's inputs: arrays copied (the
    program writes its outputs into them), float scalars as a 1-element
    float32 array (Exo passes ``f32`` scalars by pointer), bools and ints as
    they are."""
    args = {}
    for name, v in inputs.items():
        if isinstance(v, np.ndarray):
            args[name] = np.array(v, copy=True)
        elif isinstance(v, (bool, np.bool_)):
            args[name] = bool(v)
        elif isinstance(v, (float, np.floating)):
            args[name] = np.array([v], dtype=np.float32)
        else:
            args[name] = v
    return args


def _base(workload: Any, seed: int, baseline_cycles: Optional[int], label: Optional[str]) -> Measurement:
    dims = _dims(workload)
    M, N, K = dims.get("M"), dims.get("N"), dims.get("K")
    name = getattr(workload, "name", None)
    if callable(name):
        name = None
    macs = getattr(workload, "macs", None)
    if not isinstance(macs, int):
        macs = M * N * K
    return Measurement(
        ok=False, workload=name or f"gemm_{M}x{N}x{K}", label=label, M=M, N=N, K=K,
        relu=bool(getattr(workload, "relu", False)), macs=macs, seed=seed,
        baseline_cycles=baseline_cycles,
    )


def _fail(m: Measurement, stage: str, e: BaseException | str, t_start: float) -> Measurement:
    m.ok = False
    m.stage = stage
    m.error = e if isinstance(e, str) else _message(e)
    m.timings["total"] = time.perf_counter() - t_start
    return m


def evaluate(workload: Any, schedule: Any = None, *, config: Any = None, seed: int = 0,
             baseline_cycles: Optional[int] = None, label: Optional[str] = None,
             proc: Any = None, seeds: Optional[list] = None) -> Measurement:
    """Apply `schedule` to ``workload.proc``, compile with Exo, simulate, check, time.

    ``schedule`` is an `autocomp_exo.schedule.Schedule` (or anything with
    ``apply(proc) -> proc``); None evaluates ``workload.proc`` as it is (or
    ``proc`` when given: an already-scheduled proc, skipping the schedule stage).
    ``baseline_cycles`` (the Exo baseline's cycles) gives ``speedup``.
    ``seeds``: more input seeds the program must also pass (compiled once,
    simulated and checked on each; ``Measurement.seeds`` lists those passed).
    """
    t0 = time.perf_counter()
    try:
        m = _base(workload, seed, baseline_cycles, label)
    except Exception as e:  # a workload without M/N/K
        return _fail(Measurement(ok=False, seed=seed, label=label), "schedule", e, t0)

    # ---- schedule -------------------------------------------------------
    t = time.perf_counter()
    try:
        p = proc
        if p is None:
            p = workload.proc
            if schedule is not None:
                p = schedule.apply(p)
    except Exception as e:
        m.timings["schedule"] = time.perf_counter() - t
        return _fail(m, "schedule", e, t0)
    m.timings["schedule"] = time.perf_counter() - t
    m.proc = p

    # ---- compile (Exo -> C) --------------------------------------------
    t = time.perf_counter()
    try:
        from .exo_compile import to_c

        c_source, entry = to_c(p)
    except Exception as e:
        m.timings["compile"] = time.perf_counter() - t
        return _fail(m, "compile", e, t0)
    m.timings["compile"] = time.perf_counter() - t

    return _run_and_check(m, workload, c_source, entry, config=config, seed=seed, t0=t0, seeds=seeds)


def evaluate_c(workload: Any, c_source: str, entry: str, *, config: Any = None, seed: int = 0,
               baseline_cycles: Optional[int] = None, label: Optional[str] = None,
               filename: Optional[str] = None) -> Measurement:
    """Simulate Gemmini C for `workload`, check it against the reference, time it.

    The entry function must take parameters named ``A``, ``B``, ``C`` (int8,
    flat pointers or 2-D arrays), ``scale`` (``const float*``) and ``act``
    (bool); an Exo context pointer is allowed and needs nothing.
    """
    t0 = time.perf_counter()
    try:
        m = _base(workload, seed, baseline_cycles, label)
    except Exception as e:
        return _fail(Measurement(ok=False, seed=seed, label=label), "parse", e, t0)
    m.timings["schedule"] = 0.0
    m.timings["compile"] = 0.0
    return _run_and_check(m, workload, c_source, entry, config=config, seed=seed, t0=t0,
                          filename=filename)


def _run_and_check(m: Measurement, workload: Any, c_source: str, entry: str, *, config: Any,
                   seed: int, t0: float, filename: Optional[str] = None,
                   seeds: Optional[list] = None) -> Measurement:
    m.c_source = c_source
    m.entry = entry
    filename = filename or f"<{entry}>"

    # ---- parse (sim: C -> Python, once) ---------------------------------
    t = time.perf_counter()
    try:
        import sim

        program = sim.compile_program(c_source, filename=filename)
    except Exception as e:
        m.timings["parse"] = time.perf_counter() - t
        return _fail(m, "parse", e, t0)
    m.timings["parse"] = time.perf_counter() - t
    m = _check_one(m, program, workload, entry, config=config, seed=seed, t0=t0)
    m.seeds = [int(seed)] if m.ok else []
    for s in seeds or []:
        if not m.ok or int(s) in m.seeds:
            continue
        first = (m.cycles, m.utilization, m.speedup, dict(m.timings))
        m = _check_one(m, program, workload, entry, config=config, seed=int(s), t0=t0)
        # the figures are those of the first seed (the timing model does not look at the data)
        m.cycles, m.utilization, m.speedup, m.timings = first
        if not m.ok:
            m.error = f"input seed {s} (after passing seeds {m.seeds}): {m.error}"
            return m
        m.seeds.append(int(s))
    if m.ok:
        m.seed = int(seed)
    return m


def _check_one(m: Measurement, program: Any, workload: Any, entry: str, *, config: Any, seed: int,
               t0: float) -> Measurement:
    # ---- inputs and reference -------------------------------------------
    t = time.perf_counter()
    try:
        inp, ref = inputs_and_reference(workload, seed)
        args = bind_arguments(workload, inp)
        outputs = _outputs(workload)
        refs = ref if isinstance(ref, dict) else {outputs[0]: ref}
    except Exception as e:
        m.timings["reference"] = time.perf_counter() - t
        return _fail(m, "simulate", e, t0)
    m.timings["reference"] = time.perf_counter() - t

    # ---- simulate --------------------------------------------------------
    t = time.perf_counter()
    try:
        kwargs = {} if config is None else {"config": config}
        result = program.run(entry, args, **kwargs)
    except Exception as e:
        m.timings["simulate"] = time.perf_counter() - t
        return _fail(m, "simulate", e, t0)
    m.timings["simulate"] = time.perf_counter() - t

    # ---- figures ---------------------------------------------------------
    try:
        m.cycles = int(result.cycles)
        m.instructions = dict(getattr(result, "instructions", {}) or {})
        m.units = dict(getattr(result, "units", {}) or {})
        m.stalls = dict(getattr(result, "stalls", {}) or {})
        m.dram_bytes = dict(getattr(result, "dram_bytes", {}) or {})
        m.sp_rows_used = getattr(result, "sp_rows_used", None)
        m.acc_rows_used = getattr(result, "acc_rows_used", None)
        if m.cycles > 0:
            if hasattr(result, "utilization"):
                m.utilization = float(result.utilization(m.macs))
            else:  # pragma: no cover
                from gemmini_isa import GemminiConfig

                m.utilization = (config or GemminiConfig()).ideal_cycles(m.macs) / m.cycles
            if m.baseline_cycles:
                m.speedup = float(m.baseline_cycles) / m.cycles
        arrays = getattr(result, "arrays", {}) or {}
        outs = {o: arrays.get(o, args.get(o)) for o in refs}
    except Exception as e:
        return _fail(m, "simulate", e, t0)

    # ---- check (every output against the workload's reference) ------------
    t = time.perf_counter()
    mismatches = total = 0
    first = None
    try:
        for o, want in refs.items():
            got = np.asarray(outs[o])
            want = np.asarray(want)
            if got.size != want.size:
                m.timings["compare"] = time.perf_counter() - t
                return _fail(m, "mismatch", f"output {o} has {got.size} elements, expected {want.size}", t0)
            r = compare(got.reshape(want.shape), want)
            mismatches += r["mismatches"]
            total += r["total"]
            if not r["equal"] and first is None:
                first = (o, r)
    except Exception as e:
        m.timings["compare"] = time.perf_counter() - t
        return _fail(m, "mismatch", e, t0)
    m.timings["compare"] = time.perf_counter() - t
    m.mismatches = mismatches
    m.total_elements = total
    if first is not None:
        o, r = first
        idx, g, w = r["first"]
        m.first_mismatch = {"index": list(idx), "got": g, "want": w}
        return _fail(
            m, "mismatch",
            f"{mismatches} of {total} output elements differ from the reference; "
            f"first at {o}{list(idx)}: got {g}, expected {w}", t0)
    m.ok = True
    m.timings["total"] = time.perf_counter() - t0
    return m
