"""The data the package ships: the schedule library and the example Gemmini C programs.

::

    from autocomp_exo import shipped
    shipped.schedules_dir()               # the built-in schedule library (JSON records)
    shipped.example("short_matmul_64.c")  # a path to pass to `autocomp-exo sim`
    shipped.examples()                    # every shipped example

In an installed package (a wheel, ``pip install .``) they are package data,
``autocomp_exo/_shipped/schedules/`` and ``autocomp_exo/_shipped/examples/``,
found through `importlib.resources`. In a source checkout (``pip install -e
.``) they are the checkout's top-level ``schedules/`` and ``examples/``:
setup.py maps those two directories into the package when it builds a wheel,
so there is one copy of each.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_dir", "schedules_dir", "examples_dir", "examples", "example"]

_NAMES = ("schedules", "examples")


def shipped_dir(name: str) -> Path:
    """The directory of the shipped ``name`` ("schedules" or "examples")."""
    if name not in _NAMES:
        raise ValueError(f"nothing shipped under {name!r} (one of {', '.join(_NAMES)})")
    data = resources.files("autocomp_exo").joinpath("_shipped", name)
    if isinstance(data, Path) and data.is_dir():  # installed: package data
        return data
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():  # source checkout / editable install
        return checkout
    raise FileNotFoundError(f"the shipped {name}/ is missing (looked in {data} and {checkout})")


def schedules_dir() -> Path:
    return shipped_dir("schedules")


def examples_dir() -> Path:
    return shipped_dir("examples")


def examples() -> list[Path]:
    """The shipped example Gemmini C programs, sorted by name."""
    return sorted(examples_dir().glob("*.c"))


def example(name: str) -> Path:
    """The path of the shipped example ``name`` (with or without ``.c``)."""
    p = examples_dir() / (name if name.endswith(".c") else name + ".c")
    if not p.is_file():
        raise FileNotFoundError(f"no shipped example {name!r}; there are "
                                f"{', '.join(e.name for e in examples())}")
    return p
