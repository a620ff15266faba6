"""What a scheduled Exo proc is made of, read through Exo's public cursors.

`facts(proc)` walks the proc once and returns a `ProcFacts` tree: loops
(counter, constant bounds), allocations (memory, shape), calls of Gemmini
instructions with their *role* and operands, ifs. It is the one way this
project inspects a proc: agents, moves, transfer and the capacity checks
read these facts, never the printed text or Exo's private IR.

A call's role comes from the C its instruction proc emits
(`Procedure.get_instr()`), read with the `gemmini_isa` spelling tables:

``load``     an ``mvin`` from DRAM (``src`` operand: the DRAM window)
``zero``     an ``mvin`` of address 0 (writes zeros)
``compute``  ``preload`` + ``compute_preloaded``; ``accumulate`` when the
             preload's output address carries the accumulate bit; operands
             ``moving`` (the compute's A), ``stationary`` (the preload's B)
             and ``output`` (the preload's C)
``store``    an ``mvout`` (``dst`` the DRAM window, ``src`` the local one)
``config``   only ``config_*`` commands
``other``    anything else (a user's non-instruction proc, ...)

Every node has a ``path`` (indices from the proc body down) so a worker can
turn facts back into cursors (`cursor_at`); `ProcFacts.to_json` /
`from_json` carry them to the agent process.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from gemmini_isa import ACCUMULATE_BIT, GemminiConfig
from gemmini_isa.instructions import spellings_by_name

__all__ = ["Operand", "Node", "ProcFacts", "facts", "cursor_at", "instruction_role"]


@dataclass
class Operand:
    """One tensor argument of a call: which instruction parameter it fills
    (``param``: the instr proc's argument name; ``slot``: its role in the
    command: src/dst/moving/stationary/output), the buffer, its memory and
    the loop counters its index expressions read."""

    param: str
    slot: str
    buffer: str
    mem: str
    vars: tuple = ()
    index: tuple = ()             # per index position: the loop counters it reads

    def dim_of(self, var: str) -> Optional[int]:
        """The index position that reads ``var`` (None when none or several do)."""
        hits = [i for i, vs in enumerate(self.index) if var in vs]
        return hits[0] if len(hits) == 1 else None

    def to_json(self) -> dict:
        return {"param": self.param, "slot": self.slot, "buffer": self.buffer, "mem": self.mem,
                "vars": list(self.vars), "index": [list(v) for v in self.index]}

    @classmethod
    def from_json(cls, d: dict) -> "Operand":
        return cls(d["param"], d["slot"], d["buffer"], d["mem"], tuple(d.get("vars", ())),
                   tuple(tuple(v) for v in d.get("index", ())))


@dataclass(eq=False)
class Node:
    kind: str                     # "proc" | "for" | "alloc" | "call" | "if" | "other"
    path: tuple = ()              # (("body"|"orelse", index), ...) from the proc body
    name: str = ""                # loop counter, buffer or callee
    lo: Optional[int] = None      # constant loop bounds (None when not constant)
    hi: Optional[int] = None
    dims: tuple = ()              # allocation shape (None entries: not constant)
    mem: str = ""
    role: str = ""                # calls: see the module doc
    accumulate: bool = False
    operands: tuple = ()
    reads: tuple = ()             # loop counters and buffers the statement reads (calls, ifs, others)
    parent: Optional["Node"] = None
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)

    # ---- navigation -------------------------------------------------------
    @property
    def extent(self) -> Optional[int]:
        if self.lo is None or self.hi is None:
            return None
        return self.hi - self.lo

    def children(self) -> list["Node"]:
        return self.body + self.orelse

    def walk(self) -> Iterator["Node"]:
        yield self
        for c in self.children():
            yield from c.walk()

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

    def siblings(self) -> list["Node"]:
        if self.parent is None:
            return [self]
        return self.parent.orelse if self.path and self.path[-1][0] == "orelse" else self.parent.body

    def index(self) -> int:
        return self.path[-1][1] if self.path else 0

    def count(self, kind: str) -> int:
        return sum(1 for n in self.walk() if n.kind == kind) - (self.kind == kind)

    def calls(self, role: Optional[str] = None) -> list["Node"]:
        return [n for n in self.walk() if n is not self and n.kind == "call" and (role is None or n.role == role)]

    def operand(self, slot: str) -> Optional[Operand]:
        for o in self.operands:
            if o.slot == slot:
                return o
        return None

    def local_operand(self) -> Optional[Operand]:
        """The scratchpad / accumulator operand written (loads, zeros) or read (stores)."""
        for o in self.operands:
            if o.mem in ("GEMM_SCRATCH", "GEMM_ACCUM"):
                return o
        return None

    def dram_operand(self) -> Optional[Operand]:
        for o in self.operands:
            if o.mem == "DRAM":
                return o
        return None

    def mentions(self, var: str) -> bool:
        """Whether the statement (calls: any operand index; others: anything
        it reads) uses the loop counter ``var``."""
        if self.kind == "call":
            return any(var in o.vars for o in self.operands) or var in self.reads
        return var in self.reads or any(c.mentions(var) for c in self.children())

    def describe(self) -> str:
        if self.kind == "for":
            return f"for {self.name} in seq({self.lo}, {self.hi})"
        if self.kind == "alloc":
            return f"{self.name}: {list(self.dims)} @ {self.mem}"
        if self.kind == "call":
            ops = ", ".join(f"{o.slot}={o.buffer}" for o in self.operands)
            return f"{self.name}({ops}) [{self.role}]"
        return self.kind

    # ---- JSON ---------------------------------------------------------------
    def to_json(self) -> dict:
        d: dict = {"kind": self.kind, "path": [list(p) for p in self.path]}
        for k in ("name", "mem", "role"):
            v = getattr(self, k)
            if v:
                d[k] = v
        if self.lo is not None:
            d["lo"] = self.lo
        if self.hi is not None:
            d["hi"] = self.hi
        if self.dims:
            d["dims"] = list(self.dims)
        if self.accumulate:
            d["accumulate"] = True
        if self.operands:
            d["operands"] = [o.to_json() for o in self.operands]
        if self.reads:
            d["reads"] = list(self.reads)
        if self.body:
            d["body"] = [c.to_json() for c in self.body]
        if self.orelse:
            d["orelse"] = [c.to_json() for c in self.orelse]
        return d

    @classmethod
    def from_json(cls, d: dict, parent: Optional["Node"] = None) -> "Node":
        n = cls(d["kind"], tuple(tuple(p) for p in d.get("path", ())), d.get("name", ""), d.get("lo"), d.get("hi"),
                tuple(d.get("dims", ())), d.get("mem", ""), d.get("role", ""), bool(d.get("accumulate")),
                tuple(Operand.from_json(o) for o in d.get("operands", ())), tuple(d.get("reads", ())), parent)
        n.body = [cls.from_json(c, n) for c in d.get("body", ())]
        n.orelse = [cls.from_json(c, n) for c in d.get("orelse", ())]
        return n


class ProcFacts:
    """The fact tree of one proc and the questions the agents and moves ask."""

    def __init__(self, root: Node, args: Optional[list] = None):
        self.root = root
        self.args = list(args or [])      # [{"name", "mem", "dims" | None}]
        self._nodes = list(root.walk())

    # ---- queries ----------------------------------------------------------------
    def nodes(self, kind: Optional[str] = None) -> list[Node]:
        return [n for n in self._nodes if n is not self.root and (kind is None or n.kind == kind)]

    def loops(self, name: Optional[str] = None) -> list[Node]:
        return [n for n in self.nodes("for") if name is None or n.name == name]

    def loop(self, name: str) -> Optional[Node]:
        ls = self.loops(name)
        return ls[0] if ls else None

    def loop_names(self) -> set:
        return {n.name for n in self.nodes("for")}

    def allocs(self, mem: Optional[str] = None) -> list[Node]:
        return [n for n in self.nodes("alloc") if mem is None or n.mem == mem]

    def alloc(self, name: str) -> Optional[Node]:
        for n in self.nodes("alloc"):
            if n.name == name:
                return n
        return None

    def calls(self, role: Optional[str] = None) -> list[Node]:
        return [n for n in self.nodes("call") if role is None or n.role == role]

    def first_call(self, role: str) -> Optional[Node]:
        cs = self.calls(role)
        return cs[0] if cs else None

    def n_calls(self) -> int:
        return len(self.nodes("call"))

    def occurrence(self, node: Node) -> int:
        """0-based index of ``node`` among the calls of its callee (or the
        loops / allocations of its name) in program order: what an Exo
        pattern ``"name #k"`` selects."""
        same = [n for n in self.nodes(node.kind) if n.name == node.name]
        return same.index(node)

    def loads_of(self, dram: str) -> list[Node]:
        """Loads whose DRAM source is the proc argument ``dram``."""
        return [c for c in self.calls("load") if (c.dram_operand() or Operand("", "", "", "")).buffer == dram]

    def compute_operands(self) -> dict:
        """slot -> local buffer of the first compute (moving/stationary/output)."""
        c = self.first_call("compute")
        return {o.slot: o.buffer for o in c.operands} if c is not None else {}

    # ---- capacities (GemminiConfig rows) ---------------------------------------
    @staticmethod
    def rows(node: Node) -> int:
        """Local memory rows of an allocation: all dimensions but the last
        (one row holds ``dim`` elements)."""
        if node is None or not node.dims or any(d is None for d in node.dims):
            return 0
        r = 1
        for d in node.dims[:-1]:
            r *= int(d)
        return r

    def rows_used(self, mem: str) -> int:
        """Rows of every local buffer in ``mem`` at once (an upper bound: the
        allocator may reuse freed rows)."""
        return sum(self.rows(a) for a in self.allocs(mem))

    def capacity(self, mem: str, config: Optional[GemminiConfig] = None) -> int:
        c = config or GemminiConfig()
        return c.sp_rows if mem == "GEMM_SCRATCH" else c.acc_rows if mem == "GEMM_ACCUM" else 1 << 62

    def over_capacity(self, config: Optional[GemminiConfig] = None) -> str:
        """"" when all local buffers fit at once, else what overflows."""
        for mem, what in (("GEMM_ACCUM", "accumulator"), ("GEMM_SCRATCH", "scratchpad")):
            used, cap = self.rows_used(mem), self.capacity(mem, config)
            if used > cap:
                return f"{what} buffers need {used} rows > {cap}"
        return ""

    # ---- JSON -------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"version": 1, "args": self.args, "root": self.root.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "ProcFacts":
        if not isinstance(d, dict) or d.get("version") != 1 or "root" not in d:
            raise ValueError(f"not a ProcFacts JSON object: {str(d)[:80]!r}")
        return cls(Node.from_json(d["root"]), d.get("args"))


# --------------------------------------------------------------------------- #
# Reading a live proc
# --------------------------------------------------------------------------- #

_C_CALL = re.compile(r"\b(\w+)\s*\(")
_ROLE_CACHE: dict = {}


def _split_args(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _c_commands(template: str) -> list[tuple[str, list[str]]]:
    """(ISA op, argument texts) of each Gemmini command a C template emits."""
    names = spellings_by_name()
    out = []
    for m in _C_CALL.finditer(template):
        fn = m.group(1)
        if fn not in names:
            continue
        depth, i = 1, m.end()
        while i < len(template) and depth:
            depth += {"(": 1, ")": -1}.get(template[i], 0)
            i += 1
        args = _split_args(template[m.end():i - 1])
        sp = next((s for s in names[fn] if s.arity == len(args)), names[fn][0])
        canon = [args[a] if isinstance(a, int) and a < len(args) else "" for a in sp.args]
        out.append((sp.op, canon))
    return out


def _placeholder(text: str) -> Optional[str]:
    m = re.search(r"\{(\w+?)(?:_data)?\}", text)
    return m.group(1) if m else None


def instruction_role(template: Optional[str]) -> tuple[str, bool, dict]:
    """(role, accumulate, {instr param name: slot}) of an instruction proc's C."""
    if not template:
        return "other", False, {}
    if template in _ROLE_CACHE:
        return _ROLE_CACHE[template]
    cmds = _c_commands(template)
    ops = [c[0] for c in cmds]
    slots: dict = {}
    role, acc = "other", False
    # an instruction that configures its own stream (Exo's st_acc_i32,
    # ld_acc_i32, ...) has the role of the command it configures
    data = [c for c in cmds if not c[0].startswith("config")]
    only_config = bool(cmds) and not data
    cmds, ops = data, [c[0] for c in data]
    if only_config:
        role = "config"
    elif ops == ["mvin"]:
        dram, local = cmds[0][1][1], cmds[0][1][2]
        role = "zero" if dram.strip() in ("0", "0x0") else "load"
        if role == "load" and _placeholder(dram):
            slots[_placeholder(dram)] = "src"
        if _placeholder(local):
            slots[_placeholder(local)] = "dst"
    elif "preload" in ops and any(o.startswith("compute") for o in ops):
        role = "compute"
        pre = cmds[ops.index("preload")][1]
        comp = next(c[1] for c in cmds if c[0].startswith("compute"))
        acc = hex(ACCUMULATE_BIT) in pre[1].lower() or str(ACCUMULATE_BIT) in pre[1]
        for text, slot in ((pre[0], "stationary"), (pre[1], "output"), (comp[0], "moving")):
            if _placeholder(text):
                slots[_placeholder(text)] = slot
    elif ops == ["mvout"]:
        role = "store"
        dram, local = cmds[0][1][0], cmds[0][1][1]
        if _placeholder(dram):
            slots[_placeholder(dram)] = "dst"
        if _placeholder(local):
            slots[_placeholder(local)] = "src"
    out = (role, acc, slots)
    _ROLE_CACHE[template] = out
    return out


