"""Packaging (the metadata is in setup.cfg).

The shipped schedule library (``schedules/``) and the example Gemmini C
programs (``examples/``) stay at the top of the checkout and are mapped into
the package at build time: a wheel carries them as
``autocomp_exo/_shipped/schedules/`` and ``autocomp_exo/_shipped/examples/``,
found at run time through ``importlib.resources`` (`autocomp_exo.shipped`).
"""
from setuptools import find_packages, setup

SHIPPED = {"schedules": ["*.json", "README.md"], "examples": ["*.c"]}

setup(
    packages=find_packages(include=["gemmini_isa", "gemmini_isa.*", "sim", "sim.*",
                                    "autocomp_exo", "autocomp_exo.*"])
    + [f"autocomp_exo._shipped.{d}" for d in SHIPPED],
    package_dir={f"autocomp_exo._shipped.{d}": d for d in SHIPPED},
    package_data={"sim": ["*.lark", "*.c"], **{f"autocomp_exo._shipped.{d}": g for d, g in SHIPPED.items()}},
)
