"""The LLM agent: an ensemble of OpenAI-compatible models plans and writes schedule steps.

::

    from autocomp_exo.agents.llm import LLMAgent
    agent = LLMAgent(["gpt-4o", "http://localhost:8000/v1::Qwen/Qwen2.5-Coder-32B-Instruct"],
                     cache_dir="~/.cache/autocomp-exo/llm", log_dir="runs/r1",
                     prices={"gpt-4o": (2.5, 10.0)})
    r = ax.optimize(ax.gemm(512, 512, 512), agent=agent, run_dir="runs/r1")
    print(agent.summary())

``plan`` asks a model for one option of the menu left after dropout (the plan
prompt of `prompts.plan_messages`); ``implement`` asks a model for the steps
(`prompts.implement_messages`). Plans and implementations are assigned to the
models round robin (plan j to model j mod M, implementation j to model j mod
M, counted over the run), so with two or more plans and implementations every
model both plans and writes code; a model whose call fails hands the request
to the next live model.

An answer is untrusted text. It is parsed as JSON (sizes, nesting and numbers
bounded; no ``__`` names, no control characters), each step is checked
against the whitelist (`autocomp_exo.schedule.Step`), and by default applied
with Exo to the parent's proc (``check="exo"``; ``"evaluate"`` also compiles
and simulates it, so mismatches are caught; ``"schema"`` only validates).
A failed answer is sent back once with its error (``retries``). Nothing the
model writes is executed: steps are data, patterns and expressions are
parsed by Exo's own front end.

Every answer and every rejection (with its reason) is logged in
``log_dir/llm_answers.jsonl``; tokens, calls, latency and cost per model and
phase in ``log_dir/llm_calls.jsonl`` and ``log_dir/llm_usage.json``
(`accounting`). Answers that fail in Exo after the retries are still
returned (``return_failed=True``), so the search records them as failed
candidates with Exo's message; answers that are not valid steps cannot be
candidates and are recorded here only.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..proc_text import proc_text
from ..menu import MENU, MenuOption
from .accounting import Accounting, Prices, parse_price
from .base import Agent, Candidate, Plan
from .llm_cache import ResponseCache
from .llm_client import LLMClient, LLMConfigError, ModelSpec
from . import prompts

__all__ = ["LLMAgent", "AnswerError", "parse_plan", "parse_steps", "Limits", "add_llm_args",
           "agent_from_args", "LLMConfigError"]


class AnswerError(ValueError):
    """An answer that cannot be used; the message says why (it is shown to the model on retry)."""


# --------------------------------------------------------------------------- #
# Parsing untrusted answers
# --------------------------------------------------------------------------- #

class Limits:
    """Bounds on what an answer may contain."""

    def __init__(self, max_chars: int = 60_000, max_steps: int = 40, max_depth: int = 12,
                 max_string: int = 400, max_int: int = 1 << 24):
        self.max_chars = max_chars
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.max_string = max_string
        self.max_int = max_int


_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)```", re.S)
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _int_hook(limits: Limits):
    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > 12:
            raise AnswerError(f"number {s[:20]}{'...' if len(s) > 20 else ''} is too large "
                              f"(integers must be within +-{limits.max_int})")
        return int(s)
    return parse_int


def _float_hook(s: str):
    v = float(s)
    if not math.isfinite(v):
        raise AnswerError(f"number {s[:20]} is not finite")
    return v


def _const_hook(s: str):
    raise AnswerError(f"{s} is not a JSON value")


def _steps_like(v: Any) -> bool:
    return (isinstance(v, dict) and "steps" in v) or (isinstance(v, list) and bool(v)
                                                       and all(isinstance(x, dict) for x in v))


def extract_json(text: str, limits: Limits) -> Any:
    """The first JSON object (or list of objects) in ``text``, preferring code fences.

    Tries successive ``{`` / ``[`` positions (at most 40), so prose such as
    "[unroll]" before the JSON does not hide it."""
    if len(text) > limits.max_chars:
        raise AnswerError(f"the answer is too long ({len(text)} characters, at most {limits.max_chars})")
    dec = json.JSONDecoder(parse_int=_int_hook(limits), parse_float=_float_hook, parse_constant=_const_hook)
    chunks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_err = None
    other = None   # a JSON value that is not steps-shaped (reported only if nothing better)
    tries = 0
    for chunk in chunks:
        starts = [i for i, ch in enumerate(chunk) if ch in "{["]
        for st in starts:
            tries += 1
            if tries > 40:
                break
            try:
                value, _end = dec.raw_decode(chunk, st)
            except AnswerError:
                raise
            except RecursionError:
                raise AnswerError("invalid JSON: nested too deeply") from None
            except ValueError as e:  # json.JSONDecodeError, int conversion limits
                first_err = first_err or f"invalid JSON: {e}"
                continue
            if _steps_like(value):
                return value
            if other is None and isinstance(value, (dict, list)):
                other = value
    if first_err is None and other is not None:
        return other
    raise AnswerError(first_err or "the answer contains no JSON object (expected {\"steps\": [...]})")


def screen(value: Any, limits: Limits, where: str = "answer", depth: int = 0) -> None:
    """Reject values no scheduling step needs: deep nesting, long strings, huge
    numbers, dunder names, control characters, non-identifier object keys."""
    if depth > limits.max_depth:
        raise AnswerError(f"{where}: nested too deeply (more than {limits.max_depth} levels)")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > limits.max_int:
            raise AnswerError(f"{where}: integer {value} is out of range (at most {limits.max_int} in size)")
        return
    if isinstance(value, float):
        raise AnswerError(f"{where}: {value!r} is not an integer (no scheduling argument is a fraction)")
    if isinstance(value, str):
        if len(value) > limits.max_string:
            raise AnswerError(f"{where}: a string of {len(value)} characters (at most {limits.max_string})")
        if "__" in value:
            raise AnswerError(f"{where}: {value[:60]!r} contains '__': double-underscore names are not allowed")
        if _CTRL.search(value):
            raise AnswerError(f"{where}: {value[:60]!r} contains control characters")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            screen(v, limits, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not _KEY.match(k) or "__" in k:
                raise AnswerError(f"{where}: key {str(k)[:60]!r} is not allowed")
            screen(v, limits, f"{where}.{k}", depth + 1)
        return
    raise AnswerError(f"{where}: {type(value).__name__} is not a JSON value")  # pragma: no cover


def parse_steps(text: str, option: str, limits: Optional[Limits] = None, allow_unsafe: bool = False) -> list[dict]:
    """An implement answer -> validated step dicts labelled with ``option``.

    Raises AnswerError with the reason (invalid JSON, wrong shape, a value
    screened out, a step the whitelist rejects, an unsafe step)."""
    from ..schedule import Schedule, ScheduleError, Step

    limits = limits or Limits()
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    data = extract_json(text, limits)
    if isinstance(data, dict):
        if "steps" not in data:
            raise AnswerError(f'expected {{"steps": [...]}}, got an object with keys {sorted(data)[:8]}')
        data = data.get("steps")
    if not isinstance(data, list):
        raise AnswerError(f'"steps" must be a list of step objects, got {type(data).__name__}')
    if not data:
        raise AnswerError("no steps given")
    if len(data) > limits.max_steps:
        raise AnswerError(f"{len(data)} steps (at most {limits.max_steps})")
    screen(data, limits, "steps")
    out = []
    for i, s in enumerate(data):
        if not isinstance(s, dict):
            raise AnswerError(f"step {i}: a step is an object {{\"op\": ..., \"args\": [...]}}, got {type(s).__name__}")
        d = dict(s)
        d.pop("menu", None)  # the label is the plan's option, whatever the model wrote
        d["menu"] = option
        try:
            st = Step.from_dict(d)
        except ScheduleError as e:
            raise AnswerError(f"step {i} ({e.op or d.get('op')!s}): {e.message}") from None
        if st.unsafe and not allow_unsafe:
            raise AnswerError(f"step {i} ({st.op}): unsafe steps (unchecked by Exo) are not allowed")
        out.append(st.to_dict())
    try:
        Schedule(out)
    except ScheduleError as e:  # pragma: no cover - each step was validated
        raise AnswerError(str(e)) from None
    return out


_OPTION_LINE = re.compile(r"^[ \t*#>-]*option[ \t*]*[:=][ \t]*(.+?)[ \t]*$", re.I | re.M)
_PLAN_LINE = re.compile(r"^[ \t*#>-]*plan[ \t*]*[:=][ \t]*", re.I | re.M)


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def parse_plan(text: str, menu: Sequence[MenuOption], limits: Optional[Limits] = None) -> tuple[str, str]:
    """A plan answer -> (menu key, plan text). The option must be one of ``menu``."""
    limits = limits or Limits()
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    if len(text) > limits.max_chars:
        raise AnswerError(f"the answer is too long ({len(text)} characters, at most {limits.max_chars})")
    offered = {o.key: o for o in menu}
    lookup = {}
    for o in MENU:
        lookup[_norm(o.key)] = o.key
        lookup[_norm(o.title)] = o.key
    raw = None
    body = text.strip()
    stripped = body.strip("`").strip()
    if stripped.lower().startswith("json"):
        stripped = stripped[4:].strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
            if isinstance(obj, dict) and isinstance(obj.get("option"), str):
                raw = obj["option"]
                body = str(obj.get("plan") or obj.get("text") or obj.get("description") or "")
        except ValueError:
            pass
    if raw is None:
        m = _OPTION_LINE.search(text)
        if m:
            raw = m.group(1)
            p = _PLAN_LINE.search(text)
            body = text[p.end():].strip() if p else text[m.end():].strip()
    if raw is not None:
        key_text = _norm(raw.strip().strip("[]`'\"").split("]")[0])
        key = lookup.get(key_text)
        if key is None:  # "unroll (unrolling)", "[unroll] unrolling"
            hits = {v for k, v in lookup.items() if re.search(rf"(^|_){re.escape(k)}($|_)", key_text)}
            key = hits.pop() if len(hits) == 1 else None
        if key is None:
            raise AnswerError(f"OPTION {raw.strip()[:60]!r} is not a menu option; choose one of: "
                              f"{', '.join(offered)}")
    else:
        found = [k for k in offered if re.search(rf"\[{re.escape(k)}\]", text)]
        if len(found) != 1:
            raise AnswerError("the answer must name exactly one menu option on a line 'OPTION: <key>' "
                              f"(one of: {', '.join(offered)})")
        key = found[0]
    if key not in offered:
        raise AnswerError(f"option {key!r} is not offered in this round; choose one of: {', '.join(offered)}")
    body = body.strip()
    if len(body) > 4000:
        body = body[:4000] + " ..."
    return key, body


# --------------------------------------------------------------------------- #
# The agent
# --------------------------------------------------------------------------- #

def _excerpt(s: Optional[str], n: int = 2000) -> str:
    s = s or ""
    return s if len(s) <= n else s[:n] + f"... ({len(s) - n} more characters)"


def _shape(proc_text: str) -> list:
    """Loops, allocations and calls by name (stable across processes, unlike index term order)."""
    from .proctext import parse

    try:
        f = parse(proc_text)
    except Exception:  # noqa: BLE001
        return []
    return [(n.kind, n.name, n.depth) for n in f.nodes if n.kind in ("for", "alloc", "call")]


class LLMAgent(Agent):
    """An ensemble of OpenAI-compatible chat models as a search agent (see the module doc)."""

    name = "llm"

    def __init__(self, models: str | Sequence[str | ModelSpec], *, cache_dir: Optional[str] = None,
                 log_dir: Optional[str] = None, prices: Optional[dict | Prices] = None,
                 retries: int = 1, check: str = "exo", allow_unsafe: bool = False,
                 temperature: float = 0.7, plan_temperature: Optional[float] = None,
                 max_tokens: int = 2048, top_p: Optional[float] = None, timeout: float = 120.0,
                 attempts: int = 4, backoff: float = 1.0, backoff_max: float = 30.0, drop_after: int = 2,
                 config: Any = None, iterations: Optional[int] = None, base_proc: Any = None,
                 show_c: bool = True, c_lines: int = 80, limits: Optional[Limits] = None,
                 return_failed: bool = True, send_seed: bool = True, parallel: int = 8,
                 warn: Optional[Callable[[str], None]] = None, sleep: Optional[Callable[[float], None]] = None):
        if check not in ("schema", "exo", "evaluate"):
            raise ValueError(f"check must be 'schema', 'exo' or 'evaluate', got {check!r}")
        self.warn = warn or (lambda msg: print(f"autocomp-exo: warning: {msg}", file=sys.stderr, flush=True))
        self.accounting = Accounting(prices)
        self.cache = ResponseCache(os.path.expanduser(cache_dir)) if cache_dir else None
        kw = {} if sleep is None else {"sleep": sleep}
        self.client = LLMClient(models if not isinstance(models, (str, ModelSpec)) else [models],
                                timeout=timeout, attempts=attempts, backoff=backoff, backoff_max=backoff_max,
                                drop_after=drop_after, cache=self.cache, accounting=self.accounting,
                                warn=self.warn, send_seed=send_seed, **kw)
        self.models = [s.name for s in self.client.specs]
        self.name = "llm:" + "+".join(self.models)
        self.retries = max(0, int(retries))
        self.check = check
        self.allow_unsafe = allow_unsafe
        self.temperature = temperature
        self.plan_temperature = temperature if plan_temperature is None else plan_temperature
        self.max_tokens = max_tokens
        self.top_p = top_p
        self.config = config
        self.iterations = iterations
        self.base_proc = base_proc
        self.show_c = show_c
        self.c_lines = c_lines
        self.limits = limits or Limits()
        self.return_failed = return_failed
        self.parallel = max(1, int(parallel))
        self.log_dir: Optional[Path] = None
        self._plan_n = 0
        self._impl_n = 0
        self._iteration: Optional[int] = None
        self._max_parent_iteration = -1
        self._told_none_left = False
        self._told_no_exo = False
        self._c_cache: "OrderedDict[str, tuple[Optional[str], Optional[str]]]" = OrderedDict()
        self._lock = threading.RLock()
        self._exo_lock = threading.RLock()   # Exo is not thread-safe: one proc operation at a time
        self._procs: "OrderedDict[str, Any]" = OrderedDict()   # parent schedule -> its proc (or None)
        self.answers: list[dict] = []      # every parsed answer (accepted or not)
        self.rejections: list[dict] = []   # the ones not accepted, with the reason
        if log_dir:
            self.set_log_dir(log_dir)

    # -- run directory and progress --------------------------------------------
    def set_log_dir(self, directory: str | os.PathLike) -> None:
        self.log_dir = Path(directory)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.accounting.set_directory(self.log_dir)

    def observe(self, event: dict) -> None:
        """A progress callback of the search (``optimize(progress=...)``): tracks the
        iteration for the prompts and writes the accounting at the end."""
        try:
            kind = event.get("event")
            if kind == "start":
                self._iteration = 1
            elif kind == "iteration":
                self._iteration = int(event.get("iteration", 0)) + 1
            elif kind == "end":
                self.finish(quiet=True)
        except Exception:  # noqa: BLE001 - progress must never break the search
            pass

    def progress(self, other: Optional[Callable[[dict], None]] = None) -> Callable[[dict], None]:
        """A progress callback for `optimize` that feeds `observe` and then ``other``."""
        def cb(event: dict) -> None:
            self.observe(event)
            if other is not None:
                other(event)
        return cb

    def begin_iteration(self, iteration: int, iterations: Optional[int] = None) -> None:
        self._iteration = iteration
        if iterations is not None:
            self.iterations = iterations

    def finish(self, quiet: bool = False) -> str:
        """Write llm_usage.json (when there is a log directory) and return the summary."""
        if self.log_dir is not None:
            self.accounting.write(self.log_dir)
        s = self.summary()
        if not quiet:
            print(s)
        return s

    def summary(self) -> str:
        lines = ["LLM usage (cost is an estimate from the prices given):", self.accounting.summary()]
        dropped = self.client.dropped()
        for m, why in dropped.items():
            lines.append(f"dropped: {m}: {why}")
        if self.rejections:
            lines.append(f"answers rejected: {len(self.rejections)} of {len(self.answers)}")
        if self.cache is not None:
            st = self.cache.stats()
            lines.append(f"response cache {st['directory']}: {st['hits']} replayed, {st['writes']} stored")
        return "\n".join(lines)

    @property
    def exhausted(self) -> bool:
        return not self.client.alive

    # -- logging -----------------------------------------------------------------
    def _log(self, rec: dict) -> None:
        with self._lock:
            self.answers.append(rec)
            if not rec.get("ok"):
                self.rejections.append(rec)
            if self.log_dir is not None:
                with open(self.log_dir / "llm_answers.jsonl", "a") as fh:
                    fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")

    def _none_left(self) -> None:
        if not self._told_none_left:
            self._told_none_left = True
            self.warn("no LLM model is left (all were dropped); the agent proposes nothing more and the search "
                      "stops after its idle iterations, keeping everything found")

    # -- model choice -------------------------------------------------------------
    def _order(self, j: int) -> list[int]:
        """Models to try for request j: j mod M first, then the other live ones."""
        n = len(self.client.states)
        alive = set(self.client.alive)
        return [(j + d) % n for d in range(n) if (j + d) % n in alive]

    def _ask(self, j: int, messages: list[dict], phase: str, sample: int, temperature: float):
        """Ask model j mod M (failing over to the others); (reply, model index) or (None, None)."""
        for i in self._order(j):
            r = self.client.complete(i, messages, phase=phase, sample=sample, temperature=temperature,
                                     max_tokens=self.max_tokens, top_p=self.top_p)
            if r is not None:
                return r, i
        if not self.client.alive:
            self._none_left()
        return None, None

    def _map(self, fn, jobs: list) -> list:
        """fn over jobs, in threads when there are several (results in job order)."""
        if len(jobs) <= 1 or self.parallel <= 1:
            return [fn(j) for j in jobs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.parallel, len(jobs))) as ex:
            return list(ex.map(fn, jobs))

    # -- context of a candidate -----------------------------------------------------
    def _base(self, candidate: Candidate):
        if self.base_proc is not None:
            return self.base_proc
        w = candidate.workload
        return getattr(w, "proc", None) if w is not None else None

    def _applied(self, candidate: Candidate):
        """The parent's scheduled proc in this process (None if it cannot be rebuilt here)."""
        key = candidate.schedule.canonical()
        with self._exo_lock:
            if key in self._procs:
                self._procs.move_to_end(key)
                return self._procs[key]
            p = self._applied_locked(candidate)
            self._procs[key] = p
            while len(self._procs) > 32:
                self._procs.popitem(last=False)
            return p

    def _applied_locked(self, candidate: Candidate):
        base = self._base(candidate)
        if base is None:
            return None
        try:
            p = candidate.schedule.apply(base)
        except Exception:  # noqa: BLE001
            return None
        if candidate.proc_text and _shape(proc_text(p)) != _shape(candidate.proc_text):
            return None   # not the proc the search evaluated (e.g. a mapped baseline proc): no Exo check
        return p

    def _context(self, candidate: Candidate) -> tuple[Optional[str], Optional[str]]:
        """(proc text, C source) of the parent, cached by its schedule."""
        key = candidate.schedule.canonical()
        with self._lock:
            hit = self._c_cache.get(key)
            if hit is not None:
                self._c_cache.move_to_end(key)
                return hit[0] or candidate.proc_text, hit[1]
        text, c = candidate.proc_text, None
        if self.show_c or text is None:
            p = self._applied(candidate)
            if p is not None:
                if text is None:
                    text = proc_text(p)
                if self.show_c:
                    try:
                        from ..exo_compile import to_c

                        with self._exo_lock:
                            c = to_c(p)[0]
                    except Exception:  # noqa: BLE001
                        c = None
        with self._lock:
            self._c_cache[key] = (text, c)
            while len(self._c_cache) > 32:
                self._c_cache.popitem(last=False)
        return text, c

    def _iteration_now(self, candidate: Candidate) -> int:
        self._max_parent_iteration = max(self._max_parent_iteration, int(candidate.iteration or 0))
        if self._iteration is not None:
            return self._iteration
        return self._max_parent_iteration + 1

    # -- Agent: plan ------------------------------------------------------------------
    def plan(self, candidate: Candidate, menu: Sequence[MenuOption], n: int, rng: random.Random) -> list[Plan]:
        try:
            return self._plan(candidate, list(menu), n, rng)
        except Exception as e:  # noqa: BLE001 - an agent bug is a lost proposal, not a lost search
            self.warn(f"LLM agent: planning failed: {type(e).__name__}: {e}")
            return []

    def _plan(self, candidate: Candidate, menu: list[MenuOption], n: int, rng: random.Random) -> list[Plan]:
        if not menu or n <= 0:
            return []
        if not self.client.alive:
            self._none_left()
            return []
        proc_text, c_src = self._context(candidate)
        wname = getattr(candidate.workload, "name", None)
        msgs = prompts.plan_messages(
            proc_text=proc_text or "", c_source=c_src, measurement=candidate.measurement, menu=menu,
            iteration=self._iteration_now(candidate), iterations=self.iterations, config=self.config,
            bottleneck=candidate.bottleneck(), c_lines=self.c_lines,
            workload=wname if isinstance(wname, str) else None, allow_unsafe=self.allow_unsafe)
        with self._lock:
            j0 = self._plan_n
            self._plan_n += n
        jobs = [(j0 + t, rng.getrandbits(32)) for t in range(n)]
        got = self._map(lambda js: self._one_plan(candidate, menu, msgs, js[0], js[1]), jobs)
        return [p for p in got if p is not None]

    def _one_plan(self, candidate, menu, msgs, j, sample) -> Optional[Plan]:
        phase = "plan"
        for attempt in range(self.retries + 1):
            reply, mi = self._ask(j, msgs, phase, sample, self.plan_temperature)
            if reply is None:
                return None
            rec = {"phase": phase, "model": reply.model, "parent": candidate.id, "sample": sample,
                   "attempt": attempt, "cached": reply.cached}
            try:
                key, text = parse_plan(reply.text, menu, self.limits)
            except AnswerError as e:
                self._log({**rec, "ok": False, "stage": "parse", "reason": str(e), "answer": _excerpt(reply.text)})
                msgs = prompts.fix_messages(msgs, reply.text, f"{e}\nAnswer again with 'OPTION: <key>' and 'PLAN: ...'.")
                phase = "fix"
                continue
            self._log({**rec, "ok": True, "option": key, "plan": _excerpt(text, 600)})
            return Plan(key, "llm", text, {"model": reply.model, "sample": sample})
        return None

    # -- Agent: implement ---------------------------------------------------------------
    def implement(self, candidate: Candidate, plan: Plan, k: int, rng: random.Random) -> list[list[dict]]:
        try:
            return self._implement(candidate, plan, k, rng)
        except Exception as e:  # noqa: BLE001
            self.warn(f"LLM agent: implementing failed: {type(e).__name__}: {e}")
            return []

    def _implement(self, candidate: Candidate, plan: Plan, k: int, rng: random.Random) -> list[list[dict]]:
        if k <= 0:
            return []
        if not self.client.alive:
            self._none_left()
            return []
        from ..menu import option as menu_option

        try:
            title = menu_option(plan.option).title
        except KeyError:
            title = plan.option
        proc_text, _c = self._context(candidate)
        wname = getattr(candidate.workload, "name", None)
        base_msgs = prompts.implement_messages(
            plan_option=plan.option, plan_title=title, plan_text=plan.text, proc_text=proc_text or "",
            allow_unsafe=self.allow_unsafe, workload=wname if isinstance(wname, str) else None)
        with self._lock:
            j0 = self._impl_n
            self._impl_n += k
        jobs = [(j0 + t, rng.getrandbits(32)) for t in range(k)]
        got = self._map(lambda js: self._one_impl(candidate, plan, base_msgs, js[0], js[1]), jobs)
        return [s for s in got if s]

    def _one_impl(self, candidate, plan, msgs, j, sample) -> Optional[list[dict]]:
        phase = "implement"
        last_failed: Optional[list[dict]] = None
        for attempt in range(self.retries + 1):
            reply, _mi = self._ask(j, msgs, phase, sample, self.temperature)
            if reply is None:
                return last_failed if self.return_failed else None
            rec = {"phase": phase, "model": reply.model, "parent": candidate.id, "option": plan.option,
                   "sample": sample, "attempt": attempt, "cached": reply.cached}
            steps = None
            try:
                steps = parse_steps(reply.text, plan.option, self.limits, self.allow_unsafe)
                stage = self.check
                err = self._check_steps(candidate, steps)
            except AnswerError as e:
                stage, err = "parse", str(e)
            if err is None:
                self._log({**rec, "ok": True, "steps": steps})
                return steps
            self._log({**rec, "ok": False, "stage": stage, "reason": err, "answer": _excerpt(reply.text),
                       **({"steps": steps} if steps else {})})
            if steps and stage != "parse":
                last_failed = steps
            msgs = prompts.fix_messages(msgs, reply.text, err)
            phase = "fix"
        return last_failed if self.return_failed else None

    def _check_steps(self, candidate: Candidate, steps: list[dict]) -> Optional[str]:
        """None if the steps pass the configured check, else the reason."""
        if self.check == "schema":
            return None
        with self._exo_lock:
            return self._check_locked(candidate, steps)

    def _check_locked(self, candidate: Candidate, steps: list[dict]) -> Optional[str]:
        from ..schedule import ScheduleError

        base = self._base(candidate)
        if base is None or self._applied(candidate) is None:
            if not self._told_no_exo:
                self._told_no_exo = True
                self.warn("LLM agent: the parent's proc cannot be rebuilt here (pass base_proc=...); "
                          "answers are only checked against the whitelist")
            return None
        sched = candidate.schedule.extend(steps)
        n0 = len(candidate.schedule)
        try:
            p = sched.apply(base)
        except ScheduleError as e:
            idx = None if e.index is None else e.index - n0
            where = f"step {idx}" if idx is not None else "a step"
            return f"Exo rejected {where} ({e.op}){f' [{e.kind}]' if e.kind else ''}: {_excerpt(e.message, 1200)}"
        except Exception as e:  # noqa: BLE001
            return f"Exo failed: {type(e).__name__}: {_excerpt(str(e), 1200)}"
        if self.check == "exo":
            return None
        from ..evaluate import evaluate

        m = evaluate(candidate.workload, None, proc=p, config=self.config)
        if m.ok:
            return None
        return f"the program failed at {m.stage}: {_excerpt(m.error, 1200)}"


# --------------------------------------------------------------------------- #
# CLI options (used by `autocomp-exo optimize`)
# --------------------------------------------------------------------------- #

def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "autocomp-exo", "llm")


def add_llm_args(p) -> None:
    g = p.add_argument_group("LLM agent (instead of the offline agent)")
    g.add_argument("--llm", action="append", metavar="MODEL", default=None,
                   help="an OpenAI-compatible model: 'gpt-4o' (OPENAI_API_KEY, OPENAI_BASE_URL) or "
                        "'http://host:port/v1::model-name'; repeat for an ensemble")
    g.add_argument("--llm-cache", metavar="DIR", default=None,
                   help=f"response cache (default {default_cache_dir()}); a rerun with the same seed replays it")
    g.add_argument("--llm-no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--llm-price", action="append", metavar="MODEL=IN,OUT", default=None,
                   help="USD per million input and output tokens, for the cost estimate (repeatable)")
    g.add_argument("--llm-temperature", type=float, default=0.7)
    g.add_argument("--llm-max-tokens", type=int, default=2048)
    g.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per request")
    g.add_argument("--llm-attempts", type=int, default=4, help="attempts per request (429/5xx/timeouts)")
    g.add_argument("--llm-retries", type=int, default=1,
                   help="times a failed answer is sent back with its error (default 1)")
    g.add_argument("--llm-check", choices=("schema", "exo", "evaluate"), default="exo",
                   help="what an answer must pass before it is a candidate (default: apply it with Exo)")
    g.add_argument("--llm-allow-unsafe", action="store_true", help="accept steps that skip Exo's checks")


def agent_from_args(args, run_dir: Optional[str] = None, iterations: Optional[int] = None) -> Optional[LLMAgent]:
    """An LLMAgent from the CLI options, or None when no --llm was given."""
    models = getattr(args, "llm", None)
    if not models:
        return None
    prices = Prices()
    for t in getattr(args, "llm_price", None) or []:
        prices.set(*parse_price(t))
    cache = None if args.llm_no_cache else (args.llm_cache or default_cache_dir())
    return LLMAgent(models, cache_dir=cache, log_dir=run_dir, prices=prices, retries=args.llm_retries,
                    check=args.llm_check, allow_unsafe=args.llm_allow_unsafe, temperature=args.llm_temperature,
                    max_tokens=args.llm_max_tokens, timeout=args.llm_timeout, attempts=args.llm_attempts,
                    iterations=iterations if iterations is not None else getattr(args, "iterations", None))
