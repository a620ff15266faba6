"""The LLM agent: an ensemble of OpenAI-compatible models plans and writes schedule steps.

::

    from autocomp_exo.agents.llm import LLMAgent
    agent = LLMAgent(["gpt-4o", "http://localhost:8000/v1::Qwen/Qwen2.5-Coder-32B-Instruct"],
                     cache_dir="~/.cache/autocomp-exo/llm", log_dir="runs/r1",
                     prices={"gpt-4o": (2.5, 10.0)})
    r = ax.optimize(ax.gemm(512, 512, 512), agent=agent, run_dir="runs/r1")
    print(agent.summary())

``plan`` asks a model for one option of the menu left after dropout (the plan
prompt of `prompts.plan_messages`, the menu shuffled with the rng); ``implement``
asks a model for the steps (`prompts.implement_messages`). The search
(``concurrent = True``) streams its requests through ``requests()``
(`llm_requests.LLMRequests`: each request in its own thread as soon as it
can be asked, models dealt from the search's slot numbers); ``plan_many``
and ``implement_many`` send a whole batch at once. Either way at most
``max_in_flight`` per model are out (plans first among the waiting ones).
Plans are dealt round robin over the plan models (``models`` plus ``plan_models``), implementations over the code models
(``models`` plus ``code_models``), counted over the run; a model whose call
fails hands the request to the next live model, and a request waits for a
model that is cooling down after an outage (`llm_client`).

An answer is untrusted text. The last fenced block (or the last JSON value)
is taken, near forms repaired (`extract_answer`, `_repair_step`: comments,
trailing commas, Python literals and Exo-Python calls read with ``ast``,
named, numeric-string and comma-string arguments), and it is parsed as JSON
(sizes, nesting and numbers bounded; no ``__`` names, no control
characters); a misspelt op is answered with the nearest one. Each step is checked
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
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..proc_facts import facts
from ..proc_text import proc_text
from ..menu import MENU, MenuOption
from .accounting import Accounting, Prices, parse_price
from .base import Agent, Candidate, Plan
from .llm_cache import ResponseCache
from .llm_check import excerpt as _excerpt
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

    #: the longest real chains: 47 primitive steps to make an operand resident,
    #: 31 to tile; written with the macro moves, the offline agent's longest
    #: plans are 12 steps. 64 leaves room for a primitive chain and refuses
    #: padding (the message points to the macro moves).
    def __init__(self, max_chars: int = 60_000, max_steps: int = 64, max_depth: int = 12,
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


_QUOTES = "\"'"


def _balanced_end(s: str, start: int, limit: int = 200_000) -> Optional[int]:
    """Index just past the bracket matching ``s[start]`` (quotes respected), or None."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    stack = []
    i, n = start, min(len(s), start + limit)
    quote = None
    while i < n:
        ch = s[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in _QUOTES:
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
            if len(stack) > 400:
                return None
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
        i += 1
    return None


def _loosen(s: str) -> str:
    """JSON as people write it -> JSON: // and # line comments, /* */ comments
    and trailing commas removed (outside strings)."""
    out = []
    i, n = 0, len(s)
    quote = None
    while i < n:
        ch = s[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(s[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch == '"':
            quote = ch
            out.append(ch)
            i += 1
            continue
        if s.startswith("//", i) or ch == "#":
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        if s.startswith("/*", i):
            j = s.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch == ",":
            j = i + 1
            while j < n and s[j] in " \t\r\n":
                j += 1
            if j < n and s[j] in "]}":
                i += 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _from_python(v: Any, depth: int = 0) -> Any:
    """A Python literal (from ast.literal_eval) -> a JSON value, or AnswerError."""
    if depth > 40:
        raise AnswerError("invalid answer: nested too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise AnswerError(f"number {v!r} is not finite")
        return v
    if isinstance(v, (list, tuple)):
        return [_from_python(x, depth + 1) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise AnswerError(f"key {k!r} is not a string")
            out[k] = _from_python(x, depth + 1)
        return out
    raise AnswerError(f"{type(v).__name__} values are not allowed (use JSON values)")


def _literal(src: str) -> Any:
    """``ast.literal_eval`` (never eval) of a Python literal, as JSON, or AnswerError."""
    import ast

    try:
        v = ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise AnswerError(f"not a Python literal: {type(e).__name__}") from None
    return _from_python(v)


_CALL_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?(?:[A-Za-z_]\w*\s*\.\s*)?([A-Za-z_]\w*)\s*\(")


def _python_calls(chunk: str, notes: list) -> Optional[list]:
    """Exo-Python calls (``p = divide_loop(p, 'i', 16, ['io', 'ii'], perfect=True)``)
    -> step dicts, read with ``ast`` (arguments through literal_eval; nothing runs).
    None when the chunk has no such calls."""
    import ast
    from ..schedule import CONFIGS, INSTRUCTIONS, MEMORIES, OPS

    lines = [ln for ln in chunk.splitlines() if _CALL_LINE.match(ln)]
    if not lines or not any(_CALL_LINE.match(ln).group(1) in OPS or _near_op(_CALL_LINE.match(ln).group(1))
                            for ln in lines):
        return None
    # statements may span lines: parse the chunk from the first call line on, else line by line
    stmts = []
    try:
        tree = ast.parse(chunk[chunk.index(lines[0]):])
        stmts = list(tree.body)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        for ln in lines:
            try:
                stmts.extend(ast.parse(ln.strip()).body)
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                continue

    def value(node, what):
        if isinstance(node, ast.Name):
            if node.id in MEMORIES:
                return {"mem": node.id}
            if node.id in CONFIGS:
                return {"config": node.id}
            if node.id in INSTRUCTIONS:
                return {"instr": node.id}
            raise AnswerError(f"{what}: the name {node.id} is not a value; write strings in quotes "
                              "(loop and buffer names are strings, e.g. \"i\")")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return value(ast.Name(node.attr), what)     # gemmini.GEMM_SCRATCH
        if isinstance(node, ast.Call):                   # p.find_loop("i"), p.find("x = _")
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if fn in ("find_loop", "find", "find_alloc_or_arg") and len(node.args) == 1 and not node.keywords:
                v = value(node.args[0], what)
                if isinstance(v, str):
                    return {"loop": v} if fn == "find_loop" else v
            raise AnswerError(f"{what}: calls inside arguments are not allowed (write the pattern as a string)")
        try:
            return _from_python(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise AnswerError(f"{what}: not a literal value; write loop and buffer patterns as strings "
                              "(e.g. \"k\", \"for k in _: _\") and other values as JSON") from None

    steps = []
    for st in stmts:
        call = st.value if isinstance(st, (ast.Expr, ast.Assign)) else None
        if not isinstance(call, ast.Call):
            continue
        f = call.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if not isinstance(name, str):
            continue
        args = list(call.args)
        if args and isinstance(args[0], ast.Name) and args[0].id not in MEMORIES and args[0].id not in CONFIGS \
                and args[0].id not in INSTRUCTIONS:
            args = args[1:]                              # the proc: divide_loop(p, ...)
        step = {"op": name, "args": [value(x, f"{name} argument {i}") for i, x in enumerate(args)]}
        kw = {}
        for k in call.keywords:
            if k.arg is None:
                raise AnswerError(f"{name}: **kwargs are not allowed")
            kw[k.arg] = value(k.value, f"{name} argument {k.arg}")
        if kw:
            step["kwargs"] = kw
        steps.append(step)
        if len(steps) > 400:
            break
    if not steps:
        return None
    notes.append("read Exo-Python calls as steps")
    return steps


def _values(chunk: str, dec, limits: Limits, errs: list, budget: list) -> list:
    """Top-level JSON values of ``chunk`` (strict, then loosened, then Python literals), in order."""
    out = []
    i, n = 0, len(chunk)
    while i < n:
        m = re.compile(r"[\[{]").search(chunk, i)
        if not m:
            break
        st = m.start()
        budget[0] -= 1
        if budget[0] < 0:
            break
        try:
            v, end = dec.raw_decode(chunk, st)
            out.append((v, None))
            i = end
            continue
        except AnswerError:
            raise
        except RecursionError:
            raise AnswerError("invalid JSON: nested too deeply") from None
        except ValueError as e:
            errs.append(f"invalid JSON: {e}")
        end = _balanced_end(chunk, st)
        if end is None:
            i = st + 1
            continue
        sub = chunk[st:end]
        got = None
        try:
            got = (dec.decode(_loosen(sub)), "removed comments / trailing commas")
        except AnswerError:
            raise
        except RecursionError:
            raise AnswerError("invalid JSON: nested too deeply") from None
        except ValueError:
            try:
                got = (_literal(sub), "read a Python literal (quotes, True/False/None)")
            except AnswerError:
                got = None
        if got is not None:
            out.append(got)
            i = end
        else:
            i = st + 1
    return out


def extract_answer(text: str, limits: Limits) -> tuple[Any, list]:
    """The answer's JSON value and the repairs it needed: the last fenced block
    that holds steps, else the last top-level steps value of the text (a short
    reasoning section before it is fine). Repairs: comments and trailing commas,
    Python literals (``ast.literal_eval``), Exo-Python calls (``ast``); nothing
    is evaluated."""
    if len(text) > limits.max_chars:
        raise AnswerError(f"the answer is too long ({len(text)} characters, at most {limits.max_chars})")
    dec = json.JSONDecoder(parse_int=_int_hook(limits), parse_float=_float_hook, parse_constant=_const_hook)
    fences = [m.group(1) for m in _FENCE.finditer(text)]
    chunks = list(reversed(fences)) + [text]
    errs: list = []
    budget = [200]
    other = None
    for ci, chunk in enumerate(chunks):
        vals = _values(chunk, dec, limits, errs, budget)
        notes = []
        if ci < len(fences) and len(fences) > 1 and ci == 0:
            pass
        steps = [(v, how) for v, how in vals if _steps_like(v)]
        if steps:
            v, how = steps[-1]
            if how:
                notes.append(how)
            if ci > 0 and ci < len(fences):
                notes.append("took an earlier fenced block (the last one holds no steps)")
            return v, notes
        calls = _python_calls(chunk, notes)
        if calls is not None:
            return calls, notes
        if other is None:
            for v, how in reversed(vals):
                if isinstance(v, (dict, list)):
                    other = v
                    break
    if other is not None and not errs:
        return other, []
    if other is not None and isinstance(other, dict):
        return other, []
    raise AnswerError(errs[0] if errs else "the answer contains no JSON object (expected {\"steps\": [...]})")


def extract_json(text: str, limits: Limits) -> Any:
    """The answer's JSON value (see `extract_answer`)."""
    return extract_answer(text, limits)[0]


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


def _near_op(name: Any) -> Optional[str]:
    """The whitelisted op closest to a misspelt one (None if nothing is close)."""
    import difflib
    from ..schedule import WHITELIST

    if not isinstance(name, str) or not name or len(name) > 60:
        return None
    low = name.strip().lower()
    for op in WHITELIST:
        if low == op.lower():
            return op
    m = difflib.get_close_matches(low, list(WHITELIST), n=1, cutoff=0.75)
    if m:
        return m[0]
    # a move named by its verb ("hoist", "interchange", "stage"): the one op it starts
    pre = [op for op in WHITELIST if len(low) >= 4 and op.startswith(low)]
    return pre[0] if len(pre) == 1 else None


_NUM = re.compile(r"^\s*-?\d{1,9}\s*$")
_ALIASES = {"operation": "op", "primitive": "op", "name": "op", "function": "op", "arguments": "args",
            "params": "args", "kw": "kwargs", "keyword_args": "kwargs", "options": "kwargs"}


def _coerce(kind: str, v: Any, where: str, notes: list) -> Any:
    """A value written in a near form -> the kind's form (numeric strings, comma strings, ...)."""
    from ..schedule import CONFIGS, INSTRUCTIONS, MEMORIES

    if isinstance(v, str):
        t = v.strip()
        if kind in ("pos_int", "nat", "int", "opt_pos_int") and _NUM.match(t):
            notes.append(f"{where}: {v!r} -> {int(t)}")
            return int(t)
        if kind == "bool" and t.lower() in ("true", "false"):
            notes.append(f"{where}: {v!r} -> {t.lower()}")
            return t.lower() == "true"
        if kind == "names2":
            parts = [x for x in re.split(r"[\s,]+", t.strip("[]()")) if x]
            if len(parts) == 2:
                parts = [x.strip("'\"") for x in parts]
                notes.append(f"{where}: {v!r} -> {parts}")
                return parts
        if kind == "int_list":
            parts = [x for x in re.split(r"[\s,]+", t.strip("[]()")) if x]
            if parts and all(_NUM.match(x) for x in parts):
                notes.append(f"{where}: {v!r} -> list of integers")
                return [int(x) for x in parts]
        if kind == "new_exprs":
            notes.append(f"{where}: {v!r} -> [{v!r}]")
            return [v]
        if kind == "names":                          # stage_buffer's expand: "ii" or "ii, jo"
            parts = [x.strip("'\"") for x in re.split(r"[\s,]+", t.strip("[]()")) if x.strip("'\"")]
            if all(_KEY.match(x) for x in parts):
                notes.append(f"{where}: {v!r} -> {parts}")
                return parts
        if kind == "opt_name" and t.lower() in ("null", "none", ""):
            notes.append(f"{where}: {v!r} -> null")
            return None
        if kind == "mem" and t in MEMORIES:
            notes.append(f"{where}: {v!r} -> {{\"mem\": {t!r}}}")
            return {"mem": t}
        if kind == "instr" and t in INSTRUCTIONS:
            notes.append(f"{where}: {v!r} -> {{\"instr\": {t!r}}}")
            return {"instr": t}
        if kind == "config" and t in CONFIGS:
            notes.append(f"{where}: {v!r} -> {{\"config\": {t!r}}}")
            return {"config": t}
    if kind == "names2" and isinstance(v, list) and len(v) == 1 and isinstance(v[0], str):
        parts = [x for x in re.split(r"[\s,]+", v[0]) if x]
        if len(parts) == 2:
            notes.append(f"{where}: {v!r} -> {parts}")
            return parts
    if kind in ("pos_int", "nat", "int", "opt_pos_int") and isinstance(v, float) and v.is_integer():
        notes.append(f"{where}: {v!r} -> {int(v)}")
        return int(v)
    return v


def _repair_step(s: dict, i: int, notes: list) -> dict:
    """A step object in a near form -> the canonical form: aliases of the keys,
    named arguments (an ``args`` object or the parameters at the top level)
    moved to ``kwargs``, values coerced to their parameter's kind."""
    from ..schedule import OPS

    d = dict(s)
    for k, to in _ALIASES.items():
        if k in d and to not in d and not (k == "name" and "op" in d):
            d[to] = d.pop(k)
            notes.append(f"step {i}: key {k!r} -> {to!r}")
    op = d.get("op")
    if isinstance(op, str) and op.strip() != op:
        d["op"] = op = op.strip()
    spec = OPS.get(op) if isinstance(op, str) else None
    if spec is None:
        return d
    names = [p.name for p in spec.params]
    args = d.get("args", [])
    kwargs = d.get("kwargs", {})
    if args is None:
        args = []
    if kwargs is None:
        kwargs = {}
    if isinstance(args, dict):                       # named arguments in "args"
        kwargs = {**args, **(kwargs if isinstance(kwargs, dict) else {})}
        args = []
        notes.append(f"step {i}: named arguments moved to kwargs")
    elif not isinstance(args, list) and len(names) >= 1:
        args = [args]
        notes.append(f"step {i}: a single argument -> [argument]")
    flat = [k for k in d if k not in ("op", "args", "kwargs", "menu") and k in names]
    if flat and isinstance(kwargs, dict):
        kwargs = dict(kwargs)
        for k in flat:
            kwargs.setdefault(k, d.pop(k))
        notes.append(f"step {i}: top-level parameters {flat} moved to kwargs")
    if isinstance(args, list) and isinstance(kwargs, dict) and kwargs:
        args, kwargs = list(args), dict(kwargs)
        while len(args) < len(spec.params) and spec.params[len(args)].name in kwargs:
            args.append(kwargs.pop(spec.params[len(args)].name))   # canonical: positional
    if isinstance(args, list):
        args = [_coerce(p.kind, v, f"step {i} {p.name}", notes) for p, v in zip(spec.params, args)] + \
            args[len(spec.params):]
    if isinstance(kwargs, dict):
        kinds = {p.name: p.kind for p in spec.params}
        kwargs = {k: (_coerce(kinds[k], v, f"step {i} {k}", notes) if k in kinds else v) for k, v in kwargs.items()}
    d["args"], d["kwargs"] = args, kwargs
    return d


def parse_steps(text: str, option: str, limits: Optional[Limits] = None, allow_unsafe: bool = False,
                notes: Optional[list] = None) -> list[dict]:
    """An implement answer -> validated step dicts labelled with ``option``.

    Near forms are repaired (see `extract_answer`, `_repair_step`) and the
    repairs appended to ``notes``. Raises AnswerError with the reason
    (invalid JSON, wrong shape, a value screened out, a step the whitelist
    rejects, with the nearest op for a misspelt one, an unsafe step)."""
    from ..schedule import Schedule, ScheduleError, Step, WHITELIST

    limits = limits or Limits()
    notes = [] if notes is None else notes
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    data, how = extract_answer(text, limits)
    notes.extend(how)
    if isinstance(data, dict):
        if "steps" not in data:
            if "op" in data:
                data = [data]
                notes.append("a single step object -> a list of one step")
            else:
                raise AnswerError(f'expected {{"steps": [...]}}, got an object with keys {sorted(data)[:8]}')
        else:
            data = data.get("steps")
    if not isinstance(data, list):
        raise AnswerError(f'"steps" must be a list of step objects, got {type(data).__name__}')
    if not data:
        raise AnswerError("no steps given")
    if len(data) > limits.max_steps:
        raise AnswerError(f"{len(data)} steps (at most {limits.max_steps}): write the structural changes as "
                          "macro moves (tile_loop, hoist_load, stage_buffer, ...: one step each)")
    screen(data, limits, "steps")
    out = []
    for i, s in enumerate(data):
        if not isinstance(s, dict):
            raise AnswerError(f"step {i}: a step is an object {{\"op\": ..., \"args\": [...]}}, got {type(s).__name__}")
        d = _repair_step(s, i, notes)
        d.pop("menu", None)  # the label is the plan's option, whatever the model wrote
        d["menu"] = option
        op = d.get("op")
        if isinstance(op, str) and op not in WHITELIST:
            near = _near_op(op)
            hint = f"; did you mean {near!r}?" if near else ""
            raise AnswerError(f"step {i} ({op[:60]}): unknown op {op[:60]!r}{hint} "
                              f"(allowed ops: {', '.join(WHITELIST)})")
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


_OPTION_LINE = re.compile(r"^[ \t*#>_-]*(?:(?:chosen|selected|final|my|picked)[ \t]+)?(?:menu[ \t]+)?"
                          r"(?:option|optimization|choice)[ \t*_]*[:=][ \t*_]*(.+?)[ \t]*$", re.I | re.M)
_PLAN_LINE = re.compile(r"^[ \t*#>_-]*plan[ \t*_]*[:=][ \t*_]*", re.I | re.M)


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def _plan_json(text: str, limits: Limits) -> Optional[dict]:
    """The last JSON object with an "option" in a plan answer (fenced or not)."""
    dec = json.JSONDecoder(parse_int=_int_hook(limits), parse_float=_float_hook, parse_constant=_const_hook)
    fences = [m.group(1) for m in _FENCE.finditer(text)]
    for chunk in list(reversed(fences)) + [text]:
        try:
            vals = _values(chunk, dec, limits, [], [60])
        except AnswerError:
            continue
        for v, _how in reversed(vals):
            if isinstance(v, dict) and isinstance(v.get("option"), str):
                return v
    return None


def parse_plan(text: str, menu: Sequence[MenuOption], limits: Optional[Limits] = None) -> tuple[str, str]:
    """A plan answer -> (menu key, plan text). The option must be one of ``menu``.

    Accepted: ``OPTION: <key>`` / ``PLAN: ...`` lines (the last ones, so a
    reasoning section may come first; markdown emphasis and "Chosen
    optimization: **tiling**" too), a JSON object ``{"option": ..., "plan":
    ...}`` (fenced or in prose), the option's key or title, or exactly one
    ``[key]``."""
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
    obj = _plan_json(text, limits) if "{" in text else None
    if obj is not None:
        raw = obj["option"]
        body = str(obj.get("plan") or obj.get("text") or obj.get("description") or "")
    if raw is None:
        ms = list(_OPTION_LINE.finditer(text))
        if ms:
            m = ms[-1]
            raw = m.group(1)
            ps = [p for p in _PLAN_LINE.finditer(text) if p.start() > m.start()]
            body = text[ps[0].end():].strip() if ps else text[m.end():].strip()
    if raw is not None:
        key_text = _norm(raw.strip().strip("*_[]`'\". ").split("]")[0])
        key = lookup.get(key_text)
        if key is None:  # "unroll (unrolling)", "[unroll] unrolling", "tiling: split i"
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



def _shape(f: Any) -> list:
    """Loops, allocations and calls by name and depth of a `ProcFacts` (stable
    across processes, unlike the order of index terms in the text)."""
    if f is None:
        return []
    return [(n.kind, n.name, len(n.ancestors())) for n in f.nodes() if n.kind in ("for", "alloc", "call")]


class LLMAgent(Agent):
    """An ensemble of OpenAI-compatible chat models as a search agent (see the module doc)."""

    name = "llm"

    concurrent = True   # the search sends many requests at once (requests(), or plan_many / implement_many)

    def __init__(self, models: str | Sequence[str | ModelSpec] = (), *, plan_models: Optional[Sequence] = None,
                 code_models: Optional[Sequence] = None, cache_dir: Optional[str] = None,
                 log_dir: Optional[str] = None, prices: Optional[dict | Prices] = None,
                 retries: int = 1, check: str = "exo", allow_unsafe: bool = False,
                 temperature: float = 0.7, plan_temperature: Optional[float] = None,
                 max_tokens: int = 2048, top_p: Optional[float] = None, timeout: float = 120.0,
                 attempts: Optional[int] = None, backoff: float = 1.0, backoff_max: float = 120.0,
                 outage: float = 600.0, cooldown: float = 300.0, max_suspensions: int = 3,
                 max_in_flight: int = 8, tokens_per_minute: Optional[int] = None,
                 max_calls: Optional[int] = None, max_cost: Optional[float] = None,
                 reasoning_tokens: int = 16384, config: Any = None, iterations: Optional[int] = None,
                 base_proc: Any = None, show_c: bool = True, c_lines: int = 80, limits: Optional[Limits] = None,
                 return_failed: bool = True, send_seed: bool = True, parallel: int = 128,
                 shuffle_menu: bool = True, macro_moves: bool = True, macro_seconds: float = 30.0,
                 check_in_pool: bool = False,
                 warn: Optional[Callable[[str], None]] = None,
                 sleep: Optional[Callable[[float], None]] = None, jitter_seed: Optional[int] = None):
        if check not in ("schema", "exo", "evaluate"):
            raise ValueError(f"check must be 'schema', 'exo' or 'evaluate', got {check!r}")
        self.warn = warn or (lambda msg: print(f"autocomp-exo: warning: {msg}", file=sys.stderr, flush=True))
        self.accounting = Accounting(prices)
        self.cache = ResponseCache(os.path.expanduser(cache_dir)) if cache_dir else None

        def as_list(ms):
            if ms is None:
                return []
            return [ms] if isinstance(ms, (str, ModelSpec)) else list(ms)

        both, plan_l, code_l = as_list(models), as_list(plan_models), as_list(code_models)
        specs: list = []
        for m in both + plan_l + code_l:
            sp = m if isinstance(m, ModelSpec) else ModelSpec.parse(m)
            if sp.name not in [x.name for x in specs]:
                specs.append(sp)
        if not specs:
            raise LLMConfigError("no model given (models=..., plan_models=... and code_models=...)")
        kw = {} if sleep is None else {"sleep": sleep}
        self.client = LLMClient(specs, timeout=timeout, attempts=attempts, backoff=backoff,
                                backoff_max=backoff_max, outage=outage, cooldown=cooldown,
                                max_suspensions=max_suspensions, max_in_flight=max_in_flight,
                                tokens_per_minute=tokens_per_minute, max_calls=max_calls, max_cost=max_cost,
                                reasoning_tokens=reasoning_tokens, cache=self.cache, accounting=self.accounting,
                                warn=self.warn, send_seed=send_seed, jitter_seed=jitter_seed, **kw)
        index = {sp.name: i for i, sp in enumerate(specs)}

        def names(ms):
            return [index[(m if isinstance(m, ModelSpec) else ModelSpec.parse(m)).name] for m in ms]

        # models that plan / write code: each list dealt round robin (both lists: every model of `models`)
        self.plan_pool = names(both + plan_l) or list(range(len(specs)))
        self.code_pool = names(both + code_l) or list(range(len(specs)))
        self.shuffle_menu = shuffle_menu
        self.macro_moves = macro_moves
        self.macro_seconds = macro_seconds
        # drafts checked in the search's worker pool when a worker is idle: on a shared 2-core machine
        # slower than here (the workers rebuild the parent's proc this process has cached), so off
        self.check_in_pool = check_in_pool
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
        self._batch = threading.local()
        self.log_dir: Optional[Path] = None
        self._plan_n = 0
        self._impl_n = 0
        self._iteration: Optional[int] = None
        self._max_parent_iteration = -1
        self._told_none_left = False
        self._told_no_exo = False
        self._c_cache: "OrderedDict[str, tuple[Optional[str], Optional[str]]]" = OrderedDict()
        self._c_building: dict[str, threading.Lock] = {}   # parent schedule -> lock of its first build
        self._lock = threading.RLock()
        self._exo_lock = threading.RLock()   # Exo is not thread-safe: one proc operation at a time
        self._procs: "OrderedDict[str, Any]" = OrderedDict()   # parent schedule -> its proc (or None)
        self._guides: "OrderedDict[str, Any]" = OrderedDict()  # parent schedule -> Future of its macro guide
        self._guide_pool = None
        self._threads = None
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
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)
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
        tag = getattr(self._batch, "tag", None)
        if tag is not None:
            rec = {**rec, "request": tag[0], "job": tag[1]}
        kind = getattr(self._batch, "kind", None)
        if kind is not None:
            rec = {**rec, "kind": kind}
        sink = getattr(self._batch, "sink", None)
        with self._lock:
            self.answers.append(rec)
            if not rec.get("ok") and rec.get("counted", True):
                self.rejections.append(rec)
                if sink is not None:
                    sink.append(rec)
            if self.log_dir is not None:
                with open(self.log_dir / "llm_answers.jsonl", "a") as fh:
                    fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")

    def _none_left(self) -> None:
        if not self._told_none_left:
            self._told_none_left = True
            self.warn("no LLM model is left (all were dropped); the agent proposes nothing more and the search "
                      "stops after its idle iterations, keeping everything found")

    # -- model choice -------------------------------------------------------------
    def _order(self, j: int, pool: Optional[list] = None) -> list[int]:
        """Models to try for request j: pool[j mod len(pool)] first, then the rest of
        the pool, then the other live models."""
        pool = pool if pool else list(range(len(self.client.states)))
        n = len(pool)
        alive = set(self.client.alive)
        first = [pool[(j + d) % n] for d in range(n)]
        rest = [i for i in range(len(self.client.states)) if i not in first]
        return [i for i in dict.fromkeys(first + rest) if i in alive]

    def _ask(self, j: int, messages: list[dict], phase: str, sample: int, temperature: float,
             pool: Optional[list] = None, usable: Optional[Callable[[str], bool]] = None, priority: int = 1):
        """Ask model pool[j mod len] (failing over to the others; waiting for a model
        that is cooling down after an outage); (reply, model index) or (None, None).

        An answer cut by the token limit that is not ``usable`` is asked again
        with twice the limit (up to 4x)."""
        waits = 0
        while True:
            for i in self._order(j, pool):
                scale = 1
                while True:
                    r = self.client.complete(i, messages, phase=phase, sample=sample, temperature=temperature,
                                             max_tokens=self.max_tokens, top_p=self.top_p, scale=scale,
                                             priority=priority)
                    if r is None:
                        break
                    if r.finish_reason == "length" and scale < 4 and not (usable and usable(r.text)):
                        self._log({"phase": phase, "model": r.model, "sample": sample, "ok": False,
                                   "stage": "truncated", "cached": r.cached, "counted": False,
                                   "reason": f"the answer was cut at the token limit (x{scale}); asked again "
                                             f"with x{scale * 2}", "answer": _excerpt(r.text, 300)})
                        scale *= 2
                        continue
                    return r, i
            w = self.client.next_return()
            if w is None or waits > self.client.max_suspensions:
                break
            waits += 1
            time.sleep(min(w, self.client.cooldown) + 0.01)
        if not self.client.alive:
            self._none_left()
        return None, None

    def _executor(self):
        """The agent's request threads (kept across calls: the search's
        `requests` session submits one request at a time)."""
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="llm-request")
            return self._threads

    def requests(self, run_task: Optional[Callable] = None):
        """A session of streamed requests for one search iteration
        (`llm_requests.LLMRequests`); ``run_task``: the search's worker pool,
        for the Exo work of the worked examples."""
        from .llm_requests import LLMRequests

        return LLMRequests(self, run_task)

    def _map(self, fn, jobs: list) -> list:
        """fn over jobs, in threads when there are several (results in job order)."""
        if len(jobs) <= 1 or self.parallel <= 1:
            return [fn(j) for j in jobs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.parallel, len(jobs))) as ex:
            return list(ex.map(fn, jobs))

    def _tagged(self, fn):
        """fn(job) with the job's (request, index) set for the answer log."""
        def run(job):
            self._batch.tag = job["tag"]
            try:
                return fn(job)
            finally:
                self._batch.tag = None
        return run

    def _settle(self, n0_ans: int, n0_rej: int) -> None:
        """Put the answers and rejections logged since (n0_ans, n0_rej) in request
        order (threads finish in any order; the search reads them in order)."""
        def k(r):
            return (r.get("request", -1), r.get("job", -1), r.get("attempt", -1), 0 if r.get("stage") == "truncated" else 1)

        with self._lock:
            self.answers[n0_ans:] = sorted(self.answers[n0_ans:], key=k)
            self.rejections[n0_rej:] = sorted(self.rejections[n0_rej:], key=k)

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
        evaluated = candidate.proc_facts()
        if evaluated is not None:
            try:
                same = _shape(facts(p)) == _shape(evaluated)
            except Exception:  # noqa: BLE001
                same = False
            if not same:
                return None   # not the proc the search evaluated (e.g. a mapped baseline proc): no Exo check
        return p

    def _facts(self, candidate: Candidate):
        """The `ProcFacts` of the candidate's proc: the worker's, else read from
        the proc rebuilt here (None when neither is available)."""
        f = candidate.proc_facts()
        if f is not None:
            return f
        p = self._applied(candidate)
        if p is None:
            return None
        with self._exo_lock:
            try:
                return facts(p)
            except Exception:  # noqa: BLE001 - facts are a help for the prompts
                return None

    # -- macro moves of a candidate ---------------------------------------------------
    def _guide_future(self, candidate: Candidate, run_task: Optional[Callable] = None):
        """The Future of the candidate's macro-move guide (`llm_moves.guide`,
        or its text), started at most once per parent: plan_many and the
        request session start them, so Exo applies the worked examples while
        the plan requests are out. With ``run_task(kind, schedule, **fields)``
        (the search's worker pool) the guide is built in a worker process
        (`llm_moves.guide_task`): parents' guides in parallel, and not under
        this process's Exo lock, which the prompts' context and the checks of
        drafts need meanwhile."""
        from concurrent.futures import Future, ThreadPoolExecutor

        key = candidate.schedule.canonical()
        with self._lock:
            fut = self._guides.get(key)
            if fut is not None:
                self._guides.move_to_end(key)
                return fut
            if not self.macro_moves:
                fut = Future()
                fut.set_result(None)
            elif run_task is not None:
                fut = self._guide_in_pool(candidate, run_task)
            else:
                if self._guide_pool is None:
                    self._guide_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-guide")
                fut = self._guide_pool.submit(self._make_guide, candidate)
            self._guides[key] = fut
            while len(self._guides) > 64:
                self._guides.popitem(last=False)
            return fut

    def _guide_in_pool(self, candidate: Candidate, run_task: Callable):
        """A Future of the guide's text, built by a worker (None if it failed there)."""
        from concurrent.futures import Future

        out: Future = Future()
        kw = {"seconds": self.macro_seconds}
        if self.config is not None:
            kw["config"] = self.config.to_dict()

        def done(f) -> None:
            try:
                r = f.result()
                text = r.get("text") if (r.get("measurement") or {}).get("ok") else None
                if text is None:
                    self.warn(f"LLM agent: no macro-move examples: {(r.get('measurement') or {}).get('error')}")
            except Exception as e:  # noqa: BLE001 - the guide is a help for the prompts
                self.warn(f"LLM agent: no macro-move examples: {type(e).__name__}: {e}")
                text = None
            out.set_result(text)

        try:
            run_task("guide", candidate.schedule, **kw).add_done_callback(done)
        except Exception as e:  # noqa: BLE001
            self.warn(f"LLM agent: no macro-move examples: {type(e).__name__}: {e}")
            out.set_result(None)
        return out

    def _make_guide(self, candidate: Candidate):
        from . import llm_moves

        f = self._facts(candidate)
        if f is None:
            return None
        with self._exo_lock:
            try:
                base = self._base(candidate)
                key = None if base is None else (base, candidate.schedule.canonical())
                return llm_moves.guide(f, self._config_of(candidate), self._applied(candidate),
                                       seconds=self.macro_seconds, key=key)
            except Exception as e:  # noqa: BLE001 - the guide is a help for the prompts
                self.warn(f"LLM agent: no macro-move examples: {type(e).__name__}: {e}")
                return None

    def _guide(self, candidate: Candidate):
        try:
            return self._guide_future(candidate).result()
        except Exception:  # noqa: BLE001
            return None

    def _config_of(self, candidate: Candidate):
        return self.config if self.config is not None else candidate.config

    def _context(self, candidate: Candidate) -> tuple[Optional[str], Optional[str]]:
        """(proc text, C source) of the parent, cached by its schedule and built
        once (a round's requests for one parent all start at once: the others
        wait for the first instead of lowering it to C again)."""
        key = candidate.schedule.canonical()
        with self._lock:
            once = self._c_building.setdefault(key, threading.Lock())
        with once:
            try:
                return self._context_once(candidate, key)
            finally:
                with self._lock:
                    self._c_building.pop(key, None)

    def _context_once(self, candidate: Candidate, key: str) -> tuple[Optional[str], Optional[str]]:
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
        return self.plan_many([(candidate, menu, n, rng)])[0]

    def plan_many(self, requests: Sequence[tuple]) -> list[list[Plan]]:
        """Plans for many (candidate, menu, n, rng) requests at once (all sent
        concurrently; results in request order, rejections logged in request order)."""
        with self._lock:
            n0 = (len(self.answers), len(self.rejections))
        jobs = []
        for q, (candidate, menu, n, rng) in enumerate(requests):
            try:
                jobs.extend(self._plan_jobs(q, candidate, list(menu), n, rng))
            except Exception as e:  # noqa: BLE001 - an agent bug is a lost proposal, not a lost search
                self.warn(f"LLM agent: planning failed: {type(e).__name__}: {e}")
        for cand in {id(j["candidate"]): j["candidate"] for j in jobs}.values():
            self._guide_future(cand)      # worked examples for the implement round, built meanwhile
        got = self._map(self._tagged(self._plan_job), jobs)
        out: list[list[Plan]] = [[] for _ in requests]
        for job, p in zip(jobs, got):
            if p is not None:
                out[job["tag"][0]].append(p)
        self._settle(*n0)
        return out

    def _plan_jobs(self, q: int, candidate: Candidate, menu: list[MenuOption], n: int, rng: random.Random,
                   j0: Optional[int] = None) -> list:
        if not menu or n <= 0:
            return []
        if not self.client.alive and self.client.next_return() is None:
            self._none_left()
            return []
        if self.shuffle_menu:
            menu = list(menu)
            rng.shuffle(menu)
        proc_text, c_src = self._context(candidate)
        wname = getattr(candidate.workload, "name", None)
        msgs = prompts.plan_messages(
            proc_text=proc_text or "", c_source=c_src, measurement=candidate.measurement, menu=menu,
            iteration=self._iteration_now(candidate), iterations=self.iterations, config=self.config,
            bottleneck=candidate.bottleneck(), c_lines=self.c_lines,
            workload=wname if isinstance(wname, str) else None, allow_unsafe=self.allow_unsafe,
            macros=self._brief(candidate))
        if j0 is None:
            with self._lock:
                j0 = self._plan_n
                self._plan_n += n
        return [{"tag": (q, t), "candidate": candidate, "menu": menu, "msgs": msgs, "j": j0 + t,
                 "sample": rng.getrandbits(32)} for t in range(n)]

    def _brief(self, candidate: Candidate) -> Optional[str]:
        """The macro moves that apply, for the plan prompt (from the facts; no Exo)."""
        if not self.macro_moves:
            return None
        from . import llm_moves

        f = self._facts(candidate)
        if f is None:
            return None
        try:
            return llm_moves.brief(f, self._config_of(candidate)) or None
        except Exception:  # noqa: BLE001
            return None

    def _plan_job(self, job: dict) -> Optional[Plan]:
        try:
            return self._one_plan(job["candidate"], job["menu"], job["msgs"], job["j"], job["sample"])
        except Exception as e:  # noqa: BLE001
            self.warn(f"LLM agent: planning failed: {type(e).__name__}: {e}")
            return None

    def _one_plan(self, candidate, menu, msgs, j, sample) -> Optional[Plan]:
        phase = "plan"

        def usable(t):
            try:
                parse_plan(t, menu, self.limits)
                return True
            except AnswerError:
                return False

        for attempt in range(self.retries + 1):
            # plans first when requests wait for a model: each unlocks its implement requests
            reply, mi = self._ask(j, msgs, phase, sample, self.plan_temperature, self.plan_pool, usable, priority=0)
            if reply is None:
                return None
            rec = {"phase": phase, "model": reply.model, "parent": candidate.id, "sample": sample,
                   "attempt": attempt, "cached": reply.cached}
            try:
                key, text = parse_plan(reply.text, menu, self.limits)
            except AnswerError as e:
                self._log({**rec, "ok": False, "stage": "parse", "reason": str(e), "answer": _excerpt(reply.text)})
                msgs = prompts.fix_messages(msgs, reply.text, str(e), kind="plan",
                                            options=[o.key for o in menu])
                phase = "fix"
                continue
            self._log({**rec, "ok": True, "option": key, "plan": _excerpt(text, 600)})
            return Plan(key, "llm", text, {"model": reply.model, "sample": sample})
        return None

    # -- Agent: implement ---------------------------------------------------------------
    def implement(self, candidate: Candidate, plan: Plan, k: int, rng: random.Random) -> list[list[dict]]:
        return self.implement_many([(candidate, plan, k, rng)])[0]

    def implement_many(self, requests: Sequence[tuple]) -> list[list[list[dict]]]:
        """Implementations for many (candidate, plan, k, rng) requests at once
        (concurrently; results and logged rejections in request order)."""
        with self._lock:
            n0 = (len(self.answers), len(self.rejections))
        jobs = []
        for q, (candidate, plan, k, rng) in enumerate(requests):
            try:
                jobs.extend(self._impl_jobs(q, candidate, plan, k, rng))
            except Exception as e:  # noqa: BLE001
                self.warn(f"LLM agent: implementing failed: {type(e).__name__}: {e}")
        got = self._map(self._tagged(self._impl_job), jobs)
        out: list[list[list[dict]]] = [[] for _ in requests]
        for job, steps in zip(jobs, got):
            if steps:
                out[job["tag"][0]].append(steps)
        self._settle(*n0)
        return out

    def _impl_jobs(self, q: int, candidate: Candidate, plan: Plan, k: int, rng: random.Random,
                   j0: Optional[int] = None) -> list:
        if k <= 0:
            return []
        if not self.client.alive and self.client.next_return() is None:
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
            facts=self._facts(candidate), allow_unsafe=self.allow_unsafe,
            workload=wname if isinstance(wname, str) else None, macros=self._macros(candidate))
        if j0 is None:
            with self._lock:
                j0 = self._impl_n
                self._impl_n += k
        return [{"tag": (q, t), "candidate": candidate, "plan": plan, "msgs": base_msgs, "j": j0 + t,
                 "sample": rng.getrandbits(32)} for t in range(k)]

    def _macros(self, candidate: Candidate) -> Optional[str]:
        g = self._guide(candidate)
        return g if g is None or isinstance(g, str) else g.text()

    def _impl_job(self, job: dict) -> Optional[list[dict]]:
        try:
            return self._one_impl(job["candidate"], job["plan"], job["msgs"], job["j"], job["sample"])
        except Exception as e:  # noqa: BLE001
            self.warn(f"LLM agent: implementing failed: {type(e).__name__}: {e}")
            return None

    def _one_impl(self, candidate, plan, msgs, j, sample) -> Optional[list[dict]]:
        phase = "implement"
        last_failed: Optional[list[dict]] = None

        def usable(t):
            try:
                parse_steps(t, plan.option, self.limits, self.allow_unsafe)
                return True
            except AnswerError:
                return False

        for attempt in range(self.retries + 1):
            reply, _mi = self._ask(j, msgs, phase, sample, self.temperature, self.code_pool, usable)
            if reply is None:
                return last_failed if self.return_failed else None
            rec = {"phase": phase, "model": reply.model, "parent": candidate.id, "option": plan.option,
                   "sample": sample, "attempt": attempt, "cached": reply.cached}
            steps = None
            notes: list = []
            try:
                steps = parse_steps(reply.text, plan.option, self.limits, self.allow_unsafe, notes=notes)
                stage = self.check
                err = self._check_steps(candidate, steps)
            except AnswerError as e:
                stage, err = "parse", str(e)
            if notes:
                rec["repairs"] = notes[:20]
            if err is None:
                self._log({**rec, "ok": True, "steps": steps})
                return steps
            self._log({**rec, "ok": False, "stage": stage, "reason": err, "answer": _excerpt(reply.text),
                       **({"steps": steps} if steps else {})})
            if steps and stage != "parse":
                last_failed = steps
            msgs = prompts.fix_messages(msgs, reply.text, err, kind="implement")
            phase = "fix"
        return last_failed if self.return_failed else None

    def _check_steps(self, candidate: Candidate, steps: list[dict]) -> Optional[str]:
        """None if the steps pass the configured check, else the reason
        (`llm_check.check_draft`, the same either way): here under the Exo
        lock, in the request's thread (so it overlaps with the other
        requests); with ``check_in_pool``, in the search's worker pool when
        the request came through a session that has one and a worker is idle
        (a check queued behind evaluations would hold up the fix it leads to)."""
        if self.check == "schema":
            return None
        run_task = getattr(self._batch, "run_task", None) if self.check_in_pool else None
        if run_task is not None and getattr(run_task, "free", lambda: True)():
            try:
                r = run_task("check", candidate.schedule, steps=steps, mode=self.check,
                             agent_config=None if self.config is None else self.config.to_dict()).result()
                if (r.get("measurement") or {}).get("ok"):
                    return r.get("error")
            except Exception:  # noqa: BLE001 - checked here instead
                pass
        with self._exo_lock:
            return self._check_locked(candidate, steps)

    def _check_locked(self, candidate: Candidate, steps: list[dict]) -> Optional[str]:
        from .llm_check import check_draft

        base = self._base(candidate)
        parent_proc = None if base is None else self._applied(candidate)
        if parent_proc is None:
            if not self._told_no_exo:
                self._told_no_exo = True
                self.warn("LLM agent: the parent's proc cannot be rebuilt here (pass base_proc=...); "
                          "answers are only checked against the whitelist")
            return None
        return check_draft(base, candidate.schedule, steps, mode=self.check, config=self._config_of(candidate),
                           eval_config=self.config, workload=candidate.workload, parent_text=candidate.proc_text,
                           parent_facts=self._facts(candidate), parent_proc=parent_proc)


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
    g.add_argument("--llm-plan", action="append", metavar="MODEL", default=None,
                   help="a model that only plans (repeatable; dealt round robin with the --llm models)")
    g.add_argument("--llm-code", action="append", metavar="MODEL", default=None,
                   help="a model that only writes the steps (repeatable; dealt round robin with the --llm models)")
    g.add_argument("--llm-cache", metavar="DIR", default=None,
                   help=f"response cache (default {default_cache_dir()}); a rerun with the same seed replays it")
    g.add_argument("--llm-no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--llm-price", action="append", metavar="MODEL=IN,OUT", default=None,
                   help="USD per million input and output tokens, for the cost estimate (repeatable)")
    g.add_argument("--llm-temperature", type=float, default=0.7)
    g.add_argument("--llm-max-tokens", type=int, default=2048)
    g.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per request")
    g.add_argument("--llm-attempts", type=int, default=None,
                   help="attempts per request on 429/5xx/timeouts (default: retry until the outage limit)")
    g.add_argument("--llm-max-in-flight", type=int, default=8, metavar="N",
                   help="requests in flight per model (default 8)")
    g.add_argument("--llm-tpm", type=int, default=None, metavar="TOKENS",
                   help="tokens per minute per model (prompt estimate + completion limit; default: no limit)")
    g.add_argument("--llm-max-calls", type=int, default=None, metavar="N",
                   help="stop sending requests after N (the search goes on with what it has)")
    g.add_argument("--llm-max-cost", type=float, default=None, metavar="USD",
                   help="stop sending requests once the estimated cost reaches USD (needs --llm-price)")
    g.add_argument("--llm-backoff-max", type=float, default=120.0, metavar="S",
                   help="longest backoff between retries (jittered, doubling from 1 s)")
    g.add_argument("--llm-outage", type=float, default=600.0, metavar="S",
                   help="a model failing for S seconds in a row is suspended (default 600)")
    g.add_argument("--llm-cooldown", type=float, default=300.0, metavar="S",
                   help="seconds a suspended model rests before it is asked again (default 300)")
    g.add_argument("--llm-reasoning-tokens", type=int, default=16384, metavar="N",
                   help="max_completion_tokens for reasoning models (o1/o3/o4/gpt-5; doubled on a cut answer)")
    g.add_argument("--llm-retries", type=int, default=1,
                   help="times a failed answer is sent back with its error (default 1)")
    g.add_argument("--llm-check", choices=("schema", "exo", "evaluate"), default="exo",
                   help="what an answer must pass before it is a candidate (default: apply it with Exo)")
    g.add_argument("--llm-allow-unsafe", action="store_true", help="accept steps that skip Exo's checks")


def agent_from_args(args, run_dir: Optional[str] = None, iterations: Optional[int] = None) -> Optional[LLMAgent]:
    """An LLMAgent from the CLI options, or None when no --llm was given."""
    models = getattr(args, "llm", None) or []
    plan_models = getattr(args, "llm_plan", None) or []
    code_models = getattr(args, "llm_code", None) or []
    if not (models or plan_models or code_models):
        return None
    prices = Prices()
    for t in getattr(args, "llm_price", None) or []:
        prices.set(*parse_price(t))
    cache = None if args.llm_no_cache else (args.llm_cache or default_cache_dir())
    if (plan_models and not (models or code_models)) or (code_models and not (models or plan_models)):
        raise LLMConfigError("--llm-plan needs a model that writes code (--llm-code or --llm) and --llm-code "
                             "one that plans (--llm-plan or --llm)")
    g = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    return LLMAgent(models, plan_models=plan_models or None, code_models=code_models or None, cache_dir=cache,
                    log_dir=run_dir, prices=prices, retries=args.llm_retries,
                    check=args.llm_check, allow_unsafe=args.llm_allow_unsafe, temperature=args.llm_temperature,
                    max_tokens=args.llm_max_tokens, timeout=args.llm_timeout, attempts=args.llm_attempts,
                    max_in_flight=g("llm_max_in_flight", 8), tokens_per_minute=g("llm_tpm"),
                    max_calls=g("llm_max_calls"), max_cost=g("llm_max_cost"),
                    backoff_max=g("llm_backoff_max", 120.0), outage=g("llm_outage", 600.0),
                    cooldown=g("llm_cooldown", 300.0), reasoning_tokens=g("llm_reasoning_tokens", 16384),
                    iterations=iterations if iterations is not None else getattr(args, "iterations", None))
