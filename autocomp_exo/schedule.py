"""Schedules as data: ordered, whitelisted Exo scheduling steps.

A :class:`Step` is ``{"op": name, "args": [...], "kwargs": {...}, "menu": label}``
with JSON values only.  A :class:`Schedule` is an immutable, ordered tuple of
steps that round-trips through JSON and compares/hashes by its canonical JSON.

Exo objects are *named* by tagged values resolved from fixed whitelists, and
cursors are *patterns* (EXO.md items 2-4):

- memories      ``{"mem": "GEMM_SCRATCH"}``  (DRAM, GEMM_SCRATCH, GEMM_ACCUM)
- instructions  ``{"instr": "ld_i8_block_id1"}``  (procs of exo.platforms.gemmini)
- configs       ``{"config": "ConfigLoad"}``  (configs of exo.platforms.gemmini)
- statements / loops / allocations / calls: Exo pattern strings, e.g. ``"i"``,
  ``"i #1"`` (the second match, 0-based), ``"for i in _: _"``, ``"res : _"``,
  ``"a[_] = _"``, ``"config_zero()"``; or tagged cursors:
  ``{"stmt": pat}``, ``{"loop": "i #1"}``, ``{"parent": cur}``,
  ``{"body": cur}``, ``{"next": cur}``, ``{"prev": cur}``,
  ``{"block": cur, "expand": [n_before, n_after]}``
- gaps          ``{"gap": "after", "stmt": cur}`` / ``{"gap": "before", ...}``
- new expressions (loop bounds, indices, conditions, windows) are Exo
  expression text, parsed by Exo's own front end (never ``eval``-ed).

Applying never evaluates text as Python.  Every failure (unknown op, bad
argument, Exo's SchedulingError / TypeError / ValueError / UnificationError /
InvalidCursorError / AssertionError / ...) raises :class:`ScheduleError`
naming the step index, the op and the message.

``Schedule.apply(proc)`` replays deterministically and reuses a bounded LRU
prefix cache: the result of the longest already-applied prefix of the same
base proc (key: the base proc's identity and name + a chained digest of the
canonical JSON of the steps; never C text or ``str(proc)``).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = [
    "ScheduleError",
    "Step",
    "Schedule",
    "OpSpec",
    "OPS",
    "WHITELIST",
    "MEMORIES",
    "INSTRUCTIONS",
    "CONFIGS",
    "PrefixCache",
    "DEFAULT_CACHE",
    "apply",
    "describe_ops",
]

# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


class ScheduleError(Exception):
    """A schedule step that cannot be validated or applied.

    ``index`` is the 0-based step index (None when not known), ``op`` the op
    name, ``message`` the reason (Exo's own message for Exo failures) and
    ``kind`` the original exception type name.
    """

    def __init__(self, index: int | None, op: str | None, message: str, kind: str = ""):
        self.index = index
        self.op = op
        self.message = str(message)
        self.kind = kind
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"step {self.index}" if self.index is not None else "step"
        op = f" ({self.op})" if self.op else ""
        kind = f" [{self.kind}]" if self.kind else ""
        return f"{where}{op}{kind}: {self.message}"

    def __reduce__(self):
        return (ScheduleError, (self.index, self.op, self.message, self.kind))


# --------------------------------------------------------------------------- #
# Whitelists of Exo objects
# --------------------------------------------------------------------------- #

MEMORIES = ("DRAM", "GEMM_SCRATCH", "GEMM_ACCUM")

# The instruction procs (and their _v2 / do_ / config_ forms) defined by
# exo.platforms.gemmini.  Fixed here so that schedules can be validated and
# prompts written without importing the platform (which takes seconds).
INSTRUCTIONS = (
    "acc_scale",
    "config_ld_acc_i32_vector",
    "config_ld_i8",
    "config_ld_i8_id1",
    "config_ld_i8_id2",
    "config_ld_i8_s2_id1",
    "config_matmul",
    "config_st_acc_i8",
    "config_zero",
    "do_ld_acc_i32",
    "do_ld_acc_i32_vector",
    "do_ld_i8",
    "do_ld_i8_block_id1",
    "do_ld_i8_block_id2",
    "do_ld_i8_id1",
    "do_ld_i8_id2",
    "do_ld_i8_s2_id1",
    "do_ld_i8_vector",
    "do_matmul_acc_i8",
    "do_matmul_i8",
    "do_st_acc_i8",
    "do_zero_acc_i32",
    "do_zero_i8",
    "do_zero_i8_vector",
    "ld_acc_i32",
    "ld_acc_i32_vector",
    "ld_acc_i32_vector_v2",
    "ld_acc_i8",
    "ld_i8",
    "ld_i8_block",
    "ld_i8_block_id1",
    "ld_i8_block_id1_s2_v2",
    "ld_i8_block_id1_v2",
    "ld_i8_block_id2",
    "ld_i8_block_id2_s2_v2",
    "ld_i8_block_id2_v2",
    "ld_i8_id1",
    "ld_i8_id1_s2_v2",
    "ld_i8_id1_v2",
    "ld_i8_id2",
    "ld_i8_id2_s2_v2",
    "ld_i8_id2_v2",
    "ld_i8_s2",
    "ld_i8_v2",
    "ld_i8_vector",
    "matmul_acc_i8",
    "matmul_acc_i8_v2",
    "matmul_i8",
    "matmul_i8_v2",
    "st_acc_i32",
    "st_acc_i8",
    "st_acc_i8_clamp",       # (autocomp_exo.gemmini_ext: clamp without a scale)
    "st_acc_i8_clamp_relu",  # (autocomp_exo.gemmini_ext)
    "st_acc_i8_clamp_act",   # (autocomp_exo.gemmini_ext: ReLU when the run-time act is true)
    "st_acc_i8_s2_v2",
    "st_acc_i8_v2",
    "st_i8",
    "zero_acc_i32",
    "zero_acc_i32_v2",
    "zero_block_id2",
    "zero_i8",
    "zero_i8_v2",
    "zero_i8_vector",
    "zero_i8_vector_v2",
)

CONFIGS = (
    "ConfigLoad",
    "ConfigLoadAcc",
    "ConfigLoad_id1",
    "ConfigLoad_id2",
    "ConfigMatmul",
    "ConfigStore",
)

TYPES = ("R", "f16", "f32", "f64", "i8", "ui8", "ui16", "i32")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CURSOR_TAGS = ("stmt", "loop", "parent", "body", "next", "prev", "block")


def _gemmini():
    import exo.platforms.gemmini as g  # slow the first time (~2-4 s)

    return g


def _resolve_mem(name: str):
    if name == "DRAM":
        from exo import DRAM

        return DRAM
    from exo.libs.memories import GEMM_ACCUM, GEMM_SCRATCH

    return {"GEMM_SCRATCH": GEMM_SCRATCH, "GEMM_ACCUM": GEMM_ACCUM}[name]


def _resolve_instr(name: str):
    from exo.API import Procedure

    obj = getattr(_gemmini(), name, None)
    if obj is None:
        from .gemmini_ext import EXTRA_INSTRUCTIONS

        obj = EXTRA_INSTRUCTIONS.get(name)
    if not isinstance(obj, Procedure):  # pragma: no cover - whitelist is fixed
        raise ValueError(f"{name} is not a proc of exo.platforms.gemmini or autocomp_exo.gemmini_ext")
    return obj


def _resolve_config(name: str):
    from exo.core.configs import Config

    obj = getattr(_gemmini(), name, None)
    if not isinstance(obj, Config):  # pragma: no cover
        raise ValueError(f"{name} is not a config of exo.platforms.gemmini")
    return obj


# --------------------------------------------------------------------------- #
# Argument kinds: static validation (JSON shape, whitelists) and resolution
# --------------------------------------------------------------------------- #


class _ArgError(Exception):
    pass


def _is_json(v) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    if isinstance(v, list):
        return all(_is_json(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json(x) for k, x in v.items())
    return False


def _check_cursor(v, what="cursor"):
    """A statement/loop cursor: a pattern string or a tagged cursor dict."""
    if isinstance(v, str):
        if not v.strip():
            raise _ArgError(f"empty {what} pattern")
        return
    if isinstance(v, dict):
        tags = [t for t in _CURSOR_TAGS if t in v]
        if len(tags) != 1:
            raise _ArgError(
                f"a tagged {what} needs exactly one of {list(_CURSOR_TAGS)}, got {sorted(v)}"
            )
        tag = tags[0]
        extra = set(v) - {tag} - ({"expand"} if tag == "block" else set())
        if extra:
            raise _ArgError(f"unexpected keys {sorted(extra)} in tagged {what} {v!r}")
        if tag == "loop":
            if not isinstance(v["loop"], str) or not v["loop"].strip():
                raise _ArgError(f"'loop' needs a loop pattern string, got {v['loop']!r}")
            return
        if tag == "stmt":
            if not isinstance(v["stmt"], str) or not v["stmt"].strip():
                raise _ArgError(f"'stmt' needs a pattern string, got {v['stmt']!r}")
            return
        _check_cursor(v[tag], what)
        if tag == "block" and "expand" in v:
            e = v["expand"]
            if not (
                isinstance(e, list)
                and len(e) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in e)
            ):
                raise _ArgError(f"'expand' must be [n_before, n_after] (ints >= 0), got {e!r}")
        return
    raise _ArgError(f"expected a {what} pattern string or tagged cursor, got {v!r}")


def _resolve_cursor_tag(p, v):
    """Resolve a cursor value to an Exo cursor (strings via p.find)."""
    if isinstance(v, str):
        return p.find(v)
    if "stmt" in v:
        return p.find(v["stmt"])
    if "loop" in v:
        return p.find_loop(v["loop"])
    if "parent" in v:
        c = _resolve_cursor_tag(p, v["parent"]).parent()
        if not c:
            raise _ArgError(f"{v['parent']!r} has no enclosing statement")
        return c
    if "body" in v:
        c = _resolve_cursor_tag(p, v["body"])
        if not hasattr(c, "body"):
            raise _ArgError(f"{v['body']!r} is not a loop or if")
        return c.body()
    if "next" in v or "prev" in v:
        tag = "next" if "next" in v else "prev"
        c = _resolve_cursor_tag(p, v[tag])
        c = c.next() if tag == "next" else c.prev()
        if not c:
            raise _ArgError(f"no statement {tag} to {v[tag]!r}")
        return c
    if "block" in v:
        c = _resolve_cursor_tag(p, v["block"])
        if hasattr(c, "as_block"):
            c = c.as_block()
        if "expand" in v:
            b, a = v["expand"]
            c = c.expand(b, a)
        return c
    raise _ArgError(f"bad cursor {v!r}")  # pragma: no cover (validated)


def _res_cursor(p, v):
    # plain strings go to Exo, whose argument processors handle the
    # per-kind shorthands ("i", "i j", "res", "f(_)", ...)
    return v if isinstance(v, str) else _resolve_cursor_tag(p, v)


def _check_gap(v):
    if not isinstance(v, dict) or "gap" not in v:
        raise _ArgError(
            f'expected a gap {{"gap": "after"|"before", "stmt": <pattern>}}, got {v!r}'
        )
    if v["gap"] not in ("after", "before"):
        raise _ArgError(f'gap must be "after" or "before", got {v["gap"]!r}')
    if set(v) != {"gap", "stmt"}:
        raise _ArgError(f'a gap has exactly the keys "gap" and "stmt", got {sorted(v)}')
    _check_cursor(v["stmt"], "statement")


def _res_gap(p, v):
    c = _resolve_cursor_tag(p, v["stmt"])
    if not hasattr(c, "after"):
        raise _ArgError(f"{v['stmt']!r} does not name a statement")
    return c.after() if v["gap"] == "after" else c.before()


def _check_tag(v, tag, names):
    if not (isinstance(v, dict) and set(v) == {tag} and isinstance(v[tag], str)):
        raise _ArgError(f'expected {{"{tag}": <name>}}, got {v!r}')
    if v[tag] not in names:
        raise _ArgError(
            f"{tag} {v[tag]!r} is not whitelisted; allowed: {', '.join(names)}"
        )


def _check_int(v, lo=None):
    if not isinstance(v, int) or isinstance(v, bool):
        raise _ArgError(f"expected an integer, got {v!r}")
    if lo is not None and v < lo:
        raise _ArgError(f"expected an integer >= {lo}, got {v!r}")


def _check_name(v):
    if not isinstance(v, str) or not _IDENT.match(v):
        raise _ArgError(f"expected an identifier, got {v!r}")


def _check_expr(v):
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise _ArgError(f"expected an Exo expression (string or int), got {v!r}")
    if isinstance(v, str) and not v.strip():
        raise _ArgError("empty expression")


def _check_bool(v):
    if not isinstance(v, bool):
        raise _ArgError(f"expected true/false, got {v!r}")


@dataclass(frozen=True)
class Kind:
    name: str
    doc: str
    check: Callable[[Any], None]
    resolve: Callable[[Any, Any], Any] = lambda p, v: v


def _enum(*vals):
    def check(v):
        if v not in vals:
            raise _ArgError(f"expected one of {list(vals)}, got {v!r}")

    return check


def _list_of(check_elem, n=None, allow_single=False):
    def check(v):
        if allow_single and not isinstance(v, list):
            check_elem(v)
            return
        if not isinstance(v, list) or (n is not None and len(v) != n):
            raise _ArgError(
                f"expected a list{'' if n is None else f' of {n}'} , got {v!r}"
            )
        for x in v:
            check_elem(x)

    return check


def _check_opt_pos_int(v):
    if v is not None:
        _check_int(v, 1)


def _check_str(v):
    if not isinstance(v, str) or not v.strip():
        raise _ArgError(f"expected a non-empty string, got {v!r}")


from .moves import MOVES as _MOVE_SPECS, ROLES as _MOVE_ROLES, implementation as _move_impl  # noqa: E402

KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("loop", 'loop: "i", "i #1", "for i in _: _" or a tagged cursor', _check_cursor, _res_cursor),
        Kind("nested_loops", 'two nested loops: "outer inner" (optionally "outer inner #n") or the outer loop', _check_cursor, _res_cursor),
        Kind("stmt", 'statement pattern, e.g. "a[_] = _", "config_zero()", or a tagged cursor', _check_cursor, _resolve_cursor_tag),
        Kind("block", 'statement/block pattern or {"block": <cursor>, "expand": [before, after]}', _check_cursor, _res_cursor),
        Kind("for_or_if", 'loop/if: "i", "i #1", "for i in _: _", "if _: _" or a tagged cursor', _check_cursor, _res_cursor),
        Kind("alloc", 'allocation: "res", "res #1", "res : _" or a tagged cursor', _check_cursor, _res_cursor),
        Kind("arg_or_alloc", 'allocation or parameter name: "res", "res #1", "A"', _check_str),
        Kind("call", 'call pattern: "f(_)", "f(_) #1" or a tagged cursor', _check_cursor, _res_cursor),
        Kind("window_stmt", 'window statement pattern, e.g. "dst = res[_]"', _check_cursor, _res_cursor),
        Kind("gap", '{"gap": "after"|"before", "stmt": <statement pattern or tagged cursor>}', _check_gap, _res_gap),
        Kind("expr_cursor", 'expression pattern, e.g. "A[_]" or "scale"', _check_str),
        Kind("expr_cursors", "expression pattern or list of patterns", _list_of(_check_str, allow_single=True)),
        Kind("new_expr", 'Exo expression text (parsed by Exo), e.g. "16", "n - 1", "i == 0"', _check_expr),
        Kind("new_exprs", "Exo expression text or a list of them", _list_of(_check_expr, allow_single=True)),
        Kind("window", 'window text, e.g. "A[16*i:16*i+16, 0:64]"', _check_str),
        Kind("name", "identifier", _check_name),
        Kind("names2", '[outer_name, inner_name]', _list_of(_check_name, n=2)),
        Kind("int", "integer", _check_int),
        Kind("nat", "integer >= 0", lambda v: _check_int(v, 0)),
        Kind("pos_int", "integer >= 1", lambda v: _check_int(v, 1)),
        Kind("opt_pos_int", "integer >= 1 or null", _check_opt_pos_int),
        Kind("int_list", "list of integers", _list_of(_check_int)),
        Kind("bool", "true or false", _check_bool),
        Kind("tail", '"guard", "cut" or "cut_and_guard"', _enum("guard", "cut", "cut_and_guard")),
        Kind("mode", '"row" or "col"', _enum("row", "col")),
        Kind("type", f"one of {list(TYPES)}", _enum(*TYPES)),
        Kind("mem", f'{{"mem": one of {list(MEMORIES)}}}', lambda v: _check_tag(v, "mem", MEMORIES), lambda p, v: _resolve_mem(v["mem"])),
        Kind("instr", '{"instr": <name of an exo.platforms.gemmini proc>}', lambda v: _check_tag(v, "instr", INSTRUCTIONS), lambda p, v: _resolve_instr(v["instr"])),
        Kind("config", f'{{"config": one of {list(CONFIGS)}}}', lambda v: _check_tag(v, "config", CONFIGS), lambda p, v: _resolve_config(v["config"])),
        Kind("field", "config field name", _check_name),
        Kind("opt_name", "identifier or null", lambda v: v is None or _check_name(v)),
        Kind("names", "list of identifiers", _list_of(_check_name)),
        Kind("role", f"instruction role: one of {list(_MOVE_ROLES)}", _enum(*_MOVE_ROLES)),
    ]
}

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class OpSpec:
    """One whitelisted scheduling op: its parameters (Exo's names), a one-line
    doc and a JSON example step.  ``unsafe`` lists keyword flags that skip
    Exo's checks (only the simulator's functional check protects them)."""

    name: str
    params: tuple
    doc: str
    example: dict
    unsafe: tuple = ()
    fixed_kwargs: tuple = ()  # (name, value) always passed to Exo

    def signature(self) -> str:
        ps = []
        for p in self.params:
            ps.append(p.name if p.required else f"{p.name}={json.dumps(p.default)}")
        return f"{self.name}({', '.join(ps)})"


def P(name, kind, default=_REQUIRED):
    return Param(name, kind, default)


# fmt: off
_SPECS = [
    OpSpec("divide_loop", (P("loop_cursor", "loop"), P("div_const", "pos_int"), P("new_iters", "names2"), P("tail", "tail", "guard"), P("perfect", "bool", False)),
           "Split a loop into outer/inner loops, the inner of extent div_const (perfect=true when it divides exactly).",
           {"op": "divide_loop", "args": ["i", 16, ["io", "ii"]], "kwargs": {"perfect": True}}),
    OpSpec("reorder_loops", (P("nested_loops", "nested_loops"),),
           "Swap two directly nested loops ('outer inner').",
           {"op": "reorder_loops", "args": ["ii j"]}),
    OpSpec("fission", (P("gap_cursor", "gap"), P("n_lifts", "pos_int", 1), P("unsafe_disable_checks", "bool", False)),
           "Split the loops/ifs around a gap into two copies, n_lifts levels up.",
           {"op": "fission", "args": [{"gap": "after", "stmt": "res[_] = 0.0"}], "kwargs": {"n_lifts": 2}},
           unsafe=("unsafe_disable_checks",)),
    OpSpec("autofission", (P("gap_cursor", "gap"), P("n_lifts", "pos_int", 1)),
           "Fission at a gap n_lifts levels up, removing loops that become trivial.",
           {"op": "autofission", "args": [{"gap": "after", "stmt": "for k in _: _"}, 3]}),
    OpSpec("fuse", (P("stmt1", "for_or_if"), P("stmt2", "for_or_if"), P("unsafe_disable_check", "bool", False)),
           "Fuse two adjacent loops with the same bounds (or two ifs with the same condition).",
           {"op": "fuse", "args": ["for j in _: _ #0", "for j in _: _ #1"]},
           unsafe=("unsafe_disable_check",)),
    OpSpec("unroll_loop", (P("loop_cursor", "loop"),),
           "Fully unroll a loop with a constant bound.",
           {"op": "unroll_loop", "args": ["j_in_o"]}),
    OpSpec("cut_loop", (P("loop_cursor", "loop"), P("cut_point", "new_expr")),
           "Cut a loop's iteration range in two at cut_point.",
           {"op": "cut_loop", "args": ["i", 1]}),
    OpSpec("shift_loop", (P("loop_cursor", "loop"), P("new_lo", "new_expr")),
           "Shift a loop's range so it starts at new_lo.",
           {"op": "shift_loop", "args": ["i", 0]}),
    OpSpec("join_loops", (P("loop1_cursor", "loop"), P("loop2_cursor", "loop")),
           "Join two consecutive loops with identical bodies and adjacent ranges.",
           {"op": "join_loops", "args": ["i #0", "i #1"]}),
    OpSpec("mult_loops", (P("nested_loops", "nested_loops"), P("new_iter_name", "name")),
           "Merge two nested loops (inner bound constant) into one.",
           {"op": "mult_loops", "args": ["io ii", "i"]}),
    OpSpec("add_loop", (P("block_cursor", "block"), P("iter_name", "name"), P("hi_expr", "new_expr"), P("guard", "bool", False), P("unsafe_disable_check", "bool", False)),
           "Wrap a statement in a new loop (guard=true wraps it in 'if iter == 0').",
           {"op": "add_loop", "args": ["config_zero()", "x", 2], "kwargs": {"guard": True}},
           unsafe=("unsafe_disable_check",)),
    OpSpec("remove_loop", (P("loop_cursor", "loop"), P("unsafe_disable_check", "bool", False)),
           "Remove a loop around an idempotent body.",
           {"op": "remove_loop", "args": [{"parent": "config_zero()"}]},
           unsafe=("unsafe_disable_check",)),
    OpSpec("lift_scope", (P("scope_cursor", "for_or_if"),),
           "Move a loop or if up one scope (swap with its parent).",
           {"op": "lift_scope", "args": ["if _: _"]}),
    OpSpec("specialize", (P("block", "block"), P("conds", "new_exprs")),
           "Duplicate a block under if/elif conditions (plus a default copy).",
           {"op": "specialize", "args": ["for k in _: _", ["i == 0"]]}),
    OpSpec("eliminate_dead_code", (P("stmt_cursor", "for_or_if"),),
           "Remove an if branch or loop that can never run.",
           {"op": "eliminate_dead_code", "args": ["if _: _ #0"]}),
    OpSpec("lift_alloc", (P("alloc_cursor", "alloc"), P("n_lifts", "pos_int", 1)),
           "Hoist an allocation out of n_lifts enclosing loops/ifs (same size).",
           {"op": "lift_alloc", "args": ["a", 2]}),
    OpSpec("autolift_alloc", (P("alloc_cursor", "alloc"), P("n_lifts", "pos_int", 1), P("mode", "mode", "row"), P("size", "opt_pos_int", None), P("keep_dims", "bool", False)),
           "Hoist an allocation out of loops, adding a dimension per loop left (row: outer, col: inner).",
           {"op": "autolift_alloc", "args": ["res : _", 2], "kwargs": {"keep_dims": True}}),
    OpSpec("sink_alloc", (P("alloc_cursor", "alloc"),),
           "Move an allocation into the loop/if right after it.",
           {"op": "sink_alloc", "args": ["b"]}),
    OpSpec("stage_mem", (P("block_cursor", "block"), P("win_expr", "window"), P("new_buf_name", "name"), P("accum", "bool", False)),
           "Stage a window of a buffer into a new buffer around a block (copy in/out).",
           {"op": "stage_mem", "args": ["for k in _: _", "A[16*i:16*i+16, 0:64]", "a_s"]}),
    OpSpec("expand_dim", (P("buf_cursor", "alloc"), P("alloc_dim", "new_expr"), P("indexing_expr", "new_expr")),
           "Add a leading dimension of size alloc_dim to a buffer, indexed by indexing_expr.",
           {"op": "expand_dim", "args": ["a", 2, "ko % 2"]}),
    OpSpec("divide_dim", (P("alloc_cursor", "alloc"), P("dim_idx", "nat"), P("quotient", "pos_int")),
           "Split a buffer dimension into two (lower one of size quotient).",
           {"op": "divide_dim", "args": ["a", 0, 16]}),
    OpSpec("resize_dim", (P("buf_cursor", "alloc"), P("dim_idx", "nat"), P("size", "new_expr"), P("offset", "new_expr"), P("fold", "bool", False)),
           "Shrink a buffer dimension to size, shifting indices by offset.",
           {"op": "resize_dim", "args": ["a", 0, 1, "ko"]}),
    OpSpec("rearrange_dim", (P("buf_cursor", "alloc"), P("permute_vector", "int_list")),
           "Permute the dimensions of a buffer.",
           {"op": "rearrange_dim", "args": ["b", [1, 0, 2, 3]]}),
    OpSpec("mult_dim", (P("alloc_cursor", "alloc"), P("hi_dim_idx", "nat"), P("lo_dim_idx", "nat")),
           "Merge two buffer dimensions (the lower one constant).",
           {"op": "mult_dim", "args": ["a", 0, 1]}),
    OpSpec("unroll_buffer", (P("alloc_cursor", "alloc"), P("dimension", "nat")),
           "Split a buffer with a constant dimension into one buffer per index.",
           {"op": "unroll_buffer", "args": ["a", 0]}),
    OpSpec("delete_buffer", (P("buf_cursor", "alloc"),),
           "Delete an unused buffer.",
           {"op": "delete_buffer", "args": ["tmp"]}),
    OpSpec("reuse_buffer", (P("buf_cursor", "alloc"), P("replace_cursor", "alloc")),
           "Use buffer buf (dead at that point) instead of allocating replace.",
           {"op": "reuse_buffer", "args": ["a #0", "a #1"]}),
    OpSpec("set_memory", (P("cursor", "arg_or_alloc"), P("memory_type", "mem")),
           "Place a buffer in a memory (DRAM, GEMM_SCRATCH, GEMM_ACCUM).",
           {"op": "set_memory", "args": ["a", {"mem": "GEMM_SCRATCH"}]}),
    OpSpec("set_precision", (P("cursor", "arg_or_alloc"), P("typ", "type")),
           "Change a buffer's element type.",
           {"op": "set_precision", "args": ["res", "i32"]}),
    OpSpec("replace", (P("block_cursor", "block"), P("subproc", "instr")),
           "Replace a block (e.g. a loop nest) by a call to an equivalent Gemmini instruction proc.",
           {"op": "replace", "args": ["for i_in in _: _ #0", {"instr": "ld_i8_block_id1"}]},
           fixed_kwargs=(("quiet", True),)),
    OpSpec("call_eqv", (P("call_cursor", "call"), P("eqv_proc", "instr")),
           "Swap a call for an equivalent proc (e.g. ld_i8_block_id1 -> ld_i8_block_id1_v2).",
           {"op": "call_eqv", "args": ["ld_i8_block_id1(_)", {"instr": "ld_i8_block_id1_v2"}]}),
    OpSpec("inline", (P("call_cursor", "call"),),
           "Inline a call (e.g. a _v2 instruction into its config + do_ halves).",
           {"op": "inline", "args": ["ld_i8_block_id1_v2(_)"]}),
    OpSpec("inline_window", (P("winstmt_cursor", "window_stmt"),),
           "Inline a window statement (name = buf[...]) into its uses.",
           {"op": "inline_window", "args": ["src = A[_]"]}),
    OpSpec("inline_assign", (P("alloc_cursor", "stmt"),),
           "Inline an assignment into the statements that use it.",
           {"op": "inline_assign", "args": ["x = _"]}),
    OpSpec("lift_config", (P("stmt_cursor", "stmt"), P("n_lifts", "opt_pos_int", None)),
           "Hoist a config statement up to the top of the proc (or n_lifts scopes): checked reorder_stmts steps, and fission (configs only) + remove_loop to leave each loop.",
           {"op": "lift_config", "args": ["config_matmul()"]}),
    OpSpec("delete_config", (P("stmt_cursor", "stmt"),),
           "Delete a config write that is redundant.",
           {"op": "delete_config", "args": ["config_matmul() #1"]}),
    OpSpec("write_config", (P("gap_cursor", "gap"), P("config", "config"), P("field", "field"), P("rhs", "new_expr")),
           "Insert config.field = rhs at a gap.",
           {"op": "write_config", "args": [{"gap": "before", "stmt": "for i in _: _"}, {"config": "ConfigLoad"}, "src_stride", 0]}),
    OpSpec("bind_config", (P("var_cursor", "expr_cursor"), P("config", "config"), P("field", "field")),
           "Bind a control expression into a config field written just before its statement.",
           {"op": "bind_config", "args": ["scale", {"config": "ConfigStore"}, "scale"]}),
    OpSpec("reorder_stmts", (P("block_cursor", "block"),),
           "Swap two adjacent statements (a block of 2).",
           {"op": "reorder_stmts", "args": [{"block": "config_matmul()", "expand": [1, 0]}]}),
    OpSpec("insert_pass", (P("gap_cursor", "gap"),),
           "Insert a pass statement at a gap.",
           {"op": "insert_pass", "args": [{"gap": "before", "stmt": "for i in _: _"}]}),
    OpSpec("delete_pass", (),
           "Delete all pass statements.",
           {"op": "delete_pass", "args": []}),
    OpSpec("simplify", (),
           "Simplify index arithmetic and remove dead branches.",
           {"op": "simplify", "args": []}),
    OpSpec("rename", (P("name", "name"),),
           "Rename the proc (affects the C function name only).",
           {"op": "rename", "args": ["gemm_opt"]}),
    OpSpec("bind_expr", (P("expr_cursors", "expr_cursors"), P("new_name", "name")),
           "Bind a numeric expression into a new scalar buffer.",
           {"op": "bind_expr", "args": ["A[_]", "a_val"]}),
    OpSpec("commute_expr", (P("expr_cursors", "expr_cursors"),),
           "Commute a numeric + or * expression.",
           {"op": "commute_expr", "args": ["a2 * b2"]}),
    OpSpec("rewrite_expr", (P("expr_cursor", "expr_cursor"), P("new_expr", "new_expr")),
           "Replace an expression by an equivalent one (checked).",
           {"op": "rewrite_expr", "args": ["16 * i + 0", "16 * i"]}),
    OpSpec("add_unsafe_guard", (P("block_cursor", "block"), P("var_expr", "new_expr")),
           "DEPRECATED, unchecked: guard a statement with 'if var_expr == 0'.",
           {"op": "add_unsafe_guard", "args": ["do_ld_i8_block_id2(_)", "i"]},
           unsafe=("*",)),
]
# fmt: on

# the moves of `autocomp_exo.moves` are ops too (macro steps that keep their decisions)
_SPECS += [OpSpec(m.name, tuple(P(n, k) if d is ... else P(n, k, d) for n, k, d in m.params), m.doc, m.example)
           for m in _MOVE_SPECS.values()]

OPS: dict[str, OpSpec] = {s.name: s for s in _SPECS}
WHITELIST = tuple(OPS)


def describe_ops(ops: Iterable[str] | None = None) -> str:
    """A prompt-ready description of the whitelisted ops and argument encodings."""
    lines = []
    for name in ops or WHITELIST:
        s = OPS[name]
        unsafe = f"  (unsafe flags: {', '.join(s.unsafe)})" if s.unsafe else ""
        lines.append(f"- {s.signature()}: {s.doc}{unsafe}")
        lines.append(f"    e.g. {json.dumps(s.example)}")
    kinds = sorted({p.kind for n in (ops or WHITELIST) for p in OPS[n].params})
    lines.append("Argument kinds:")
    for k in kinds:
        lines.append(f"  {k}: {KINDS[k].doc}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Steps and schedules
# --------------------------------------------------------------------------- #


def _canon_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _bind(spec: OpSpec, args: list, kwargs: dict) -> dict:
    """Bind positional + keyword args to the op's parameters and validate each."""
    params = spec.params
    if len(args) > len(params):
        raise _ArgError(
            f"takes at most {len(params)} positional argument(s) {spec.signature()}, got {len(args)}"
        )
    bound = {}
    for p, v in zip(params, args):
        bound[p.name] = v
    names = {p.name for p in params}
    for k, v in kwargs.items():
        if k not in names:
            raise _ArgError(f"unknown keyword argument {k!r}; signature {spec.signature()}")
        if k in bound:
            raise _ArgError(f"argument {k!r} given twice")
        bound[k] = v
    for p in params:
        if p.name not in bound:
            if p.required:
                raise _ArgError(f"missing argument {p.name!r}; signature {spec.signature()}")
            continue
        v = bound[p.name]
        if v is None and not p.required and p.default is None:
            continue
        try:
            KINDS[p.kind].check(v)
        except _ArgError as e:
            raise _ArgError(f"argument {p.name!r} ({p.kind}): {e}") from None
    return bound


class Step:
    """One scheduling step (immutable).  ``Step(op, args, kwargs, menu)``."""

    __slots__ = ("op", "args", "kwargs", "menu", "_json", "_key")

    def __init__(self, op: str, args=(), kwargs=None, menu: str | None = None):
        kwargs = dict(kwargs or {})
        args = list(args)
        if not isinstance(op, str):
            raise ScheduleError(None, None, f"op must be a string, got {op!r}")
        if op not in OPS:
            raise ScheduleError(
                None, op, f"unknown op {op!r}; allowed ops: {', '.join(WHITELIST)}"
            )
        if menu is not None and not isinstance(menu, str):
            raise ScheduleError(None, op, f"menu must be a string or null, got {menu!r}")
        if not _is_json(args) or not _is_json(kwargs):
            raise ScheduleError(None, op, "arguments must be JSON values (str, int, bool, null, list, dict)")
        try:
            _bind(OPS[op], args, kwargs)
        except _ArgError as e:
            raise ScheduleError(None, op, str(e)) from None
        # store canonical (deep-copied through JSON) values
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "args", json.loads(json.dumps(args)))
        object.__setattr__(self, "kwargs", json.loads(json.dumps(kwargs)))
        object.__setattr__(self, "menu", menu)
        object.__setattr__(self, "_json", _canon_json(self.to_dict()))
        object.__setattr__(
            self, "_key", _canon_json({"op": op, "args": self.args, "kwargs": self.kwargs})
        )

    def __setattr__(self, k, v):
        raise AttributeError("Step is immutable")

    def to_dict(self) -> dict:
        return {"op": self.op, "args": list(self.args), "kwargs": dict(self.kwargs), "menu": self.menu}

    @classmethod
    def from_dict(cls, d) -> "Step":
        if isinstance(d, Step):
            return d
        if not isinstance(d, dict):
            raise ScheduleError(None, None, f"a step must be an object, got {d!r}")
        extra = set(d) - {"op", "args", "kwargs", "menu"}
        if extra:
            raise ScheduleError(None, d.get("op") if isinstance(d.get("op"), str) else None,
                                f"unexpected step keys {sorted(extra)}")
        if "op" not in d:
            raise ScheduleError(None, None, f"step has no 'op': {d!r}")
        args = d.get("args", [])
        kwargs = d.get("kwargs", {})
        op = d["op"]
        if not isinstance(args, list):
            raise ScheduleError(None, op if isinstance(op, str) else None, f"'args' must be a list, got {args!r}")
        if not isinstance(kwargs, dict):
            raise ScheduleError(None, op if isinstance(op, str) else None, f"'kwargs' must be an object, got {kwargs!r}")
        return cls(op, args, kwargs, d.get("menu"))

    @property
    def unsafe(self) -> bool:
        spec = OPS[self.op]
        if "*" in spec.unsafe:
            return True
        return any(self.kwargs.get(f) is True for f in spec.unsafe) or any(
            p.name in spec.unsafe and i < len(self.args) and self.args[i] is True
            for i, p in enumerate(spec.params)
        )

    def canonical(self) -> str:
        return self._json

    def program_key(self) -> str:
        """Canonical JSON without the menu label (what determines the program)."""
        return self._key

    def __eq__(self, other):
        return isinstance(other, Step) and other._json == self._json

    def __hash__(self):
        return hash(self._json)

    def __repr__(self):
        return f"Step({self._json})"


