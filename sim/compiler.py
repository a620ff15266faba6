"""Compile a parsed C program into Python source, once per program.

Each C function becomes one Python function taking the machine `_m` first.
Integers are Python ints kept in the range of their C type: interval analysis
of loop counters and index arithmetic proves most expressions cannot
overflow, so wrap-around code is only emitted where it may matter. Pointers
are integer virtual addresses (see `machine.Dram`). Gemmini instructions
become calls of machine methods that also receive the CPU cycles of the scalar
code executed since the previous instruction (for the timing model: the RoCC
instruction itself is the timing model's cpu_rocc_cycles).

Those cycles come from an estimate of the RISC-V instructions gcc -O2 would
execute for each statement (see "CPU cost" below: constant folding, hoisting,
induction variables, operand packing, loop control, complete unrolling, jump
threading, spills), with Rocket's CPI, multiplier/divider latencies, exit-branch
mispredictions and I-cache refills (`CpuParams`, from the GemminiConfig). The
generated code also counts the instructions (`_n`, into `Machine.ni`: RunResult.
cpu_instructions); benchmarks/cpu_fidelity.py checks them against a real
RISC-V build of the same C.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from lark import Token, Tree

from gemmini_isa import CONSTANTS, INSTRUCTIONS, spellings_by_name
from gemmini_isa.instructions import ROCC_COMMANDS

from . import ctypes_model as ct
from .ctypes_model import CType
from .errors import SimError, UnknownFunctionError, UnsupportedError

# ---------------------------------------------------------------------------
# compiled expressions and lvalues


class E:
    """A compiled expression: Python code, C type, and what we know of its value.

    ``norm``: the value is within the range of its C type. ``lo``/``hi``: a
    proven interval (ints only, when norm). ``ops``: scalar CPU operations.
    """

    __slots__ = ("_code", "t", "norm", "lo", "hi", "const", "ops", "aff", "_mat", "stall", "nosr")

    def __init__(self, code: Optional[str], t: CType, norm: bool = True, lo: Optional[int] = None,
                 hi: Optional[int] = None, const: Any = None, ops: int = 0, aff: Any = None,
                 mat: Any = None, stall: float = 0.0):
        # ops: RISC-V instructions gcc -O2 emits to evaluate it where it stands (before
        # hoisting, see Compiler.charge); stall: extra cycles (multiplier, divider)
        if aff is not None:
            # index arithmetic: gcc folds the constants, hoists the invariant part and
            # strength-reduces the rest into one induction variable (one register)
            ops = 1 if aff[1] else 0
        self._code, self.t, self.norm, self.const, self.ops = code, t, norm, const, ops
        self.stall = stall
        # index arithmetic gcc does not fold into one induction variable: a division
        # of a sum with a constant term, `(j * 16384 + 256) / 16` (see Compiler.charge)
        self.nosr = False
        # affine form (constant, {key: (coefficient, code)}) of index arithmetic; its
        # code is made (with loop-invariant parts hoisted) only when first needed
        self.aff = aff
        self._mat = mat
        if t.kind == "int" and norm:
            self.lo = t.lo if lo is None else max(lo, t.lo)
            self.hi = t.hi if hi is None else min(hi, t.hi)
        else:
            self.lo, self.hi = lo, hi

    @property
    def code(self) -> str:
        if self._code is None:
            self._code = self._mat(self.aff)
        return self._code


@dataclass
class Var:
    py: str
    t: CType
    lo: Optional[int] = None  # proven interval of a loop counter
    hi: Optional[int] = None
    mem: bool = False  # its address is taken: it lives in a memory cell, py holds the address
    const: Any = None  # never assigned after its constant initializer: reads are that constant


@dataclass
class LoopCtx:
    """A loop being compiled: what its body may change, and the code hoisted
    in front of it (loop-invariant parts of index expressions)."""

    variant: set[str]
    hoist: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)
    # CPU cost estimate (see Compiler.charge): values already computed once per
    # iteration of this loop, its induction variables, its counter, its body's
    # first line (I-cache refills of a body larger than the cache go there),
    # the code size when it opened, and the cost hoisted in front of it
    costed: set = field(default_factory=set)
    ivs: set = field(default_factory=set)
    regs: dict = field(default_factory=dict)
    iv_base: dict = field(default_factory=dict)
    n_operands: int = 0
    operand_at: dict = field(default_factory=dict)
    recent: list = field(default_factory=list)
    counter: str = ""
    top: list = field(default_factory=list)
    static0: int = 0
    pre_n: int = 0
    pre_cycles: float = 0.0
    unrolled: bool = False    # gcc unrolls it completely (decided when it closes)
    pre_rolled: int = 0       # instructions in front of it unless it is unrolled
    trip: Optional[int] = None
    start: Optional[int] = None
    has_inner: bool = False
    body_n: int = 0           # instructions per iteration charged in its own body
    n_aff: int = 0            # addresses on its counter


@dataclass(frozen=True)
class CpuParams:
    """What the CPU cost estimate needs from the hardware config (a Rocket core)."""

    cpi: float = 1.0                 # cycles per instruction without stalls
    mul_cycles: float = 10.0         # iterative multiplier, a whole MUL
    div_cycles: float = 66.0         # iterative divider, worst case
    branch_cycles: float = 3.0       # a mispredicted branch (each loop's exit)
    icache_bytes: int = 16384
    icache_line_bytes: int = 64
    icache_refill_cycles: float = 25.0

    @classmethod
    def of(cls, config: Any) -> "CpuParams":
        if config is None:
            return cls()
        d = cls()
        return cls(*(getattr(config, n, getattr(d, f)) for n, f in (
            ("cpu_cpi", "cpi"), ("cpu_mul_cycles", "mul_cycles"), ("cpu_div_cycles", "div_cycles"),
            ("cpu_branch_cycles", "branch_cycles"), ("icache_bytes", "icache_bytes"),
            ("icache_line_bytes", "icache_line_bytes"), ("icache_refill_cycles", "icache_refill_cycles"))))


@dataclass
class LV:
    """An lvalue: a local variable, a DRAM location, or a context-struct field."""

    kind: str  # "var", "mem", "ctx", "ctxpath"
    t: CType
    var: Optional[Var] = None
    addr: Optional[E] = None
    key: str = ""
    ops: int = 0


@dataclass
class FuncInfo:
    name: str
    py: str
    ret: CType
    params: list[tuple[str, CType]]
    node: Optional[Tree]
    line: int = 0


@dataclass
class CompiledProgram:
    source: str                      # the generated Python
    linemap: list[tuple[int, int]]   # generated line (0-based) -> (C line, column)
    functions: dict[str, FuncInfo]
    filename: str
    c_lines: list[str] = field(default_factory=list)
    second: dict[int, tuple[int, int]] = field(default_factory=dict)  # fused call line -> compute's position


_MASK = {8: 0xFF, 16: 0xFFFF, 32: 0xFFFFFFFF, 64: 0xFFFFFFFFFFFFFFFF}
_MACHINE_OPS = {
    # op -> (machine method, canonical parameter kinds)
    op: (op, tuple(p.kind for p in ins.params)) for op, ins in INSTRUCTIONS.items()
}
_RUNTIME_RET = {"gemm_malloc": ct.UINT64, "gemm_acc_malloc": ct.UINT32}
_SPELLINGS = spellings_by_name()
_LOAD_CODES = {  # scalar DRAM loads/stores from CPU code: (bytes, struct code)
    (8, True): "b", (8, False): "B", (16, True): "h", (16, False): "H",
    (32, True): "i", (32, False): "I", (64, True): "q", (64, False): "Q",
}


def _wrap_code(code: str, t: CType) -> str:
    """Python code reducing an integer to the range of C type t."""
    if t.is_bool:
        return f"(1 if ({code}) else 0)"
    m = _MASK[t.bits]
    if not t.signed:
        return f"(({code}) & {m:#x})"
    half = 1 << (t.bits - 1)
    return f"(((({code}) + {half:#x}) & {m:#x}) - {half:#x})"


class Compiler:
    def __init__(self, tree: Tree, defines: dict[str, str], filename: str, text: str, dim: int = 16,
                 cpu: Optional[CpuParams] = None):
        self.tree = tree
        self.cpu = cpu or CpuParams()
        self.pend_n = 0       # RISC-V instructions pending (like self.pend, which holds cycles)
        # per-iteration loop control is known only when the loop is closed (gcc may
        # unroll it completely): pending amounts refer to their loops, and the text
        # holds a slot filled in at the end (see _slot)
        self.pend_refs: list = []
        self.pend_n_refs: list = []
        self.slots: list = []
        self.static = 0       # estimated static code size of the current function (instructions)
        self.top_ctx = LoopCtx(set())
        self.var_level: dict[str, int] = {}
        self.var_range: dict[str, tuple] = {}
        self.h_code: dict[str, str] = {}
        self.counters: set = set()
        self.if_floor = 0     # loop depth of the innermost enclosing if/else body
        self.filename = filename
        self.c_lines = text.split("\n")
        self.dim = dim
        self.constants: dict[str, E] = {}
        for name, value in CONSTANTS.items():
            self.constants[name] = self._literal_e(value)
        for name, value in defines.items():
            try:
                self.constants[name] = self._literal_e(_parse_number(value))
            except ValueError:
                pass
        self.functions: dict[str, FuncInfo] = {}
        self.lines: list[tuple[int, str, tuple[int, int]]] = []
        self.indent = 0
        self.pos = (0, 0)
        self.tmp = 0
        self.loops: list[LoopCtx] = []
        self.py2c: dict[str, str] = {}
        self._memo: dict[int, tuple[frozenset, frozenset]] = {}
        # a preload waiting to be fused with the compute that follows it: one
        # machine call per preload/compute pair
        self.stashed: Optional[tuple[int, list[str], tuple[int, int]]] = None
        self.second_pos: dict[int, tuple[int, int]] = {}
        self._keep: list[Any] = []

    # ---- errors --------------------------------------------------------
    def err(self, cls, msg: str, node: Any = None) -> SimError:
        line, col = self._where(node)
        src = self.c_lines[line - 1] if 0 < line <= len(self.c_lines) else None
        return cls(msg, file=self.filename, line=line or None, column=col or None, source_line=src)

    def _where(self, node: Any) -> tuple[int, int]:
        """(line, column) of a node: its first token (trees carry no positions)."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, Token):
                if n.line:
                    return n.line, n.column or 0
            elif isinstance(n, Tree):
                stack.extend(reversed(n.children))
        return self.pos

    # ---- output --------------------------------------------------------
    def emit(self, text: str) -> None:
        if self.stashed is not None:
            self._emit_stashed()
        self.lines.append((self.indent, text, self.pos))

    def _emit_stashed(self) -> None:
        """Emit a preload held back in case a compute follows (see call_stmt)."""
        total, canon, pos = self.stashed
        self.stashed = None
        self.lines.append((self.indent, f"_o = _m.preload(_o + {_num(total)}{''.join(', ' + c for c in canon)})", pos))

    def fresh(self, base: str) -> str:
        self.tmp += 1
        return f"_{base}{self.tmp}"

    # ---- entry point ----------------------------------------------------
    def compile(self) -> CompiledProgram:
        defs = []
        for node in self.tree.children:
            if not isinstance(node, Tree):
                continue
            if node.data in ("function_def", "prototype"):
                info = self._signature(node)
                old = self.functions.get(info.name)
                if node.data == "function_def":
                    if old is not None and old.node is not None:
                        raise self.err(UnsupportedError, f"function '{info.name}' is defined twice", node)
                    self.functions[info.name] = info
                    defs.append(info)
                elif old is None:
                    self.functions[info.name] = info
            elif node.data == "global_decl":
                raise self.err(UnsupportedError, "global variables are not supported; use #define or locals", node)
        self.emit_header()
        try:
            for info in defs:
                self.compile_function(info)
                if self.stashed is not None:
                    self._emit_stashed()
        except SimError as e:  # errors raised without a position get the statement's
            line, col = self.pos
            src = self.c_lines[line - 1] if 0 < line <= len(self.c_lines) else None
            raise e.with_location(self.filename, line or None, col or None, src)
        src_lines, linemap, second = [], [], {}
        fill = (lambda m: self._slot_value(int(m.group(1)))) if self.slots else None
        for i, (ind, text, pos) in enumerate(self.lines):
            if i in self.second_pos:
                second[len(src_lines)] = self.second_pos[i]
            for line in (text if isinstance(text, list) else [text]):
                if fill is not None and "@@" in line:
                    line = _SLOT.sub(fill, line)
                src_lines.append("    " * ind + line)
                linemap.append(pos)
        return CompiledProgram("\n".join(src_lines) + "\n", linemap, self.functions, self.filename, self.c_lines,
                               second)

    def emit_header(self) -> None:
        self.emit("# generated from C by sim.compiler; one Python function per C function")

    # ---- declarations and types ------------------------------------------
    def _type_of_specs(self, specs: Tree) -> CType:
        base = None
        for ch in specs.children:
            if isinstance(ch, Tree) and ch.data == "type_words":
                words = [str(t) for t in ch.children]
                base = ct.from_words(words)
                if base is None:
                    raise self.err(UnsupportedError, f"unsupported type '{' '.join(words)}'", ch)
            elif isinstance(ch, Tree) and ch.data == "struct_type":
                name = str(ch.children[0])
                if name.endswith("_Context"):
                    base = ct.CTX
                else:
                    raise self.err(UnsupportedError, f"struct types are not supported (struct {name})", ch)
        assert base is not None
        return base

    def _declarator(self, base: CType, decl: Tree) -> tuple[str, CType]:
        """(name, type) of a declarator such as `*A`, `A[64][64]`."""
        stars = [c for c in decl.children if isinstance(c, Tree) and c.data == "pointer"]
        name_tok = next(c for c in decl.children if isinstance(c, Token) and c.type == "IDENT")
        dims_nodes = [c for c in decl.children if isinstance(c, Tree) and c.data == "array_suffix"]
        t = base
        for _ in stars:
            t = ct.CTX if t is ct.CTX else ct.ptr(t)
        if dims_nodes:
            dims = []
            for i, d in enumerate(dims_nodes):
                if d.children[0] is None:
                    if i == 0:
                        dims.append(None)
                        continue
                    raise self.err(UnsupportedError, "only the first array dimension may be left empty", d)
                e = self.expr(d.children[0])
                if e.const is None or not isinstance(e.const, int) or e.const <= 0:
                    raise self.err(UnsupportedError, "array dimensions must be positive integer constants", d)
                dims.append(e.const)
            if dims[0] is None:  # T x[] / T x[][n] parameter: a pointer
                t = ct.ptr(t) if len(dims) == 1 else ct.ptr(ct.array(t, tuple(dims[1:])))
            else:
                t = ct.array(t, tuple(dims))
        return str(name_tok), t

    def _type_name(self, node: Tree) -> CType:
        t = self._type_of_specs(node.children[0])
        for _ in node.children[1:]:
            t = ct.CTX if t is ct.CTX else ct.ptr(t)
        return t

    def _signature(self, node: Tree) -> FuncInfo:
        specs, decl, plist = node.children[0], node.children[1], node.children[2]
        ret_base = self._type_of_specs(specs)
        name, ret = self._declarator(ret_base, decl)
        params: list[tuple[str, CType]] = []
        if plist is not None:
            for p in plist.children:
                if isinstance(p, Token):  # (void)
                    continue
                pt = self._type_of_specs(p.children[0])
                pname, ptype = self._declarator(pt, p.children[1])
                if ptype.kind == "void":
                    raise self.err(UnsupportedError, f"parameter '{pname}' has type void", p)
                if pname == "ctxt" and ptype.kind == "ptr" and ptype.elem.kind == "void":
                    ptype = ct.CTX  # Exo's context argument of a proc that uses no configs
                params.append((pname, ptype))
        return FuncInfo(name, f"f_{name}", ret, params, node if node.data == "function_def" else None,
                        self._where(node)[0])

    # ---- functions -------------------------------------------------------
    def compile_function(self, info: FuncInfo) -> None:
        self.pos = (info.line, 1)
        self.scopes: list[dict[str, Var]] = [{}]
        self.used_py: set[str] = set()
        self.cur = info
        self.pend = 0
        self.pend_n = 0
        self.pend_refs, self.pend_n_refs = [], []
        self.static = 0
        self.live = 0
        self.top_ctx = LoopCtx(set())
        self.var_level, self.var_range = {}, {}
        self.if_floor = 0
        self.n_spills = 0
        body = info.node.children[3]
        self.addr_taken = _addr_taken_names(body)
        self.func_assigned = self._assigned(body)
        args, cells = [], []
        for pname, ptype in info.params:
            v = self.declare(pname, ptype)
            args.append(v.py)
            if pname in self.addr_taken and ptype.kind in ("int", "float", "ptr"):
                cells.append(v)
        self.emit(f"def {info.py}(_m{''.join(', ' + a for a in args)}):")
        self.indent += 1
        self.emit("_o = 0")
        self.emit("_n = 0")
        prologue: list[str] = []
        self.lines.append((self.indent, prologue, self.pos))
        self.emit("_cx = _m.ctx")
        for v in cells:  # a parameter whose address is taken moves into a memory cell
            value = E(v.py, v.t, lo=v.lo, hi=v.hi)
            self.emit(f"{v.py} = _m.site_array({self.fresh('cell')!r}, {v.t.sizeof()})")
            v.mem = True
            self.store_mem(E(v.py, ct.ptr(v.t)), v.t, value)
        self.block(body, new_scope=False)
        self.flush_ops()
        self.emit("_m.pend += _o; _m.ni += _n")
        self.emit("return None" if info.ret.kind == "void" else "return 0")
        self._prologue(prologue)
        self.indent -= 1
        self.emit("")

    def declare(self, name: str, t: CType, lo=None, hi=None) -> Var:
        py = f"v_{name}"
        if self.lookup(name) is not None:  # shadowing a live variable: a fresh Python name
            n = 1
            while f"s{n}_{name}" in self.used_py:
                n += 1
            py = f"s{n}_{name}"
        self.used_py.add(py)
        self.py2c[py] = name
        self.var_level.pop(py, None)
        self.var_range.pop(py, None)
        v = Var(py, t, lo, hi)
        self.scopes[-1][name] = v
        return v

    def lookup(self, name: str) -> Optional[Var]:
        for s in reversed(self.scopes):
            if name in s:
                return s[name]
        return None

    # ---- what loop bodies change (memoized per node: bodies nest) -------------
    def _names_of(self, node: Any) -> tuple[frozenset, frozenset]:
        """(assigned, declared) C names of a subtree; `&x` counts as assigned."""
        if not isinstance(node, Tree):
            return frozenset(), frozenset()
        key = id(node)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        assigned: set[str] = set()
        declared: set[str] = set()
        if node.data in ("assignment", "post_incdec", "pre_incdec", "addr_of"):
            target = node.children[1] if node.data == "pre_incdec" else node.children[0]
            if isinstance(target, Tree) and target.data == "var":
                assigned.add(str(target.children[0]))
        elif node.data == "declarator":
            declared.update(str(c) for c in node.children if isinstance(c, Token) and c.type == "IDENT")
        for c in node.children:
            if isinstance(c, Tree):
                a, d = self._names_of(c)
                assigned |= a
                declared |= d
        out = (frozenset(assigned), frozenset(declared))
        self._memo[key] = out
        self._keep.append(node)  # ids stay unique while the tree is alive
        return out

    def _changed(self, node: Any) -> set[str]:
        a, d = self._names_of(node)
        return set(a | d)

    def _assigned(self, node: Any) -> frozenset:
        return self._names_of(node)[0]

    # ---- loop-invariant code motion ------------------------------------------
    def enter_loop(self, variant: set[str]) -> LoopCtx:
        """Open a loop: a placeholder for hoisted code goes right before it."""
        if self.stashed is not None:
            self._emit_stashed()
        ctx = LoopCtx(set(variant))
        ctx.static0 = self.static
        if self.loops:
            self.loops[-1].has_inner = True
        self.lines.append((self.indent, ctx.hoist, self.pos))
        self.loops.append(ctx)
        return ctx

    def exit_loop(self) -> None:
        self.finish_loop(self.loops[-1])
        self.loops.pop()

    def _cvars(self, code: str) -> set[str]:
        out = set()
        for name in _PYNAME.findall(code):
            out.add(self.py2c.get(name, name))
        return out

    def aff_code(self, aff: tuple) -> str:
        """Code for an affine form, with loop-invariant parts hoisted."""
        const, terms = aff
        return self._materialize(const, terms, len(self.loops))

    def _materialize(self, const: int, terms: dict, level: int) -> str:
        if level == 0 or not terms:
            return _aff_canon(const, terms)
        loop = self.loops[level - 1]
        inv = {k: t for k, t in terms.items() if not (self._cvars(t[1]) & loop.variant)}
        if not inv:
            return _aff_canon(const, terms)
        var = {k: t for k, t in terms.items() if k not in inv}
        if not var and len(inv) == 1 and const == 0:
            (coef, code), = inv.values()
            if coef == 1 and _SIMPLE.match(code):
                return code
        key = (const, tuple(sorted((k, c) for k, (c, _) in inv.items())))
        name = loop.cache.get(key)
        if name is None:
            code = self._materialize(const, inv, level - 1)
            if _SIMPLE.match(code):
                name = code
            else:
                name = self.fresh("h")
                loop.hoist.append(f"{name} = {code}")
                self.h_code[name] = code
                for outer in self.loops[:level - 1]:  # assigned in the bodies of enclosing loops
                    outer.variant.add(name)
            loop.cache[key] = name
        if not var:
            return name
        return _aff_canon(0, {**var, name: (1, name)})

    def _aff_of(self, e: E) -> Optional[tuple]:
        """e as an affine form; a pure value that is not one becomes an opaque term."""
        if e.aff is not None:
            return e.aff
        if isinstance(e.const, int) and not isinstance(e.const, bool):
            return (e.const, {})
        if e.t.kind in ("int", "ptr", "array") and not _IMPURE.search(e.code):
            return (0, {e.code: (1, e.code)})
        return None

    # ---- CPU cost: the instructions gcc -O2 emits, on Rocket --------------------
    # Every statement charges what its compiled code executes: an expression's
    # operators (E.ops), computed once per iteration of the innermost loop it
    # depends on (gcc hoists loop-invariant code in front of that loop), index
    # arithmetic as induction variables (one add per iteration per distinct
    # variable part, its start value once in front of the loop), one instruction
    # per RoCC command plus the operand packing that stays in the loop, a
    # compare-and-branch per `if` and per loop iteration (plus the counter's
    # increment unless an induction variable can stand in for the counter), a
    # mispredicted branch at each loop exit, and multiplier/divider stalls.
    # self.pend collects cycles (what tm.cpu receives), self.pend_n instructions.

    def _ctx(self, level: int) -> LoopCtx:
        return self.top_ctx if level == 0 else self.loops[level - 1]

    def add_cost(self, n: int, stall: float = 0.0, level: Optional[int] = None, clamp: bool = False) -> None:
        """n instructions (+ stall cycles) executed once per iteration of the loop at
        `level` (0: once per call; None: where the current statement stands)."""
        if not n and not stall:
            return
        if clamp and level is not None and level < self.if_floor:
            # computed only where an `if` body needs it: not hoisted past the loop
            # that holds the `if` (gcc does not speculate it on every iteration)
            level = self.if_floor
        self.static += n
        c = n * self.cpu.cpi + stall
        if level is not None and level < len(self.loops):
            self.live += 1  # a hoisted value or induction variable: a register across the loop
        if level is None or level >= len(self.loops):
            self.pend += c
            self.pend_n += n
            if self.loops:
                self.loops[-1].body_n += n
        else:
            ctx = self.loops[level]
            ctx.pre_n += n
            ctx.pre_cycles += c

    def level_of(self, code: str) -> int:
        """The depth of the innermost enclosing loop whose iterations change `code`'s value."""
        depth = len(self.loops)
        if depth == 0:
            return 0
        if _NOHOIST.search(code):
            return depth
        lvl = 0
        for name in set(_PYNAME.findall(code)):
            lv = self.var_level.get(name)
            if lv is None:
                c = self.py2c.get(name, name)
                lv = 0
                for i in range(depth - 1, lvl - 1, -1):
                    if c in self.loops[i].variant:
                        lv = i + 1
                        break
            if lv > lvl:
                lvl = lv
                if lvl >= depth:
                    return depth
        return lvl

    def charge(self, e: E, extra: int = 0) -> int:
        """Charge evaluating e where it stands (hoisted as gcc would); returns its level."""
        if e.const is not None:
            return 0
        if e.aff is not None:
            if e.nosr:
                return self._charge_nosr(e)
            return self._charge_aff(e.aff)
        code = e.code
        lvl = self.level_of(code)
        if not e.ops and not e.stall:
            return lvl
        if lvl < len(self.loops):  # loop-invariant: computed once in front of the loop
            ctx = self._ctx(lvl)
            if code in ctx.costed:
                return lvl
            ctx.costed.add(code)
        self.add_cost(e.ops, e.stall, lvl, clamp=True)
        return lvl

    def _charge_aff(self, aff: tuple) -> int:
        const, terms = aff
        if not terms:
            return 0
        levels = {k: self.level_of(code) for k, (_, code) in terms.items()}
        lvl = max(levels.values())
        ctx = self._ctx(lvl)
        key = (const, tuple(sorted((k, c) for k, (c, _) in terms.items())))
        if key in ctx.costed:  # the same address again: CSE
            return lvl
        ctx.costed.add(key)
        if const == 0 and len(terms) == 1 and next(iter(terms.values()))[0] == 1:
            return lvl  # a plain value in a register
        if lvl == 0:
            self.add_cost(1, level=0)
            return 0
        inv = {k: t for k, t in terms.items() if levels[k] < lvl}
        var = tuple(sorted((k, c) for k, (c, _) in terms.items() if levels[k] == lvl))
        if inv:
            self._charge_aff((0, inv))
        loop = self.loops[lvl - 1]
        for k, _ in var:  # `counter * invariant`: linear in the counter (an IV with an invariant step)
            m = _MULTERM.match(terms[k][1])
            if m and loop.counter in (m.group(1), m.group(2)):
                other = m.group(2) if m.group(1) == loop.counter else m.group(1)
                if self.level_of(other) < lvl:
                    terms = dict(terms)
                    terms[k] = (terms[k][0], loop.counter)
        if any(terms[k][1] == loop.counter for k, _ in var):
            loop.n_aff += 1
        if loop.counter and all(terms[k][1] == loop.counter for k, _ in var) and not inv and \
                lvl == len(self.loops):
            # on the counter alone: a constant in each copy if the loop is unrolled
            if var not in loop.ivs:
                loop.ivs.add(var)
                loop.pre_rolled += 1
            self.add_rolled(1, loop)
        elif loop.counter and all(terms[k][1] == loop.counter for k, _ in var):
            # strength reduction: an induction variable stepping by coef * step
            d = const - loop.iv_base.get(var, const)
            if var not in loop.ivs or not -2048 <= d < 2048:
                # a new IV (also when the offset from an existing one does not fit addi's 12 bits)
                loop.ivs.add(var)
                loop.iv_base.setdefault(var, const)
                self.add_cost(1, level=lvl, clamp=True)        # its add, each iteration
                self.add_cost(1, level=lvl - 1, clamp=True)    # its start value, in front of the loop
            else:  # the same IV plus another offset: one addi
                self.add_cost(1, level=lvl, clamp=True)
        else:  # variant values that are not induction variables: add them up
            n = len(var) - (0 if (inv or const) else 1) + sum(1 for _, c in var if c not in (1, -1))
            self.add_cost(max(n, 0), level=lvl)
        return lvl

    def _charge_nosr(self, e: E) -> int:
        """`base + (iv + c) / 16`: gcc keeps the undivided sum on the counter's
        induction variable and adds the constant, shifts and adds the base at each
        use (3 instructions), with the sum's own IV charged once."""
        const, terms = e.aff
        lvl = max((self.level_of(code) for _, code in terms.values()), default=0)
        ctx = self._ctx(lvl)
        key = ("nosr", const, tuple(sorted((k, c) for k, (c, _) in terms.items())))
        if key in ctx.costed:
            return lvl
        ctx.costed.add(key)
        inv = {k: t for k, t in terms.items() if self.level_of(t[1]) < lvl}
        if inv and lvl:
            self._charge_aff((0, inv))
        if lvl:
            loop = self.loops[lvl - 1]
            var = ("undivided", tuple(sorted(k for k in terms if k not in inv)))
            if var not in loop.ivs:
                loop.ivs.add(var)
                self.add_cost(1, level=lvl)
                self.add_cost(1, level=lvl - 1)
        self.add_cost(2 + (1 if inv else 0), level=lvl, clamp=True)
        return lvl

    def charge_cond(self, c: E, node: Any) -> None:
        """A conditional branch on c: RISC-V compares two registers in the branch itself."""
        if c.const is not None:
            return
        fused = isinstance(node, Tree) and node.data in ("compare", "log_and", "log_or", "lnot")
        if self.loops and self._first_iteration_test(node, self.loops[-1]):
            # decided by the counter: gcc peels the first iteration and threads the
            # back edge past the test, so only the other conjuncts are tested, once per
            # run of the loop (`a && b`: a's compare and the && fold away)
            rest = c.ops - 2 if node.data == "log_and" else 0
            self.add_cost(max(rest, 0), c.stall, level=len(self.loops) - 1)
            return
        own = c.ops - (1 if fused else 0)
        if isinstance(node, Tree) and node.data in ("log_and", "log_or"):
            own -= 1  # `a && b` in a branch is two branches, nothing combined
        lvl = self.level_of(c.code)
        if lvl < len(self.loops):  # invariant condition: compare hoisted, branch stays
            key = ("cond", c.code)
            ctx = self._ctx(lvl)
            if key not in ctx.costed:
                ctx.costed.add(key)
                self.add_cost(max(own, 0), c.stall, lvl)
            self.add_cost(1)
        else:
            self.add_cost(max(own, 0) + 1, c.stall)

    def _first_iteration_test(self, node: Any, loop: LoopCtx) -> bool:
        """Is node (a conjunct of it) `counter == start` (or !=, >, <=) of the loop?"""
        if not (isinstance(node, Tree) and loop.counter and loop.start is not None):
            return False
        if node.data == "log_and":
            return any(self._first_iteration_test(c, loop) for c in node.children)
        if node.data != "compare":
            return False
        a, op, b = node.children[0], str(node.children[1]), node.children[2]
        name = self.py2c.get(loop.counter)
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Tree) and x.data == "var" and str(x.children[0]) == name and \
                    isinstance(y, Tree) and y.data == "int_lit":
                try:
                    v = int(str(y.children[0]).rstrip("uUlL"), 0)
                except ValueError:
                    return False
                return v == loop.start and op in ("==", "!=", (">" if x is a else "<"), ("<=" if x is a else ">="))
        return False

    def charge_command(self, op: str, raw: list, args: list, canon: list) -> None:
        """One RoCC instruction plus the packing of its two operand registers
        (gemmini.h's layout) that the enclosing loop cannot hoist."""
        layout = _PACKING.get(op)
        if layout is None:  # fence, the FSM macros (several commands), anything else: its instructions
            n = ROCC_COMMANDS.get(op, 1)
            for e in args:
                if e is not None and e.const is None:
                    self.charge(e)
                    self.add_cost(2)
            self.pend_n += n  # the RoCC instructions themselves: cycles in the timing model
            self.static += n
            return
        depth = len(self.loops)
        inner = self.loops[-1] if depth else None
        here = inner if inner is not None else self.top_ctx
        for reg in layout:
            # the same 64-bit operand as an earlier command of this iteration (pure
            # values only): gcc computes it once (CSE) and keeps it in a register
            rkey = ("operand", tuple((pi, shift, args[pi].code if args[pi] is not None else canon[pi])
                                     for pi, shift, _ in reg))
            varying = [args[pi] for pi, _, _ in reg if args[pi] is not None and args[pi].const is None]
            if varying and all(self._pure(e.code) for e in varying) and \
                    all(self.level_of(e.code) == depth for e in varying):
                here.n_operands += 1
                if rkey in here.costed:
                    # still in a register if few values came since; else spilled once, reloaded
                    last = here.operand_at[rkey]
                    here.operand_at[rkey] = here.n_operands
                    busy = sum(len(c.ivs) + 1 for c in self.loops) + 3
                    if here.n_operands - last > 27 - busy:
                        if rkey not in here.regs:
                            here.regs[rkey] = 1  # a short-lived spill (reused slot near sp)
                            self.add_cost(here.regs[rkey])  # the store (counted here: same total)
                        self.add_cost(here.regs[rkey])  # the reload
                    continue
                here.costed.add(rkey)
                here.operand_at[rkey] = here.n_operands
            n_var = n_cap = 0
            fixed = False  # a constant or hoisted part to OR in
            inv_key = []   # what that part is made of
            inv_lvl = 0
            for pi, shift, kind in reg:
                e = args[pi]
                if e is None or e.const is not None:
                    if e is None or e.const:
                        fixed = True
                        inv_key.append((pi, shift, canon[pi]))
                    continue
                own = (1 if shift else 0)
                if kind == "float":
                    own += 1  # fmv.x.w
                elif kind == "local" and self._needs_zext(raw[pi]):
                    own += 2  # zero-extend a uint32 held sign-extended (slli + srli)
                lvl = self.charge(e)
                if lvl < depth:
                    key = ("field", e.code, shift)
                    ctx = self._ctx(lvl)
                    if key not in ctx.costed:
                        ctx.costed.add(key)
                        self.add_cost(own + 1, level=lvl)
                    fixed = True
                    inv_key.append((pi, shift, e.code))
                    inv_lvl = max(inv_lvl, lvl)
                elif inner is not None and inner.counter and e.aff is not None and all(
                        code == inner.counter for _, code in e.aff[1].values()):
                    self.add_rolled(own, inner)  # constant after peeling
                    n_cap += 1
                else:
                    self.add_cost(own)
                    n_var += 1
            if n_var + n_cap:  # the ORs that stay in the loop
                rolled = n_var + n_cap - 1 + (1 if fixed else 0)
                unrolled = n_var - 1 + (1 if (fixed or n_cap) else 0) if n_var else 0
                self.add_cost(unrolled)
                if inner is not None:
                    self.add_rolled(rolled - unrolled, inner)
            if fixed and not depth:
                self._straight_constant(inv_key)
            elif fixed:
                if inv_lvl == 0:
                    key = ("const", tuple(inv_key))
                    if key not in self.top_ctx.costed:
                        self.top_ctx.costed.add(key)
                        self.add_cost(2, level=0)  # a 64-bit constant, in front of the loops
                self._use_hoisted(tuple(inv_key), inv_lvl)
        self.pend_n += 1
        self.static += 1

    def _pure(self, code: str) -> bool:
        """Only loop counters, variables set once and hoisted values: safe to CSE."""
        if _NOHOIST.search(code):
            return False
        for name in _PYNAME.findall(code):
            if not (name.startswith("_h") or name in self.var_range or name in self.counters or
                    name in self.var_level):
                return False
        return True

    def _straight_constant(self, parts: list) -> None:
        """A 64-bit operand constant in straight-line code: free if a register still
        holds it (the last 8 constants), one addi from one within +-2047 of it,
        else two instructions (lui + slli/addi, or auipc + ld from the pool)."""
        value = 0
        try:
            for _, shift, code in parts:
                v = float(code) if ("." in code or "e" in code) else int(code, 0)
                if isinstance(v, float):
                    v = _F32.unpack(_F32.pack(v))[0]
                    v = int.from_bytes(_F32.pack(v), "little")
                value |= (v & 0xFFFFFFFFFFFFFFFF) << shift
        except (ValueError, OverflowError):
            value = None
        recent = self.top_ctx.recent
        if value is not None and value in recent:
            recent.remove(value)
        else:
            near = value is not None and any(abs(value - r) < 2048 for r in recent if r is not None)
            self.add_cost(1 if near else 2)
            if len(recent) >= 8:
                del recent[0]
        recent.append(value)

    def _use_hoisted(self, key: Any, lvl: int) -> None:
        """A value computed in front of the innermost loop is used in it: it stays in
        a register while registers last (27 allocatable of 32, less the loops'
        counters and induction variables and 3 temporaries); past that, gcc spills
        it once where it is computed and reloads it where it is used again after
        other values (a reload stays in its register for the next few uses)."""
        ctx = self.loops[-1]
        spilled = ctx.regs.get(key)
        recent = ctx.recent
        if key in recent:
            recent.remove(key)
            recent.append(key)
            return
        recent.append(key)
        if len(recent) > 4:
            del recent[0]
        if spilled is None:
            busy = sum(len(c.ivs) + 1 for c in self.loops) + 3
            spilled = len(ctx.regs) >= 27 - busy
            ctx.regs[key] = spilled
            if spilled:
                ctx.regs[key] = spilled = self._spill_slot_cost()
                self.add_cost(spilled, level=min(lvl, len(self.loops) - 1))  # the spill store
        if spilled:
            self.add_cost(spilled)  # the reload

    def _spill_slot_cost(self) -> int:
        """Instructions of one access to a new spill slot of a hoisted value: one
        ld/sd off sp. (Slots past sp + 2047 need lui/addi/add first; counting every
        spilled value as a slot overshoots gcc's frame, which reuses slots, so that
        cost is left out: see the report of benchmarks/cpu_fidelity.py.)"""
        self.n_spills += 1
        return 1

    def _needs_zext(self, e: Optional[E]) -> bool:
        """Must gcc zero-extend this uint32 before ORing it into a 64-bit operand?
        Values it builds from constants, loop counters and variables set once it
        keeps zero-extended in 64 bits; a truncation of a wider value (Exo's
        (uint32_t) casts of pointers), a variable assigned in several places, a
        load or a call result is held sign-extended (RV64's 32-bit convention)."""
        if e is None or e.const is not None or e.t.kind != "int" or e.t.bits != 32 or e.t.signed:
            return False
        return self._unknown32(e.code)

    def _unknown32(self, code: str) -> bool:
        if _TRUNC32.search(code) or _NOHOIST.search(code):
            return True
        for name in _PYNAME.findall(code):
            if name.startswith("_h"):
                if self._unknown32(self.h_code.get(name, "0xffffffff")):
                    return True
            elif name not in self.var_range and name not in self.counters:
                return True
        return False

    def _slot(self, base: float, refs: list, cycles: bool) -> str:
        """Text for an amount that may include loop control not decided yet."""
        if not refs:
            return _num(base)
        self.slots.append((base, list(refs), cycles))
        return f"@@{len(self.slots) - 1}@@"

    def _slot_value(self, i: int) -> str:
        base, refs, cycles = self.slots[i]
        return _num(base + sum(n * (self.cpu.cpi if cycles else 1) for c, n in refs if not c.unrolled))

    def add_rolled(self, n: int, ctx: LoopCtx) -> None:
        """n instructions here, unless gcc unrolls loop ctx (they fold to constants)."""
        if n:
            self.static += n
            self.pend_refs.append((ctx, n))
            self.pend_n_refs.append((ctx, n))

    def charge_loop(self, ctx: LoopCtx, body: Any, name: str) -> None:
        """Per iteration: the back branch, and the counter's increment unless an
        induction variable takes over the exit test (decided at the loop's end:
        gcc may unroll it completely)."""
        affine, other = _counter_uses(body, name, ctx.start)
        self.live += 1
        self.add_rolled(1 if (affine and not other) else 2, ctx)
        ctx.pre_rolled += 2  # start and bound registers

    def _unrolled(self, ctx: LoopCtx) -> bool:
        """gcc -O2's complete unrolling (cunroll without growth): an innermost loop
        of n <= 16 constant iterations is unrolled when 2/3 of n copies of what
        stays after peeling (the body but its counter arithmetic) is no bigger
        than the loop: the body, increment and exit test, and ~3 GIMPLE
        statements of index arithmetic per address on the counter."""
        n = ctx.trip
        if n is None or ctx.has_inner or n > 16:
            return False
        if n <= 1:
            return True
        r = ctx.body_n
        return 2 * n * r <= 3 * (r + 2 + 3 * ctx.n_aff)

    def _prologue(self, lines: list) -> None:
        """Once per call: ret, saving and restoring the callee-saved registers the
        values kept live across loops need beyond the ~10 free temporaries (and ra
        when it calls), and I-cache refills of a body larger than the cache."""
        saved = min(12, max(0, self.live - 10))
        calls = getattr(self, "makes_calls", False)
        n = 1 + (2 * saved + 2 if (saved or calls) else 0) + (2 if calls else 0)
        cycles = n * self.cpu.cpi
        size = (self.static + n) * 4
        if size > self.cpu.icache_bytes:
            cycles += -(-size // self.cpu.icache_line_bytes) * self.cpu.icache_refill_cycles
        lines.append(f"_o += {_num(cycles)}; _n += {n}")
        self.makes_calls = False

    def finish_loop(self, ctx: LoopCtx) -> None:
        """Loop control (unless unrolled) and hoisted costs go in front of the loop;
        a body larger than the I-cache refills every line on every pass."""
        if ctx.counter:
            ctx.unrolled = self._unrolled(ctx)
            if not ctx.unrolled:  # induction variables' start values, the exit branch mispredicts
                ctx.pre_n += ctx.pre_rolled
                ctx.pre_cycles += ctx.pre_rolled * self.cpu.cpi + self.cpu.branch_cycles
                self.static += ctx.pre_rolled
        if ctx.pre_n or ctx.pre_cycles:
            ctx.hoist.append(f"_o += {_num(ctx.pre_cycles)}; _n += {ctx.pre_n}")
        size = (self.static - ctx.static0) * 4
        if size > self.cpu.icache_bytes:
            lines = -(-size // self.cpu.icache_line_bytes)
            ctx.top.append(f"_o += {_num(lines * self.cpu.icache_refill_cycles)}")

    # ---- statements ------------------------------------------------------
    def flush_ops(self) -> None:
        """Emit pending scalar-op counts and any held-back preload: called at the
        end of every block, before the indentation changes."""
        if self.pend or self.pend_n or self.pend_refs or self.pend_n_refs:
            parts = ([f"_o += {self._slot(self.pend, self.pend_refs, True)}"] if (self.pend or self.pend_refs)
                     else []) + \
                ([f"_n += {self._slot(self.pend_n, self.pend_n_refs, False)}"] if (self.pend_n or self.pend_n_refs)
                 else [])
            self.pend = 0
            self.pend_n = 0
            self.pend_refs, self.pend_n_refs = [], []
            self.emit("; ".join(parts))
        if self.stashed is not None:
            self._emit_stashed()

    def block(self, node: Tree, new_scope: bool = True) -> None:
        if new_scope:
            self.scopes.append({})
        n0 = len(self.lines)
        for st in node.children:
            self.stmt(st)
        self.flush_ops()
        if len(self.lines) == n0:
            self.emit("pass")
        if new_scope:
            self.scopes.pop()

    def body(self, node: Any) -> None:
        """A statement used as a loop or if body: always its own scope."""
        self.scopes.append({})
        n0 = len(self.lines)
        if isinstance(node, Tree) and node.data == "compound":
            for st in node.children:
                self.stmt(st)
        else:
            self.stmt(node)
        self.flush_ops()
        if len(self.lines) == n0:
            self.emit("pass")
        self.scopes.pop()

    def stmt(self, node: Any) -> None:
        if isinstance(node, Tree):
            self.pos = self._where(node)
            handler = getattr(self, f"st_{node.data}", None)
            if handler is None:
                raise self.err(UnsupportedError, f"unsupported statement ({node.data})", node)
            handler(node)
        elif isinstance(node, Token):
            raise self.err(UnsupportedError, f"unexpected '{node}'", node)

    def st_empty(self, node: Tree) -> None:
        pass

    def st_compound(self, node: Tree) -> None:
        self.flush_ops()
        self.scopes.append({})
        for st in node.children:
            self.stmt(st)
        self.scopes.pop()

    def st_unsupported_stmt(self, node: Tree) -> None:
        kw = str(node.children[0]) if isinstance(node.children[0], Token) else "statement"
        raise self.err(UnsupportedError, f"'{kw}' is not supported by the simulator", node)

    def st_declaration(self, node: Tree) -> None:
        base = self._type_of_specs(node.children[0])
        for init in node.children[1:]:
            self.init_declarator(base, init)

    st_declaration_noend = st_declaration

    def init_declarator(self, base: CType, node: Tree) -> None:
        name, t = self._declarator(base, node.children[0])
        init = _init_of(node)
        if t.kind == "void":
            raise self.err(UnsupportedError, f"variable '{name}' has type void", node)
        if t.kind == "array":
            if t.dims[0] is None:
                raise self.err(UnsupportedError, "local arrays need a size", node)
            site = self.fresh("site")
            v = self.declare(name, t)
            self.emit(f"{v.py} = _m.site_array({site!r}, {t.sizeof()})")
            if init is not None:
                if not (isinstance(init, Tree) and init.data == "init_list"):
                    raise self.err(UnsupportedError, "arrays are initialized with { ... } lists", node)
                vals = [c for c in init.children if c is not None]
                elem = t.elem
                step = elem.sizeof()
                flat = 1
                for d in t.dims:
                    flat *= d
                if len(vals) > flat:
                    raise self.err(UnsupportedError, "too many initializers", init)
                for i, ve in enumerate(vals):
                    e = self.convert(self.expr(ve), elem)
                    self.store_mem(E(f"({v.py} + {i * step})", ct.ptr(elem)), elem, e)
            return
        if init is not None and isinstance(init, Tree) and init.data == "init_list":
            raise self.err(UnsupportedError, "{ ... } initializers are only supported for arrays", node)
        if name in self.addr_taken and t.kind in ("int", "float", "ptr"):
            # its address is taken (`&x`): the variable lives in a memory cell
            e = self.convert(self.expr(init), t) if init is not None else None
            v = self.declare(name, t)
            v.mem = True
            self.emit(f"{v.py} = _m.site_array({self.fresh('cell')!r}, {t.sizeof()})")
            if e is not None:
                self.store_mem(E(v.py, ct.ptr(t)), t, e)
                self.charge(e)
                self.add_cost(1)  # the store
            return
        if init is None:
            v = self.declare(name, t)
            self.emit(f"{v.py} = {'0.0' if t.is_float else '0'}")
            return
        e = self.convert(self.expr(init), t)
        v = self.declare(name, t)
        self.emit(f"{v.py} = {e.code}")
        lvl = self.charge(e)
        if name not in self.func_assigned and t.kind in ("int", "ptr"):
            # assigned only here: gcc propagates a constant and hoists with the value
            self.var_level[v.py] = lvl
            if e.norm and e.lo is not None:
                self.var_range[v.py] = (e.lo, e.hi)
            if isinstance(e.const, int) and not isinstance(e.const, bool) and t.kind == "int":
                v.const = e.const

    def st_expr_stmt(self, node: Tree) -> None:
        ex = node.children[0]
        if isinstance(ex, Tree) and ex.data == "call":
            self.call_stmt(ex)
            return
        e = self.expr(ex)
        if e.ops or "(" in e.code:
            self.emit(e.code)  # evaluate for side effects and errors
        self.charge(e)

    def st_assignment(self, node: Tree) -> None:
        target, op, value = node.children
        lv = self.lvalue(target)
        rhs = self.expr(value)
        op = _op_text(op)
        if op != "=":
            cur = self.read_lv(lv)
            rhs = self.binary(op[:-1], cur, rhs, node)
        self.store_lv(lv, rhs, node)

    def st_post_incdec(self, node: Tree) -> None:
        target, op = node.children
        self._incdec(target, _op_text(op), node)

    def st_pre_incdec(self, node: Tree) -> None:
        op, target = node.children
        self._incdec(target, _op_text(op), node)

    def _incdec(self, target: Any, op: str, node: Tree) -> None:
        lv = self.lvalue(target)
        one = self._literal_e(1)
        self.store_lv(lv, self.binary("+" if op == "++" else "-", self.read_lv(lv), one, node), node)

    def st_if_stmt(self, node: Tree) -> None:
        cond, then, other = node.children[0], node.children[1], node.children[2]
        c = self.cond(cond)
        self.charge_cond(c, cond)
        self.flush_ops()
        self.emit(f"if {c.code}:")
        self.indent += 1
        if other is not None and not (self.loops and self._first_iteration_test(cond, self.loops[-1])):
            self.add_cost(1)  # the jump over the else branch
        floor, self.if_floor = self.if_floor, len(self.loops)
        self.body(then)
        self.indent -= 1
        if other is not None:
            self.emit("else:")
            self.indent += 1
            self.body(other)
            self.indent -= 1
        self.if_floor = floor

    def st_return_stmt(self, node: Tree) -> None:
        val = node.children[0]
        if val is None:
            self.flush_ops()
            self.emit("_m.pend += _o; _m.ni += _n")
            self.emit("return None")
            return
        if self.cur.ret.kind == "void":
            raise self.err(UnsupportedError, "a void function returns a value", node)
        e = self.convert(self.expr(val), self.cur.ret)
        self.charge(e)
        self.flush_ops()
        self.emit("_m.pend += _o; _m.ni += _n")
        self.emit(f"return {e.code}")

    def st_break_stmt(self, node: Tree) -> None:
        if not getattr(self, "loop_depth", 0):
            raise self.err(UnsupportedError, "'break' outside a loop", node)
        self.add_cost(1)
        self.flush_ops()
        self.emit("break")

    def st_continue_stmt(self, node: Tree) -> None:
        if not getattr(self, "loop_depth", 0):
            raise self.err(UnsupportedError, "'continue' outside a loop", node)
        if getattr(self, "in_do", False):
            raise self.err(UnsupportedError, "'continue' inside do/while is not supported", node)
        self.add_cost(1)
        self.flush_ops()
        self.emit("continue")

    def _loop_body(self, body: Any, counter: Optional[str] = None, do: bool = False) -> None:
        self.loop_depth = getattr(self, "loop_depth", 0) + 1
        saved_do = getattr(self, "in_do", False)
        self.in_do = do
        ctx = self.loops[-1]
        self.lines.append((self.indent, ctx.top, self.pos))
        if counter is not None:
            self.charge_loop(ctx, body, counter)
        else:  # the condition is charged where it is tested; the exit mispredicts
            self.add_cost(0, self.cpu.branch_cycles, level=len(self.loops) - 1)
        self.body(body)
        self.in_do = saved_do
        self.loop_depth -= 1

    def st_while_stmt(self, node: Tree) -> None:
        cond, body = node.children
        self.flush_ops()
        self.enter_loop(self._changed(body) | self._changed(cond))
        self.emit("while True:")
        self.indent += 1
        self.emit("_m.tick()")
        c = self.cond(cond)
        self.charge_cond(c, cond)
        self.flush_ops()
        self.emit(f"if not ({c.code}): break")
        self._loop_body(body)
        self.indent -= 1
        self.exit_loop()

    def st_do_stmt(self, node: Tree) -> None:
        body, cond = node.children
        self.flush_ops()
        self.enter_loop(self._changed(body) | self._changed(cond))
        self.emit("while True:")
        self.indent += 1
        self.emit("_m.tick()")
        self._loop_body(body, do=True)
        c = self.cond(cond)
        self.charge_cond(c, cond)
        self.flush_ops()
        self.emit(f"if not ({c.code}): break")
        self.indent -= 1
        self.exit_loop()

    def st_for_stmt(self, node: Tree) -> None:
        init, cond, update, body = node.children
        self.flush_ops()
        self.scopes.append({})
        if not self._for_range(init, cond, update, body):
            self._for_general(init, cond, update, body)
        self.scopes.pop()

    def _for_range(self, init: Tree, cond: Any, update: Any, body: Any) -> bool:
        """`for (T i = a; i < b; i++ / i += c)` with i and b untouched by the body
        becomes a Python range loop; i gets a proven interval."""
        decl = init.children[0] if init is not None and init.children else None
        if not (isinstance(decl, Tree) and decl.data == "declaration_noend" and len(decl.children) == 2):
            return False
        idecl = decl.children[1]
        if _init_of(idecl) is None:
            return False
        base = self._type_of_specs(decl.children[0])
        name, t = self._declarator(base, idecl.children[0])
        if t.kind != "int" or t.is_bool:
            return False
        if not (isinstance(cond, Tree) and cond.data == "compare" and str(cond.children[1]) in ("<", "<=")):
            return False
        lhs, rhs = cond.children[0], cond.children[2]
        if not (isinstance(lhs, Tree) and lhs.data == "var" and str(lhs.children[0]) == name):
            return False
        step = _step_of(update, name)
        if step is None:
            return False
        names_in_bound = _names(rhs)
        if name in names_in_bound or _reads_memory(rhs) or bool(self._assigned(body) & (names_in_bound | {name})):
            return False  # the bound may change while the loop runs: evaluate it every time
        start = self.convert(self.expr(_init_of(idecl)), t)
        stop = self.expr(rhs)
        ctype = ct.common(t, stop.t) if stop.t.is_int else None
        if ctype is None or stop.t.kind != "int":
            return False
        stop = self.convert(stop, ctype)
        if not ctype.signed and (start.lo is None or start.lo < 0):
            return False
        inclusive = str(cond.children[1]) == "<="
        stop_code = f"({stop.code}) + 1" if inclusive else stop.code
        hi = None if stop.hi is None else (stop.hi if inclusive else stop.hi - 1)
        lo = start.lo
        if hi is not None and hi > t.hi:
            return False  # the counter could wrap before reaching the bound
        v = self.declare(name, t, lo, hi)
        self.counters.add(v.py)
        rng = self.fresh("r")
        step_code = "" if step == 1 else f", {step}"
        self.charge(start)
        self.charge(stop)
        self.flush_ops()
        self.emit(f"{rng} = range({start.code}, {stop_code}{step_code})")
        if not (start.const is not None and stop.const is not None and stop.const - start.const <= 64):
            self.emit(f"_m.iters(len({rng}))")
        ctx = self.enter_loop(self._changed(body) | {name})
        ctx.counter = v.py
        ctx.start = start.const if isinstance(start.const, int) else None
        if start.const is not None and stop.const is not None:
            ctx.trip = len(range(start.const, stop.const + (1 if inclusive else 0), step))
            if ctx.trip == 1 and isinstance(start.const, int):
                v.const = start.const  # one iteration: gcc folds the counter to its start
        self.emit(f"for {v.py} in {rng}:")
        self.indent += 1
        self._loop_body(body, name)
        self.indent -= 1
        self.exit_loop()
        return True

    def _for_general(self, init: Any, cond: Any, update: Any, body: Any) -> None:
        if init is not None and init.children and init.children[0] is not None:
            self.stmt(init.children[0])
        self.flush_ops()
        has_continue = _has_continue(body)
        first = self.fresh("first")
        if has_continue:
            self.emit(f"{first} = True")
        self.enter_loop(self._changed(body) | self._changed(update) | self._changed(cond))
        self.emit("while True:")
        self.indent += 1
        self.emit("_m.tick()")
        if has_continue:
            self.emit(f"if {first}: {first} = False")
            self.emit("else:")
            self.indent += 1
            if update is not None:
                self.stmt(update)
            self.flush_ops()
            self.emit("pass")
            self.indent -= 1
        if cond is not None:
            c = self.cond(cond)
            self.charge_cond(c, cond)
            self.flush_ops()
            self.emit(f"if not ({c.code}): break")
        self._loop_body(body)
        if update is not None and not has_continue:
            self.stmt(update)
            self.flush_ops()
        self.indent -= 1
        self.exit_loop()

    # ---- calls -------------------------------------------------------------
    def call_stmt(self, node: Tree) -> None:
        callee, args = node.children[0], [a for a in node.children[1:] if a is not None]
        if not (isinstance(callee, Tree) and callee.data == "var"):
            raise self.err(UnsupportedError, "calls through expressions are not supported", node)
        name = str(callee.children[0])
        if name in self.functions:
            e = self.user_call(name, args, node)
            self.add_cost(e.ops, e.stall)
            self.flush_ops()
            self.emit("_m.pend += _o; _o = 0")
            self.emit(e.code)
            return
        sp = self._spelling(name, len(args), node)
        if sp is not None:
            op = sp.op
            if INSTRUCTIONS[op].unit == "runtime":
                e = self.runtime_call(op, sp, args, node)
                self.add_cost(e.ops, e.stall)
                self.emit(e.code)
                return
            canon = []
            raws: list = []
            es: list = []
            for src, param in zip(sp.args, INSTRUCTIONS[op].params):
                if isinstance(src, int):
                    raw = self.expr(args[src])
                    e = self.instr_arg(raw, param.kind, name, param.name, args[src])
                    canon.append(e.code)
                    raws.append(raw)
                    es.append(e)
                else:
                    canon.append(repr(src[1]) if src[0] == "const" else str(self.dim))
                    raws.append(None)
                    es.append(None)
            self.charge_command(op, raws, es, canon)
            total = self._slot(self.pend, self.pend_refs, True)
            self.pend = 0
            self.pend_refs = []
            if op in ("compute_preloaded", "compute_accumulated") and self.stashed is not None:
                t1, pre, pos1 = self.stashed
                self.stashed = None
                flag = "1" if op == "compute_preloaded" else "0"
                full = str(self.dim)
                self.second_pos[len(self.lines)] = self.pos
                if pre[2:] == [full] * 4 and canon[1] == str(0xFFFFFFFF) and canon[2:] == [full] * 4:
                    # full blocks, no bias (known when compiling): the short form
                    call = f"_m.block_pair(_o + {t1}, {pre[0]}, {pre[1]}, {total}, {canon[0]}, {flag})"
                else:
                    call = f"_m.preload_compute(_o + {t1}, {', '.join(pre + [str(total)] + canon + [flag])})"
                self.lines.append((self.indent, f"_o = {call}", pos1))
                return
            if op == "preload":
                if self.stashed is not None:
                    self._emit_stashed()
                self.stashed = (total, canon, self.pos)
                return
            self.emit(f"_o = _m.{op}(_o + {total}{''.join(', ' + c for c in canon)})")
            return
        e = self.builtin_call(name, args, node, as_stmt=True)
        if e is not None:
            self.charge(e)
            if e.code:
                self.emit(e.code)
            return
        raise self.err(UnknownFunctionError, f"unknown function '{name}': not defined in this file and not a "
                       f"Gemmini instruction", callee)

    def _spelling(self, name: str, nargs: int, node: Any):
        options = _SPELLINGS.get(name)
        if not options:
            return None
        for sp in options:
            if sp.arity == nargs:
                return sp
        arities = " or ".join(str(s.arity) for s in options)
        raise self.err(UnsupportedError, f"'{name}' takes {arities} arguments, got {nargs}", node)

    def instr_arg(self, e: E, kind: str, fname: str, pname: str, node: Any) -> E:
        if kind == "local":
            if e.t.is_pointer_like:
                return E(f"(({e.code}) & 0xFFFFFFFF)", ct.UINT32, ops=e.ops)
            return self.convert(e, ct.UINT32, node)
        if kind == "dram":
            if e.t.is_pointer_like:
                return e
            return self.convert(e, ct.UINT64, node)
        if kind == "float":
            return self.convert(e, ct.FLOAT, node)
        if e.t.is_pointer_like:
            raise self.err(UnsupportedError, f"argument '{pname}' of {fname} must be an integer, got a pointer", node)
        return self.convert(e, ct.INT64, node)

    def runtime_call(self, op: str, sp, args: list, node: Tree) -> E:
        a = self.convert(self.expr(args[0]), ct.UINT64, args[0])
        self.makes_calls = True
        ret = _RUNTIME_RET.get(op, ct.VOID)
        return E(f"_m.{op}({a.code})", ret, ops=a.ops + _RUNTIME_COST[op])

    def user_call(self, name: str, args: list, node: Tree) -> E:
        info = self.functions[name]
        if info.node is None:
            raise self.err(UnknownFunctionError, f"function '{name}' is declared but never defined", node)
        if len(args) != len(info.params):
            raise self.err(UnsupportedError, f"'{name}' takes {len(info.params)} arguments, got {len(args)}", node)
        codes, ops = [], 1  # jal; the callee charges its body, prologue and ret
        self.makes_calls = True
        for a, (pname, pt) in zip(args, info.params):
            e = self.expr(a)
            if pt.kind in ("ptr", "array"):
                if not (e.t.is_pointer_like or e.t.is_int):
                    raise self.err(UnsupportedError, f"argument '{pname}' of '{name}' must be a pointer", a)
                codes.append(e.code)
            elif pt.kind == "ctx":
                codes.append("None")
            else:
                e = self.convert(e, pt, a)
                codes.append(e.code)
            ops += e.ops + 1  # its argument register
        return E(f"{info.py}(_m{''.join(', ' + c for c in codes)})", info.ret, ops=ops)

    def builtin_call(self, name: str, args: list, node: Tree, as_stmt: bool = False) -> Optional[E]:
        if name in ("printf", "fprintf", "puts", "EXO_ASSUME", "__builtin_assume", "fflush"):
            return E("", ct.INT32, ops=0)
        if name == "assert":
            c = self.cond(args[0])
            line, _ = self._where(node)
            return E(f"_assert({c.code}, {line})", ct.VOID, ops=c.ops + 1)
        if name == "ACC_SCALE" and len(args) == 2:
            x = self.convert(self.expr(args[0]), ct.INT32, args[0])
            s = self.convert(self.expr(args[1]), ct.FLOAT, args[1])
            return E(f"_acc_scale({x.code}, {s.code})", ct.INT32, ops=x.ops + s.ops + 4)
        if name in ("abs", "labs", "llabs") and len(args) == 1:
            x = self.expr(args[0])
            if not x.t.is_int:
                raise self.err(UnsupportedError, f"{name} of a non-integer", args[0])
            x = self.convert(x, ct.promote(x.t), args[0])
            return E(f"abs({x.code})", x.t, norm=False, ops=x.ops + 1)
        return None

    # ---- lvalues ---------------------------------------------------------
    def lvalue(self, node: Any) -> LV:
        if isinstance(node, Tree):
            if node.data == "var":
                name = str(node.children[0])
                v = self.lookup(name)
                if v is None:
                    raise self.err(UnsupportedError, f"undeclared variable '{name}'", node)
                if v.t.kind == "array":
                    raise self.err(UnsupportedError, f"cannot assign to array '{name}'", node)
                if v.mem:
                    return LV("mem", v.t, addr=E(v.py, ct.ptr(v.t)))
                return LV("var", v.t, var=v)
            if node.data == "index":
                return self.index_lv(node)
            if node.data == "deref":
                p = self.expr(node.children[0])
                if not p.t.is_pointer_like:
                    raise self.err(UnsupportedError, "dereferencing a non-pointer", node)
                pt = p.t.decay()
                return LV("mem", pt.elem, addr=p, ops=p.ops)
            if node.data in ("member", "arrow"):
                return self.member_lv(node)
        raise self.err(UnsupportedError, "expression is not assignable", node)

    def index_lv(self, node: Tree) -> LV:
        base = self.expr(node.children[0])
        idx = self.expr(node.children[1])
        if not base.t.is_pointer_like:
            raise self.err(UnsupportedError, "indexing a value that is not an array or pointer", node)
        if not idx.t.is_int:
            raise self.err(UnsupportedError, "array index is not an integer", node.children[1])
        pt = base.t.decay()
        elem = pt.elem
        size = elem.sizeof()
        idx = self.convert(idx, ct.INT64, node.children[1]) if not idx.norm else idx
        ax, bx = self._aff_of(base), self._aff_of(idx)
        if ax is not None and bx is not None:
            aff = _aff_add(ax, _aff_scale(bx, size), 1)
            addr = E(None, ct.ptr(elem), aff=aff, mat=self.aff_code)
            addr.nosr = base.nosr or idx.nosr
            if addr.nosr:
                addr.ops = 3
            return LV("mem", elem, addr=addr, ops=addr.ops)
        if idx.const is not None:
            off = idx.const * size
            code = base.code if off == 0 else f"({base.code} + {off})"
        else:
            code = f"({base.code} + ({idx.code}) * {size})" if size != 1 else f"({base.code} + {idx.code})"
        return LV("mem", elem, addr=E(code, ct.ptr(elem), ops=base.ops + idx.ops + 1), ops=base.ops + idx.ops + 1)

    def member_lv(self, node: Tree) -> LV:
        obj, field_tok = node.children
        fieldname = str(field_tok)
        if node.data == "arrow":
            base = self.expr(obj)
            if base.t.kind != "ctx":
                raise self.err(UnsupportedError, "struct member access is only supported on the Exo context "
                               "struct", node)
            return LV("ctxpath", ct.DYN, key=fieldname)
        inner = self.lvalue(obj) if isinstance(obj, Tree) and obj.data in ("member", "arrow") else None
        if inner is None or inner.kind not in ("ctxpath",):
            raise self.err(UnsupportedError, "struct member access is only supported on the Exo context struct",
                           node)
        return LV("ctx", ct.DYN, key=f"{inner.key}.{fieldname}")

    def read_lv(self, lv: LV) -> E:
        if lv.kind == "var":
            v = lv.var
            return E(v.py, v.t, lo=v.lo, hi=v.hi)
        if lv.kind == "mem":
            if lv.t.kind == "array":
                if lv.addr.aff is not None:
                    r = E(lv.addr._code, lv.t, aff=lv.addr.aff, mat=lv.addr._mat)
                    r.nosr, r.ops = lv.addr.nosr, lv.addr.ops
                    return r
                return E(lv.addr.code, lv.t, ops=lv.ops)
            return E(self.load_code(lv.addr.code, lv.t), lv.t, ops=lv.ops + 1)
        if lv.kind == "ctx":
            return E(f"_cx.get({lv.key!r}, 0)", ct.DYN, norm=False, ops=1)
        raise self.err(UnsupportedError, "a context struct is not a value")

    def load_code(self, addr: str, t: CType) -> str:
        if t.kind == "int":
            return f"_m.load({addr}, {_LOAD_CODES[(max(t.bits, 8), t.signed)]!r})"
        if t.kind == "float":
            return f"_m.load({addr}, {'f' if t.bits == 32 else 'd'!r})"
        if t.kind == "ptr":
            return f"_m.load({addr}, 'Q')"
        raise UnsupportedError(f"cannot load a value of type {t}")

    def store_mem(self, addr: E, t: CType, value: E) -> None:
        if t.kind == "int":
            code = _LOAD_CODES[(max(t.bits, 8), t.signed)]
        elif t.kind == "float":
            code = "f" if t.bits == 32 else "d"
        elif t.kind == "ptr":
            code = "Q"
        else:
            raise self.err(UnsupportedError, f"cannot store a value of type {t}")
        self.emit(f"_m.store({addr.code}, {code!r}, {value.code})")

    def store_lv(self, lv: LV, value: E, node: Any) -> None:
        if lv.kind == "var":
            v = lv.var
            if v.lo is not None:
                raise self.err(UnsupportedError, "internal: loop counter assigned", node)
            e = self.convert(value, v.t, node)
            self.emit(f"{v.py} = {e.code}")
            self.charge(e)  # the value lands in the variable's register
        elif lv.kind == "mem":
            e = self.convert(value, lv.t, node)
            self.store_mem(lv.addr, lv.t, e)
            self.charge(e)
            self.charge(lv.addr)
            self.add_cost(1)  # the store; the address's offset folds into it
        elif lv.kind == "ctx":
            self.emit(f"_cx[{lv.key!r}] = {value.code}")
            self.charge(value)
            self.add_cost(1)
        else:
            raise self.err(UnsupportedError, "cannot assign to a context struct", node)

    # ---- expressions -----------------------------------------------------
    def cond(self, node: Any) -> E:
        e = self.expr(node)
        if e.t.kind not in ("int", "float", "ptr", "dyn"):
            raise self.err(UnsupportedError, f"a condition of type {e.t}", node)
        if e.t.is_int and not e.norm:
            e = self.convert(e, e.t, node)
        return e

    def expr(self, node: Any) -> E:
        if isinstance(node, Token):
            raise self.err(UnsupportedError, f"unexpected token '{node}'", node)
        h = getattr(self, f"ex_{node.data}", None)
        if h is None:
            raise self.err(UnsupportedError, f"unsupported expression ({node.data})", node)
        return h(node)

    @staticmethod
    def _literal_e(value: Any) -> E:
        if isinstance(value, float):
            return E(repr(value), ct.DOUBLE, const=value)
        t = ct.INT32 if -(1 << 31) <= value < (1 << 31) else (ct.UINT32 if 0 <= value < (1 << 32) else ct.INT64)
        return E(str(value), t, lo=value, hi=value, const=value)

    def ex_int_lit(self, node: Tree) -> E:
        text = str(node.children[0])
        low = text.lower()
        digits = low.rstrip("ul")
        suffix = low[len(digits):]
        value = int(digits, 0) if not (len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()) \
            else int(digits, 8)
        unsigned = "u" in suffix
        long_ = "l" in suffix
        decimal = not digits.startswith("0") or digits == "0"
        candidates = []
        if not long_:
            candidates += [ct.INT32] if not unsigned else []
            candidates += [ct.UINT32] if (unsigned or not decimal) else []
        candidates += [ct.INT64] if not unsigned else []
        candidates += [ct.UINT64] if (unsigned or not decimal) else []
        if not candidates:
            candidates = [ct.UINT64]
        for t in candidates:
            if t.lo <= value <= t.hi:
                return E(str(value), t, lo=value, hi=value, const=value)
        raise self.err(UnsupportedError, f"integer literal {text} does not fit 64 bits", node)

    def ex_float_lit(self, node: Tree) -> E:
        text = str(node.children[0])
        is_f = text[-1] in "fF"
        v = float(text.rstrip("fFlL"))
        if is_f:
            v = _f32(v)
            return E(repr(v), ct.FLOAT, const=v)
        return E(repr(v), ct.DOUBLE, const=v)

    def ex_char_lit(self, node: Tree) -> E:
        text = str(node.children[0])[1:-1]
        value = ord(text.encode().decode("unicode_escape"))
        return E(str(value), ct.INT32, lo=value, hi=value, const=value)

    def ex_string_lit(self, node: Tree) -> E:
        raise self.err(UnsupportedError, "string literals are only allowed as printf arguments", node)

    def ex_var(self, node: Tree) -> E:
        name = str(node.children[0])
        v = self.lookup(name)
        if v is not None:
            if v.t.kind == "array":
                return E(v.py, v.t)
            if v.mem:
                return E(self.load_code(v.py, v.t), v.t, ops=1)
            if v.const is not None:
                return E(str(v.const), v.t, lo=v.const, hi=v.const, const=v.const)
            if v.lo is None:
                r = self.var_range.get(v.py)
                if r is not None:  # set once, to a value in this interval
                    return E(v.py, v.t, lo=r[0], hi=r[1])
            return E(v.py, v.t, lo=v.lo, hi=v.hi)
        if name in self.constants:
            c = self.constants[name]
            return E(c.code, c.t, lo=c.lo, hi=c.hi, const=c.const)
        if name in self.functions or name in _SPELLINGS:
            raise self.err(UnsupportedError, f"function '{name}' used as a value", node)
        raise self.err(UnsupportedError, f"undeclared identifier '{name}'", node)

    def ex_index(self, node: Tree) -> E:
        base = node.children[0]
        if isinstance(base, Tree) and base.data == "member" and _is_literal(base.children[0]):
            return self.expr(self._window_field(base, node.children[1]))
        return self.read_lv(self.index_lv(node))

    def _window_field(self, member: Tree, index: Any = None) -> Any:
        """The expression a field of an Exo window literal holds: Exo's window
        structs are ``{ data, { strides... } }`` (exo's codegen), read only
        through ``.data`` and ``.strides[<constant>]``."""
        lit, field_tok = member.children
        t = lit.children[0]
        specs = t.children[0]
        names = [str(ch.children[0]) for ch in specs.children
                 if isinstance(ch, Tree) and ch.data == "struct_type"]
        if not names or not names[0].startswith("exo_win_") or len(t.children) > 1 and any(t.children[1:]):
            raise self.err(UnsupportedError, "compound literals are supported only as Exo window structs "
                           "(struct exo_win_...)", lit)
        items = lit.children[1:]
        field = str(field_tok)
        if field == "data" and index is None and len(items) == 2:
            return items[0]
        if field == "strides" and index is not None and len(items) == 2 and \
                isinstance(items[1], Tree) and items[1].data == "cl_list":
            k = self.expr(index).const
            strides = items[1].children
            if isinstance(k, int) and 0 <= k < len(strides):
                return strides[k]
            raise self.err(UnsupportedError, "a window's strides are indexed by a constant in range", member)
        raise self.err(UnsupportedError, f"an Exo window literal is read only as .data or .strides[i], "
                       f"not .{field}", member)

    def ex_deref(self, node: Tree) -> E:
        return self.read_lv(self.lvalue(node))

    def ex_member(self, node: Tree) -> E:
        if _is_literal(node.children[0]):
            return self.expr(self._window_field(node))
        return self.read_lv(self.member_lv(node))

    def ex_compound_literal(self, node: Tree) -> E:
        raise self.err(UnsupportedError, "a compound literal is supported only as an Exo window read "
                       "through .data or .strides[i]", node)

    ex_arrow = ex_member

    def ex_addr_of(self, node: Tree) -> E:
        inner = node.children[0]
        if isinstance(inner, Tree) and inner.data == "deref":  # &*p == p
            p = self.expr(inner.children[0])
            if not p.t.is_pointer_like:
                raise self.err(UnsupportedError, "dereferencing a non-pointer", inner)
            return p
        if isinstance(inner, Tree) and inner.data == "var":
            v = self.lookup(str(inner.children[0]))
            if v is not None and v.t.kind == "array":
                return E(v.py, ct.ptr(v.t), ops=0)
            if v is not None and v.mem:
                return E(v.py, ct.ptr(v.t), ops=0)
            raise self.err(UnsupportedError, "taking the address of a scalar variable is not supported", node)
        lv = self.lvalue(inner)
        if lv.kind != "mem":
            raise self.err(UnsupportedError, "taking the address of this expression is not supported", node)
        if lv.addr.aff is not None:
            r = E(lv.addr._code, ct.ptr(lv.t), aff=lv.addr.aff, mat=lv.addr._mat)
            r.nosr, r.ops = lv.addr.nosr, lv.addr.ops
            return r
        return E(lv.addr.code, ct.ptr(lv.t), ops=lv.ops)

    def ex_call(self, node: Tree) -> E:
        callee, args = node.children[0], [a for a in node.children[1:] if a is not None]
        if not (isinstance(callee, Tree) and callee.data == "var"):
            raise self.err(UnsupportedError, "calls through expressions are not supported", node)
        name = str(callee.children[0])
        if name in self.functions:
            if self.functions[name].ret.kind == "void":
                raise self.err(UnsupportedError, f"void function '{name}' used as a value", node)
            e = self.user_call(name, args, node)
            # ops of the callee's own code are flushed by the callee into _m.pend
            return E(e.code, e.t, norm=True, ops=e.ops)
        sp = self._spelling(name, len(args), node)
        if sp is not None:
            if INSTRUCTIONS[sp.op].unit == "runtime":
                return self.runtime_call(sp.op, sp, args, node)
            raise self.err(UnsupportedError, f"Gemmini instruction '{name}' used as a value", node)
        e = self.builtin_call(name, args, node)
        if e is not None and e.code:
            return e
        raise self.err(UnknownFunctionError, f"unknown function '{name}': not defined in this file and not a "
                       f"Gemmini instruction", callee)

    def ex_sizeof_type(self, node: Tree) -> E:
        t = self._type_name(node.children[1])
        n = t.sizeof()
        return E(str(n), ct.UINT64, lo=n, hi=n, const=n)

    def ex_sizeof_expr(self, node: Tree) -> E:
        e = self.expr(node.children[1])
        n = e.t.sizeof()
        return E(str(n), ct.UINT64, lo=n, hi=n, const=n)

    def ex_cast(self, node: Tree) -> E:
        t = self._type_name(node.children[0])
        e = self.expr(node.children[1])
        if t.kind == "void":
            return E("None", ct.VOID, ops=e.ops)
        return self.convert(e, t, node, explicit=True)

    def ex_ternary(self, node: Tree) -> E:
        e = self._ternary(node)
        if e.const is None and e.aff is None:
            c = self._tern_parts
            if self.loops and self._first_iteration_test(node.children[0], self.loops[-1]):
                # the first iteration takes one side, the others the other (peeling and
                # jump threading): no select is left
                ops, stall = self._operand_ops(list(c[1:]))
                e.ops, e.stall = ops, stall
                return e
            ops, stall = self._operand_ops(list(c))
            e.ops, e.stall = ops + 1, stall
        return e

    def _ternary(self, node: Tree) -> E:
        c = self.cond(node.children[0])
        a, b = self.expr(node.children[1]), self.expr(node.children[2])
        self._tern_parts = (c, a, b)
        if a.t.is_pointer_like or b.t.is_pointer_like:
            t = a.t if a.t.is_pointer_like else b.t
            return E(f"({a.code} if {c.code} else {b.code})", t, ops=c.ops + a.ops + b.ops + 1)
        t = ct.common(a.t, b.t)
        a, b = self.convert(a, t, node), self.convert(b, t, node)
        # constant folding: a known condition, or the same constant either way
        if c.const is not None and a.const is not None and b.const is not None:
            return a if c.const else b
        if a.const is not None and a.const == b.const and not _IMPURE.search(c.code):
            return a
        lo = min(a.lo, b.lo) if a.lo is not None and b.lo is not None else None
        hi = max(a.hi, b.hi) if a.hi is not None and b.hi is not None else None
        return E(f"({a.code} if {c.code} else {b.code})", t, lo=lo, hi=hi, ops=c.ops + a.ops + b.ops + 1)

    def ex_log_or(self, node: Tree) -> E:
        a, b = self.cond(node.children[0]), self.cond(node.children[1])
        return E(f"(1 if (({a.code}) or ({b.code})) else 0)", ct.INT32, lo=0, hi=1, ops=a.ops + b.ops + 1)

    def ex_log_and(self, node: Tree) -> E:
        a, b = self.cond(node.children[0]), self.cond(node.children[1])
        return E(f"(1 if (({a.code}) and ({b.code})) else 0)", ct.INT32, lo=0, hi=1, ops=a.ops + b.ops + 1)

    def ex_lnot(self, node: Tree) -> E:
        a = self.cond(node.children[0])
        return E(f"(0 if ({a.code}) else 1)", ct.INT32, lo=0, hi=1, ops=a.ops + 1)

    def ex_neg(self, node: Tree) -> E:
        a = self.expr(node.children[0])
        if a.t.is_float:
            return E(f"(-{a.code})", a.t, ops=a.ops + 1)
        if not a.t.is_int:
            raise self.err(UnsupportedError, f"negating a {a.t}", node)
        t = ct.promote(a.t)
        a = self.convert(a, t, node)
        if a.norm and a.lo is not None and t.lo <= -a.hi and -a.lo <= t.hi:
            return E(f"(-{a.code})", t, lo=-a.hi, hi=-a.lo, ops=a.ops + 1, const=None if a.const is None else -a.const)
        return E(f"(-{a.code})", t, norm=False, ops=a.ops + 1)

    def ex_pos(self, node: Tree) -> E:
        a = self.expr(node.children[0])
        if a.t.is_int:
            return self.convert(a, ct.promote(a.t), node)
        return a

    def ex_bnot(self, node: Tree) -> E:
        a = self.expr(node.children[0])
        if not a.t.is_int:
            raise self.err(UnsupportedError, f"'~' of a {a.t}", node)
        t = ct.promote(a.t)
        a = self.convert(a, t, node)
        if t.signed:
            return E(f"(~{a.code})", t, norm=a.norm, ops=a.ops + 1,
                     const=None if a.const is None else ~a.const)
        m = _MASK[t.bits]
        const = None if a.const is None else (~a.const) & m
        code = str(const) if const is not None else f"((~{a.code}) & {m:#x})"
        return E(code, t, ops=a.ops + 1, const=const, lo=const, hi=const)

    def ex_arith(self, node: Tree) -> E:
        return self.binary(str(node.children[1]), self.expr(node.children[0]), self.expr(node.children[2]), node)

    def ex_shift_op(self, node: Tree) -> E:
        return self.binary(str(node.children[1]), self.expr(node.children[0]), self.expr(node.children[2]), node)

    def ex_bor(self, node: Tree) -> E:
        return self.binary("|", self.expr(node.children[0]), self.expr(node.children[1]), node)

    def ex_bxor(self, node: Tree) -> E:
        return self.binary("^", self.expr(node.children[0]), self.expr(node.children[1]), node)

    def ex_band(self, node: Tree) -> E:
        return self.binary("&", self.expr(node.children[0]), self.expr(node.children[1]), node)

    def ex_compare(self, node: Tree) -> E:
        a, op, b = self.expr(node.children[0]), str(node.children[1]), self.expr(node.children[2])
        ops = a.ops + b.ops + 1
        if a.t.is_pointer_like or b.t.is_pointer_like:
            return E(f"({a.code} {op} {b.code})", ct.INT32, lo=0, hi=1, ops=ops)
        if not (a.t.is_arith and b.t.is_arith):
            raise self.err(UnsupportedError, f"comparing {a.t} with {b.t}", node)
        t = ct.common(a.t, b.t)
        a, b = self.convert(a, t, node), self.convert(b, t, node)
        if a.const is not None and b.const is not None:
            v = int(_PY_CMP[op](a.const, b.const))
            return E(str(v), ct.INT32, lo=v, hi=v, const=v, ops=0)
        return E(f"({a.code} {op} {b.code})", ct.INT32, lo=0, hi=1, ops=ops)

    # the heart of integer arithmetic ------------------------------------
    def _op_cost(self, op: str, a: E, b: E) -> tuple[int, float]:
        """(instructions, stall cycles) of one integer operator, as gcc -O2 emits it."""
        cpu = self.cpu
        if op == "*":
            k = a.const if isinstance(a.const, int) else (b.const if isinstance(b.const, int) else None)
            if k is not None:
                return (1, 0.0) if k > 0 and k & (k - 1) == 0 else (2, 0.0)  # slli / shift-and-add
            return 1, cpu.mul_cycles - cpu.cpi
        if op in ("/", "%"):
            k = b.const if isinstance(b.const, int) else None
            if k is not None and k > 0 and k & (k - 1) == 0:
                return (1, 0.0) if (a.lo is not None and a.lo >= 0) else (3, 0.0)  # srli/andi, or signed fixup
            if k is not None and k != 0:
                return 3, cpu.mul_cycles - cpu.cpi  # multiply by the reciprocal (mulh) and shift
            return 1, cpu.div_cycles - cpu.cpi
        return 1, 0.0

    def _operand_ops(self, parts: list) -> tuple[int, float]:
        """Instructions of the operands of one operator: an operand that depends on
        outer loops only is hoisted by gcc (charged in front of its loop)."""
        if not self.loops or len(parts) < 2:
            return sum(p.ops for p in parts), sum(p.stall for p in parts)
        lv = [self.level_of(p.code) if (p.ops or p.stall) and p.const is None else -1 for p in parts]
        top = max(lv)
        ops, stall = 0, 0.0
        for p, lvl in zip(parts, lv):
            if 0 <= lvl < top:
                self.charge(p)
            else:
                ops += p.ops
                stall += p.stall
        return ops, stall

    def _counter_loop(self, code: str) -> int:
        """The depth of the loop whose counter `code` is (0: none)."""
        for i, lp in enumerate(self.loops):
            if lp.counter == code:
                return i + 1
        return 0

    def _counter_times_invariant(self, a: E, b: E) -> bool:
        for x, y in ((a, b), (b, a)):
            d = self._counter_loop(x.code) if x.aff is None else 0
            if d and self.level_of(y.code) < d:
                return True
        return False

    def binary(self, op: str, a: E, b: E, node: Any) -> E:
        e = self._binary(op, a, b, node)
        if e.const is None and e.aff is None and not e.t.is_float:
            n, st = self._op_cost(op, a, b)
            if op == "*" and st and self._counter_times_invariant(a, b):
                st = 0.0  # strength reduction: an induction variable stepping by the invariant
            ops, stall = self._operand_ops([a, b])
            e.ops = ops + n
            e.stall = stall + st
        elif e.const is None:
            e.stall = a.stall + b.stall
            if e.aff is not None:
                e.nosr = a.nosr or b.nosr or (op == "/" and a.aff is not None and a.aff[0] != 0)
                if e.nosr:
                    e.ops = 3  # add the constant, shift, add the base (see _charge_nosr)
        return e

    def _binary(self, op: str, a: E, b: E, node: Any) -> E:
        ops = a.ops + b.ops + 1
        if op in ("<<", ">>"):
            return self.shift(op, a, b, node)
        # pointer arithmetic
        if a.t.is_pointer_like or b.t.is_pointer_like:
            return self.pointer_arith(op, a, b, node)
        if not (a.t.is_arith and b.t.is_arith):
            raise self.err(UnsupportedError, f"operator '{op}' on {a.t} and {b.t}", node)
        t = ct.common(a.t, b.t)
        if t.is_float:
            if op in ("%", "&", "|", "^"):
                raise self.err(UnsupportedError, f"operator '{op}' on floating-point values", node)
            a, b = self.convert(a, t, node), self.convert(b, t, node)
            code = f"({a.code} {op} {b.code})"
            if a.const is not None and b.const is not None and op != "/":
                v = _PY_ARITH[op](a.const, b.const)
                v = _f32(v) if t.bits == 32 else v
                return E(repr(v), t, const=v)
            if t.bits == 32:
                code = f"_f32{code}"
            return E(code, t, ops=ops)
        need_norm = op in ("/", "%")
        a = self.convert(a, t, node, keep_unnormalized=not need_norm)
        b = self.convert(b, t, node, keep_unnormalized=not need_norm)
        if a.const is not None and b.const is not None and not (
                op in ("/", "%") and b.const == 0 and _names(node)):  # x / 0 of variables: at run time
            v = self._fold(op, a.const, b.const, node)
            return E(str(v), t, lo=v, hi=v, const=v) if t.lo <= v <= t.hi else \
                E(str(v), t, norm=False, const=None)
        if op in ("+", "-", "*"):
            lo = hi = None
            if a.norm and b.norm and a.lo is not None and b.lo is not None:
                if op == "+":
                    lo, hi = a.lo + b.lo, a.hi + b.hi
                elif op == "-":
                    lo, hi = a.lo - b.hi, a.hi - b.lo
                else:
                    cands = (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)
                    lo, hi = min(cands), max(cands)
            aff = None
            if op == "*":
                if isinstance(a.const, int) or isinstance(b.const, int):
                    f, other = (a.const, b) if isinstance(a.const, int) else (b.const, a)
                    ax = self._aff_of(other)
                    if ax is not None:
                        aff = _aff_scale(ax, f)
            else:
                ax, bx = self._aff_of(a), self._aff_of(b)
                if ax is not None and bx is not None:
                    aff = _aff_add(ax, bx, 1 if op == "+" else -1)
            code = None if aff is not None else _simplify_arith(op, a, b)
            mat = self.aff_code
            if lo is not None and t.lo <= lo and hi <= t.hi:
                return E(code, t, lo=lo, hi=hi, ops=ops, aff=aff, mat=mat)
            return E(code, t, norm=False, ops=ops, aff=aff, mat=mat)
        if op in ("/", "%"):
            if a.lo is not None and a.lo >= 0 and b.lo is not None and b.lo >= 0:
                if op == "/":
                    lo = a.lo // b.hi if b.hi else 0
                    hi = a.hi // b.lo if b.lo else a.hi
                    if isinstance(b.const, int) and b.const > 0:
                        ax = self._aff_of(a)
                        aff = _aff_div(ax, b.const) if ax is not None else None
                        if aff is not None:
                            return E(None, t, lo=lo, hi=hi, ops=ops, aff=aff, mat=self.aff_code)
                    return E(f"({a.code} // {b.code})", t, lo=lo, hi=hi, ops=ops)
                return E(f"({a.code} % {b.code})", t, lo=0, hi=min(a.hi, max(b.hi - 1, 0)), ops=ops)
            fn = "_cdiv" if op == "/" else "_cmod"
            # the quotient of two in-range values only leaves the range for MIN / -1
            return E(f"{fn}({a.code}, {b.code})", t, norm=not t.signed, ops=ops)
        if op in ("&", "|", "^"):
            norm = a.norm and b.norm
            lo = hi = None
            if norm and a.lo is not None and b.lo is not None and a.lo >= 0 and b.lo >= 0:
                if op == "&":
                    lo, hi = 0, min(a.hi, b.hi)
                else:
                    lo, hi = 0, (1 << max(a.hi, b.hi).bit_length()) - 1
            return E(f"({a.code} {op} {b.code})", t, norm=norm, lo=lo, hi=hi, ops=ops)
        raise self.err(UnsupportedError, f"operator '{op}'", node)

    def _fold(self, op: str, x: int, y: int, node: Any) -> int:
        if op in ("/", "%"):
            if y == 0:
                raise self.err(UnsupportedError, "division by zero in a constant expression", node)
            return _cdiv(x, y) if op == "/" else _cmod(x, y)
        return _PY_ARITH[op](x, y)

    def shift(self, op: str, a: E, b: E, node: Any) -> E:
        if not (a.t.is_int and b.t.is_int):
            raise self.err(UnsupportedError, f"shift of {a.t} by {b.t}", node)
        t = ct.promote(a.t)
        a = self.convert(a, t, node, keep_unnormalized=(op == "<<"))
        b = self.convert(b, ct.promote(b.t), node)
        ops = a.ops + b.ops + 1
        if a.const is not None and b.const is not None:
            if b.const < 0 or b.const >= t.bits:
                raise self.err(UnsupportedError, f"shift count {b.const} is out of range for {t}", node)
            v = a.const << b.const if op == "<<" else a.const >> b.const
            if t.lo <= v <= t.hi:
                return E(str(v), t, lo=v, hi=v, const=v)
            w = _wrap_value(v, t)
            return E(str(w), t, lo=w, hi=w, const=w)
        code = f"({a.code} {op} {b.code})"
        if op == ">>":
            lo = hi = None
            if a.lo is not None and a.lo >= 0:
                lo, hi = 0, a.hi
            return E(code, t, lo=lo, hi=hi, ops=ops)
        if a.norm and a.lo is not None and a.lo >= 0 and b.hi is not None and b.lo is not None and b.lo >= 0 \
                and b.hi < t.bits:
            hi = a.hi << b.hi
            if hi <= t.hi:
                return E(code, t, lo=a.lo << b.lo, hi=hi, ops=ops)
        return E(code, t, norm=False, ops=ops)

    def pointer_arith(self, op: str, a: E, b: E, node: Any) -> E:
        ops = a.ops + b.ops + 1
        if op == "-" and a.t.is_pointer_like and b.t.is_pointer_like:
            size = a.t.decay().elem.sizeof()
            return E(f"(({a.code} - {b.code}) // {size})", ct.INT64, ops=ops)
        if op not in ("+", "-"):
            raise self.err(UnsupportedError, f"operator '{op}' on a pointer", node)
        if b.t.is_pointer_like:
            if op == "-":
                raise self.err(UnsupportedError, "integer minus pointer", node)
            a, b = b, a
        if not b.t.is_int:
            raise self.err(UnsupportedError, f"pointer {op} {b.t}", node)
        pt = a.t.decay()
        size = pt.elem.sizeof() if pt.elem.kind != "void" else 1
        b = self.convert(b, ct.INT64, node)
        ax, bx = self._aff_of(a), self._aff_of(b)
        if ax is not None and bx is not None:
            aff = _aff_add(ax, _aff_scale(bx, size), 1 if op == "+" else -1)
            return E(None, pt, ops=ops, aff=aff, mat=self.aff_code)
        off = b.code if size == 1 else f"({b.code}) * {size}"
        return E(f"({a.code} {op} {off})", pt, ops=ops)

    # ---- conversions -----------------------------------------------------
    def convert(self, e: E, t: CType, node: Any = None, explicit: bool = False,
                keep_unnormalized: bool = False) -> E:
        """Convert e to type t, emitting only the code that can change the value."""
        r = self._convert(e, t, node, explicit, keep_unnormalized)
        if r is not e and r.const is None and e.t.kind == "int" and e.t.bits == 32 and not e.t.signed and \
                (t.kind in ("ptr", "array") or (t.kind == "int" and t.bits == 64)) and r.aff is None and \
                e.code and self._unknown32(e.code):
            r.ops = e.ops + 2  # slli + srli: the uint32 is held sign-extended
        if r is not e and r.const is None:
            if e.stall:
                r.stall = e.stall
            if e.nosr and r.aff is not None:
                r.nosr = True
                r.ops = e.ops
        return r

    def _convert(self, e: E, t: CType, node: Any = None, explicit: bool = False,
                 keep_unnormalized: bool = False) -> E:
        s = e.t
        if t.kind == "dyn":
            return e
        if s.kind == "dyn":
            if t.is_float:
                return E(f"float({e.code})", t, ops=e.ops)
            if t.is_int:
                return E(_wrap_code(f"int({e.code})", t), t, ops=e.ops)
            return e
        if t.kind == "ctx":
            return E("None", t, ops=e.ops)
        if t.kind == "void":
            return E("None", t, ops=e.ops)
        if s.kind == "void":
            raise self.err(UnsupportedError, "a void value used", node)
        if t.kind in ("ptr", "array"):
            if s.is_pointer_like:
                return E(e._code, t, ops=e.ops, aff=e.aff, mat=e._mat)
            if s.is_int:
                if not explicit and e.const != 0:
                    raise self.err(UnsupportedError, f"implicit conversion of {s} to pointer {t}", node)
                ee = e if (e.norm and (e.lo or 0) >= 0) else E(_wrap_code(e.code, ct.UINT64), ct.UINT64, ops=e.ops)
                return E(ee._code, t, ops=e.ops, aff=ee.aff, mat=ee._mat)
            raise self.err(UnsupportedError, f"cannot convert {s} to {t}", node)
        if s.is_pointer_like:
            if t.is_int:
                if t.bits >= 64 and not t.is_bool:
                    return E(e.code, t, ops=e.ops) if not t.signed else E(e.code, t, ops=e.ops)
                return E(_wrap_code(e.code, t), t, ops=e.ops)
            raise self.err(UnsupportedError, f"cannot convert pointer to {t}", node)
        if t.is_float:
            if s.is_float:
                if t.bits == 32 and s.bits == 64:
                    if e.const is not None:
                        v = _f32(e.const)
                        return E(repr(v), t, const=v)
                    return E(f"_f32({e.code})", t, ops=e.ops)
                return E(e.code, t, ops=e.ops, const=e.const)
            # int -> float
            if not e.norm:
                e = self.convert(e, s, node)
            if e.const is not None:
                v = float(e.const)
                v = _f32(v) if t.bits == 32 else v
                return E(repr(v), t, const=v)
            exact = e.lo is not None and -(1 << 24) <= e.lo and e.hi <= (1 << 24)
            if t.bits == 32 and not exact:
                return E(f"_f32(float({e.code}))", t, ops=e.ops)
            return E(f"float({e.code})", t, ops=e.ops)
        if not t.is_int:
            raise self.err(UnsupportedError, f"cannot convert {s} to {t}", node)
        if s.is_float:  # float -> int truncates toward zero
            return E(_wrap_code(f"_ftoi({e.code})", t), t, ops=e.ops)
        if not e.norm:
            if keep_unnormalized and t.bits == s.bits and not t.is_bool:
                # congruent modulo 2^bits is enough for + - * & | ^ <<
                return E(e._code, t, norm=False, ops=e.ops, aff=e.aff, mat=e._mat)
            e = E(_wrap_code(e.code, s), s, ops=e.ops)  # reduce to its own type first
        if t.is_bool:
            if e.const is not None:
                v = 1 if e.const else 0
                return E(str(v), t, lo=v, hi=v, const=v)
            if e.lo is not None and e.lo >= 0 and e.hi <= 1:
                return E(e.code, t, lo=e.lo, hi=e.hi, ops=e.ops)
            return E(f"(1 if ({e.code}) else 0)", t, ops=e.ops)
        if e.lo is not None and t.lo <= e.lo and e.hi <= t.hi:
            return E(e._code, t, lo=e.lo, hi=e.hi, const=e.const, ops=e.ops, aff=e.aff, mat=e._mat)
        if keep_unnormalized and t.bits >= s.bits:
            # an exact value is congruent to its conversion modulo any wider 2^bits
            return E(e._code, t, norm=False, ops=e.ops, aff=e.aff, mat=e._mat)
        if e.const is not None:
            v = _wrap_value(e.const, t)
            return E(str(v), t, lo=v, hi=v, const=v)
        return E(_wrap_code(e.code, t), t, ops=e.ops)


# ---------------------------------------------------------------------------
# helpers shared with the generated code

import operator as _op  # noqa: E402
import struct as _struct  # noqa: E402


def _is_literal(node: Any) -> bool:
    """Whether ``node`` is a compound literal (parentheses around it leave no node)."""
    return isinstance(node, Tree) and node.data == "compound_literal"


_PY_ARITH = {"+": _op.add, "-": _op.sub, "*": _op.mul, "&": _op.and_, "|": _op.or_, "^": _op.xor}
_PY_CMP = {"<": _op.lt, "<=": _op.le, ">": _op.gt, ">=": _op.ge, "==": _op.eq, "!=": _op.ne}
_F32 = _struct.Struct("f")


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 (C float arithmetic)."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


def _ftoi(x: float) -> int:
    if x != x or x in (float("inf"), float("-inf")):
        return 0
    return int(x)


def _cdiv(a: int, b: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _cmod(a: int, b: int) -> int:
    """C remainder: has the sign of the dividend."""
    return a - b * _cdiv(a, b)


def _wrap_value(v: int, t: CType) -> int:
    if t.is_bool:
        return 1 if v else 0
    m = _MASK[t.bits]
    v &= m
    if t.signed and v >= (1 << (t.bits - 1)):
        v -= 1 << t.bits
    return v


def _acc_scale(x: int, scale: float) -> int:
    """gemmini.h ACC_SCALE: nearbyint(x * scale) in float32, saturated to int32."""
    y = _f32(_f32(float(x)) * scale)
    if y != y:
        return 0
    r = round(y)  # round half to even
    return max(-(1 << 31), min((1 << 31) - 1, r))


def _simplify_arith(op: str, a: E, b: E) -> str:
    if op == "*" and a.const == 1:
        return b.code
    if op == "*" and b.const == 1:
        return a.code
    if op in ("+", "-") and b.const == 0:
        return a.code
    if op == "+" and a.const == 0:
        return b.code
    return f"({a.code} {op} {b.code})"


def _parse_number(text: str) -> Any:
    t = text.strip().strip("()").strip().rstrip("uUlLfF")
    if any(c in t for c in ".eE") and not t.lower().startswith("0x"):
        return float(t)
    return int(t, 0)


def _step_of(update: Any, name: str) -> Optional[int]:
    """The constant positive step of a for-loop update of `name`, or None."""
    if not isinstance(update, Tree):
        return None
    if update.data in ("post_incdec", "pre_incdec"):
        target = update.children[0] if update.data == "post_incdec" else update.children[1]
        op = _op_text(update.children[1] if update.data == "post_incdec" else update.children[0])
        if isinstance(target, Tree) and target.data == "var" and str(target.children[0]) == name and op == "++":
            return 1
        return None
    if update.data == "assignment":
        target, op, value = update.children
        if not (isinstance(target, Tree) and target.data == "var" and str(target.children[0]) == name):
            return None
        if _op_text(op) == "+=" and isinstance(value, Tree) and value.data == "int_lit":
            v = int(str(value.children[0]).lower().rstrip("ul"), 0)
            return v if v > 0 else None
        if _op_text(op) == "=" and isinstance(value, Tree) and value.data == "arith" and str(value.children[1]) == "+":
            l, r = value.children[0], value.children[2]
            if isinstance(l, Tree) and l.data == "var" and str(l.children[0]) == name and \
                    isinstance(r, Tree) and r.data == "int_lit":
                v = int(str(r.children[0]).lower().rstrip("ul"), 0)
                return v if v > 0 else None
    return None


_PYNAME = re.compile(r"\b(?:v_\w+|s\d+_\w+|_h\d+)\b")
_RUNTIME_COST = {  # argument + jal + the out-of-line bump allocator of benchmarks/riscv_gemmini.h
    "gemm_malloc": 10, "gemm_acc_malloc": 12, "gemm_free": 3, "gemm_acc_free": 3,
}
_MULTERM = re.compile(r"^\(*(\w+) \* (\w+)\)*$")
_TRUNC32 = re.compile(r"0xffffffff\b")
_SLOT = re.compile(r"@@(\d+)@@")
_NOHOIST = re.compile(r"_m\.|\bf_\w+\(|_cx\b")  # memory, calls: evaluated where they stand
# gemmini.h's two operand registers per command: (parameter index, shift, kind)
_PACKING = {
    "config_ex": (((3, 16, "int"), (5, 9, "int"), (4, 8, "int"), (1, 3, "int"), (0, 2, "int")),
                  ((2, 0, "int"),)),
    "config_ld": (((1, 32, "float"), (3, 16, "int"), (4, 3, "int"), (2, 2, "int")), ((0, 0, "int"),)),
    "config_st": (((1, 2, "int"),), ((2, 32, "float"), (0, 0, "int"))),
    "mvin": (((1, 0, "dram"),), ((4, 48, "int"), (3, 32, "int"), (2, 0, "local"))),
    "mvout": (((0, 0, "dram"),), ((3, 48, "int"), (2, 32, "int"), (1, 0, "local"))),
    "preload": (((3, 48, "int"), (2, 32, "int"), (0, 0, "local")), ((5, 48, "int"), (4, 32, "int"), (1, 0, "local"))),
    "compute_preloaded": (((3, 48, "int"), (2, 32, "int"), (0, 0, "local")),
                          ((5, 48, "int"), (4, 32, "int"), (1, 0, "local"))),
    "compute_accumulated": (((3, 48, "int"), (2, 32, "int"), (0, 0, "local")),
                            ((5, 48, "int"), (4, 32, "int"), (1, 0, "local"))),
    "flush": (((0, 0, "int"),),),
}


def _num(x: Any) -> str:
    if isinstance(x, str):
        return x
    return str(int(x)) if float(x).is_integer() else repr(float(x))


_AFFINE_CTX = ("arith", "cast", "index", "addr_of", "deref", "paren", "neg", "pos")


def _counter_uses(body: Any, name: str, start: Optional[int] = None) -> tuple[bool, bool]:
    """(used in index arithmetic, used otherwise: compared, %, passed on) for a loop
    counter; a comparison with its start value does not count (jump threading)."""
    affine = other = False
    stack = [(body, None)]
    while stack:
        node, parent = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data == "var" and str(node.children[0]) == name:
            p = parent
            if p is not None and p.data in _AFFINE_CTX and not (
                    p.data == "arith" and str(p.children[1]) == "%"):
                affine = True
            elif p is not None and p.data == "compare" and start is not None and any(
                    isinstance(y, Tree) and y.data == "int_lit" and str(y.children[0]).rstrip("uUlL") == str(start)
                    for y in (p.children[0], p.children[2])):
                pass
            else:
                other = True
            continue
        for c in node.children:
            stack.append((c, node))
    return affine, other
_IMPURE = re.compile(r"_m\.|\bf_\w+\(|_cdiv\(|_cmod\(|_cx\b|_ftoi\(")
_SIMPLE = re.compile(r"^[A-Za-z_]\w*$")


def _aff_add(x: tuple, y: tuple, sign: int) -> tuple:
    terms = dict(x[1])
    for k, (coef, code) in y[1].items():
        c = terms.get(k, (0, code))[0] + sign * coef
        if c:
            terms[k] = (c, code)
        else:
            terms.pop(k, None)
    return (x[0] + sign * y[0], terms)


def _aff_scale(x: tuple, f: int) -> tuple:
    if f == 0:
        return (0, {})
    return (x[0] * f, {k: (c * f, code) for k, (c, code) in x[1].items()})


def _aff_div(x: tuple, d: int) -> Optional[tuple]:
    """x / d when every coefficient and the constant are multiples of d (exact)."""
    if x[0] % d or any(c % d for c, _ in x[1].values()):
        return None
    return (x[0] // d, {k: (c // d, code) for k, (c, code) in x[1].items()})


def _aff_canon(const: int, terms: dict) -> str:
    parts = []
    for k in sorted(terms):
        coef, code = terms[k]
        mag = abs(coef)
        if not _SIMPLE.match(code):
            code = f"({code})"
        text = code if mag == 1 else f"{code} * {mag}"
        parts.append(("- " if coef < 0 else "+ ") + text)
    if const or not parts:
        parts.append(("- " if const < 0 else "+ ") + str(abs(const)))
    out = " ".join(parts)
    out = out[2:] if out.startswith("+ ") else "-" + out[2:]
    return f"({out})"


def _op_text(node: Any) -> str:
    """The operator of an assign_op / incdec subtree (or a bare token)."""
    if isinstance(node, Tree):
        return str(node.children[0])
    return str(node)


def _init_of(init_decl: Tree) -> Any:
    """The initializer of an init_declarator, or None."""
    rest = [c for c in init_decl.children[1:] if c is not None and not (isinstance(c, Token) and c.type == "ASSIGN")]
    return rest[0] if rest else None


def _names(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, Tree):
        if node.data == "var":
            out.add(str(node.children[0]))
        for c in node.children:
            out |= _names(c)
    return out


def _addr_taken_names(node: Any) -> set[str]:
    """Names whose address the subtree takes with `&name`."""
    out: set[str] = set()
    if isinstance(node, Tree):
        if node.data == "addr_of":
            t = node.children[0]
            if isinstance(t, Tree) and t.data == "var":
                out.add(str(t.children[0]))
        for c in node.children:
            out |= _addr_taken_names(c)
    return out


def _reads_memory(node: Any) -> bool:
    """Does the expression call a function or read memory (which a loop body could change)?"""
    if isinstance(node, Tree):
        if node.data in ("call", "index", "deref", "member", "arrow"):
            return True
        return any(_reads_memory(c) for c in node.children)
    return False


def _has_continue(node: Any) -> bool:
    if not isinstance(node, Tree):
        return False
    if node.data == "continue_stmt":
        return True
    if node.data in ("for_stmt", "while_stmt", "do_stmt"):
        return False
    return any(_has_continue(c) for c in node.children)


RUNTIME_HELPERS = {
    "_f32": _f32, "_ftoi": _ftoi, "_cdiv": _cdiv, "_cmod": _cmod, "_acc_scale": _acc_scale,
}
