"""The workload protocol: what the search optimizes, whatever the algorithm.

`Workload` is the interface every workload implements (GEMMs in
`autocomp_exo.workloads`, convolutions in `autocomp_exo.conv`); subclasses
register their signature "kind" so `Workload.from_signature` rebuilds them.
This module imports neither Exo nor any implementation, so both sides import
it without a cycle (`autocomp_exo.workloads` imports the implementations, so
every kind is registered once that module is imported).
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Optional

if TYPE_CHECKING:
    from exo.API import Procedure

__all__ = ["WORKLOAD_KINDS", "Workload", "WorkloadError"]


class WorkloadError(ValueError):
    """A shape or proc that autocomp_exo cannot handle (the message says what is supported)."""


# --------------------------------------------------------------------------- #
# The workload protocol
# --------------------------------------------------------------------------- #

#: signature "kind" -> Workload subclass (filled by ``Workload.__init_subclass__``)
WORKLOAD_KINDS: dict = {}


class Workload(abc.ABC):
    """What the search optimizes: an algorithm-level Exo proc with its own
    inputs and an independent reference.

    Subclasses set ``kind`` (the "kind" of their signature; registered so
    `Workload.from_signature` rebuilds them, e.g. in a worker process) and
    implement the abstract members. Everything downstream (workers,
    `evaluate`, library records, transfer) works through this interface."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("kind"):
            WORKLOAD_KINDS[cls.kind] = cls

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A short name (used for C symbols and file names)."""

    @abc.abstractmethod
    def signature(self) -> dict:
        """A JSON dict that identifies the workload, with its "kind"."""

    @property
    @abc.abstractmethod
    def proc(self) -> Procedure:
        """The algorithm-level Exo proc."""

    @property
    @abc.abstractmethod
    def dims(self) -> dict:
        """The problem dimensions, e.g. ``{"M": 64, "N": 64, "K": 64}``."""

    @property
    @abc.abstractmethod
    def macs(self) -> int:
        """Multiply-accumulates of one run."""

    #: names of the proc arguments the program writes (compared with `reference`)
    outputs: ClassVar[tuple] = ()

    @abc.abstractmethod
    def inputs(self, seed: int = 0) -> dict:
        """Arguments of the proc drawn from ``seed``, keyed by argument name:
        numpy arrays (outputs hold their initial contents) and scalars."""

    @abc.abstractmethod
    def reference(self, inputs: dict) -> Any:
        """The expected output (one numpy array, or a dict output name -> array),
        computed independently of Exo and the simulator."""

    def similarity(self, other: "Workload") -> Optional[tuple]:
        """A sort key (smaller: more similar) saying how a schedule of ``other``
        may transfer to this workload, or None when it cannot."""
        if type(other) is type(self) and other.signature() == self.signature():
            return (0, 0.0)
        return None

    def to_task(self) -> dict:
        """The workload as a task field (`from_signature` rebuilds it)."""
        return self.signature()

    @staticmethod
    def from_signature(sig: dict) -> "Workload":
        """The workload of a signature (a signature without "kind" is a GEMM:
        records written before kinds existed)."""
        kind = sig.get("kind", "gemm")
        cls = WORKLOAD_KINDS.get(kind)
        if cls is None:
            raise WorkloadError(f"unknown workload kind {kind!r} (known: {', '.join(sorted(WORKLOAD_KINDS))})")
        return cls._from_signature(sig)

    @classmethod
    def _from_signature(cls, sig: dict) -> "Workload":
        raise WorkloadError(f"{cls.__name__} cannot be rebuilt from a signature")
