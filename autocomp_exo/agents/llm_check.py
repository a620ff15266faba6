"""The LLM agent's Exo check of a draft: apply the steps to the parent's proc
and, when Exo refuses one, say which, why, and what the proc looks like after
the steps that applied (the retry message).

One function for both places it can run: in the agent's process (in the
request's thread, under its Exo lock: the default) and in the search's
worker pool (`check_task`, a `workers.TASK_KINDS` kind; ``LLMAgent(...,
check_in_pool=True)``), where drafts are checked in parallel and outside
the agent's process. Measured with benchmarks/llm_plausible.py (128^3, 12
samples, macro-move drafts, a shared 2-core machine): 153 s with the checks
here, 196 s in the pool when a worker is idle, 217 s always in the pool: the
workers rebuild the parent's proc that the agent's process has cached, and
two cores leave no room for the parallelism to pay.
"""
from __future__ import annotations

import time
from typing import Any, Optional

from ..proc_facts import facts
from ..proc_text import proc_text

__all__ = ["check_draft", "check_task", "excerpt"]


def excerpt(s: Optional[str], n: int = 2000) -> str:
    """At most ``n`` characters of ``s`` (a message stays readable and bounded)."""
    s = s or ""
    return s if len(s) <= n else s[:n] + f"... ({len(s) - n} more characters)"


def _move_hint(f: Any, op: Optional[str], config: Any) -> str:
    """For a macro move that failed: the arguments it accepts on the proc it applies to."""
    from ..moves import MOVES
    from . import llm_moves

    if op not in MOVES:
        return ""
    lines = llm_moves.valid_arguments(f, op, config)
    if not lines:
        return f"\n{op} does not apply to this proc; choose another move."
    return f"\nArguments {op} accepts on this proc:\n" + "\n".join(f"  {ln}" for ln in lines)


def _after(base: Any, parent: Any, steps: list, idx: Optional[int], op: Optional[str], config: Any,
           parent_text: Optional[str], parent_facts: Any, parent_proc: Any) -> str:
    """The proc after the steps that applied (steps 0..idx-1) and its loop and buffer names."""
    try:
        if idx:
            p = parent.extend(steps[:idx]).apply(base)
            text, f = proc_text(p), facts(p)
            head = f"\n\nSteps 0..{idx - 1} applied; the proc after them (step {idx} must apply to this):\n"
        else:
            text = parent_text or proc_text(parent_proc)
            f = parent_facts if parent_facts is not None else facts(parent_proc)
            head = "\n\nNo step applied; the proc is still:\n"
        loops = list(dict.fromkeys(f"{n.name}" + (f" ({n.extent})" if n.extent else "") for n in f.loops()))
        bufs = list(dict.fromkeys(f"{n.name} @ {n.mem}" for n in f.allocs()))
        return (head + excerpt(text, 6000) + "\nLoops (extent): " + (", ".join(loops) or "none")
                + "\nBuffers: " + (", ".join(bufs) or "none") + _move_hint(f, op, config))
    except Exception:  # noqa: BLE001 - the message is a help, not a requirement
        return ""


def check_draft(base: Any, parent: Any, steps: list, *, mode: str = "exo", config: Any = None,
                eval_config: Any = None, workload: Any = None, parent_text: Optional[str] = None,
                parent_facts: Any = None, parent_proc: Any = None) -> Optional[str]:
    """None if ``steps`` apply after the ``parent`` schedule on ``base`` (and,
    with ``mode="evaluate"``, the program is correct), else the reason for the
    model. ``config``: what the macro moves' hints are checked against;
    ``eval_config``: the hardware of the evaluation."""
    from ..schedule import ScheduleError

    sched = parent.extend(steps)
    n0 = len(parent)
    try:
        p = sched.apply(base)
    except ScheduleError as e:
        idx = None if e.index is None else e.index - n0
        where = f"step {idx}" if idx is not None else "a step"
        msg = f"Exo rejected {where} ({e.op}){f' [{e.kind}]' if e.kind else ''}: {excerpt(e.message, 1200)}"
        if parent_proc is None and not idx:
            parent_proc = parent.apply(base)
        return msg + _after(base, parent, steps, idx, e.op, config, parent_text, parent_facts, parent_proc)
    except Exception as e:  # noqa: BLE001
        return f"Exo failed: {type(e).__name__}: {excerpt(str(e), 1200)}"
    if mode != "evaluate":
        return None
    from ..evaluate import evaluate

    m = evaluate(workload, None, proc=p, config=eval_config)
    if m.ok:
        return None
    return f"the program failed at {m.stage}: {excerpt(m.error, 1200)}"


def check_task(task: dict) -> dict:
    """`check_draft` as a worker task: the fields of a `workers.Task` for the
    parent (workload, schedule, config) and ``"steps"``, ``"mode"``,
    ``"agent_config"`` (the agent's own GemminiConfig dict, or None).
    Returns ``{"measurement": {"ok"}, "error": reason or None, "seconds"}``."""
    from gemmini_isa import GemminiConfig

    from ..workers import failed_result, task_parts

    t0 = time.perf_counter()
    try:
        _t, w, parent, config = task_parts(task)
        own = task.get("agent_config")
        own = None if own is None else GemminiConfig(**own)
        err = check_draft(w.proc, parent, list(task["steps"]), mode=str(task.get("mode", "exo")),
                          config=own if own is not None else config, eval_config=own, workload=w)
    except Exception as e:  # noqa: BLE001 - the agent then checks the draft itself
        return failed_result("check", f"{type(e).__name__}: {e}", time.perf_counter() - t0, task)
    return {"measurement": {"ok": True, "stage": None, "error": None}, "error": err,
            "proc_text": None, "facts": None, "seconds": time.perf_counter() - t0}