class Schedule:
    """An immutable ordered list of Steps."""

    __slots__ = ("steps", "_json")

    def __init__(self, steps: Iterable = ()):
        out = []
        for i, s in enumerate(steps):
            try:
                out.append(s if isinstance(s, Step) else Step.from_dict(s))
            except ScheduleError as e:
                raise ScheduleError(i, e.op, e.message, e.kind) from None
        object.__setattr__(self, "steps", tuple(out))
        object.__setattr__(self, "_json", None)

    def __setattr__(self, k, v):
        raise AttributeError("Schedule is immutable")

    # -- container protocol ---------------------------------------------
    def __len__(self):
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Schedule(self.steps[i])
        return self.steps[i]

    def __add__(self, other):
        return self.extend(other)

    def extend(self, steps) -> "Schedule":
        """A new schedule: these steps followed by ``steps`` (Steps, dicts or a Schedule)."""
        if isinstance(steps, (Step, dict)):
            steps = [steps]
        more = Schedule(steps)
        return Schedule(self.steps + more.steps)

    def prefix(self, n: int) -> "Schedule":
        return Schedule(self.steps[:n])

    def is_prefix_of(self, other: "Schedule") -> bool:
        return len(self) <= len(other) and all(
            a.program_key() == b.program_key() for a, b in zip(self.steps, other.steps)
        )

    @property
    def unsafe(self) -> bool:
        return any(s.unsafe for s in self.steps)

    # -- JSON --------------------------------------------------------------
    def to_list(self) -> list:
        return [s.to_dict() for s in self.steps]

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_list(), indent=indent, sort_keys=indent is not None)

    @classmethod
    def from_json(cls, data) -> "Schedule":
        """From JSON text, a list of step objects, or ``{"steps": [...]}``."""
        if isinstance(data, (bytes, bytearray)):
            data = data.decode()
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ScheduleError(None, None, f"invalid JSON: {e}") from None
        if isinstance(data, dict) and "steps" in data:
            data = data["steps"]
        if not isinstance(data, list):
            raise ScheduleError(None, None, f"a schedule is a JSON list of steps, got {type(data).__name__}")
        return cls(data)

    def canonical(self) -> str:
        j = self._json
        if j is None:
            j = "[" + ",".join(s.canonical() for s in self.steps) + "]"
            object.__setattr__(self, "_json", j)
        return j

    def __eq__(self, other):
        return isinstance(other, Schedule) and self.canonical() == other.canonical()

    def __hash__(self):
        return hash(self.canonical())

    def __repr__(self):
        return f"Schedule({len(self)} steps)"

    def __str__(self):
        return "\n".join(f"{i:3d} {s.canonical()}" for i, s in enumerate(self.steps))

    # -- applying ---------------------------------------------------------
    def apply(self, proc, cache: "PrefixCache | None | bool" = True):
        """Apply to an Exo proc; returns the scheduled proc.

        ``cache=True`` uses DEFAULT_CACHE, ``None``/``False`` replays cold, or
        pass a PrefixCache.  Raises ScheduleError on the first failing step.
        """
        return self.apply_info(proc, cache)[0]

    def apply_info(self, proc, cache: "PrefixCache | None | bool" = True):
        """Like apply, returns ``(proc, info)`` with info = {"reused": steps
        taken from the cache, "applied": steps run, "seconds": Exo time}."""
        if cache is True:
            cache = DEFAULT_CACHE
        elif cache is False:
            cache = None
        t0 = time.perf_counter()
        _deep_enough()
        keys = _chain_keys(self.steps)
        start, p = 0, proc
        if cache is not None:
            start, p = cache.lookup(proc, keys)
        for i in range(start, len(self.steps)):
            p = _apply_step(p, self.steps[i], i)
        if cache is not None and len(self.steps) > start:
            cache.store(proc, keys[-1], p)
        return p, {
            "reused": start,
            "applied": len(self.steps) - start,
            "seconds": time.perf_counter() - t0,
        }


