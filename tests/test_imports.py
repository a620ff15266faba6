"""Issue 13 (6): the import graph of the package has no cycle, and no module is
made callable by replacing its class.

The graph is read from the source (``ast``), not by importing: an edge
``a -> b`` for every ``import`` / ``from ... import`` in ``a`` that names
module ``b`` of the package (``from . import x`` names submodule ``x``).
A module depends on its parent packages implicitly (they are imported first);
that edge only counts when the module imports a name defined in the parent.
Two graphs are checked: the imports at module level (a cycle there is a real
import cycle), and all imports including the function-local ones (a cycle
there is a local import that only exists to dodge a cycle). Importing a module
by name at run time (``importlib``, e.g. `workers.TASK_KINDS`) is not an edge.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("autocomp_exo", "sim", "gemmini_isa")


def _modules(package: str) -> dict:
    out = {}
    for p in sorted((ROOT / package).rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (p, is_pkg)
    return out


def import_graph(package: str = "autocomp_exo", local: bool = False, known: dict | None = None) -> dict:
    """module -> the set of modules (of ``known``, default ``package``'s) it imports."""
    mods = _modules(package)
    known = known or mods
    graph = {}
    for name, (path, is_pkg) in mods.items():
        pkg = name if is_pkg else name.rsplit(".", 1)[0]
        named, explicit = set(), set()

        def visit(nodes):
            for n in nodes:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if local:
                        visit(n.body)
                    continue
                if isinstance(n, ast.Import):
                    named.update(a.name for a in n.names)
                elif isinstance(n, ast.ImportFrom):
                    if n.level:
                        base = pkg.split(".")[:len(pkg.split(".")) - (n.level - 1)]
                        mod = ".".join(base + ([n.module] if n.module else []))
                    else:
                        mod = n.module
                    subs = [a.name for a in n.names if f"{mod}.{a.name}" in known]
                    named.update(f"{mod}.{a}" for a in subs)
                    if len(subs) < len(n.names):
                        explicit.add(mod)      # a name defined in ``mod`` itself
                    named.add(mod)
                else:
                    for field in ("body", "orelse", "finalbody", "handlers"):
                        sub = getattr(n, field, None)
                        if isinstance(sub, list):
                            visit(sub)

        visit(ast.parse(path.read_text()).body)
        deps = set()
        for m in named:
            parts = m.split(".")
            for i in range(1, len(parts) + 1):   # importing a.b.c imports a, a.b and a.b.c
                q = ".".join(parts[:i])
                if q in known and q != name and not (name.startswith(q + ".") and q not in explicit):
                    deps.add(q)
        graph[name] = deps
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (or a self-loop)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _path(graph: dict, comp: list) -> str:
    """One cycle through a component, for the failure message (shortest, from its first module)."""
    inside, start = set(comp), comp[0]
    prev, todo = {start: None}, [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & inside):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return " -> ".join(list(reversed(path)) + [start])
            if w not in prev:
                prev[w] = v
                todo.append(w)
    return " / ".join(comp)


def test_the_cycle_finder_finds_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]] and _path(g, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("local", [False, True], ids=["module-level", "with-function-local"])
def test_no_import_cycle_in_the_package(local):
    g = import_graph("autocomp_exo", local=local)
    assert "autocomp_exo.driver" in g and "autocomp_exo.driver" in g["autocomp_exo.transfer"]
    found = cycles(g)
    assert not found, "import cycles: " + "; ".join(_path(g, c) for c in found)


def test_optimize_and_transfer_share_the_driver_one_way():
    g = import_graph("autocomp_exo", local=True)
    assert "autocomp_exo.driver" in g["autocomp_exo.optimize"]
    assert "autocomp_exo.transfer" in g["autocomp_exo.optimize"]      # reuse= is a transfer
    for m in ("autocomp_exo.optimize", "autocomp_exo.transfer", "autocomp_exo.cli"):
        assert m not in g["autocomp_exo.driver"]
    assert "autocomp_exo.optimize" not in g["autocomp_exo.transfer"]
    # the workers run transfer's adapt tasks by name, without importing it
    assert "autocomp_exo.transfer" not in g["autocomp_exo.workers"]


def test_layers_of_the_design():
    """DESIGN.md: `sim` never imports `autocomp_exo`; `gemmini_isa` imports neither."""
    known = {}
    for p in PACKAGES:
        known.update(_modules(p))
    for pkg, banned in (("sim", ("autocomp_exo",)), ("gemmini_isa", ("autocomp_exo", "sim"))):
        for mod, deps in import_graph(pkg, local=True, known=known).items():
            bad = sorted(d for d in deps if d.split(".")[0] in banned)
            assert not bad, f"{mod} imports {bad}"


def _class_assignments(path: Path) -> list:
    """Lines assigning a module's ``__class__`` (``sys.modules[...].__class__ = ...``)."""
    out = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == "__class__":
                    out.append(n.lineno)
    return out


def test_no_callable_modules():
    """No submodule replaces its class. The package itself keeps one module
    subclass (`autocomp_exo._Package`): it only keeps the package attributes
    ``optimize``/``evaluate``/``transfer`` the functions when their modules are
    imported, and it must not make anything callable."""
    for name, (path, _pkg) in _modules("autocomp_exo").items():
        if name == "autocomp_exo":
            continue
        assert not _class_assignments(path), f"{name} assigns a module __class__ at lines {_class_assignments(path)}"
    code = ("import sys, types, importlib, pkgutil, autocomp_exo as ax\n"
            "for m in ('optimize', 'transfer', 'evaluate', 'driver', 'search', 'cli', 'library', 'workers'):\n"
            "    importlib.import_module('autocomp_exo.' + m)\n"
            "for name, mod in list(sys.modules.items()):\n"
            "    if name.split('.')[0] == 'autocomp_exo':\n"
            "        assert not callable(mod), name\n"
            "        assert type(mod) is types.ModuleType or name == 'autocomp_exo', (name, type(mod))\n"
            "assert '__call__' not in vars(type(ax))\n"
            "for f in ('optimize', 'transfer', 'evaluate'):\n"
            "    assert isinstance(getattr(ax, f), types.FunctionType), f\n"
            "from autocomp_exo.optimize import optimize\n"
            "assert ax.optimize is optimize\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=ROOT)


def test_cli_parser_builds_without_exo():
    """The search commands import the search (and Exo) only when they run."""
    code = ("import sys; from autocomp_exo.cli import build_parser; build_parser(); "
            "assert 'exo' not in sys.modules, 'exo'; "
            "assert 'autocomp_exo.optimize' not in sys.modules and 'autocomp_exo.driver' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=ROOT)
