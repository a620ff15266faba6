"""Read a scheduled Exo proc from its text: loops, allocations, calls.

``parse(text) -> ProcFacts``. Only structural facts are used (names,
constant extents, nesting, which loop counters a call mentions, buffer
shapes and memories): the order of terms inside an index expression can
differ between processes (EXO.md pitfall 1) and never matters here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["Node", "ProcFacts", "parse"]

_FOR = re.compile(r"^for (\w+) in (?:seq|par)\((.+), (.+)\):$")
_ALLOC = re.compile(r"^(\w+)\s*:\s*(\w+)(?:\[([^\]]*)\])?\s*@\s*(\w+)$")
_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)
_INT = re.compile(r"^-?\d+$")


@dataclass(eq=False)
class Node:
    kind: str                     # "proc" | "for" | "alloc" | "call" | "if" | "other"
    text: str
    depth: int = 0                # number of enclosing loops/ifs
    name: str = ""                # loop counter, buffer or callee name
    lo: Optional[int] = None
    hi: Optional[int] = None
    dims: tuple = ()
    mem: str = ""
    parent: Optional["Node"] = None
    body: list = field(default_factory=list)

    @property
    def extent(self) -> Optional[int]:
        if self.lo is None or self.hi is None:
            return None
        return self.hi - self.lo

    def ancestors(self) -> list["Node"]:
        """Enclosing statements, innermost first (the proc node excluded)."""
        out, p = [], self.parent
        while p is not None and p.kind != "proc":
            out.append(p)
            p = p.parent
        return out

    def loops(self) -> list["Node"]:
        """Enclosing loops, outermost first."""
        return [a for a in reversed(self.ancestors()) if a.kind == "for"]

    def walk(self):
        yield self
        for c in self.body:
            yield from c.walk()

    def index(self) -> int:
        return self.parent.body.index(self) if self.parent is not None else 0

    def mentions(self, var: str) -> bool:
        return re.search(r"\b%s\b" % re.escape(var), self.text) is not None

    def count(self, kind: str = "call") -> int:
        return sum(1 for n in self.walk() if n.kind == kind)


def _int(s: str) -> Optional[int]:
    s = s.strip()
    return int(s) if _INT.match(s) else None


class ProcFacts:
    def __init__(self, root: Node, text: str):
        self.root = root
        self.text = text
        self.nodes = list(root.walk())[1:]

    # -- queries -------------------------------------------------------------
    def calls(self, name: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == "call" and n.name == name]

    def first_call(self, name: str) -> Optional[Node]:
        c = self.calls(name)
        return c[0] if c else None

    def loops(self, name: Optional[str] = None) -> list[Node]:
        return [n for n in self.nodes if n.kind == "for" and (name is None or n.name == name)]

    def loop_names(self) -> set:
        return {n.name for n in self.loops()}

    def alloc(self, name: str) -> Optional[Node]:
        for n in self.nodes:
            if n.kind == "alloc" and n.name == name:
                return n
        return None

    def allocs(self, mem: Optional[str] = None) -> list[Node]:
        return [n for n in self.nodes if n.kind == "alloc" and (mem is None or n.mem == mem)]

    def rows(self, node: Node) -> int:
        """Local rows of a scratchpad/accumulator allocation (16 elements a row)."""
        n = 1
        for d in node.dims:
            if d is None:
                return 1 << 30
            n *= d
        return max(1, n // 16)

    def rows_used(self, mem: str) -> int:
        return sum(self.rows(a) for a in self.allocs(mem))

    def n_calls(self) -> int:
        return sum(1 for n in self.nodes if n.kind == "call")


def parse(text: str) -> ProcFacts:
    """Parse ``str(proc)`` into a statement tree."""
    lines = text.splitlines()
    # join continuation lines into statements (balanced parentheses/brackets)
    stmts: list[tuple[int, str]] = []
    i = 0
    # skip the def header (until the line ending with '):' at depth 0)
    depth = 0
    while i < len(lines):
        ln = lines[i]
        depth += ln.count("(") + ln.count("[") - ln.count(")") - ln.count("]")
        i += 1
        if depth == 0 and ln.rstrip().endswith(":"):
            break
    cur = None
    cur_ind = 0
    depth = 0
    for ln in lines[i:]:
        if not ln.strip():
            continue
        if cur is None:
            cur_ind = len(ln) - len(ln.lstrip(" "))
            cur = ln.strip()
        else:
            cur += " " + ln.strip()
        depth += ln.count("(") + ln.count("[") - ln.count(")") - ln.count("]")
        if depth <= 0:
            stmts.append((cur_ind, re.sub(r"\s+", " ", cur)))
            cur, depth = None, 0
    if cur is not None:
        stmts.append((cur_ind, cur))

    root = Node("proc", "", depth=-1)
    stack: list[tuple[int, Node]] = [(-1, root)]
    for ind, s in stmts:
        while stack and ind <= stack[-1][0]:
            stack.pop()
        parent = stack[-1][1]
        d = parent.depth + 1
        m = _FOR.match(s)
        if m:
            node = Node("for", s, d, m.group(1), _int(m.group(2)), _int(m.group(3)), parent=parent)
        elif s.startswith("if ") or s == "else:":
            node = Node("if", s, d, parent=parent)
        else:
            m = _ALLOC.match(s)
            if m:
                dims = tuple(_int(x) for x in m.group(3).split(",")) if m.group(3) else ()
                node = Node("alloc", s, d, m.group(1), dims=dims, mem=m.group(4), parent=parent)
            else:
                m = _CALL.match(s)
                if m and "=" not in s.split("(", 1)[0]:
                    node = Node("call", s, d, m.group(1), parent=parent)
                else:
                    node = Node("other", s, d, parent=parent)
        parent.body.append(node)
        if node.kind in ("for", "if"):
            stack.append((ind, node))
    return ProcFacts(root, text)