#: Exo's rewrites recurse over statement blocks: unrolled straight-line
#: bodies of a few hundred calls pass Python's default limit of 1000 (and a
#: caller's own frames, pytest's for one, count against it too)
RECURSION_LIMIT = 4000


def _deep_enough() -> None:
    import sys

    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def apply(proc, schedule, cache=True):
    """Apply a Schedule (or its JSON / list form) to proc."""
    if not isinstance(schedule, Schedule):
        schedule = Schedule.from_json(schedule)
    return schedule.apply(proc, cache)


# --------------------------------------------------------------------------- #
# Applying one step
# --------------------------------------------------------------------------- #


def _lift_config(proc, stmt_cursor, n_lifts=None):
    """Hoist a config statement with checked primitives (no error swallowing).

    Move it before each preceding statement (reorder_stmts); once it is first
    in a loop body, split it off (fission with unsafe_disable_checks, as
    exo.platforms.gemmini.lift_config does; the statement is a config write)
    and remove the loop around it (remove_loop, checked).  Stops at the top
    of the proc, or after leaving n_lifts scopes.
    """
    from exo.API_cursors import AssignConfigCursor, CallCursor, ForCursor
    from exo.stdlib.scheduling import fission, remove_loop, reorder_stmts

    p = proc
    c = stmt_cursor
    if isinstance(c, CallCursor):
        ok = c.subproc().name().startswith("config_")
    else:
        ok = isinstance(c, AssignConfigCursor)
    if not ok:
        raise _ArgError(
            "lift_config only lifts config statements (calls of config_* "
            f"instructions or Config field writes), got: {_short(c)}"
        )
    left = n_lifts
    while True:
        prev = c.prev()
        if prev:
            p = reorder_stmts(p, c.expand(1, 0))
            c = p.forward(c)
            continue
        if left is not None and left <= 0:
            return p
        parent = c.parent()
        if not parent:
            return p
        if not isinstance(parent, ForCursor):
            raise _ArgError(f"cannot lift a config out of a non-loop scope: {_short(parent)}")
        if c.next():
            p = fission(p, c.after(), unsafe_disable_checks=True)
            c = p.forward(c)
        p = remove_loop(p, c.parent())
        c = p.forward(c)
        if left is not None:
            left -= 1