def _expr_names(e: Any, out: set) -> None:
    """Names an index / condition expression reads (loop counters, buffers)."""
    from exo.API_cursors import (BinaryOpCursor, ExternFunctionCursor, ReadCursor, UnaryMinusCursor,
                                 WindowExprCursor)

    if isinstance(e, tuple):
        for x in e:
            _expr_names(x, out)
    elif isinstance(e, (ReadCursor, WindowExprCursor)):
        out.add(e.name())
        for x in e.idx():
            _expr_names(x, out)
    elif isinstance(e, BinaryOpCursor):
        _expr_names(e.lhs(), out)
        _expr_names(e.rhs(), out)
    elif isinstance(e, UnaryMinusCursor):
        _expr_names(e.arg(), out)
    elif isinstance(e, ExternFunctionCursor):
        for x in e.args():
            _expr_names(x, out)


def _mem_name(m: Any) -> str:
    return m.name() if hasattr(m, "name") else str(m)


def _const(e: Any) -> Optional[int]:
    from exo.API_cursors import LiteralCursor

    return int(e.value()) if isinstance(e, LiteralCursor) else None


def facts(proc: Any) -> ProcFacts:
    """The `ProcFacts` of a live Exo proc (public cursor API only)."""
    from exo.API_cursors import (AllocCursor, BlockCursor, AssignCursor, CallCursor, ForCursor, IfCursor, ReduceCursor,
                                 WindowStmtCursor)

    mems: dict = {}
    args = []
    for a in proc.args():
        mem = _mem_name(a.mem()) if a.is_tensor() or hasattr(a, "mem") else "DRAM"
        mems[a.name()] = mem
        args.append({"name": a.name(), "mem": mem,
                     "dims": [_const(s) for s in a.shape()] if a.is_tensor() else None})
    windows: dict = {}   # window statement name -> the buffer it views

    def node_of(c: Any, path: tuple, parent: Node) -> Node:
        if isinstance(c, ForCursor):
            n = Node("for", path, c.name(), _const(c.lo()), _const(c.hi()), parent=parent)
            names: set = set()
            _expr_names(c.lo(), names)
            _expr_names(c.hi(), names)
            n.reads = tuple(sorted(names))
            n.body = [node_of(s, path + (("body", i),), n) for i, s in enumerate(c.body())]
            return n
        if isinstance(c, AllocCursor):
            mem = _mem_name(c.mem())
            mems[c.name()] = mem
            dims = tuple(_const(s) for s in c.shape()) if c.is_tensor() else ()
            return Node("alloc", path, c.name(), dims=dims, mem=mem, parent=parent)
        if isinstance(c, CallCursor):
            sub = c.subproc()
            try:
                template = sub.get_instr()
            except AttributeError:      # a plain proc, not an instruction (Exo 1.0 raises here)
                template = None
            role, acc, slots = instruction_role(template)
            params = [a.name() for a in sub.args()]
            ops, reads = [], set()
            for i, e in enumerate(c.args()):
                names: set = set()
                _expr_names(e, names)
                buf = e.name() if hasattr(e, "name") and hasattr(e, "idx") else None
                if buf is not None and i < len(params):
                    buf = windows.get(buf, buf)
                    per = []
                    for x in e.idx():
                        one: set = set()
                        _expr_names(x, one)
                        per.append(tuple(sorted(one)))
                    idx = set().union(*per) if per else set()
                    ops.append(Operand(params[i], slots.get(params[i], params[i]), buf, mems.get(buf, "DRAM"),
                                       tuple(sorted(idx)), tuple(per)))
                else:
                    reads |= names
            return Node("call", path, sub.name(), role=role, accumulate=acc, operands=tuple(ops),
                        reads=tuple(sorted(reads)), parent=parent)
        if isinstance(c, IfCursor):
            n = Node("if", path, parent=parent)
            names = set()
            _expr_names(c.cond(), names)
            n.reads = tuple(sorted(names))
            n.body = [node_of(s, path + (("body", i),), n) for i, s in enumerate(c.body())]
            orelse = c.orelse()      # an InvalidCursor when the if has no else
            n.orelse = ([node_of(s, path + (("orelse", i),), n) for i, s in enumerate(orelse)]
                        if isinstance(orelse, BlockCursor) else [])
            return n
        names = set()
        if isinstance(c, (AssignCursor, ReduceCursor)):
            names.add(c.name())
            for x in c.idx():
                _expr_names(x, names)
            _expr_names(c.rhs(), names)
            n = Node("other", path, c.name(), parent=parent)
        elif isinstance(c, WindowStmtCursor):
            _expr_names(c.winexpr(), names)
            windows[c.name()] = c.winexpr().name()
            n = Node("other", path, c.name(), parent=parent)
        else:
            n = Node("other", path, parent=parent)
        n.reads = tuple(sorted(names))
        return n

    root = Node("proc", (), proc.name())
    root.body = [node_of(s, (("body", i),), root) for i, s in enumerate(proc.body())]
    return ProcFacts(root, args)


def cursor_at(proc: Any, node: Node) -> Any:
    """The live cursor of ``node`` in ``proc`` (the proc the facts were read from)."""
    cur = None
    for branch, i in node.path:
        block = (proc.body() if cur is None else getattr(cur, branch)())
        cur = block[i]
    return cur
