"""Inline a proc's copy temporaries, so that a user's GEMM written with or
without staging temporaries compares equal to one recognised form.

A *copy temporary* is a scalar ``x: T`` allocated in a block, written once
there by ``x = e`` and only read after that: ``a: i8; a = A[i, k]``,
``a2: i32; a2 = a``, ``src_tmp: i32; src_tmp = res``, a float ``f: f32;
f = res`` before ``clamp(f, o)``. Inlining replaces its reads by ``e`` and
drops the allocation and the assignment. That keeps the proc's meaning when

- ``e`` is pure (reads, arithmetic, externs) and nothing it reads is written
  later in the block, and ``x`` is never written elsewhere (no second
  assignment, reduction, or call that writes the argument);
- ``T`` holds every value of ``e`` exactly (int8 into int32 or float32, the
  same type), or the only uses are the input of Exo's ``clamp`` and ``T`` is
  float32 (an int32 that float32 rounds lies beyond the int8 range, so the
  saturated result is the same: the argument of `gemmini_ext`);
- a use as a call argument gets a plain scalar read (Exo passes variables).

Works on Exo's LoopIR (`workloads._Canon` compares LoopIR): Exo's cursors
expose neither types of expressions nor symbol identities. Only comparison
reads the result; it is never compiled.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["inline_copies"]

#: type name -> the types that hold all of its values exactly
_EXACT = {
    "INT8": {"INT8", "INT32", "F32", "F64"},
    "UINT8": {"UINT8", "UINT16", "INT32", "F32", "F64"},
    "UINT16": {"UINT16", "INT32", "F32", "F64"},
    "INT32": {"INT32", "F64"},
    "F16": {"F16", "F32", "F64"},
    "F32": {"F32", "F64"},
    "F64": {"F64"},
    "Bool": {"Bool"},
}


def _tname(t: Any) -> str:
    return type(t).__name__


def _expr_syms(e: Any, out: set) -> set:
    """The symbols an expression reads."""
    from exo.core.LoopIR import LoopIR

    if isinstance(e, (LoopIR.Read, LoopIR.WindowExpr, LoopIR.StrideExpr)):
        out.add(e.name)
    for f in ("idx", "args"):
        for x in getattr(e, f, ()) or ():
            if isinstance(x, (LoopIR.Interval, LoopIR.Point)):
                for y in (getattr(x, "lo", None), getattr(x, "hi", None), getattr(x, "pt", None)):
                    if y is not None:
                        _expr_syms(y, out)
            else:
                _expr_syms(x, out)
    for f in ("lhs", "rhs", "arg"):
        x = getattr(e, f, None)
        if x is not None:
            _expr_syms(x, out)
    return out


def _pure(e: Any) -> bool:
    from exo.core.LoopIR import LoopIR

    if isinstance(e, LoopIR.Read):
        return all(_pure(i) for i in e.idx)
    if isinstance(e, LoopIR.Const):
        return True
    if isinstance(e, LoopIR.BinOp):
        return _pure(e.lhs) and _pure(e.rhs)
    if isinstance(e, LoopIR.USub):
        return _pure(e.arg)
    if isinstance(e, LoopIR.Extern):
        return all(_pure(a) for a in e.args)
    return False


def _written_params(f: Any) -> set:
    """Indices of the parameters a callee may write (a nested call: all it passes)."""
    from exo.core.LoopIR import LoopIR

    names = {a.name: i for i, a in enumerate(f.args)}
    out: set = set()

    def walk(body):
        for s in body:
            if isinstance(s, (LoopIR.Assign, LoopIR.Reduce)) and s.name in names:
                out.add(names[s.name])
            elif isinstance(s, LoopIR.Call):
                for a in s.args:
                    out.update(names[n] for n in _expr_syms(a, set()) if n in names)
            elif isinstance(s, LoopIR.WindowStmt) and s.rhs.name in names:
                out.add(names[s.rhs.name])
            for b in ("body", "orelse"):
                walk(getattr(s, b, ()) or ())

    walk(f.body)
    return out


def _writes(s: Any) -> set:
    """Symbols a statement (and what it nests) may write."""
    from exo.core.LoopIR import LoopIR

    out: set = set()
    if isinstance(s, (LoopIR.Assign, LoopIR.Reduce)):
        out.add(s.name)
    elif isinstance(s, LoopIR.Call):
        w = _written_params(s.f)
        for i, a in enumerate(s.args):
            if i in w:
                out |= _expr_syms(a, set())
    elif isinstance(s, LoopIR.WindowStmt):
        out.add(s.rhs.name)
    for b in ("body", "orelse"):
        for c in getattr(s, b, ()) or ():
            out |= _writes(c)
    return out


class _Uses:
    """How ``x`` is read in a block: as a call argument (``calls``: the callees
    and positions) or inside an expression (``exprs``)."""

    def __init__(self):
        self.calls: list = []
        self.exprs = 0

    def scan(self, x: Any, body: list) -> "_Uses":
        from exo.core.LoopIR import LoopIR

        for s in body:
            if isinstance(s, LoopIR.Call):
                for i, a in enumerate(s.args):
                    if isinstance(a, LoopIR.Read) and a.name == x and not a.idx:
                        self.calls.append((s.f, i))
                    elif x in _expr_syms(a, set()):
                        self.exprs += 1
            else:
                for f in ("rhs", "cond", "lo", "hi"):
                    e = getattr(s, f, None)
                    if e is not None and x in _expr_syms(e, set()):
                        self.exprs += 1
                for i in getattr(s, "idx", ()) or ():
                    if x in _expr_syms(i, set()):
                        self.exprs += 1
            for b in ("body", "orelse"):
                self.scan(x, getattr(s, b, ()) or ())
        return self


def _clamp_ir() -> Any:
    from exo.platforms.gemmini import clamp

    return clamp._loopir_proc


def _fits(x_type: Any, e: Any, uses: _Uses) -> bool:
    """Does inlining keep every value (see the module doc)?"""
    src, dst = _tname(e.type), _tname(x_type)
    if dst in _EXACT.get(src, ()):
        return True
    clamp = _clamp_ir()
    return (src == "INT32" and dst == "F32" and uses.exprs == 0 and bool(uses.calls)
            and all(f is clamp and i == 0 for f, i in uses.calls))


def _subst(node: Any, x: Any, e: Any) -> Any:
    """``node`` with every read of ``x`` replaced by ``e``."""
    import attrs
    from asdl_adt.adt import _AsdlAdtBase
    from exo.core.LoopIR import LoopIR

    if isinstance(node, LoopIR.Read) and node.name == x and not node.idx:
        return e
    if isinstance(node, list):
        return [_subst(v, x, e) for v in node]
    if isinstance(node, tuple):
        return tuple(_subst(v, x, e) for v in node)
    if isinstance(node, _AsdlAdtBase):
        ch = {}
        for f in attrs.fields(type(node)):
            if f.name in ("srcinfo", "f", "type", "mem", "config", "loop_mode", "name", "iter"):
                continue
            v = getattr(node, f.name)
            nv = _subst(v, x, e)
            if nv is not v:
                ch[f.name] = nv
        return node.update(**ch) if ch else node
    return node


def _inline_one(body: list) -> Optional[list]:
    """``body`` with its first inlinable copy temporary inlined, or None."""
    from exo.core.LoopIR import LoopIR

    for q, al in enumerate(body):
        if not isinstance(al, LoopIR.Alloc) or isinstance(al.type, LoopIR.Tensor):
            continue
        x = al.name
        p = next((i for i in range(q + 1, len(body)) if x in _writes(body[i])), None)
        if p is None:
            continue
        s = body[p]
        if not (isinstance(s, LoopIR.Assign) and s.name == x and not s.idx and _pure(s.rhs)):
            continue
        reads = _expr_syms(s.rhs, set())
        rest = body[p + 1:]
        if x in reads or any(x in _writes(t) for t in rest) or any(reads & _writes(t) for t in rest):
            continue
        if _Uses().scan(x, body[q + 1:p]).calls or _Uses().scan(x, body[q + 1:p]).exprs:
            continue                       # read before it is written
        uses = _Uses().scan(x, rest)
        if uses.calls and not (isinstance(s.rhs, LoopIR.Read) and not s.rhs.idx):
            continue                       # a call argument must stay a variable
        if not _fits(al.type, s.rhs, uses):
            continue
        return body[:q] + body[q + 1:p] + _subst(rest, x, s.rhs)
    return None


def _inline_block(body: list) -> list:
    from exo.core.LoopIR import LoopIR

    body = [s.update(body=_inline_block(s.body)) if isinstance(s, LoopIR.For) else
            s.update(body=_inline_block(s.body), orelse=_inline_block(s.orelse)) if isinstance(s, LoopIR.If) else s
            for s in body]
    while True:
        nb = _inline_one(body)
        if nb is None:
            return body
        body = nb


def inline_copies(ir: Any) -> Any:
    """The LoopIR proc ``ir`` with its copy temporaries inlined (see the module doc)."""
    return ir.update(body=_inline_block(list(ir.body)))