def _short(c) -> str:
    try:
        return str(c._impl._node).strip().splitlines()[0][:120]
    except Exception:  # pragma: no cover
        return type(c).__name__


_MACROS = {"lift_config": _lift_config}


def _exo_fn(op):
    if op in _MACROS:
        return _MACROS[op]
    if op in _MOVE_SPECS:
        return _move_impl(op)
    import exo.stdlib.scheduling as S

    return getattr(S, op)


def _apply_step(p, step: Step, index: int):
    spec = OPS[step.op]
    try:
        bound = _bind(spec, step.args, step.kwargs)
        kw = {}
        for prm in spec.params:
            if prm.name not in bound:
                continue
            v = bound[prm.name]
            kw[prm.name] = v if v is None else KINDS[prm.kind].resolve(p, v)
        kw.update(dict(spec.fixed_kwargs))
        fn = _exo_fn(step.op)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            out = fn(p, **kw)
    except ScheduleError:
        raise
    except _ArgError as e:
        raise ScheduleError(index, step.op, str(e), "ArgumentError") from None
    except RecursionError as e:
        raise ScheduleError(index, step.op, f"recursion limit: {e}", "RecursionError") from None
    except Exception as e:  # SchedulingError, TypeError, ValueError, UnificationError, ...
        msg = str(e).strip() or repr(e)
        raise ScheduleError(index, step.op, msg, type(e).__name__) from e
    from exo.API import Procedure

    if not isinstance(out, Procedure):
        raise ScheduleError(index, step.op, f"op returned {type(out).__name__}, not a proc", "TypeError")
    return out


