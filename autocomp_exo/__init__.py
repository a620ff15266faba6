"""autocomp_exo: search-based optimization of Exo procs for Gemmini.

The public names are imported lazily (PEP 562): `import autocomp_exo` and the
`autocomp-exo sim` command stay fast, and Exo (a few seconds to import its
Gemmini platform) loads only when something that needs it is used.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_EXPORTS = {
    "schedule": None, "exo_compile": None, "workloads": None,
    "Schedule": "schedule", "Step": "schedule", "ScheduleError": "schedule",
    "Workload": "workloads", "GemmWorkload": "workloads", "WorkloadError": "workloads", "gemm": "workloads", "workload_of": "workloads",
    "CompileError": "exo_compile", "to_c": "exo_compile",
    "Measurement": "measurement", "evaluate": "evaluate", "evaluate_c": "evaluate",
    "menu": None, "search": None, "runs": None, "agents": None,
    "optimize": "optimize", "Result": "optimize", "OfflineAgent": "agents", "Agent": "agents",
    "Candidate": "agents", "Plan": "agents", "SearchSettings": "search", "RunDir": "runs",
    "library": None, "Library": "library", "Record": "library", "transfer": "transfer",
    "Task": "workers", "Database": "database", "driver": None, "Session": "driver",
}

#: submodules that share their name with the function they define: the package
#: attribute is the function (``ax.optimize(proc)``, ``ax.evaluate(w, s)``,
#: ``ax.transfer(lib, proc)``); the modules are ``sys.modules["autocomp_exo.optimize"]``
#: (``from autocomp_exo.optimize import ...`` works as usual)
_FUNCTIONS = ("optimize", "evaluate", "transfer")

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'autocomp_exo' has no attribute {name!r}")
    module = _EXPORTS[name]
    if module is None:
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Importing ``autocomp_exo.optimize`` binds the package attribute
    ``optimize`` to the submodule; for the names in `_FUNCTIONS` the package
    keeps the function of that name instead (the public API). Nothing is made
    callable: the submodules are plain modules (tests/test_imports.py)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType) and \
                value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
for _name in _FUNCTIONS:   # a submodule imported before this point (not normally)
    _mod = sys.modules.get(f"{__name__}.{_name}")
    if _mod is not None:
        setattr(sys.modules[__name__], _name, _mod)