# --------------------------------------------------------------------------- #
# Prefix cache
# --------------------------------------------------------------------------- #


def _chain_keys(steps) -> list[str]:
    """keys[i] = digest of the program keys of steps[0..i] (chained)."""
    keys = []
    h = b""
    for s in steps:
        h = hashlib.sha256(h + s.program_key().encode()).digest()
        keys.append(h.hex())
    return keys


class PrefixCache:
    """Bounded LRU of scheduled procs keyed by (base proc, schedule prefix).

    The base proc is identified by ``id()`` and name; each entry keeps a
    reference to its base proc so an id cannot be reused while the entry
    lives.  Thread-safe.
    """

    def __init__(self, maxsize: int = 512):
        self.maxsize = maxsize
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.steps_saved = 0

    @staticmethod
    def _base(proc):
        return (id(proc), proc.name())

    def lookup(self, proc, keys: list[str]):
        """Return (n, proc_after_n_steps) for the longest cached prefix (n may be 0)."""
        base = self._base(proc)
        with self._lock:
            for n in range(len(keys), 0, -1):
                e = self._d.get((base, keys[n - 1]))
                if e is not None and e[0] is proc:
                    self._d.move_to_end((base, keys[n - 1]))
                    self.hits += 1
                    self.steps_saved += n
                    return n, e[1]
            self.misses += 1
        return 0, proc

    def store(self, proc, key: str, result):
        with self._lock:
            self._d[(self._base(proc), key)] = (proc, result)
            self._d.move_to_end((self._base(proc), key))
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def clear(self):
        with self._lock:
            self._d.clear()
            self.hits = self.misses = self.steps_saved = 0

    def __len__(self):
        return len(self._d)

    def stats(self) -> dict:
        return {
            "entries": len(self._d),
            "maxsize": self.maxsize,
            "hits": self.hits,
            "misses": self.misses,
            "steps_saved": self.steps_saved,
        }


DEFAULT_CACHE = PrefixCache()
